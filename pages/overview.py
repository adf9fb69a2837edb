"""Overview: the customer outcomes, then every team's scorecard side by side."""
from __future__ import annotations

import streamlit as st

from kpicore.display import format_status
from pages import common

ctx = common.context()
card = ctx.scorecard()
common.page_header(ctx, "Overview")
common.outcome_strip(ctx, card)
st.subheader("Team scorecards", help="Each score mixes the team's own KPIs with the customer outcomes above.")
for column, team in zip(st.columns(len(card.teams)), card.teams, strict=True):
    with column, st.container(border=True):
        st.markdown(f"### {team.label}")
        st.badge(format_status(team.status), color=common.STATUS_COLORS[team.status])
        st.markdown(common.score_line(team))
        st.dataframe(common.score_table(team.kpis, ctx), hide_index=True)
        common.team_link(ctx, team.team, f"Open {team.label}")
