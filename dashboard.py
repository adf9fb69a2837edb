"""Entry point: `streamlit run dashboard.py`. Routes to the pages and draws the shared controls."""
from __future__ import annotations

import streamlit as st

from pages import common, widgets

present = common.presenting()
st.set_page_config(page_title="KPI scorecards", page_icon="🎯", layout="wide",
                   initial_sidebar_state="collapsed" if present else "auto")
common.begin_run()
common.login_gate()

with common.database_for_this_run():
    catalog = common.catalog()
    pages = [common.overview_page()]
    pages += [common.team_page(team.id, team.label) for team in catalog.teams]
    pages += [st.Page("pages/journey.py", title="Journey", icon=":material/route:", url_path="journey")]
    pages += [st.Page("pages/glossary.py", title="Glossary", icon=":material/menu_book:", url_path="glossary"),
              common.data_page()]
    page = st.navigation(pages, position="hidden" if present else "top")
    st.session_state["team"] = page.url_path
    ctx = common.context()
    widgets.app_style()
    widgets.sample_banner(ctx)
    if ctx.empty:
        widgets.welcome(page.title)
    elif present:
        common.presentation(ctx, pages[:1 + len(catalog.teams)], page)
    else:
        common.controls(ctx)
    if not ctx.empty or page.url_path in ("data", "glossary"):
        page.run()
