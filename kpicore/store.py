"""The DuckDB file: canonical tables kept as immutable snapshots.

Each import writes new physical tables (`leads__3f9a0c1b2d4e`) and never changes old ones. A snapshot
is a schema (`snapshot_7`) of views, one per canonical table, over the physical tables it uses: the
tables an import replaced or appended to, and the previous snapshot's tables for the rest (or empty
ones, where an import starts from empty tables or a table is emptied on purpose). A view shows a
physical table's valid rows except those `duplicate_rows` lists (an earlier row whose id a later row
of the same file repeats). A physical table no snapshot uses was staged by an import that did not
finish; `connect` drops it. `snapshot_tables` also records what each table holds besides its rows:
whether it is the bundled sample, which canonical columns its export had, its status-only export date
and the currency its amounts are in.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

from kpicore import checkins, kept
from kpicore.coverage import Loaded
from kpicore.errors import KpiError, first_line
from kpicore.files import RawFile, process_running
from kpicore.mapping import Plan, apply_saved, propose
from kpicore.model import TABLES
from kpicore.sql import quote

DEFAULT_DB = Path("data/kpi.duckdb")
_PACKAGE = Path(__file__).resolve().parent
# sample_data/ at the top of the source tree, installed as kpicore/sample_data (see pyproject.toml)
SAMPLE_DIR = next((d for d in (_PACKAGE / "sample_data", _PACKAGE.parent / "sample_data") if d.is_dir()),
                  _PACKAGE.parent / "sample_data")


@dataclass(frozen=True)
class Snapshot:
    """One immutable state of all canonical tables."""

    id: int
    created_at: datetime
    note: str
    author: str | None = None  # who made it (None: before authors were recorded, or the sample at first start)
    warehouse: str | None = None  # a reading of a warehouse: the engine (no password); None: tables in this file
    warehouse_schema: str | None = None  # ... and the schema there that holds the canonical tables

    @property
    def schema(self) -> str:
        """The schema whose tables or views show this snapshot's tables (in this file, or in the warehouse)."""
        return self.warehouse_schema or f"snapshot_{self.id}"


@dataclass(frozen=True)
class Stored:
    """The physical table a snapshot uses for a canonical table, and what it holds besides its rows."""

    physical: str
    source: str
    columns: tuple[str, ...] | None = None  # canonical columns the export had (None: every column)
    status_as_of: date | None = None  # the export date of a status-only export
    currency: str | None = None  # the currency its amounts are in, where the export showed one
    sample: bool = False  # the bundled sample data

    def loaded(self) -> Loaded:
        """What computation needs to know of it."""
        return Loaded(None if self.columns is None else frozenset(self.columns), self.status_as_of, self.currency)


@dataclass(frozen=True)
class SnapshotTable:
    """One canonical table as a snapshot holds it."""

    table: str
    rows: int
    changed: bool
    stored: Stored

    @property
    def source(self) -> str:
        """The file (or action) the rows came from."""
        return self.stored.source


class DatabaseBusy(KpiError):
    """Another program holds the database file (DuckDB lets one process at a time open it for writing)."""


class BrokenDatabase(KpiError):
    """A database file that cannot be read (truncated, overwritten, not a DuckDB file), or a folder that cannot
    be written; the message says what to run."""


def broken(target: Path, error: Exception) -> BrokenDatabase:
    """What to do about a database file DuckDB cannot read: nothing in it is changed."""
    return BrokenDatabase(
        f"{target} cannot be read as a KPI database ({first_line(error)}). Nothing in it was changed. Put a backup "
        "back with "
        f"'kpicore --db {target} restore-backup BACKUP_FILE', or keep the file aside and start afresh: "
        f"'mv {target} {target}.broken && kpicore --db {target} init'.")


def out_of_space(error: Exception) -> bool:
    """Whether a write failed for want of disk space (or of the file size this process may write)."""
    text = str(error)
    return "No space left on device" in text or "File too large" in text or "Disk quota exceeded" in text


def disk_full(target: Path, what: str) -> KpiError:
    """The disk (or the file size allowed) ran out while writing: nothing was changed."""
    return KpiError(f"The disk is full: {what} could not be written to {target.parent}. Nothing was changed; the "
                    "data stays as it was. Free some space there (or set KPI_DB to a file on a larger disk) and try "
                    "again.")


