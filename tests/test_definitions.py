"""The shipped definitions on tiny hand-made tables: NRR, logo churn and retention, MQL maturity, monthly data at
week grain, CLV:CAC on trailing twelve months. Every expected value is worked out by hand in the comments."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from kpicore.catalog import load_catalog, parse_catalog
from kpicore.compute import compute
from kpicore.errors import CatalogError
from kpicore.periods import Comparison, Grain, parse_period
from kpicore.scorecard import Status, build_scorecard, kpi_result


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def month(text: str) -> date:
    return date.fromisoformat(text + "-01")


# --- net revenue retention ------------------------------------------------------------------------------------


def revenue_rows(amounts: dict[str, dict[str, float]]) -> list[dict]:
    return [{"customer_id": customer, "month": month(m), "amount": amount}
            for customer, months in amounts.items() for m, amount in months.items()]


# A pays 100 every month and grows to 120 in September; B pays 100 and leaves after August;
# C is won in June (one month of Q2) and pays 50 from then on; D is won in August.
NRR_ROWS = revenue_rows({
    "A": {"2026-04": 100, "2026-05": 100, "2026-06": 100, "2026-07": 100, "2026-08": 100, "2026-09": 120},
    "B": {"2026-04": 100, "2026-05": 100, "2026-06": 100, "2026-07": 100, "2026-08": 100},
    "C": {"2026-06": 50, "2026-07": 50, "2026-08": 50, "2026-09": 50},
    "D": {"2026-08": 70, "2026-09": 70},
})


def test_nrr_compares_the_periods_last_month_with_the_month_before_it_began(memory_conn, tiny_store, catalog):
    schema = tiny_store({"revenue": NRR_ROWS})
    quarterly = compute(memory_conn, catalog, schema, Grain.QUARTER)
    # Q3: September's revenue from those who paid in June (A 100, B 100, C 50 = 250): A 120 + B 0 + C 50 = 170
    # (D, won in August, is new); a customer won in June is in the base, not counted as growth
    assert quarterly.value("net_revenue_retention", parse_period("2026-Q3")) == pytest.approx(170 / 250)
    monthly = compute(memory_conn, catalog, schema, Grain.MONTH)
    # September against August: A 120 + C 50 over A 100 + B 100 + C 50 (D was in August too: 70 over 70)
    assert monthly.value("net_revenue_retention", parse_period("2026-09")) == pytest.approx((120 + 50 + 70) / 320)
    # August against July: A 100, B 100, C 50 over the same: 250 / 250
    assert monthly.value("net_revenue_retention", parse_period("2026-08")) == pytest.approx(1.0)


def test_nrr_adds_up_several_rows_of_a_month_and_counts_only_those_who_paid_exactly_then(memory_conn, tiny_store,
                                                                                         catalog):
    rows = revenue_rows({
        "A": {"2026-08": 60, "2026-09": 70},  # and a second product below: A pays 100 in August, 110 in September
        "B": {"2026-07": 80, "2026-09": 80},  # skipped August: back in September, but not retained from August
        "C": {"2026-08": 30},  # left after August
    })
    rows += [{"customer_id": "A", "month": month("2026-08"), "amount": 40},
             {"customer_id": "A", "month": month("2026-09"), "amount": 40}]
    values = compute(memory_conn, catalog, tiny_store({"revenue": rows}), Grain.MONTH)
    # September from August's payers A (60 + 40) and C (30): A 70 + 40, C 0 over 130; B is not counted
    assert values.value("net_revenue_retention", parse_period("2026-09")) == pytest.approx(110 / 130)
    # August from July's payer B (80), who paid nothing in August: 0 of 80 (a value: all of it was lost)
    assert values.value("net_revenue_retention", parse_period("2026-08")) == pytest.approx(0.0)
    quarterly = compute(memory_conn, catalog, tiny_store({"revenue": rows}), Grain.QUARTER)
    # Q3's last month September against June (three months before): nobody paid in June, so no value
    assert quarterly.value("net_revenue_retention", parse_period("2026-Q3")) is None


def test_nrr_over_years_of_revenue_tells_each_month_apart(memory_conn, tiny_store, catalog):
    # Revenue from 2020 to 2026: a month five years (or any number of months) before another is another month.
    rows = revenue_rows({
        "A": {"2024-11": 100, "2024-12": 110},
        "B": {"2024-11": 50},
        "E": {"2020-01": 5, "2025-01": 10, "2026-01": 12},
        "G": {"2020-01": 7, "2026-01": 30},  # paid in January 2020 and 2026, never in January 2025
    })
    values = compute(memory_conn, catalog, tiny_store({"revenue": rows}), Grain.MONTH)
    # December 2024 from November's payers A 100 and B 50: A 110
    assert values.value("net_revenue_retention", parse_period("2024-12")) == pytest.approx(110 / 150)
    # January 2025 from December's payer A 110, who paid nothing in January (E is new): 0
    assert values.value("net_revenue_retention", parse_period("2025-01")) == pytest.approx(0.0)
    # January 2026 from January 2025's payer E 10: E 12; G paid six years before, not one
    assert values.value("net_revenue_retention_12m", parse_period("2026-01")) == pytest.approx(12 / 10)


def test_nrr_targets_compound_from_the_monthly_one():
    catalog = parse_catalog("""
