"""Entry point: `streamlit run dashboard.py`. Routes to the pages and draws the shared controls."""
from __future__ import annotations

import streamlit as st

from pages import common

st.set_page_config(page_title="KPI scorecards", page_icon="🎯", layout="wide")
common.begin_run()

catalog = common.catalog()
pages = [common.overview_page()]
pages += [common.team_page(team.id, team.label) for team in catalog.teams]
pages += [st.Page("pages/journey.py", title="Journey", icon=":material/route:", url_path="journey")]
pages += [st.Page("pages/glossary.py", title="Glossary", icon=":material/menu_book:", url_path="glossary"),
          st.Page("pages/data.py", title="Data", icon=":material/upload_file:", url_path="data")]
page = st.navigation(pages, position="top")
st.session_state["team"] = page.url_path
common.controls(common.context())
page.run()
