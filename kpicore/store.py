"""The DuckDB file: canonical tables kept as immutable snapshots."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from kpicore.compute import quote
from kpicore.model import TABLES, Table

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
    conn.execute(
        "CREATE TABLE IF NOT EXISTS snapshots (id INTEGER PRIMARY KEY, created_at TIMESTAMP, note VARCHAR)"
    )
    if latest_snapshot(conn) is None:
        load_sample(conn, sample_dir)
    return conn


def latest_snapshot(conn: duckdb.DuckDBPyConnection) -> Snapshot | None:
    """The newest snapshot, or None in an empty database."""
    row = conn.execute("SELECT id, created_at, note FROM snapshots ORDER BY id DESC LIMIT 1").fetchone()
    return Snapshot(*row) if row else None


def load_sample(conn: duckdb.DuckDBPyConnection, sample_dir: Path = SAMPLE_DIR) -> Snapshot:
    """Store the bundled sample CSVs as a new snapshot."""
    files = {name: sample_dir / f"{name}.csv" for name in TABLES}
    return create_snapshot(conn, files, f"Sample data from {sample_dir.name}/")


def create_snapshot(conn: duckdb.DuckDBPyConnection, files: dict[str, Path], note: str) -> Snapshot:
    """Store canonical CSV files (missing tables stay empty) as one new snapshot, all or nothing."""
    conn.execute("BEGIN TRANSACTION")
    try:
        snapshot_id = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM snapshots").fetchone()[0]
        snapshot = Snapshot(snapshot_id, datetime.now().replace(microsecond=0), note)
        conn.execute(f"CREATE SCHEMA {quote(snapshot.schema)}")
        for name, table in TABLES.items():
            physical = quote(f"{name}__{snapshot_id}")
            conn.execute(f"CREATE TABLE {physical} ({_columns_sql(table)})")
            path = files.get(name)
            if path is not None and path.exists():
                conn.execute(
                    f"INSERT INTO {physical} BY NAME SELECT * FROM read_csv($path, header = true, all_varchar = true)",
                    {"path": str(path)},
                )
            conn.execute(f"CREATE VIEW {quote(snapshot.schema)}.{quote(name)} AS SELECT * FROM {physical}")
        conn.execute("INSERT INTO snapshots VALUES (?, ?, ?)", [snapshot.id, snapshot.created_at, note])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return snapshot


def _columns_sql(table: Table) -> str:
    return ", ".join(f"{quote(c.name)} {c.type.sql}" for c in table.columns)