teams: [{id: sales, label: Sales}]
kpis:
  - {id: nrr, label: NRR, description: d, team: customer, unit: percent, direction: up, target: {value: 0.99},
     net_retention: {table: revenue, key: customer_id, time: month, value: amount}}
  - {id: nrr12, label: NRR 12, description: d, team: customer, unit: percent, direction: up, target: {value: 1.02},
     net_retention: {table: revenue, key: customer_id, time: month, value: amount, months: 12}}
""")
    assert catalog.kpi("nrr").target_for("quarter") == pytest.approx(0.99 ** 3)  # 97.0%
    assert catalog.kpi("nrr").target_for("year") == pytest.approx(0.99 ** 12)
    assert catalog.kpi("nrr12").target_for("quarter") == 1.02  # always twelve months: the same target


def test_twelve_month_nrr_compares_with_the_same_month_a_year_before(memory_conn, tiny_store, catalog):
    rows = revenue_rows({"A": {"2025-10": 100, "2026-10": 90}, "B": {"2025-10": 50}, "C": {"2026-10": 500}})
    rows += revenue_rows({"A": {f"2026-{m:02d}": 95 for m in range(1, 10)}})  # months in between
    values = compute(memory_conn, catalog, tiny_store({"revenue": rows}), Grain.MONTH)
    # October 2026 from October 2025's payers: A 90 + B 0 over A 100 + B 50; C is new
    assert values.value("net_revenue_retention_12m", parse_period("2026-10")) == pytest.approx(90 / 150)


# --- logo churn and retention ------------------------------------------------------------------------------------


CUSTOMERS = [
    {"customer_id": "S0", "acquired_at": ts("2025-01-05 09:00"), "churned_at": ts("2025-06-01 09:00")},  # long gone
    {"customer_id": "S1", "acquired_at": ts("2025-01-10 09:00")},  # there all along
    {"customer_id": "S2", "acquired_at": ts("2025-02-10 09:00")},
    {"customer_id": "S3", "acquired_at": ts("2025-03-10 09:00"), "churned_at": ts("2026-03-15 09:00")},  # leaves
    {"customer_id": "S4", "acquired_at": ts("2025-04-10 09:00")},
    {"customer_id": "N1", "acquired_at": ts("2026-03-02 09:00"), "churned_at": ts("2026-03-20 09:00")},  # early
    {"customer_id": "N2", "acquired_at": ts("2026-03-05 09:00")},  # won in March, stays
    {"customer_id": "Z", "acquired_at": ts("2026-04-30 09:00")},  # the data runs to the end of April
]


def test_churn_counts_the_customers_there_at_the_start_who_left(memory_conn, tiny_store, catalog):
    values = compute(memory_conn, catalog, tiny_store({"customers": CUSTOMERS}), Grain.MONTH)
    march = parse_period("2026-03")
    # at the start of March: S1..S4 (4); lost from them: S3. N1, won and lost inside March, is early churn
    assert values.value("churn_rate", march) == pytest.approx(1 / 4)
    # retention (end - new) / start: at the end S1, S2, S4, N2 = 4; new N1, N2 = 2: (4 - 2) / 4
    assert values.value("retention_rate", march) == pytest.approx(2 / 4)


def test_an_unscored_outcome_keeps_its_status_but_not_its_weight(memory_conn, tiny_store):
    catalog = parse_catalog("""
