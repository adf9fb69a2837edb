"""Catalog to SQL to values: every formula type on tiny hand-made tables, worked out by hand."""
from __future__ import annotations

import re
from datetime import date, datetime

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpicore.catalog import Catalog, parse_catalog
from kpicore.compute import build_query, compute
from kpicore.errors import UnknownPeriod
from kpicore.periods import Grain, Period, parse_period

JAN, FEB, MAR = (parse_period(label) for label in ("2026-01", "2026-02", "2026-03"))


def measure(kpi_id: str, unit: str, **formula: object) -> dict[str, object]:
    """A catalog building block (no team or target needed) with one formula."""
    return {"id": kpi_id, "label": kpi_id, "description": f"Test KPI {kpi_id}.", "unit": unit, **formula}


def catalog_of(*measures: dict[str, object], parameters: dict[str, float] | None = None) -> Catalog:
    """A tiny catalog holding only the given building blocks."""
    document: dict[str, object] = {"teams": [{"id": "sales", "label": "Sales"}], "measures": list(measures), "kpis": []}
    if parameters:
        document["parameters"] = parameters
    return parse_catalog(yaml.safe_dump(document, sort_keys=False))


def count(table: str, time: str, where: list[dict[str, object]] | None = None) -> dict[str, object]:
    formula: dict[str, object] = {"table": table, "time": time, "agg": "count"}
    if where:
        formula["where"] = where
    return {"simple": formula}


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def labels(periods: tuple[Period, ...]) -> list[str]:
    return [p.label for p in periods]


# --- simple aggregates ---------------------------------------------------------------------------------


def test_count_puts_rows_on_the_boundary_into_the_period_that_starts_there(memory_conn, tiny_store):
    catalog = catalog_of(measure("leads", "count", **count("leads", "created_at")))
    schema = tiny_store({"leads": [
        {"lead_id": "L1", "created_at": ts("2026-01-01 00:00:00")},  # exactly at January's start: January
        {"lead_id": "L2", "created_at": ts("2026-01-15 12:00:00")},
        {"lead_id": "L3", "created_at": ts("2026-01-31 23:59:59")},  # last second of January
        {"lead_id": "L4", "created_at": ts("2026-02-01 00:00:00")},  # exactly at January's end: February
        {"lead_id": "L5", "created_at": ts("2026-02-28 12:00:00")},  # February's last day: February is complete
    ]})
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert values.periods == (JAN, FEB)
    assert values.value("leads", JAN) == 3  # L1, L2, L3
    assert values.value("leads", FEB) == 2  # L4, L5


def test_count_distinct_counts_each_value_once_and_ignores_null(memory_conn, tiny_store):
    catalog = catalog_of(measure("askers", "count", simple={
        "table": "tickets", "time": "created_at", "agg": "count_distinct", "column": "customer_id"}))
    schema = tiny_store({"tickets": [
        {"ticket_id": "T1", "created_at": ts("2026-01-03 09:00"), "customer_id": "C1"},
        {"ticket_id": "T2", "created_at": ts("2026-01-04 09:00"), "customer_id": "C1"},
        {"ticket_id": "T3", "created_at": ts("2026-01-05 09:00"), "customer_id": "C2"},
        {"ticket_id": "T4", "created_at": ts("2026-01-06 09:00"), "customer_id": None},
        {"ticket_id": "T5", "created_at": ts("2026-02-28 09:00"), "customer_id": "C1"},
    ]})
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert values.value("askers", JAN) == 2  # C1 (twice), C2; the ticket without customer is not one
    assert values.value("askers", FEB) == 1  # C1 again: distinct within the period only


def test_sum_is_zero_for_a_period_without_rows(memory_conn, tiny_store):
    catalog = catalog_of(measure("pipeline", "currency", simple={
        "table": "opportunities", "time": "created_at", "agg": "sum", "column": "amount"}))
    schema = tiny_store({"opportunities": [
        {"opportunity_id": "O1", "created_at": ts("2026-01-05 10:00"), "amount": 100.0},
        {"opportunity_id": "O2", "created_at": ts("2026-01-20 10:00"), "amount": 250.5},
        {"opportunity_id": "O3", "created_at": ts("2026-01-21 10:00"), "amount": None},
        {"opportunity_id": "O4", "created_at": ts("2026-03-31 10:00"), "amount": 40.0},
    ]})
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert values.periods == (JAN, FEB, MAR)
    assert values.value("pipeline", JAN) == pytest.approx(350.5)  # 100 + 250.5, the NULL amount adds nothing
    assert values.value("pipeline", FEB) == 0  # no deal at all in February: 0, not "no data"
    assert values.value("pipeline", MAR) == pytest.approx(40.0)


