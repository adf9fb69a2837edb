"""Every change to what everybody sees, allowed or refused in one place: the app's pages and the command line call
these, never the storage functions directly. Each needs the editor role (access.Actor.require_editor) and records
who made the change."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import duckdb

from kpicore import checkins, store, targets, warehouse
from kpicore.access import Actor
from kpicore.catalog import Catalog
from kpicore.checkins import CheckIn
from kpicore.errors import KpiError
from kpicore.ingest import ImportResult, Upload
from kpicore.ingest import import_files as _import_files
from kpicore.periods import Period
from kpicore.store import Snapshot
from kpicore.targets import TargetChange


def import_files(conn: duckdb.DuckDBPyConnection, actor: Actor, uploads: Sequence[Upload], note: str,
                 progress: Callable[[float, str], None] | None = None, keep_sample: bool = True) -> ImportResult:
    """Import exports as one new snapshot (ingest.import_files), made by `actor`."""
    actor.require_editor("Importing files")
    _local(conn, "Importing files")
    return _import_files(conn, uploads, note, progress=progress, keep_sample=keep_sample, author=actor.name)


def import_where_the_data_is(conn: duckdb.DuckDBPyConnection, actor: Actor, chosen: warehouse.Setting,
                             engine: Callable[[], warehouse.Engine], uploads: Sequence[Upload], note: str,
                             progress: Callable[[float, str], None] | None = None,
                             keep_sample: bool = True) -> ImportResult:
    """Import exports as one new snapshot where the data lives: into the DuckDB file (import_files), or, with a
    warehouse set, into the warehouse (warehouse.upload; `engine()` opens it)."""
    if not chosen.url:
        return import_files(conn, actor, uploads, note, progress, keep_sample)
    actor.require_editor("Importing files")
    return warehouse.upload(conn, engine(), chosen, uploads, note, actor.name, progress)


def drop_tables(conn: duckdb.DuckDBPyConnection, actor: Actor, names: Iterable[str]) -> store.Snapshot:
    """A new snapshot with these tables empty."""
    actor.require_editor("Emptying tables")
    _local(conn, "Emptying tables")
    return store.empty_tables(conn, names, author=actor.name)


def start_empty(conn: duckdb.DuckDBPyConnection, actor: Actor) -> store.Snapshot:
    """A new snapshot with every table empty."""
    actor.require_editor("Emptying every table")
    _local(conn, "Emptying every table")
    return store.empty_snapshot(conn, author=actor.name)


def load_sample(conn: duckdb.DuckDBPyConnection, actor: Actor) -> store.Snapshot:
    """The bundled sample data as a new snapshot."""
    actor.require_editor("Loading the sample data")
    _local(conn, "Loading the sample data")
    return store.load_sample(conn, author=actor.name)


def restore(conn: duckdb.DuckDBPyConnection, actor: Actor, snapshot_id: int) -> store.Snapshot:
    """An earlier snapshot made current again, as a new snapshot."""
    actor.require_editor("Restoring a snapshot")
    return store.restore(conn, snapshot_id, author=actor.name)


def _local(conn: duckdb.DuckDBPyConnection, what: str) -> None:
    """Refuse a change to the app's own tables while the latest snapshot is a reading of a warehouse: its data
    lives there."""
    latest = store.latest_snapshot(conn)
    if latest is not None and latest.warehouse:
        raise KpiError(f"{what} changes the tables kept in the app's own file, but the data shown is read from the "
                       f"warehouse ({latest.warehouse}, schema {latest.schema}): change the data there and read it "
                       "again. To work on the file's own tables instead, unset KPI_ENGINE and restore one of its "
                       "snapshots.")


def read_warehouse(conn: duckdb.DuckDBPyConnection, actor: Actor, engine: warehouse.Engine,
                   chosen: warehouse.Setting) -> store.Snapshot:
    """Read the warehouse's canonical tables again, as a new snapshot."""
    actor.require_editor("Reading the warehouse again")
    return warehouse.read(conn, engine, chosen, actor.name)


def save_mapping(conn: duckdb.DuckDBPyConnection, actor: Actor, name: str, mapping: dict[str, object]) -> None:
    """A mapping kept under a name for the next export with the same columns (applied to it automatically)."""
    actor.require_editor("Saving a mapping")
    store.save_mapping(conn, name, mapping, author=actor.name)


def add_checkin(conn: duckdb.DuckDBPyConnection, actor: Actor, catalog: Catalog, kpi: str, period: Period, note: str,
                name: str | None = None) -> CheckIn:
    """A check-in on a KPI in a period, signed with the actor's name (or, where editing is open to everyone and
    nobody logs in, the name they give)."""
    actor.require_editor("Writing a check-in")
    return checkins.add(conn, catalog, kpi, period, note, actor.name if actor.named else name or "")


def change_target(conn: duckdb.DuckDBPyConnection, actor: Actor, catalog: Catalog, kpi: str, value: float | None,
                  at_risk: float | None = None) -> tuple[Snapshot, TargetChange]:
    """Set a KPI's monthly target and at-risk band (None: back to the catalog's), as a new snapshot."""
    actor.require_editor("Changing a target")
    return targets.change(conn, catalog, kpi, value, at_risk, actor.name)