teams: [{id: sales, label: Sales}]
kpis:
  - {id: lost, label: Lost, description: d, team: customer, unit: count, direction: down, target: {value: 2},
     simple: {table: customers, time: churned_at, agg: count}}
  - {id: base, label: Base, description: d, team: customer, unit: count, direction: up, target: {value: 10},
     score: false, stock: {table: customers, start: acquired_at, end: churned_at, at: end}}
  - {id: won, label: Won, description: d, team: sales, unit: count, direction: up, target: {value: 1},
     simple: {table: customers, time: acquired_at, agg: count}}
""")
    schema = tiny_store({"customers": [
        {"customer_id": "A", "acquired_at": ts("2026-01-01 09:00"), "churned_at": ts("2026-01-02 09:00")},
        {"customer_id": "B", "acquired_at": ts("2026-01-15 09:00")},
        {"customer_id": "C", "acquired_at": ts("2026-01-31 09:00")},
    ]})
    values = compute(memory_conn, catalog, schema, Grain.MONTH)
    card = build_scorecard(catalog, values, parse_period("2026-01"), Comparison.PREVIOUS)
    lost, base = card.outcomes
    assert lost.attainment == pytest.approx(2.0)  # 1 lost against at most 2
    assert base.status is Status.OFF_TRACK and base.attainment == pytest.approx(0.2)  # B, C of 10: still shown
    [sales] = card.teams
    assert sales.customer_score == pytest.approx(1.2)  # only `lost`, capped at 120%; `base` does not count


# --- maturity of a KPI whose numerator comes later -------------------------------------------------------------


def test_the_mql_rate_matures_and_its_latest_period_is_not_judged(memory_conn, tiny_store, catalog):
    leads = [{"lead_id": f"S{i}", "created_at": ts(f"2026-09-{day:02d} 09:00"),
              "qualified_at": ts(f"2026-09-{day + 2:02d} 09:00") if i % 2 else None}
             for i, day in enumerate((1, 5, 10, 15, 20, 25))]  # three of six qualified: 50%
    leads += [{"lead_id": f"O{i}", "created_at": ts(f"2026-10-{day:02d} 09:00"),
               "qualified_at": ts("2026-10-30 09:00") if i == 0 else None}
              for i, day in enumerate((1, 10, 28, 31))]  # one of four so far: the rest are still young
    values = compute(memory_conn, catalog, tiny_store({"leads": leads}), Grain.MONTH)
    october, september = parse_period("2026-10"), parse_period("2026-09")
    # the data ends on 31 October: October ends less than 14 days before, September more
    assert values.maturing["mql_rate"] == {october}
    result = kpi_result(catalog.kpi("mql_rate"), values, october, Comparison.PREVIOUS)
    assert (result.period, result.value, result.status) == (september, 0.5, Status.ON_TRACK)  # 50% against 35%
    assert "2026-10 is still maturing" in result.cohort


def test_a_ratio_counting_a_later_event_needs_a_maturity_window():
    with pytest.raises(CatalogError, match="mql: mature_days: counts leads by created_at once qualified_at is set"):
        parse_catalog("""
teams: [{id: marketing, label: Marketing}]
measures:
  - {id: qualified, label: Qualified, description: d, unit: count,
     simple: {table: leads, time: created_at, agg: count, where: [{column: qualified_at, op: not_null}]}}
  - {id: all_leads, label: Leads, description: d, unit: count, simple: {table: leads, time: created_at, agg: count}}
kpis:
  - {id: mql, label: MQL, description: d, team: marketing, unit: percent, direction: up, target: {value: 0.3},
     ratio: {numerator: qualified, denominator: all_leads}}