def db_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The database to use: an explicit path, else $KPI_DB, else data/kpi.duckdb."""
    chosen = explicit or os.environ.get("KPI_DB")
    return Path(chosen) if chosen else DEFAULT_DB


def connect(path: str | os.PathLike[str] | None = None, sample_dir: Path = SAMPLE_DIR, sample: bool = True,
            wait: float = 0.0, waiting: Callable[[str], None] | None = None) -> duckdb.DuckDBPyConnection:
    """Open the database, creating it with the sample data (or, without `sample`, empty tables) if it has no
    snapshot yet. While another program holds the file, try again for `wait` seconds (telling `waiting` once
    why), then raise DatabaseBusy."""
    target = db_path(path)
    if str(target) != ":memory:":
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise BrokenDatabase(f"The folder {target.parent} cannot be made ({error.strerror}). Set KPI_DB (or "
                                 "--db) to a file in a folder this user may write.") from None
    conn = _open(target, wait, waiting)
    try:
        _prepare(conn, sample_dir, sample)
    except duckdb.Error as error:
        conn.close()
        if out_of_space(error):
            raise disk_full(target, "the database") from None
        raise broken(target, error) from None
    return conn


def backup(conn: duckdb.DuckDBPyConnection, target: Path, to: Path) -> int:
    """Copy the whole database (every snapshot, mapping, check-in) to `to`, while `conn` holds it so that nothing
    writes meanwhile; the copy is opened once to prove it reads. The number of snapshots in it."""
    conn.execute("CHECKPOINT")  # everything in the file itself, nothing left in the write-ahead log
    to.parent.mkdir(parents=True, exist_ok=True)
    partial = to.with_name(to.name + ".partial")
    try:
        shutil.copyfile(target, partial)
    except OSError as error:
        partial.unlink(missing_ok=True)
        if error.errno == errno.ENOSPC:
            raise disk_full(to, "the backup") from None
        raise KpiError(f"The backup could not be written to {to} ({error.strerror}).") from None
    snapshots = _snapshot_count(partial)
    os.replace(partial, to)
    return snapshots


def _snapshot_count(path: Path) -> int:
    """How many snapshots a database file holds (BrokenDatabase if it is not a readable KPI database)."""
    try:
        with duckdb.connect(str(path), read_only=True) as copy:
            return copy.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
    except duckdb.Error as error:
        raise broken(path, error) from None


def restore_backup(target: Path, source: Path, wait: float = 0.0) -> Path:
    """Put a backup in place of the database file, after checking that it reads; the file it replaces is kept
    beside it (returned). DatabaseBusy while the app or another command holds the database."""
    _snapshot_count(source)
    if target.exists():
        with contextlib.suppress(BrokenDatabase):  # a broken file is what a backup replaces
            _open(target, wait, None).close()  # nobody else has it open right now
    kept_aside = target.with_name(target.name + f".before-restore-{datetime.now():%Y%m%d-%H%M%S}")
    if target.exists():
        os.replace(target, kept_aside)
    Path(str(target) + ".wal").unlink(missing_ok=True)
    shutil.copyfile(source, target)
    return kept_aside


def _prepare(conn: duckdb.DuckDBPyConnection, sample_dir: Path, sample: bool) -> None:
    """The database's own tables (made or brought up to date), and the sample or empty tables if it is new."""
    conn.execute("SET enable_progress_bar = false")  # DuckDB would draw it into the CLI's output
    # DuckDB's default, stated because imports rely on it: a staged table keeps the file's row order, so a
    # row's rowid gives its row number in the file (ingest.staging_sql)
    conn.execute("SET preserve_insertion_order = true")
    prepare_state(conn)
    drop_unused_tables(conn)
    if latest_snapshot(conn) is None:
        if sample and any(sample_dir.glob("*.csv")):
            load_sample(conn, sample_dir)
        else:
            empty_snapshot(conn, "Empty tables")


