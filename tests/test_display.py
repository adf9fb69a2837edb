"""Numbers for people: each unit formatted as a reader expects, changes in the unit that makes sense."""
from __future__ import annotations

import pytest

from kpicore.catalog import Unit, parse_catalog
from kpicore.display import format_change, format_score, format_status, format_value
from kpicore.periods import parse_period
from kpicore.scorecard import KpiResult, Status

CATALOG = parse_catalog("""\
teams:
  - {id: service, label: Service}
measures:
  - id: tickets_reopened
    label: Reopened tickets
    description: Tickets resolved in the period that were reopened.
    unit: count
    simple:
      table: tickets
      time: resolved_at
      agg: count
      where: [{column: reopened, op: eq, value: true}]
kpis:
  - id: tickets_resolved
    label: Tickets resolved
    team: service
    description: Tickets resolved in the period.
    unit: count
    direction: up
    simple: {table: tickets, time: resolved_at, agg: count}
    target: {value: 1000}
  - id: reopen_rate
    label: Reopen rate
    team: service
    description: Share of resolved tickets that were reopened.
    unit: percent
    direction: down
    ratio: {numerator: tickets_reopened, denominator: tickets_resolved}
    target: {value: 0.08}
  - id: quality_score
    label: Quality score
    team: service
    description: 100 minus 100 times the reopen rate.
    unit: score
    direction: up
    derived: {expr: 100 - 100 * reopen_rate}
    target: {value: 90}
  - id: resolution_time
    label: Resolution time
    team: service
    description: Median hours from creation to resolution.
    unit: hours
    direction: down
    simple: {table: tickets, time: resolved_at, agg: median, duration: {from: created_at, to: resolved_at}}
    target: {value: 24}
  - id: service_revenue
    label: Service revenue
    team: service
    description: Recurring revenue in the period.
    unit: currency
    direction: up
    simple: {table: revenue, time: month, agg: sum, column: amount}
    target: {value: 50000}
  - id: revenue_per_ticket
    label: Revenue per ticket
    team: service
    description: Recurring revenue over tickets resolved.
    unit: ratio
    direction: up
    ratio: {numerator: service_revenue, denominator: tickets_resolved}
    target: {value: 3}
""")
PERIOD = parse_period("2026-10")


def result(kpi_id: str, value: float | None, comparison: float | None) -> KpiResult:
    """A scorecard line for a KPI of CATALOG in 2026-10, compared with 2026-09."""
    kpi = CATALOG.kpi(kpi_id)
    return KpiResult(kpi=kpi, period=PERIOD, value=value, comparison_period=PERIOD.shift(-1), comparison=comparison,
                     target=kpi.target_for("month"), attainment=None, status=Status.NO_DATA, as_of=None, trend=())


@pytest.mark.parametrize(("value", "unit", "currency", "expected"), [
    (0.123, Unit.PERCENT, "EUR", "12.3%"),
    (0.1234, Unit.PERCENT, "EUR", "12.3%"),
    (0.0, Unit.PERCENT, "EUR", "0.0%"),
    (1.05, Unit.PERCENT, "EUR", "105.0%"),
    (-0.05, Unit.PERCENT, "EUR", "-5.0%"),
    (1234, Unit.CURRENCY, "EUR", "€1,234"),
    (1234.56, Unit.CURRENCY, "EUR", "€1,235"),
    (1234567, Unit.CURRENCY, "EUR", "€1,234,567"),
    (100, Unit.CURRENCY, "EUR", "€100"),
    (99.5, Unit.CURRENCY, "EUR", "€99.50"),
    (12.5, Unit.CURRENCY, "EUR", "€12.50"),
    (-1500, Unit.CURRENCY, "EUR", "-€1,500"),
    (1234, Unit.CURRENCY, "USD", "$1,234"),
    (1234, Unit.CURRENCY, "GBP", "£1,234"),
    (1234, Unit.CURRENCY, "CHF", "CHF 1,234"),
    (1234, Unit.CURRENCY, "SEK", "SEK 1,234"),
    (18.5, Unit.HOURS, "EUR", "18.5 h"),
    (18.46, Unit.HOURS, "EUR", "18.5 h"),
    (4, Unit.HOURS, "EUR", "4.0 h"),
    (45, Unit.DAYS, "EUR", "45.0 d"),
    (12.25, Unit.DAYS, "EUR", "12.2 d"),  # 12.25 is exact in binary: rounds half to even
    (3.2, Unit.RATIO, "EUR", "3.20×"),
    (0.456, Unit.RATIO, "EUR", "0.46×"),
    (35.4, Unit.SCORE, "EUR", "35"),
    (-12.6, Unit.SCORE, "EUR", "-13"),
    (1234, Unit.COUNT, "EUR", "1,234"),
    (1234567, Unit.COUNT, "EUR", "1,234,567"),
    (3, Unit.COUNT, "EUR", "3"),
    (3.0, Unit.COUNT, "EUR", "3"),
    (2.5, Unit.COUNT, "EUR", "2.5"),
    (45.996, Unit.COUNT, "EUR", "46"),
    (0, Unit.COUNT, "EUR", "0"),
])
def test_format_value(value, unit, currency, expected):
    assert format_value(value, unit, currency) == expected


