"""The whole catalog on other engines at company scale: `python benchmarks/engines.py --size 1m`.

Generates the data with the seeded sample generator at the size (leads), imports it through the real import path
into DuckDB, copies the canonical tables to a PostgreSQL server this script starts on loopback (Debian's package,
as the tests do) and to a local Spark session (Parquet files), and computes the whole catalog on each: the median
of `--runs` runs, wall seconds, beside DuckDB in the same run. It checks that every engine's values equal
DuckDB's (the tests' tolerances) before it prints a time. The engines' own processes do the work, so only wall
seconds mean something for them. Raw runs go to benchmarks/results/engines-<date>.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from pg_support import postgres_server  # noqa: E402
from run import exports, import_ours, measure  # noqa: E402
from test_engines import differences  # noqa: E402

from kpicore import compute, engines, store  # noqa: E402
from kpicore.catalog import load_catalog  # noqa: E402
from kpicore.model import TABLES  # noqa: E402
from kpicore.periods import Grain  # noqa: E402
from kpicore.sql import quote  # noqa: E402


def columns(name: str) -> str:
    return ", ".join(quote(c.name) for c in TABLES[name].columns)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1m", help="leads: 100k, 1m, ...")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--grains", default="month", help="comma-separated: week,month,quarter,year")
    parser.add_argument("--engines", default="postgres,spark")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "kpi-engine-bench")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / f"engines-{date.today()}.json")
    args = parser.parse_args(argv)
    grains = [Grain(g) for g in args.grains.split(",")]
    wanted = args.engines.split(",")
    catalog = load_catalog()
    files = exports(args.workdir, args.size)
    db = args.workdir / args.size / "engines.duckdb"
    started = time.perf_counter()
    import_ours(db, files)
    print(f"{args.size} leads imported into DuckDB in {time.perf_counter() - started:.0f} s")
    conn = duckdb.connect(str(db), read_only=True)
    snapshot = store.latest_snapshot(conn)
    rows = {name: conn.execute(f"SELECT COUNT(*) FROM {snapshot.schema}.{quote(name)}").fetchone()[0]
            for name in TABLES}
    print("rows: " + ", ".join(f"{name} {count:,}" for name, count in rows.items()))
    results: dict = {"date": date.today().isoformat(), "size": args.size, "rows": rows, "runs": args.runs,
                     "machine": {"cores": __import__("os").cpu_count(), "python": platform.python_version(),
                                 "duckdb": duckdb.__version__}, "grains": {}}
    with postgres_server() as dsn:
        runners = {"duckdb": (conn, snapshot.schema)}
        if "postgres" in wanted:
            pg = engines.PostgresEngine(dsn, "bench")
            started = time.perf_counter()
            engines.copy_tables(((name, conn.execute(f"SELECT {columns(name)} FROM {snapshot.schema}."
                                                     f"{quote(name)}").fetchall()) for name in TABLES), pg)
            pg.execute("SELECT 1")
            print(f"copied to PostgreSQL in {time.perf_counter() - started:.0f} s")
            runners["postgres"] = (pg, "bench")
        if "spark" in wanted:
            spark = engines.SparkEngine("local[2]", "bench", warehouse=str(args.workdir / "warehouse"))
            folder = args.workdir / args.size / "parquet"
            folder.mkdir(parents=True, exist_ok=True)
            parquet = {}
            for name in TABLES:
                parquet[name] = folder / f"{name}.parquet"
                conn.execute(f"COPY (SELECT {columns(name)} FROM {snapshot.schema}.{quote(name)}) TO "
                             f"'{parquet[name]}' (FORMAT parquet)")
            spark.write_tables(parquet)
            runners["spark"] = (spark, "bench")
        print(f"\n{'grain':8} {'engine':9} {'wall s (median)':>16} {'x DuckDB':>9}  values")
        for grain in grains:
            measured = {}
            for name, (engine, schema) in runners.items():
                measured[name] = measure(lambda e=engine, s=schema, g=grain: compute.compute(e, catalog, s, g),
                                         args.runs)
            ours = measured["duckdb"]["result"]
            for name, m in measured.items():
                wrong = differences(ours, m["result"], catalog) if name != "duckdb" else []
                agree = sum(v is not None for vs in ours.values.values() for v in vs)
                said = f"{agree:,} agree with DuckDB" if not wrong else f"DISAGREE: {len(wrong)}, e.g. {wrong[:3]}"
                ratio = m["wall"] / measured["duckdb"]["wall"]
                print(f"{grain.value:8} {name:9} {m['wall']:16.2f} {ratio:9.1f}  {said if name != 'duckdb' else ''}")
                results["grains"].setdefault(grain.value, {})[name] = {"walls": m["walls"], "wall": m["wall"],
                                                                       "disagree": len(wrong)}
        for name, (engine, _) in runners.items():
            if name != "duckdb":
                engine.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    bad = any(r.get("disagree") for g in results["grains"].values() for r in g.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