""")


# --- monthly data at week grain --------------------------------------------------------------------------------


def test_numbers_dated_on_the_first_of_each_month_have_no_weekly_value(memory_conn, tiny_store, catalog):
    rows = [{"date": ts(f"2026-{m:02d}-01 00:00"), "team": "marketing", "metric": "website_visits", "value": 40000.0}
            for m in (8, 9, 10)]
    leads = [{"lead_id": "L1", "created_at": ts("2026-08-03 09:00")}, {"lead_id": "L2", "created_at": ts(
        "2026-10-30 09:00")}]
    values = compute(memory_conn, catalog, tiny_store({"team_metrics": rows, "leads": leads}), Grain.WEEK)
    week_of_the_first = parse_period("2026-W40")  # 28 September to 4 October: holds 1 October
    assert values.value("website_visits", week_of_the_first) is None  # not 40,000 in one week, 0 in the others
    assert "Monthly data" in values.notes["website_visits"]
    assert values.value("leads", parse_period("2026-W44")) == 1  # weekly data keeps its weeks
    monthly = compute(memory_conn, catalog, tiny_store({"team_metrics": rows, "leads": leads}), Grain.MONTH)
    assert monthly.value("website_visits", parse_period("2026-10")) == 40000.0


# --- CLV:CAC on trailing twelve months -----------------------------------------------------------------------------


def test_clv_to_cac_uses_the_trailing_twelve_months(memory_conn, tiny_store, catalog):
    months = [f"{y}-{m:02d}" for y, m in [(2025, m) for m in range(11, 13)] + [(2026, m) for m in range(1, 11)]]
    revenue = [{"customer_id": c, "month": month(m), "amount": 100.0} for m in months for c in ("A", "B")]
    spend = [{"month": month(m), "amount": 300.0, "team": "marketing"} for m in months]
    customers = [
        {"customer_id": "A", "acquired_at": ts("2025-11-05 09:00")},
        {"customer_id": "B", "acquired_at": ts("2025-11-20 09:00"), "churned_at": ts("2026-10-31 09:00")},
        {"customer_id": "C", "acquired_at": ts("2026-01-10 09:00"), "churned_at": ts("2026-02-10 09:00")},
    ]
    values = compute(memory_conn, catalog, tiny_store({"revenue": revenue, "spend": spend, "customers": customers}),
                     Grain.MONTH)
    october = parse_period("2026-10")
    # November 2025 to October 2026: revenue 2 x 12 x 100 = 2,400 over 24 customer-months: 100 a month;
    # churned in those months: B and C (2) per 24 customer-months: monthly churn 1/12; CLV = 100 x 0.75 x 12 = 900
    assert values.value("clv", october) == pytest.approx(900)
    # spend 12 x 300 = 3,600 over 3 customers won (A, B, C): CAC 1,200; CLV:CAC 0.75
    assert values.value("cac", october) == pytest.approx(1200)
    assert values.value("clv_cac", october) == pytest.approx(0.75)
    # a month whose twelve months reach more than a tenth of them (36 days) before the data is partial, not scored:
    # August's window starts on 1 September 2025, two months early; September's one month early still counts
    assert parse_period("2026-08") in values.partial["clv_cac"]
    assert not {parse_period("2026-09"), october} & values.partial["clv_cac"]


# --- filters that tell the truth -------------------------------------------------------------------------------


SLICED_CATALOG = """
teams: [{id: sales, label: Sales}]
measures:
  - {id: spend_all, label: Spend, description: d, unit: currency,
     simple: {table: spend, time: month, agg: sum, column: amount}}
  - {id: qualified, label: Qualified, description: d, unit: count,
     simple: {table: leads, time: created_at, agg: count, where: [{column: qualified_at, op: not_null}]}}
kpis:
  - {id: leads, label: Leads, description: d, team: sales, unit: count, direction: up,
     target: {value: 10, slices: [{channel: web, value: 4}]}, simple: {table: leads, time: created_at, agg: count}}
  - {id: qualified_share, label: Qualified share, description: d, team: sales, unit: percent, direction: up,
     target: {value: 0.5}, mature_days: 1, ratio: {numerator: qualified, denominator: leads}}
  - {id: cost, label: Cost per lead, description: d, team: sales, unit: currency, direction: down,
     target: {value: 100}, ratio: {numerator: spend_all, denominator: leads}}