@pytest.mark.parametrize("unit", list(Unit))
def test_a_missing_value_is_a_dash(unit):
    assert format_value(None, unit) == "–"


@pytest.mark.parametrize(("kpi", "value", "comparison", "expected"), [
    ("reopen_rate", 0.30, 0.25, "+5.0 pp"),
    ("reopen_rate", 0.081, 0.1, "-1.9 pp"),
    ("quality_score", 40, 35, "+5 pts"),
    ("quality_score", 30, 42, "-12 pts"),
    ("tickets_resolved", 1100, 1000, "+10.0%"),
    ("tickets_resolved", 750, 1000, "-25.0%"),
    ("tickets_resolved", 5, 0, "+5.0"),  # no relative change from zero
    ("service_revenue", 900, 1000, "-10.0%"),
    ("resolution_time", 18, 24, "-25.0%"),
    ("revenue_per_ticket", 3.3, 3.0, "+10.0%"),
    ("tickets_resolved", 1000, 1000, "+0.0%"),
    ("tickets_resolved", 1000, None, None),
    ("tickets_resolved", None, 1000, None),
    ("reopen_rate", None, None, None),
    # the change shown is the difference of the two values shown: 26.6% and 31.1%, not -4.402 pp
    ("reopen_rate", 0.26649, 0.31051, "-4.5 pp"),
    ("quality_score", 32.4, 24.6, "+7 pts"),  # shown as 32 and 25, although 32.4 - 24.6 = 7.8
])
def test_format_change(kpi, value, comparison, expected):
    assert format_change(result(kpi, value, comparison)) == expected


def test_change_relative_to_a_negative_comparison_keeps_the_direction_of_the_change():
    # a rise from -200 to -100 is a rise: +50%, not -50%
    assert format_change(result("service_revenue", -100, -200)) == "+50.0%"


@pytest.mark.parametrize(("status", "expected"), [
    (Status.ON_TRACK, "🟢 on track"),
    (Status.AT_RISK, "🟠 at risk"),
    (Status.OFF_TRACK, "🔴 off track"),
    (Status.MATURING, "⏳ maturing"),
    (Status.NO_DATA, "⚪ no data"),
])
def test_format_status(status, expected):
    assert format_status(status) == expected


@pytest.mark.parametrize(("score", "expected"), [(0.876, "88%"), (1.2, "120%"), (0.0, "0%"), (None, "–")])
def test_format_score(score, expected):
    assert format_score(score) == expected


@pytest.mark.parametrize(("value", "unit", "target", "expected"), [
    (34.94, Unit.SCORE, 35, "34.9"),  # not "35" while at risk against 35
    (35.0, Unit.SCORE, 35, "35"),
    (0.98499, Unit.PERCENT, 0.985, "98.499%"),
    (0.9861, Unit.PERCENT, 0.985, "98.6%"),  # already reads apart
    (2.996, Unit.RATIO, 3.0, "2.996×"),
    (1000.2, Unit.COUNT, 1000, "1,000.2"),
    (34.94, Unit.SCORE, None, "35"),  # no target: as usual
])
def test_a_value_reads_apart_from_its_target_unless_it_is_it(value, unit, target, expected):
    assert format_value(value, unit, versus=target) == expected