def test_avg_ignores_null(memory_conn, tiny_store):
    catalog = catalog_of(measure("csat_avg", "score", simple={
        "table": "tickets", "time": "created_at", "agg": "avg", "column": "csat"}))
    schema = tiny_store({"tickets": [
        {"ticket_id": "T1", "created_at": ts("2026-01-02 09:00"), "csat": 5},
        {"ticket_id": "T2", "created_at": ts("2026-01-03 09:00"), "csat": 4},
        {"ticket_id": "T3", "created_at": ts("2026-01-04 09:00"), "csat": None},
        {"ticket_id": "T4", "created_at": ts("2026-01-31 09:00"), "csat": 2},
    ]})
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert values.value("csat_avg", JAN) == pytest.approx(11 / 3)  # (5 + 4 + 2) / 3, the unrated ticket left out


def test_median_interpolates_an_even_number_of_rows(memory_conn, tiny_store):
    catalog = catalog_of(measure("median_deal", "currency", simple={
        "table": "opportunities", "time": "created_at", "agg": "median", "column": "amount"}))
    schema = tiny_store({"opportunities": [
        {"opportunity_id": "O1", "created_at": ts("2026-01-02 10:00"), "amount": 2000.0},
        {"opportunity_id": "O2", "created_at": ts("2026-01-03 10:00"), "amount": 100.0},
        {"opportunity_id": "O3", "created_at": ts("2026-01-04 10:00"), "amount": 1000.0},
        {"opportunity_id": "O4", "created_at": ts("2026-01-05 10:00"), "amount": 300.0},
        {"opportunity_id": "O5", "created_at": ts("2026-02-02 10:00"), "amount": 50.0},
        {"opportunity_id": "O6", "created_at": ts("2026-02-03 10:00"), "amount": 5.0},
        {"opportunity_id": "O7", "created_at": ts("2026-02-28 10:00"), "amount": 7.0},
    ]})
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert values.value("median_deal", JAN) == pytest.approx(650.0)  # 100, 300 | 1000, 2000 -> (300 + 1000) / 2
    assert values.value("median_deal", FEB) == pytest.approx(7.0)  # 5, 7, 50 -> the middle one


@pytest.mark.parametrize(("unit", "expected_jan", "expected_feb"), [
    ("hours", 27.0, 60.0),  # Jan: (6 h + 48 h) / 2; Feb: 60 h
    ("days", 1.125, 2.5),  # the same in days: 27 / 24, 60 / 24
])
def test_duration_in_hours_and_days(memory_conn, tiny_store, unit, expected_jan, expected_feb):
    catalog = catalog_of(measure("resolution", unit, simple={
        "table": "tickets", "time": "created_at", "agg": "avg",
        "duration": {"from": "created_at", "to": "resolved_at"}}))
    schema = tiny_store({"tickets": [
        {"ticket_id": "T1", "created_at": ts("2026-01-05 10:00"), "resolved_at": ts("2026-01-05 16:00")},  # 6 h
        {"ticket_id": "T2", "created_at": ts("2026-01-10 00:00"), "resolved_at": ts("2026-01-12 00:00")},  # 48 h
        {"ticket_id": "T3", "created_at": ts("2026-01-20 00:00"), "resolved_at": None},  # still open: left out
        {"ticket_id": "T4", "created_at": ts("2026-02-28 00:00"), "resolved_at": ts("2026-03-02 12:00")},  # 60 h
    ]})
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert values.value("resolution", JAN) == pytest.approx(expected_jan)
    assert values.value("resolution", FEB) == pytest.approx(expected_feb)


FILTER_ROWS = {"opportunities": [
    {"opportunity_id": "O1", "created_at": ts("2026-01-02 10:00"), "stage": "won", "amount": 100.0},
    {"opportunity_id": "O2", "created_at": ts("2026-01-03 10:00"), "stage": "lost", "amount": 200.0},
    {"opportunity_id": "O3", "created_at": ts("2026-01-04 10:00"), "stage": "open", "amount": None},
    {"opportunity_id": "O4", "created_at": ts("2026-01-31 10:00"), "stage": None, "amount": 300.0},
]}


