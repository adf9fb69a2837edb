"""Faults: a damaged database file, a full disk, a backup put back. Each gives a message that says what to run,
and nothing that was there is changed."""
from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from kpicore import store
from kpicore.cli import main

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "import sys; from kpicore.cli import main; sys.exit(main(sys.argv[1:]))"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("good") / "kpi.duckdb"
    store.connect(path).close()
    return path


@pytest.mark.parametrize("damage", ["truncated", "zeroed", "foreign", "tiny"])
def test_a_damaged_database_says_what_to_run_and_stays_as_it_was(damage: str, good: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = good.read_bytes()
    damaged = {"truncated": data[:len(data) // 3], "zeroed": bytes(len(data)),
               "foreign": b"SQLite format 3\x00" + bytes(4096), "tiny": b"abc"}[damage]
    db = tmp_path / "kpi.duckdb"
    db.write_bytes(damaged)
    before = _digest(db)
    assert main(["--db", str(db), "kpis", "--period", "2026-10"]) == 1
    said = capsys.readouterr().err
    assert f"{db} cannot be read as a KPI database" in said
    assert f"kpicore --db {db} restore-backup BACKUP_FILE" in said and f"mv {db} {db}.broken" in said
    assert "Traceback" not in said
    assert _digest(db) == before


def test_the_app_on_a_damaged_database_says_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "kpi.duckdb"
    db.write_bytes(bytes(300_000))
    monkeypatch.setenv("KPI_DB", str(db))
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60).run()
    assert not at.exception
    assert len(at.error) == 1 and "The database cannot be used" in at.error[0].value
    assert "restore\\-backup" in at.error[0].value or "restore-backup" in at.error[0].value


def test_a_backup_puts_every_snapshot_back(good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "kpi.duckdb"
    db.write_bytes(good.read_bytes())
    copy = tmp_path / "backups" / "kpi-monday.duckdb"
    assert main(["--db", str(db), "backup", str(copy)]) == 0
    assert "with 1 snapshot(s)" in capsys.readouterr().out
    assert main(["--db", str(db), "drop", "leads", "tickets"]) == 0
    with store.connect(db) as conn:
        assert store.latest_snapshot(conn).id == 2
    assert main(["--db", str(db), "restore-backup", str(copy)]) == 0
    said = capsys.readouterr().out
    with store.connect(db) as conn:
        assert [s.id for s, _ in store.snapshots(conn)] == [1]
        assert conn.execute("SELECT COUNT(*) FROM snapshot_1.leads").fetchone()[0] > 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("kpi.duckdb.before-restore-")]
    assert len(aside) == 1 and f"kept as {aside[0]}" in said
    with store.connect(aside[0]) as conn:
        assert store.latest_snapshot(conn).id == 2  # the replaced file, as it was


def test_a_broken_backup_is_refused_and_the_database_stays(good: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "kpi.duckdb"
    db.write_bytes(good.read_bytes())
    before = _digest(db)
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(bytes(10_000))
    assert main(["--db", str(db), "restore-backup", str(junk)]) == 1
    assert f"{junk} cannot be read as a KPI database" in capsys.readouterr().err
    assert _digest(db) == before and sorted(p.name for p in tmp_path.iterdir()) == ["junk.duckdb", "kpi.duckdb"]


def test_a_full_disk_during_an_import_changes_nothing(good: Path, tmp_path: Path) -> None:
    """The disk runs out while the import writes (a limit on the file size this process may write, which fails
    writes the way a full disk does): a message saying so, the previous snapshot untouched."""
    db = tmp_path / "kpi.duckdb"
    db.write_bytes(good.read_bytes())
    big = tmp_path / "leads.csv"
    duckdb.execute("COPY (SELECT 'L' || i AS lead_id, TIMESTAMP '2024-01-01' + to_seconds(i) AS created_at "
                   f"FROM range(300000) t(i)) TO '{big}' (HEADER)")
    with store.connect(db) as conn:
        before = (conn.execute("SELECT * FROM snapshots").fetchall(),
                  conn.execute("SELECT COUNT(*) FROM snapshot_1.leads").fetchone())
    allowed = db.stat().st_size + 1_000_000

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (allowed, allowed))

    done = subprocess.run([*CLI, "--db", str(db), "load", str(big), "--no-precompute"], preexec_fn=small_disk,
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 1, done.stderr
    assert "The disk is full" in done.stderr and "Nothing was changed" in done.stderr
    assert "Traceback" not in done.stderr
    with store.connect(db) as conn:
        assert (conn.execute("SELECT * FROM snapshots").fetchall(),
                conn.execute("SELECT COUNT(*) FROM snapshot_1.leads").fetchone()) == before


# --- a real small, full or read-only disk: a tmpfs in a mount namespace of the test's own ----------------------

ON_DISK = """
import contextlib, io, json, shutil, subprocess, sys
from pathlib import Path
import duckdb
from kpicore.cli import main

good, disk, export, how = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
db = disk / "kpi.duckdb"
shutil.copy(good, db)
if how == "read-only":
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)

def state():
    conn = duckdb.connect(str(db), read_only=True)
    try:
        return [conn.execute("SELECT id, note FROM snapshots ORDER BY id").fetchall(),
                conn.execute("SELECT COUNT(*), SUM(hash(t)) FROM snapshot_1.leads t").fetchone()]
    finally:
        conn.close()

before = state()
told = io.StringIO()
with contextlib.redirect_stderr(told):
    code = main(["--db", str(db), "load", export, "--no-precompute"])
print(json.dumps({"code": code, "told": told.getvalue(), "same": state() == before,
                  "left": sorted(p.name for p in disk.iterdir())}, default=str))
"""


def on_small_disk(disk: Path, size_kb: int, script: str, *args: str,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -c script args` with `disk` a fresh tmpfs of `size_kb` KB, mounted in a mount namespace of its own
    (unshare; root in a user namespace where the test is not root), gone when it ends."""
    disk.mkdir(exist_ok=True)
    return subprocess.run(
        ["unshare", "--map-root-user", "--mount", "sh", "-c",
         'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"', "sh", f"{size_kb}k", str(disk),
         sys.executable, "-c", script, *args],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=300)


def _leads(path: Path, rows: int) -> Path:
    duckdb.execute("COPY (SELECT 'L' || i AS lead_id, TIMESTAMP '2024-01-01' + to_seconds(i) AS created_at, "
                   f"'channel ' || (i % 9) AS channel FROM range({rows}) t(i)) TO '{path}' (HEADER)")
    return path


def test_a_database_on_a_disk_that_fills_up_during_an_import_keeps_its_data(good: Path, tmp_path: Path) -> None:

    export = _leads(tmp_path / "leads.csv", 400_000)
    room = good.stat().st_size // 1024 + 1024  # the database and one more megabyte
    done = on_small_disk(tmp_path / "disk", room, ON_DISK, str(good), str(tmp_path / "disk"), str(export), "full")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["code"] == 1 and "The disk is full" in seen["told"] and "Nothing was changed" in seen["told"], seen
    assert "Traceback" not in seen["told"]
    assert seen["same"], "the snapshots and the sample's leads are as they were"


def test_a_database_in_a_read_only_folder_is_refused_with_what_to_do(good: Path, tmp_path: Path) -> None:

    export = _leads(tmp_path / "leads.csv", 10)
    room = good.stat().st_size // 1024 + 1024
    done = on_small_disk(tmp_path / "disk", room, ON_DISK, str(good), str(tmp_path / "disk"), str(export),
                         "read-only")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["code"] == 1 and "cannot be opened for writing" in seen["told"], seen
    assert "Give this user write access to it and its folder, or set KPI_DB" in seen["told"]
    assert "Traceback" not in seen["told"] and seen["same"] and seen["left"] == ["kpi.duckdb"], seen


def test_a_full_temporary_folder_during_an_excel_import_says_so(good: Path, tmp_path: Path) -> None:
    import openpyxl
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["lead_id", "created_at", "channel"])
    for i in range(40_000):  # its CSV copy is about 1.5 MB
        sheet.append([f"L{i}", "2026-01-05 10:00:00", f"channel {i % 9}"])
    export = tmp_path / "leads.xlsx"
    book.save(export)
    db = tmp_path / "kpi.duckdb"
    db.write_bytes(good.read_bytes())
    before = _digest(db)
    script = ("import sys; from kpicore.cli import main; "
              "sys.exit(main(['--db', sys.argv[1], 'load', sys.argv[2], '--no-precompute']))")
    done = on_small_disk(tmp_path / "temp", 512, script, str(db), str(export), env={"TMPDIR": str(tmp_path / "temp")})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "leads.xlsx: its working copy could not be written, because the temporary folder (TMPDIR) is full" \
        in done.stderr and "Nothing was imported" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert _digest(db) == before
