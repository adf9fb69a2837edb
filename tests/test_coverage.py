"""Which days the data covers, per table and per KPI: partial periods, the calendar, missing columns (by hand)."""
from __future__ import annotations

from datetime import date, datetime

import pytest
import yaml

from kpicore.catalog import Catalog, load_catalog, parse_catalog
from kpicore.compute import compute
from kpicore.coverage import Coverage, Loaded, Span, calendar, kpi_coverage, missing_columns, table_coverage
from kpicore.periods import Comparison, Grain, Period, parse_period
from kpicore.scorecard import Status, kpi_result


def day(text: str) -> date:
    return date.fromisoformat(text)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def labels(periods: list[Period] | tuple[Period, ...]) -> list[str]:
    return [p.label for p in periods]


# --- a period the data covers only in part ---------------------------------------------------------------


@pytest.mark.parametrize(("first", "last", "period", "partial"), [
    ("2016-10-20", "2017-12-31", "2016-10", True),  # an export that starts on the 20th: 19 days missing
    ("2016-10-03", "2017-12-31", "2016-10", False),  # 2 days missing: a tenth of October is 3 days
    ("2016-10-05", "2017-12-31", "2016-10", True),  # 4 days missing
    ("2016-10-20", "2017-12-31", "2016-11", False),
    ("2016-10-01", "2017-12-27", "2017-12", True),  # the month it was exported in: 4 days missing at the end
    ("2016-10-01", "2017-12-28", "2017-12", False),  # 3 days missing
    ("2016-10-01", "2017-12-31", "2017", False),
    ("2016-10-20", "2017-12-31", "2016", True),
    ("2017-01-20", "2017-12-31", "2017", False),  # 19 days of 365 missing: less than a tenth
    ("2017-03-01", "2017-12-31", "2017", True),  # January and February missing
    ("2026-01-06", "2026-01-31", "2026-W02", True),  # a week misses no day without being partial
    ("2026-01-05", "2026-01-31", "2026-W02", False),
    ("2026-01-05", "2026-01-10", "2026-W02", True),  # Sunday missing
])
def test_a_period_is_partial_when_the_data_misses_more_than_a_tenth_of_it(first, last, period, partial):
    assert Coverage(day(first), day(last)).partial(parse_period(period)) is partial


def test_a_status_only_export_covers_its_period_and_is_never_partial():
    stated = Coverage(day("2026-11-30"), day("2026-11-30"), status=True)
    assert stated.covers(parse_period("2026-11")) and not stated.partial(parse_period("2026-11"))
    assert not stated.covers(parse_period("2026-10"))
    # 30 November 2026 is the Monday of week 49
    assert stated.covers(parse_period("2026")) and stated.covers(parse_period("2026-W49"))
    assert not stated.covers(parse_period("2026-W48"))


@pytest.mark.parametrize(("period", "covers"), [("2016-09", False), ("2016-10", True), ("2017-12", True),
                                                 ("2018-01", False)])
def test_coverage_covers_the_periods_it_overlaps(period, covers):
    assert Coverage(day("2016-10-20"), day("2017-12-31")).covers(parse_period(period)) is covers


# --- the calendar ---------------------------------------------------------------------------------------


def test_the_calendar_runs_from_the_first_day_any_table_has_to_the_last():
    tables = {"opportunities": Coverage(day("2016-10-20"), day("2017-12-31")),
              "tickets": Coverage(day("2017-02-01"), day("2017-03-15"))}
    assert labels(calendar(tables, Grain.QUARTER)) == ["2016-Q4", "2017-Q1", "2017-Q2", "2017-Q3", "2017-Q4"]
    assert labels(calendar(tables, Grain.YEAR)) == ["2016", "2017"]
    assert len(calendar(tables, Grain.MONTH)) == 15  # October 2016 to December 2017
    assert calendar({}, Grain.MONTH) == []


def test_the_calendar_reaches_a_status_only_exports_period():
    tables = {"opportunities": Coverage(day("2017-01-02"), day("2017-02-27")),
              "customers": Coverage(day("2017-05-31"), day("2017-05-31"), status=True)}
    assert labels(calendar(tables, Grain.MONTH)) == ["2017-01", "2017-02", "2017-03", "2017-04", "2017-05"]


def test_a_table_covers_its_own_time_columns_first_day_to_any_time_columns_last():
    spans = {("opportunities", "created_at"): Span(day("2016-10-20"), day("2017-03-01")),
             ("opportunities", "closed_at"): Span(day("2017-03-01"), day("2017-12-31")),
             ("tickets", "resolved_at"): Span(day("2017-01-05"), day("2017-01-09"))}  # no created_at: the earliest
    found = table_coverage(spans, {"customers": day("2017-06-30")})
    assert found == {"opportunities": Coverage(day("2016-10-20"), day("2017-12-31")),
                     "tickets": Coverage(day("2017-01-05"), day("2017-01-09")),
                     "customers": Coverage(day("2017-06-30"), day("2017-06-30"), status=True)}