@pytest.mark.parametrize(("condition", "expected"), [
    ({"column": "stage", "op": "eq", "value": "won"}, 1),  # O1
    ({"column": "stage", "op": "ne", "value": "won"}, 2),  # O2, O3; a NULL stage matches no comparison
    ({"column": "stage", "op": "in", "value": ["won", "lost"]}, 2),  # O1, O2
    ({"column": "stage", "op": "not_in", "value": ["won", "lost"]}, 1),  # O3; NULL is not "not in" either
    ({"column": "amount", "op": "gt", "value": 100}, 2),  # 200, 300
    ({"column": "amount", "op": "ge", "value": 100}, 3),  # 100, 200, 300; the NULL amount never compares
    ({"column": "amount", "op": "lt", "value": 300}, 2),  # 100, 200
    ({"column": "amount", "op": "le", "value": 100}, 1),  # 100
    ({"column": "amount", "op": "is_null"}, 1),  # O3
    ({"column": "amount", "op": "not_null"}, 3),  # O1, O2, O4
    ({"column": "stage", "op": "is_null"}, 1),  # O4
], ids=lambda case: case["op"] if isinstance(case, dict) else None)
def test_filter_operators(memory_conn, tiny_store, condition, expected):
    catalog = catalog_of(measure("deals", "count", **count("opportunities", "created_at", [condition])))
    schema = tiny_store(FILTER_ROWS)
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert values.value("deals", JAN) == expected


def test_several_conditions_must_all_hold(memory_conn, tiny_store):
    catalog = catalog_of(measure("deals", "count", **count("opportunities", "created_at", [
        {"column": "stage", "op": "in", "value": ["won", "lost"]},
        {"column": "amount", "op": "ge", "value": 150},
    ])))
    values = compute(memory_conn, catalog, tiny_store(FILTER_ROWS), Grain.MONTH)
    assert values.value("deals", JAN) == 1  # only O2 (lost, 200) is won/lost and >= 150


# --- stock -----------------------------------------------------------------------------------------------


def test_stock_at_start_and_end_of_period(memory_conn, tiny_store):
    def stock(at: str) -> dict[str, object]:
        return {"stock": {"table": "customers", "start": "acquired_at", "end": "churned_at", "at": at}}

    catalog = catalog_of(measure("at_start", "count", **stock("start")), measure("at_end", "count", **stock("end")))
    schema = tiny_store({"customers": [
        # acquired and gone in December's first days: churns are known from 2 December on
        {"customer_id": "C0", "acquired_at": ts("2025-12-01 00:00"), "churned_at": ts("2025-12-02 00:00")},
        # active since before the period, never churned
        {"customer_id": "C1", "acquired_at": ts("2025-12-10 10:00"), "churned_at": None},
        # churned on January's first day: still a customer at the start, gone at the end
        {"customer_id": "C2", "acquired_at": ts("2025-12-01 00:00"), "churned_at": ts("2026-01-01 00:00")},
        # acquired exactly at January's start: a new customer of January, not one at its start
        {"customer_id": "C3", "acquired_at": ts("2026-01-01 00:00"), "churned_at": None},
        # churned exactly when January ends: lost in February, so still counted at the end of January
        {"customer_id": "C4", "acquired_at": ts("2026-01-15 00:00"), "churned_at": ts("2026-02-01 00:00")},
        # acquired on January's last day
        {"customer_id": "C5", "acquired_at": ts("2026-01-31 18:00"), "churned_at": None},
    ]})
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    dec, jan = parse_period("2025-12"), JAN
    assert values.periods == (dec, jan, FEB)  # C4's churn on 1 February is the data's last day
    assert values.partial["at_start"] == {FEB}  # of February only its first day is known
    assert values.value("at_start", dec) == 0  # nobody before 1 December (C0 starts at that moment)
    assert values.value("at_end", dec) == 2  # C1, C2 (C0 left; C2 churns on 1 January, after the moment)
    assert values.value("at_start", jan) == 2  # C1, C2
    assert values.value("at_end", jan) == 4  # C1, C3, C4, C5


def test_stock_with_a_filter(memory_conn, tiny_store):
    catalog = catalog_of(measure("smb_at_end", "count", stock={
        "table": "customers", "start": "acquired_at", "end": "churned_at", "at": "end",
        "where": [{"column": "segment", "op": "eq", "value": "SMB"}]}))
    schema = tiny_store({"customers": [
        {"customer_id": "C1", "acquired_at": ts("2026-01-02 10:00"), "segment": "SMB"},
        {"customer_id": "C2", "acquired_at": ts("2026-01-03 10:00"), "segment": "Enterprise"},
        {"customer_id": "C3", "acquired_at": ts("2026-01-31 10:00"), "segment": "SMB",
         "churned_at": ts("2026-01-31 12:00")},
    ]})
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert values.value("smb_at_end", JAN) == 1  # C1; C2 is not SMB, C3 churned before the end


# --- ratio and derived ------------------------------------------------------------------------------


