"""Catalog to SQL to values: every KPI of a catalog for every period of a grain, in one query."""
from __future__ import annotations

import ast
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
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
    trailing_partial,
)
from kpicore.errors import UnknownPeriod
from kpicore.filters import NO_FILTERS, Filters
from kpicore.lineage import atoms, columns_read, monthly, tables_of
from kpicore.model import MONEY, TABLES
from kpicore.periods import Grain, Period, add_months
from kpicore.sql import (
    Params,
    day,
    days,
    materialized,
    month_number,
    percentile,
    period_start,
    quote,
    seconds_between,
)


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
    filters: Filters = NO_FILTERS  # the filters the values were computed under
    # the sampling standard error of each value, where its formula has one (counts, averages, medians, shares
    # of counted rows): how much the value would vary by chance with the same underlying rates (docs/tensions.md)
    errors: dict[str, tuple[float | None, ...]] = field(default_factory=dict)

    @cached_property
    def positions(self) -> dict[Period, int]:
        """Each period's place in `periods` (looked up for every value a page shows)."""
        return {period: place for place, period in enumerate(self.periods)}

    def value(self, kpi_id: str, period: Period) -> float | None:
        """The value of a KPI in a period (None where there is no data)."""
        place = self.positions.get(period)
        return None if place is None else self.values[kpi_id][place]

    def error(self, kpi_id: str, period: Period) -> float | None:
        """The sampling standard error of a KPI's value in a period (None where its formula has none)."""
        series, place = self.errors.get(kpi_id), self.positions.get(period)
        return None if series is None or place is None else series[place]

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
    months = {pair for pair, span in spans.items() if span.monthly}
    left_out = filters.left_out(engine, schema) if filters else {}
    by_id = {k.id: k for k in catalog.kpis}
    # columns missing from tables that have rows (an empty table just has no data yet)
    missing = {k.id: [(t, c) for t, c in missing_columns(k, by_id, loaded) if t in tables] for k in catalog.kpis}
    coverage = {k.id: None if missing[k.id] else kpi_coverage(k, by_id, spans, tables) for k in catalog.kpis}
    as_of = {k.id: c.last if (c := coverage[k.id]) else None for k in catalog.kpis}
    notes = {k.id: note for k in catalog.kpis
             if (note := _note(k, by_id, grain, filters, status, missing[k.id], tables, coverage[k.id], months,
                               left_out))}
    partial = {k.id: frozenset(p for p in periods if (c := coverage[k.id]) and c.partial(p))
               | frozenset(trailing_partial(k, by_id, tables, periods) if coverage[k.id] else ()) for k in catalog.kpis}
    currencies = {k.id: found for k in catalog.kpis if (found := _currencies(k, by_id, loaded, catalog.currency))}
    if not periods:
        empty: tuple[float | None, ...] = ()
        return KpiValues(grain, (), {k.id: empty for k in catalog.kpis}, as_of,
                         {k.id: frozenset() for k in catalog.kpis}, notes, coverage, partial, tables, currencies,
                         filters)
    sql, params = build_query(catalog, grain, periods, schema, filters, months)
    sampled = sampled_atoms(catalog)
    rows = engine.execute(sql, params).fetchall()
    values, errors = {}, {}
    width = len(catalog.kpis)
    for column, kpi in enumerate(catalog.kpis, start=1):
        covered = coverage[kpi.id]
        shown = [covered is not None and covered.covers(period) and row[column] is not None
                 for period, row in zip(periods, rows, strict=True)]
        values[kpi.id] = tuple(float(row[column]) if ok else None for ok, row in zip(shown, rows, strict=True))
        if kpi.id in sampled:
            at = width + 1 + sampled.index(kpi.id)
            errors[kpi.id] = tuple(None if not ok or row[at] is None else float(row[at])
                                   for ok, row in zip(shown, rows, strict=True))
    errors |= {k.id: shares for k in catalog.kpis if (shares := _share_errors(k, by_id, values))}
    maturing = {k.id: _maturing(k, by_id, periods, spans, c) if (c := coverage[k.id]) else frozenset()
                for k in catalog.kpis}
    return KpiValues(grain, periods, values, as_of, maturing, notes, coverage, partial, tables, currencies, filters,
                     errors)


