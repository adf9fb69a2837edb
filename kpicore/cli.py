"""The `kpicore` command: the app's numbers on the command line, on the same code paths."""
from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

import duckdb

from kpicore import access, actions, checkins, engines, kept, report, store, targets, warehouse
from kpicore.catalog import CUSTOMER, Catalog, load_catalog
from kpicore.compute import KpiValues
from kpicore.coverage import Engine, Loaded
from kpicore.display import format_change, format_value, printable
from kpicore.errors import BadFile, BadParameter, CatalogError, KpiError, UnknownTeam
from kpicore.files import RawFile, clean_workdirs, read_file, workdir
from kpicore.filters import NO_FILTERS, Filters
from kpicore.filters import options as filter_options
from kpicore.ingest import Mode, Upload, check_plan, export_date
from kpicore.mapping import DateOrder, Plan, remap, to_saved
from kpicore.model import TABLES
from kpicore.periods import Comparison, Grain, Period, parse_period
from kpicore.scorecard import KpiResult, as_record, build_scorecard
from kpicore.tensions import as_record as tension_record
from kpicore.tensions import find_tensions, spread_over_teams
from kpicore.texts import SAMPLE_LINE, report_text, started_empty
from kpicore.view import View


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit code (0 ok, 1 expected failure, 2 usage)."""
    args = _parser().parse_args(argv)
    clean_workdirs()  # what a killed import left in the temporary directory
    try:
        return args.run(args)
    except CatalogError as error:
        print(error, file=sys.stderr)
        return 1
    except KpiError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    except duckdb.IOException as error:  # a database damaged further in than the pages read when it opened
        print(f"Error: {store.broken(store.db_path(args.db), error)}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        sys.stderr.close()
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kpicore", description="Customer-centric KPI scorecards over DuckDB.")
    parser.add_argument("--db", help="DuckDB file (default: $KPI_DB or data/kpi.duckdb); created with sample data")
    parser.add_argument("--catalog", help="KPI catalog YAML (default: $KPI_CATALOG or the shipped catalog)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = commands.add_parser("init", help="create the database with the bundled sample data (or empty tables)",
                               description="Create the database with the bundled sample data, or with empty "
                                           "tables. On an existing database, --empty adds an empty snapshot.")
    init.add_argument("--force", action="store_true", help="delete an existing database file first")
    init.add_argument("--empty", action="store_true", help="start with empty tables instead of the sample data")
    init.set_defaults(run=_init)

    kpis = commands.add_parser("kpis", help="KPI values for a period (the numbers the app shows)",
                               description="KPI values for one period, as the app shows them.")
    _view_arguments(kpis)
    kpis.add_argument("--team", help=f"only this team's KPIs ('{CUSTOMER}' for the shared outcomes)")
    kpis.add_argument("--format", choices=["table", "csv", "json"], default="table", help="output format")
    kpis.set_defaults(run=_kpis)

    tension = commands.add_parser("tensions", help="KPIs pulling against their counterweights (as the app shows)",
                                  description="List the tensions of a period: a KPI that improved while a KPI "
                                              "guarding it worsened, with the teams and the customer outcome at stake.")
    _view_arguments(tension)
    tension.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    tension.set_defaults(run=_tensions)

    meeting = commands.add_parser(
        "report", help="the meeting report of a period: story, outcomes, team scores, tensions, check-ins",
        description="Write the meeting report of a period (the latest snapshot): Markdown to paste into a wiki or "
                    "chat, one self-contained HTML file, or A4 PDF pages.")
    _view_arguments(meeting)
    meeting.add_argument("--team", help="one team's report (default: the Overview's, every team)")
    meeting.add_argument("--format", choices=list(report.FORMATS), default="md", help="output format")
    meeting.add_argument("--out", help="file to write (default: Markdown to the terminal, HTML and PDF to "
                                       "kpi-report-PERIOD[-TEAM].html/.pdf here)")
    meeting.add_argument("--origin", default="http://localhost:8501",
                         help="scheme and host of the app, for the report's link to the live view")
    meeting.set_defaults(run=_report)

    target = commands.add_parser(
        "target", help="show or change a KPI's monthly target (a new snapshot, signed by the command line)",
        description="Without a value: the KPI's target in force and who changed it. With a value: set the monthly "
                    "target (rates as fractions, 0.25 = 25%%), or 'catalog' to go back to the catalog's.")
    target.add_argument("kpi", help="KPI id, as in the catalog")
    target.add_argument("value", nargs="?", help="the new monthly target, or 'catalog'")
    target.add_argument("--at-risk", type=float, help="at risk from this share of the target (0.9: 90%%)")
    target.set_defaults(run=_target)

    sql = commands.add_parser(
        "sql", help="the SQL that computes a KPI, as DuckDB or another engine writes it",
        description="Print the query that computes one KPI (and the KPIs it is computed from) for every period of "
                    "the latest snapshot, in the SQL of an engine, with its parameters. DuckDB and PostgreSQL are "
                    "verified against each other; the others are generated, not verified here.")
    sql.add_argument("kpi", help="KPI id, as in the catalog")
    sql.add_argument("--engine", choices=engines.DIALECTS, default="duckdb", help="whose SQL to write")
    sql.add_argument("--grain", choices=[g.value for g in Grain], default="month", help="period length")
    sql.add_argument("--schema", default="kpi", help="the schema holding the canonical tables on that engine")
    sql.set_defaults(run=_sql)

    secret = commands.add_parser(
        "hash-password", help="the line for secrets.toml that sets the editor password",
        description="Ask for an editor password (twice) and print its argon2 hash as the line to put under [kpi] in "
                    ".streamlit/secrets.toml. Only the hash is stored; visitors who give the password can edit.")
    secret.set_defaults(run=_hash_password)

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
    load.add_argument("--no-precompute", dest="precompute", action="store_false",
                      help="do not compute the dashboard's KPIs now (its first visitor then waits for them)")
    load.add_argument("--keep-sample", action="store_true",
                      help="keep the sample tables beside your files (default: your files start from empty tables)")
    mode = load.add_mutually_exclusive_group()
    mode.add_argument("--replace", dest="mode", action="store_const", const="replace",
                      help="replace the table's rows (default)")
    mode.add_argument("--append", dest="mode", action="store_const", const="append",
                      help="add rows; rows with an id already stored replace the stored ones")
    load.set_defaults(run=_load, mode="replace")

    saving = commands.add_parser("backup", help="copy the whole database (every snapshot) to a file",
                                 description="Copy the whole database, with every snapshot, saved mapping and "
                                             "check-in, to FILE (the app may keep running: the copy waits for it).")
    saving.add_argument("file", metavar="FILE", help="where the copy goes, e.g. backups/kpi-2026-12-01.duckdb")
    saving.set_defaults(run=_backup)
    back = commands.add_parser("restore-backup", help="put a backup made by 'kpicore backup' in place of the database",
                               description="Replace the database with a backup (checked first); the file it "
                                           "replaces is kept beside it. Stop the app first, or it waits for it.")
    back.add_argument("file", metavar="FILE", help="a backup made by 'kpicore backup'")
    back.set_defaults(run=_restore_backup)

    listing = commands.add_parser("snapshots", help="list the stored snapshots",
                                  description="List the stored snapshots, newest first, with tables and row counts.")
    listing.set_defaults(run=_snapshots)

    drop = commands.add_parser("drop", help="empty tables, as a new snapshot",
                               description="Empty one or more tables in a new snapshot; the rows stay in the earlier "
                                           "snapshots ('kpicore restore' brings them back).")
    drop.add_argument("tables", nargs="+", metavar="TABLE", choices=list(TABLES), help=", ".join(TABLES))
    drop.set_defaults(run=_drop)

    restore = commands.add_parser("restore", help="make an earlier snapshot current again",
                                  description="Make an earlier snapshot current again, as a new snapshot.")
    restore.add_argument("snapshot", type=int, help="the snapshot number ('kpicore snapshots' lists them)")
    restore.set_defaults(run=_restore)

    house = commands.add_parser(
        "warehouse", help="compute on a warehouse ($KPI_ENGINE): make the canonical views, read the tables again",
        description="With KPI_ENGINE set (postgresql://..., spark://host:port or local[*]) KPIs are computed "
                    "there, on the canonical tables or views of KPI_SCHEMA (default kpi). See docs/warehouse.md.")
    doing = house.add_subparsers(dest="doing", required=True, metavar="ACTION", help="views or read")
    views = doing.add_parser("views", help="make the canonical views from a mapping of the company's tables")
    views.add_argument("mapping", metavar="MAPPING.yaml", help="canonical table: from, columns and values")
    views.set_defaults(run=_warehouse_views)
    reading = doing.add_parser("read", help="read the canonical tables again, as a new snapshot")
    reading.set_defaults(run=_warehouse_read)

    ahead = commands.add_parser("precompute", help="compute views of the latest snapshot for the dashboard now",
                                description="Compute the KPIs of views of the latest snapshot and keep them in the "
                                            "database, so that opening them in the app is instant (kpicore load "
                                            "does the month view without filters by itself).")
    ahead.add_argument("--grain", action="append", choices=[g.value for g in Grain],
                       help="a grain to compute (repeatable; default month)")
    ahead.add_argument("--filters", action="store_true",
                       help="also every single value of each filter (one marketing channel, segment or region)")
    ahead.set_defaults(run=_precompute_views)

    make = commands.add_parser("sample", help="regenerate the sample CSVs with the seeded generator",
                               description="Regenerate the sample data CSVs with the seeded generator.")
    make.add_argument("--out", default=str(store.SAMPLE_DIR), help="folder to write the CSVs to")
    make.add_argument("--seed", type=int, default=7, help="random seed")
    make.add_argument("--scale", type=float, default=1.0,
                      help="company size: 1 is about 38,000 leads, 26 about a million (for benchmarks and tests)")
    make.set_defaults(run=_sample)
    return parser


def _view_arguments(command: argparse.ArgumentParser) -> None:
    """--grain, --period and --comparison: the view a command shows, as the app's pickers set it."""
    command.add_argument("--grain", choices=[g.value for g in Grain], default="month", help="period length")
    command.add_argument("--period", help="2026-10 (month), 2026-Q3 (quarter), 2026 (year) or 2026-W40 (week); "
                                          "default: latest complete period in the data")
    command.add_argument("--comparison", choices=[c.value for c in Comparison], default="previous",
                         help="what the period is compared with")


