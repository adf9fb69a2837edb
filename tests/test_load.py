"""The load benchmark still runs end to end (a few sessions for a few seconds: errors and snapshot mixes fail it,
its timings are never judged), and its mix check finds a page that mixes two snapshots."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from load import Load, mixes  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def test_the_load_benchmark_runs_with_viewers_and_an_uploading_editor(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "benchmarks/load.py", "--viewers", "3", "--editors", "1", "--seconds",
                           "15", "--upload-pause", "1", "--workdir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "sessions held          4 of 4" in done.stdout and "errors                 0" in done.stdout
    assert "snapshot mix           none" in done.stdout
    committed = done.stdout.split("of committed ")[1].split(";")[0]
    assert committed.startswith("1, 2"), f"the editor's import made a snapshot: {done.stdout}"


def page(snapshot: str, tiles: list[tuple[str, str]], name: str = "sales") -> Load:
    return Load(viewer=0, page=name, period="2026-10", started=0.0, seconds=1.0, snapshot=snapshot, tiles=tiles)


def test_the_mix_check_finds_pages_that_disagree_or_name_no_committed_snapshot() -> None:
    old, new = [("Leads", "100")], [("Leads", "90")]
    assert mixes([page("1", old), page("1", old), page("2", new)], {"1", "2"}) == []
    found = mixes([page("1", old), page("1", [("Leads", "100"), ("Win rate", "31%")]), page("2", new)], {"1", "2"})
    assert found == ["2 different sets of tiles for snapshot 1, page /sales, period 2026-10"]
    assert mixes([page("3", new)], {"1", "2"}) == ["viewer 0 saw snapshot '3', which was never committed"]
