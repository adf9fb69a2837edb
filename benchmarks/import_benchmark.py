"""Import throughput benchmark: our import path next to DuckDB's own read_csv and pandas.read_csv.

Generates a realistic helpdesk export (canonical table `tickets`, Zendesk-style column names, ISO
timestamps, free text with quoted commas and umlauts, numbers, true/false flags, empty cells, 0.05%
duplicate ids and 0.005% out-of-range ratings; values DuckDB's sniffer still reads, so the baseline runs)
of about --size-mb megabytes, then runs each method in its own fresh Python process so that the
peak memory is that method's alone:

  ours            store.connect(fresh db) -> read_file -> propose(raw, "tickets") -> import_files
  duckdb          CREATE TABLE t AS SELECT * FROM read_csv(file) into a fresh database file
  pandas          pandas.read_csv(file) (default C engine)
  pandas-pyarrow  pandas.read_csv(file, engine="pyarrow") (extra line; --no-pyarrow skips it)

Seconds are measured inside the child around the work itself (opening the database, reading,
closing it, which includes DuckDB's checkpoint), excluding interpreter start and imports; CPU seconds
(all threads) over the same span are shown too, as they vary far less on a shared machine. Peak RSS
is the child's high-water mark from wait4() (ru_maxrss), cross-checked by sampling
/proc/<pid>/status every 20 ms. The file is read from the page cache for every method (it was just
written and the machine has room for it).

It prints a table and the ratios issue 3 names, with PASS/MISS next to each goal. It never fails on
numbers: it is a benchmark, not a test, and exits 0 (a method that crashes gets a "failed" line saying why).

    python benchmarks/import_benchmark.py                 # 1 GB file, each method once
    python benchmarks/import_benchmark.py --size-mb 200 --repeat 3
    python benchmarks/import_benchmark.py --phases        # also time each phase of our import
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = "tickets"
GOAL_VS_DUCKDB = 1.3    # ours / duckdb at most
GOAL_VS_PANDAS = 5.0    # pandas / ours at least
GOAL_PEAK_MB = 1536.0   # our peak RSS below 1.5 GB (MiB)
METHODS = ("ours", "duckdb", "pandas", "pandas-pyarrow")

# --------------------------------------------------------------------------------------------- data

_SUBJECTS = [
    "Cannot log in after password reset", "Invoice shows the wrong VAT rate", "Export to Excel is empty",
    "Refund request, order", "Feature request: dark mode", 'Error "403 Forbidden" on the dashboard',
    "Rechnung doppelt erhalten", "Lieferung verspätet, bitte prüfen", "API rate limit too low for our sync",
    "How do I add a second admin?", "Webhook fails with timeout", "Kündigung zum Monatsende",
    "Data import stuck at 95%", "Two-factor code never arrives", "Upgrade to the Pro plan, questions",
    "Report totals differ from CSV export",
]


def _generator_sql(rows: int, path: Path) -> str:
    """COPY (SELECT ... FROM range(n)) TO path: deterministic (hash of the row number), no Python loop."""
    subjects = "[" + ", ".join("'" + s.replace("'", "''") + "'" for s in _SUBJECTS) + "]"
    h = "hash(i)"
    return f"""
    COPY (
      WITH base AS (
        SELECT i, {h} AS h, hash(i * 7919 + 13) AS g,
               TIMESTAMP '2021-01-01 00:00:00' + to_seconds(CAST(i * 150000000 // {max(rows, 1)} AS BIGINT)
                                                             + CAST({h} % 600 AS BIGINT)) AS created
        FROM range({rows}) t(i)
      )
      SELECT
        'T' || lpad(CAST(CASE WHEN h % 2000 = 0 AND i > 0 THEN i - 1 ELSE i END + 1 AS VARCHAR), 9, '0')
            AS "Ticket ID",
        list_extract({subjects}, CAST(g % {len(_SUBJECTS)} AS INTEGER) + 1)
            || CASE WHEN g % 3 = 0 THEN ', ref ' || CAST(h % 100000 AS VARCHAR) ELSE '' END AS "Subject",
        strftime(created, '%Y-%m-%d %H:%M:%S') AS "Created at",
        'C' || lpad(CAST(h % 50000 AS VARCHAR), 6, '0') AS "Customer ID",
        CASE WHEN g % 33 = 0 THEN NULL
             ELSE strftime(created + to_seconds(CAST(60 + g % 86400 AS BIGINT)), '%Y-%m-%d %H:%M:%S') END
            AS "First Response at",
        CASE WHEN g % 10 = 0 THEN NULL
             ELSE strftime(created + to_seconds(CAST(660 + g % 86400 + h % 604800 AS BIGINT)), '%Y-%m-%d %H:%M:%S') END
            AS "Solved at",
        CASE WHEN h % 20000 = 7 THEN '0' WHEN g % 100 < 65 THEN NULL
             ELSE CAST(1 + (h // 7) % 5 AS VARCHAR) END AS "Satisfaction Rating",
        CASE WHEN g % 12 = 0 THEN 'true' ELSE 'false' END AS "Reopened",
        list_extract(['email', 'chat', 'phone', 'web'], CAST((g // 5) % 4 AS INTEGER) + 1) AS "Via",
        list_extract(['low', 'normal', 'normal', 'high', 'urgent'], CAST((h // 11) % 5 AS INTEGER) + 1)
            AS "Priority",
        round(CAST((h // 13) % 100000 AS DOUBLE) / 100.0, 2) AS "Handling Minutes"
      FROM base
    ) TO '{path}' (HEADER, DELIMITER ',')
    """


def generate(path: Path, size_mb: float) -> tuple[int, int]:
    """Write a tickets CSV of about size_mb MiB; (rows, bytes)."""
    import duckdb

    probe = path.with_suffix(".probe.csv")
    conn = duckdb.connect()
    try:
        conn.execute(_generator_sql(20000, probe))
        per_row = (probe.stat().st_size - 200) / 20000
        probe.unlink()
        rows = max(1000, int(size_mb * 1024 * 1024 / per_row))
        conn.execute(_generator_sql(rows, path))
    finally:
        conn.close()
    return rows, path.stat().st_size


# ------------------------------------------------------------------------------------------ children


def _child(method: str, file: Path, workdir: Path, phases: bool) -> dict[str, object]:
    """Run one method once in this (fresh) process; its result as a dict."""
    if method == "ours":
        sys.path.insert(0, str(ROOT))
        from kpicore import store
        from kpicore.files import read_file
        from kpicore.ingest import Upload, import_files
        from kpicore.mapping import propose

        db, samples = workdir / "ours.duckdb", workdir / "empty-samples"
        samples.mkdir(exist_ok=True)
        profile = _Profile() if phases else None
        if profile:
            profile.patch()
        start, cpu = time.perf_counter(), time.process_time()
        if profile:
            profile.last = start
        conn = store.connect(db, sample_dir=samples)  # fresh db: one empty snapshot, as a first-time user
        if profile:
            profile.mark("connect")
        raw = read_file(file, workdir=workdir)
        if profile:
            profile.mark("read_file (other)")
        plan = propose(raw, TABLE)
        if profile:
            profile.mark("propose")
        target = profile.wrap(conn) if profile else conn
        result = import_files(target, [Upload(raw, plan)], "benchmark")
        if profile:
            profile.mark("import_files (python)")
        conn.close()
        if profile:
            profile.mark("close (checkpoint)")
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        report = result.files[0]
        out: dict[str, object] = {"seconds": seconds, "cpu": cpu, "rows": report.imported,
                                  "note": f"{report.rows} read, {report.imported} imported, {report.rejected} "
                                          f"rejected, {len(report.warnings)} warning(s)"}
        if profile:
            out["phases"] = profile.report()
            out["unmapped"] = [c for c in raw.columns if c not in {m.source for m in plan.columns}]
        return out
    if method == "duckdb":
        import duckdb

        start, cpu = time.perf_counter(), time.process_time()
        conn = duckdb.connect(str(workdir / "duckdb.duckdb"))
        conn.execute("CREATE TABLE t AS SELECT * FROM read_csv($path)", {"path": str(file)})
        rows = conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]
        conn.close()
        return {"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu, "rows": rows,
                "note": "types auto-detected"}
    if method in ("pandas", "pandas-pyarrow"):
        import pandas as pd

        start, cpu = time.perf_counter(), time.process_time()
        frame = pd.read_csv(file, engine="pyarrow") if method == "pandas-pyarrow" else pd.read_csv(file)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        return {"seconds": seconds, "cpu": cpu, "rows": len(frame), "note": f"pandas {pd.__version__}"}
    raise SystemExit(f"unknown method {method}")


class _Profile:
    """Wall time per phase of our import: wraps file-reading helpers and every SQL statement."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.last = time.perf_counter()

    def add(self, name: str, seconds: float) -> None:
        self.times[name] = self.times.get(name, 0.0) + seconds

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.add(name, now - self.last)
        self.last = now

    def patch(self) -> None:
        from kpicore import files

        for name, label in (("_encoding", "read_file: UTF-8 check (python)"),
                            ("_layout", "read_file: sniff + header"), ("_sample", "read_file: sample rows")):
            if callable(getattr(files, name, None)):  # helpers renamed later are simply not broken out
                setattr(files, name, self._timed(getattr(files, name), label))

    def _timed(self, func, label):  # noqa: ANN001, ANN202
        def run(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                spent = time.perf_counter() - start
                self.add(label, spent)
                self.last += spent  # keep the enclosing mark() from counting it twice
        return run

    def wrap(self, conn):  # noqa: ANN001, ANN202
        return _TimedConnection(conn, self)

    def report(self) -> dict[str, float]:
        return dict(self.times)


def _sql_label(sql: str) -> str:
    text = " ".join(sql.split())
    if text.startswith("CREATE TABLE") and " AS SELECT " in text:
        return "stage: CREATE TABLE AS (read + convert, committed)"
    if text.startswith("INSERT INTO duplicate_rows") or "FROM duplicate_rows" in text:
        return "check: repeated ids (duplicate_rows)"
    if "COUNT(*) FILTER" in text:
        return "check: row counts"
    if "UNION ALL" in text and "__e_" in text:
        return "check: _problems query"
    if text.startswith(("CREATE VIEW", "CREATE SCHEMA", "INSERT INTO snapshot", "CREATE TABLE IF NOT EXISTS")) \
            or "FROM snapshot_tables" in text or ("SELECT COUNT(*) FROM \"snapshot_" in text and "WHERE" not in text):
        return "commit_snapshot (views + counts)"
    if "NOT EXISTS" in text or "COUNT(*) > 0" in text or "amount < 0" in text or " > ?" in text or " > $" in text:
        return "_with_warnings queries"
    if text == "COMMIT":
        return "COMMIT"
    if text.startswith("BEGIN"):
        return "BEGIN"
    return "other SQL"


class _TimedConnection:
    """A DuckDB connection whose execute() (and the fetch after it) is timed by kind of statement."""

    def __init__(self, conn, profile: _Profile) -> None:  # noqa: ANN001
        self._conn, self._profile, self._label = conn, profile, "other SQL"

    def execute(self, sql, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
        self._label = _sql_label(sql)
        start = time.perf_counter()
        self._conn.execute(sql, *args, **kwargs)
        self._charge(start)
        return self

    def _charge(self, start: float) -> None:
        spent = time.perf_counter() - start
        self._profile.add(self._label, spent)
        self._profile.last += spent

    def fetchone(self):  # noqa: ANN201
        start = time.perf_counter()
        try:
            return self._conn.fetchone()
        finally:
            self._charge(start)

    def fetchall(self):  # noqa: ANN201
        start = time.perf_counter()
        try:
            return self._conn.fetchall()
        finally:
            self._charge(start)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._conn, name)


# ------------------------------------------------------------------------------------------ parent


def _run_child(method: str, file: Path, workdir: Path, size_bytes: int, phases: bool = False) -> dict[str, object]:
    """Run one method in a fresh process; its result plus peak RSS (wait4 high-water mark and sampled)."""
    scratch = Path(tempfile.mkdtemp(prefix=f"{method}-", dir=workdir))
    out_path = scratch / "result.json"
    env = dict(os.environ)
    env["KPI_MAX_UPLOAD_MB"] = str(max(size_bytes / 1024 / 1024 * 2, 200))  # the app's 200 MB cap is not measured
    command = [sys.executable, str(Path(__file__).resolve()), "--child", method, "--file", str(file),
               "--workdir", str(scratch), "--out", str(out_path)] + (["--phases"] if phases else [])
    with open(scratch / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        sampled = [0.0]
        done = threading.Event()

        def sample() -> None:
            status = Path(f"/proc/{proc.pid}/status")
            while not done.is_set():
                try:
                    for line in status.read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            sampled[0] = max(sampled[0], int(line.split()[1]) / 1024)
                except (OSError, ValueError):
                    pass
                done.wait(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not out_path.exists():
        tail = (scratch / "stderr.txt").read_text(errors="replace").strip().splitlines()[-5:]
        result = {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
    else:
        result = json.loads(out_path.read_text())
    result["peak_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    result["sampled_mb"] = sampled[0]
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _print_table(results: dict[str, dict[str, object]], size_bytes: int, rows: int, repeat: int) -> None:
    mb = size_bytes / 1024 / 1024
    import duckdb

    print(f"\nFile: {mb:,.0f} MB, {rows:,} rows of {TABLE} (+ header); best of {repeat}; "
          f"{os.cpu_count()} CPU(s); DuckDB {duckdb.__version__}; {date.today().isoformat()}")
    header = f"{'method':<16}{'seconds':>9}{'MB/s':>8}{'CPU s':>8}{'peak RSS MB':>13}{'rows':>12}  note"
    print(header)
    print("-" * (len(header) + 40))
    for method, r in results.items():
        if "error" in r:
            print(f"{method:<16}{'failed':>9}{'':>8}{'':>8}{r['peak_mb']:>13,.0f}{'':>12}  {r['error'][:200]}")
            continue
        print(f"{method:<16}{r['seconds']:>9.2f}{mb / r['seconds']:>8.1f}{r['cpu']:>8.1f}{r['peak_mb']:>13,.0f}"
              f"{r['rows']:>12,}  {r['note']}")
    ours, duck, pandas = (results.get(m, {}) for m in ("ours", "duckdb", "pandas"))
    print()
    if "seconds" in ours and "seconds" in duck:
        ratio, cpu = ours["seconds"] / duck["seconds"], ours["cpu"] / duck["cpu"]
        print(f"ours / duckdb time   {ratio:6.2f}x   goal <= {GOAL_VS_DUCKDB}x   {_verdict(ratio <= GOAL_VS_DUCKDB)}"
              f"   (CPU time {cpu:.2f}x)")
    if "seconds" in ours and "seconds" in pandas:
        ratio, cpu = pandas["seconds"] / ours["seconds"], pandas["cpu"] / ours["cpu"]
        print(f"pandas / ours time   {ratio:6.2f}x   goal >= {GOAL_VS_PANDAS}x     {_verdict(ratio >= GOAL_VS_PANDAS)}"
              f"   (CPU time {cpu:.2f}x)")
    if "peak_mb" in ours:
        peak = ours["peak_mb"]
        print(f"our peak RSS       {peak:6,.0f} MB   goal < {GOAL_PEAK_MB:,.0f} MB  {_verdict(peak < GOAL_PEAK_MB)}")


def _print_phases(phases: dict[str, float], total: float) -> None:
    print("\nOur import, phase by phase (separate run, instrumented):")
    for name, seconds in sorted(phases.items(), key=lambda kv: -kv[1]):
        if seconds >= 0.005:
            print(f"  {name:<55}{seconds:>8.2f} s {100 * seconds / total:>5.1f}%")
    print(f"  {'total':<55}{total:>8.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=1024, help="size of the generated CSV (default 1024)")
    parser.add_argument("--workdir", type=Path, help="where the CSV and databases go (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated CSV and workdir")
    parser.add_argument("--repeat", type=int, default=1, help="runs per method; the best time is shown (default 1)")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {','.join(METHODS)}")
    parser.add_argument("--no-pyarrow", action="store_true", help="skip the pandas engine='pyarrow' line")
    parser.add_argument("--phases", action="store_true", help="also time each phase of our import (extra run)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        result = _child(args.child, args.file, args.workdir, args.phases)
        args.out.write_text(json.dumps(result))
        return 0

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.no_pyarrow and "pandas-pyarrow" in methods:
        methods.remove("pandas-pyarrow")
    created = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="kpi-bench-")) if created else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(workdir).free / 1024 / 1024
    if free < args.size_mb * 4:
        print(f"warning: only {free:,.0f} MB free in {workdir}; the run needs about {args.size_mb * 4:,.0f} MB")
    csv_path = workdir / f"{TABLE}_{args.size_mb:g}mb.csv"
    try:
        start = time.perf_counter()
        if csv_path.exists():
            import duckdb

            rows = duckdb.execute("SELECT COUNT(*) FROM read_csv($p)", {"p": str(csv_path)}).fetchone()[0]
            size = csv_path.stat().st_size
            print(f"Reusing {csv_path} ({size / 1024 / 1024:,.0f} MB)")
        else:
            rows, size = generate(csv_path, args.size_mb)
            print(f"Generated {csv_path} ({size / 1024 / 1024:,.0f} MB, {rows:,} rows) "
                  f"in {time.perf_counter() - start:.1f} s")
        runs: dict[str, list[dict[str, object]]] = {m: [] for m in methods}
        for n in range(max(1, args.repeat)):  # round robin, so that a noisy minute hits every method alike
            for method in methods:
                run = _run_child(method, csv_path, workdir, size)
                shown = f"{run['seconds']:.2f} s ({run['cpu']:.1f} s CPU)" if "seconds" in run else run["error"][:300]
                print(f"  {method} run {n + 1}: {shown}, peak RSS {run['peak_mb']:,.0f} MB "
                      f"(sampled {run['sampled_mb']:,.0f} MB)", flush=True)
                runs[method].append(run)
        results: dict[str, dict[str, object]] = {}
        for method, tried in runs.items():
            ok = [r for r in tried if "seconds" in r]
            best = min(ok, key=lambda r: r["seconds"]) if ok else tried[0]
            results[method] = dict(best, peak_mb=max(r["peak_mb"] for r in tried))
        _print_table(results, size, rows, max(1, args.repeat))
        if args.phases:
            run = _run_child("ours", csv_path, workdir, size, phases=True)
            if "phases" in run:
                _print_phases(run["phases"], run["seconds"])
            else:
                print(f"\nphase run failed: {run.get('error')}")
    finally:
        if not args.keep:
            csv_path.unlink(missing_ok=True)
            if created:
                shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"\nKept {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
