"""The story of a period in one or two sentences: how the teams do on their own targets against how the customer
outcomes do, and the biggest tension. Built from the numbers the page shows, for the app and reports alike."""
from __future__ import annotations

from collections.abc import Sequence

from kpicore.display import format_score, possessive
from kpicore.scorecard import KpiResult, Scorecard, Status
from kpicore.tensions import Tension


def story(card: Scorecard, tensions: Sequence[Tension], team: str | None = None) -> str:
    """'The teams meet 104% of their own targets while 5 of 7 customer outcomes are off track. Biggest tension:
    ...' for the Overview; with `team` (an id), that team's own targets and its biggest tension."""
    if team is None:
        scores = [t.own_score for t in card.teams if t.own_score is not None]
        own = sum(scores) / len(scores) if scores else None
        subject = ("The teams' own KPIs cannot be judged yet" if own is None
                   else f"The teams meet {format_score(own)} of their own targets on average")
        found = list(tensions)
    else:
        mine = next(t for t in card.teams if t.team == team)
        own = mine.own_score
        subject = (f"{possessive(mine.label)} own KPIs cannot be judged yet" if own is None
                   else f"{mine.label} meets {format_score(own)} of its own targets")
        found = [t for t in tensions if team in t.teams]
    outcomes, troubled, judged = _outcomes(card.outcomes)
    pulling = own is not None and judged and (own >= 1) == troubled  # the teams and the customers tell two stories
    first = f"{subject} {'while' if pulling else 'and'} {outcomes}."
    if not found:
        return f"{first} No KPI pulls against its counterweight."
    return f"{first} Biggest tension: {found[0].sentence}"


def contrast(card: Scorecard, team: str | None = None) -> tuple[tuple[str, str], tuple[str, str]]:
    """The story's two numbers side by side, as (label, value): the teams' own targets (one team's with `team`)
    against the customer outcomes, e.g. ("Teams' own KPIs", "104% of target"), ("Customer outcomes",
    "2 of 7 on track")."""
    if team is None:
        scores = [t.own_score for t in card.teams if t.own_score is not None]
        own, label = (sum(scores) / len(scores) if scores else None), "Teams' own KPIs (average)"
    else:
        mine = next(t for t in card.teams if t.team == team)
        own, label = mine.own_score, f"{possessive(mine.label)} own KPIs"
    judged = [r for r in card.outcomes if r.kpi.scored and r.status.judged]
    on = sum(1 for r in judged if r.status is Status.ON_TRACK)
    outcomes = f"{on} of {len(judged)} on track" if judged else "not judged yet"
    return (label, "–" if own is None else f"{format_score(own)} of target"), ("Customer outcomes", outcomes)


def _outcomes(results: Sequence[KpiResult]) -> tuple[str, bool, bool]:
    """'5 of 7 customer outcomes are off track and 1 at risk' (the scored outcomes with a status), whether any is
    off track or at risk, and whether any could be judged."""
    judged = [r for r in results if r.kpi.scored and r.status.judged]
    if not judged:
        return "no customer outcome can be judged yet", False, False
    off = sum(1 for r in judged if r.status is Status.OFF_TRACK)
    risk = sum(1 for r in judged if r.status is Status.AT_RISK)
    total = len(judged)
    noun = "customer outcome" if total == 1 else "customer outcomes"
    if not off and not risk:
        return ("the customer outcome is on track" if total == 1 else f"all {total} {noun} are on track"), False, True
    parts = []
    if off:
        parts.append(f"{off} of {total} {noun} {'is' if off == 1 else 'are'} off track")
    if risk:
        parts.append(f"{risk} at risk" if off else f"{risk} of {total} {noun} {'is' if risk == 1 else 'are'} at risk")
    return " and ".join(parts), True, True