def prepare_state(conn: duckdb.DuckDBPyConnection) -> None:
    """The app's own tables (snapshots, their tables, saved mappings, kept values, check-ins, targets), made or
    brought up to date: in the DuckDB file, or in a PostgreSQL schema that app replicas share
    (kpicore.engines.PostgresState takes the same SQL)."""
    conn.execute("CREATE TABLE IF NOT EXISTS snapshots (id INTEGER PRIMARY KEY, created_at TIMESTAMP, note VARCHAR)")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS snapshot_tables (snapshot_id INTEGER, table_name VARCHAR, physical VARCHAR, "
        "rows BIGINT, changed BOOLEAN, source VARCHAR, status_as_of DATE)"
    )
    _add_table_facts(conn)
    for column in ("author", "warehouse", "warehouse_schema"):
        conn.execute(f"ALTER TABLE snapshots ADD COLUMN IF NOT EXISTS {column} VARCHAR")
    conn.execute("CREATE TABLE IF NOT EXISTS mappings (name VARCHAR PRIMARY KEY, headers VARCHAR, mapping VARCHAR)")
    for column, kind in (("saved_by", "VARCHAR"), ("saved_at", "TIMESTAMP")):
        conn.execute(f"ALTER TABLE mappings ADD COLUMN IF NOT EXISTS {column} {kind}")
    # rows of a physical table that a later row with the same id replaced (see ingest._mark_duplicates)
    conn.execute("CREATE TABLE IF NOT EXISTS duplicate_rows (physical VARCHAR, row_id BIGINT)")
    kept.create(conn)
    checkins.create(conn)
    from kpicore import targets  # targets builds on this module
    targets.create(conn)


def _open(target: Path, wait: float, waiting: Callable[[str], None] | None) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + wait
    told = asked = False
    try:
        while True:
            try:
                return duckdb.connect(str(target))
            except duckdb.IOException as error:
                holder = _lock_holder(error)
                if holder is None:
                    if "Permission denied" in str(error) or "Read-only file system" in str(error):
                        raise BrokenDatabase(f"{target} cannot be opened for writing ({first_line(error)}). Give this "
                                             "user write access to it and its folder, or set KPI_DB (or --db) to a "
                                             "file in a writable folder.") from None
                    raise broken(target, error) from None
                if time.monotonic() >= deadline:
                    raise DatabaseBusy(f"{target} is open in another program ({holder}), most likely the app while "
                                       "it imports or draws a page. Try again in a moment, or import on the app's "
                                       "Data page.") from None
                asked = asked or _want(target)  # the app lets go of the file between two page runs when it sees it
                if waiting is not None and not told:
                    waiting(f"{target} is in use by another program ({holder}); waiting up to {wait:g} s for it.")
                    told = True
                time.sleep(0.1)
    finally:
        _unwant(target)


def _wanted_path(target: Path) -> Path:
    return target.with_name(target.name + ".wanted")


def _want(target: Path) -> bool:
    """Say that this process waits for the database file (one waiting process at a time is said): whether it is
    said now (written once, not on every try)."""
    if wanted_by_another(target):
        return False
    try:
        _wanted_path(target).write_text(str(os.getpid()), encoding="ascii")
    except OSError:  # a read-only folder: the others will not know, only wait
        return False
    return True


def _unwant(target: Path) -> None:
    """This process no longer waits (it has the file, or gave up)."""
    marker = _wanted_path(target)
    with contextlib.suppress(OSError, ValueError):
        if int(marker.read_text(encoding="ascii")) == os.getpid():
            marker.unlink()


def wanted_by_another(target: Path) -> bool:
    """Whether another running process waits for the database file (a marker of an ended one is removed)."""
    marker = _wanted_path(target)
    try:
        pid = int(marker.read_text(encoding="ascii"))
    except (OSError, ValueError):
        return False
    if pid == os.getpid():
        return False
    if not process_running(pid):
        with contextlib.suppress(OSError):
            marker.unlink()
        return False
    return True


def _lock_holder(error: Exception) -> str | None:
    """'PID 1234', when DuckDB refused the file because another process holds its lock (else None)."""
    text = str(error)
    if "Could not set lock" not in text:
        return None
    found = re.search(r"\(PID (\d+)\)", text)
    return f"PID {found.group(1)}" if found else "another process"