def build_query(catalog: Catalog, grain: Grain, periods: Iterable[Period], schema: str,
                filters: Filters = NO_FILTERS, months: Collection[tuple[str, str]] = ()) -> tuple[str, dict[str, Any]]:
    """One SQL query with a row per period and a column per KPI, then one per sampled atom with its standard
    error (`sampled_atoms`), and its parameters (`months`: time columns whose data holds months only, which have
    no value at week grain)."""
    params = Params()
    columns, rows = _calendar_rows(catalog, periods)
    values = ", ".join(f"({', '.join(_date_or_text(params, v) for v in row)})" for row in rows)
    # materialized: every atom reads the calendar, and inlining its rows into each made planning the statement
    # most of its time at week grain
    ctes = [materialized("calendar", f"SELECT * FROM (VALUES {values}) AS v({', '.join(columns)})")]
    by_id = {k.id: k for k in catalog.kpis}
    atoms = [k for k in catalog.kpis if not isinstance(k.formula, (Ratio, Derived))]
    compiler = _Compiler(schema, grain, params, by_id, catalog.parameters, filters, months)
    # Atoms counted in one period each (no trailing window) share one pass over their table and time column:
    # every row is put in its period by truncating its date, then all their aggregates are taken at once.
    groups: dict[tuple[str, str], list[Kpi]] = {}
    for kpi in atoms:
        if compiler.bucketed(kpi):
            groups.setdefault((kpi.formula.table, kpi.formula.time), []).append(kpi)  # type: ignore[union-attr]
        else:
            ctes.append(f"{quote('m_' + kpi.id)} AS ({compiler.atom(kpi)})")
            compiler.refs[kpi.id] = _Ref(quote("m_" + kpi.id), "value", "se", "period", zero_when_empty=False)
    for number, ((table, time), members) in enumerate(groups.items()):
        name = quote(f"g_{number}")
        ctes.append(f"{name} AS ({compiler.grouped(table, time, members)})")
        for kpi in members:
            counted = kpi.formula.agg in (Agg.COUNT, Agg.COUNT_DISTINCT, Agg.SUM)  # type: ignore[union-attr]
            compiler.refs[kpi.id] = _Ref(name, quote("v_" + kpi.id), quote("se_" + kpi.id), "period_start", counted)
    retention = compiler.retention()
    ctes[1:1] = ([materialized(quote(name), sql) for name, sql in compiler.kept.items()]
                 + [materialized(name, sql) for name, sql in retention])
    errors = [f"{compiler.reference(k, error=True)} AS {quote('se_' + k)}" for k in sampled_atoms(catalog)]
    columns = ", ".join([f"{compiler.expression(k.id)} AS {quote(k.id)}" for k in catalog.kpis] + errors)
    joined = dict.fromkeys((ref.relation, ref.on) for ref in compiler.refs.values())
    joins = " ".join(f"LEFT JOIN {name} ON {name}.{on} = calendar.{on}" for name, on in joined)
    sql = (f"WITH {', '.join(ctes)} SELECT calendar.period, {columns} "
           f"FROM calendar {joins} ORDER BY calendar.period_start")
    return sql, params


def _calendar_rows(catalog: Catalog, periods: Iterable[Period]) -> tuple[list[str], list[list[object]]]:
    """The calendar's columns and a row per period: its label, start and end, the first day of its last month,
    the month a net retention compares with (`base_month`: the month before the period; `base_N`: N months
    before its last one) and the first day of each trailing window (`trail_N`: N months before its end)."""
    fixed = sorted({k.formula.months for k in catalog.kpis if isinstance(k.formula, NetRetention) and k.formula.months})
    trailing = sorted({k.formula.trailing_months for k in catalog.kpis
                       if isinstance(k.formula, Simple) and k.formula.trailing_months})
    columns = ["period", "period_start", "period_end", "last_month", "base_month",
               *(f"base_{n}" for n in fixed), *(f"trail_{n}" for n in trailing)]
    rows = []
    for p in periods:
        last = add_months(p.end, -1).replace(day=1) if p.grain.months else (p.end - timedelta(days=1)).replace(day=1)
        base = add_months(last, -p.grain.months) if p.grain.months else None  # weeks: monthly data has no value
        rows.append([p.label, p.start, p.end, last, base, *(add_months(last, -n) for n in fixed),
                     *(add_months(p.end, -n) for n in trailing)])
    return columns, rows


