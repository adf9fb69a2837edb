"""Catalog to SQL to values: every KPI of a catalog for every period of a grain, in one query."""
from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from kpicore.catalog import (
    Agg,
    Catalog,
    Condition,
    Conversion,
    Derived,
    Kpi,
    NetRetention,
    Op,
    Ratio,
    Simple,
    Stock,
    Unit,
)
from kpicore.coverage import (
    Coverage,
    Engine,
    Loaded,
    Span,
    calendar,
    kpi_coverage,
    missing_columns,
    table_coverage,
    table_spans,
)
from kpicore.errors import UnknownPeriod
from kpicore.filters import NO_FILTERS, Filters
from kpicore.lineage import atoms, columns_read, monthly, tables_of, time_columns
from kpicore.model import MONEY, TABLES
from kpicore.periods import Grain, Period
from kpicore.sql import percentile, quote


@dataclass(frozen=True)
class KpiValues:
    """Every KPI's value for every period of one grain that the data reaches.

    `coverage` holds the days each KPI's data covers (None: no data); a value in a `partial` period is built
    on part of it only (the first month of an export that starts on the 20th) and is neither scored nor compared.
    """

    grain: Grain
    periods: tuple[Period, ...]
    values: dict[str, tuple[float | None, ...]]
    as_of: dict[str, date | None]
    maturing: dict[str, frozenset[Period]]
    notes: dict[str, str]
    coverage: dict[str, Coverage | None] = field(default_factory=dict)
    partial: dict[str, frozenset[Period]] = field(default_factory=dict)
    tables: dict[str, Coverage] = field(default_factory=dict)  # the days each table with rows covers
    currencies: dict[str, tuple[str, ...]] = field(default_factory=dict)  # those of the money a KPI reads

    def value(self, kpi_id: str, period: Period) -> float | None:
        """The value of a KPI in a period (None where there is no data)."""
        try:
            return self.values[kpi_id][self.periods.index(period)]
        except ValueError:
            return None

    def whole(self, kpi_id: str, period: Period) -> float | None:
        """The value of a KPI in a period its data covers entirely (None where there is none, or part of it)."""
        return None if period in self.partial.get(kpi_id, ()) else self.value(kpi_id, period)

    def latest(self, kpi_ids: Iterable[str] | None = None) -> Period:
        """The latest period in which one of these KPIs (default: any) has a value from whole-period data,
        else the latest period of the calendar."""
        if not self.periods:
            raise UnknownPeriod("There is no data yet: load some exports on the Data page (or with kpicore load).")
        wanted = list(self.values) if kpi_ids is None else [k for k in kpi_ids if k in self.values]
        for period in reversed(self.periods):
            if any(self.whole(k, period) is not None for k in wanted):
                return period
        return self.periods[-1]

    def check(self, period: Period) -> Period:
        """`period` itself, or UnknownPeriod if the data does not reach it."""
        if period not in self.periods:
            if not self.periods:
                raise UnknownPeriod("There is no data yet: load some exports on the Data page (or with kpicore load).")
            raise UnknownPeriod(
                f"There is no data for {period.label}: the data covers {self.periods[0].label} "
                f"to {self.periods[-1].label}."
            )
        return period