def _add_table_facts(conn: duckdb.DuckDBPyConnection) -> None:
    """Columns added to `snapshot_tables` after its first version; rows written before them are read as
    before (every column loaded; sample tables told by their source)."""
    for column, kind in (("sample", "BOOLEAN"), ("columns", "VARCHAR"), ("currency", "VARCHAR")):
        conn.execute(f"ALTER TABLE snapshot_tables ADD COLUMN IF NOT EXISTS {column} {kind}")
    # a sample table is one the sample's own snapshot wrote (restored ones reuse its physical table)
    conn.execute("UPDATE snapshot_tables SET sample = physical IN (SELECT t.physical FROM snapshot_tables AS t "
                 "JOIN snapshots AS s ON s.id = t.snapshot_id WHERE s.note LIKE 'Sample data from %' AND t.changed) "
                 "WHERE sample IS NULL")


class Database:
    """The DuckDB file as the app uses it: open while some session uses it, closed `linger` seconds after the
    last use, so that the command line or a second app process can open it in between (DuckDB lets one process at
    a time open a file for writing). Lingering spares a run of clicks the reopening (a tenth of a rerun). When
    another process says it waits for the file (a `.wanted` marker beside it), the runs under way finish, the file
    is closed at once, and new runs wait until the other process has it (at most `wait` seconds), then open it
    again in turn."""

    def __init__(self, path: str | os.PathLike[str], wait: float = 5.0, linger: float = 0.0,
                 sample: bool = True) -> None:
        self.path, self.wait, self.linger, self.sample = Path(path), wait, linger, sample
        self._lock = threading.Lock()
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._users = 0
        self._closing: threading.Timer | None = None

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the open database (opened first if nobody uses it); DatabaseBusy while another
        program holds the file."""
        self._give_way()
        with self._lock:
            if self._closing is not None:
                self._closing.cancel()
                self._closing = None
            if self._conn is None:
                self._conn = connect(self.path, sample=self.sample, wait=self.wait)
            self._users += 1
            cursor = self._conn.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._conn is not None:
                    if self.linger > 0 and not wanted_by_another(self.path):
                        timer = threading.Timer(self.linger, lambda: self._close_if_unused(timer))
                        timer.daemon = True
                        self._closing = timer
                        timer.start()
                    else:
                        self._close()

    def _give_way(self) -> None:
        """While another process waits for the file: let the runs under way finish, close, and wait for it to
        take the file (or for `wait` seconds)."""
        deadline = time.monotonic() + self.wait
        while wanted_by_another(self.path) and time.monotonic() < deadline:
            with self._lock:
                if self._users == 0:
                    if self._closing is not None:
                        self._closing.cancel()
                        self._closing = None
                    self._close()
            time.sleep(0.05)

    def _close_if_unused(self, timer: threading.Timer) -> None:
        """The linger is over: close unless a later use took over (a timer that fired while a run began and
        ended again is no longer the current one)."""
        with self._lock:
            if self._closing is timer:
                self._closing = None
                self._close()

    def _close(self) -> None:
        if self._users == 0 and self._conn is not None:
            self._conn.close()
            self._conn = None


COMMITS = threading.Lock()
"""One snapshot commit at a time in this process (and only one process writes the file): two imports committing at
once both took the next id ("write-write conflict on create snapshot_2"), and the later one would have carried the
tables of the snapshot before the other's."""

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


_SNAPSHOT = "id, created_at, note, author, warehouse, warehouse_schema"


def latest_snapshot(conn: duckdb.DuckDBPyConnection, local: bool = False) -> Snapshot | None:
    """The newest snapshot (with `local`, the newest whose tables are in this file), or None in an empty
    database."""
    where = "WHERE warehouse IS NULL " if local else ""
    row = conn.execute(f"SELECT {_SNAPSHOT} FROM snapshots {where}ORDER BY id DESC LIMIT 1").fetchone()
    return Snapshot(*row) if row else None