def _date_or_text(params: Params, value: object) -> str:
    if isinstance(value, date):
        return f"CAST({params.bind(value)} AS DATE)"
    if value is None:
        return "CAST(NULL AS DATE)"
    return params.bind(value)


@dataclass(frozen=True)
class _Ref:
    """Where the joined query finds an atom: its relation, value and error columns, the calendar column the
    relation joins on, and whether no rows in a period mean 0 (counts and sums) rather than no value."""

    relation: str
    value: str
    error: str
    on: str
    zero_when_empty: bool


_OPERATORS = {Op.EQ: "=", Op.NE: "<>", Op.GT: ">", Op.GE: ">=", Op.LT: "<", Op.LE: "<="}


class _Compiler:
    """Writes the SQL of one KPI from its validated definition."""

    def __init__(self, schema: str, grain: Grain, params: Params, by_id: dict[str, Kpi],
                 parameters: dict[str, float], filters: Filters, months: Collection[tuple[str, str]]) -> None:
        self.schema, self.grain, self.params = schema, grain, params
        self.by_id, self.parameters, self.filters, self.months = by_id, parameters, filters, months
        self.refs: dict[str, _Ref] = {}  # where each atom's value and error are
        self.kept: dict[str, str] = {}  # the ids each filter keeps (name: query), computed once for every atom
        # per revenue table read by net retention: the name of its monthly amounts, and the months it looks back
        self.retained: dict[tuple[str, str, str, str], tuple[str, set[int]]] = {}

    def bucketed(self, kpi: Kpi) -> bool:
        """Whether an atom is counted in the one period its time column falls in (a simple KPI without a
        trailing window), so that it can share one pass over its table with the others."""
        formula = kpi.formula
        return (isinstance(formula, Simple) and not formula.trailing_months
                and not (self.grain is Grain.WEEK and monthly(formula, self.months)))

    def reference(self, kpi_id: str, error: bool = False) -> str:
        """SQL for an atom's value (or its sampling error) in the joined query."""
        ref = self.refs[kpi_id]
        column = f"{ref.relation}.{ref.error if error else ref.value}"
        return f"COALESCE({column}, 0)" if ref.zero_when_empty else column

    def grouped(self, table: str, time: str, members: list[Kpi]) -> str:
        """One pass over a table: each row in its period (its date truncated), every member's aggregates."""
        columns = []
        for kpi in members:
            formula = kpi.formula
            assert isinstance(formula, Simple)
            only = f" FILTER (WHERE TRUE{self.conditions('t', formula.where)})" if formula.where else ""
            value, error = self.aggregates(formula, kpi.unit, only)
            columns += [f"CAST({value} AS DOUBLE) AS {quote('v_' + kpi.id)}",
                        f"CAST({error} AS DOUBLE) AS {quote('se_' + kpi.id)}"]
        return (f"SELECT {period_start(f't.{quote(time)}', self.grain.value)} AS period_start, {', '.join(columns)} "
                f"FROM {self.relation(table)} AS t GROUP BY 1")

    def relation(self, table: str) -> str:
        return self.filters.relation(self.schema, table, self.params.bind, self.kept)

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
        if self.grain is Grain.WEEK and monthly(formula, self.months):
            return "SELECT period, CAST(NULL AS DOUBLE) AS value, CAST(NULL AS DOUBLE) AS se FROM calendar"
        if isinstance(formula, Simple):
            return self.simple(formula, kpi.unit)
        if isinstance(formula, Stock):
            return self.stock(formula)
        if isinstance(formula, Conversion):
            return self.conversion(formula)
        if isinstance(formula, NetRetention):
            return self.net_retention(formula)
        raise TypeError(f"{kpi.id} is not an atomic formula")

    def aggregates(self, f: Simple, unit: Unit, only: str = "") -> tuple[str, str]:
        """A simple KPI's aggregate over the rows `t` and its sampling error, each aggregate restricted by `only`
        (a FILTER clause, or nothing when the rows are already the KPI's)."""
        if f.duration is not None:
            seconds = 3600.0 if unit is Unit.HOURS else 86400.0
            start, end = (f"t.{quote(c)}" for c in f.duration)
            measured = f"{seconds_between(start, end)} / {seconds}"
        else:
            measured = f"t.{quote(f.column or f.time)}"
        aggregate = {
            Agg.COUNT: f"COUNT(t.{quote(f.time)}){only}",
            Agg.COUNT_DISTINCT: f"COUNT(DISTINCT {measured}){only}",
            Agg.SUM: f"SUM({measured}){only}",
            Agg.AVG: f"AVG({measured}){only}",
            Agg.MEDIAN: percentile(measured, 0.5) + only,
        }[f.agg]
        # sampling errors: a count varies like a Poisson count, a mean by its spread over the root of its rows,
        # a median by 1.2533 sigma (sigma = IQR / 1.349) over the root of its rows; with fewer than MIN_ROWS rows
        # the spread is unknown (NULL)
        rows = f"CAST(COUNT({measured}){only} AS DOUBLE)"
        spread = f"({percentile(measured, 0.75)}{only} - {percentile(measured, 0.25)}{only})"
        error = {
            Agg.COUNT: f"SQRT({aggregate})",
            Agg.COUNT_DISTINCT: f"SQRT({aggregate})",
            Agg.AVG: f"CASE WHEN {rows} >= {MIN_ROWS} THEN STDDEV_SAMP({measured}){only} / SQRT({rows}) END",
            Agg.MEDIAN: f"CASE WHEN {rows} >= {MIN_ROWS} THEN {MEDIAN_ERROR!r} * {spread} / SQRT({rows}) END",
        }.get(f.agg, "NULL")
        return aggregate, error

    def simple(self, f: Simple, unit: Unit) -> str:
        """A simple KPI over a trailing window (or any other that is not bucketed): rows joined to the periods
        whose window they fall in; counts and sums are first added up per day, which the windows' bounds
        (whole days) keep exact."""
        window = f"trail_{f.trailing_months}" if f.trailing_months else "period_start"
        if f.agg in (Agg.COUNT, Agg.SUM) and f.duration is None:
            value, _ = self.aggregates(f, unit)
            daily = (f"SELECT {day(f't.{quote(f.time)}')} AS day, {value} AS amount FROM {self.relation(f.table)} "
                     f"AS t WHERE TRUE{self.conditions('t', f.where)} GROUP BY 1")
            total = "COALESCE(SUM(d.amount), 0)"
            error = f"SQRT({total})" if f.agg is Agg.COUNT else "NULL"
            return (f"SELECT calendar.period, CAST({total} AS DOUBLE) AS value, CAST({error} AS DOUBLE) AS se "
                    f"FROM calendar LEFT JOIN ({daily}) AS d ON d.day >= calendar.{window} "
                    f"AND d.day < calendar.period_end GROUP BY calendar.period")
        value, error = self.aggregates(f, unit)
        if f.agg is Agg.SUM:
            value = f"COALESCE({value}, 0)"
        return (
            f"SELECT calendar.period, CAST({value} AS DOUBLE) AS value, CAST({error} AS DOUBLE) AS se "
            f"FROM calendar "
            f"LEFT JOIN {self.relation(f.table)} AS t ON {self.in_period('t', f.time, window)}"
            f"{self.conditions('t', f.where)} GROUP BY calendar.period"
        )

    def stock(self, f: Stock) -> str:
        """Rows active at a moment of each period, counted without joining every row to every period."""
        start, end = f"t.{quote(f.start)}", f"t.{quote(f.end)}"
        row = f"t.{quote(TABLES[f.table].key or f.start)}"  # a start left empty (status-only export) still counts
        kept = f"{row} IS NOT NULL{self.conditions('t', f.where)}"
        if f.at == "left":  # active at the start, gone before the end: counted in the period its end falls in
            leaves = period_start(end, self.grain.value)
            gone = (f"SELECT {leaves} AS period_start, COUNT(*) AS n FROM {self.relation(f.table)} AS t "
                    f"WHERE {end} IS NOT NULL AND ({start} IS NULL OR {start} < {leaves}) AND {kept} GROUP BY 1")
            return (f"SELECT calendar.period, CAST(COALESCE(g.n, 0) AS DOUBLE) AS value, CAST(NULL AS DOUBLE) AS se "
                    f"FROM calendar LEFT JOIN ({gone}) AS g ON g.period_start = calendar.period_start")
        # Active at moment m: started before m (or no start), less those of them that also ended before m, which
        # are the rows whose later day of start and end is before m. Both are sums of daily counts (m is a day).
        moment = "c.period_start" if f.at == "start" else "c.period_end"
        began = f"SELECT {day(start)} AS day, COUNT(*) AS n FROM {self.relation(f.table)} AS t WHERE {kept} GROUP BY 1"
        later = f"CASE WHEN {start} IS NULL THEN {end} ELSE GREATEST({start}, {end}) END"
        ended = (f"SELECT {day(later)} AS day, COUNT(*) AS n FROM {self.relation(f.table)} AS t "
                 f"WHERE {end} IS NOT NULL AND {kept} GROUP BY 1")
        before = (f"SELECT c.period, SUM(d.n) AS n FROM calendar AS c JOIN ({began}) AS d "
                  f"ON d.day IS NULL OR d.day < {moment} GROUP BY c.period")
        after = (f"SELECT c.period, SUM(d.n) AS n FROM calendar AS c JOIN ({ended}) AS d "
                 f"ON d.day < {moment} GROUP BY c.period")
        return (f"SELECT calendar.period, CAST(COALESCE(b.n, 0) - COALESCE(e.n, 0) AS DOUBLE) AS value, "
                f"CAST(NULL AS DOUBLE) AS se FROM calendar LEFT JOIN ({before}) AS b ON b.period = calendar.period "
                f"LEFT JOIN ({after}) AS e ON e.period = calendar.period")

    def conversion(self, f: Conversion) -> str:
        """Of the source rows of each period, the share that reached a target within the window (or the value of
        what they reached, over their number). Each source row counts once however many targets it reached."""
        key, unique = quote(f.key), TABLES[f.source.table].key
        row = quote(unique or f.key)
        source_time, target_time = f"s.{quote(f.source.time)}", f"x.{quote(f.target.time)}"
        window = days(f.window_days)
        if f.lookback:
            within = f"{target_time} <= {source_time} AND {target_time} > {source_time} - {window}"
        else:
            within = f"{target_time} >= {source_time} AND {target_time} < {source_time} + {window}"
        source = f"{self.relation(f.source.table)} AS s"
        joined = (f"JOIN {self.relation(f.target.table)} AS x ON x.{key} = s.{key} AND {within}"
                  f"{self.conditions('x', f.target.where)}")
        kept = f"WHERE TRUE{self.conditions('s', f.source.where)}"
        period = period_start(source_time, self.grain.value)
        worth = "CAST(NULL AS DOUBLE)" if f.value is None else f"x.{quote(f.value)}"
        if unique:  # one row per id (the store's rule): join the few matches once, then each row to its outcome
            matched = f"SELECT s.{row} AS source, SUM({worth}) AS worth FROM {source} {joined} {kept} GROUP BY 1"
            cohort = (f"SELECT {period} AS period_start, s.{row} AS source, m.source IS NOT NULL AS reached, "
                      f"m.worth AS worth FROM {source} LEFT JOIN ({matched}) AS m ON m.source = s.{row} {kept}")
            distinct = ""
        else:  # rows of a table without an id: counted once per key
            cohort = (f"SELECT {period} AS period_start, s.{row} AS source, x.{key} IS NOT NULL AS reached, "
                      f"{worth} AS worth FROM {source} LEFT {joined} {kept}")
            distinct = "DISTINCT "
        sources = f"NULLIF(COUNT({distinct}c.source), 0)"
        if f.value is None:
            reached = f"CAST(COUNT({distinct}c.source) FILTER (WHERE c.reached) AS DOUBLE)"
            share = f"(({reached} + 1) / ({sources} + 2))"  # the binomial error, away from 0 and 1 (Agresti-Coull)
            error = f"SQRT({share} * (1 - {share}) / {sources})"
        else:
            reached, error = "CAST(COALESCE(SUM(c.worth), 0) AS DOUBLE)", "NULL"
        return (
            f"SELECT calendar.period, {reached} / {sources} AS value, CAST({error} AS DOUBLE) AS se FROM calendar "
            f"LEFT JOIN ({cohort}) AS c ON c.period_start = calendar.period_start GROUP BY calendar.period"
        )

    def net_retention(self, f: NetRetention) -> str:
        """Revenue in the period's last month from the keys that paid in the base month, over all revenue then."""
        base = f"base_{f.months}" if f.months else "base_month"
        months = f.months or self.grain.months
        if not months:  # a week has no month before it (atom() already says so for monthly data)
            return "SELECT period, CAST(NULL AS DOUBLE) AS value, CAST(NULL AS DOUBLE) AS se FROM calendar"
        shape = (f.table, f.key, f.time, f.value)
        name, distances = self.retained.setdefault(shape, (f"r_{len(self.retained)}", set()))
        distances.add(months)  # the monthly amounts are written by `retention`, once every reading is known
        monthly = quote(name)
        return (
            # none of the base month's payers paying any more is 0 (not 'no value': the base month has one)
            f"SELECT calendar.period, CAST(COALESCE(cur.{quote(f'kept_{months}')}, 0) AS DOUBLE) / "
            f"NULLIF(was.amount, 0) AS value, "
            f"CAST(NULL AS DOUBLE) AS se "
            f"FROM calendar LEFT JOIN {monthly} AS was ON was.month = calendar.{base} "
            f"LEFT JOIN {monthly} AS cur ON cur.month = calendar.last_month"
        )

    def retention(self) -> list[tuple[str, str]]:
        """Each month's revenue, and for each distance N the net retention readings use, the part of it from
        keys that also paid N months before; for every reading of the same table at once.

        Which months a key paid in is a bit mask per key (one bit per month, WORD months per mask: a key has one
        mask per WORD months its data spans); each row then looks up the bit N months before its own. Grouping
        every key's months and joining them to themselves was half of the whole catalog at 10M leads, a window
        over each key's months still a third."""
        written = []
        for (table, key, time, value), (name, distances) in self.retained.items():
            number = month_number(f"t.{quote(time)}")
            masks = quote(name + "_paid")
            written.append((masks, (
                f"SELECT t.{quote(key)} AS entity, {_word(number)} AS word, "
                f"BIT_OR(CAST(1 AS BIGINT) << CAST({number} % {WORD} AS INTEGER)) AS paid "
                f"FROM {self.relation(table)} AS t WHERE t.{quote(key)} IS NOT NULL AND t.{quote(time)} IS NOT NULL "
                f"GROUP BY 1, 2")))
            paid, joins = [], []
            for n in sorted(distances):
                back, alias = f"({number} - {int(n)})", f"p{int(n)}"
                joins.append(f"LEFT JOIN {masks} AS {alias} ON {alias}.entity = t.{quote(key)} "
                             f"AND {alias}.word = {_word(back)}")
                paid.append(f"SUM(t.{quote(value)}) FILTER (WHERE (({alias}.paid >> CAST({back} % {WORD} AS INTEGER)) "
                            f"& 1) = 1) AS {quote(f'kept_{n}')}")
            written.append((quote(name), (
                f"SELECT t.{quote(time)} AS month, SUM(t.{quote(value)}) AS amount, {', '.join(paid)} "
                f"FROM {self.relation(table)} AS t {' '.join(joins)} GROUP BY 1")))
        return written

    def expression(self, kpi_id: str) -> str:
        """SQL for a KPI's value over the joined atoms (ratios and derived KPIs inlined)."""
        formula = self.by_id[kpi_id].formula
        if isinstance(formula, Ratio):
            return _divide(self.expression(formula.numerator), self.expression(formula.denominator))
        if isinstance(formula, Derived):
            return self.derived(ast.parse(formula.expr, mode="eval").body)
        return self.reference(kpi_id)

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


