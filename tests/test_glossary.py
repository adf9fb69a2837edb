"""The glossary: every KPI's definition in words, found by any of its names, in any language."""
from __future__ import annotations

import pytest

from kpicore.catalog import parse_catalog
from kpicore.glossary import entries, formula_text, unguarded

CATALOG = parse_catalog("""\
teams:
  - {id: sales, label: Sales}
  - {id: service, label: Service desk}
measures:
  - id: deals_won
    label: Deals won
    description: Deals won in the period.
    unit: count
    simple:
      table: opportunities
      time: closed_at
      agg: count
      where: [{column: stage, op: eq, value: won}]
  - id: deals_closed
    label: Deals closed
    description: Deals won or lost in the period.
    unit: count
    simple:
      table: opportunities
      time: closed_at
      agg: count
      where: [{column: stage, op: in, value: [won, lost]}]
kpis:
  - id: win_rate
    label: Win rate
    team: sales
    description: Share of closed deals that were won.
    unit: percent
    direction: up
    ratio: {numerator: deals_won, denominator: deals_closed}
    target: {value: 0.28, at_risk: 0.9}
    aliases: [Gewinnquote, Close rate]
  - id: opportunities
    label: Opportunities
    team: sales
    description: New deals opened in the period.
    unit: count
    direction: up
    simple: {table: opportunities, time: created_at, agg: count}
    target: {value: 200, at_risk: 0.8}
  - id: onboarding_handoff
    label: Onboarding hand-off
    team: sales
    description: Share of new customers who got an onboarding contact soon after signing.
    unit: percent
    direction: up
    conversion:
      from: {table: customers, time: acquired_at}
      to:
        table: touches
        time: occurred_at
        where: [{column: kind, op: eq, value: onboarding}]
      key: customer_id
      window_days: 14
    target: {value: 0.85}
  - id: resolution_time
    label: Resolution time
    team: service
    description: Median hours from a ticket's creation to its resolution.
    unit: hours
    direction: down
    simple: {table: tickets, time: resolved_at, agg: median, duration: {from: created_at, to: resolved_at}}
    target: {value: 24}
    aliases: [Lösungszeit]
""")


def ids(found) -> list[str]:
    return [entry.kpi.id for entry in found]


@pytest.mark.parametrize(("query", "expected"), [
    # KPIs first (team by team, in catalog order), building blocks last
    ("", ["win_rate", "opportunities", "onboarding_handoff", "resolution_time", "deals_won", "deals_closed"]),
    ("Win rate", ["win_rate"]),
    ("win RATE", ["win_rate"]),
    ("gewinnquote", ["win_rate"]),
    ("Lösungszeit", ["resolution_time"]),
    ("onboarding_handoff", ["onboarding_handoff"]),
    ("service desk", ["resolution_time"]),  # owner label
    ("building block", ["deals_won", "deals_closed"]),
    ("opened period", ["opportunities"]),  # words are AND-ed, in any order
    ("deals lost", ["deals_closed"]),
    ("close rate", ["win_rate"]),
    ("rate hours", []),
    ("churn", []),
])
def test_search(query, expected):
    assert ids(entries(CATALOG, query)) == expected


def test_search_the_shipped_catalog_by_an_alias_in_another_language(catalog):
    assert ids(entries(catalog, "Abwanderungsrate")) == ["churn_rate"]
    assert ids(entries(catalog, "Kundenzufriedenheit")) == ["csat"]
    assert "nps" in ids(entries(catalog, "NPS"))


def test_every_shipped_kpi_has_an_entry_outcomes_first_building_blocks_last(catalog):
    found = ids(entries(catalog))
    assert sorted(found) == sorted(k.id for k in catalog.kpis)
    assert found[:len(catalog.outcomes)] == [k.id for k in catalog.outcomes]
    assert set(found[-len(catalog.measures):]) == {k.id for k in catalog.measures}


def test_formula_of_a_ratio_names_both_labels():
    assert formula_text(CATALOG.kpi("win_rate").formula, CATALOG) == "Deals won ÷ Deals closed"


def test_formula_of_a_conversion_names_the_window():
    text = formula_text(CATALOG.kpi("onboarding_handoff").formula, CATALOG)
    assert "share of customers" in text
    assert "within 14 days" in text
    assert "touches" in text and "kind = onboarding" in text
    assert "customer_id" in text


def test_formula_of_a_simple_kpi_names_table_filter_and_time():
    assert formula_text(CATALOG.kpi("deals_closed").formula, CATALOG) == (
        "count of opportunities in opportunities where stage in (won, lost), by closed_at in the period"
    )
    assert formula_text(CATALOG.kpi("resolution_time").formula, CATALOG) == (
        "median time from created_at to resolved_at in tickets, by resolved_at in the period"
    )