def snapshot(conn: duckdb.DuckDBPyConnection, snapshot_id: int) -> Snapshot:
    """The snapshot with this id; KpiError if there is none."""
    row = conn.execute(f"SELECT {_SNAPSHOT} FROM snapshots WHERE id = ?", [snapshot_id]).fetchone()
    if row is None:
        raise KpiError(f"There is no snapshot {snapshot_id}. 'kpicore snapshots' and the Data page list them.")
    return Snapshot(*row)


_TABLE_FACTS = "table_name, rows, changed, physical, source, columns, status_as_of, currency, sample"


def _snapshot_table(row: tuple) -> SnapshotTable:
    name, rows, changed, physical, source, columns, status_as_of, currency, sample = row
    listed = None if columns is None else tuple(json.loads(columns))
    return SnapshotTable(name, rows, changed, Stored(physical, source, listed, status_as_of, currency, bool(sample)))


def tables(conn: duckdb.DuckDBPyConnection, snap: Snapshot) -> dict[str, SnapshotTable]:
    """The canonical tables of a snapshot, in the data model's order."""
    found = {row[0]: _snapshot_table(row) for row in conn.execute(
        f"SELECT {_TABLE_FACTS} FROM snapshot_tables WHERE snapshot_id = ?", [snap.id]).fetchall()}
    return {name: found[name] for name in TABLES if name in found}


def snapshots(conn: duckdb.DuckDBPyConnection) -> list[tuple[Snapshot, list[SnapshotTable]]]:
    """Every snapshot, newest first, with its tables' row counts and sources."""
    rows = conn.execute(f"SELECT {_SNAPSHOT} FROM snapshots ORDER BY id DESC").fetchall()
    return [(snap, list(tables(conn, snap).values())) for snap in (Snapshot(*row) for row in rows)]


def loaded(conn: duckdb.DuckDBPyConnection, snap: Snapshot) -> dict[str, Loaded]:
    """What computation needs to know of each table of a snapshot besides its rows."""
    return {name: table.stored.loaded() for name, table in tables(conn, snap).items()}


def sample_tables(conn: duckdb.DuckDBPyConnection, snap: Snapshot) -> list[str]:
    """The tables of a snapshot that hold the bundled sample data."""
    return [name for name, t in tables(conn, snap).items() if t.stored.sample and t.rows]


def sample_snapshot(conn: duckdb.DuckDBPyConnection) -> int | None:
    """The latest snapshot that holds sample data (to restore it), if any."""
    row = conn.execute("SELECT MAX(snapshot_id) FROM snapshot_tables WHERE sample AND rows > 0").fetchone()
    return row[0]


def commit_snapshot(conn: duckdb.DuckDBPyConnection, snapshot_id: int, changed: dict[str, Stored], note: str,
                    previous: Snapshot | None, emptied: Iterable[str] = (), author: str | None = None) -> Snapshot:
    """Record a snapshot using the `changed` tables, empty tables for `emptied` and for tables never stored,
    and the previous snapshot's tables for the rest. Runs inside the caller's transaction."""
    carried = tables(conn, previous) if previous is not None else {}
    emptied = set(emptied)
    snap = Snapshot(snapshot_id, datetime.now().replace(microsecond=0), note, author)
    conn.execute(f"CREATE SCHEMA {quote(snap.schema)}")
    for name, table in TABLES.items():
        if name in changed:
            stored, is_changed = changed[name], True
        elif name in carried and name not in emptied:
            stored, is_changed = carried[name].stored, False
        else:
            stored = Stored(_empty_table(conn, name), "emptied" if name in emptied else "empty", ())
            is_changed = name in emptied and name in carried and carried[name].rows > 0
        columns = ", ".join(quote(c.name) for c in table.columns)
        conn.execute(f"CREATE VIEW {quote(snap.schema)}.{quote(name)} AS SELECT {columns} FROM "
                     f"{quote(stored.physical)} WHERE {_kept(conn, stored.physical)}")
        rows = conn.execute(f"SELECT COUNT(*) FROM {quote(snap.schema)}.{quote(name)}").fetchone()[0]
        listed = None if stored.columns is None else json.dumps(list(stored.columns))
        conn.execute(f"INSERT INTO snapshot_tables (snapshot_id, {_TABLE_FACTS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     [snap.id, name, rows, is_changed, stored.physical, stored.source, listed, stored.status_as_of,
                      stored.currency, stored.sample])
    conn.execute("INSERT INTO snapshots (id, created_at, note, author) VALUES (?, ?, ?, ?)",
                 [snap.id, snap.created_at, note, author])
    return snap


