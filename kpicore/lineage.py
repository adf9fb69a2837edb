"""What each KPI is computed from: its atomic inputs, the tables and the columns they read."""
from __future__ import annotations

from collections.abc import Collection

from kpicore.catalog import Conversion, Derived, Formula, Kpi, NetRetention, Ratio, Simple, Stock
from kpicore.model import TABLES, ColumnType


def atoms(kpi: Kpi, by_id: dict[str, Kpi]) -> list[Kpi]:
    """The atomic KPIs (not ratio or derived) a KPI is computed from, itself included."""
    from kpicore.validate import references

    if not isinstance(kpi.formula, (Ratio, Derived)):
        return [kpi]
    return [atom for name in references(kpi.formula) if name in by_id for atom in atoms(by_id[name], by_id)]


def time_columns(formula: Formula) -> list[tuple[str, str]]:
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


def columns_read(formula: Formula) -> set[tuple[str, str]]:
    """Every (table, column) an atomic formula reads: times, values, keys and filter columns."""
    found = set(time_columns(formula))
    if isinstance(formula, Simple):
        found |= {(formula.table, c.column) for c in formula.where}
        if formula.column:
            found.add((formula.table, formula.column))
    elif isinstance(formula, Stock):
        found |= {(formula.table, c.column) for c in formula.where}
    elif isinstance(formula, Conversion):
        for side in (formula.source, formula.target):
            found |= {(side.table, formula.key)} | {(side.table, c.column) for c in side.where}
        if formula.value:
            found.add((formula.target.table, formula.value))
    elif isinstance(formula, NetRetention):
        found |= {(formula.table, formula.key), (formula.table, formula.value)}
    return found


def tables_of(kpi: Kpi, by_id: dict[str, Kpi]) -> set[str]:
    """The tables a KPI reads, through its inputs."""
    return {t for a in atoms(kpi, by_id) for t, _ in time_columns(a.formula)}


def monthly(formula: Formula, months: Collection[tuple[str, str]] = ()) -> bool:
    """Whether the formula is counted by months: it reads a month-typed column, or one of `months` (time columns
    whose data holds months only)."""
    return any(TABLES[t].column(c).type is ColumnType.MONTH or (t, c) in months for t, c in time_columns(formula))
