"""Targets changed by an editor: a KPI's monthly target and at-risk band set in the app or on the command line,
over the catalog's.

A change is a snapshot of its own (the latest tables again, noted "Target of NPS set to 40 by Ana"), so a link
pinned to an earlier snapshot keeps the statuses it showed, and the snapshot list shows who changed what and when.
A snapshot uses, for each KPI, the latest change made in it or before it; a change back to the catalog's target is
a change too. Imports and restores later on keep the targets in force.

The change replaces the monthly target (counts and sums scale with the period's length as the catalog's do) and
drops the catalog's explicit week, quarter and year targets for that KPI; the targets of slices stay.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime

import duckdb

from kpicore import store
from kpicore.catalog import Catalog, Kpi, Target, Unit
from kpicore.coverage import Engine
from kpicore.display import format_value
from kpicore.errors import BadParameter

TABLE = "target_changes"


@dataclass(frozen=True)
class TargetChange:
    """One KPI's target as an editor set it (value None: back to the catalog's)."""

    kpi: str
    value: float | None
    at_risk: float | None
    author: str | None
    changed_at: datetime
    snapshot_id: int

    def line(self, catalog: Catalog) -> str:
        """'40 (off track below 85% of it), set by Ana on 2026-12-01': the change as pages and commands show it."""
        kpi = catalog.kpi(self.kpi)
        who = f" by {self.author}" if self.author else ""
        if self.value is None:
            return f"back to the catalog's target{who} on {self.changed_at:%Y-%m-%d}"
        return f"{_target_words(kpi, self.value, self.at_risk, catalog)}, set{who} on {self.changed_at:%Y-%m-%d}"


def _target_words(kpi: Kpi, value: float, at_risk: float | None, catalog: Catalog) -> str:
    """'40 (off track below 85% of it)', '1,000 per month'."""
    band = f" (off track below {at_risk:.0%} of it)" if at_risk is not None else ""
    per = " per month" if kpi.additive else ""
    return f"{format_value(value, kpi.unit, catalog.currency)}{per}{band}"


def describe(judged: Catalog, kpi_id: str, change: TargetChange | None) -> str:
    """'Net promoter score: 35 (off track below 85% of it), the catalog's target': a KPI's target in force
    (`judged` has the changes applied) and where it comes from."""
    kpi = judged.kpi(kpi_id)
    assert kpi.target is not None
    where = change.line(judged) if change is not None and change.value is not None else "the catalog's target"
    return f"{kpi.label}: {_target_words(kpi, kpi.target.value, kpi.target.at_risk, judged)}, {where}"


def create(conn: duckdb.DuckDBPyConnection) -> None:
    """The table of target changes (once per database)."""
    conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (snapshot_id INTEGER, kpi VARCHAR, value DOUBLE, "
                 "at_risk DOUBLE, author VARCHAR, changed_at TIMESTAMP)")


def in_force(conn: Engine, snapshot_id: int) -> dict[str, TargetChange]:
    """The latest change of each KPI made in this snapshot or before it."""
    rows = conn.execute(
        f"SELECT kpi, value, at_risk, author, changed_at, snapshot_id FROM {TABLE} WHERE snapshot_id <= ? "
        "QUALIFY ROW_NUMBER() OVER (PARTITION BY kpi ORDER BY snapshot_id DESC, changed_at DESC) = 1 ORDER BY kpi",
        [snapshot_id]).fetchall()
    return {row[0]: TargetChange(*row) for row in rows}


def apply(catalog: Catalog, changes: dict[str, TargetChange]) -> Catalog:
    """The catalog with the changed targets in place of its own (the same catalog when nothing changed). Its
    fingerprint stays: it names the formulas the values are computed from, which a target does not change."""
    known = {k.id for k in catalog.kpis}
    changed = {c.kpi: c for c in changes.values() if c.value is not None and c.kpi in known}
    if not changed:
        return catalog
    return replace(catalog, kpis=tuple(_with(kpi, changed[kpi.id]) if kpi.id in changed else kpi
                                       for kpi in catalog.kpis))


def _with(kpi: Kpi, change: TargetChange) -> Kpi:
    old = kpi.target or Target(change.value or 0.0)
    return replace(kpi, target=Target(change.value, change.at_risk if change.at_risk is not None else old.at_risk,
                                      (), old.slices))


def targeted(catalog: Catalog, kpi_id: str) -> Kpi:
    """The catalog's KPI with this id that has a target; BadParameter listing those that have one."""
    found = next((k for k in catalog.kpis if k.id == kpi_id), None)
    if found is None or found.is_measure or found.target is None:
        known = ", ".join(k.id for k in catalog.kpis if not k.is_measure and k.target is not None)
        raise BadParameter(f"'{kpi_id}' is not a KPI with a target in the catalog in use. Use one of: {known}.")
    return found


def change(conn: duckdb.DuckDBPyConnection, catalog: Catalog, kpi: str, value: float | None,
           at_risk: float | None = None, author: str | None = None) -> tuple[store.Snapshot, TargetChange]:
    """Set a KPI's monthly target (and at-risk band, a share of the target), or None: back to the catalog's. A new
    snapshot, committed with the change; BadParameter, saying what to fix, if the change cannot be made."""
    found = targeted(catalog, kpi)
    if value is not None and (isinstance(value, bool) or not math.isfinite(value)):
        raise BadParameter(f"The target of {found.label} must be a number, not {value!r}.")
    if at_risk is not None and not 0 < at_risk <= 1:
        raise BadParameter(f"The at-risk band of {found.label} is a share of the target above 0 and at most 1 "
                           f"(0.9: at risk from 90% of the target), not {at_risk!r}.")
    shown = "back to the catalog's" if value is None else f"to {format_value(value, found.unit, catalog.currency)}"
    now = datetime.now().replace(microsecond=0)

    def write(snapshot_id: int) -> None:
        conn.execute(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?)",
                     [snapshot_id, kpi, value, at_risk if value is not None else None, author, now])

    made = store.snapshot_with(conn, f"Target of {found.label} set {shown}", author, write)
    return made, TargetChange(kpi, value, at_risk if value is not None else None, author, now, made.id)


def catalog_for(conn: Engine, catalog: Catalog, snapshot_id: int) -> Catalog:
    """The catalog a snapshot is judged by: the file's, with the targets changed up to that snapshot."""
    return apply(catalog, in_force(conn, snapshot_id))


def entered(value: float, unit: Unit) -> float:
    """A target as typed in the app (a rate in percent, 25 for 25%) as the catalog keeps it (0.25)."""
    return value / 100 if unit is Unit.PERCENT else value


def shown(value: float, unit: Unit) -> float:
    """A target as the app's field shows it (the inverse of `entered`)."""
    return value * 100 if unit is Unit.PERCENT else value


def rows(catalog: Catalog, changes: dict[str, TargetChange]) -> list[dict[str, str]]:
    """Every KPI with a target, as the Data page and the command line list them: its target in force, its band and
    where the target comes from (`catalog` is the one with the changes applied)."""
    return [{"KPI": kpi.label, "Owner": catalog.owner_label(kpi.team or ""),
             "Monthly target": format_value(kpi.target.value, kpi.unit, catalog.currency),
             "Off track below": f"{kpi.target.at_risk:.0%} of it",
             "Set": changes[kpi.id].line(catalog) if kpi.id in changes else "in the catalog"}
            for kpi in catalog.kpis if not kpi.is_measure and kpi.target is not None]
