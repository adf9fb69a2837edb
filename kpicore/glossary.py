"""The glossary: each KPI's single definition in words, and search over it."""
from __future__ import annotations

import ast
from dataclasses import dataclass

from kpicore.catalog import (
    CUSTOMER,
    Agg,
    Catalog,
    Condition,
    Conversion,
    Derived,
    Formula,
    Kpi,
    NetRetention,
    Op,
    Ratio,
    Simple,
    Stock,
    Unit,
)
from kpicore.display import format_value

_OPS = {Op.EQ: "=", Op.NE: "≠", Op.GT: ">", Op.GE: "≥", Op.LT: "<", Op.LE: "≤", Op.IN: "in", Op.NOT_IN: "not in"}


def _where(conditions: tuple[Condition, ...]) -> str:
    parts = []
    for c in conditions:
        if c.op is Op.IS_NULL:
            parts.append(f"{c.column} is empty")
        elif c.op is Op.NOT_NULL:
            parts.append(f"{c.column} is set")
        elif c.op.takes_list:
            parts.append(f"{c.column} {_OPS[c.op]} ({', '.join(str(v) for v in c.value)})")
        else:
            value = str(c.value).lower() if isinstance(c.value, bool) else c.value
            parts.append(f"{c.column} {_OPS[c.op]} {value}")
    return f" where {' and '.join(parts)}" if parts else ""


def formula_text(formula: Formula, catalog: Catalog) -> str:
    """The formula in one line of plain words, KPIs named by their labels."""
    labels = {k.id: k.label for k in catalog.kpis}
    if isinstance(formula, Simple):
        if formula.duration is not None:
            what = f"{formula.agg.value} time from {formula.duration[0]} to {formula.duration[1]}"
        elif formula.agg is Agg.COUNT:
            what = f"count of {formula.table}"
        else:
            what = f"{formula.agg.value.replace('_', ' ')} of {formula.column}"
        when = (f"in the {formula.trailing_months} months up to the period's end" if formula.trailing_months
                else "in the period")
        return f"{what} in {formula.table}{_where(formula.where)}, by {formula.time} {when}"
    if isinstance(formula, Stock):
        if formula.at == "left":
            return (f"{formula.table} active on the first day of the period ({formula.start} before it) whose "
                    f"{formula.end} falls in the period{_where(formula.where)}")
        moment = "first day of the period" if formula.at == "start" else "first day after the period"
        return (f"{formula.table} active on the {moment} ({formula.start} before it, "
                f"{formula.end} empty or not before it){_where(formula.where)}")
    if isinstance(formula, Ratio):
        return f"{labels[formula.numerator]} ÷ {labels[formula.denominator]}"
    if isinstance(formula, Derived):
        return _expression(ast.parse(formula.expr, mode="eval").body, labels)
    if isinstance(formula, Conversion):
        reached = (f"sum of {formula.target.table}.{formula.value}" if formula.value
                   else f"share of {formula.source.table}")
        per = f" per {formula.source.table.rstrip('s')}" if formula.value else ""
        return (f"{reached}{per} created in the period (by {formula.source.time}{_where(formula.source.where)}) "
                f"reaching {formula.target.table} (by {formula.target.time}{_where(formula.target.where)}) "
                f"within {formula.window_days} days {'before' if formula.lookback else 'after'}, "
                f"matched on {formula.key}")
    if isinstance(formula, NetRetention):
        base = (f"{formula.months} months before it" if formula.months
                else "in the month before the period began")
        return (f"{formula.value} in the period's last month from each {formula.key} that paid {base} "
                f"÷ their {formula.value} then ({formula.table} by {formula.time})")
    raise TypeError(formula)


def _expression(node: ast.expr, labels: dict[str, str]) -> str:
    if isinstance(node, ast.BinOp):
        symbol = {ast.Add: "+", ast.Sub: "−", ast.Mult: "×", ast.Div: "÷"}[type(node.op)]
        return f"({_expression(node.left, labels)} {symbol} {_expression(node.right, labels)})"
    if isinstance(node, ast.UnaryOp):
        return f"−{_expression(node.operand, labels)}"
    if isinstance(node, ast.Constant):
        return f"{node.value:g}"
    assert isinstance(node, ast.Name)
    return labels.get(node.id, node.id.replace("_", " "))


