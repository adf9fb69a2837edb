"""Catalog to SQL to values: every KPI of a catalog for every period of a grain, in one query."""
from __future__ import annotations

import ast
import calendar as calendar_module
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from kpicore.catalog import (
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
from kpicore.errors import UnknownPeriod
from kpicore.filters import NO_FILTERS, Filters
from kpicore.model import TABLES, ColumnType
from kpicore.periods import Grain, Period, periods_between
from kpicore.sql import percentile, quote


class Engine(Protocol):
    """The one thing computation needs from a database: run SQL with named parameters."""

    def execute(self, query: str, parameters: dict[str, Any] | None = None) -> Any: ...


@dataclass(frozen=True)
class KpiValues:
    """Every KPI's value for every whole period of one grain in the data."""

    grain: Grain
    periods: tuple[Period, ...]
    values: dict[str, tuple[float | None, ...]]
    as_of: dict[str, date | None]
    maturing: dict[str, frozenset[Period]]
    notes: dict[str, str]

    def value(self, kpi_id: str, period: Period) -> float | None:
        """The value of a KPI in a period (None where there is no data)."""
        try:
            return self.values[kpi_id][self.periods.index(period)]
        except ValueError:
            return None

    @property
    def latest(self) -> Period:
        """The latest complete period in the data."""
        if not self.periods:
            raise UnknownPeriod("There is no complete period in the data yet: load some data first.")
        return self.periods[-1]

    def check(self, period: Period) -> Period:
        """`period` itself, or UnknownPeriod if the data has no such complete period."""
        if period not in self.periods:
            if not self.periods:
                raise UnknownPeriod("There is no complete period in the data yet: load some data first.")
            raise UnknownPeriod(
                f"There is no data for {period.label}: the data covers {self.periods[0].label} "
                f"to {self.periods[-1].label}."
            )
        return period


def compute(engine: Engine, catalog: Catalog, schema: str, grain: Grain, filters: Filters = NO_FILTERS,
            status: Mapping[str, date] | None = None) -> KpiValues:
    """Compute every KPI of the catalog for every whole period of `grain` in the data, filtered as asked.

    `status` names tables loaded from status-only exports (no dates, just states) with their export
    date: KPIs reading them have a value only in the period containing that date, and say so.
    """
    status = dict(status or {})
    spans = table_spans(engine, schema, _used_columns(catalog.kpis))
    spans = {pair: span for pair, span in spans.items() if pair[0] not in status}
    spans |= {(table, TABLES[table].time): Span(day, day) for table, day in status.items()}
    periods = tuple(_calendar({p: s for p, s in spans.items() if p[0] not in status}, grain))
    by_id = {k.id: k for k in catalog.kpis}
    as_of = {k.id: _as_of(k, by_id, spans) for k in catalog.kpis}
    if not periods:
        empty: tuple[float | None, ...] = ()
        return KpiValues(grain, (), {k.id: empty for k in catalog.kpis}, as_of,
                         {k.id: frozenset() for k in catalog.kpis}, {})
    sql, params = build_query(catalog, grain, periods, schema, filters)
    rows = engine.execute(sql, params).fetchall()
    values = {}
    for column, kpi in enumerate(catalog.kpis, start=1):
        last = as_of[kpi.id]
        stated = {status[t] for t in _tables(kpi, by_id) if t in status}
        values[kpi.id] = tuple(
            None if last is None or period.start > last or row[column] is None
            or any(not period.start <= day < period.end for day in stated) else float(row[column])
            for period, row in zip(periods, rows, strict=True)
        )
    maturing = {k.id: _maturing(k, by_id, periods, spans) for k in catalog.kpis}
    notes = {k.id: note for k in catalog.kpis if (note := _note(k, by_id, grain, filters, status))}
    return KpiValues(grain, periods, values, as_of, maturing, notes)


def build_query(catalog: Catalog, grain: Grain, periods: Iterable[Period], schema: str,
                filters: Filters = NO_FILTERS) -> tuple[str, dict[str, Any]]:
    """One SQL query with a row per period and a column per KPI, and its parameters."""
    params = _Params()
    rows = ", ".join(
        f"({params.bind(p.label)}, CAST({params.bind(p.start)} AS DATE), CAST({params.bind(p.end)} AS DATE), "
        f"CAST({params.bind(p.shift(-1).start)} AS DATE))"
        for p in periods
    )
    ctes = [f"calendar AS (SELECT * FROM (VALUES {rows}) AS v(period, period_start, period_end, prev_start))"]
    by_id = {k.id: k for k in catalog.kpis}
    atoms = [k for k in catalog.kpis if not isinstance(k.formula, (Ratio, Derived))]
    compiler = _Compiler(schema, grain, params, by_id, catalog.parameters, filters)
    for kpi in atoms:
        ctes.append(f"{quote('m_' + kpi.id)} AS ({compiler.atom(kpi)})")
    columns = ", ".join(f"{compiler.expression(k.id)} AS {quote(k.id)}" for k in catalog.kpis)
    joins = " ".join(
        f"LEFT JOIN {quote('m_' + k.id)} ON {quote('m_' + k.id)}.period = calendar.period" for k in atoms
    )
    sql = (f"WITH {', '.join(ctes)} SELECT calendar.period, {columns} "
           f"FROM calendar {joins} ORDER BY calendar.period_start")
    return sql, params.values


class _Params:
    """Named bound parameters, collected while SQL is written."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"


_OPERATORS = {Op.EQ: "=", Op.NE: "<>", Op.GT: ">", Op.GE: ">=", Op.LT: "<", Op.LE: "<="}


class _Compiler:
    """Writes the SQL of one KPI from its validated definition."""

    def __init__(self, schema: str, grain: Grain, params: _Params, by_id: dict[str, Kpi],
                 parameters: dict[str, float], filters: Filters) -> None:
        self.schema, self.grain, self.params = schema, grain, params
        self.by_id, self.parameters, self.filters = by_id, parameters, filters

    def relation(self, table: str) -> str:
        return self.filters.relation(self.schema, table, self.params.bind)

    def conditions(self, alias: str, where: tuple[Condition, ...]) -> str:
        parts = []
        for cond in where:
            column = f"{alias}.{quote(cond.column)}"
            if cond.op is Op.IS_NULL:
                parts.append(f"{column} IS NULL")
            elif cond.op is Op.NOT_NULL:
                parts.append(f"{column} IS NOT NULL")
            elif cond.op.takes_list:
                negation = "NOT " if cond.op is Op.NOT_IN else ""
                parts.append(f"{column} {negation}IN ({', '.join(self.params.bind(v) for v in cond.value)})")
            else:
                parts.append(f"{column} {_OPERATORS[cond.op]} {self.params.bind(cond.value)}")
        return "".join(f" AND {part}" for part in parts)

    @staticmethod
    def in_period(alias: str, column: str, start: str = "period_start", end: str = "period_end") -> str:
        return f"{alias}.{quote(column)} >= calendar.{start} AND {alias}.{quote(column)} < calendar.{end}"

    def atom(self, kpi: Kpi) -> str:
        formula = kpi.formula
        if self.grain is Grain.WEEK and _monthly(formula):
            return "SELECT period, CAST(NULL AS DOUBLE) AS value FROM calendar"
        if isinstance(formula, Simple):
            return self.simple(formula, kpi.unit)
        if isinstance(formula, Stock):
            return self.stock(formula)
        if isinstance(formula, Conversion):
            return self.conversion(formula)
        if isinstance(formula, NetRetention):
            return self.net_retention(formula)
        raise TypeError(f"{kpi.id} is not an atomic formula")

    def simple(self, f: Simple, unit: Unit) -> str:
        if f.duration is not None:
            seconds = 3600.0 if unit is Unit.HOURS else 86400.0
            start, end = (f"t.{quote(c)}" for c in f.duration)
            measured = f"CAST(date_diff('second', {start}, {end}) AS DOUBLE) / {seconds}"
        else:
            measured = f"t.{quote(f.column or f.time)}"
        aggregate = {
            Agg.COUNT: f"COUNT(t.{quote(f.time)})",
            Agg.COUNT_DISTINCT: f"COUNT(DISTINCT {measured})",
            Agg.SUM: f"COALESCE(SUM({measured}), 0)",
            Agg.AVG: f"AVG({measured})",
            Agg.MEDIAN: percentile(measured, 0.5),
        }[f.agg]
        return (
            f"SELECT calendar.period, CAST({aggregate} AS DOUBLE) AS value FROM calendar "
            f"LEFT JOIN {self.relation(f.table)} AS t ON {self.in_period('t', f.time)}"
            f"{self.conditions('t', f.where)} GROUP BY calendar.period"
        )

    def stock(self, f: Stock) -> str:
        moment = f"calendar.period_{f.at}"
        start, end = f"t.{quote(f.start)}", f"t.{quote(f.end)}"
        row = f"t.{quote(TABLES[f.table].key or f.start)}"  # a start left empty (status-only export) still counts
        return (
            f"SELECT calendar.period, CAST(COUNT({row}) AS DOUBLE) AS value FROM calendar "
            f"LEFT JOIN {self.relation(f.table)} AS t ON ({start} IS NULL OR {start} < {moment}) "
            f"AND ({end} IS NULL OR {end} >= {moment})"
            f"{self.conditions('t', f.where)} GROUP BY calendar.period"
        )

    def conversion(self, f: Conversion) -> str:
        key, row = quote(f.key), quote(TABLES[f.source.table].key or f.key)
        source_time, target_time = f"s.{quote(f.source.time)}", f"x.{quote(f.target.time)}"
        window = f"INTERVAL '{f.window_days}' DAY"
        if f.lookback:
            within = f"{target_time} <= {source_time} AND {target_time} > {source_time} - {window}"
        else:
            within = f"{target_time} >= {source_time} AND {target_time} < {source_time} + {window}"
        if f.value is None:
            reached = f"CAST(COUNT(DISTINCT CASE WHEN x.{key} IS NOT NULL THEN s.{row} END) AS DOUBLE)"
        else:
            reached = f"CAST(COALESCE(SUM(x.{quote(f.value)}), 0) AS DOUBLE)"
        return (
            f"SELECT calendar.period, {reached} / NULLIF(COUNT(DISTINCT s.{row}), 0) AS value FROM calendar "
            f"LEFT JOIN {self.relation(f.source.table)} AS s ON {self.in_period('s', f.source.time)}"
            f"{self.conditions('s', f.source.where)} "
            f"LEFT JOIN {self.relation(f.target.table)} AS x ON x.{key} = s.{key} AND {within}"
            f"{self.conditions('x', f.target.where)} GROUP BY calendar.period"
        )

    def net_retention(self, f: NetRetention) -> str:
        def per_key(start: str, end: str) -> str:
            return (
                f"SELECT calendar.period, t.{quote(f.key)} AS entity, SUM(t.{quote(f.value)}) AS amount "
                f"FROM calendar JOIN {self.relation(f.table)} AS t ON {self.in_period('t', f.time, start, end)} "
                f"GROUP BY calendar.period, t.{quote(f.key)}"
            )

        return (
            f"SELECT calendar.period, CAST(SUM(cur.amount) AS DOUBLE) / NULLIF(SUM(base.amount), 0) AS value "
            f"FROM calendar LEFT JOIN ({per_key('prev_start', 'period_start')}) AS base "
            f"ON base.period = calendar.period "
            f"LEFT JOIN ({per_key('period_start', 'period_end')}) AS cur "
            f"ON cur.period = base.period AND cur.entity = base.entity GROUP BY calendar.period"
        )

    def expression(self, kpi_id: str) -> str:
        """SQL for a KPI's value over the joined atoms (ratios and derived KPIs inlined)."""
        formula = self.by_id[kpi_id].formula
        if isinstance(formula, Ratio):
            return _divide(self.expression(formula.numerator), self.expression(formula.denominator))
        if isinstance(formula, Derived):
            return self.derived(ast.parse(formula.expr, mode="eval").body)
        return f"{quote('m_' + kpi_id)}.value"

    def derived(self, node: ast.expr) -> str:
        if isinstance(node, ast.BinOp):
            left, right = self.derived(node.left), self.derived(node.right)
            if isinstance(node.op, ast.Div):
                return _divide(left, right)
            operator = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}[type(node.op)]
            return f"({left} {operator} {right})"
        if isinstance(node, ast.UnaryOp):
            return f"(-{self.derived(node.operand)})" if isinstance(node.op, ast.USub) else self.derived(node.operand)
        if isinstance(node, ast.Constant):
            return f"CAST({float(node.value)!r} AS DOUBLE)"
        assert isinstance(node, ast.Name)
        if node.id in self.by_id:
            return self.expression(node.id)
        return f"CAST({self.params.bind(self.parameters[node.id])} AS DOUBLE)"


