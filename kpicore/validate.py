"""Catalog validation: turn a parsed YAML document into a Catalog and a list of every problem."""
from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from kpicore.catalog import (
    CUSTOMER,
    FORMULA_KEYS,
    JOURNEY_STEPS,
    Agg,
    Catalog,
    Condition,
    Conversion,
    Derived,
    Direction,
    Formula,
    JourneySettings,
    Kpi,
    NetRetention,
    Op,
    Ratio,
    Scoring,
    Side,
    Simple,
    Stock,
    Target,
    Team,
    Unit,
)
from kpicore.display import linking, printable
from kpicore.errors import CatalogIssue
from kpicore.model import TABLES, ColumnType

TOP_KEYS = {"version", "currency", "scoring", "parameters", "teams", "measures", "kpis", "journey"}
MEASURE_KEYS = {"id", "label", "description", "unit", *FORMULA_KEYS}
KPI_KEYS = MEASURE_KEYS | {"team", "direction", "target", "weight", "counterweights", "drives", "aliases", "score",
                           "mature_days"}
FORMULA_FIELDS: dict[str, tuple[set[str], set[str]]] = {  # required, optional
    "simple": ({"table", "time", "agg"}, {"column", "duration", "where", "trailing_months"}),
    "stock": ({"table", "start", "end", "at"}, {"where"}),
    "ratio": ({"numerator", "denominator"}, set()),
    "derived": ({"expr"}, set()),
    "conversion": ({"from", "to", "key", "window_days"}, {"value", "lookback"}),
    "net_retention": ({"table", "key", "time", "value"}, {"months"}),
}
SIDE_FIELDS = ({"table", "time"}, {"where"})
NUMERIC = (ColumnType.NUMBER, ColumnType.INTEGER)
E = TypeVar("E", bound=Enum)


class _Report:
    """Collects issues while one entry is being read."""

    def __init__(self) -> None:
        self.issues: list[CatalogIssue] = []

    def add(self, kpi: str, field: str, message: str, line: int | None = None) -> None:
        self.issues.append(CatalogIssue(kpi, field, message, line))


