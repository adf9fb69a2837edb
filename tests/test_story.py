"""The story sentence: the teams' own targets against the customer outcomes, then the biggest tension."""
from __future__ import annotations

from datetime import date

from kpicore.catalog import Agg, Direction, Kpi, Simple, Unit
from kpicore.periods import Comparison, Grain, Period
from kpicore.scorecard import KpiResult, Scorecard, Status, TeamScore
from kpicore.story import contrast, story
from kpicore.tensions import Tension, TensionKind

OCT, SEP = Period(date(2026, 10, 1), Grain.MONTH), Period(date(2026, 9, 1), Grain.MONTH)


def kpi(kpi_id: str, team: str, scored: bool = True) -> Kpi:
    return Kpi(kpi_id, kpi_id.replace("_", " ").capitalize(), "A test KPI.", Unit.COUNT,
               Simple("leads", "created_at", Agg.COUNT), team=team, direction=Direction.UP, scored=scored)


def result(kpi_id: str, status: Status, team: str = "customer", scored: bool = True) -> KpiResult:
    return KpiResult(kpi(kpi_id, team, scored), OCT, 1.0, SEP, 1.0, 1.0, 1.0, status, date(2026, 10, 31), ())


def team(team_id: str, own: float | None) -> TeamScore:
    return TeamScore(team_id, team_id.capitalize(), own, own, 0.9, Status.AT_RISK, ())


def card(outcomes: list[Status], own: list[float | None], unscored: int = 0) -> Scorecard:
    results = [result(f"outcome_{i}", s) for i, s in enumerate(outcomes)]
    results += [result(f"shown_{i}", Status.OFF_TRACK, scored=False) for i in range(unscored)]
    teams = [team(name, score) for name, score in zip(("marketing", "sales", "service"), own, strict=False)]
    return Scorecard(OCT, Comparison.PREVIOUS, tuple(results), tuple(teams))


def tension(first: str, second: str, sentence: str) -> Tension:
    return Tension(TensionKind.MOVE, kpi("speed", first), kpi("quality", second), OCT, 1.0, 1.0, 3.0, (),
                   sentence, (SEP, OCT), (first.capitalize(), second.capitalize()))


def test_teams_above_target_while_customers_suffer_is_told_as_a_contrast_with_the_biggest_tension():
    told = story(card([Status.OFF_TRACK] * 5 + [Status.ON_TRACK] * 2, [1.05, 0.97, 1.10], unscored=2),
                 [tension("service", "service", "Service resolves tickets faster while reopens rose.")])
    # own scores 105%, 97%, 110%: on average 104%; 5 of the 7 scored outcomes off track (the 2 unscored not counted)
    assert told == ("The teams meet 104% of their own targets on average while 5 of 7 customer outcomes are off "
                    "track. Biggest tension: Service resolves tickets faster while reopens rose.")


def test_off_track_and_at_risk_are_both_counted_and_calm_periods_say_so():
    told = story(card([Status.OFF_TRACK, Status.AT_RISK, Status.AT_RISK, Status.ON_TRACK], [0.8, 0.9]), [])
    # both below target and customers in trouble: the same story, told with "and"
    assert told == ("The teams meet 85% of their own targets on average and 1 of 4 customer outcomes is off track "
                    "and 2 at risk. No KPI pulls against its counterweight.")


def test_customers_on_track_while_the_teams_miss_is_a_contrast_too():
    told = story(card([Status.ON_TRACK] * 3, [0.9, 0.9, 0.9]), [])
    assert told.startswith("The teams meet 90% of their own targets on average while all 3 customer outcomes are on "
                           "track.")


def test_a_team_page_tells_its_own_score_and_its_own_biggest_tension():
    tensions = [tension("sales", "service", "Sales closes faster while tickets pile up."),
                tension("marketing", "sales", "Marketing brings more leads while fewer of them buy.")]
    told = story(card([Status.AT_RISK, Status.ON_TRACK], [1.2, 0.95, 1.0]), tensions, team="marketing")
    assert told == ("Marketing meets 120% of its own targets while 1 of 2 customer outcomes is at risk. "
                    "Biggest tension: Marketing brings more leads while fewer of them buy.")


def test_nothing_judged_yet_is_said_plainly():
    told = story(card([Status.NO_DATA, Status.MATURING], [None, None]), [])
    assert told == ("The teams' own KPIs cannot be judged yet and no customer outcome can be judged yet. "
                    "No KPI pulls against its counterweight.")


def test_teams_below_target_with_nothing_judged_for_the_customers_is_no_contrast():
    told = story(card([Status.MATURING], [0.8, 0.8, 0.8]), [])
    assert told.startswith("The teams meet 80% of their own targets on average and no customer outcome can be "
                           "judged yet.")


def test_the_contrast_puts_the_teams_own_targets_beside_the_customer_outcomes_on_track():
    shown = card([Status.OFF_TRACK] * 4 + [Status.AT_RISK, Status.ON_TRACK, Status.ON_TRACK], [1.05, 0.97, 1.10],
                 unscored=2)
    # (105 + 97 + 110) / 3 = 104%; 2 of the 7 scored outcomes on track (the unscored ones are not counted)
    assert contrast(shown) == (("Teams' own KPIs (average)", "104% of target"),
                               ("Customer outcomes", "2 of 7 on track"))
    assert contrast(shown, "sales") == (("Sales' own KPIs", "97% of target"), ("Customer outcomes", "2 of 7 on track"))
    assert contrast(card([Status.NO_DATA], [None]))[1] == ("Customer outcomes", "not judged yet")
    assert contrast(card([Status.NO_DATA], [None]))[0][1] == "–"
