"""The `kpicore` command: the app's numbers on the command line, on the same code paths."""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from kpicore import sample, store
from kpicore.catalog import CUSTOMER, Catalog, load_catalog
from kpicore.compute import KpiValues, compute
from kpicore.display import format_change, format_value
from kpicore.errors import BadFile, BadParameter, CatalogError, KpiError, UnknownTeam
from kpicore.files import RawFile, read_file
from kpicore.ingest import FileReport, Mode, Upload, import_files
from kpicore.mapping import DateOrder, Plan, apply_saved, propose, to_saved
from kpicore.model import TABLES
from kpicore.periods import Comparison, Grain, Period, parse_period
from kpicore.scorecard import KpiResult, as_record, build_scorecard
from kpicore.tensions import as_record as tension_record
from kpicore.tensions import find_tensions, spread_over_teams


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
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        sys.stderr.close()
        return 0


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

    tension = commands.add_parser("tensions", help="KPIs pulling against their counterweights (as the app shows)",
                                  description="List the tensions of a period: a KPI that improved while a KPI "
                                              "guarding it worsened, with the teams and the customer outcome at stake.")
    tension.add_argument("--grain", choices=[g.value for g in Grain], default="month", help="period length")
    tension.add_argument("--period", help="e.g. 2026-10; default: latest complete period in the data")
    tension.add_argument("--comparison", choices=[c.value for c in Comparison], default="previous",
                         help="what the period is compared with")
    tension.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    tension.set_defaults(run=_tensions)

    check = commands.add_parser("check-catalog", help="validate a KPI catalog and list every problem",
                                description="Validate a KPI catalog file and list every problem in it.")
    check.add_argument("file", nargs="?", help="catalog file (default: the one in use)")
    check.set_defaults(run=_check_catalog)

    load = commands.add_parser(
        "load", help="import CSV/TSV/XLSX exports into a new snapshot",
        description="Import exports into a new snapshot, all files or none. The command never guesses: where "
                    "it is unsure which column is which, it says so and how to pass --map.")
    load.add_argument("files", nargs="+", metavar="FILE", help="CSV, TSV or XLSX exports")
    load.add_argument("--table", choices=list(TABLES), help="the canonical table (default: recognised per file)")
    load.add_argument("--mapping", help="apply a saved mapping by name")
    load.add_argument("--save-mapping", metavar="NAME", help="save the mapping used, for the next export")
    load.add_argument("--map", action="append", default=[], metavar="CANONICAL=SOURCE",
                      help="map a canonical column onto a source column, e.g. --map created_at=\"Create Date\"; "
                           "--map owner= leaves a column unmapped")
    load.add_argument("--as-of", type=_day, metavar="DATE",
                      help="the day a status-only export describes (states but no dates), e.g. 2026-10-31")
    load.add_argument("--dates", choices=["day_first", "month_first"],
                      help="how dates like 01/02/2026 are written, where the data cannot tell")
    mode = load.add_mutually_exclusive_group()
    mode.add_argument("--replace", dest="mode", action="store_const", const="replace",
                      help="replace the table's rows (default)")
    mode.add_argument("--append", dest="mode", action="store_const", const="append",
                      help="add rows; rows with an id already stored replace the stored ones")
    load.set_defaults(run=_load, mode="replace")

    listing = commands.add_parser("snapshots", help="list the stored snapshots",
                                  description="List the stored snapshots, newest first, with tables and row counts.")
    listing.set_defaults(run=_snapshots)

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


def _values(args: argparse.Namespace, catalog: Catalog) -> tuple[KpiValues, Period]:
    """KPI values of the latest snapshot for the grain, and the period asked for (default: latest complete)."""
    grain = Grain(args.grain)
    conn = store.connect(args.db)
    snapshot = store.latest_snapshot(conn)
    values = compute(conn.cursor(), catalog, snapshot.schema, grain, loaded=store.loaded(conn, snapshot))
    return values, values.check(parse_period(args.period, grain)) if args.period else values.latest()


def _results(args: argparse.Namespace, catalog: Catalog) -> list[KpiResult]:
    if args.team and args.team != CUSTOMER:
        catalog.team(args.team)
    values, period = _values(args, catalog)
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


def _tensions(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.catalog)
    values, period = _values(args, catalog)
    found = spread_over_teams(find_tensions(catalog, values, period, Comparison(args.comparison)))
    if args.format == "json":
        print(json.dumps([tension_record(t) for t in found], indent=2))
        return 0
    print(f"Tensions in {period.label} (against the {Comparison(args.comparison).label}): {len(found)}")
    for tension in found:
        teams = " vs ".join(dict.fromkeys(tension.team_labels))
        stake = ", ".join(o.label for o in tension.at_stake) or "–"
        print(f"\n[{tension.kind.value}, severity {tension.severity:.1f}] {tension.kpi.label} vs "
              f"{tension.counterweight.label} ({teams}); at stake: {stake}\n  {tension.sentence}")
    return 0


