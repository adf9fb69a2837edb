"""The DuckDB file: canonical tables kept as immutable snapshots.

Each import writes new physical tables (`leads__3f9a0c1b2d4e`) and never changes old ones. A snapshot
is a schema (`snapshot_7`) of views, one per canonical table, over the physical tables it uses: the
tables an import replaced or appended to, and the previous snapshot's tables for the rest. A view
shows a physical table's valid rows except those `duplicate_rows` lists (an earlier row whose id a
later row of the same file repeats). A physical table no snapshot uses was staged by an import that
did not finish; `connect` drops it.
"""
from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

from kpicore.errors import KpiError
from kpicore.model import TABLES
from kpicore.sql import quote

DEFAULT_DB = Path("data/kpi.duckdb")
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"


@dataclass(frozen=True)
class Snapshot:
    """One immutable state of all canonical tables."""

    id: int
    created_at: datetime
    note: str

    @property
    def schema(self) -> str:
        """The schema whose views show this snapshot's tables."""
        return f"snapshot_{self.id}"


@dataclass(frozen=True)
class SnapshotTable:
    """One canonical table as a snapshot holds it."""

    table: str
    rows: int
    changed: bool
    source: str


def db_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The database to use: an explicit path, else $KPI_DB, else data/kpi.duckdb."""
    chosen = explicit or os.environ.get("KPI_DB")
    return Path(chosen) if chosen else DEFAULT_DB


def connect(path: str | os.PathLike[str] | None = None, sample_dir: Path = SAMPLE_DIR) -> duckdb.DuckDBPyConnection:
    """Open the database, creating it with the sample data if it has no snapshot yet."""
    target = db_path(path)
    if str(target) != ":memory:":
        target.parent.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(target))
    conn.execute("SET enable_progress_bar = false")  # DuckDB would draw it into the CLI's output
    # DuckDB's default, stated because imports rely on it: a staged table keeps the file's row order, so a
    # row's rowid gives its row number in the file (ingest.staging_sql)
    conn.execute("SET preserve_insertion_order = true")
    conn.execute("CREATE TABLE IF NOT EXISTS snapshots (id INTEGER PRIMARY KEY, created_at TIMESTAMP, note VARCHAR)")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS snapshot_tables (snapshot_id INTEGER, table_name VARCHAR, physical VARCHAR, "
        "rows BIGINT, changed BOOLEAN, source VARCHAR, status_as_of DATE)"
    )
    conn.execute("CREATE TABLE IF NOT EXISTS mappings (name VARCHAR PRIMARY KEY, headers VARCHAR, mapping VARCHAR)")
    # rows of a physical table that a later row with the same id replaced (see ingest._mark_duplicates)
    conn.execute("CREATE TABLE IF NOT EXISTS duplicate_rows (physical VARCHAR, row_id BIGINT)")
    drop_unused_tables(conn)
    if latest_snapshot(conn) is None:
        load_sample(conn, sample_dir)
    return conn


_STAGING: set[str] = set()  # physical tables imports in this process are filling and have not committed yet
_STAGING_LOCK = threading.Lock()


def reserve_table(table: str) -> str:
    """A new physical table name for an import to stage a file into; `drop_unused_tables` leaves it alone
    until `release_tables` (only one process can write the database file, so this covers every import)."""
    name = f"{table}__{secrets.token_hex(6)}"
    with _STAGING_LOCK:
        _STAGING.add(name)
    return name


def release_tables(names: Iterable[str]) -> None:
    """The import that reserved these names has committed its snapshot or dropped them."""
    with _STAGING_LOCK:
        _STAGING.difference_update(names)


def drop_unused_tables(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Drop physical tables no snapshot uses (staged by an import that was killed before it committed)."""
    used = {name for (name,) in conn.execute("SELECT DISTINCT physical FROM snapshot_tables").fetchall()}
    with _STAGING_LOCK:
        used |= _STAGING
    stored = [name for (name,) in conn.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND NOT temporary").fetchall()]
    unused = [name for name in stored if name not in used and not name.endswith("__empty")
              and any(name.startswith(table + "__") for table in TABLES)]
    for name in unused:
        conn.execute(f"DROP TABLE {quote(name)}")
    return unused


def latest_snapshot(conn: duckdb.DuckDBPyConnection) -> Snapshot | None:
    """The newest snapshot, or None in an empty database."""
    row = conn.execute("SELECT id, created_at, note FROM snapshots ORDER BY id DESC LIMIT 1").fetchone()
    return Snapshot(*row) if row else None


def snapshot(conn: duckdb.DuckDBPyConnection, snapshot_id: int) -> Snapshot:
    """The snapshot with this id; KpiError if there is none."""
    row = conn.execute("SELECT id, created_at, note FROM snapshots WHERE id = ?", [snapshot_id]).fetchone()
    if row is None:
        raise KpiError(f"There is no snapshot {snapshot_id}. 'kpicore snapshots' and the Data page list them.")
    return Snapshot(*row)


def snapshots(conn: duckdb.DuckDBPyConnection) -> list[tuple[Snapshot, list[SnapshotTable]]]:
    """Every snapshot, newest first, with its tables' row counts and sources."""
    found = []
    for row in conn.execute("SELECT id, created_at, note FROM snapshots ORDER BY id DESC").fetchall():
        tables = conn.execute(
            "SELECT table_name, rows, changed, source FROM snapshot_tables WHERE snapshot_id = ? ORDER BY table_name",
            [row[0]],
        ).fetchall()
        found.append((Snapshot(*row), [SnapshotTable(*t) for t in tables]))
    return found


def status_dates(conn: duckdb.DuckDBPyConnection, snap: Snapshot) -> dict[str, date]:
    """The tables of a snapshot that came from status-only exports, with each export's date."""
    rows = conn.execute("SELECT table_name, status_as_of FROM snapshot_tables WHERE snapshot_id = ? "
                        "AND status_as_of IS NOT NULL", [snap.id]).fetchall()
    return dict(rows)


def physical_of(conn: duckdb.DuckDBPyConnection, snap: Snapshot, table: str) -> str:
    """The physical table a snapshot uses for a canonical table."""
    row = conn.execute("SELECT physical FROM snapshot_tables WHERE snapshot_id = ? AND table_name = ?",
                       [snap.id, table]).fetchone()
    return row[0]


def commit_snapshot(conn: duckdb.DuckDBPyConnection, snapshot_id: int, changed: dict[str, str], note: str,
                    previous: Snapshot | None, sources: dict[str, str] | None = None,
                    status: dict[str, date | None] | None = None) -> Snapshot:
    """Record a snapshot using `changed` physical tables and the previous snapshot's for the rest.

    `status` gives the export date of changed tables that came from status-only exports. Runs inside
    the caller's transaction; tables never stored before get an empty physical table.
    """
    carried = status_dates(conn, previous) if previous is not None else {}
    snap = Snapshot(snapshot_id, datetime.now().replace(microsecond=0), note)
    conn.execute(f"CREATE SCHEMA {quote(snap.schema)}")
    for name, table in TABLES.items():
        as_of = (status or {}).get(name) if name in changed else carried.get(name)
        if name in changed:
            physical, is_changed, source = changed[name], True, (sources or {}).get(name, note)
        elif previous is not None:
            physical, is_changed = physical_of(conn, previous, name), False
            source = conn.execute("SELECT source FROM snapshot_tables WHERE snapshot_id = ? AND table_name = ?",
                                  [previous.id, name]).fetchone()[0]
        else:
            physical, is_changed, source = _empty_table(conn, name), False, "empty"
        columns = ", ".join(quote(c.name) for c in table.columns)
        conn.execute(f"CREATE VIEW {quote(snap.schema)}.{quote(name)} AS SELECT {columns} FROM {quote(physical)} "
                     f"WHERE {_kept(conn, physical)}")
        rows = conn.execute(f"SELECT COUNT(*) FROM {quote(snap.schema)}.{quote(name)}").fetchone()[0]
        conn.execute("INSERT INTO snapshot_tables VALUES (?, ?, ?, ?, ?, ?, ?)",
                     [snap.id, name, physical, rows, is_changed, source, as_of])
    conn.execute("INSERT INTO snapshots VALUES (?, ?, ?)", [snap.id, snap.created_at, note])
    return snap


def _kept(conn: duckdb.DuckDBPyConnection, physical: str) -> str:
    """The condition for a physical table's rows that a snapshot shows: valid, and not replaced by a later row
    with the same id. Tables stored before `duplicate_rows` existed mark those rows in a `__dup` column."""
    literal = "'" + physical.replace("'", "''") + "'"
    kept = f"__valid AND rowid NOT IN (SELECT row_id FROM duplicate_rows WHERE physical = {literal})"
    marked = conn.execute("SELECT COUNT(*) FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ? "
                          "AND column_name = '__dup'", [physical]).fetchone()[0]
    return kept + (" AND NOT __dup" if marked else "")


def _empty_table(conn: duckdb.DuckDBPyConnection, name: str) -> str:
    physical = f"{name}__empty"
    columns = ", ".join(f"{quote(c.name)} {c.type.sql}" for c in TABLES[name].columns)
    conn.execute(f"CREATE TABLE IF NOT EXISTS {quote(physical)} ({columns}, __blank BOOLEAN, __valid BOOLEAN)")
    return physical


def restore(conn: duckdb.DuckDBPyConnection, snapshot_id: int) -> Snapshot:
    """Make an earlier snapshot current again, as a new snapshot (history is never rewritten)."""
    old = snapshot(conn, snapshot_id)
    conn.execute("BEGIN TRANSACTION")
    try:
        new_id = conn.execute("SELECT MAX(id) + 1 FROM snapshots").fetchone()[0]
        tables = {name: physical_of(conn, old, name) for name in TABLES}
        sources = dict(conn.execute("SELECT table_name, source FROM snapshot_tables WHERE snapshot_id = ?",
                                    [old.id]).fetchall())
        restored = commit_snapshot(conn, new_id, tables, f"Restored snapshot {old.id} ({old.note})", None, sources,
                                   status_dates(conn, old))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return restored


def load_sample(conn: duckdb.DuckDBPyConnection, sample_dir: Path = SAMPLE_DIR) -> Snapshot:
    """Store the bundled sample CSVs (one per canonical table) as a new snapshot."""
    from kpicore.files import read_file
    from kpicore.ingest import Upload, import_files
    from kpicore.mapping import propose

    uploads = []
    for name in TABLES:
        path = sample_dir / f"{name}.csv"
        if path.exists():
            raw = read_file(path)
            uploads.append(Upload(raw, propose(raw, name)))
    return import_files(conn, uploads, f"Sample data from {sample_dir.name}/").snapshot


def save_mapping(conn: duckdb.DuckDBPyConnection, name: str, mapping: dict[str, object]) -> None:
    """Keep a column and value mapping under a name, for the next export from the same tool."""
    conn.execute("INSERT OR REPLACE INTO mappings VALUES (?, ?, ?)", [name, json.dumps(mapping["headers"]),
                                                                      json.dumps(mapping)])


def saved_mapping(conn: duckdb.DuckDBPyConnection, name: str) -> dict[str, object]:
    """The mapping saved under `name`; KpiError naming the saved ones if there is none."""
    row = conn.execute("SELECT mapping FROM mappings WHERE name = ?", [name]).fetchone()
    if row is None:
        known = ", ".join(n for (n,) in conn.execute("SELECT name FROM mappings ORDER BY name").fetchall()) or "none"
        raise KpiError(f"There is no saved mapping '{name}'. Saved mappings: {known}.")
    return json.loads(row[0])


def mapping_for_headers(conn: duckdb.DuckDBPyConnection, headers: tuple[str, ...]) -> tuple[str, dict] | None:
    """A saved mapping made for a file with exactly these column names (the same tool's export)."""
    row = conn.execute("SELECT name, mapping FROM mappings WHERE headers = ? ORDER BY name LIMIT 1",
                       [json.dumps(list(headers))]).fetchone()
    return (row[0], json.loads(row[1])) if row else None


def mapping_names(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Names of the saved mappings."""
    return [n for (n,) in conn.execute("SELECT name FROM mappings ORDER BY name").fetchall()]
