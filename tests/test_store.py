"""The DuckDB file: the sample data as snapshot 1, and uploads that are all or nothing."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb
import pytest

from kpicore import store
from kpicore.errors import KpiError
from kpicore.model import TABLES


def csv_rows(path: Path) -> int:
    """Data rows of a CSV file, counted by the csv module (header left out)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


def row_counts(conn: duckdb.DuckDBPyConnection, schema: str) -> dict[str, int]:
    return {name: conn.execute(f'SELECT COUNT(*) FROM "{schema}"."{name}"').fetchone()[0] for name in TABLES}


def state(conn: duckdb.DuckDBPyConnection) -> tuple[list[tuple], list[str], list[tuple]]:
    """Everything an upload could change: snapshots, schemas, and every table and view."""
    snapshots = conn.execute("SELECT * FROM snapshots ORDER BY id").fetchall()
    schemas = sorted(row[0] for row in conn.execute("SELECT schema_name FROM duckdb_schemas()").fetchall())
    relations = sorted(conn.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() UNION ALL "
        "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal").fetchall())
    return snapshots, schemas, relations


@pytest.fixture
def db(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    conn = store.connect(tmp_path / "kpi.duckdb")
    yield conn
    conn.close()


def test_connect_creates_the_file_with_the_sample_data_as_snapshot_1(tmp_path):
    path = tmp_path / "sub" / "kpi.duckdb"
    conn = store.connect(path)
    try:
        assert path.exists()
        snapshot = store.latest_snapshot(conn)
        assert snapshot.id == 1 and snapshot.schema == "snapshot_1"
        expected = {name: csv_rows(store.SAMPLE_DIR / f"{name}.csv") for name in TABLES}
        assert all(expected.values())  # every sample table has rows
        assert row_counts(conn, "snapshot_1") == expected
    finally:
        conn.close()


def test_connect_again_does_not_make_a_second_snapshot(tmp_path):
    path = tmp_path / "kpi.duckdb"
    store.connect(path).close()
    conn = store.connect(path)
    try:
        assert conn.execute("SELECT id FROM snapshots").fetchall() == [(1,)]
    finally:
        conn.close()


def test_sample_columns_are_typed(db):
    types = dict(db.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'snapshot_1' AND table_name = 'leads'"
    ).fetchall())
    assert types["created_at"] == "TIMESTAMP" and types["lead_id"] == "VARCHAR"


def test_a_new_snapshot_keeps_the_previous_one_readable(db, tmp_path):
    leads = tmp_path / "leads.csv"
    leads.write_text("lead_id,created_at\nL1,2026-01-05 10:00:00\nL2,2026-01-06 10:00:00\n", encoding="utf-8")
    before = row_counts(db, "snapshot_1")
    snapshot = store.create_snapshot(db, {"leads": leads}, "two leads")
    assert snapshot.id == 2 and store.latest_snapshot(db).note == "two leads"
    assert row_counts(db, "snapshot_2") == {name: 2 if name == "leads" else 0 for name in TABLES}
    assert row_counts(db, "snapshot_1") == before


@pytest.mark.parametrize(("table", "header", "bad_row"), [
    ("leads", "lead_id,created_at", "L1,not a timestamp"),
    ("revenue", "customer_id,month,amount", "C1,2026-01-01,twelve"),
    ("team_metrics", "date,team,metric,value", "2026-01-01,sales,calls,many"),  # the last table to be loaded
])
def test_a_failing_upload_changes_nothing(db, tmp_path, table, header, bad_row):
    exports = tmp_path / "exports"
    shutil.copytree(store.SAMPLE_DIR, exports)
    (exports / f"{table}.csv").write_text(f"{header}\n{bad_row}\n", encoding="utf-8")
    files = {name: exports / f"{name}.csv" for name in TABLES}
    before, counts = state(db), row_counts(db, "snapshot_1")
    with pytest.raises((duckdb.Error, KpiError)):
        store.create_snapshot(db, files, "upload with a bad value")
    assert state(db) == before  # no new snapshot, schema, table or view
    assert row_counts(db, "snapshot_1") == counts
    assert store.latest_snapshot(db).id == 1
    # and the database still takes the next good upload as snapshot 2
    assert store.create_snapshot(db, {"leads": store.SAMPLE_DIR / "leads.csv"}, "good").id == 2
