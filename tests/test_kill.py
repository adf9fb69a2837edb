"""A killed import leaves the previous snapshot intact and readable, and the next import works."""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from kpicore import checkins, kept, store, targets
from kpicore.files import clean_workdirs, read_file
from kpicore.ingest import Upload, import_files
from kpicore.mapping import propose
from kpicore.model import TABLES

ROOT = Path(__file__).resolve().parent.parent
ROWS = 1_000_000
GROWTH = 2 * 1024 * 1024  # the import has written this much of its new table when it is killed


def snapshot_state(path: Path) -> tuple[list[tuple], list[tuple], dict[str, int]]:
    """Snapshots, their tables' recorded row counts, and the rows the latest snapshot really shows."""
    conn = duckdb.connect(str(path))
    try:
        latest = store.latest_snapshot(conn)
        counted = {name: conn.execute(f'SELECT COUNT(*) FROM "{latest.schema}"."{name}"').fetchone()[0]
                   for name in TABLES}
        return (conn.execute("SELECT * FROM snapshots ORDER BY id").fetchall(),
                conn.execute("SELECT * FROM snapshot_tables ORDER BY ALL").fetchall(), counted)
    finally:
        conn.close()


def test_killing_an_import_midway_leaves_the_previous_snapshot_intact(tmp_path, monkeypatch):
    base = tmp_path / "base"
    base.mkdir()
    (base / "leads.csv").write_text("lead_id,created_at,channel\nL1,2026-01-05 10:00:00,event\n"
                                    "L2,2026-01-06 10:00:00,web\n", encoding="utf-8")
    (base / "customers.csv").write_text("customer_id,acquired_at\nC1,2026-01-05 10:00:00\n", encoding="utf-8")
    db = tmp_path / "kpi.duckdb"
    store.connect(db, sample_dir=base).close()
    before = snapshot_state(db)
    assert before[2]["leads"] == 2 and [s[0] for s in before[0]] == [1]

    big = tmp_path / "leads_big.csv"
    duckdb.execute(
        "COPY (SELECT 'L' || i AS lead_id, TIMESTAMP '2024-01-01' + to_seconds(i) AS created_at, "
        "'channel ' || (i % 7) AS channel, 'Campaign, \"' || (i % 13) || '\"' AS campaign FROM range(?) t(i)) "
        f"TO '{big}' (HEADER)", [ROWS])
    size = db.stat().st_size
    temp = tmp_path / "tmp"  # the import's temporary directory, to see what a killed one leaves
    temp.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from kpicore.cli import main; sys.exit(main(sys.argv[1:]))",
         "--db", str(db), "load", str(big)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "TMPDIR": str(temp)})
    try:
        # Mid-import: DuckDB writes the new table's blocks into the file long before the commit.
        deadline = time.monotonic() + 120
        while process.poll() is None and db.stat().st_size < size + GROWTH and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process.poll() is None, f"the import ended (exit {process.returncode}) before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL

    assert snapshot_state(db) == before  # same snapshots, same tables, same rows, all readable
    left = [d.name for d in temp.iterdir()]
    assert len(left) == 1 and left[0].startswith("kpi-load-"), left  # the killed command's working copies
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    from kpicore.cli import main
    assert main(["--db", str(db), "snapshots"]) == 0
    assert list(temp.iterdir()) == [], "the next command removes what the killed one left"
    conn = store.connect(db)  # drops whatever the killed import staged
    try:
        assert conn.execute("SELECT lead_id, channel FROM snapshot_1.leads ORDER BY 1").fetchall() == [
            ("L1", "event"), ("L2", "web")]
        tables = {name for (name,) in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        used = {name for (name,) in conn.execute("SELECT physical FROM snapshot_tables").fetchall()}
        assert tables == used | {"snapshots", "snapshot_tables", "mappings", "duplicate_rows", kept.TABLE,
                                 checkins.TABLE, targets.TABLE}
        small = tmp_path / "leads.csv"
        small.write_text("lead_id,created_at\nL3,2026-02-01 08:00:00\n", encoding="utf-8")
        raw = read_file(small, workdir=tmp_path)
        result = import_files(conn, [Upload(raw, propose(raw))], "after the kill")
        assert result.snapshot.id == 2
        assert conn.execute("SELECT lead_id FROM snapshot_2.leads").fetchall() == [("L3",)]
        assert conn.execute("SELECT COUNT(*) FROM snapshot_1.leads").fetchone() == (2,)
        conn.execute("CHECKPOINT")
    finally:
        conn.close()


# --- killed at twenty random moments ---------------------------------------------------------------------------

KILLS = 20
LOOP_ROWS = 50_000


def checksums(path: Path) -> tuple[list[tuple], dict[str, tuple[int, int]]]:
    """The snapshots and, for every table of the latest one, its row count and the sum of its rows' hashes."""
    conn = duckdb.connect(str(path), read_only=True)
    try:
        latest = store.latest_snapshot(conn)
        sums = {name: conn.execute(f'SELECT COUNT(*), SUM(hash(t)) FROM "{latest.schema}"."{name}" AS t').fetchone()
                for name in TABLES}
        return conn.execute("SELECT id, note, author FROM snapshots ORDER BY id").fetchall(), sums
    finally:
        conn.close()


def load(db: Path, export: Path, temp: Path) -> subprocess.Popen:
    """`kpicore load` of the export, the import alone: without --no-precompute the dashboard's view is computed
    after the commit, which made most of a whole load's time, so most random kills came after the commit."""
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from kpicore.cli import main; sys.exit(main(sys.argv[1:]))",
         "--db", str(db), "load", "--no-precompute", str(export)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "TMPDIR": str(temp)})


