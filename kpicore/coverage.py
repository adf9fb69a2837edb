"""Which days the loaded data covers, per table and per KPI, and the calendar of periods that follows."""
from __future__ import annotations

import calendar as calendar_module
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from kpicore.catalog import Conversion, Formula, Kpi, Simple, Stock
from kpicore.lineage import atoms, columns_read, tables_of, time_columns
from kpicore.model import PLANNED, TABLES, ColumnType
from kpicore.periods import Grain, Period, add_months, containing
from kpicore.sql import quote


class Engine(Protocol):
    """The one thing computation needs from a database: run SQL with named parameters."""

    def execute(self, query: str, parameters: dict[str, Any] | None = None) -> Any: ...


@dataclass(frozen=True)
class Loaded:
    """What a snapshot holds of one canonical table besides its rows."""

    columns: frozenset[str] | None = None  # canonical columns the export had (None: all of them)
    status_as_of: date | None = None  # the export date of a status-only export (states, no dates)
    currency: str | None = None  # the currency its amounts are in, where the export showed one


@dataclass(frozen=True)
class Span:
    """First and last day a table's time column has data for; `monthly` when it holds months (a month column,
    or timestamps that are all first days of months: a monthly number dated on the 1st)."""

    first: date
    last: date
    monthly: bool = False


@dataclass(frozen=True)
class Coverage:
    """The days some data covers; with `status`, a status-only export that describes the day `last`."""

    first: date
    last: date
    status: bool = False

    def covers(self, period: Period) -> bool:
        """Whether the data has anything to say about the period."""
        if self.status:
            return period.start <= self.last < period.end
        return self.first < period.end and self.last >= period.start

    def partial(self, period: Period) -> bool:
        """Whether the data misses more than a tenth of the period at its start or its end, as in the first month
        of an export that starts on the 20th, or the month it was exported in. A tenth (three days of a month, none
        of a week), so that a table with few rows whose first one falls on the 2nd does not make a month partial."""
        if not self.covers(period) or self.status:
            return False
        tolerance = (period.end - period.start).days // 10
        missed_start = (self.first - period.start).days
        missed_end = (period.end - timedelta(days=1) - self.last).days
        return missed_start > tolerance or missed_end > tolerance


def table_spans(engine: Engine, schema: str, used: set[tuple[str, str]]) -> dict[tuple[str, str], Span]:
    """First and last day of each used (table, time column) that has data."""
    pairs = sorted(used)

    def counted(table: str, column: str) -> str:
        planned = PLANNED.get((table, column))
        return quote(column) if planned is None else f"CASE WHEN ({planned}) IS NOT TRUE THEN {quote(column)} END"

    # a timestamp column holding only first days of months (a monthly number dated on the 1st) is monthly too
    selects = " UNION ALL ".join(
        f"SELECT {i} AS i, MIN({counted(t, c)}) AS first, MAX({counted(t, c)}) AS last, "
        f"COALESCE(BOOL_AND(CAST({quote(c)} AS TIMESTAMP) = date_trunc('month', {quote(c)})), FALSE) AS monthly "
        f"FROM {quote(schema)}.{quote(t)}"
        for i, (t, c) in enumerate(pairs)
    )
    spans = {}
    for i, first, last, monthly in engine.execute(selects).fetchall():
        if first is None:
            continue
        table, column = pairs[i]
        first_day, last_day = _day(first), _day(last)
        months = TABLES[table].column(column).type is ColumnType.MONTH or (monthly and first_day != last_day)
        if months:
            last_day = last_day.replace(day=calendar_module.monthrange(last_day.year, last_day.month)[1])
        spans[(table, column)] = Span(first_day, last_day, months)
    return spans


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def table_coverage(spans: Mapping[tuple[str, str], Span], status: Mapping[str, date]) -> dict[str, Coverage]:
    """The days each table with data covers: from the first day of its own time column (created_at, month...)
    to the latest day in any of its time columns (a deal closed on the 31st shows the export is current then).
    A status-only export covers the day it describes."""
    found = {table: Coverage(day, day, status=True) for table, day in status.items()}
    for name, table in TABLES.items():
        known = [span for (t, _), span in spans.items() if t == name]
        if name in found or not known:
            continue
        own = spans.get((name, table.time))
        found[name] = Coverage(own.first if own else min(s.first for s in known), max(s.last for s in known))
    return found


def kpi_coverage(kpi: Kpi, by_id: dict[str, Kpi], spans: Mapping[tuple[str, str], Span],
                 tables: Mapping[str, Coverage]) -> Coverage | None:
    """The days on which every input of the KPI has data (None: a table it reads has none, or they never meet)."""
    if any(t not in tables for t in tables_of(kpi, by_id)):
        return None
    found = [_atom_coverage(atom.formula, spans, tables) for atom in atoms(kpi, by_id)]
    if not found:
        return None
    first, last = max(c.first for c in found), min(c.last for c in found)
    return Coverage(first, last, any(c.status for c in found)) if first <= last else None


def _atom_coverage(formula: Formula, spans: Mapping[tuple[str, str], Span],
                   tables: Mapping[str, Coverage]) -> Coverage:
    """The days an atomic input has data for: those of the table its periods are counted in.

    A conversion is counted by its cohort's table (leads); the table it converts into decides only whether a
    cohort is mature. A stock (customers at a moment) starts no earlier than the first end it knows of (the
    first churn): a customer list whose churns were recorded only from some day on cannot tell who had already
    left before it, and would show everybody as staying."""
    if isinstance(formula, Conversion):
        return tables[formula.source.table]
    table = time_columns(formula)[0][0]
    whole = tables[table]
    if isinstance(formula, Stock) and not whole.status and (table, formula.end) in spans:
        return Coverage(max(whole.first, spans[(table, formula.end)].first), whole.last)
    return whole


def trailing_partial(kpi: Kpi, by_id: dict[str, Kpi], tables: Mapping[str, Coverage],
                     periods: Iterable[Period]) -> set[Period]:
    """Periods whose trailing window (the twelve months up to a period's end) reaches back before its table's
    data by more than a tenth of the window: the sum over them is of fewer months."""
    found = set()
    for atom in atoms(kpi, by_id):
        formula = atom.formula
        if not isinstance(formula, Simple) or not formula.trailing_months or formula.table not in tables:
            continue
        first = tables[formula.table].first
        for period in periods:
            start = add_months(period.end, -formula.trailing_months)
            if (first - start).days > (period.end - start).days // 10:
                found.add(period)
    return found


def missing_columns(kpi: Kpi, by_id: dict[str, Kpi], loaded: Mapping[str, Loaded]) -> list[tuple[str, str]]:
    """(table, column) the KPI reads that the loaded exports did not have, in table and column order.

    A status-only export may lack the start of a stock (customers' acquired_at): its export date stands in."""
    missing = set()
    for atom in atoms(kpi, by_id):
        for table, column in columns_read(atom.formula):
            state = loaded.get(table)
            if state is None or state.columns is None or column in state.columns:
                continue
            if isinstance(atom.formula, Stock) and state.status_as_of and column == atom.formula.start:
                continue
            missing.add((table, column))
    return sorted(missing)


def calendar(tables: Mapping[str, Coverage], grain: Grain) -> list[Period]:
    """Every period from the one containing the first day any table has data for to the one containing the last
    (a period the data covers only in part is in it too, and each KPI marks it partial)."""
    if not tables:
        return []
    period, last = containing(min(c.first for c in tables.values()), grain), max(c.last for c in tables.values())
    found = []
    while period.start <= last:
        found.append(period)
        period = period.shift(1)
    return found
