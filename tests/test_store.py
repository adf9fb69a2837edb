"""The DuckDB file: the sample data as snapshot 1, and uploads that are all or nothing."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb
import pytest
from store_support import row_counts, state

from kpicore import store
from kpicore.errors import BadFile
from kpicore.files import read_file
from kpicore.ingest import Mode, Upload, import_files
from kpicore.mapping import propose
from kpicore.model import TABLES


def csv_rows(path: Path) -> int:
    """Data rows of a CSV file, counted by the csv module (header left out)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


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


def upload(conn: duckdb.DuckDBPyConnection, files: dict[str, Path], note: str, mode: Mode = Mode.REPLACE):
    """Import canonical CSV files (one per table) through the importer, as the app and CLI do."""
    uploads = [Upload(raw, propose(raw, table), mode) for table, path in files.items() for raw in [read_file(path)]]
    return import_files(conn, uploads, note).snapshot


def test_a_new_snapshot_replaces_one_table_and_keeps_the_previous_snapshot_readable(db, tmp_path):
    leads = tmp_path / "leads.csv"
    leads.write_text("lead_id,created_at\nL1,2026-01-05 10:00:00\nL2,2026-01-06 10:00:00\n", encoding="utf-8")
    before = row_counts(db, "snapshot_1")
    snapshot = upload(db, {"leads": leads}, "two leads")
    assert snapshot.id == 2 and store.latest_snapshot(db).note == "two leads"
    # the replaced table has the two new rows; every other table is carried over unchanged
    assert row_counts(db, "snapshot_2") == {name: 2 if name == "leads" else before[name] for name in TABLES}
    assert row_counts(db, "snapshot_1") == before


def test_append_adds_new_ids_and_replaces_known_ones(db, tmp_path):
    leads = tmp_path / "leads.csv"
    first_id = db.execute("SELECT MIN(lead_id) FROM snapshot_1.leads").fetchone()[0]
    leads.write_text(f"lead_id,created_at,channel\n{first_id},2026-01-05 10:00:00,fax\nNEW1,2026-01-06 10:00:00,fax\n",
                     encoding="utf-8")
    before = row_counts(db, "snapshot_1")["leads"]
    upload(db, {"leads": leads}, "append", Mode.APPEND)
    assert row_counts(db, "snapshot_2")["leads"] == before + 1  # one new id, one replaced
    assert db.execute("SELECT channel FROM snapshot_2.leads WHERE lead_id = ?", [first_id]).fetchone() == ("fax",)


def test_restore_makes_an_old_snapshot_current_as_a_new_one(db, tmp_path):
    leads = tmp_path / "leads.csv"
    leads.write_text("lead_id,created_at\nL1,2026-01-05 10:00:00\n", encoding="utf-8")
    upload(db, {"leads": leads}, "one lead")
    restored = store.restore(db, 1)
    assert restored.id == 3 and row_counts(db, "snapshot_3") == row_counts(db, "snapshot_1")
    assert row_counts(db, "snapshot_2")["leads"] == 1  # history is kept


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
    with pytest.raises(BadFile) as raised:
        upload(db, files, "upload with a bad value")
    assert f"{table}.csv" in str(raised.value) and "row 2" in str(raised.value)
    assert state(db) == before  # no new snapshot, schema, table or view
    assert row_counts(db, "snapshot_1") == counts
    assert store.latest_snapshot(db).id == 1
    # and the database still takes the next good upload as snapshot 2
    assert upload(db, {"leads": store.SAMPLE_DIR / "leads.csv"}, "good").id == 2


def test_two_imports_committing_at_once_both_land_one_after_the_other(tmp_path):
    # two editors' imports in one app process (two cursors): both commit, as consecutive snapshots, and the later
    # one keeps the earlier one's table (it once failed with "write-write conflict on create snapshot_2")
    import threading

    from kpicore.files import read_file
    from kpicore.ingest import Upload, import_files
    from kpicore.mapping import propose

    path = tmp_path / "kpi.duckdb"
    conn = store.connect(path)
    exports = {"leads": "lead_id,created_at\n" + "".join(f"L{i},2026-01-05 10:00:00\n" for i in range(30_000)),
               "tickets": "ticket_id,created_at\n" + "".join(f"T{i},2026-01-05 10:00:00\n" for i in range(30_000))}
    uploads = []
    for name, text in exports.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.csv").write_text(text, encoding="utf-8")
        raw = read_file(tmp_path / name / f"{name}.csv", workdir=tmp_path)
        uploads.append(Upload(raw, propose(raw)))
    failures, start = [], threading.Barrier(2)

    def run(upload):
        cursor = conn.cursor()
        start.wait()
        try:
            import_files(cursor, [upload], f"Upload: {upload.raw.name}")
        except Exception as error:  # noqa: BLE001 - collected, the test fails on any
            failures.append(repr(error))
        finally:
            cursor.close()

    threads = [threading.Thread(target=run, args=(u,)) for u in uploads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    latest = store.latest_snapshot(conn)
    assert latest.id == 3
    assert conn.execute(f"SELECT COUNT(*) FROM {latest.schema}.leads").fetchone() == (30_000,)
    assert conn.execute(f"SELECT COUNT(*) FROM {latest.schema}.tickets").fetchone() == (30_000,)
    conn.close()