WAIT_SECONDS = 30  # how long a command waits for the database while the app holds it


def _connect(args: argparse.Namespace, sample: bool = True) -> duckdb.DuckDBPyConnection:
    """The database, waiting a while if the app holds it (DatabaseBusy after WAIT_SECONDS). With a warehouse set,
    a new database starts without the sample data (the warehouse holds the data); with a PostgreSQL one, the
    app's own tables are there too (warehouse.shares_state)."""
    chosen = warehouse.setting()
    if warehouse.shares_state(chosen):  # the app's own tables live in the warehouse too
        return warehouse.state(chosen)  # type: ignore[return-value]
    return store.connect(args.db, sample=sample and not chosen.url, wait=WAIT_SECONDS,
                         waiting=lambda text: print(text, file=sys.stderr))


def _latest(conn: duckdb.DuckDBPyConnection) -> tuple[store.Snapshot, Engine]:
    """The latest snapshot and what computes its KPIs: the database itself, or the warehouse $KPI_ENGINE names
    (read first when the latest snapshot is not a reading of it)."""
    chosen, latest = warehouse.setting(), store.latest_snapshot(conn)
    if not chosen.url:
        return latest, conn.cursor()
    engine = warehouse.open_engine(chosen)
    if not warehouse.is_reading_of(latest, chosen):
        latest = warehouse.read(conn, engine, chosen, access.command_line().name)
        print(f"Read the warehouse ({chosen.describe}) as snapshot {latest.id}.", file=sys.stderr)
    return latest, engine


