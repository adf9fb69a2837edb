"""The journey: funnel steps worked out by hand on tiny tables, checked against the sample data, and the page."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from kpicore import store
from kpicore.catalog import Catalog, JourneySettings, parse_catalog
from kpicore.charts import funnel_chart, funnel_frame
from kpicore.compute import compute
from kpicore.errors import CatalogError
from kpicore.filters import Filters
from kpicore.journey import (
    NO_LEAD,
    UNKNOWN_CHANNEL,
    ChannelChurn,
    Cohort,
    Step,
    early_churn_by_channel,
    handoffs,
    journey,
)
from kpicore.periods import Grain, parse_period

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard.py"
SAMPLE = ROOT / "sample_data"
AS_OF = date(2026, 3, 31)
OWNERS = {"marketing": "Marketing", "sales": "Sales", "service": "Service", "customer": "Customer outcome"}


def d(text: str) -> datetime:
    return datetime.fromisoformat(text)


# Three cohorts, seen on 2026-03-31:
# 2025-01 (old, complete): L1-L6; L7 was created the day before, in 2024-12.
#   L1 lead 01-02 -> qualified 01-04 (2 d) -> first deal 01-08 (4 d; a second deal 02-01 does not count)
#      -> C1 customer 02-07 (30 d), never churns: retained; answers 10 on 05-08 (90 d) and 9 later: promoter.
#   L2 lead 01-10 -> qualified 01-16 (6 d) -> deal 01-26 (10 d) -> C2 customer 03-07 (40 d), churns 06-15
#      (100 days in): not retained; answers 9 on 03-10 (3 d): still a promoter (the answer came as a customer).
#   L3 lead 01-15 -> qualified 01-19 (4 d) -> deal 01-21 (2 d) -> C3 customer 03-22 (60 d), churns 2026-03-25,
#      3 days after its first year: retained; answered 10 before it bought (does not count) and 6 after: no promoter.
#   L4 lead 01-20 -> qualified 01-28 (8 d), no deal.   L5, L6: never qualified (L6 on the month's last evening).
#   leads 6 | qualified 4 (4/6) | opportunity 3 (3/4, 3/6) | customer 3 (3/3, 3/6) | retained 2 (2/3, 2/6)
#   | promoter 2 (2/2, 2/6); medians: qualified (2, 4, 6, 8) -> 5, deal (2, 4, 10) -> 4, customer (30, 40, 60) -> 40,
#   promoter (3, 90) -> 46.5.
# 2025-06 (customers bought, but not a year ago): L10 -> C10 bought 2025-07-15, active: not 12 months old yet;
#   L11 -> C11 bought 2025-07-01, churned 2025-08-01: decided (not retained). Retained 0, maturing: 1 of 2 undecided.
# 2026-01 (young): 59 days past its period on 2026-03-31, so qualified (30 days) is complete, opportunity (60) and
#   customer (90) are maturing, and retained and promoter with them.
#   L8 lead 01-05 -> qualified 01-06 -> deal 01-10 -> C8 customer 02-01 -> answers 10 on 03-01 (28 d).  L9: nothing.
#   leads 2 | qualified 1 | opportunity 1 | customer 1 | retained 0 | promoter 1.
ROWS = {
    "leads": [
        {"lead_id": "L1", "created_at": d("2025-01-02"), "qualified_at": d("2025-01-04"), "channel": "paid_social"},
        {"lead_id": "L2", "created_at": d("2025-01-10"), "qualified_at": d("2025-01-16"), "channel": "organic"},
        {"lead_id": "L3", "created_at": d("2025-01-15"), "qualified_at": d("2025-01-19"), "channel": "paid_social"},
        {"lead_id": "L4", "created_at": d("2025-01-20"), "qualified_at": d("2025-01-28"), "channel": "organic"},
        {"lead_id": "L5", "created_at": d("2025-01-25"), "channel": "paid_social"},
        {"lead_id": "L6", "created_at": d("2025-01-31 23:00"), "channel": "organic"},
        {"lead_id": "L7", "created_at": d("2024-12-31"), "qualified_at": d("2025-01-02"), "channel": "organic"},
        {"lead_id": "L10", "created_at": d("2025-06-10"), "qualified_at": d("2025-06-11"), "channel": "organic"},
        {"lead_id": "L11", "created_at": d("2025-06-20"), "qualified_at": d("2025-06-21"), "channel": "organic"},
        {"lead_id": "L8", "created_at": d("2026-01-05"), "qualified_at": d("2026-01-06"), "channel": "organic"},
        {"lead_id": "L9", "created_at": d("2026-01-12"), "channel": "organic"},
    ],
    "opportunities": [
        {"opportunity_id": "O1", "created_at": d("2025-01-08"), "lead_id": "L1"},
        {"opportunity_id": "O1b", "created_at": d("2025-02-01"), "lead_id": "L1"},
        {"opportunity_id": "O2", "created_at": d("2025-01-26"), "lead_id": "L2"},
        {"opportunity_id": "O3", "created_at": d("2025-01-21"), "lead_id": "L3"},
        {"opportunity_id": "O10", "created_at": d("2025-06-15"), "lead_id": "L10"},
        {"opportunity_id": "O11", "created_at": d("2025-06-22"), "lead_id": "L11"},
        {"opportunity_id": "O8", "created_at": d("2026-01-10"), "lead_id": "L8"},
    ],
    "customers": [
        {"customer_id": "C1", "acquired_at": d("2025-02-07"), "lead_id": "L1"},
        {"customer_id": "C2", "acquired_at": d("2025-03-07"), "churned_at": d("2025-06-15"), "lead_id": "L2"},
        {"customer_id": "C3", "acquired_at": d("2025-03-22"), "churned_at": d("2026-03-25"), "lead_id": "L3"},
        {"customer_id": "C10", "acquired_at": d("2025-07-15"), "lead_id": "L10"},
        {"customer_id": "C11", "acquired_at": d("2025-07-01"), "churned_at": d("2025-08-01"), "lead_id": "L11"},
        {"customer_id": "C8", "acquired_at": d("2026-02-01"), "lead_id": "L8"},
    ],
    "surveys": [
        {"customer_id": "C1", "responded_at": d("2025-05-08"), "score": 10},
        {"customer_id": "C1", "responded_at": d("2025-09-01"), "score": 9},
        {"customer_id": "C2", "responded_at": d("2025-03-10"), "score": 9},
        {"customer_id": "C3", "responded_at": d("2025-03-01"), "score": 10},
        {"customer_id": "C3", "responded_at": d("2025-06-01"), "score": 6},
        {"customer_id": "C8", "responded_at": d("2026-03-01"), "score": 10},
    ],
}
STEPS = list(Step)


def counts(cohort: Cohort) -> list[int]:
    return [s.count for s in cohort.steps]


def test_old_cohort_step_by_step(tiny_store, memory_conn) -> None:
    schema = tiny_store(ROWS)
    found = journey(memory_conn, schema, parse_period("2025-01"), as_of=AS_OF)
    assert found.as_of == AS_OF
    assert [c.period.label for c in found.cohorts] == ["2025-01"]  # 2024-12 began before the first lead: partial
    assert counts(found.cohort) == [6, 4, 3, 3, 2, 2]
    assert [s.conversion for s in found.steps] == pytest.approx([None, 4 / 6, 3 / 4, 1, 2 / 3, 1])
    assert [s.from_first for s in found.steps] == pytest.approx([1, 4 / 6, 3 / 6, 3 / 6, 2 / 6, 2 / 6])
    assert [s.median_days for s in found.steps] == [None, 5.0, 4.0, 40.0, None, 46.5]
    assert not any(s.maturing for s in found.steps)
    assert [s.owner for s in found.steps] == ["marketing", "marketing", "sales", "sales", "service", "customer"]


def test_young_cohort_is_maturing_step_by_step(tiny_store, memory_conn) -> None:
    schema = tiny_store(ROWS)
    found = journey(memory_conn, schema, parse_period("2026-01"), as_of=AS_OF)
    assert [c.period.label for c in found.cohorts] == [f"{y}-{m:02d}" for y, m in
                                                       [(2025, m) for m in range(2, 13)] + [(2026, 1)]]
    assert counts(found.cohort) == [2, 1, 1, 1, 0, 1]
    assert [s.maturing for s in found.steps] == [False, False, True, True, True, True]
    assert found.cohort.step(Step.OPPORTUNITY).maturing_note == (
        "Leads get 60 days after their period to reach a deal; the 2026-01 leads have had 59.")
    assert found.cohort.step(Step.PROMOTER).median_days == 28.0
    assert found.cohort.step(Step.PROMOTER).conversion is None  # nobody retained yet: no share of zero


def test_retention_matures_with_the_customers_not_the_leads(tiny_store, memory_conn) -> None:
    schema = tiny_store(ROWS)
    june = next(c for c in journey(memory_conn, schema, parse_period("2026-01"), as_of=AS_OF).cohorts
                if c.period.label == "2025-06")
    assert counts(june) == [2, 2, 2, 2, 0, 0]
    assert [s.maturing for s in june.steps] == [False, False, False, False, True, True]
    assert june.step(Step.RETAINED).maturing_note.startswith("1 of the cohort's 2 customers are not 12 months old")
    empty = next(c for c in journey(memory_conn, schema, parse_period("2026-01"), as_of=AS_OF).cohorts
                 if c.period.label == "2025-03")
    assert counts(empty) == [0] * 6 and {s.conversion for s in empty.steps} == {None}


def test_the_journey_as_known_on_an_earlier_day(tiny_store, memory_conn) -> None:
    """On 2025-03-08 C3 had not bought yet, nobody had had a year, and C1 had not answered."""
    schema = tiny_store(ROWS)
    found = journey(memory_conn, schema, parse_period("2025-01"), as_of=date(2025, 3, 8))
    assert counts(found.cohort) == [6, 4, 3, 2, 0, 0]
    # 36 days past the period: qualification (30 days) is complete, deals (60) and purchases (90) are not
    assert [s.maturing for s in found.steps] == [False, False, True, True, True, True]


def test_as_of_defaults_to_the_stalest_tables_last_day(tiny_store, memory_conn) -> None:
    rows = {**ROWS, "surveys": [*ROWS["surveys"], {"customer_id": "C1", "responded_at": d("2026-03-31"), "score": 3}]}
    schema = tiny_store(rows)
    # leads end 2026-01-12, deals 2026-01-10, customers 2026-03-25 (a churn), surveys 2026-03-31
    assert journey(memory_conn, schema, parse_period("2025-01")).as_of == date(2026, 1, 10)


def test_filters_follow_the_lead_channel(tiny_store, memory_conn) -> None:
    schema = tiny_store(ROWS)
    found = journey(memory_conn, schema, parse_period("2025-01"), Filters.from_query_params({"channel": "paid_social"}),
                    as_of=AS_OF)
    assert counts(found.cohort) == [3, 2, 2, 2, 2, 1]  # L1, L3, L5: C1 and C3 retained, C1 a promoter
    assert found.notes == ()
    by_region = journey(memory_conn, schema, parse_period("2025-01"), Filters.from_query_params({"region": "UK"}),
                        as_of=AS_OF)
    assert counts(by_region.cohort)[:3] == [6, 4, 3] and counts(by_region.cohort)[3:] == [0, 0, 0]
    assert any("leads has no region" in note for note in by_region.notes)


def test_a_week_cohort(tiny_store, memory_conn) -> None:
    schema = tiny_store(ROWS)
    found = journey(memory_conn, schema, parse_period("2025-W03", Grain.WEEK), as_of=AS_OF)  # 13 to 19 January
    assert counts(found.cohort) == [1, 1, 1, 1, 1, 0]  # L3
    # weeks 2 and 3 of 2025: week 1 began on Monday 2024-12-30, before the first lead (L7), so it would be partial
    assert [c.period.label for c in found.cohorts] == ["2025-W02", "2025-W03"]


# Early churn by channel, customers acquired in 2026-01:
#   A (paid_social) churns after 55 days: early.   B (paid_social) churns after exactly 90 days: not early.
#   C (organic) stays.   D (no lead) churns after 7 days: early.   E (lead missing from the leads table) stays.
#   F (paid_social) bought in February: not in the period.
# -> no lead 1/1, paid_social 1/2, organic 0/1, unknown 0/1 (worst share first, then size, then name).
CHURN_ROWS = {
    "leads": [{"lead_id": "La", "created_at": d("2025-12-01"), "channel": "paid_social"},
              {"lead_id": "Lb", "created_at": d("2025-12-02"), "channel": "paid_social"},
              {"lead_id": "Lc", "created_at": d("2025-12-03"), "channel": "organic"},
              {"lead_id": "Lf", "created_at": d("2025-12-04"), "channel": "paid_social"}],
    "customers": [
        {"customer_id": "A", "acquired_at": d("2026-01-05"), "churned_at": d("2026-03-01"), "lead_id": "La"},
        {"customer_id": "B", "acquired_at": d("2026-01-10"), "churned_at": d("2026-04-10"), "lead_id": "Lb"},
        {"customer_id": "C", "acquired_at": d("2026-01-20"), "lead_id": "Lc"},
        {"customer_id": "D", "acquired_at": d("2026-01-25"), "churned_at": d("2026-02-01")},
        {"customer_id": "E", "acquired_at": d("2026-01-26"), "lead_id": "Lx"},
        {"customer_id": "F", "acquired_at": d("2026-02-01"), "churned_at": d("2026-02-02"), "lead_id": "Lf"},
    ],
}


def test_early_churn_by_channel(tiny_store, memory_conn) -> None:
    schema = tiny_store(CHURN_ROWS)
    assert early_churn_by_channel(memory_conn, schema, parse_period("2026-01")) == [
        ChannelChurn(NO_LEAD, 1, 1, 1.0), ChannelChurn("paid_social", 2, 1, 0.5),
        ChannelChurn("organic", 1, 0, 0.0), ChannelChurn(UNKNOWN_CHANNEL, 1, 0, 0.0),
    ]
    paid = early_churn_by_channel(memory_conn, schema, parse_period("2026-01"),
                                  Filters.from_query_params({"channel": "paid_social"}))
    assert paid == [ChannelChurn("paid_social", 2, 1, 0.5)]
    assert early_churn_by_channel(memory_conn, schema, parse_period("2025-12")) == []


def test_the_early_churn_window_is_the_catalogs(tiny_store, memory_conn) -> None:
    """With 91 days B (left after exactly 90) is early too; with 30 days only D (7 days) is, A (55) is not."""
    schema = tiny_store(CHURN_ROWS)
    longer = {c.channel: (c.customers, c.churned) for c in
              early_churn_by_channel(memory_conn, schema, parse_period("2026-01"), days=91)}
    assert longer == {NO_LEAD: (1, 1), "paid_social": (2, 2), "organic": (1, 0), UNKNOWN_CHANNEL: (1, 0)}
    shorter = {c.channel: (c.customers, c.churned) for c in
               early_churn_by_channel(memory_conn, schema, parse_period("2026-01"), days=30)}
    assert shorter == {NO_LEAD: (1, 1), "paid_social": (2, 0), "organic": (1, 0), UNKNOWN_CHANNEL: (1, 0)}


# The same tiny tables with a catalog that gives qualified leads to sales, lets deals settle in 30 days and
# customers in 50, and counts a customer as retained after 400 days:
# 2025-01: C1 (bought 2025-02-07, stays) passes 400 days on 2026-03-14: retained; C3 (bought 2025-03-22) left
#   2026-03-25, before its 400 days: not retained, and decided; C2 left in June. Retained 1 of 3, nothing maturing.
# 2026-01 (59 days old): 30 days for deals and 50 for customers have passed, so those steps are complete;
#   C8 (bought 2026-02-01) is not 400 days old, so retained and promoter are maturing.
SETTINGS = JourneySettings(
    owners=(("lead", "marketing"), ("qualified", "sales"), ("opportunity", "sales"), ("customer", "sales"),
            ("retained", "service"), ("promoter", "customer")),
    settle_days=(("qualified", 30), ("opportunity", 30), ("customer", 50)), retained_days=400)


def test_the_journey_follows_the_catalogs_owners_and_windows(tiny_store, memory_conn) -> None:
    schema = tiny_store(ROWS)
    old = journey(memory_conn, schema, parse_period("2025-01"), as_of=AS_OF, settings=SETTINGS)
    assert counts(old.cohort) == [6, 4, 3, 3, 1, 2]
    assert not any(s.maturing for s in old.steps)
    assert [s.owner for s in old.steps] == ["marketing", "sales", "sales", "sales", "service", "customer"]
    assert old.cohort.step(Step.RETAINED).label == "Retained 400 days"
    young = journey(memory_conn, schema, parse_period("2026-01"), as_of=AS_OF, settings=SETTINGS)
    assert [s.maturing for s in young.steps] == [False, False, False, False, True, True]
    assert young.cohort.step(Step.RETAINED).maturing_note == (
        "1 of the cohort's 1 customers are not 400 days old yet and may still be retained.")


JOURNEY_SECTION = """\
journey:
  owners: {qualified: sales, promoter: customer}
  settle_days: {opportunity: 30}
  retained_days: 730
  early_churn: early_churn_rate
  handoffs:
    - {kpi: onboarding_handoff, hand_over: "Did service call every new customer?"}
