"""A team's page: the customer outcomes on top, then the team's KPIs with trends and links."""
from __future__ import annotations

import streamlit as st

from pages import common, widgets

ctx = common.context()
team = ctx.catalog.team(st.session_state["team"])
card = ctx.scorecard()
score = next(t for t in card.teams if t.team == team.id)
widgets.page_header(ctx, team.label)
widgets.story_line(ctx, card, team.id)
st.markdown(team.description)
widgets.outcome_strip(ctx, card)
widgets.tensions(ctx, team.id)
st.subheader(f"{team.label} KPIs")
st.markdown(widgets.score_line(score))
for result in score.kpis:
    with st.container(border=True, key=f"kpi-{result.kpi.id}"):
        st.subheader(result.kpi.label, anchor=result.kpi.id.replace("_", "-"))
        left, right = st.columns([1, 2])
        with left:
            widgets.metric(result, ctx)
            st.markdown(widgets.relations(ctx.catalog, result.kpi))
        with right:
            widgets.trend(result, ctx)
if not common.presenting():
    widgets.checkin_panel(ctx, [r.kpi for r in score.kpis + card.outcomes])
