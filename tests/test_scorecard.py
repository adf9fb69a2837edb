"""Scorecards: attainment, status bands, team scores and KPI results, worked out by hand."""
from __future__ import annotations

import math
from datetime import date, datetime

import pytest
import yaml

from kpicore.catalog import Agg, Catalog, Direction, Kpi, Simple, Target, Unit, parse_catalog
from kpicore.compute import compute
from kpicore.periods import Comparison, Grain, parse_period
from kpicore.scorecard import (
    TREND_PERIODS,
    KpiResult,
    Status,
    TrendPoint,
    as_record,
    attainment,
    build_scorecard,
    kpi_result,
    status_of,
    weighted_attainment,
)

JAN, FEB, MAR = (parse_period(label) for label in ("2026-01", "2026-02", "2026-03"))


def kpi(direction: Direction | None = Direction.UP, target: float | None = 100.0, at_risk: float = 0.9,
        weight: float = 1.0, unit: Unit = Unit.COUNT, kpi_id: str = "k") -> Kpi:
    """A scored KPI; its formula does not matter to the scorecard functions under test."""
    return Kpi(kpi_id, kpi_id.upper(), "A test KPI.", unit, Simple("leads", "created_at", Agg.COUNT),
               team="sales", direction=direction, target=None if target is None else Target(target, at_risk),
               weight=weight)


def result(k: Kpi, value: float | None = None, comparison: float | None = None,
           reached: float | None = None, status: Status = Status.ON_TRACK) -> KpiResult:
    return KpiResult(kpi=k, period=FEB, value=value, comparison_period=JAN, comparison=comparison,
                     target=k.target.value if k.target else None, attainment=reached, status=status,
                     as_of=date(2026, 2, 28), trend=())


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- attainment and status ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("direction", "value", "target", "expected"), [
    (Direction.UP, 90.0, 100.0, 0.9),
    (Direction.UP, 150.0, 100.0, 1.5),  # not capped here: the cap applies in scores
    (Direction.UP, 0.0, 100.0, 0.0),
    (Direction.DOWN, 50.0, 100.0, 2.0),  # half the target of a down KPI: twice as good
    (Direction.DOWN, 125.0, 100.0, 0.8),
    (Direction.UP, 90.0, None, None),  # no target: nothing to attain
    (Direction.UP, None, 100.0, None),  # no value
    (None, 90.0, 100.0, None),  # no direction
])
def test_attainment(direction, value, target, expected):
    reached = attainment(kpi(direction), value, target)
    assert reached == (None if expected is None else pytest.approx(expected))


def test_attainment_of_zero_for_a_down_kpi_is_infinite():
    assert attainment(kpi(Direction.DOWN), 0.0, 0.015) == math.inf  # no churn at all beats any target


@pytest.mark.parametrize(("reached", "maturing", "expected"), [
    (1.0, False, Status.ON_TRACK),  # exactly on target
    (1.7, False, Status.ON_TRACK),
    (0.9, False, Status.AT_RISK),  # exactly at the at-risk band
    (0.95, False, Status.AT_RISK),
    (0.8999, False, Status.OFF_TRACK),  # just below the band
    (0.0, False, Status.OFF_TRACK),
    (1.5, True, Status.MATURING),  # a maturing cohort is not judged, however good it looks
    (None, False, Status.NO_DATA),
])
def test_status_bands(reached, maturing, expected):
    assert status_of(kpi(at_risk=0.9), reached, maturing) is expected


def test_status_uses_the_kpis_own_band_and_needs_a_target():
    assert status_of(kpi(at_risk=0.75), 0.8, False) is Status.AT_RISK
    assert status_of(kpi(at_risk=0.85), 0.8, False) is Status.OFF_TRACK
    assert status_of(kpi(target=None), 1.2, False) is Status.NO_DATA


# --- weighted attainment ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("parts", "expected"), [
    ([(1.0, 0.8, Status.AT_RISK), (3.0, 1.0, Status.ON_TRACK)], 0.95),  # (1 * 0.8 + 3 * 1.0) / 4
    ([(1.0, 5.0, Status.ON_TRACK), (1.0, 0.6, Status.OFF_TRACK)], 0.9),  # the runaway 500% counts as 120%
    ([(1.0, math.inf, Status.ON_TRACK), (1.0, 1.0, Status.ON_TRACK)], 1.1),  # infinite counts as the cap too
    ([(1.0, 0.5, Status.OFF_TRACK), (5.0, 2.0, Status.MATURING), (5.0, None, Status.NO_DATA)], 0.5),
    ([(1.0, 2.0, Status.MATURING)], None),  # nothing judged: no score
    ([], None),
])
def test_weighted_attainment_with_weights_and_cap(parts, expected):
    results = tuple(result(kpi(weight=w, kpi_id=f"k{i}"), reached=r, status=s) for i, (w, r, s) in enumerate(parts))
    score = weighted_attainment(results, cap=1.2)
    assert score == (None if expected is None else pytest.approx(expected))