def _file_only(what: str) -> None:
    """Refuse a command about the DuckDB file while the app's own tables live in the warehouse."""
    chosen = warehouse.setting()
    if warehouse.shares_state(chosen):
        raise KpiError(f"{what} is about the DuckDB file, but with KPI_ENGINE set to a PostgreSQL warehouse the data "
                       f"and the app's own tables are there ({chosen.describe}; state in schema "
                       f"{warehouse.state_schema(chosen)}): back it up with the warehouse's own tools (pg_dump).")


def _init(args: argparse.Namespace) -> int:
    _file_only("kpicore init")
    path = store.db_path(args.db)
    if args.force and path.exists():
        path.unlink()
    existed = path.exists()
    conn = _connect(args, sample=not args.empty)
    if args.empty and existed:
        actions.start_empty(conn, access.command_line())
    snapshot = store.latest_snapshot(conn)
    print(f"{path}: snapshot {snapshot.id} ({snapshot.note})")
    return 0


def _values(args: argparse.Namespace, catalog: Catalog) -> tuple[KpiValues, Period, Catalog]:
    """KPI values of the latest snapshot for the grain, the period asked for (default: latest complete), and the
    catalog with the targets in force in that snapshot."""
    grain = Grain(args.grain)
    conn = _connect(args)
    snapshot, engine = _latest(conn)
    if store.sample_tables(conn, snapshot):
        print(SAMPLE_LINE, file=sys.stderr)
    values = kept.values(conn.cursor(), catalog, snapshot.id, snapshot.schema, grain,
                         loaded=store.loaded(conn, snapshot), engine=engine)
    period = values.check(parse_period(args.period, grain)) if args.period else values.latest()
    return values, period, targets.catalog_for(conn, catalog, snapshot.id)