MEDIAN_ERROR = 1.2533 / 1.349  # standard error of a median per IQR over the root of n, for Gaussian rows
MIN_ROWS = 3  # an average or median of fewer rows has no measurable spread: its sampling error is unknown


def sampled_atoms(catalog: Catalog) -> list[str]:
    """The atoms whose values carry a sampling error: counts, averages, medians and shares of counted sources."""
    return [k.id for k in catalog.kpis if _sampled(k.formula)]


def _sampled(formula: object) -> bool:
    if isinstance(formula, Simple):
        return formula.agg in (Agg.COUNT, Agg.COUNT_DISTINCT, Agg.AVG, Agg.MEDIAN)
    return isinstance(formula, Conversion) and formula.value is None


def _counted(kpi: Kpi) -> bool:
    """A KPI whose value is a number of rows (a count or a stock)."""
    formula = kpi.formula
    counts = (Agg.COUNT, Agg.COUNT_DISTINCT)
    return isinstance(formula, Stock) or (isinstance(formula, Simple) and formula.agg in counts)


def _share_errors(kpi: Kpi, by_id: dict[str, Kpi], values: dict[str, tuple[float | None, ...]]
                  ) -> tuple[float | None, ...] | None:
    """The binomial error of a ratio of two counts that is a share (numerator within the denominator), per period;
    None for any other KPI."""
    formula = kpi.formula
    if not (isinstance(formula, Ratio) and _counted(by_id[formula.numerator]) and _counted(by_id[formula.denominator])):
        return None
    errors: list[float | None] = []
    for part, whole, shown in zip(values[formula.numerator], values[formula.denominator], values[kpi.id], strict=True):
        if shown is None or part is None or not whole or not 0 <= part <= whole:
            errors.append(None)
            continue
        share = (part + 1) / (whole + 2)  # Agresti-Coull: a share of 0 of 5 is no certainty
        errors.append(math.sqrt(share * (1 - share) / whole))
    return tuple(errors)