RATIO_CATALOG = (
    measure("won", "count", **count("opportunities", "closed_at", [{"column": "stage", "op": "eq", "value": "won"}])),
    measure("closed", "count", **count("opportunities", "closed_at",
                                       [{"column": "stage", "op": "in", "value": ["won", "lost"]}])),
    measure("win_rate", "percent", ratio={"numerator": "won", "denominator": "closed"}),
)
RATIO_ROWS = {"opportunities": [
    {"opportunity_id": o, "created_at": ts(created), "stage": stage, "closed_at": closed and ts(closed)}
    for o, created, stage, closed in [
        ("O1", "2026-01-02 10:00", "won", "2026-01-05 10:00"),
        ("O2", "2026-01-03 10:00", "lost", "2026-01-10 11:00"),
        ("O3", "2026-01-04 10:00", "lost", "2026-01-20 12:00"),
        ("O4", "2026-02-28 10:00", "open", None),  # still open: makes February complete, closes nothing
    ]
]}


def test_ratio_divides_and_gives_none_on_zero_denominator(memory_conn, tiny_store):
    values = compute(memory_conn, catalog_of(*RATIO_CATALOG), tiny_store(RATIO_ROWS), Grain.MONTH)
    assert values.periods == (JAN, FEB)
    assert values.value("win_rate", JAN) == pytest.approx(1 / 3)  # 1 won of 3 closed
    assert values.value("closed", FEB) == 0
    assert values.value("win_rate", FEB) is None  # 0 / 0: no deal closed in February


@pytest.mark.parametrize(("expr", "expected_jan", "expected_feb"), [
    ("closed * margin", 1.5, 0.0),  # 3 * 0.5; 0 * 0.5
    ("won * 2 + 1", 3.0, 1.0),  # 1 * 2 + 1; 0 * 2 + 1
    ("-(closed - won) / 4", -0.5, 0.0),  # -(3 - 1) / 4; -(0 - 0) / 4
    ("won / closed * 100", 100 / 3, None),  # division by zero in February: no value
])
def test_derived_with_parameters_and_constants(memory_conn, tiny_store, expr, expected_jan, expected_feb):
    catalog = catalog_of(*RATIO_CATALOG, measure("derived", "ratio", derived={"expr": expr}),
                         parameters={"margin": 0.5})
    values = compute(memory_conn, catalog, tiny_store(RATIO_ROWS), Grain.MONTH)
    assert values.value("derived", JAN) == pytest.approx(expected_jan)
    if expected_feb is None:
        assert values.value("derived", FEB) is None
    else:
        assert values.value("derived", FEB) == pytest.approx(expected_feb)


# --- conversion --------------------------------------------------------------------------------------------


def conversion(window_days: int = 30, **extra: object) -> dict[str, object]:
    return {"conversion": {"from": {"table": "leads", "time": "created_at"},
                           "to": {"table": "customers", "time": "acquired_at"},
                           "key": "lead_id", "window_days": window_days, **extra}}


def test_conversion_counts_targets_inside_the_window_after_the_source(memory_conn, tiny_store):
    catalog = catalog_of(measure("lead_to_customer", "percent", **conversion(30)))
    schema = tiny_store({
        "leads": [
            {"lead_id": "L1", "created_at": ts("2026-01-05 10:00")},
            {"lead_id": "L2", "created_at": ts("2026-01-10 10:00")},
            {"lead_id": "L3", "created_at": ts("2026-01-15 10:00")},
            {"lead_id": "L4", "created_at": ts("2026-01-20 10:00")},
            {"lead_id": "L5", "created_at": ts("2026-01-31 10:00")},
        ],
        "customers": [
            {"customer_id": "C1", "lead_id": "L1", "acquired_at": ts("2026-01-20 10:00")},  # 15 days: converts
            {"customer_id": "C2", "lead_id": "L2", "acquired_at": ts("2026-03-01 10:00")},  # 50 days: too late
            {"customer_id": "C3", "lead_id": "L3", "acquired_at": ts("2026-01-10 10:00")},  # before the lead
            {"customer_id": "C4", "lead_id": "L9", "acquired_at": ts("2026-01-25 10:00")},  # another lead's
        ],
    })
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert values.periods == (JAN, FEB, MAR)  # to C2's acquisition on 1 March
    assert values.value("lead_to_customer", JAN) == pytest.approx(1 / 5)  # only L1 of L1..L5
    # the cohorts are the leads, which end on 31 January: no cohort after it
    assert values.value("lead_to_customer", FEB) is None and values.value("lead_to_customer", MAR) is None