def _new_snapshot(conn: duckdb.DuckDBPyConnection, note: str, changed: dict[str, Stored],
                  emptied: Iterable[str] = (), author: str | None = None,
                  also: Callable[[int], None] | None = None) -> Snapshot:
    """Commit a snapshot of its own (not part of an import) after the latest one, with what `also` writes for
    it in the same transaction."""
    with committing(conn) as new_id:
        made = commit_snapshot(conn, new_id, changed, note, latest_snapshot(conn, local=True), emptied, author)
        if also is not None:
            also(new_id)
    return made


@contextmanager
def committing(conn: duckdb.DuckDBPyConnection) -> Iterator[int]:
    """The next snapshot id, in a transaction committed when the block ends (rolled back if it fails), one commit
    of this process at a time (`COMMITS`)."""
    with COMMITS:
        conn.execute("BEGIN TRANSACTION")
        try:
            yield conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM snapshots").fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def snapshot_with(conn: duckdb.DuckDBPyConnection, note: str, author: str | None,
                  write: Callable[[int], None]) -> Snapshot:
    """A new snapshot with the latest one's tables (the same reading's, where it is a warehouse reading), committed
    together with what `write` stores for it (a target change, say)."""
    latest = latest_snapshot(conn)
    if latest is not None and latest.warehouse:
        counted = {name: (t.rows, t.stored.columns or tuple(c.name for c in TABLES[name].columns))
                   for name, t in tables(conn, latest).items()}
        return record_reading(conn, latest.warehouse, latest.schema, counted, author, note, write)
    return _new_snapshot(conn, note, {}, (), author, write)


def empty_snapshot(conn: duckdb.DuckDBPyConnection, note: str = "Started with empty tables",
                   author: str | None = None) -> Snapshot:
    """A new snapshot in which every table is empty (the earlier ones stay restorable)."""
    return _new_snapshot(conn, note, {}, TABLES, author)


def empty_tables(conn: duckdb.DuckDBPyConnection, names: Iterable[str], author: str | None = None) -> Snapshot:
    """A new snapshot in which these tables are empty and the others as they were."""
    names = list(names)
    unknown = [n for n in names if n not in TABLES]
    if unknown:
        raise KpiError(f"There is no table {', '.join(unknown)}. Tables: {', '.join(TABLES)}.")
    return _new_snapshot(conn, f"Emptied {', '.join(names)}", {}, names, author)


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


def record_reading(conn: duckdb.DuckDBPyConnection, engine: str, schema: str, counted: dict[str, tuple[int, tuple]],
                   author: str | None = None, note: str | None = None,
                   also: Callable[[int], None] | None = None, stored: dict[str, Stored] | None = None) -> Snapshot:
    """Record a reading of the warehouse as a new snapshot (with what `also` writes for it, in the same
    transaction): its tables are the warehouse schema's, as `counted` (rows, and the canonical columns holding any
    value) found them. A column without any value counts as not in the data, as a column an export lacks does.
    `stored` gives what an upload just wrote to the warehouse (its export's columns, export date, currency)."""
    stored = stored or {}
    with committing(conn) as new_id:
        made = Snapshot(new_id, datetime.now().replace(microsecond=0),
                        note or f"Read {schema} from the warehouse", author, engine, schema)
        for name, (rows, filled) in counted.items():
            every = len(filled) == len(TABLES[name].columns)
            facts = stored.get(name) or Stored(f"{schema}.{name}", f"warehouse {schema}.{name}",
                                              None if every else tuple(filled))
            listed = None if facts.columns is None else json.dumps(list(facts.columns))
            conn.execute(f"INSERT INTO snapshot_tables (snapshot_id, {_TABLE_FACTS}) VALUES "
                         "(?, ?, ?, ?, ?, ?, ?, ?, ?, false)",
                         [new_id, name, rows, note is None or name in stored, facts.physical, facts.source, listed,
                          facts.status_as_of, facts.currency])
        conn.execute(f"INSERT INTO snapshots ({_SNAPSHOT}) VALUES (?, ?, ?, ?, ?, ?)",
                     [made.id, made.created_at, made.note, author, engine, schema])
        if also is not None:
            also(new_id)
    return made