def _results(args: argparse.Namespace, catalog: Catalog) -> list[KpiResult]:
    if args.team and args.team != CUSTOMER:
        catalog.team(args.team)
    values, period, catalog = _values(args, catalog)
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
        target = format_value(r.target, r.kpi.unit, catalog.currency)  # targets are in the catalog's currency
        rows.append([
            r.kpi.label, r.kpi.team or "", r.period.label, format_value(r.value, r.kpi.unit, r.currency, r.target),
            f"{format_value(r.comparison, r.kpi.unit, r.currency)} ({r.comparison_period.label})",
            format_change(r) or "–", target,
            r.status.value, r.as_of.isoformat() if r.as_of else "–",
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {3, 4, 5, 6}
    lines = [f"KPIs for {first.period.label}; cohort KPIs show their latest mature cohort"]
    for row in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    notes = [f"  {r.kpi.label}: {r.note}" for r in results if r.note]
    return "\n".join(lines + (["", "Notes:", *notes] if notes else []))


def _tensions(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.catalog)
    values, period, catalog = _values(args, catalog)
    found = spread_over_teams(find_tensions(catalog, values, period, Comparison(args.comparison)))
    if args.format == "json":
        print(json.dumps([tension_record(t) for t in found], indent=2))
        return 0
    print(f"Tensions in {period.label} (against the {Comparison(args.comparison).label}): {len(found)}")
    for tension in found:
        teams = " vs ".join(dict.fromkeys(tension.team_labels))
        stake = ", ".join(o.label for o in tension.at_stake) or "–"
        print(f"\n[{tension.kind.value}] {tension.kpi.label} vs {tension.counterweight.label} ({teams}); "
              f"at stake: {stake}\n  {tension.sentence}\n  {tension.rarity}")
    return 0


def _report(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.catalog)
    team = args.team
    if team is not None:
        catalog.team(team)
    values, period, catalog = _values(args, catalog)
    comparison = Comparison(args.comparison)
    with _connect(args) as conn:
        snapshot = store.latest_snapshot(conn)
        notes = checkins.on(checkins.of_grain(conn, period.grain), period=period)
    card = build_scorecard(catalog, values, period, comparison)
    found = spread_over_teams(find_tensions(catalog, values, period, comparison))
    view = View(period.grain, period.label, comparison, snapshot.id)
    made = report.build(catalog, values, card, found, notes,
                        report.facts_line(values, period, comparison, NO_FILTERS, snapshot.id, snapshot.note),
                        view.link(period, team or "", origin=args.origin), team)
    data = report.render(made, args.format)
    if args.out is None and args.format == "md":
        print(data.decode("utf-8"), end="")
        return 0
    out = Path(args.out or report.file_name(period, team, args.format))
    out.write_bytes(data)
    print(f"{out}: {made.title} ({args.format}, {len(data):,} bytes)")
    return 0


def _hash_password(args: argparse.Namespace) -> int:
    import getpass

    password = getpass.getpass("Editor password (10 characters or more): ")
    if getpass.getpass("The same again: ") != password:
        raise BadParameter("The two passwords differ; nothing was printed.")
    print("[kpi]")
    print(f'editor_password_hash = "{access.hash_password(password)}"')
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
    catalog = load_catalog(args.catalog)
    conn = _connect(args)
    uploads = []
    copies = workdir("load")  # removed below, or by the next command if this one is killed
    try:
        for name in args.files:
            path = Path(name)
            if not path.is_file():
                raise BadFile(name, "does not exist or is not a file.")
            raw = read_file(path, workdir=copies)
            upload = Upload(raw, _plan(conn, raw, args), Mode(args.mode), args.as_of)
            _check(upload)
            uploads.append(upload)
        note = f"kpicore load {' '.join(Path(f).name for f in args.files)}"
        chosen = warehouse.setting()
        result = actions.import_where_the_data_is(conn, access.command_line(), chosen,
                                                  lambda: warehouse.open_engine(chosen), uploads, note,
                                                  keep_sample=args.keep_sample)
    finally:
        shutil.rmtree(copies, ignore_errors=True)
    for file_report in result.files:
        print(report_text(file_report, catalog))
    if result.emptied:
        print(started_empty(result.emptied, store.sample_snapshot(conn)))
    if args.save_mapping:
        actions.save_mapping(conn, access.command_line(), args.save_mapping, to_saved(uploads[0].plan, uploads[0].raw))
        print(f"Saved the mapping as '{args.save_mapping}'.")
    print(f"Snapshot {result.snapshot.id} created.")
    if args.precompute:
        _precompute(conn, catalog, result.snapshot, _latest(conn)[1])
    return 0


def _precompute(conn: duckdb.DuckDBPyConnection, catalog: Catalog, snapshot: store.Snapshot,
                engine: Engine | None = None) -> None:
    """Compute the dashboard's default view (month, no filters) of a new snapshot and keep it in the database,
    so the first visitor does not wait for it."""
    took = _keep(conn, catalog, snapshot, Grain.MONTH, NO_FILTERS, store.loaded(conn, snapshot), engine)
    print(f"Computed the KPIs of snapshot {snapshot.id} for the dashboard ({took:.1f} s).")


def _keep(conn: duckdb.DuckDBPyConnection, catalog: Catalog, snapshot: store.Snapshot, grain: Grain,
          filters: Filters, loaded: Mapping[str, Loaded], engine: Engine | None = None) -> float:
    """Compute (on `engine`, the database itself if None) and keep one view of a snapshot; the seconds it took."""
    started = time.perf_counter()
    kept.values(conn.cursor(), catalog, snapshot.id, snapshot.schema, grain, filters, loaded, engine)
    return time.perf_counter() - started


def _precompute_views(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.catalog)
    conn = _connect(args)
    snapshot, engine = _latest(conn)
    loaded = store.loaded(conn, snapshot)
    grains = [Grain(g) for g in args.grain] if args.grain else [Grain.MONTH]
    wanted = kept.views(filter_options(engine, snapshot.schema), grains, args.filters)
    for grain, filters in wanted:
        what = f"{grain.value}, {filters.describe() or 'no filters'}"
        if kept.is_kept(conn, catalog, snapshot.id, grain, filters):
            print(f"{what}: kept already")
            continue
        print(f"{what}: computed in {_keep(conn, catalog, snapshot, grain, filters, loaded, engine):.1f} s")
    print(f"Snapshot {snapshot.id}: {len(wanted)} view(s) kept for the dashboard.")
    return 0


def _check(upload: Upload) -> None:
    """Refuse to guess: check_plan, with what the command line adds (guesses too unsure to use and the day a
    status-only export seems to describe, as hints never used unless given), and columns only guessed."""
    raw, plan = upload.raw, upload.plan
    problems = []
    try:
        check_plan(upload)
    except BadFile as error:
        hints = [f'perhaps --map {m.canonical}="{m.source}" ({m.confidence:.0%} sure)'
                 for c in plan.missing_required if (m := plan.suggestion_for(c)) is not None]
        if upload.may_be_status_only and not upload.status_only and (day := export_date(raw)) is not None:
            hints.append(f"{day.source} suggests --as-of {day.day.isoformat()}")
        problems.append(str(error).removeprefix(f"{raw.name}: ") + (f" Hints: {'; '.join(hints)}." if hints else ""))
    if plan.unsure:
        guesses = "; ".join(f"{m.canonical} <- '{m.source}' ({m.confidence:.0%} sure)" for m in plan.unsure)
        first = plan.unsure[0]
        problems.append(f"{'These' if problems else f'It is read as {plan.table}, but these'} columns are guesses: "
                        f"{guesses}. Confirm each with --map, e.g. --map {first.canonical}=\"{first.source}\".")
    if problems:
        raise BadFile(raw.name, " ".join(problems))


def _plan(conn: duckdb.DuckDBPyConnection, raw: RawFile, args: argparse.Namespace) -> Plan:
    """The mapping for a file: recognised, then a saved mapping, then --map and --dates."""
    plan, saved = store.plan_for(conn, raw, args.table, args.mapping)
    if saved and not args.mapping:
        print(printable(f"{raw.name}: using the saved mapping {store.mapping_origin(conn, saved)}."))
    elif not saved and args.table is None and plan.confidence < 0.5:
        raise BadFile(raw.name, f"does not look like any known table (best guess: {plan.table}). "
                                f"Pass --table ({', '.join(TABLES)}).")
    for item in args.map:
        canonical, _, source = item.partition("=")
        if TABLES[plan.table].column(canonical) is None:
            raise BadParameter(f"--map {item}: {plan.table} has no column '{canonical}' "
                               f"({', '.join(TABLES[plan.table].column_names)}).")
        if source and source not in raw.columns:
            raise BadParameter(f"--map {item}: {raw.name} has no column '{source}' ({', '.join(raw.columns)}).")
        plan = remap(plan, raw, canonical, source or None)
    if args.dates:
        for column in plan.ambiguous_dates:
            plan = plan.with_date_order(column, DateOrder(args.dates))
    return plan


def _warehouse_setting() -> warehouse.Setting:
    chosen = warehouse.setting()
    if not chosen.url:
        raise BadParameter("KPI_ENGINE is not set, so KPIs are computed in the embedded DuckDB file. Set it to the "
                           "warehouse (postgresql://user@host:port/db, spark://host:port or local[*]) first.")
    return chosen


def _warehouse_views(args: argparse.Namespace) -> int:
    chosen = _warehouse_setting()
    sources = warehouse.load_mapping(Path(args.mapping))
    engine = warehouse.open_engine(chosen)
    made = warehouse.make_views(engine, sources, chosen.schema, Path(args.mapping).name)
    mapped = [name for name in made if name in sources]
    print(f"Views made in {chosen.describe}: {', '.join(mapped)} from your tables; "
          f"{', '.join(n for n in made if n not in sources) or 'none'} empty.")
    return 0


def _warehouse_read(args: argparse.Namespace) -> int:
    chosen = _warehouse_setting()
    conn = _connect(args)
    made = actions.read_warehouse(conn, access.command_line(), warehouse.open_engine(chosen), chosen)
    for name, table in store.tables(conn, made).items():
        print(f"{name}: {table.rows:,} rows")
    print(f"Snapshot {made.id}: {made.note}.")
    return 0


def _drop(args: argparse.Namespace) -> int:
    emptied = actions.drop_tables(_connect(args), access.command_line(), args.tables)
    print(f"Snapshot {emptied.id} created: {', '.join(args.tables)} empty. 'kpicore restore {emptied.id - 1}' "
          "brings the rows back.")
    return 0


def _sql(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.catalog)
    grain = Grain(args.grain)
    conn = _connect(args)
    snapshot, engine = _latest(conn)  # the periods of the data the app shows, wherever it is computed
    periods = kept.values(conn.cursor(), catalog, snapshot.id, snapshot.schema, grain,
                          loaded=store.loaded(conn, snapshot), engine=engine).periods
    if not periods:
        raise KpiError("The latest snapshot has no data, so there is no period to write the query for.")
    text, params = engines.kpi_sql(catalog, args.kpi, grain, periods, args.schema, args.engine)
    checked = "verified against DuckDB here" if args.engine in engines.VERIFIED else "generated, not verified here"
    print(f"-- {args.kpi} per {grain.value}, {periods[0].label} to {periods[-1].label}, {args.engine} SQL "
          f"({checked}); parameters at the end")
    if "PERCENTILE" in text.upper() or "percentile" in text:
        print(f"-- medians and quartiles: {engines.PERCENTILES[args.engine]}")
    print(text + ";")
    for name, value in params.items():
        print(f"-- ${name} = {value!r}")
    return 0


def _target(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.catalog)
    conn = _connect(args)
    if args.value is None:
        snapshot = store.latest_snapshot(conn)
        targets.targeted(catalog, args.kpi)
        judged = targets.catalog_for(conn, catalog, snapshot.id)
        print(printable(targets.describe(judged, args.kpi, targets.in_force(conn, snapshot.id).get(args.kpi))))
        return 0
    if args.value == "catalog":
        value = None
    else:
        try:
            value = float(args.value)
        except ValueError:
            raise BadParameter(f"'{args.value}' is not a number: give the monthly target (0.25 for 25%) or "
                               "'catalog'.") from None
    made, change = actions.change_target(conn, access.command_line(), catalog, args.kpi, value, args.at_risk)
    print(printable(f"Snapshot {made.id} created: {made.note}."))
    return 0


def _restore(args: argparse.Namespace) -> int:
    restored = actions.restore(_connect(args), access.command_line(), args.snapshot)
    print(f"Snapshot {restored.id} created: {restored.note}.")
    return 0


def _backup(args: argparse.Namespace) -> int:
    _file_only("kpicore backup")
    target = store.db_path(args.db)
    with _connect(args) as conn:
        count = store.backup(conn, target, Path(args.file))
    print(f"{args.file}: a copy of {target} with {count} snapshot(s). 'kpicore --db {target} restore-backup "
          f"{args.file}' puts it back.")
    return 0


def _restore_backup(args: argparse.Namespace) -> int:
    _file_only("kpicore restore-backup")
    target = store.db_path(args.db)
    kept_aside = store.restore_backup(target, Path(args.file), wait=WAIT_SECONDS)
    aside = f" The file it replaced is kept as {kept_aside}." if kept_aside.exists() else ""
    print(f"{target} is now the backup {args.file}.{aside}")
    return 0


def _snapshots(args: argparse.Namespace) -> int:
    conn = _connect(args)
    for snap, tables in store.snapshots(conn):
        by = f"  by {snap.author}" if snap.author else ""
        print(printable(f"Snapshot {snap.id}  {snap.created_at:%Y-%m-%d %H:%M}  {snap.note}{by}"))
        for table in tables:
            mark = "*" if table.changed else " "
            print(printable(f"  {mark} {table.table:<14} {table.rows:>9,} rows  {table.source}"))
    print("(* = changed in that snapshot)")
    return 0


def _sample(args: argparse.Namespace) -> int:
    if not args.scale > 0:
        print(f"--scale must be a positive number, not {args.scale:g}.", file=sys.stderr)
        return 2
    from kpicore import sample  # the generator needs pandas; no other command does

    paths = sample.write_csvs(sample.generate(seed=args.seed, scale=args.scale), Path(args.out))
    print(f"Wrote {len(paths)} files to {args.out}")
    return 0


if __name__ == "__main__":  # python -m kpicore.cli works as the kpicore command does
    sys.exit(main())
