"""The `kpicore` command: the app's numbers on the command line, on the same code paths."""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from kpicore import sample, store
from kpicore.catalog import CUSTOMER, Catalog, load_catalog
from kpicore.compute import compute
from kpicore.display import format_change, format_value
from kpicore.errors import CatalogError, KpiError, UnknownTeam
from kpicore.periods import Comparison, Grain, parse_period
from kpicore.scorecard import KpiResult, as_record, build_scorecard


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit code (0 ok, 1 expected failure, 2 usage)."""
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except CatalogError as error:
        print(error, file=sys.stderr)
        return 1
    except KpiError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kpicore", description="Customer-centric KPI scorecards over DuckDB.")
    parser.add_argument("--db", help="DuckDB file (default: $KPI_DB or data/kpi.duckdb); created with sample data")
    parser.add_argument("--catalog", help="KPI catalog YAML (default: $KPI_CATALOG or the shipped catalog)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = commands.add_parser("init", help="create the database with the bundled sample data",
                               description="Create the database with the bundled sample data.")
    init.add_argument("--force", action="store_true", help="delete an existing database file first")
    init.set_defaults(run=_init)

    kpis = commands.add_parser("kpis", help="KPI values for a period (the numbers the app shows)",
                               description="KPI values for one period, as the app shows them.")
    kpis.add_argument("--grain", choices=[g.value for g in Grain], default="month", help="period length")
    kpis.add_argument("--period", help="2026-10 (month), 2026-Q3 (quarter) or 2026-W40 (week); "
                                       "default: latest complete period in the data")
    kpis.add_argument("--comparison", choices=[c.value for c in Comparison], default="previous",
                      help="what the value is compared with")
    kpis.add_argument("--team", help=f"only this team's KPIs ('{CUSTOMER}' for the shared outcomes)")
    kpis.add_argument("--format", choices=["table", "csv", "json"], default="table", help="output format")
    kpis.set_defaults(run=_kpis)

    check = commands.add_parser("check-catalog", help="validate a KPI catalog and list every problem",
                                description="Validate a KPI catalog file and list every problem in it.")
    check.add_argument("file", nargs="?", help="catalog file (default: the one in use)")
    check.set_defaults(run=_check_catalog)

    make = commands.add_parser("sample", help="regenerate the sample CSVs with the seeded generator",
                               description="Regenerate the sample data CSVs with the seeded generator.")
    make.add_argument("--out", default=str(store.SAMPLE_DIR), help="folder to write the CSVs to")
    make.add_argument("--seed", type=int, default=7, help="random seed")
    make.set_defaults(run=_sample)
    return parser


def _init(args: argparse.Namespace) -> int:
    path = store.db_path(args.db)
    if args.force and path.exists():
        path.unlink()
    conn = store.connect(path)
    snapshot = store.latest_snapshot(conn)
    print(f"{path}: snapshot {snapshot.id} ({snapshot.note})")
    return 0


def _results(args: argparse.Namespace, catalog: Catalog) -> list[KpiResult]:
    grain = Grain(args.grain)
    if args.team and args.team != CUSTOMER:
        catalog.team(args.team)
    conn = store.connect(args.db)
    snapshot = store.latest_snapshot(conn)
    values = compute(conn.cursor(), catalog, snapshot.schema, grain)
    period = values.check(parse_period(args.period, grain)) if args.period else values.latest
    card = build_scorecard(catalog, values, period, Comparison(args.comparison))
    results = list(card.outcomes) + [r for team in card.teams for r in team.kpis]
    if args.team:
        results = [r for r in results if r.kpi.team == args.team]
    return results


def _kpis(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.catalog)
    try:
        results = _results(args, catalog)
    except UnknownTeam as error:
        raise UnknownTeam(f"{error} Use '{CUSTOMER}' for the shared customer outcomes.") from None
    records = [as_record(r) for r in results]
    if args.format == "json":
        print(json.dumps(records, indent=2))
    elif args.format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(records[0]) if records else ["id"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        print(out.getvalue(), end="")
    else:
        print(_table(results, catalog))
    return 0


def _table(results: list[KpiResult], catalog: Catalog) -> str:
    if not results:
        return "No KPIs."
    first = results[0]
    header = ["KPI", "Team", "Period", "Value", "Compared", "Change", "Target", "Status", "As of"]
    rows = [header]
    for r in results:
        target = format_value(r.target, r.kpi.unit, catalog.currency)
        rows.append([
            r.kpi.label, r.kpi.team or "", r.period.label, format_value(r.value, r.kpi.unit, catalog.currency),
            f"{format_value(r.comparison, r.kpi.unit, catalog.currency)} ({r.comparison_period.label})",
            format_change(r) or "–", target,
            r.status.value, r.as_of.isoformat() if r.as_of else "–",
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {3, 4, 5, 6}
    lines = [f"KPIs for {first.period.label}; cohort KPIs show their latest mature cohort"]
    for row in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _check_catalog(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.file or args.catalog)
    scored = [k for k in catalog.kpis if not k.is_measure]
    print(f"{catalog.source}: OK, {len(scored)} KPIs and {len(catalog.measures)} building blocks "
          f"for {len(catalog.teams)} teams.")
    return 0


def _sample(args: argparse.Namespace) -> int:
    paths = sample.write_csvs(sample.generate(seed=args.seed), Path(args.out))
    print(f"Wrote {len(paths)} files to {args.out}")
    return 0