def test_conversion_with_value_sums_the_cohort_value_per_entity(memory_conn, tiny_store):
    catalog = catalog_of(measure("lead_to_revenue", "currency", conversion={
        "from": {"table": "leads", "time": "created_at"},
        "to": {"table": "opportunities", "time": "closed_at",
               "where": [{"column": "stage", "op": "eq", "value": "won"}]},
        "key": "lead_id", "window_days": 90, "value": "amount"}))
    schema = tiny_store({
        "leads": [
            {"lead_id": "L1", "created_at": ts("2026-01-05 10:00")},
            {"lead_id": "L2", "created_at": ts("2026-01-10 10:00")},
            {"lead_id": "L3", "created_at": ts("2026-01-31 10:00")},
        ],
        "opportunities": [
            {"opportunity_id": "O1", "created_at": ts("2026-01-06 10:00"), "lead_id": "L1", "stage": "won",
             "closed_at": ts("2026-01-20 10:00"), "amount": 1000.0},
            {"opportunity_id": "O2", "created_at": ts("2026-01-07 10:00"), "lead_id": "L1", "stage": "won",
             "closed_at": ts("2026-02-10 10:00"), "amount": 500.0},
            {"opportunity_id": "O3", "created_at": ts("2026-01-11 10:00"), "lead_id": "L2", "stage": "lost",
             "closed_at": ts("2026-01-25 10:00"), "amount": 700.0},
            {"opportunity_id": "O4", "created_at": ts("2026-01-31 11:00"), "lead_id": "L3", "stage": "won",
             "closed_at": ts("2026-06-01 10:00"), "amount": 9999.0},
        ],
    })
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    # L1 won 1000 + 500 within 90 days, L2's deal was lost, L3's deal came after 121 days: 1500 / 3 leads
    assert values.value("lead_to_revenue", JAN) == pytest.approx(500.0)


def test_a_lead_that_reached_two_targets_counts_once(memory_conn, tiny_store):
    catalog = catalog_of(measure("lead_to_opportunity", "percent", conversion={
        "from": {"table": "leads", "time": "created_at"}, "to": {"table": "opportunities", "time": "created_at"},
        "key": "lead_id", "window_days": 30}))
    schema = tiny_store({
        "leads": [{"lead_id": "L1", "created_at": ts("2026-01-05 10:00")},
                  {"lead_id": "L2", "created_at": ts("2026-01-31 10:00")}],
        "opportunities": [
            {"opportunity_id": "O1", "created_at": ts("2026-01-06 10:00"), "lead_id": "L1"},
            {"opportunity_id": "O2", "created_at": ts("2026-01-09 10:00"), "lead_id": "L1"},  # L1's second one
        ],
    })
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert values.value("lead_to_opportunity", JAN) == pytest.approx(1 / 2)  # L1 of L1, L2; not 2 of 2


def test_a_source_table_without_ids_counts_each_key_once(memory_conn, tiny_store):
    """Touches have no id of their own: the touched customers are counted, each once."""
    catalog = catalog_of(measure("touched_to_customer", "percent", conversion={
        "from": {"table": "touches", "time": "occurred_at"}, "to": {"table": "customers", "time": "acquired_at"},
        "key": "customer_id", "window_days": 30}))
    schema = tiny_store({
        "touches": [
            {"customer_id": "C1", "occurred_at": ts("2026-01-05 10:00"), "team": "sales"},
            {"customer_id": "C1", "occurred_at": ts("2026-01-06 10:00"), "team": "sales"},  # C1 again
            {"customer_id": "C2", "occurred_at": ts("2026-01-10 10:00"), "team": "sales"},
            {"customer_id": "C3", "occurred_at": ts("2026-01-31 10:00"), "team": "sales"},
        ],
        "customers": [
            {"customer_id": "C1", "acquired_at": ts("2026-01-20 10:00")},  # within 30 days of both touches
            {"customer_id": "C2", "acquired_at": ts("2026-03-30 10:00")},  # 79 days: too late
        ],
    })
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert values.value("touched_to_customer", JAN) == pytest.approx(1 / 3)  # C1 of C1, C2, C3


@pytest.mark.parametrize(("last_target", "expected"), [
    # window 30 days; a period is maturing while its end + 30 days > last target date + 1 day
    ("2026-03-30", ["2026-03"]),  # February: 1 Mar + 30 = 31 Mar = 30 Mar + 1 day, just mature
    ("2026-03-29", ["2026-02", "2026-03"]),  # 31 Mar > 30 Mar: February still maturing
    ("2026-01-20", ["2026-01", "2026-02", "2026-03"]),  # January: 1 Feb + 30 = 3 Mar > 21 Jan
])
def test_maturing_periods_of_a_conversion_propagate_to_ratio_and_derived(memory_conn, tiny_store,
                                                                         last_target, expected):
    catalog = catalog_of(
        measure("conv", "percent", **conversion(30)),
        measure("leads", "count", **count("leads", "created_at")),
        measure("conv_per_lead", "ratio", ratio={"numerator": "conv", "denominator": "leads"}),
        measure("conv_pct", "score", derived={"expr": "conv * 100"}),
    )
    schema = tiny_store({
        "leads": [
            {"lead_id": "L1", "created_at": ts("2026-01-05 10:00")},
            {"lead_id": "L2", "created_at": ts("2026-02-05 10:00")},
            {"lead_id": "L3", "created_at": ts("2026-03-31 10:00")},
        ],
        "customers": [
            {"customer_id": "C1", "lead_id": "L1", "acquired_at": ts("2026-01-04 10:00")},
            {"customer_id": "C2", "lead_id": "L2", "acquired_at": ts(f"{last_target} 10:00")},
        ],
    })
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert labels(values.periods) == ["2026-01", "2026-02", "2026-03"]
    for kpi_id in ("conv", "conv_per_lead", "conv_pct"):
        assert sorted(p.label for p in values.maturing[kpi_id]) == expected, kpi_id
    assert values.maturing["leads"] == frozenset()  # a plain count never matures


