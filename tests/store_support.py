"""What tests compare before and after an import: the store's state, and each table's rows in a snapshot."""
from __future__ import annotations

from pathlib import Path

import duckdb

from kpicore import store
from kpicore.model import TABLES


def row_counts(conn: duckdb.DuckDBPyConnection, schema: str) -> dict[str, int]:
    """Rows of every canonical table as the snapshot `schema` shows them."""
    return {name: conn.execute(f'SELECT COUNT(*) FROM "{schema}"."{name}"').fetchone()[0] for name in TABLES}


def db_state(path: Path) -> dict[str, object]:
    """`state` of the database file at `path`."""
    conn = duckdb.connect(str(path))
    try:
        return state(conn)
    finally:
        conn.close()


def state(conn: duckdb.DuckDBPyConnection) -> dict[str, object]:
    """Everything an import could change: snapshots and their tables, mappings, schemas, tables, views, rows."""
    latest = store.latest_snapshot(conn)
    return {
        "snapshots": conn.execute("SELECT * FROM snapshots ORDER BY id").fetchall(),
        "snapshot_tables": conn.execute("SELECT * FROM snapshot_tables ORDER BY ALL").fetchall(),
        "mappings": conn.execute("SELECT * FROM mappings ORDER BY name").fetchall(),
        "duplicate_rows": conn.execute("SELECT * FROM duplicate_rows ORDER BY ALL").fetchall(),
        "schemas": sorted(r[0] for r in conn.execute("SELECT schema_name FROM duckdb_schemas()").fetchall()),
        "relations": sorted(conn.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() UNION ALL "
            "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal").fetchall()),
        "rows": row_counts(conn, latest.schema),
    }