def rules(kpi: Kpi, catalog: Catalog) -> tuple[str, ...]:
    """How a KPI is judged beyond its target, in words: when its periods mature, whether it is scored, and the
    targets of slices."""
    found = []
    formula = kpi.formula
    if isinstance(formula, Conversion) and not formula.lookback:
        found.append(f"A cohort KPI: the {formula.source.table} of a period have {formula.window_days} days to reach "
                     f"{formula.target.table}, so a period is maturing until the data reaches {formula.window_days} "
                     "days past its end (shown hollow, not scored, not compared, no tension).")
    if kpi.mature_days:
        found.append(f"Matures for {kpi.mature_days} days: its numerator happens after its denominator, so a period "
                     f"is maturing until the data reaches {kpi.mature_days} days past its end (shown hollow, not "
                     "scored, not compared, no tension).")
    if not kpi.scored and kpi.target is not None:
        found.append("Shown with its status, not counted in any score (its description says why).")
    if kpi.target is not None and kpi.sliced and kpi.target.slices and kpi.direction is not None:
        sign = "≥" if kpi.direction.value == "up" else "≤"
        found.append("Targets in a filtered view: " + "; ".join(
            f"{dimension} = {value}: {sign} {format_value(target, kpi.unit, catalog.currency)} per month"
            for dimension, value, target in kpi.target.slices) + "; other slices show no status for this KPI.")
    elif kpi.target is not None and kpi.sliced and kpi.direction is not None:
        found.append("In a filtered view it shows no status: its target is for the whole company.")
    return tuple(found)


GAMEABLE_UNITS = (Unit.COUNT, Unit.HOURS, Unit.DAYS)  # volume and speed KPIs are the easy ones to game


def unguarded(kpi: Kpi) -> bool:
    """Whether a team KPI can be gamed (a volume or speed KPI) but no counterweight guards it."""
    return kpi.team not in (None, CUSTOMER) and kpi.unit in GAMEABLE_UNITS and not kpi.counterweights


@dataclass(frozen=True)
class Entry:
    """One glossary row."""

    kpi: Kpi
    owner: str
    formula: str
    target: str
    bands: str
    rules: tuple[str, ...] = ()  # how the KPI is judged beyond its target: maturing, not scored, slice targets

    def matches(self, query: str) -> bool:
        """Whether a search text occurs in the id, label, aliases, description, owner or formula."""
        words = query.casefold().split()
        haystack = " ".join(
            [self.kpi.id, self.kpi.label, self.kpi.description, self.owner, self.formula, *self.kpi.aliases]
        ).casefold()
        return all(word in haystack for word in words)


def _bands(kpi: Kpi, currency: str) -> str:
    """The status bands of a month in the KPI's own unit: 'Per month: on track at 200 or more, at risk from 160,
    off track below 160' (at risk while the value reaches the at_risk share of the target, see status_of)."""
    assert kpi.target is not None and kpi.direction is not None
    target = kpi.target_for("month")
    on, line = format_value(target, kpi.unit, currency), kpi.target.at_risk
    if kpi.direction.value == "up":
        edge = format_value(target * line, kpi.unit, currency)
        return f"Per month: on track at {on} or more, at risk from {edge}, off track below {edge}"
    edge = format_value(target / line, kpi.unit, currency)  # attainment target / value reaches at_risk
    return f"Per month: on track at {on} or less, at risk up to {edge}, off track above {edge}"


def entries(catalog: Catalog, query: str = "") -> list[Entry]:
    """Glossary rows for every KPI and measure matching `query` (all when empty)."""
    owners = {t.id: t.label for t in catalog.teams} | {"customer": "Shared customer outcome"}
    order = [CUSTOMER] + [t.id for t in catalog.teams]
    found = []
    for kpi in sorted(catalog.kpis, key=lambda k: (k.is_measure, order.index(k.team) if k.team in order else 0)):
        target = bands = "–"
        if kpi.target is not None and kpi.direction is not None:
            sign = "≥" if kpi.direction.value == "up" else "≤"
            target = "; ".join(
                f"{sign} {format_value(kpi.target_for(grain), kpi.unit, catalog.currency)} per {grain}"
                for grain in ("month", "quarter", "year", "week")
            )
            bands = _bands(kpi, catalog.currency)
        owner = owners.get(kpi.team or "", "Building block")
        entry = Entry(kpi, owner, formula_text(kpi.formula, catalog), target, bands, rules(kpi, catalog))
        if entry.matches(query):
            found.append(entry)
    return found