# --- a KPI's own coverage and the columns it needs -------------------------------------------------------


CATALOG = """
teams: [{id: sales, label: Sales}]
measures:
  - {id: at_start, label: At start, description: d, unit: count,
     stock: {table: customers, start: acquired_at, end: churned_at, at: start}}
  - {id: lost, label: Lost, description: d, unit: count, simple: {table: customers, time: churned_at, agg: count}}
  - {id: won_value, label: Won value, description: d, unit: currency,
     simple: {table: opportunities, time: closed_at, agg: sum, column: amount,
              where: [{column: stage, op: eq, value: won}]}}
  - {id: converted, label: Converted, description: d, unit: percent,
     conversion: {from: {table: leads, time: created_at}, to: {table: customers, time: acquired_at},
                  key: lead_id, window_days: 90}}
kpis:
  - {id: churn, label: Churn, description: d, team: customer, unit: percent, direction: down, target: {value: 0.02},
     ratio: {numerator: lost, denominator: at_start}}
  - {id: won, label: Won, description: d, team: sales, unit: currency, direction: up, target: {value: 1000},
     derived: {expr: won_value}}
"""


@pytest.fixture
def catalog() -> Catalog:
    return parse_catalog(CATALOG)


def by_id(catalog: Catalog) -> dict:
    return {k.id: k for k in catalog.kpis}


def test_a_stock_starts_no_earlier_than_the_first_churn_it_knows_of(catalog):
    spans = {("customers", "acquired_at"): Span(day("2021-01-03"), day("2026-10-31")),
             ("customers", "churned_at"): Span(day("2023-11-03"), day("2026-10-28"))}
    tables = table_coverage(spans, {})
    assert tables["customers"] == Coverage(day("2021-01-03"), day("2026-10-31"))
    # customers acquired since 2021, churns recorded since November 2023: before that nobody seems to leave
    assert kpi_coverage(catalog.kpi("churn"), by_id(catalog), spans, tables) == \
        Coverage(day("2023-11-03"), day("2026-10-31"))


def test_a_conversion_is_counted_by_its_cohorts_table(catalog):
    spans = {("leads", "created_at"): Span(day("2026-01-01"), day("2026-01-04")),
             ("customers", "acquired_at"): Span(day("2026-01-10"), day("2026-04-30"))}
    tables = table_coverage(spans, {})
    converted = catalog.kpi("converted")
    assert kpi_coverage(converted, by_id(catalog), spans, tables) == Coverage(day("2026-01-01"), day("2026-01-04"))
    assert kpi_coverage(converted, by_id(catalog), spans, {"leads": tables["leads"]}) is None  # no customers


def test_missing_columns_are_those_the_export_did_not_have(catalog):
    ids = by_id(catalog)
    no_amount = {"opportunities": Loaded(frozenset({"opportunity_id", "created_at", "stage", "closed_at"}))}
    assert missing_columns(catalog.kpi("won"), ids, no_amount) == [("opportunities", "amount")]
    assert missing_columns(catalog.kpi("won"), ids, {"opportunities": Loaded(None)}) == []  # None: every column
    assert missing_columns(catalog.kpi("won"), ids, {}) == []
    # a status-only customer list has no acquired_at: its export date stands in for the stock's start, not for
    # counting by it
    listed = {"customers": Loaded(frozenset({"customer_id", "churned", "churned_at"}), day("2026-11-30"))}
    assert missing_columns(catalog.kpi("churn"), ids, listed) == []
    dated = {"customers": Loaded(frozenset({"customer_id", "churned", "churned_at"}))}
    assert missing_columns(catalog.kpi("churn"), ids, dated) == [("customers", "acquired_at")]


# --- the same rules through compute, on tiny stores ---------------------------------------------------------


def test_a_column_the_export_lacked_gives_no_data_not_zero(memory_conn, tiny_store, catalog):
    schema = tiny_store({"opportunities": [
        {"opportunity_id": "O1", "created_at": ts("2026-01-01 09:00"), "stage": "won",
         "closed_at": ts("2026-01-31 09:00")},
    ]})
    columns = frozenset({"opportunity_id", "created_at", "stage", "closed_at"})
    values = compute(memory_conn, catalog, schema, Grain.MONTH, loaded={"opportunities": Loaded(columns)})
    jan = parse_period("2026-01")
    assert values.value("won", jan) is None  # SUM over an absent amount column would read 0
    assert values.notes["won"] == "No data: the loaded opportunities have no amount column."
    every = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert every.value("won", jan) == 0  # the column was loaded and is empty: no money won


