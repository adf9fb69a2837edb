"""The KPI catalog: a valid file becomes typed objects, a broken one is refused with every problem named."""
from __future__ import annotations

from pathlib import Path

import pytest

from kpicore.catalog import (
    DEFAULT_CATALOG,
    Agg,
    Condition,
    Derived,
    Direction,
    Op,
    Ratio,
    Simple,
    Target,
    Unit,
    load_catalog,
    parse_catalog,
)
from kpicore.errors import CatalogError

ROOT = Path(__file__).resolve().parent.parent

# A tiny valid catalog. Line numbers of the entries (used by the issue checks below):
# 1 version, 6 deals_won, 15 its where condition, 16 deals_closed, 20 its formula,
# 22 opportunities, 28 its formula, 29 its target, 33 win_rate, 39 its ratio, 42 expected_wins, 48 its expr.
BASE = """\
version: 1
teams:
  - id: sales
    label: Sales
measures:
  - id: deals_won
    label: Deals won
    description: Deals won in the period, by close date.
    unit: count
    simple:
      table: opportunities
      time: closed_at
      agg: count
      where:
        - {column: stage, op: eq, value: won}
  - id: deals_closed
    label: Deals closed
    description: Deals won or lost in the period, by close date.
    unit: count
    simple: {table: opportunities, time: closed_at, agg: count}
kpis:
  - id: opportunities
    label: Opportunities
    team: sales
    description: New deals opened in the period.
    unit: count
    direction: up
    simple: {table: opportunities, time: created_at, agg: count}
    target: {value: 200, at_risk: 0.9}
    counterweights: [win_rate]
    drives: [win_rate]
    aliases: [Deals created]
  - id: win_rate
    label: Win rate
    team: sales
    description: Deals won over deals won or lost, by close date.
    unit: percent
    direction: up
    ratio: {numerator: deals_won, denominator: deals_closed}
    target: {value: 0.28}
    aliases: [Close rate, Gewinnquote]
  - id: expected_wins
    label: Expected wins
    team: sales
    description: Deals opened in the period times the win rate.
    unit: count
    direction: up
    derived: {expr: opportunities * win_rate}
    target: {value: 56}
"""
END = len(BASE.splitlines())  # an entry appended to BASE starts on line END + 1

OPPORTUNITIES_FORMULA = "    simple: {table: opportunities, time: created_at, agg: count}\n"
DEALS_CLOSED_FORMULA = "    simple: {table: opportunities, time: closed_at, agg: count}\n"
WIN_RATE_RATIO = "    ratio: {numerator: deals_won, denominator: deals_closed}\n"
WHERE = "        - {column: stage, op: eq, value: won}\n"
CONVERSION = """\
  - id: lead_conversion
    label: Lead conversion
    team: sales
    description: Share of the period's leads that became customers within 90 days.
    unit: percent
    direction: up
    conversion:
      from: {table: leads, time: created_at}
      to: {table: customers, time: acquired_at}
      key: lead_id
      window_days: 90
    target: {value: 0.05}
"""
CONVERSION_FORMULA = CONVERSION[CONVERSION.index("    conversion:"):CONVERSION.index("    target:")]
DURATION_FORMULA = """\
    simple:
      table: opportunities
      time: closed_at
      agg: median
      duration: {from: created_at, to: closed_at}
"""
CONVERSION_LINE = END + 8  # the conversion mapping starts at its `from:` line


def edit(text: str, *replacements: tuple[str, str]) -> str:
    """`text` with each `old` (which must occur exactly once) replaced by `new`."""
    for old, new in replacements:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
        text = text.replace(old, new)
    return text


def issues_of(text: str) -> list:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text)
    return caught.value.issues