WORD = 60  # months per bit mask of the months a key paid in (a BIGINT holds 63 bits; 60 is five years)


def _word(number: str) -> str:
    """The first month number of the mask a month number's bit is in (a multiple of WORD: no division, which
    some engines do in floating point)."""
    return f"({number} - {number} % {WORD})"


def _divide(numerator: str, denominator: str) -> str:
    return f"(CAST({numerator} AS DOUBLE) / NULLIF({denominator}, 0))"


def _used_columns(kpis: Iterable[Kpi]) -> set[tuple[str, str]]:
    """Every table's own time column and each time column the catalog reads (also in a filter: qualified_at)."""
    used = {(name, table.time) for name, table in TABLES.items()}
    return used | {(t, c) for k in kpis for t, c in columns_read(k.formula) if TABLES[t].column(c).type.is_time}


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
              spans: dict[tuple[str, str], Span], covered: Coverage) -> frozenset[Period]:
    """Periods whose cohorts have not had their full conversion window yet, or that end less than the KPI's
    `mature_days` before its data does (leads still being qualified)."""
    found: set[Period] = set()
    if kpi.mature_days:
        seen_until = covered.last + timedelta(days=1)
        found |= {p for p in periods if p.end + timedelta(days=kpi.mature_days) > seen_until}
    for atom in atoms(kpi, by_id):
        if isinstance(atom.formula, Conversion) and not atom.formula.lookback:
            span = spans.get((atom.formula.target.table, atom.formula.target.time))
            seen_until = (span.last if span else date.min) + timedelta(days=1)
            window = timedelta(days=atom.formula.window_days)
            found |= {p for p in periods if p.end + window > seen_until}
    return frozenset(found)


def _note(kpi: Kpi, by_id: dict[str, Kpi], grain: Grain, filters: Filters, status: dict[str, date],
          missing: list[tuple[str, str]], tables: Mapping[str, Coverage], covered: Coverage | None,
          months: Collection[tuple[str, str]], left_out: Mapping[str, str]) -> str | None:
    notes = []
    read = tables_of(kpi, by_id)
    empty = sorted(t for t in read if t not in tables)
    if missing or empty:
        notes.append(missing_sentence(missing, empty))
    elif covered is None:
        notes.append(f"No data: the loaded {' and '.join(sorted(read))} have no days in common.")
    if grain is Grain.WEEK and any(monthly(a.formula, months) for a in atoms(kpi, by_id)):
        notes.append("Monthly data: a week has no value of its own. Choose the month, quarter or year grain.")
    if covered is not None:
        for table in sorted(read & set(status)):
            notes.append(f"From a status-only {table} export as of {status[table].isoformat()}: a value only for "
                         "the period containing that date, and not scored against the period's target.")
    unfiltered = filters.unfiltered(read) + [left_out[t] for t in sorted(read) if t in left_out]
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