"""


def test_a_catalog_journey_section_is_read(tmp_path: Path) -> None:
    text = (ROOT / "kpicore" / "catalog.yaml").read_text(encoding="utf-8")
    start, end = text.index("journey:"), text.index("teams:")
    edited = text[:start] + JOURNEY_SECTION + "\n" + text[end:]
    key = "      key: customer_id\n      window_days: "
    edited = edited.replace(key + "90", key + "60")
    found = parse_catalog(edited, "team.yaml").journey
    assert found.owner("qualified") == "sales" and found.owner("lead") == "marketing"  # the rest as before
    assert dict(found.settle_days) == {"qualified": 30, "opportunity": 30, "customer": 90}
    assert found.retained_days == 730
    assert found.early_churn == "early_churn_rate" and found.early_churn_days == 60  # the KPI's own window
    assert found.handoffs == (("onboarding_handoff", "Did service call every new customer?"),)


@pytest.mark.parametrize(("section", "field", "message"), [
    ("journey:\n  owners: {purchase: sales}\n", "journey.owners", "'purchase' is not a step of the journey"),
    ("journey:\n  owners: {lead: growth}\n", "journey.owners", "lead: 'growth' is not a team"),
    ("journey:\n  settle_days: {lead: 10}\n", "journey.settle_days", "lead: 10 must be a whole number of days"),
    ("journey:\n  settle_days: {customer: -5}\n", "journey.settle_days", "customer: -5 must be a whole number"),
    ("journey:\n  retained_days: a year\n", "journey.retained_days", ""),
    ("journey:\n  early_churn: churn_rate\n", "journey.early_churn", "'churn_rate' must be a conversion KPI"),
    ("journey:\n  handoffs: [{kpi: nothing, hand_over: x}]\n", "journey.handoffs", "must be {kpi: <a KPI id>"),
    ("journey:\n  stages: []\n", "journey.stages", "is not a known field"),
])
def test_a_bad_journey_section_is_reported(section: str, field: str, message: str) -> None:
    text = (ROOT / "kpicore" / "catalog.yaml").read_text(encoding="utf-8")
    start, end = text.index("journey:"), text.index("teams:")
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text[:start] + section + "\n" + text[end:])
    found = [i for i in caught.value.issues if i.field == field]
    assert found and message in found[0].message, caught.value.issues


def test_handoffs_in_journey_order(catalog: Catalog) -> None:
    ids = [k.id for k, _ in handoffs(catalog)]
    assert ids == ["onboarding_handoff", "nurture_reach", "early_ticket_share", "early_churn_rate"]
    assert all(k.team in {"marketing", "sales", "service"} and k.target is not None for k, _ in handoffs(catalog))
    assert all(text.endswith("?") or text.endswith(".") for _, text in handoffs(catalog))
    fewer = replace(catalog, kpis=tuple(k for k in catalog.kpis if k.id != "nurture_reach"))
    assert [k.id for k, _ in handoffs(fewer)] == ["onboarding_handoff", "early_ticket_share", "early_churn_rate"]


def test_funnel_chart_marks_owners_and_maturing_steps(tiny_store, memory_conn) -> None:
    schema = tiny_store(ROWS)
    found = journey(memory_conn, schema, parse_period("2026-01"), as_of=AS_OF)
    frame = funnel_frame(found, OWNERS)
    assert list(frame["step"]) == [s.label for s in Step]
    assert list(frame["owner"]) == ["Marketing", "Marketing", "Sales", "Sales", "Service", "Customer outcome"]
    assert list(frame["label"])[:2] == ["2 leads", "1 · 50.0% of previous step"]
    assert list(frame["label"])[2] == "1 so far · still maturing"
    # a maturing step's shares are not final: 1 of the 1 qualified lead, 1 of the 2 leads, so far
    assert (list(frame["previous"])[2], list(frame["of_leads"])[2]) == ("100.0% so far", "50.0% so far")
    assert (list(frame["previous"])[1], list(frame["of_leads"])[1]) == ("50.0%", "50.0%")
    spec = funnel_chart(found, OWNERS).to_dict()
    bars = spec["layer"][0]["encoding"]
    assert bars["color"]["scale"]["domain"] == ["Marketing", "Sales", "Service", "Customer outcome"]
    assert bars["opacity"]["scale"] == {"domain": ["complete", "still maturing"], "range": [1.0, 0.3]}


# --- against a plain computation on the sample data ------------------------------------------------


def plain_funnel(period: str, until: pd.Timestamp) -> dict[str, object]:
    """The funnel of a month's leads computed with pandas straight from the sample CSVs."""
    leads = pd.read_csv(SAMPLE / "leads.csv", parse_dates=["created_at", "qualified_at"])
    deals = pd.read_csv(SAMPLE / "opportunities.csv", parse_dates=["created_at"])
    customers = pd.read_csv(SAMPLE / "customers.csv", parse_dates=["acquired_at", "churned_at"])
    surveys = pd.read_csv(SAMPLE / "surveys.csv", parse_dates=["responded_at"])
    start = pd.Timestamp(period + "-01")
    cohort = leads[(leads.created_at >= start) & (leads.created_at < start + pd.offsets.MonthBegin(1))]
    qualified = cohort[cohort.qualified_at < until]
    first_deal = deals[deals.created_at < until].groupby("lead_id").created_at.min()
    opened = cohort[cohort.lead_id.isin(first_deal.index)]
    won = customers[customers.lead_id.isin(cohort.lead_id) & (customers.acquired_at < until)]
    year = won.acquired_at + pd.Timedelta(days=365)
    retained = won[(year < until) & (won.churned_at.isna() | (won.churned_at >= year))]
    answers = surveys.merge(won[["customer_id", "acquired_at"]], on="customer_id")
    promoters = answers[(answers.score >= 9) & (answers.responded_at >= answers.acquired_at)
                        & (answers.responded_at < until)]
    days = (opened.lead_id.map(first_deal) - opened.qualified_at).dt.total_seconds() / 86400
    return {
        "counts": [len(cohort), len(qualified), len(opened), len(won), len(retained), promoters.customer_id.nunique()],
        "qualified_days": ((qualified.qualified_at - qualified.created_at).dt.total_seconds() / 86400).median(),
        "deal_days": days.median(),
    }