def _divide(numerator: str, denominator: str) -> str:
    return f"(CAST({numerator} AS DOUBLE) / NULLIF({denominator}, 0))"


def atoms(kpi: Kpi, by_id: dict[str, Kpi]) -> list[Kpi]:
    """The atomic KPIs (not ratio or derived) a KPI is computed from, itself included."""
    from kpicore.validate import references

    if not isinstance(kpi.formula, (Ratio, Derived)):
        return [kpi]
    return [atom for name in references(kpi.formula) if name in by_id for atom in atoms(by_id[name], by_id)]


def columns_of(formula: Formula) -> list[tuple[str, str]]:
    """(table, time column) pairs an atomic formula reads."""
    if isinstance(formula, Simple):
        return [(formula.table, c) for c in (formula.time, *(formula.duration or ()))]
    if isinstance(formula, Stock):
        return [(formula.table, formula.start), (formula.table, formula.end)]
    if isinstance(formula, Conversion):
        return [(formula.source.table, formula.source.time), (formula.target.table, formula.target.time)]
    if isinstance(formula, NetRetention):
        return [(formula.table, formula.time)]
    return []


def _monthly(formula: Formula) -> bool:
    """Whether the formula reads a month-typed column (no finer than a month)."""
    return any(TABLES[t].column(c).type is ColumnType.MONTH for t, c in columns_of(formula))