# --- net retention ---------------------------------------------------------------------------------------


def test_net_retention_counts_expansion_contraction_and_churn_but_not_new_customers(memory_conn, tiny_store):
    catalog = catalog_of(measure("nrr", "percent", net_retention={
        "table": "revenue", "key": "customer_id", "time": "month", "value": "amount"}))
    schema = tiny_store({"revenue": [
        {"customer_id": "A", "month": date(2026, 1, 1), "amount": 100.0},
        {"customer_id": "B", "month": date(2026, 1, 1), "amount": 100.0},
        {"customer_id": "C", "month": date(2026, 1, 1), "amount": 100.0},
        {"customer_id": "A", "month": date(2026, 2, 1), "amount": 150.0},  # expansion
        {"customer_id": "B", "month": date(2026, 2, 1), "amount": 80.0},  # contraction
        # C churned: no row in February, counts 0
        {"customer_id": "D", "month": date(2026, 2, 1), "amount": 500.0},  # new: not in the base
    ]})
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert values.periods == (JAN, FEB)
    assert values.value("nrr", JAN) is None  # nobody paid in December: no base
    assert values.value("nrr", FEB) == pytest.approx(230 / 300)  # (150 + 80 + 0) / (100 + 100 + 100)


# --- grains ---------------------------------------------------------------------------------------------------


def test_week_grain_leaves_kpis_on_monthly_tables_empty_with_a_note(memory_conn, tiny_store):
    catalog = catalog_of(
        measure("leads", "count", **count("leads", "created_at")),
        measure("revenue", "currency", simple={"table": "revenue", "time": "month", "agg": "sum", "column": "amount"}),
        measure("revenue_per_lead", "currency", ratio={"numerator": "revenue", "denominator": "leads"}),
    )
    schema = tiny_store({
        "leads": [
            {"lead_id": "L1", "created_at": ts("2026-01-05 10:00")},  # Monday of 2026-W02
            {"lead_id": "L2", "created_at": ts("2026-01-06 10:00")},
            {"lead_id": "L3", "created_at": ts("2026-01-18 10:00")},  # Sunday of 2026-W03
        ],
        "revenue": [{"customer_id": "A", "month": date(2026, 1, 1), "amount": 100.0}],
    })
    values = compute(memory_conn, catalog, schema, Grain.WEEK)
    # from the week of 1 Jan (revenue's month starts) to the week of 31 Jan (revenue's month end)
    assert labels(values.periods) == ["2026-W01", "2026-W02", "2026-W03", "2026-W04", "2026-W05"]
    # W01 ends before the first lead (5 Jan), W04 starts after the last one (18 Jan): unknown, not 0
    assert [values.value("leads", p) for p in values.periods] == [None, 2, 1, None, None]
    for kpi_id in ("revenue", "revenue_per_lead"):
        assert all(values.value(kpi_id, p) is None for p in values.periods), kpi_id
        assert "month" in values.notes[kpi_id], kpi_id
    assert "leads" not in values.notes


def test_quarter_grain_sums_three_months(memory_conn, tiny_store):
    catalog = catalog_of(
        measure("revenue", "currency", simple={"table": "revenue", "time": "month", "agg": "sum", "column": "amount"}),
    )
    schema = tiny_store({"revenue": [
        {"customer_id": "A", "month": date(2026, 1, 1), "amount": 100.0},
        {"customer_id": "A", "month": date(2026, 2, 1), "amount": 200.0},
        {"customer_id": "B", "month": date(2026, 3, 1), "amount": 300.0},
    ]})
    monthly = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert [monthly.value("revenue", p) for p in monthly.periods] == [100, 200, 300]
    quarterly = compute(memory_conn, catalog, schema, Grain.QUARTER)
    assert labels(quarterly.periods) == ["2026-Q1"]
    assert quarterly.value("revenue", parse_period("2026-Q1")) == 600  # 100 + 200 + 300


# --- as-of dates and the calendar -------------------------------------------------------------------------------