def test_an_import_killed_at_twenty_random_moments_leaves_the_previous_snapshot_identical(tmp_path):
    db = tmp_path / "kpi.duckdb"
    store.connect(db).close()  # the sample data as snapshot 1
    export = tmp_path / "leads.csv"
    duckdb.execute(
        "COPY (SELECT 'N' || i AS lead_id, TIMESTAMP '2025-01-01' + to_seconds(i * 60) AS created_at, "
        "'channel ' || (i % 7) AS channel FROM range(?) t(i)) "
        f"TO '{export}' (HEADER)", [LOOP_ROWS])
    temp = tmp_path / "tmp"
    temp.mkdir()
    # how long a whole import takes here, on a copy, and what it leaves
    reference = tmp_path / "reference.duckdb"
    shutil.copy(db, reference)
    started = time.monotonic()
    assert load(reference, export, temp).wait(timeout=300) == 0
    whole = time.monotonic() - started
    imported = checksums(reference)[1]["leads"]
    assert imported[0] == LOOP_ROWS

    seed = random.randrange(1 << 30)
    moments = random.Random(seed).sample(range(1, 1000), KILLS)  # thousandths of a whole import's time
    committed = 0
    for moment in moments:
        before = checksums(db)
        process = load(db, export, temp)
        time.sleep(whole * moment / 1000)
        process.kill()
        code = process.wait()
        after = checksums(db)
        where = f"killed after {whole * moment / 1000:.2f} s of {whole:.2f} s (seed {seed}, exit {code})"
        assert code in (-signal.SIGKILL, 0), where
        if after != before:  # it committed before the kill came: the new snapshot is the whole import
            committed += 1
            assert after[0][:-1] == before[0] and after[1]["leads"] == imported, where
            conn = duckdb.connect(str(db), read_only=True)
            try:
                old = conn.execute(f"SELECT COUNT(*), SUM(hash(t)) FROM snapshot_{before[0][-1][0]}.leads t")
                assert old.fetchone() == before[1]["leads"], f"{where}: the previous snapshot changed"
            finally:
                conn.close()
        clean_workdirs(temp)  # what the next start of the app or a command does
        assert list(temp.iterdir()) == [], f"{where}: temporary files left"
        store.connect(db).close()  # reopens: drops whatever the killed import staged
        assert checksums(db) == after, where
    assert KILLS - committed >= KILLS // 4, f"too few kills came before the commit (seed {seed})"