def _check_catalog(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.file or args.catalog)
    scored = [k for k in catalog.kpis if not k.is_measure]
    print(f"{catalog.source}: OK, {len(scored)} KPIs and {len(catalog.measures)} building blocks "
          f"for {len(catalog.teams)} teams.")
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2026-10-31") from None


def _load(args: argparse.Namespace) -> int:
    if args.save_mapping and len(args.files) > 1:
        raise BadParameter("--save-mapping saves the mapping of one file: load that file on its own.")
    conn = store.connect(args.db)
    uploads = []
    with tempfile.TemporaryDirectory(prefix="kpi-load-") as workdir:
        for name in args.files:
            path = Path(name)
            if not path.is_file():
                raise BadFile(name, "does not exist or is not a file.")
            raw = read_file(path, workdir=Path(workdir))
            uploads.append(Upload(raw, _plan(conn, raw, args), Mode(args.mode), args.as_of))
        result = import_files(conn, uploads, f"kpicore load {' '.join(Path(f).name for f in args.files)}")
    for report in result.files:
        print(_report(report))
    if args.save_mapping:
        store.save_mapping(conn, args.save_mapping, to_saved(uploads[0].plan, uploads[0].raw))
        print(f"Saved the mapping as '{args.save_mapping}'.")
    print(f"Snapshot {result.snapshot.id} created.")
    return 0


def _plan(conn: object, raw: RawFile, args: argparse.Namespace) -> Plan:
    """The mapping for a file: recognised, then a saved mapping, then --map and --dates; refuses to guess."""
    plan = propose(raw, args.table)
    if args.mapping:
        plan = apply_saved(plan, raw, store.saved_mapping(conn, args.mapping))
    elif (found := store.mapping_for_headers(conn, raw.columns)) is not None:
        plan = apply_saved(plan, raw, found[1])
        print(f"{raw.name}: using the saved mapping '{found[0]}'.")
    elif args.table is None and plan.confidence < 0.5:
        raise BadFile(raw.name, f"does not look like any known table (best guess: {plan.table}). "
                                f"Pass --table ({', '.join(TABLES)}).")
    for item in args.map:
        canonical, _, source = item.partition("=")
        if TABLES[plan.table].column(canonical) is None:
            raise BadParameter(f"--map {item}: {plan.table} has no column '{canonical}' "
                               f"({', '.join(TABLES[plan.table].column_names)}).")
        if source and source not in raw.columns:
            raise BadParameter(f"--map {item}: {raw.name} has no column '{source}' ({', '.join(raw.columns)}).")
        plan = plan.with_column(canonical, source or None)
    if args.dates:
        for column in plan.ambiguous_dates:
            plan = plan.with_date_order(column, DateOrder(args.dates))
    if plan.unsure:
        guesses = "; ".join(f"{m.canonical} <- '{m.source}' ({m.confidence:.0%} sure)" for m in plan.unsure)
        first = plan.unsure[0]
        raise BadFile(raw.name, f"is read as {plan.table}, but these columns are guesses: {guesses}. Confirm "
                                f"each with --map, e.g. --map {first.canonical}=\"{first.source}\".")
    return plan


def _report(report: FileReport) -> str:
    lines = [f"{report.file} -> {report.table} ({report.mode.value}): {report.imported:,} row(s) imported, "
             f"{report.rejected:,} rejected."]
    for problem in report.problems[:20]:
        lines.append(f"  row {problem.row}, column '{problem.column}': '{problem.value}' {problem.reason}")
    if len(report.problems) > 20:
        lines.append(f"  ... and {len(report.problems) - 20} more problem(s).")
    lines += [f"  warning: {w}" for w in report.warnings]
    return "\n".join(lines)


def _snapshots(args: argparse.Namespace) -> int:
    conn = store.connect(args.db)
    for snap, tables in store.snapshots(conn):
        print(f"Snapshot {snap.id}  {snap.created_at:%Y-%m-%d %H:%M}  {snap.note}")
        for table in tables:
            mark = "*" if table.changed else " "
            print(f"  {mark} {table.table:<14} {table.rows:>9,} rows  {table.source}")
    print("(* = changed in that snapshot)")
    return 0


def _sample(args: argparse.Namespace) -> int:
    paths = sample.write_csvs(sample.generate(seed=args.seed), Path(args.out))
    print(f"Wrote {len(paths)} files to {args.out}")
    return 0