def test_formula_of_a_derived_kpi_uses_labels_and_symbols(catalog):
    assert formula_text(catalog.kpi("nps").formula, catalog) == "((100 × (Promoters − Detractors)) ÷ NPS answers)"
    assert formula_text(catalog.kpi("clv").formula, catalog) == (
        "((Revenue per customer and month × gross margin) ÷ Monthly churn, trailing 12 months)"
    )


def _entry(kpi_id: str):
    return next(e for e in entries(CATALOG) if e.kpi.id == kpi_id)


@pytest.mark.parametrize(("kpi", "owner", "target"), [
    # 200 a month is 600 a quarter and 200 * 7 / 30.4375 = 46.0 a week
    ("opportunities", "Sales", "≥ 200 per month; ≥ 600 per quarter; ≥ 2,400 per year; ≥ 46 per week"),
    ("win_rate", "Sales", "≥ 28.0% per month; ≥ 28.0% per quarter; ≥ 28.0% per year; ≥ 28.0% per week"),
    ("resolution_time", "Service desk", "≤ 24.0 h per month; ≤ 24.0 h per quarter; ≤ 24.0 h per year; "
                                        "≤ 24.0 h per week"),
    ("deals_won", "Building block", "–"),
])
def test_owner_and_targets_per_month_quarter_year_and_week(kpi, owner, target):
    entry = _entry(kpi)
    assert entry.owner == owner
    assert entry.target == target


def test_bands_state_the_at_risk_threshold():
    # 200 a month, at risk down to 80% of it: 160
    assert _entry("opportunities").bands == "Per month: on track at 200 or more, at risk from 160, off track below 160"
    # lower is better: 24 h, at risk while 24 / value stays at 90% or more (the default band): up to 26.7 h
    assert _entry("resolution_time").bands == ("Per month: on track at 24.0 h or less, at risk up to 26.7 h, "
                                               "off track above 26.7 h")
    assert _entry("deals_won").bands == "–"


def test_shared_outcomes_are_owned_by_the_customer(catalog):
    churn = next(e for e in entries(catalog, "churn_rate"))
    assert churn.owner == "Shared customer outcome"
    assert churn.formula == "Customers lost ÷ Customers at start"


GAPS = parse_catalog("""
teams:
  - {id: service, label: Service}
kpis:
  - id: tickets_closed
    label: Tickets closed
    team: service
    description: Tickets closed in the period.
    unit: count
    direction: up
    simple: {table: tickets, time: resolved_at, agg: count}
    target: {value: 100}
  - id: handle_time
    label: Handle time
    team: service
    description: Median hours to resolve.
    unit: hours
    direction: down
    simple: {table: tickets, time: resolved_at, agg: median, duration: {from: created_at, to: resolved_at}}
    target: {value: 24}
    counterweights: [satisfaction]
  - id: satisfaction
    label: Satisfaction
    team: customer
    description: Average rating.
    unit: score
    direction: up
    simple: {table: tickets, time: resolved_at, agg: avg, column: csat}
    target: {value: 4}
""")


@pytest.mark.parametrize(("kpi_id", "expected"), [
    ("tickets_closed", True),    # a volume KPI nothing guards
    ("handle_time", False),      # a speed KPI with a counterweight
    ("satisfaction", False),     # a shared customer outcome is not a team KPI to game
])
def test_unguarded_marks_gameable_team_kpis_without_a_counterweight(kpi_id, expected):
    assert unguarded(GAPS.kpi(kpi_id)) is expected


def test_the_shipped_catalog_leaves_no_gameable_kpi_unguarded(catalog):
    assert [k.id for k in catalog.kpis if unguarded(k)] == []


def test_the_glossary_says_how_each_changed_kpi_is_judged(catalog):
    rules = {e.kpi.id: e.rules for e in entries(catalog)}
    assert any("Matures for 14 days" in r for r in rules["mql_rate"])
    assert any("tickets of a period" in r or "leads of a period have 90 days to reach customers" in r
               for r in rules["lead_to_customer_rate"])
    for unscored in ("retention_rate", "net_revenue_retention_12m"):
        assert "Shown with its status, not counted in any score (its description says why)." in rules[unscored]
    assert not any("not counted" in r for r in rules["churn_rate"])
    assert "In a filtered view it shows no status: its target is for the whole company." in rules["leads"]
    assert not any("filtered view" in r for r in rules["win_rate"])  # a rate keeps its target in a slice


def test_a_slice_target_is_stated_in_the_glossary():
    sliced = parse_catalog("""
teams: [{id: marketing, label: Marketing}]
kpis:
  - {id: leads, label: Leads, description: d, team: marketing, unit: count, direction: up,
     target: {value: 1000, slices: [{channel: paid_social, value: 300}]},
     simple: {table: leads, time: created_at, agg: count}}
""")
    [entry] = entries(sliced)
    assert entry.rules == ("Targets in a filtered view: channel = paid_social: ≥ 300 per month; other slices show no "
                           "status for this KPI.",)