class _Entry:
    """Reads the fields of one mapping, reporting problems against an id and line."""

    def __init__(self, raw: dict[str, Any], owner: str, prefix: str, report: _Report) -> None:
        self.raw, self.owner, self.prefix, self.report = raw, owner, prefix, report
        self.line = getattr(raw, "line", None)

    def problem(self, field: str, message: str) -> None:
        self.report.add(self.owner, f"{self.prefix}{field}", message, self.line)

    def check_keys(self, required: Iterable[str], allowed: Iterable[str]) -> None:
        for key in sorted(set(self.raw) - set(allowed) - set(required), key=str):
            known = ", ".join(sorted(set(allowed) | set(required)))
            self.problem(str(key), f"is not a known field (allowed: {known}).")
        for key in sorted(set(required) - set(self.raw)):
            self.problem(key, "is required but missing.")

    def text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(key, "must be a non-empty text.")
            return None
        return self.words(key, value.strip())

    def words(self, key: str, value: str) -> str | None:
        """Text shown on the pages, which show it as Markdown: nothing in it may become a link or an image."""
        if (part := linking(value)) is not None:
            self.problem(key, f"'{printable(part)}' would show as a link or an image; catalog text is shown as "
                              "written, so links, images and web or mail addresses are refused. Remove it.")
            return None
        return value

    def number(self, key: str, default: float | None = None, low: float | None = None) -> float | None:
        value = self.raw.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problem(key, f"must be a number, not '{value}'.")
            return None
        if low is not None and value <= low:
            self.problem(key, f"must be greater than {low}.")
            return None
        return float(value)

    def choice(self, key: str, enum: type[E]) -> E | None:
        value = self.raw.get(key)
        if value is None:
            return None
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(member.value for member in enum)
            self.problem(key, f"'{value}' is not one of: {allowed}.")
            return None

    def names(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(key, "must be a list of names.")
            return ()
        if any(self.words(key, v) is None for v in value):
            return ()
        return tuple(value)

    def child(self, key: str) -> _Entry | None:
        value = self.raw.get(key)
        if not isinstance(value, dict):
            if value is not None:
                self.problem(key, "must be a mapping of fields.")
            return None
        return _Entry(value, self.owner, f"{self.prefix}{key}.", self.report)


def build_catalog(document: Any, source: str, fingerprint: str) -> tuple[Catalog | None, list[CatalogIssue]]:
    """Parse a YAML document into a Catalog, with every problem found."""
    report = _Report()
    if not isinstance(document, dict):
        report.add("catalog", "file", "must be a mapping with at least 'teams' and 'kpis'.")
        return None, report.issues
    top = _Entry(document, "catalog", "", report)
    top.check_keys({"teams", "kpis"}, TOP_KEYS)
    teams = _teams(document.get("teams"), report)
    parameters = _parameters(document.get("parameters", {}), report)
    scoring = _scoring(top.child("scoring"))
    entries = _list(document, "measures", report) + _list(document, "kpis", report)
    kpis = [kpi for kpi in (_kpi(raw, is_measure, report) for raw, is_measure in entries) if kpi]
    declared = {raw.get("id") for raw, _ in entries}
    context = _Context(kpis, teams, parameters, declared, report)
    for rule in RULES:
        rule(context)
    currency = top.text("currency") or "EUR"
    journey = _journey(top.child("journey"), teams, kpis) if "journey" in document else JourneySettings()
    catalog = Catalog(source, fingerprint, tuple(teams), tuple(kpis), scoring or Scoring(), parameters, currency,
                      journey or JourneySettings())
    return catalog, report.issues


def _journey(entry: _Entry | None, teams: list[Team], kpis: list[Kpi]) -> JourneySettings | None:
    """The `journey:` section: owners and windows of the funnel's steps, the early churn KPI and the hand-offs."""
    if entry is None:
        return None
    entry.check_keys(set(), {"owners", "settle_days", "retained_days", "early_churn", "handoffs"})
    default = JourneySettings()
    owners = dict(default.owners) | _mapping(entry, "owners")
    allowed = {t.id for t in teams} | {CUSTOMER}
    for step, owner in owners.items():
        if step not in JOURNEY_STEPS:
            entry.problem("owners", f"'{step}' is not a step of the journey ({', '.join(JOURNEY_STEPS)}).")
        elif owner not in allowed:
            entry.problem("owners", f"{step}: '{owner}' is not a team ({', '.join(sorted(allowed))}).")
    settle = dict(default.settle_days) | _mapping(entry, "settle_days")
    for step, days in settle.items():
        if step not in ("qualified", "opportunity", "customer") or isinstance(days, bool) or not isinstance(days, int) \
                or days <= 0:
            entry.problem("settle_days", f"{step}: {days!r} must be a whole number of days for qualified, "
                                         "opportunity or customer.")
    retained = _whole(entry, "retained_days") if "retained_days" in entry.raw else default.retained_days
    by_id = {k.id: k for k in kpis}
    early = entry.text("early_churn") if "early_churn" in entry.raw else None
    window = default.early_churn_days
    if early is not None and not isinstance(formula := getattr(by_id.get(early), "formula", None), Conversion):
        entry.problem("early_churn", f"'{early}' must be a conversion KPI of the catalog (customers to their churn).")
    elif early is not None:
        window = formula.window_days
    handoffs = []
    for item in entry.raw.get("handoffs", []) or []:
        if not isinstance(item, dict) or set(item) != {"kpi", "hand_over"} or item["kpi"] not in by_id:
            entry.problem("handoffs", f"{item!r} must be {{kpi: <a KPI id>, hand_over: <what it measures>}}.")
            continue
        if (text := entry.words("handoffs", str(item["hand_over"]))) is not None:
            handoffs.append((item["kpi"], text))
    if retained is None:
        return None
    return JourneySettings(tuple((s, owners[s]) for s in JOURNEY_STEPS if s in owners), tuple(settle.items()),
                           retained, early, window, tuple(handoffs))


def _mapping(entry: _Entry, key: str) -> dict[str, Any]:
    value = entry.raw.get(key, {})
    if not isinstance(value, dict):
        entry.problem(key, "must be a mapping of step to value.")
        return {}
    return {str(k): v for k, v in value.items()}


def _list(document: dict[str, Any], key: str, report: _Report) -> list[tuple[dict[str, Any], bool]]:
    value = document.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        report.add("catalog", key, "must be a list of entries, each a mapping of fields.")
        return []
    return [(item, key == "measures") for item in value]


def _teams(value: Any, report: _Report) -> list[Team]:
    if not isinstance(value, list) or not value:
        report.add("catalog", "teams", "must be a non-empty list of teams with id and label.")
        return []
    teams = []
    for raw in value:
        if not isinstance(raw, dict):
            report.add("catalog", "teams", f"entry '{raw}' must be a mapping with id and label.")
            continue
        entry = _Entry(raw, f"team {raw.get('id', '?')}", "", report)
        entry.check_keys({"id", "label"}, {"description"})
        team_id, label = entry.text("id"), entry.text("label")
        if team_id == CUSTOMER:
            entry.problem("id", f"'{CUSTOMER}' is reserved for the shared customer outcomes.")
        elif team_id and label:
            teams.append(Team(team_id, label, entry.text("description") or ""))
    return teams


def _parameters(value: Any, report: _Report) -> dict[str, float]:
    if not isinstance(value, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()
    ):
        report.add("catalog", "parameters", "must map names to numbers, e.g. gross_margin: 0.7.")
        return {}
    return {str(k): float(v) for k, v in value.items()}


def _scoring(entry: _Entry | None) -> Scoring | None:
    if entry is None:
        return None
    entry.check_keys(set(), {"team_weight", "customer_weight", "attainment_cap", "at_risk"})
    default = Scoring()
    team = entry.number("team_weight", default.team_weight, low=-1e-12)
    customer = entry.number("customer_weight", default.customer_weight, low=-1e-12)
    cap = entry.number("attainment_cap", default.attainment_cap, low=0)
    at_risk = entry.number("at_risk", default.at_risk, low=0)
    if team is None or customer is None or cap is None or at_risk is None:
        return None
    if abs(team + customer - 1) > 1e-9:
        entry.problem("team_weight", f"and customer_weight must add up to 1 (they add up to {team + customer:g}).")
    return Scoring(team, customer, cap, at_risk)


def _kpi(raw: dict[str, Any], is_measure: bool, report: _Report) -> Kpi | None:
    kpi_id = raw.get("id") if isinstance(raw.get("id"), str) else "?"
    entry = _Entry(raw, kpi_id, "", report)
    required = {"id", "label", "description", "unit"} | (set() if is_measure else {"team", "direction", "target"})
    before = len(report.issues)
    entry.check_keys(required, MEASURE_KEYS if is_measure else KPI_KEYS)
    label, description, unit = entry.text("label"), entry.text("description"), entry.choice("unit", Unit)
    formula = _formula(entry)
    team = direction = target = None
    if not is_measure:
        team, direction, target = entry.text("team"), entry.choice("direction", Direction), _target(entry)
    weight = entry.number("weight", 1.0, low=0)
    names = {key: entry.names(key) for key in ("counterweights", "drives", "aliases")}
    scored = raw.get("score", True)
    if not isinstance(scored, bool):
        entry.problem("score", f"must be true or false, not '{scored}'.")
    mature_days = _whole(entry, "mature_days") if "mature_days" in raw else None
    if len(report.issues) > before or not (entry.text("id") and label and description and unit and formula):
        return None
    return Kpi(kpi_id, label, description or "", unit, formula, team, direction, target, weight or 1.0,
               names["counterweights"], names["drives"], names["aliases"], entry.line, scored, mature_days)


def _whole(entry: _Entry, key: str) -> int | None:
    """A whole number above 0 (days, months), or None with a problem reported."""
    value = entry.raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        entry.problem(key, f"must be a whole number above 0, not '{value}'.")
        return None
    return value


def _target(entry: _Entry) -> Target | None:
    child = entry.child("target")
    if child is None:
        return None
    child.check_keys({"value"}, {"at_risk", "week", "quarter", "year", "slices"})
    value = child.number("value")
    by_grain = tuple((grain, child.number(grain)) for grain in ("week", "quarter", "year") if grain in child.raw)
    at_risk = child.number("at_risk", 0.9, low=0)
    if at_risk is not None and at_risk > 1:
        child.problem("at_risk", "is the attainment (0 to 1) below which the KPI is off track; it cannot exceed 1.")
        return None
    slices = _slices(child)
    if value is None or at_risk is None or any(v is None for _, v in by_grain) or slices is None:
        return None
    return Target(value, at_risk, by_grain, slices)  # type: ignore[arg-type]


def _slices(entry: _Entry) -> tuple[tuple[str, str, float], ...] | None:
    """`slices: [{channel: paid_social, value: 300}]`: monthly targets for one value of a filter dimension."""
    from kpicore.filters import DIMENSIONS

    raw = entry.raw.get("slices", [])
    if not isinstance(raw, list):
        entry.problem("slices", "must be a list like [{channel: paid_social, value: 300}].")
        return None
    found = []
    for item in raw:
        named = [k for k in item if k != "value"] if isinstance(item, dict) else []
        if len(named) != 1 or named[0] not in DIMENSIONS or not isinstance(item.get("value"), int | float) \
                or isinstance(item.get("value"), bool):
            entry.problem("slices", f"{item!r} must name one of {', '.join(DIMENSIONS)} and a number 'value', "
                                    "like {channel: paid_social, value: 300}.")
            return None
        found.append((named[0], str(item[named[0]]), float(item["value"])))
    return tuple(found)


def _formula(entry: _Entry) -> Formula | None:
    kinds = [key for key in FORMULA_KEYS if key in entry.raw]
    if len(kinds) != 1:
        found = ", ".join(kinds) or "none"
        entry.problem("formula", f"needs exactly one of {', '.join(FORMULA_KEYS)} (found: {found}).")
        return None
    kind = kinds[0]
    child = entry.child(kind)
    if child is None:
        if entry.raw[kind] is None:
            entry.problem(kind, "must be a mapping of fields.")
        return None
    required, optional = FORMULA_FIELDS[kind]
    child.check_keys(required, optional)
    if set(required) - set(child.raw):
        return None
    return PARSERS[kind](child)


def _table(entry: _Entry, key: str = "table") -> str | None:
    name = entry.text(key)
    if name is not None and name not in TABLES:
        entry.problem(key, f"'{name}' is not a table of the data model ({', '.join(TABLES)}).")
        return None
    return name


def _column(entry: _Entry, table: str | None, key: str, types: tuple[ColumnType, ...] = ()) -> str | None:
    name = entry.text(key)
    if name is None or table is None:
        return None
    column = TABLES[table].column(name)
    if column is None:
        entry.problem(key, f"'{name}' is not a column of {table} ({', '.join(TABLES[table].column_names)}).")
        return None
    if types and column.type not in types:
        kinds = " or ".join(t.value for t in types)
        entry.problem(key, f"'{table}.{name}' is {column.type.value}, but a {kinds} column is needed here.")
        return None
    return name


def _time(entry: _Entry, table: str | None, key: str = "time") -> str | None:
    return _column(entry, table, key, (ColumnType.TIMESTAMP, ColumnType.MONTH))


def _where(entry: _Entry, table: str | None) -> tuple[Condition, ...]:
    raw = entry.raw.get("where", [])
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        entry.problem("where", "must be a list of conditions like {column: stage, op: eq, value: won}.")
        return ()
    conditions = []
    for index, item in enumerate(raw):
        cond = _Entry(item, entry.owner, f"{entry.prefix}where[{index}].", entry.report)
        cond.check_keys({"column", "op"}, {"value"})
        column, op = _column(cond, table, "column"), cond.choice("op", Op)
        if op is None or column is None:
            continue
        value = item.get("value")
        if op.takes_value and value is None:
            cond.problem("value", f"is needed for '{op.value}'.")
        elif op.takes_list and not (isinstance(value, list) and value):
            cond.problem("value", f"must be a non-empty list for '{op.value}'.")
        elif op.takes_value and not op.takes_list and isinstance(value, (list, dict)):
            cond.problem("value", f"must be a single value for '{op.value}' (use 'in' for a list).")
        elif not op.takes_value and value is not None:
            cond.problem("value", f"is not used with '{op.value}'; remove it.")
        else:
            conditions.append(Condition(column, op, tuple(value) if op.takes_list else value))
    return tuple(conditions)


def _simple(entry: _Entry) -> Simple | None:
    table = _table(entry)
    time, agg = _time(entry, table), entry.choice("agg", Agg)
    column = _column(entry, table, "column")
    duration = None
    if "duration" in entry.raw:
        span = entry.child("duration")
        if span is not None:
            span.check_keys({"from", "to"}, set())
            start, end = _time(span, table, "from"), _time(span, table, "to")
            duration = (start, end) if start and end else None
    where = _where(entry, table)
    if agg is None or time is None or table is None:
        return None
    measured = column is not None or duration is not None
    if agg in (Agg.SUM, Agg.AVG, Agg.MEDIAN) and not measured:
        entry.problem("agg", f"'{agg.value}' needs a 'column' or a 'duration' to aggregate.")
        return None
    if agg is Agg.COUNT_DISTINCT and column is None:
        entry.problem("agg", "'count_distinct' needs the 'column' whose distinct values are counted.")
        return None
    if column and duration:
        entry.problem("duration", "give either a 'column' or a 'duration', not both.")
        return None
    if column and agg in (Agg.SUM, Agg.AVG, Agg.MEDIAN) and TABLES[table].column(column).type not in NUMERIC:
        entry.problem("column", f"'{table}.{column}' is not a number and cannot be aggregated with '{agg.value}'.")
        return None
    trailing = _whole(entry, "trailing_months") if "trailing_months" in entry.raw else None
    if "trailing_months" in entry.raw and trailing is None:
        return None
    return Simple(table, time, agg, column, duration, where, trailing)


def _stock(entry: _Entry) -> Stock | None:
    table = _table(entry)
    start, end = _time(entry, table, "start"), _time(entry, table, "end")
    at, where = entry.text("at"), _where(entry, table)
    if at not in ("start", "end", "left"):
        entry.problem("at", f"'{at}' must be 'start' or 'end' (of the period), or 'left' (active at its start, "
                            "gone before its end).")
        return None
    return Stock(table, start, end, at, where) if table and start and end else None


def _ratio(entry: _Entry) -> Ratio | None:
    numerator, denominator = entry.text("numerator"), entry.text("denominator")
    return Ratio(numerator, denominator) if numerator and denominator else None


def _derived(entry: _Entry) -> Derived | None:
    expr = entry.text("expr")
    if expr is None:
        return None
    try:
        expression_names(expr)
    except ValueError as error:
        entry.problem("expr", str(error))
        return None
    return Derived(expr)


def _side(entry: _Entry, key: str) -> Side | None:
    child = entry.child(key)
    if child is None:
        return None
    child.check_keys(*SIDE_FIELDS)
    table = _table(child)
    time, where = _time(child, table), _where(child, table)
    return Side(table, time, where) if table and time else None


def _conversion(entry: _Entry) -> Conversion | None:
    source, target = _side(entry, "from"), _side(entry, "to")
    window = entry.raw.get("window_days")
    if isinstance(window, bool) or not isinstance(window, int) or window <= 0:
        entry.problem("window_days", f"must be a whole number of days above 0, not '{window}'.")
        return None
    if source is None or target is None:
        return None
    key = _column(entry, source.table, "key")
    if key and TABLES[target.table].column(key) is None:
        entry.problem("key", f"'{key}' must be a column of both {source.table} and {target.table}.")
        return None
    value = _column(entry, target.table, "value", NUMERIC) if "value" in entry.raw else None
    lookback = entry.raw.get("lookback", False)
    if not isinstance(lookback, bool):
        entry.problem("lookback", f"must be true or false, not '{lookback}'.")
        return None
    return Conversion(source, target, key, window, value, lookback) if key else None


def _net_retention(entry: _Entry) -> NetRetention | None:
    table = _table(entry)
    key, time = _column(entry, table, "key"), _time(entry, table)
    value = _column(entry, table, "value", NUMERIC)
    months = _whole(entry, "months") if "months" in entry.raw else None
    if "months" in entry.raw and months is None:
        return None
    return NetRetention(table, key, time, value, months) if table and key and time and value else None


PARSERS: dict[str, Callable[[_Entry], Formula | None]] = {
    "simple": _simple, "stock": _stock, "ratio": _ratio, "derived": _derived,
    "conversion": _conversion, "net_retention": _net_retention,
}


def expression_names(expr: str) -> list[str]:
    """Names used by a derived expression; ValueError if it is more than arithmetic."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        raise ValueError(f"'{expr}' is not a valid expression.") from None
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            continue
        elif not isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Load, ast.Add, ast.Sub,
                                   ast.Mult, ast.Div, ast.USub, ast.UAdd)):
            raise ValueError(
                f"'{expr}' may only use KPI ids, parameters, numbers, + - * / and parentheses."
            )
    return names


def references(formula: Formula) -> list[str]:
    """KPI ids a formula is computed from."""
    if isinstance(formula, Ratio):
        return [formula.numerator, formula.denominator]
    if isinstance(formula, Derived):
        return expression_names(formula.expr)
    return []


@dataclass(frozen=True)
class _Context:
    """What the cross-entry rules look at: entries that parsed, and every id declared."""

    kpis: list[Kpi]
    teams: list[Team]
    parameters: dict[str, float]
    declared: set[Any]
    report: _Report


# Cross-entry rules: each reports what it finds. Entries that failed to parse are skipped,
# but their ids still count as declared, so one broken entry does not cascade.

def _duplicates(ctx: _Context) -> None:
    kpis, teams, report = ctx.kpis, ctx.teams, ctx.report
    seen_ids: dict[str, Kpi] = {}
    seen_names: dict[str, Kpi] = {}
    for kpi in kpis:
        if kpi.id in seen_ids:
            report.add(kpi.id, "id", f"is used twice (also on line {seen_ids[kpi.id].line}).", kpi.line)
        seen_ids.setdefault(kpi.id, kpi)
        for field, name in [("label", kpi.label)] + [("aliases", a) for a in kpi.aliases]:
            other = seen_names.get(name.casefold())
            if other is not None and other is not kpi:
                report.add(kpi.id, field, f"'{name}' is already a label or alias of {other.id}.", kpi.line)
            seen_names.setdefault(name.casefold(), kpi)
    for team_id in {t.id for t in teams if [u.id for u in teams].count(t.id) > 1}:
        report.add(f"team {team_id}", "id", "is used twice.")


def _references(ctx: _Context) -> None:
    kpis, report = ctx.kpis, ctx.report
    by_id = {k.id: k for k in kpis}
    team_ids = {t.id for t in ctx.teams} | {CUSTOMER}
    for kpi in kpis:
        if kpi.team is not None and kpi.team not in team_ids:
            report.add(kpi.id, "team", f"'{kpi.team}' is not a team of the catalog ({', '.join(sorted(team_ids))}).",
                       kpi.line)
        field = "ratio" if isinstance(kpi.formula, Ratio) else "derived.expr"
        for name in references(kpi.formula):
            if name not in ctx.declared and not (isinstance(kpi.formula, Derived) and name in ctx.parameters):
                report.add(kpi.id, field, f"refers to '{name}', which is not a KPI, measure or parameter.", kpi.line)
        for field in ("counterweights", "drives"):
            for name in getattr(kpi, field):
                target = by_id.get(name)
                if name not in ctx.declared or (target is not None and target.is_measure):
                    report.add(kpi.id, field, f"refers to '{name}', which is not a KPI of the catalog.", kpi.line)
                elif name == kpi.id:
                    report.add(kpi.id, field, "cannot name the KPI itself.", kpi.line)


def _cycles(ctx: _Context) -> None:
    by_id = {k.id: k for k in ctx.kpis}
    edges = {
        "drives": {k.id: [d for d in k.drives if d in by_id and d != k.id] for k in ctx.kpis},
        "formula": {k.id: [r for r in references(k.formula) if r in by_id] for k in ctx.kpis},
    }
    for field, graph in edges.items():
        for cycle in _find_cycles(graph):
            path = " -> ".join(cycle + [cycle[0]])
            ctx.report.add(cycle[0], field, f"forms a cycle: {path}.", by_id[cycle[0]].line)


def _find_cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """One representative of each cycle in a directed graph."""
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in graph:
        if start not in state:
            visit(start, [start])
    return cycles


def _units(ctx: _Context) -> None:
    by_id = {k.id: k for k in ctx.kpis}
    for kpi in ctx.kpis:
        allowed = _allowed_units(kpi.formula, by_id)
        if allowed is not None and kpi.unit not in allowed:
            names = ", ".join(sorted(u.value for u in allowed))
            message = f"'{kpi.unit.value}' does not fit the formula (expected: {names})."
            ctx.report.add(kpi.id, "unit", message, kpi.line)


def _allowed_units(formula: Formula, by_id: dict[str, Kpi]) -> set[Unit] | None:
    if isinstance(formula, Simple):
        if formula.duration is not None:
            return {Unit.HOURS, Unit.DAYS}
        if formula.agg in (Agg.COUNT, Agg.COUNT_DISTINCT):
            return {Unit.COUNT}
        return set(Unit) - {Unit.PERCENT}
    if isinstance(formula, Stock):
        return {Unit.COUNT}
    if isinstance(formula, Conversion):
        return {Unit.CURRENCY} if formula.value else {Unit.PERCENT}
    if isinstance(formula, NetRetention):
        return {Unit.PERCENT}
    if isinstance(formula, Ratio):
        numerator, denominator = by_id.get(formula.numerator), by_id.get(formula.denominator)
        if numerator is None or denominator is None:
            return None
        if numerator.unit == denominator.unit:
            return {Unit.PERCENT, Unit.RATIO}
        if denominator.unit == Unit.COUNT:
            return {numerator.unit, Unit.RATIO}
        return None
    return None


def _maturity(ctx: _Context) -> None:
    """A KPI counting rows once a later date is set (leads once qualified) grows after its period ends: it must
    say for how many days, so that its young periods are treated as maturing."""
    by_id = {k.id: k for k in ctx.kpis}

    def inputs(kpi: Kpi, seen: frozenset[str]) -> list[Kpi]:  # the atoms, safe from cycles (reported elsewhere)
        if not isinstance(kpi.formula, (Ratio, Derived)):
            return [kpi]
        return [atom for name in references(kpi.formula) if name in by_id and name not in seen
                for atom in inputs(by_id[name], seen | {name})]

    for kpi in ctx.kpis:
        if kpi.is_measure or kpi.mature_days is not None:
            continue
        for atom in inputs(kpi, frozenset({kpi.id})):
            later = [c.column for c in getattr(atom.formula, "where", ()) if isinstance(atom.formula, Simple)
                     and c.op is Op.NOT_NULL and c.column != atom.formula.time
                     and TABLES[atom.formula.table].column(c.column).type.is_time]
            if later:
                ctx.report.add(kpi.id, "mature_days",
                               f"counts {atom.formula.table} by {atom.formula.time} once {later[0]} is set, which "
                               "happens later: its latest periods still grow. Give mature_days (the days that "
                               "usually takes).", kpi.line)
                break


RULES: list[Callable[[_Context], None]] = [
    _duplicates, _references, _cycles, _units, _maturity,
]
