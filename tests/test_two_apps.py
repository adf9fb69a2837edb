"""Two app processes on one DuckDB file, and the command line beside them: DuckDB lets one process at a time open a
file for writing, so each app opens it only while a page is drawn. Both serve pages, a command-line import gets
its turn, and then both show the new snapshot; nobody sees an error. Driven through Streamlit's browserless agent
API (the real server and script runs, without a browser)."""
from __future__ import annotations

import subprocess
import sys
import threading
from contextlib import ExitStack
from pathlib import Path

import httpx
from browser_support import running_app

from kpicore import store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from load import read_page  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
AGENT = ("--server.enableAgentApi", "true")


SESSIONS: dict[str, str] = {}  # one agent session per server (each would otherwise be a new one)


def page(base: str, path: str, params: dict[str, list[str]]) -> dict:
    """A fresh link to a page, read once its run is over (the first call starts the server's session)."""
    if base not in SESSIONS:
        SESSIONS[base] = httpx.post(f"{base}/_stcore/agent/interact", json={}, timeout=120).json()["session_id"]
    answer = httpx.post(f"{base}/_stcore/agent/interact", timeout=120, json={
        "session_id": SESSIONS[base], "page": path, "query_params": params}).json()
    assert answer.get("status") == "ready", answer
    return answer


def shown(answer: dict) -> tuple[str | None, list[tuple[str, str]], str | None]:
    """The snapshot a page names, its tiles (label, value) and what went wrong on it, if anything."""
    return read_page(answer)


def test_two_apps_and_the_command_line_share_one_database(sample_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "kpi.duckdb"
    db.write_bytes(sample_db.read_bytes())
    export = tmp_path / "tickets.csv"
    lines = (ROOT / "sample_data" / "tickets.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    export.write_text(lines[0] + "".join(lines[1::2]), encoding="utf-8")  # every other ticket: other numbers
    with ExitStack() as stack:
        one, _ = stack.enter_context(running_app("dashboard.py", db, tmp_path / "one.log", options=AGENT))
        two, _ = stack.enter_context(running_app("dashboard.py", db, tmp_path / "two.log", options=AGENT))
        october = {"period": ["2026-10"]}
        first = [shown(page(base, "service", october)) for base in (one, two)]
        assert first[0] == first[1] and first[0][0] == "1" and first[0][1] and first[0][2] is None, first

        # both apps keep drawing pages while the command line imports
        answers: list[tuple] = []
        stop = threading.Event()

        def keep_reading(base: str) -> None:
            while not stop.is_set():
                answers.append(shown(page(base, "service", october)))

        readers = [threading.Thread(target=keep_reading, args=(base,)) for base in (one, two)]
        for reader in readers:
            reader.start()
        try:
            done = subprocess.run([sys.executable, "-c", "import sys; from kpicore.cli import main; "
                                   "sys.exit(main(sys.argv[1:]))", "--db", str(db), "load", str(export)],
                                  cwd=ROOT, capture_output=True, text=True, timeout=300)
        finally:
            stop.set()
            for reader in readers:
                reader.join()
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        assert answers and all(problem is None for _, _, problem in answers), [a for a in answers if a[2]][:3]
        assert {snapshot for snapshot, _, _ in answers} <= {"1", "2"}

        after = [shown(page(base, "service", october)) for base in (one, two)]
        assert after[0] == after[1] and after[0][0] == "2" and after[0][2] is None, after
        assert after[0][1] != first[0][1], "half the tickets: the Service tiles changed"
    with store.connect(db) as conn:
        assert [s.id for s, _ in store.snapshots(conn)] == [2, 1]