def test_as_of_is_the_stalest_source_and_later_periods_have_no_value(memory_conn, tiny_store):
    catalog = catalog_of(
        measure("leads", "count", **count("leads", "created_at")),
        measure("revenue", "currency", simple={"table": "revenue", "time": "month", "agg": "sum", "column": "amount"}),
        measure("revenue_per_lead", "currency", ratio={"numerator": "revenue", "denominator": "leads"}),
        measure("tickets", "count", **count("tickets", "created_at")),
    )
    schema = tiny_store({
        "leads": [
            {"lead_id": "L1", "created_at": ts("2026-01-10 10:00")},
            {"lead_id": "L2", "created_at": ts("2026-02-10 10:00")},
            {"lead_id": "L3", "created_at": ts("2026-03-31 18:00")},
        ],
        "revenue": [
            {"customer_id": "A", "month": date(2026, 1, 1), "amount": 100.0},
            {"customer_id": "A", "month": date(2026, 2, 1), "amount": 120.0},  # revenue stops in February
        ],
    })
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert values.periods == (JAN, FEB, MAR)
    assert values.as_of["leads"] == date(2026, 3, 31)  # the timestamp's day
    assert values.as_of["revenue"] == date(2026, 2, 28)  # a month column counts to the month's end
    assert values.as_of["revenue_per_lead"] == date(2026, 2, 28)  # the stalest of its two tables
    assert values.as_of["tickets"] is None  # no ticket at all
    assert values.value("leads", MAR) == 1
    assert values.value("revenue", FEB) == 120
    assert values.value("revenue", MAR) is None  # starts after revenue's as-of date: unknown, not 0
    assert values.value("revenue_per_lead", FEB) == 120  # 120 / 1 lead
    assert values.value("revenue_per_lead", MAR) is None
    assert [values.value("tickets", p) for p in values.periods] == [None, None, None]


@pytest.mark.parametrize(("leads", "tickets", "expected"), [
    # from the period of the first day any table has data for to the period of the last such day
    (["2026-01-10", "2026-04-15"], ["2026-02-20", "2026-03-31"], ["2026-01", "2026-02", "2026-03", "2026-04"]),
    (["2026-01-10", "2026-03-31"], [], ["2026-01", "2026-02", "2026-03"]),  # empty tables do not count
    (["2026-01-31"], [], ["2026-01"]),  # one day
    (["2026-01-10", "2026-02-10"], ["2026-01-05", "2026-03-31"], ["2026-01", "2026-02", "2026-03"]),
    (["2025-11-20", "2025-11-30"], ["2026-02-01", "2026-02-28"], ["2025-11", "2025-12", "2026-01", "2026-02"]),
])
def test_calendar_spans_every_period_any_table_reaches(memory_conn, tiny_store, leads, tickets, expected):
    catalog = catalog_of(measure("leads", "count", **count("leads", "created_at")))
    schema = tiny_store({
        "leads": [{"lead_id": f"L{i}", "created_at": ts(f"{day} 12:00")} for i, day in enumerate(leads)],
        "tickets": [{"ticket_id": f"T{i}", "created_at": ts(f"{day} 12:00")} for i, day in enumerate(tickets)],
    })
    assert labels(compute(memory_conn, catalog, schema, Grain.MONTH).periods) == expected


def test_empty_store_has_no_periods_and_no_latest(memory_conn, tiny_store):
    catalog = catalog_of(measure("leads", "count", **count("leads", "created_at")))
    values = compute(memory_conn, catalog, tiny_store({}), Grain.MONTH)
    assert values.periods == ()
    assert values.value("leads", JAN) is None
    with pytest.raises(UnknownPeriod, match="load some exports"):
        values.latest()
    with pytest.raises(UnknownPeriod):
        values.check(JAN)


def test_check_names_the_data_range(memory_conn, tiny_store):
    catalog = catalog_of(measure("leads", "count", **count("leads", "created_at")))
    schema = tiny_store({"leads": [
        {"lead_id": "L1", "created_at": ts("2026-01-10 10:00")},
        {"lead_id": "L2", "created_at": ts("2026-02-28 10:00")},
    ]})
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert values.check(FEB) == FEB
    assert values.latest() == FEB
    with pytest.raises(UnknownPeriod) as raised:
        values.check(parse_period("2025-12"))
    message = str(raised.value)
    assert "2025-12" in message and "2026-01" in message and "2026-02" in message


# --- SQL safety -------------------------------------------------------------------------------------------


NASTY = "x'); DROP TABLE leads; --"