def _used_columns(kpis: Iterable[Kpi]) -> set[tuple[str, str]]:
    used = {(name, table.time) for name, table in TABLES.items()}
    return used | {pair for k in kpis for pair in columns_of(k.formula)}


@dataclass(frozen=True)
class Span:
    """First and last day a table's time column has data for."""

    first: date
    last: date


def table_spans(engine: Engine, schema: str, used: set[tuple[str, str]]) -> dict[tuple[str, str], Span]:
    """First and last day of each used (table, time column) that has data."""
    pairs = sorted(used)
    selects = " UNION ALL ".join(
        f"SELECT {i} AS i, MIN({quote(c)}) AS first, MAX({quote(c)}) AS last "
        f"FROM {quote(schema)}.{quote(t)}"
        for i, (t, c) in enumerate(pairs)
    )
    spans = {}
    for i, first, last in engine.execute(selects).fetchall():
        if first is None:
            continue
        table, column = pairs[i]
        first_day, last_day = _day(first), _day(last)
        if TABLES[table].column(column).type is ColumnType.MONTH:
            last_day = last_day.replace(day=calendar_module.monthrange(last_day.year, last_day.month)[1])
        spans[(table, column)] = Span(first_day, last_day)
    return spans


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _calendar(spans: dict[tuple[str, str], Span], grain: Grain) -> list[Period]:
    """Periods from the first one in which every loaded table has data to the latest complete one."""
    primary = [spans[(name, table.time)] for name, table in TABLES.items() if (name, table.time) in spans]
    if not primary:
        return []
    return periods_between(max(s.first for s in primary), max(s.last for s in primary), grain)