@pytest.mark.parametrize("period", ["2025-06", "2026-06"])
def test_sample_funnel_matches_a_plain_computation(sample_db: Path, period: str) -> None:
    conn = store.connect(sample_db)
    try:
        found = journey(conn, store.latest_snapshot(conn).schema, parse_period(period))
    finally:
        conn.close()
    plain = plain_funnel(period, pd.Timestamp(found.as_of + timedelta(days=1)))
    assert counts(found.cohort) == plain["counts"]
    expected = plain["counts"]
    assert [s.conversion for s in found.steps[1:]] == pytest.approx(
        [b / a if a else None for a, b in zip(expected, expected[1:], strict=False)])
    assert [s.from_first for s in found.steps] == pytest.approx([n / expected[0] for n in expected])
    assert found.cohort.step(Step.QUALIFIED).median_days == pytest.approx(plain["qualified_days"])
    assert found.cohort.step(Step.OPPORTUNITY).median_days == pytest.approx(plain["deal_days"])


def test_sample_early_churn_by_channel_adds_up_to_the_kpi(sample_db: Path, catalog: Catalog) -> None:
    conn = store.connect(sample_db)
    try:
        schema = store.latest_snapshot(conn).schema
        rows = early_churn_by_channel(conn, schema, parse_period("2025-06"))
        kpi = compute(conn, catalog, schema, Grain.MONTH).value("early_churn_rate", parse_period("2025-06"))
    finally:
        conn.close()
    assert sum(r.churned for r in rows) / sum(r.customers for r in rows) == pytest.approx(kpi)
    assert {r.channel for r in rows} >= {"paid_social", "organic"}