def restore(conn: duckdb.DuckDBPyConnection, snapshot_id: int, author: str | None = None) -> Snapshot:
    """Make an earlier snapshot current again, as a new snapshot (history is never rewritten)."""
    old = snapshot(conn, snapshot_id)
    if old.warehouse:
        raise KpiError(f"Snapshot {old.id} was read from the warehouse ({old.warehouse}), which keeps no earlier "
                       "states: it cannot be made current again. Its kept values still show under its link.")
    stored = {name: t.stored for name, t in tables(conn, old).items()}
    return _new_snapshot(conn, f"Restored snapshot {old.id} ({old.note})", stored, author=author)


def load_sample(conn: duckdb.DuckDBPyConnection, sample_dir: Path = SAMPLE_DIR, author: str | None = None) -> Snapshot:
    """Store the bundled sample CSVs (one per canonical table) as a new snapshot."""
    from kpicore.files import read_file
    from kpicore.ingest import Upload, import_files

    uploads = []
    for name in TABLES:
        path = sample_dir / f"{name}.csv"
        if path.exists():
            raw = read_file(path)
            uploads.append(Upload(raw, propose(raw, name)))
    return import_files(conn, uploads, f"Sample data from {sample_dir.name}/", sample=True, author=author).snapshot


def known_ids(conn: duckdb.DuckDBPyConnection) -> Callable[[str, list[str]], float]:
    """For recognising references: the share of some values that are ids of a table in the latest snapshot."""
    snap = latest_snapshot(conn, local=True)

    def share(table: str, values: list[str]) -> float:
        key = TABLES[table].key
        if snap is None or key is None or not values:
            return 0.0
        found = conn.execute(f"SELECT COUNT(DISTINCT v) FROM unnest($values) AS u(v) WHERE v IN "
                             f"(SELECT {quote(key)} FROM {quote(snap.schema)}.{quote(table)})",
                             {"values": values}).fetchone()[0]
        return found / len(set(values))

    return share


def plan_for(conn: duckdb.DuckDBPyConnection, raw: RawFile, table: str | None = None,
             mapping: str | None = None) -> tuple[Plan, str | None]:
    """How a file maps: recognised (the table given, or the likeliest), then the saved mapping named, or else the
    one saved for a file with exactly these column names; and the name of the saved mapping applied."""
    plan = propose(raw, table, known_ids(conn))
    if mapping is not None:
        return apply_saved(plan, raw, saved_mapping(conn, mapping)), mapping
    found = mapping_for_headers(conn, raw.columns)
    if found is None:
        return plan, None
    return apply_saved(plan, raw, found[1]), found[0]


def save_mapping(conn: duckdb.DuckDBPyConnection, name: str, mapping: dict[str, object],
                 author: str | None = None) -> None:
    """Keep a column and value mapping under a name, for the next export from the same tool, with who saved it."""
    conn.execute("INSERT INTO mappings (name, headers, mapping, saved_by, saved_at) VALUES (?, ?, ?, ?, ?) "
                 "ON CONFLICT (name) DO UPDATE SET headers = excluded.headers, mapping = excluded.mapping, "
                 "saved_by = excluded.saved_by, saved_at = excluded.saved_at",
                 [name, json.dumps(mapping["headers"]), json.dumps(mapping), author,
                  datetime.now().replace(microsecond=0)])


def mapping_origin(conn: duckdb.DuckDBPyConnection, name: str) -> str:
    """"'Salesforce' saved by Ana on 2026-11-02": a saved mapping as it is named wherever it is applied."""
    row = conn.execute("SELECT saved_by, saved_at FROM mappings WHERE name = ?", [name]).fetchone()
    who = f" by {row[0]}" if row and row[0] else ""
    when = f" on {row[1]:%Y-%m-%d}" if row and row[1] else ""
    return f"'{name}' saved{who}{when}"


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