# --- KPI results ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("direction", "value", "comparison", "change", "relative", "improved"), [
    (Direction.UP, 120.0, 100.0, 20.0, 0.2, True),
    (Direction.DOWN, 120.0, 100.0, 20.0, 0.2, False),
    (Direction.DOWN, 80.0, 100.0, -20.0, -0.2, True),
    (Direction.UP, -50.0, -100.0, 50.0, 0.5, True),  # relative to the size of the comparison
    (Direction.UP, 5.0, 0.0, 5.0, None, True),  # from zero: no relative change
    (Direction.UP, 100.0, 100.0, 0.0, 0.0, None),  # unchanged: neither better nor worse
    (Direction.UP, 100.0, None, None, None, None),  # nothing to compare with
    (None, 120.0, 100.0, 20.0, 0.2, None),  # no direction: no judgement
])
def test_change_relative_change_and_improved(direction, value, comparison, change, relative, improved):
    r = result(kpi(direction), value=value, comparison=comparison)
    assert r.change == (None if change is None else pytest.approx(change))
    assert r.relative_change == (None if relative is None else pytest.approx(relative))
    assert r.improved is improved


def monthly_catalog() -> Catalog:
    """One revenue KPI (a sum, up, target 10) for the trend and comparison tests."""
    return parse_catalog(yaml.safe_dump({
        "teams": [{"id": "sales", "label": "Sales"}],
        "kpis": [{"id": "revenue", "label": "Revenue", "description": "Revenue.", "team": "sales", "unit": "currency",
                  "direction": "up", "target": {"value": 10},
                  "simple": {"table": "revenue", "time": "month", "agg": "sum", "column": "amount"}}],
    }))