# --- the page ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def journey_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file with the sample data, built once for the page tests."""
    path = tmp_path_factory.mktemp("journey") / "kpi.duckdb"
    store.connect(path).close()
    return path


def run_journey(db: Path, monkeypatch: pytest.MonkeyPatch, catalog: Path | None = None, **params: str) -> AppTest:
    """Open the Journey page with `params` in the URL (and `catalog` as the KPI catalog)."""
    monkeypatch.setenv("KPI_DB", str(db))
    if catalog is None:
        monkeypatch.delenv("KPI_CATALOG", raising=False)
    else:
        monkeypatch.setenv("KPI_CATALOG", str(catalog))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.query_params.clear()
    del at.session_state["view"]
    hashes = [h for h, info in at._registered_pages.items() if info.get("url_pathname") == "journey"]
    assert hashes, at._registered_pages
    at._page_hash = hashes[0]
    at.query_params.update(params)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_journey_page(journey_db: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    at = run_journey(journey_db, monkeypatch)
    assert [t.value for t in at.title] == ["Journey"]
    subheaders = [s.value for s in at.subheader]
    assert subheaders[0] == "Customer outcomes"
    labels = [m.label for m in at.metric]
    outcomes = [k.label for k in catalog.outcomes]
    assert labels[:len(outcomes)] == outcomes
    assert labels[len(outcomes):] == [k.label for k, _ in handoffs(catalog)]
    steps = at.dataframe[0].value
    assert list(steps["Step"].str.replace(" (maturing)", "", regex=False)) == [s.label for s in Step]
    assert list(steps["Owner"]) == ["Marketing", "Marketing", "Sales", "Sales", "Service", "Customer outcome"]
    assert len(at.get("vega_lite_chart")) >= 1
    assert "Hand-offs" in subheaders and not at.error


def test_journey_page_honours_the_period_and_filters(journey_db: Path, sample_db: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    conn = store.connect(sample_db)
    try:
        schema = store.latest_snapshot(conn).schema
        june = journey(conn, schema, parse_period("2025-06"))
        paid = journey(conn, schema, parse_period("2025-06"), Filters.from_query_params({"channel": "paid_social"}))
    finally:
        conn.close()
    at = run_journey(journey_db, monkeypatch, period="2025-06")
    assert "Month 2025-06" in at.main.caption[0].value
    assert "Funnel of the 2025-06 leads" in [s.value for s in at.subheader]
    assert list(at.dataframe[0].value["Count"]) == counts(june.cohort)
    assert at.dataframe[1].value["Cohort"].iloc[0] == "2025-06"
    filtered = run_journey(journey_db, monkeypatch, period="2025-06", channel="paid_social")
    assert list(filtered.dataframe[0].value["Count"]) == counts(paid.cohort)
    assert counts(paid.cohort)[0] < counts(june.cohort)[0]


def test_the_journey_page_follows_the_catalog(journey_db: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A catalog that calls marketing "Growth", gives qualified leads to sales and keeps customers two years."""
    text = (ROOT / "kpicore" / "catalog.yaml").read_text(encoding="utf-8")
    text = text.replace("  - id: marketing\n    label: Marketing\n", "  - id: marketing\n    label: Growth\n")
    text = text.replace("qualified: marketing,", "qualified: sales,")
    text = text.replace("retained_days: 365", "retained_days: 730")
    text = text.replace("Sales to service: did each new customer", "Handed over: did each new customer")
    path = tmp_path / "catalog.yaml"
    path.write_text(text, encoding="utf-8")
    at = run_journey(journey_db, monkeypatch, catalog=path, period="2024-01")
    steps = at.dataframe[0].value
    assert list(steps["Owner"]) == ["Growth", "Sales", "Sales", "Sales", "Service", "Customer outcome"]
    assert "Retained 2 years" in list(steps["Step"].str.replace(" (maturing)", "", regex=False))
    assert any(m.value.startswith("Handed over: did each new customer") for m in at.markdown)


def test_the_latest_mature_cohort_is_the_last_with_its_ninety_days(sample_db: Path) -> None:
    conn = store.connect(sample_db)
    try:
        found = journey(conn, store.latest_snapshot(conn).schema, parse_period("2026-10"))
    finally:
        conn.close()
    # the data ends on 2026-10-31; leads get 90 days after their month to become customers: the July leads
    # have had 92 (1 August to 1 November), the August leads 61
    assert found.as_of == date(2026, 10, 31)
    assert found.latest_mature() == parse_period("2026-07")


def test_the_journey_page_opens_on_the_latest_mature_cohort_and_shows_the_young_one_on_request(
        journey_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = run_journey(journey_db, monkeypatch, period="2026-10")
    assert "Funnel of the 2026-07 leads" in [s.value for s in at.subheader]
    assert any("The 2026-10 leads have not had their 90 days to become customers yet: this is 2026-07" in c.value
               for c in at.caption)
    assert at.dataframe[1].value["Cohort"].iloc[0] == "2026-10"  # the Cohorts table still reaches the young one
    mature_funnel = at.get("vega_lite_chart")[0].proto.datasets[0].data.data
    at.toggle[0].set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Funnel of the 2026-10 leads" in [s.value for s in at.subheader]
    assert at.get("vega_lite_chart")[0].proto.datasets[0].data.data != mature_funnel  # its own chart, not a cached one
    assert f"{Step.CUSTOMER.label} (maturing)" in list(at.dataframe[0].value["Step"])  # the young cohort, as it is
