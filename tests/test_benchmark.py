"""The import benchmark still runs end to end (on a small file; it prints timings, this checks only that the
methods ran and read the same rows)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_benchmark_runs_on_a_small_file(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "import_benchmark.py"), "--size-mb", "2", "--methods",
         "ours,duckdb", "--phases", "--workdir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = {m.group(1): m.groups()[1:] for m in re.finditer(
        r"^(ours|duckdb) +[\d.]+ +[\d.]+ +[\d.]+ +[\d,]+ +([\d,]+) +(.*)$", done.stdout, re.MULTILINE)}
    assert set(rows) == {"ours", "duckdb"}, done.stdout
    read = int(rows["duckdb"][0].replace(",", ""))
    # ours reports what it read, imported and rejected; the generator repeats 0.05% of the ids
    counts = re.match(r"(\d+) read, (\d+) imported, (\d+) rejected", rows["ours"][1])
    assert counts and int(counts.group(1)) == read
    assert int(counts.group(2)) + int(counts.group(3)) < read
    assert "ours / duckdb time" in done.stdout and "stage: CREATE TABLE AS" in done.stdout


def test_the_benchmark_suite_runs_quick_and_its_implementations_agree(tmp_path):
    # errors only: the quick run imports, computes the catalog against the pandas reference and the floor, times
    # the pages, and exits 1 if anything failed or disagreed; the timings themselves are never judged
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--runs", "1", "--workdir",
         str(tmp_path / "work"), "--out", str(tmp_path / "results")],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"catalog month vs pandas .* \((\d+) values agree\)", done.stdout), done.stdout
    assert "DISAGREE" not in done.stdout
    for line in ("import vs duckdb", "overview rerun vs replay", "team rerun vs replay", "one channel",
                 "period change in Chromium", "app server peak memory"):
        assert line in done.stdout
    [results] = (tmp_path / "results").glob("*.json")
    assert '"disagreements": []' in results.read_text()
    table = results.with_suffix(".md").read_text()  # the README's table
    assert "| whole catalog, month, vs pandas (" in table and "period change in Chromium" in table