def test_base_catalog_parses_into_typed_objects():
    catalog = parse_catalog(BASE)
    assert [t.id for t in catalog.teams] == ["sales"]
    assert [k.id for k in catalog.kpis] == ["deals_won", "deals_closed", "opportunities", "win_rate", "expected_wins"]
    assert [k.id for k in catalog.measures] == ["deals_won", "deals_closed"]
    assert catalog.kpi("deals_won").formula == Simple(
        "opportunities", "closed_at", Agg.COUNT, where=(Condition("stage", Op.EQ, "won"),)
    )
    opportunities = catalog.kpi("opportunities")
    assert opportunities.team == "sales"
    assert opportunities.direction is Direction.UP
    assert opportunities.unit is Unit.COUNT
    assert opportunities.target == Target(200.0, 0.9)
    assert opportunities.counterweights == ("win_rate",)
    assert opportunities.aliases == ("Deals created",)
    assert opportunities.line == 22
    assert catalog.kpi("win_rate").formula == Ratio("deals_won", "deals_closed")
    assert catalog.kpi("win_rate").target == Target(0.28, 0.9)
    assert catalog.kpi("expected_wins").formula == Derived("opportunities * win_rate")


# (case, broken catalog text, kpi, field, part of the message, line or None when not checked)
BROKEN = [
    ("unknown top-level key",
     edit(BASE, ("version: 1\n", "version: 1\ncolour: blue\n")),
     "catalog", "colour", "is not a known field", 1),
    ("unknown KPI key",
     edit(BASE, ("    aliases: [Deals created]\n", "    aliases: [Deals created]\n    owner: Anna\n")),
     "opportunities", "owner", "is not a known field", 22),
    ("unknown formula field",
     edit(BASE, (OPPORTUNITIES_FORMULA,
                 "    simple: {table: opportunities, time: created_at, agg: count, colum: amount}\n")),
     "opportunities", "simple.colum", "is not a known field", 28),
    ("missing label", edit(BASE, ("    label: Win rate\n", "")), "win_rate", "label", "is required but missing", 33),
    ("missing description",
     edit(BASE, ("    description: Deals won over deals won or lost, by close date.\n", "")),
     "win_rate", "description", "is required but missing", 33),
    ("missing unit", edit(BASE, ("    unit: percent\n", "")), "win_rate", "unit", "is required but missing", 33),
    ("missing team",
     edit(BASE, ("    label: Win rate\n    team: sales\n", "    label: Win rate\n")),
     "win_rate", "team", "is required but missing", 33),
    ("missing direction",
     edit(BASE, ("    unit: percent\n    direction: up\n", "    unit: percent\n")),
     "win_rate", "direction", "is required but missing", 33),
    ("missing target", edit(BASE, ("    target: {value: 0.28}\n", "")), "win_rate", "target", "is required", 33),
    ("missing formula", edit(BASE, (WIN_RATE_RATIO, "")), "win_rate", "formula", "(found: none)", 33),
    ("two formulas",
     edit(BASE, (OPPORTUNITIES_FORMULA, OPPORTUNITIES_FORMULA + WIN_RATE_RATIO)),
     "opportunities", "formula", "(found: simple, ratio)", 22),
    ("bad unit", edit(BASE, ("    unit: percent\n", "    unit: pieces\n")),
     "win_rate", "unit", "'pieces' is not one of: count, percent", 33),
    ("bad direction",
     edit(BASE, ("    unit: percent\n    direction: up\n", "    unit: percent\n    direction: sideways\n")),
     "win_rate", "direction", "'sideways' is not one of: up, down", 33),
    ("bad agg", edit(BASE, (DEALS_CLOSED_FORMULA, DEALS_CLOSED_FORMULA.replace("agg: count", "agg: total"))),
     "deals_closed", "simple.agg", "'total' is not one of: count, count_distinct, sum", 20),
    ("bad op", edit(BASE, (WHERE, WHERE.replace("op: eq", "op: like"))),
     "deals_won", "simple.where[0].op", "'like' is not one of: eq, ne, in", 15),
    ("unknown team",
     edit(BASE, ("    label: Win rate\n    team: sales\n", "    label: Win rate\n    team: finance\n")),
     "win_rate", "team", "'finance' is not a team of the catalog (customer, sales)", 33),
    ("unknown table", edit(BASE, (DEALS_CLOSED_FORMULA, DEALS_CLOSED_FORMULA.replace("table: opportunities",
                                                                                     "table: deals"))),
     "deals_closed", "simple.table", "'deals' is not a table of the data model", 20),
    ("unknown column", edit(BASE, (WHERE, WHERE.replace("column: stage", "column: status"))),
     "deals_won", "simple.where[0].column", "'status' is not a column of opportunities", 15),
    ("non-time column as time",
     edit(BASE, (DEALS_CLOSED_FORMULA, DEALS_CLOSED_FORMULA.replace("time: closed_at", "time: amount"))),
     "deals_closed", "simple.time", "'opportunities.amount' is number, but a timestamp or month column", 20),
    ("text column summed",
     edit(BASE, (OPPORTUNITIES_FORMULA, OPPORTUNITIES_FORMULA.replace("agg: count", "agg: sum, column: owner"))),
     "opportunities", "simple.column", "'opportunities.owner' is not a number", 28),
    ("where without value", edit(BASE, (WHERE, "        - {column: stage, op: eq}\n")),
     "deals_won", "simple.where[0].value", "is needed for 'eq'", 15),
    ("where in without list", edit(BASE, (WHERE, "        - {column: stage, op: in, value: won}\n")),
     "deals_won", "simple.where[0].value", "must be a non-empty list for 'in'", 15),
    ("where in with empty list", edit(BASE, (WHERE, "        - {column: stage, op: in, value: []}\n")),
     "deals_won", "simple.where[0].value", "must be a non-empty list for 'in'", 15),
    ("where is_null with value", edit(BASE, (WHERE, "        - {column: closed_at, op: is_null, value: won}\n")),
     "deals_won", "simple.where[0].value", "is not used with 'is_null'", 15),
    ("where eq with a list", edit(BASE, (WHERE, "        - {column: stage, op: eq, value: [won, lost]}\n")),
     "deals_won", "simple.where[0].value", "eq", 15),
    ("unknown ratio reference",
     edit(BASE, (WIN_RATE_RATIO, WIN_RATE_RATIO.replace("numerator: deals_won", "numerator: deals_wonn"))),
     "win_rate", "ratio", "refers to 'deals_wonn', which is not a KPI, measure or parameter", 33),
    ("unknown derived reference",
     edit(BASE, ("{expr: opportunities * win_rate}", "{expr: opportunities * win_ratio}")),
     "expected_wins", "derived.expr", "refers to 'win_ratio'", 42),
    ("unknown counterweight", edit(BASE, ("    counterweights: [win_rate]\n", "    counterweights: [win_rat]\n")),
     "opportunities", "counterweights", "refers to 'win_rat', which is not a KPI of the catalog", 22),
    ("unknown drives", edit(BASE, ("    drives: [win_rate]\n", "    drives: [churn]\n")),
     "opportunities", "drives", "refers to 'churn', which is not a KPI of the catalog", 22),
    ("counterweight is a measure",
     edit(BASE, ("    counterweights: [win_rate]\n", "    counterweights: [deals_won]\n")),
     "opportunities", "counterweights", "refers to 'deals_won', which is not a KPI of the catalog", 22),
    ("counterweight is the KPI itself",
     edit(BASE, ("    counterweights: [win_rate]\n", "    counterweights: [opportunities]\n")),
     "opportunities", "counterweights", "cannot name the KPI itself", 22),
    ("drives the KPI itself", edit(BASE, ("    drives: [win_rate]\n", "    drives: [opportunities]\n")),
     "opportunities", "drives", "cannot name the KPI itself", 22),
    ("ratio of itself",
     edit(BASE, (WIN_RATE_RATIO, WIN_RATE_RATIO.replace("numerator: deals_won", "numerator: win_rate"))),
     "win_rate", "formula", "forms a cycle: win_rate -> win_rate", 33),
    ("cycle in drives",
     edit(BASE, ("    aliases: [Close rate, Gewinnquote]\n",
                 "    aliases: [Close rate, Gewinnquote]\n    drives: [opportunities]\n")),
     "opportunities", "drives", "forms a cycle: opportunities -> win_rate -> opportunities", 22),
    ("cycle in formulas",
     edit(BASE, (WIN_RATE_RATIO, WIN_RATE_RATIO.replace("numerator: deals_won", "numerator: expected_wins"))),
     "win_rate", "formula", "forms a cycle: win_rate -> expected_wins -> win_rate", 33),
    ("duplicate id",
     BASE + CONVERSION.replace("id: lead_conversion", "id: win_rate"),
     "win_rate", "id", "is used twice (also on line 33)", END + 1),
    ("duplicate label", edit(BASE, ("    label: Expected wins\n", "    label: Win rate\n")),
     "expected_wins", "label", "'Win rate' is already a label or alias of win_rate", 42),
    ("duplicate label in another case", edit(BASE, ("    label: Expected wins\n", "    label: WIN RATE\n")),
     "expected_wins", "label", "'WIN RATE' is already a label or alias of win_rate", 42),
    ("duplicate alias across KPIs, any case",
     edit(BASE, ("    target: {value: 56}\n", "    target: {value: 56}\n    aliases: [gewinnQUOTE]\n")),
     "expected_wins", "aliases", "'gewinnQUOTE' is already a label or alias of win_rate", 42),
    ("alias equal to another KPI's label",
     edit(BASE, ("    target: {value: 56}\n", "    target: {value: 56}\n    aliases: [opportunities]\n")),
     "expected_wins", "aliases", "'opportunities' is already a label or alias of opportunities", 42),
    ("duplicate YAML key",
     edit(BASE, ("    direction: up\n" + OPPORTUNITIES_FORMULA,
                 "    direction: up\n    unit: count\n" + OPPORTUNITIES_FORMULA)),
     "opportunities", "unit", "is given twice", 28),
    ("count KPI with a ratio of two counts", edit(BASE, ("    unit: percent\n", "    unit: count\n")),
     "win_rate", "unit", "'count' does not fit the formula (expected: percent, ratio)", 33),
    ("conversion without value as a count",
     BASE + CONVERSION.replace("unit: percent", "unit: count"),
     "lead_conversion", "unit", "'count' does not fit the formula (expected: percent)", END + 1),
    ("duration as a count",
     BASE + CONVERSION.replace("unit: percent", "unit: count").replace(CONVERSION_FORMULA, DURATION_FORMULA),
     "lead_conversion", "unit", "'count' does not fit the formula (expected: days, hours)", END + 1),
    ("invalid YAML", edit(BASE, ("    label: Expected wins\n", "    label: Expected: wins\n")),
     "catalog", "file", "is not valid YAML", 43),
    ("scoring weights not adding to 1",
     edit(BASE, ("version: 1\n", "version: 1\nscoring: {team_weight: 0.6, customer_weight: 0.5}\n")),
     "catalog", "scoring.team_weight", "must add up to 1 (they add up to 1.1)", 2),
    ("at_risk above 1", edit(BASE, ("{value: 200, at_risk: 0.9}", "{value: 200, at_risk: 1.2}")),
     "opportunities", "target.at_risk", "cannot exceed 1", 29),
    ("derived with a function call",
     edit(BASE, ("{expr: opportunities * win_rate}", "{expr: \"__import__('os').system('true')\"}")),
     "expected_wins", "derived.expr", "may only use KPI ids, parameters, numbers", 48),
    ("derived with an attribute",
     edit(BASE, ("{expr: opportunities * win_rate}", "{expr: opportunities.real * win_rate}")),
     "expected_wins", "derived.expr", "may only use KPI ids, parameters, numbers", 48),
    ("derived that is not an expression",
     edit(BASE, ("{expr: opportunities * win_rate}", "{expr: opportunities *}")),
     "expected_wins", "derived.expr", "is not a valid expression", 48),
]