@pytest.fixture
def fifteen_months(memory_conn, tiny_store):
    """Revenue of 1, 2, ..., 15 in January 2025 to March 2026."""
    rows = [{"customer_id": "A", "month": date(2025 + (i - 1) // 12, (i - 1) % 12 + 1, 1), "amount": float(i)}
            for i in range(1, 16)]
    return compute(memory_conn, monthly_catalog(), tiny_store({"revenue": rows}), Grain.MONTH)


def test_trend_has_at_most_twelve_periods_and_ends_at_the_period(fifteen_months):
    revenue = monthly_catalog().kpi("revenue")
    late = kpi_result(revenue, fifteen_months, FEB, Comparison.PREVIOUS)
    assert len(late.trend) == TREND_PERIODS == 12
    assert late.trend[-1].period == FEB and late.trend[0].period == parse_period("2025-03")
    assert [p.value for p in late.trend] == [float(v) for v in range(3, 15)]  # March 2025 = 3 ... Feb 2026 = 14
    assert late.trend[-1].comparison == 13  # January 2026
    early = kpi_result(revenue, fifteen_months, parse_period("2025-03"), Comparison.PREVIOUS)
    assert [p.period.label for p in early.trend] == ["2025-01", "2025-02", "2025-03"]
    assert early.trend[0].comparison is None  # December 2024 has no data


def test_comparison_with_the_same_period_a_year_ago(fifteen_months):
    revenue = monthly_catalog().kpi("revenue")
    r = kpi_result(revenue, fifteen_months, MAR, Comparison.YEAR_AGO)
    assert r.comparison_period == parse_period("2025-03")
    assert (r.value, r.comparison) == (15, 3)  # March 2026 vs March 2025
    assert r.change == 12 and r.relative_change == pytest.approx(4.0) and r.improved is True
    assert r.target == 10 and r.attainment == pytest.approx(1.5) and r.status is Status.ON_TRACK
    assert r.as_of == date(2026, 3, 31)
    previous = kpi_result(revenue, fifteen_months, MAR, Comparison.PREVIOUS)
    assert previous.comparison_period == FEB and previous.comparison == 14


def conversion_catalog() -> Catalog:
    return parse_catalog(yaml.safe_dump({
        "teams": [{"id": "sales", "label": "Sales"}],
        "kpis": [{"id": "lead_to_customer", "label": "Lead to customer", "description": "Converted leads.",
                  "team": "customer", "unit": "percent", "direction": "up", "target": {"value": 0.5},
                  "conversion": {"from": {"table": "leads", "time": "created_at"},
                                 "to": {"table": "customers", "time": "acquired_at"},
                                 "key": "lead_id", "window_days": 30}}],
    }))


def test_a_maturing_cohort_reports_the_latest_mature_period_with_a_note(memory_conn, tiny_store):
    schema = tiny_store({
        "leads": [
            {"lead_id": "L1", "created_at": ts("2026-01-02 10:00")},
            {"lead_id": "L2", "created_at": ts("2026-01-06 10:00")},
            {"lead_id": "L3", "created_at": ts("2026-02-05 10:00")},
            {"lead_id": "L4", "created_at": ts("2026-03-31 10:00")},
        ],
        "customers": [
            {"customer_id": "C1", "lead_id": "L1", "acquired_at": ts("2026-01-01 10:00")},  # before its lead
            {"customer_id": "C2", "lead_id": "L2", "acquired_at": ts("2026-01-20 10:00")},
            {"customer_id": "C3", "lead_id": "L3", "acquired_at": ts("2026-03-30 10:00")},  # too late for L3
        ],
    })
    catalog = conversion_catalog()
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    # the last target is 30 Mar: February (1 Mar + 30 days = 31 Mar) has had its window, March has not
    assert values.maturing["lead_to_customer"] == frozenset({MAR})
    r = kpi_result(catalog.kpi("lead_to_customer"), values, MAR, Comparison.PREVIOUS)
    assert r.period == FEB
    assert r.value == 0  # L3 became a customer after 53 days
    assert r.comparison_period == JAN and r.comparison == pytest.approx(0.5)  # L2 of L1, L2
    assert r.status is Status.OFF_TRACK
    assert "2026-02" in r.cohort and "2026-03" in r.cohort and "matur" in r.cohort
    assert r.trend[-1].period == MAR and r.trend[-1].maturing  # the trend still shows the young cohort


def test_a_cohort_kpi_without_any_mature_period_is_maturing(memory_conn, tiny_store):
    schema = tiny_store({
        "leads": [{"lead_id": "L1", "created_at": ts("2026-01-05 10:00")},
                  {"lead_id": "L2", "created_at": ts("2026-01-31 10:00")}],
        "customers": [{"customer_id": "C1", "lead_id": "L1", "acquired_at": ts("2026-01-10 10:00")}],
    })
    catalog = conversion_catalog()
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    r = kpi_result(catalog.kpi("lead_to_customer"), values, JAN, Comparison.PREVIOUS)
    assert r.period == JAN and r.value == pytest.approx(0.5)
    assert r.status is Status.MATURING


# --- team scores -------------------------------------------------------------------------------------------


SCORED_CATALOG = """
scoring: {team_weight: 0.6, customer_weight: 0.4, attainment_cap: 1.2, at_risk: 0.9}
teams:
  - {id: sales, label: Sales}
  - {id: service, label: Service}
kpis:
  - id: survey_score
    label: Survey score
    description: Average survey score.
    team: customer
    unit: score
    direction: up
    target: {value: 10}
    simple: {table: surveys, time: responded_at, agg: avg, column: score}
  - id: surveys
    label: Surveys
    description: Survey answers.
    team: customer
    unit: count
    direction: up
    weight: 3
    target: {value: 2}
    simple: {table: surveys, time: responded_at, agg: count}
  - id: leads
    label: Leads
    description: Leads created.
    team: sales
    unit: count
    direction: up
    target: {value: 4}
    simple: {table: leads, time: created_at, agg: count}
  - id: sales_cycle
    label: Sales cycle
    description: Days from opening to closing a deal.
    team: sales
    unit: days
    direction: down
    target: {value: 10}
    simple: {table: opportunities, time: closed_at, agg: avg, duration: {from: created_at, to: closed_at}}
  - id: tickets
    label: Tickets
    description: Tickets opened.
    team: service
    unit: count
    direction: up
    target: {value: 5}
    simple: {table: tickets, time: created_at, agg: count}
"""


def test_team_score_mixes_own_kpis_and_customer_outcomes(memory_conn, tiny_store):
    catalog = parse_catalog(SCORED_CATALOG)
    schema = tiny_store({
        "surveys": [
            {"customer_id": "A", "responded_at": ts("2026-01-03 10:00"), "score": 6},
            {"customer_id": "B", "responded_at": ts("2026-01-04 10:00"), "score": 8},
            {"customer_id": "C", "responded_at": ts("2026-01-31 10:00"), "score": 10},
        ],
        "leads": [
            {"lead_id": "L1", "created_at": ts("2026-01-02 10:00")},
            {"lead_id": "L2", "created_at": ts("2026-01-09 10:00")},
            {"lead_id": "L3", "created_at": ts("2026-01-31 10:00")},
        ],
        "opportunities": [
            {"opportunity_id": "O1", "created_at": ts("2026-01-01 00:00"), "closed_at": ts("2026-01-16 00:00")},
            {"opportunity_id": "O2", "created_at": ts("2026-01-02 00:00"), "closed_at": ts("2026-01-27 00:00")},
            {"opportunity_id": "O3", "created_at": ts("2026-01-31 00:00")},  # still open: the export reaches 31 Jan
        ],
        # no tickets at all: the service team has no data for its own KPI
    })
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    card = build_scorecard(catalog, values, JAN, Comparison.PREVIOUS)
    outcomes = {r.kpi.id: r for r in card.outcomes}
    assert outcomes["survey_score"].attainment == pytest.approx(0.8)  # avg(6, 8, 10) = 8 of 10
    assert outcomes["surveys"].attainment == pytest.approx(1.5)  # 3 of 2
    # customer part: (1 * 0.8 + 3 * min(1.5, 1.2)) / (1 + 3) = 4.4 / 4
    customer = 1.1
    sales, service = card.teams
    assert sales.team == "sales" and service.team == "service"
    own = {r.kpi.id: r for r in sales.kpis}
    assert own["leads"].attainment == pytest.approx(0.75)  # 3 of 4
    assert own["sales_cycle"].value == pytest.approx(20.0)  # (15 + 25) / 2 days
    assert own["sales_cycle"].attainment == pytest.approx(0.5)  # target 10 / 20 days
    assert sales.own_score == pytest.approx(0.625)  # (0.75 + 0.5) / 2
    assert sales.customer_score == pytest.approx(customer)
    assert sales.score == pytest.approx(0.6 * 0.625 + 0.4 * customer)  # 0.815
    assert sales.status is Status.OFF_TRACK  # below the 0.9 band
    assert [r.status for r in service.kpis] == [Status.NO_DATA]
    assert service.own_score is None and service.customer_score == pytest.approx(customer)
    # no own KPI can be judged: the customer part alone says nothing of the service team
    assert service.score is None and service.status is Status.NO_DATA


def test_as_record_gives_rates_as_fractions(memory_conn, tiny_store):
    catalog = conversion_catalog()
    schema = tiny_store({
        "leads": [{"lead_id": f"L{i}", "created_at": ts(f"2026-01-{day} 10:00")}
                  for i, day in enumerate(("01", "10", "20", "31"), start=1)],
        "customers": [{"customer_id": "C1", "lead_id": "L1", "acquired_at": ts("2026-01-10 10:00")},
                      {"customer_id": "C9", "acquired_at": ts("2026-04-30 10:00")}],  # ends the window
    })
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    record = as_record(kpi_result(catalog.kpi("lead_to_customer"), values, JAN, Comparison.PREVIOUS))
    assert record["id"] == "lead_to_customer" and record["team"] == "customer" and record["unit"] == "percent"
    assert record["period"] == "2026-01" and record["comparison_period"] == "2025-12"
    assert record["value"] == pytest.approx(0.25)  # L1 of four leads: 0.25, not 25
    assert record["target"] == pytest.approx(0.5)
    assert record["attainment"] == pytest.approx(0.5)
    assert record["status"] == "off track"
    assert record["as_of"] == "2026-01-31"  # the last lead: the cohort table's last day
    assert record["comparison"] is None and record["change"] is None


def _line(k: Kpi, points: list[tuple[float | None, bool]]) -> KpiResult:
    """A result whose trend is `points` as (value, maturing), one month each from January."""
    periods = [parse_period(f"2026-{m:02d}") for m in range(1, len(points) + 1)]
    trend = tuple(TrendPoint(p, v, None, maturing) for p, (v, maturing) in zip(periods, points, strict=True))
    return KpiResult(kpi=k, period=periods[-1], value=points[-1][0], comparison_period=periods[0], comparison=None,
                     target=None, attainment=None, status=Status.ON_TRACK, as_of=None, trend=trend)


@pytest.mark.parametrize(("direction", "points", "improved"), [
    # 10, 12, 11, 14 (mean 11.75): slope = ((-1.5)(-1.75) + (-0.5)(0.25) + (0.5)(-0.75) + (1.5)(2.25)) / 5 = 1.1 up
    (Direction.UP, [(10, False), (12, False), (11, False), (14, False)], True),
    (Direction.DOWN, [(10, False), (12, False), (11, False), (14, False)], False),
    # the lead-to-revenue case: the mature line 20, 21, 17, 16 ends at its lowest (slope -8 / 5 = -1.6 a month);
    # the maturing last point (50) is not part of the line
    (Direction.UP, [(20, False), (21, False), (17, False), (16, False), (50, True)], False),
    # 100, 100.2, 100.1: fitted change 0.1 over the span, below 1% of the level 100.1: flat
    (Direction.UP, [(100, False), (100.2, False), (100.1, False)], None),
    (Direction.UP, [(10, False), (None, False), (10, True)], None),  # one mature value: no line
    (None, [(10, False), (20, False)], None),  # no good way
])
def test_a_line_goes_the_kpis_good_way_by_its_slope(direction, points, improved):
    assert _line(kpi(direction), points).line_improved is improved


def test_the_line_leaves_out_maturing_and_partial_periods():
    line = _line(kpi(), [(5, False), (6, True), (7, False)])
    assert line.mature_trend == (5, 7)