def _as_of(kpi: Kpi, by_id: dict[str, Kpi], spans: dict[tuple[str, str], Span]) -> date | None:
    """The freshness of the KPI's stalest source table.

    A table is as fresh as the latest date in any of its time columns the catalog reads: a churn
    recorded on the 31st shows the customer export is current through the 31st."""
    tables = {t for atom in atoms(kpi, by_id) for t, _ in columns_of(atom.formula)}
    lasts = []
    for table in tables:
        known = [span.last for (t, _), span in spans.items() if t == table]
        if not known:
            return None
        lasts.append(max(known))
    return min(lasts) if lasts else None


def _maturing(kpi: Kpi, by_id: dict[str, Kpi], periods: tuple[Period, ...],
              spans: dict[tuple[str, str], Span]) -> frozenset[Period]:
    """Periods whose cohorts have not had their full conversion window yet."""
    found: set[Period] = set()
    for atom in atoms(kpi, by_id):
        if isinstance(atom.formula, Conversion) and not atom.formula.lookback:
            span = spans.get((atom.formula.target.table, atom.formula.target.time))
            seen_until = (span.last if span else date.min) + timedelta(days=1)
            window = timedelta(days=atom.formula.window_days)
            found |= {p for p in periods if p.end + window > seen_until}
    return frozenset(found)


def _tables(kpi: Kpi, by_id: dict[str, Kpi]) -> set[str]:
    """The tables a KPI reads, through its inputs."""
    return {t for a in atoms(kpi, by_id) for t, _ in columns_of(a.formula)}


def _note(kpi: Kpi, by_id: dict[str, Kpi], grain: Grain, filters: Filters, status: dict[str, date]) -> str | None:
    notes = []
    if grain is Grain.WEEK and any(_monthly(a.formula) for a in atoms(kpi, by_id)):
        notes.append("Built on monthly data (revenue or spend): choose the month or quarter grain.")
    tables = _tables(kpi, by_id)
    for table in sorted(tables & set(status)):
        notes.append(f"From a status-only {table} export as of {status[table].isoformat()}: "
                     "a value only for the period containing that date.")
    unfiltered = filters.unfiltered(tables)
    if unfiltered:
        notes.append("Filters: " + "; ".join(unfiltered) + ".")
    return " ".join(notes) or None