@pytest.mark.parametrize(("text", "kpi", "field", "message", "line"),
                         [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_each_kind_of_problem_is_reported_once_with_kpi_field_and_line(text, kpi, field, message, line):
    issues = issues_of(text)
    assert len(issues) == 1, "\n".join(str(i) for i in issues)
    issue = issues[0]
    assert (issue.kpi, issue.field) == (kpi, field)
    assert message in issue.message
    assert issue.line == line


@pytest.mark.parametrize("window", ["0", "-5", "ninety", "90.5", "true", "null"])
def test_window_days_must_be_a_positive_whole_number(window):
    issues = issues_of(BASE + CONVERSION.replace("window_days: 90", f"window_days: {window}"))
    assert [(i.kpi, i.field, i.line) for i in issues] == [("lead_conversion", "conversion.window_days",
                                                           CONVERSION_LINE)]
    assert "must be a whole number of days above 0" in issues[0].message


def test_a_valid_conversion_parses():
    kpi = parse_catalog(BASE + CONVERSION).kpi("lead_conversion")
    assert kpi.formula.window_days == 90
    assert (kpi.formula.source.table, kpi.formula.target.table, kpi.formula.key) == ("leads", "customers", "lead_id")


def test_invalid_yaml_is_a_catalog_error_not_a_yaml_traceback():
    issues = issues_of("teams: [sales\nkpis: []\n")
    assert [(i.kpi, i.field) for i in issues] == [("catalog", "file")]
    assert "is not valid YAML" in issues[0].message
    assert issues[0].line is not None


def test_several_problems_are_all_reported_at_once():
    text = edit(
        BASE,
        ("version: 1\n", "version: 1\ncolour: blue\n"),
        (DEALS_CLOSED_FORMULA, DEALS_CLOSED_FORMULA.replace("agg: count", "agg: total")),
        ("    direction: up\n" + OPPORTUNITIES_FORMULA, "    direction: sideways\n" + OPPORTUNITIES_FORMULA),
        ("    label: Win rate\n    team: sales\n", "    label: Win rate\n    team: finance\n"),
        ("    target: {value: 56}\n", "    target: {value: 56}\n    counterweights: [nobody]\n"),
    )
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, "team.yaml")
    found = {(i.kpi, i.field) for i in caught.value.issues}
    assert found == {
        ("catalog", "colour"),
        ("deals_closed", "simple.agg"),
        ("opportunities", "direction"),
        ("win_rate", "team"),
        ("expected_wins", "counterweights"),
    }
    assert len(caught.value.issues) == 5
    message = str(caught.value)
    assert message.startswith("The KPI catalog team.yaml has 5 problem(s):")
    assert "finance" in message and "nobody" in message


def test_a_missing_file_is_a_catalog_error_naming_it(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(CatalogError) as caught:
        load_catalog(missing)
    assert [(i.kpi, i.field) for i in caught.value.issues] == [("catalog", "file")]
    assert "cannot be read" in caught.value.issues[0].message
    assert str(missing) in str(caught.value)


def test_a_catalog_that_is_not_a_mapping_is_refused():
    issues = issues_of("- just\n- a list\n")
    assert [(i.kpi, i.field) for i in issues] == [("catalog", "file")]


# ---- the shipped catalog ----

OUTCOMES = {"retention_rate", "churn_rate", "net_revenue_retention", "net_revenue_retention_12m",
            "lead_to_customer_rate", "lead_to_revenue", "nps", "csat", "clv_cac"}


def test_shipped_catalog_has_the_customer_outcomes(catalog):
    assert {k.id for k in catalog.outcomes} == OUTCOMES
    # each fact counts once in the score: retention is churn's other side, 12-month NRR the same revenue again
    assert {k.id for k in catalog.outcomes if not k.scored} == {"retention_rate", "net_revenue_retention_12m"}


@pytest.mark.parametrize("team", ["marketing", "sales", "service"])
def test_shipped_catalog_has_at_least_five_kpis_per_team(catalog, team):
    assert catalog.team(team).id == team
    assert len(catalog.scored(team)) >= 5


def test_shipped_catalog_is_the_default(monkeypatch):
    monkeypatch.delenv("KPI_CATALOG", raising=False)
    loaded = load_catalog()
    assert loaded.source == str(DEFAULT_CATALOG)
    assert {k.id for k in loaded.outcomes} == OUTCOMES


def test_kpi_catalog_env_var_selects_a_user_file(tmp_path, monkeypatch):
    mine = tmp_path / "mine.yaml"
    mine.write_text(BASE, encoding="utf-8")
    monkeypatch.setenv("KPI_CATALOG", str(mine))
    loaded = load_catalog()
    assert loaded.source == str(mine)
    assert {k.id for k in loaded.kpis} == {"deals_won", "deals_closed", "opportunities", "win_rate", "expected_wins"}
    explicit = load_catalog(ROOT / "kpicore" / "catalog.yaml")
    assert {k.id for k in explicit.outcomes} == OUTCOMES


def test_fingerprint_changes_with_the_text():
    assert parse_catalog(BASE).fingerprint == parse_catalog(BASE).fingerprint
    assert parse_catalog(BASE).fingerprint != parse_catalog(BASE.replace("value: 56", "value: 57")).fingerprint


# ---- targets per grain ----

TARGETS = edit(
    BASE,
    ("    target: {value: 0.28}\n", "    target: {value: 0.28, week: 0.25, quarter: 0.3}\n"),
) + """\
  - id: deal_value
    label: Deal value
    team: sales
    description: Contract value of the deals won in the period.
    unit: currency
    direction: up
    simple: {table: opportunities, time: closed_at, agg: sum, column: amount}
    target: {value: 100000}
  - id: avg_deal_size
    label: Average deal size
    team: sales
    description: Average contract value of the deals won in the period.
    unit: currency
    direction: up
    simple: {table: opportunities, time: closed_at, agg: avg, column: amount}
    target: {value: 12000}
  - id: opportunities_pinned
    label: Opportunities (pinned targets)
    team: sales
    description: Like opportunities, with its own weekly and quarterly target.
    unit: count
    direction: up
    simple: {table: opportunities, time: created_at, agg: count}
    target: {value: 200, week: 40, quarter: 500}
"""


@pytest.mark.parametrize(("kpi", "grain", "expected"), [
    ("opportunities", "month", 200),
    ("opportunities", "quarter", 600),
    ("opportunities", "week", 200 * 7 / 30.4375),  # 45.996: a week is 7 of the average month's 30.4375 days
    ("deal_value", "quarter", 300000),
    ("deal_value", "week", 100000 * 7 / 30.4375),
    ("avg_deal_size", "quarter", 12000),
    ("avg_deal_size", "week", 12000),
    ("opportunities_pinned", "month", 200),
    ("opportunities_pinned", "week", 40),
    ("opportunities_pinned", "quarter", 500),
    ("win_rate", "month", 0.28),
    ("win_rate", "week", 0.25),
    ("win_rate", "quarter", 0.3),
    ("deals_won", "month", None),
])
def test_target_for_grain(kpi, grain, expected):
    value = parse_catalog(TARGETS).kpi(kpi).target_for(grain)
    assert value == (None if expected is None else pytest.approx(expected))


def test_rate_targets_do_not_scale():
    win_rate = parse_catalog(BASE).kpi("win_rate")
    assert [win_rate.target_for(g) for g in ("week", "month", "quarter")] == [0.28, 0.28, 0.28]