def test_filter_values_are_bound_parameters_never_sql_text(memory_conn, tiny_store):
    catalog = catalog_of(
        measure("nasty_eq", "count", **count("leads", "created_at",
                                             [{"column": "channel", "op": "eq", "value": NASTY}])),
        measure("nasty_in", "count", **count("leads", "created_at",
                                             [{"column": "campaign", "op": "not_in", "value": [NASTY, "o'brien"]}])),
    )
    schema = tiny_store({"leads": [
        {"lead_id": "L1", "created_at": ts("2026-01-05 10:00"), "channel": NASTY, "campaign": "o'brien"},
        {"lead_id": "L2", "created_at": ts("2026-01-31 10:00"), "channel": "email", "campaign": "Spring"},
    ]})
    sql, params = build_query(catalog, Grain.MONTH, [JAN], schema)
    assert NASTY not in sql and "DROP TABLE" not in sql and "o'brien" not in sql
    assert NASTY in params.values() and "o'brien" in params.values()
    # every bound value is referenced as $pN, and every $pN is bound
    assert set(re.findall(r"\$(p\d+)\b", sql)) == set(params)
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    assert values.value("nasty_eq", JAN) == 1  # L1, whose channel is the odd text itself
    assert values.value("nasty_in", JAN) == 1  # L2
    assert memory_conn.execute(f'SELECT COUNT(*) FROM "{schema}"."leads"').fetchone() == (2,)


# --- property -------------------------------------------------------------------------------------------------

ROWS = st.lists(
    st.tuples(st.integers(min_value=0, max_value=58), st.booleans(), st.integers(min_value=0, max_value=1000)),
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=ROWS, order=st.randoms(use_true_random=False))
def test_ratio_equals_sum_of_numerator_over_sum_of_denominator(memory_conn, tiny_store, rows, order):
    catalog = catalog_of(
        measure("won_amount", "currency", simple={
            "table": "opportunities", "time": "created_at", "agg": "sum", "column": "amount",
            "where": [{"column": "stage", "op": "eq", "value": "won"}]}),
        measure("all_amount", "currency", simple={
            "table": "opportunities", "time": "created_at", "agg": "sum", "column": "amount"}),
        measure("won_share", "percent", ratio={"numerator": "won_amount", "denominator": "all_amount"}),
    )
    rows = [*rows, (58, False, 1)]  # 28 February: both months complete
    records = [
        {"opportunity_id": f"O{i}", "created_at": _day(day), "stage": "won" if won else "lost",
         "amount": float(amount)}
        for i, (day, won, amount) in enumerate(rows)
    ]
    order.shuffle(records)
    values = compute(memory_conn, catalog, tiny_store({"opportunities": records}, schema="prop"), Grain.MONTH)
    for period in values.periods:
        inside = [(won, amount) for day, won, amount in rows if period.start <= _day(day).date() < period.end]
        numerator = sum(amount for won, amount in inside if won)
        denominator = sum(amount for _, amount in inside)
        if denominator:
            assert values.value("won_share", period) == pytest.approx(numerator / denominator)
        else:
            assert values.value("won_share", period) is None


def _day(offset: int) -> datetime:
    """Noon on the offset-th day after 1 January 2026 (0..58 covers January and February)."""
    return datetime.fromordinal(date(2026, 1, 1).toordinal() + offset).replace(hour=12)


def test_lookback_conversion_counts_source_rows_whose_event_lies_in_the_days_before(memory_conn, tiny_store):
    early = {"conversion": {"from": {"table": "tickets", "time": "created_at"},
                            "to": {"table": "customers", "time": "acquired_at"},
                            "key": "customer_id", "window_days": 30, "lookback": True}}
    catalog = catalog_of(measure("early_tickets", "percent", **early))
    schema = tiny_store({
        "customers": [
            {"customer_id": "C1", "acquired_at": ts("2026-01-02 09:00")},
            {"customer_id": "C2", "acquired_at": ts("2025-11-01 09:00")},
            {"customer_id": "C3", "acquired_at": ts("2026-01-20 09:00")},
        ],
        "tickets": [
            {"ticket_id": "T1", "customer_id": "C1", "created_at": ts("2026-01-10 10:00")},  # 8 days in: early
            {"ticket_id": "T2", "customer_id": "C1", "created_at": ts("2026-01-12 10:00")},  # same customer: counts
            {"ticket_id": "T3", "customer_id": "C2", "created_at": ts("2026-01-15 10:00")},  # 75 days in: not early
            {"ticket_id": "T4", "customer_id": "C3", "created_at": ts("2026-01-18 10:00")},  # before acquisition
            {"ticket_id": "T5", "customer_id": "C9", "created_at": ts("2026-01-31 10:00")},  # unknown customer
        ],
    })
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    # tickets are counted one by one (by ticket_id), not by customer: T1 and T2 of T1..T5
    assert values.value("early_tickets", JAN) == pytest.approx(2 / 5)
    assert values.maturing["early_tickets"] == frozenset()  # looking back, nothing has to mature
