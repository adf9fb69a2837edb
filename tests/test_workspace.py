"""One's own data on its own: the sample as a demo, empty tables on purpose, the file shared with other programs."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from store_support import row_counts, state

from kpicore import store
from kpicore.errors import KpiError
from kpicore.files import read_file
from kpicore.ingest import Upload, import_files
from kpicore.mapping import propose
from kpicore.model import TABLES

DEALS = "opportunity_id,created_at,stage,closed_at,amount\nO1,2017-01-05,won,2017-02-01,100\n"


def deals_upload(tmp_path: Path) -> Upload:
    path = tmp_path / "deals.csv"
    path.write_text(DEALS, encoding="utf-8")
    raw = read_file(path, workdir=tmp_path)
    return Upload(raw, propose(raw, "opportunities"))


@pytest.fixture
def sample(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """A database with the bundled sample as snapshot 1."""
    conn = store.connect(tmp_path / "kpi.duckdb")
    yield conn
    conn.close()


# --- the sample is a demo ----------------------------------------------------------------------------------


def test_the_sample_is_marked_as_such(sample):
    snap = store.latest_snapshot(sample)
    assert store.sample_tables(sample, snap) == list(TABLES)
    assert store.sample_snapshot(sample) == 1


def test_an_import_starts_from_empty_tables_unless_the_sample_is_kept(sample, tmp_path):
    own = import_files(sample, [deals_upload(tmp_path)], "deals", keep_sample=False)
    assert own.emptied == tuple(t for t in TABLES if t != "opportunities")
    counts = row_counts(sample, own.snapshot.schema)
    assert counts == {name: 1 if name == "opportunities" else 0 for name in TABLES}
    assert store.sample_tables(sample, own.snapshot) == []
    assert row_counts(sample, "snapshot_1")["leads"] > 1000, "the sample stays in its snapshot"
    assert store.sample_snapshot(sample) == 1

    restored = store.restore(sample, 1)  # the sample comes back as it was, marked as the sample
    assert row_counts(sample, restored.schema) == row_counts(sample, "snapshot_1")
    assert store.sample_tables(sample, restored) == list(TABLES)

    kept = import_files(sample, [deals_upload(tmp_path)], "deals beside the sample", keep_sample=True)
    assert kept.emptied == ()
    counts = row_counts(sample, kept.snapshot.schema)
    assert counts["opportunities"] == 1 and counts["leads"] == row_counts(sample, "snapshot_1")["leads"]
    assert "opportunities" not in store.sample_tables(sample, kept.snapshot)


def test_own_tables_are_never_emptied_by_an_import_of_another_table(sample, tmp_path):
    import_files(sample, [deals_upload(tmp_path)], "deals", keep_sample=False)
    leads = tmp_path / "leads.csv"
    leads.write_text("lead_id,created_at\nL1,2017-01-02 10:00:00\n", encoding="utf-8")
    raw = read_file(leads, workdir=tmp_path)
    later = import_files(sample, [Upload(raw, propose(raw, "leads"))], "leads", keep_sample=False)
    assert later.emptied == ()
    assert row_counts(sample, later.snapshot.schema)["opportunities"] == 1


# --- empty tables on purpose --------------------------------------------------------------------------------


def test_start_with_empty_tables_is_a_new_snapshot(sample):
    empty = store.empty_snapshot(sample)
    assert empty.id == 2 and row_counts(sample, empty.schema) == dict.fromkeys(TABLES, 0)
    assert all(t.changed for t in store.tables(sample, empty).values())
    assert row_counts(sample, "snapshot_1")["leads"] > 1000


def test_a_table_is_emptied_on_purpose_as_a_new_snapshot(sample):
    before = row_counts(sample, "snapshot_1")
    emptied = store.empty_tables(sample, ["tickets", "surveys"])
    counts = row_counts(sample, emptied.schema)
    assert counts == {**before, "tickets": 0, "surveys": 0}
    tables = store.tables(sample, emptied)
    assert tables["tickets"].changed and tables["tickets"].source == "emptied"
    assert not tables["leads"].changed and tables["leads"].stored.sample
    assert emptied.note == "Emptied tickets, surveys"


def test_emptying_an_unknown_table_changes_nothing(sample):
    before = state(sample)
    with pytest.raises(KpiError, match="There is no table invoices"):
        store.empty_tables(sample, ["invoices"])
    assert state(sample) == before


def test_a_fresh_database_without_the_sample_has_empty_tables(tmp_path):
    conn = store.connect(tmp_path / "empty.duckdb", sample=False)
    snap = store.latest_snapshot(conn)
    assert (snap.id, snap.note) == (1, "Empty tables") and row_counts(conn, snap.schema) == dict.fromkeys(TABLES, 0)
    conn.close()
    missing = tmp_path / "nowhere"  # an install without the sample files starts empty, not broken
    conn = store.connect(tmp_path / "other.duckdb", sample_dir=missing)
    assert row_counts(conn, store.latest_snapshot(conn).schema) == dict.fromkeys(TABLES, 0)
    conn.close()


def test_the_installed_package_finds_the_sample_next_to_it_or_in_the_source_tree():
    assert (store.SAMPLE_DIR / "leads.csv").is_file()


# --- a database written by an earlier version -----------------------------------------------------------------


def test_a_database_from_before_the_table_facts_reads_as_before(tmp_path):
    path = tmp_path / "old.duckdb"
    conn = store.connect(path)
    conn.execute("ALTER TABLE snapshot_tables DROP COLUMN sample")
    conn.execute("ALTER TABLE snapshot_tables DROP COLUMN columns")
    conn.execute("ALTER TABLE snapshot_tables DROP COLUMN currency")
    conn.close()
    conn = store.connect(path)
    snap = store.latest_snapshot(conn)
    assert store.sample_tables(conn, snap) == list(TABLES)  # written by the snapshot "Sample data from sample_data/"
    assert all(t.stored.columns is None for t in store.tables(conn, snap).values())  # every column counts
    conn.close()


# --- the app and the command line side by side ----------------------------------------------------------------


HOLDER = textwrap.dedent("""
    import sys, time, duckdb
    conn = duckdb.connect(sys.argv[1])
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
""")


def hold(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the database file open (as the app does while it draws a page)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_a_database_another_program_holds_is_refused_with_who_holds_it(tmp_path):
    path = tmp_path / "kpi.duckdb"
    store.connect(path, sample=False).close()
    holder = hold(path, 30)
    try:
        told = []
        started = time.monotonic()
        with pytest.raises(store.DatabaseBusy) as raised:
            store.connect(path, wait=0.6, waiting=told.append)
        assert time.monotonic() - started >= 0.6
        assert f"PID {holder.pid}" in str(raised.value) and str(path) in str(raised.value)
        assert len(told) == 1 and "waiting up to 0.6 s" in told[0]
    finally:
        holder.kill()
        holder.wait()


def test_waiting_gets_the_database_once_the_other_program_lets_go(tmp_path):
    path = tmp_path / "kpi.duckdb"
    store.connect(path, sample=False).close()
    holder = hold(path, 1.0)
    try:
        conn = store.connect(path, wait=20)
        assert store.latest_snapshot(conn).id == 1
        conn.close()
    finally:
        holder.wait()


def test_the_apps_database_is_closed_between_uses(tmp_path):
    path = tmp_path / "kpi.duckdb"
    store.connect(path, sample=False).close()
    database = store.Database(path, wait=0)
    with database.cursor() as outer, database.cursor() as inner:  # two sessions at once share one connection
        assert outer.execute("SELECT COUNT(*) FROM snapshots").fetchone() == inner.execute(
            "SELECT COUNT(*) FROM snapshots").fetchone() == (1,)
        probe = subprocess.run([sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r})"],
                               capture_output=True, text=True)
        assert probe.returncode != 0 and "lock" in probe.stderr  # held while in use
    probe = subprocess.run([sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r})"],
                           capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr  # and let go when nobody uses it


def test_the_apps_database_lingers_for_the_next_click_then_lets_go(tmp_path):
    path = tmp_path / "kpi.duckdb"
    store.connect(path, sample=False).close()
    database = store.Database(path, wait=0, linger=0.5)
    with database.cursor() as cursor:
        cursor.execute("SELECT 1")
    opened = database._conn
    with database.cursor():  # the next run within the linger reuses the open file
        assert database._conn is opened
    probe = [sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r})"]
    assert subprocess.run(probe, capture_output=True, text=True).returncode != 0  # still held just after
    time.sleep(1.0)
    assert database._conn is None
    found = subprocess.run(probe, capture_output=True, text=True)
    assert found.returncode == 0, found.stderr  # let go after the linger