def test_a_partial_first_period_is_shown_but_neither_judged_nor_compared(memory_conn, tiny_store, catalog):
    rows = [{"opportunity_id": f"O{i}", "created_at": ts("2016-10-20 09:00"), "stage": "won", "amount": amount,
             "closed_at": ts(f"{closed} 09:00")}
            for i, (closed, amount) in enumerate([("2016-10-25", 500.0), ("2016-11-10", 1200.0),
                                                  ("2016-11-30", 300.0), ("2016-12-31", 1000.0)])]
    values = compute(memory_conn, catalog, tiny_store({"opportunities": rows}), Grain.MONTH)
    october, november, december = (parse_period(p) for p in ("2016-10", "2016-11", "2016-12"))
    assert values.periods == (october, november, december)
    assert values.partial["won"] == {october}  # the export starts on 20 October
    first = kpi_result(catalog.kpi("won"), values, october, Comparison.PREVIOUS)
    assert (first.value, first.status) == (500.0, Status.PARTIAL)
    assert "Partial period" in first.note and "2016-10-20 to 2016-12-31" in first.note
    second = kpi_result(catalog.kpi("won"), values, november, Comparison.PREVIOUS)
    assert (second.value, second.status) == (1500.0, Status.ON_TRACK)  # 1200 + 300 against 1000
    assert second.comparison is None and second.change is None  # October is partial: no comparison
    assert second.note == "No change shown: its data covers 2016-10-20 to 2016-12-31, so 2016-10 is a partial period."
    assert values.latest() == december


def test_a_period_outside_a_kpis_data_says_what_its_data_covers(memory_conn, tiny_store, catalog):
    schema = tiny_store({
        "opportunities": [{"opportunity_id": "O1", "created_at": ts("2016-10-01 09:00"), "stage": "won",
                           "amount": 10.0, "closed_at": ts("2016-10-31 09:00")}],
        "tickets": [{"ticket_id": "T1", "created_at": ts("2017-03-01 09:00")},
                    {"ticket_id": "T2", "created_at": ts("2017-03-31 09:00")}],
    })
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert labels(values.periods) == ["2016-10", "2016-11", "2016-12", "2017-01", "2017-02", "2017-03"]
    march = kpi_result(catalog.kpi("won"), values, parse_period("2017-03"), Comparison.PREVIOUS)
    assert march.value is None and march.status is Status.NO_DATA
    assert march.note == "No data for 2017-03: its data covers 2016-10-01 to 2016-10-31."
    assert values.latest(["won"]) == parse_period("2016-10")  # the page's KPIs decide its default period


def test_monthly_numbers_dated_on_the_first_cover_their_whole_month(memory_conn, tiny_store):
    catalog = parse_catalog(yaml.safe_dump({"teams": [{"id": "marketing", "label": "Marketing"}], "kpis": [
        {"id": "visits", "label": "Visits", "description": "d", "team": "marketing", "unit": "count",
         "direction": "up", "target": {"value": 10},
         "simple": {"table": "team_metrics", "time": "date", "agg": "sum", "column": "value"}}]}))
    schema = tiny_store({"team_metrics": [
        {"date": ts("2026-09-01 00:00"), "team": "marketing", "metric": "visits", "value": 90.0},
        {"date": ts("2026-10-01 00:00"), "team": "marketing", "metric": "visits", "value": 120.0},
    ]})
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert labels(values.periods) == ["2026-09", "2026-10"]
    assert values.as_of["visits"] == day("2026-10-31") and not values.partial["visits"]
    assert values.value("visits", parse_period("2026-10")) == 120.0


def test_a_close_date_of_a_deal_still_open_is_a_plan_not_the_exports_last_day(memory_conn, tiny_store, catalog):
    schema = tiny_store({"opportunities": [
        {"opportunity_id": "O1", "created_at": ts("2026-01-02 09:00"), "stage": "won", "amount": 5.0,
         "closed_at": ts("2026-01-31 09:00")},
        {"opportunity_id": "O2", "created_at": ts("2026-01-03 09:00"), "stage": "open",
         "closed_at": ts("2026-06-30 09:00")},  # expected to close in June
    ]})
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert labels(values.periods) == ["2026-01"] and values.as_of["won"] == day("2026-01-31")


def test_a_year_sums_twelve_months_and_scales_the_target(memory_conn, tiny_store, catalog):
    rows = [{"opportunity_id": f"O{m}", "created_at": ts(f"2025-{m:02d}-01 09:00"), "stage": "won",
             "amount": 100.0 * m, "closed_at": ts(f"2025-{m:02d}-28 09:00")} for m in range(1, 13)]
    rows.append({"opportunity_id": "O13", "created_at": ts("2025-12-31 09:00"), "stage": "open"})
    values = compute(memory_conn, catalog, tiny_store({"opportunities": rows}), Grain.YEAR)
    year = parse_period("2025")
    assert values.periods == (year,)
    result = kpi_result(catalog.kpi("won"), values, year, Comparison.PREVIOUS)
    assert result.value == 7800.0  # 100 * (1 + 2 + ... + 12)
    # `won` is derived (not a plain count or sum), so its monthly target of 1000 is kept
    assert result.target == 1000.0


def test_counts_scale_their_monthly_target_to_a_year():
    shipped = load_catalog()
    assert shipped.kpi("leads").target_for("year") == 12 * 1000  # 1,000 leads a month
    assert shipped.kpi("churn_rate").target_for("year") == 0.166  # a rate: the catalog's own yearly target