"""


@pytest.fixture
def sliced(memory_conn, tiny_store):
    """Six leads in January (web, web, event, web, event, web; the first three qualified) and one web lead on the
    31st, qualified on 2 February; web spend 300 and sales spend 200 that names no channel."""
    schema = tiny_store({
        "leads": [{"lead_id": f"L{i}", "created_at": ts(f"2026-01-{i + 1:02d} 09:00"), "channel": channel,
                   "qualified_at": ts(f"2026-01-{i + 2:02d} 09:00") if i < 3 else None}
                  for i, channel in enumerate(["web", "web", "event", "web", "event", "web"])]
        + [{"lead_id": "L9", "created_at": ts("2026-01-31 09:00"), "channel": "web",
            "qualified_at": ts("2026-02-02 09:00")}],  # the data runs on past January's one-day maturity
        "spend": [{"month": month("2026-01"), "amount": 300.0, "team": "marketing", "channel": "web"},
                  {"month": month("2026-01"), "amount": 200.0, "team": "sales"}],
    })
    return parse_catalog(SLICED_CATALOG), schema


def test_a_filter_that_cannot_apply_to_some_rows_says_so(memory_conn, sliced):
    from kpicore.filters import Filters

    catalog, schema = sliced
    values = compute(memory_conn, catalog, schema, Grain.MONTH, Filters((("channel", ("web",)),)))
    january = parse_period("2026-01")
    assert values.value("cost", january) == pytest.approx(300 / 5)  # web spend over the 5 web leads
    assert "1 spend rows have no marketing channel and are left out" in values.notes["cost"]


def test_a_slice_is_judged_only_against_a_target_of_its_own(memory_conn, sliced):
    from kpicore.filters import Filters

    catalog, schema = sliced
    january = parse_period("2026-01")
    web = compute(memory_conn, catalog, schema, Grain.MONTH, Filters((("channel", ("web",)),)))
    leads = kpi_result(catalog.kpi("leads"), web, january, Comparison.PREVIOUS)
    assert (leads.value, leads.target, leads.status) == (5, 4, Status.ON_TRACK)  # the web slice's own target
    cost = kpi_result(catalog.kpi("cost"), web, january, Comparison.PREVIOUS)
    assert cost.status is Status.UNTARGETED and cost.target is None and "not judged" in cost.note
    share = kpi_result(catalog.kpi("qualified_share"), web, january, Comparison.PREVIOUS)
    assert share.target == 0.5 and share.status.judged  # a rate keeps its target in a slice

    event = compute(memory_conn, catalog, schema, Grain.MONTH, Filters((("channel", ("event",)),)))
    card = build_scorecard(catalog, event, january, Comparison.PREVIOUS)
    [team] = card.teams
    assert {r.kpi.id: r.status for r in team.kpis}["leads"] is Status.UNTARGETED  # no target for the event slice
    assert team.untargeted == 2  # leads and cost per lead: the score is the rate's alone
    share = next(r for r in team.kpis if r.kpi.id == "qualified_share")
    assert team.own_score == pytest.approx(min(share.attainment, 1.2))


def test_a_filter_counts_the_rows_it_cannot_tell_through_leads_and_customers(memory_conn, tiny_store):
    from kpicore.filters import Filters

    day = ts("2026-01-05 09:00")
    schema = tiny_store({
        "leads": [{"lead_id": "L1", "created_at": day, "channel": "web"},
                  {"lead_id": "L2", "created_at": day, "channel": None}],
        # O1's lead has a channel; O2's has none, O3's is not in the leads, O4 names no lead
        "opportunities": [{"opportunity_id": f"O{n}", "lead_id": lead, "created_at": day}
                          for n, lead in enumerate(["L1", "L2", "L404", None], start=1)],
        # C1 came from a web lead; C2 from a lead without channel; C3 from no lead
        "customers": [{"customer_id": f"C{n}", "lead_id": lead, "acquired_at": day}
                      for n, lead in enumerate(["L1", "L2", None], start=1)],
        "revenue": [{"customer_id": c, "month": month("2026-01"), "amount": 10.0} for c in ("C1", "C2", "C3", "C9")],
    })
    found = Filters((("channel", ("web",)),)).left_out(memory_conn, schema)
    assert found["leads"] == "1 leads rows have no marketing channel and are left out"  # L2
    assert found["opportunities"] == "3 opportunities rows have no marketing channel and are left out"  # O2-O4
    assert found["customers"] == "2 customers rows have no marketing channel and are left out"  # C2, C3
    assert found["revenue"] == "3 revenue rows have no marketing channel and are left out"  # C2, C3, C9 (unknown)
    assert set(found) == {"leads", "opportunities", "customers", "revenue"}  # empty tables have nothing to leave out
