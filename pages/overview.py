"""Overview: the story, the customer outcomes, every team's score side by side, the tensions, then each team's KPIs."""
from __future__ import annotations

import streamlit as st

from pages import common, widgets

ctx = common.context()
card = ctx.scorecard()
widgets.page_header(ctx, "Overview")
widgets.story_line(ctx, card)
widgets.outcome_strip(ctx, card)
st.subheader("Team scorecards", help="Each score mixes the team's own KPIs with the customer outcomes above.")
for column, team in zip(st.columns(len(card.teams)), card.teams, strict=True):
    with column, st.container(border=True):
        st.markdown(f"### {team.label}")
        st.markdown(f"{widgets.status_badge(team.status)} {widgets.score_line(team)}")
        common.team_link(ctx, team.team, f"Open {team.label}")
widgets.tensions(ctx)
# each team's KPIs at the page's full width (three tables side by side were clipped at 1280 px)
for tab, team in zip(st.tabs([f"{team.label} KPIs" for team in card.teams]), card.teams, strict=True):
    with tab:
        st.dataframe(widgets.styled_scores(team.kpis, ctx), hide_index=True, width="stretch")
        common.table_download(lambda kpis=team.kpis: widgets.score_table(kpis, ctx),
                              f"{team.team}-kpis-{ctx.period.label}", f"kpis-{team.team}")
if not common.presenting():
    widgets.checkin_panel(ctx, [r.kpi for r in card.outcomes + tuple(r for t in card.teams for r in t.kpis)])