def compute(engine: Engine, catalog: Catalog, schema: str, grain: Grain, filters: Filters = NO_FILTERS,
            loaded: Mapping[str, Loaded] | None = None) -> KpiValues:
    """Compute every KPI of the catalog for every period of `grain` the data reaches, filtered as asked.

    `loaded` says what the snapshot holds of each table (columns, status-only export date); without it every
    column counts as loaded. A KPI has values where every table it reads has data, and none where a column
    it needs was not in the export. A status-only export (states, no dates) gives values only in the period
    containing its export date, and says so.
    """
    loaded = dict(loaded or {})
    status = {table: state.status_as_of for table, state in loaded.items() if state.status_as_of}
    spans = table_spans(engine, schema, _used_columns(catalog.kpis))
    spans = {pair: span for pair, span in spans.items() if pair[0] not in status}
    spans |= {(table, TABLES[table].time): Span(day, day) for table, day in status.items()}
    tables = table_coverage(spans, status)
    periods = tuple(calendar(tables, grain))
    by_id = {k.id: k for k in catalog.kpis}
    # columns missing from tables that have rows (an empty table just has no data yet)
    missing = {k.id: [(t, c) for t, c in missing_columns(k, by_id, loaded) if t in tables] for k in catalog.kpis}
    coverage = {k.id: None if missing[k.id] else kpi_coverage(k, by_id, spans, tables) for k in catalog.kpis}
    as_of = {k.id: c.last if (c := coverage[k.id]) else None for k in catalog.kpis}
    notes = {k.id: note for k in catalog.kpis
             if (note := _note(k, by_id, grain, filters, status, missing[k.id], tables, coverage[k.id]))}
    partial = {k.id: frozenset(p for p in periods if (c := coverage[k.id]) and c.partial(p)) for k in catalog.kpis}
    currencies = {k.id: found for k in catalog.kpis if (found := _currencies(k, by_id, loaded, catalog.currency))}
    if not periods:
        empty: tuple[float | None, ...] = ()
        return KpiValues(grain, (), {k.id: empty for k in catalog.kpis}, as_of,
                         {k.id: frozenset() for k in catalog.kpis}, notes, coverage, partial, tables, currencies)
    sql, params = build_query(catalog, grain, periods, schema, filters)
    rows = engine.execute(sql, params).fetchall()
    values = {}
    for column, kpi in enumerate(catalog.kpis, start=1):
        covered = coverage[kpi.id]
        values[kpi.id] = tuple(
            None if covered is None or not covered.covers(period) or row[column] is None else float(row[column])
            for period, row in zip(periods, rows, strict=True)
        )
    maturing = {k.id: _maturing(k, by_id, periods, spans) if coverage[k.id] else frozenset() for k in catalog.kpis}
    return KpiValues(grain, periods, values, as_of, maturing, notes, coverage, partial, tables, currencies)


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
        if self.grain is Grain.WEEK and monthly(formula):
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


def _used_columns(kpis: Iterable[Kpi]) -> set[tuple[str, str]]:
    used = {(name, table.time) for name, table in TABLES.items()}
    return used | {pair for k in kpis for pair in time_columns(k.formula)}


def _currencies(kpi: Kpi, by_id: dict[str, Kpi], loaded: Mapping[str, Loaded], default: str) -> tuple[str, ...]:
    """The currencies of the money a KPI reads (a table whose export showed none counts in the catalog's)."""
    found = set()
    for atom in atoms(kpi, by_id):
        for table, column in columns_read(atom.formula):
            if (table, column) in MONEY:
                state = loaded.get(table)
                found |= set((state.currency if state and state.currency else default).split(","))
    return tuple(sorted(found))


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


def _note(kpi: Kpi, by_id: dict[str, Kpi], grain: Grain, filters: Filters, status: dict[str, date],
          missing: list[tuple[str, str]], tables: Mapping[str, Coverage], covered: Coverage | None) -> str | None:
    notes = []
    read = tables_of(kpi, by_id)
    empty = sorted(t for t in read if t not in tables)
    if missing or empty:
        notes.append(missing_sentence(missing, empty))
    elif covered is None:
        notes.append(f"No data: the loaded {' and '.join(sorted(read))} have no days in common.")
    if grain is Grain.WEEK and any(monthly(a.formula) for a in atoms(kpi, by_id)):
        notes.append("Built on monthly data (revenue or spend): choose the month, quarter or year grain.")
    if covered is not None:
        for table in sorted(read & set(status)):
            notes.append(f"From a status-only {table} export as of {status[table].isoformat()}: a value only for "
                         "the period containing that date, and not scored against the period's target.")
    unfiltered = filters.unfiltered(read)
    if unfiltered:
        notes.append("Filters: " + "; ".join(unfiltered) + ".")
    return " ".join(notes) or None


def missing_sentence(missing: list[tuple[str, str]], empty: list[str]) -> str:
    """'No data: no leads loaded yet; the loaded opportunities have no amount column.'"""
    by_table: dict[str, list[str]] = {}
    for table, column in missing:
        by_table.setdefault(table, []).append(column)
    parts = [f"no {' and no '.join(empty)} loaded yet"] if empty else []
    parts += [f"the loaded {table} have no {' or '.join(columns)} column" for table, columns in by_table.items()]
    return f"No data: {'; '.join(parts)}."
