"""Files to tables: typed conversion in DuckDB, row-level problems, and the import into a new snapshot."""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from enum import Enum
from pathlib import Path

import duckdb

from kpicore.errors import BadFile, first_line
from kpicore.files import RawFile, TextCounts, needs_sequential, not_utf8, scratch, text_counts
from kpicore.mapping import DateOrder, Plan, currency_of, date_order, date_share
from kpicore.model import (
    FALLBACKS,
    FALSE_WORDS,
    PLANNED,
    REFERENCES,
    STATUS_DATES,
    TABLES,
    TRUE_WORDS,
    VOCABULARIES,
    Column,
    ColumnType,
    Table,
)
from kpicore.sql import Bind, Params, quote
from kpicore.store import (
    Snapshot,
    Stored,
    commit_snapshot,
    committing,
    disk_full,
    latest_snapshot,
    out_of_space,
    release_tables,
    reserve_table,
    sample_tables,
    tables,
)

MAX_PROBLEMS = 1000
_ISO_FORMATS = ["%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d", "%Y-%m"]
# Two-digit years first: %Y would read 31.10.26 as the year 26.
_ORDER_FORMATS = {
    DateOrder.ISO: [],
    DateOrder.DAY_FIRST: ["%d.%m.%y %H:%M:%S", "%d.%m.%y %H:%M", "%d.%m.%y", "%d/%m/%y %H:%M:%S", "%d/%m/%y %H:%M",
                          "%d/%m/%y", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d/%m/%Y %H:%M:%S",
                          "%d/%m/%Y %H:%M", "%d/%m/%Y", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y",
                          "%m.%Y", "%m/%Y"],
    DateOrder.MONTH_FIRST: ["%m/%d/%y %H:%M:%S", "%m/%d/%y %H:%M", "%m/%d/%y %I:%M %p", "%m/%d/%y %I:%M%p", "%m/%d/%y",
                            "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %I:%M%p",
                            "%m/%d/%Y", "%m-%d-%Y %H:%M:%S", "%m-%d-%Y %H:%M", "%m-%d-%Y", "%m/%Y"],
}
_EXAMPLES = {DateOrder.ISO: "2026-10-31", DateOrder.DAY_FIRST: "31.10.2026", DateOrder.MONTH_FIRST: "10/31/2026"}


class Mode(Enum):
    """What an import does with the rows already stored for its table."""

    REPLACE = "replace"
    APPEND = "append"


@dataclass(frozen=True)
class Problem:
    """One rejected value: where it is, what it says, and why it cannot be used."""

    row: int
    column: str
    value: str
    reason: str


@dataclass(frozen=True)
class FileReport:
    """What happened to one file."""

    file: str
    table: str
    mode: Mode
    rows: int
    imported: int
    rejected: int
    problems: tuple[Problem, ...]
    warnings: tuple[str, ...]
    columns: tuple[str, ...] = ()  # the canonical columns the file gave the table (mapped or stood in for)
    as_of: date | None = None  # the day a status-only export describes
    currency: str | None = None  # the currency its amounts are written in, where they show one


@dataclass(frozen=True)
class ImportResult:
    """The new snapshot, a report per file, and the sample tables it emptied (started from empty tables)."""

    snapshot: Snapshot
    files: tuple[FileReport, ...]
    emptied: tuple[str, ...] = ()


@dataclass(frozen=True)
class Upload:
    """One file to import: the file, how it maps, and replace or append."""

    raw: RawFile
    plan: Plan
    mode: Mode = Mode.REPLACE
    as_of: date | None = None  # given by the user for a status-only export (states, no dates): the day it describes

    @property
    def status_only(self) -> bool:
        """Whether the user said the file is a status-only export (by giving the day it describes)."""
        return self.as_of is not None

    @property
    def may_be_status_only(self) -> bool:
        """Whether the file lacks only required dates, which the day a status-only export describes can stand in
        for (a customer list with a churn flag but no churn dates, a deal list with stages but no close dates).
        A deal list with close dates is dated: its missing creation date must be mapped."""
        missing = self.plan.missing_required
        table = TABLES[self.plan.table]
        return bool(missing) and self.plan.table in STATUS_DATES and all(
            table.column(name).type.is_time for name in missing) \
            and self.plan.source_of(STATUS_DATES[self.plan.table][0]) is None

    @property
    def columns(self) -> tuple[str, ...]:
        """The canonical columns this file gives its table: those mapped, and the date a status-only export's
        day stands in for."""
        mapped = {m.canonical for m in self.plan.columns if m.source is not None}
        if self.status_only and self.plan.table in STATUS_DATES:
            mapped.add(STATUS_DATES[self.plan.table][0])
        return tuple(c.name for c in TABLES[self.plan.table].columns if c.name in mapped)


def check_plan(upload: Upload) -> None:
    """Refuse a plan that would guess: missing required columns, unsure columns, ambiguous dates."""
    plan, name = upload.plan, upload.raw.name
    missing = ", ".join(plan.missing_required)
    mapping = f'map a column onto it (in the app, or with --map {plan.missing_required[0]}="Source column")' \
        if plan.missing_required else ""
    if upload.status_only and not upload.may_be_status_only:
        what = (f"it has no column for {missing}" if plan.missing_required else "it has every required date")
        raise BadFile(name, f"cannot be imported as a status-only {plan.table} export: {what}. Only a customer or "
                            "deal list that lacks its dates is one. Leave out the export date, and "
                            f"{mapping or 'import it as it is'}.")
    if plan.missing_required and not upload.status_only:
        if upload.may_be_status_only:
            raise BadFile(name, f"is read as {plan.table}, but has no column for the required {missing}. Either "
                                f"{mapping}, or, if the file is a status-only export (states such as a churn flag, no "
                                "dates), say so by giving the day it describes (in the app, or with --as-of "
                                "2026-10-31).")
        raise BadFile(name, f"is read as {plan.table}, but has no column for the required {missing}: {mapping}, "
                            "or pick another table.")
    if plan.ambiguous_dates:
        column = plan.ambiguous_dates[0]
        raise BadFile(name, "has dates like 01/02/2026 that could be day/month or month/day. Say which "
                            "(in the app, or on the command line with --dates day_first or --dates month_first).",
                      column=plan.source_of(column))


@dataclass(frozen=True)
class ExportDate:
    """A day a file suggests it describes, and where that came from (for a status-only export)."""

    day: date
    source: str


_NAMED_DAY = re.compile(r"(?<!\d)(\d{4})[-_.]?(\d{2})[-_.]?(\d{2})(?!\d)|(?<!\d)(\d{2})\.(\d{2})\.(\d{4})(?!\d)")


def export_date(raw: RawFile) -> ExportDate | None:
    """The day a status-only export most likely describes: the latest date in it, else a date in its name, else
    the day the workbook was last saved; None when the file shows none (the user must then say)."""
    latest = _latest_date(raw)
    if latest is not None:
        return latest
    for found in _NAMED_DAY.finditer(raw.name):
        year, month, day = (found.group(1), found.group(2), found.group(3)) if found.group(1) else \
            (found.group(6), found.group(5), found.group(4))
        try:
            return ExportDate(date(int(year), int(month), int(day)), "its file name")
        except ValueError:
            continue
    if raw.saved is not None:
        return ExportDate(raw.saved, "the day the workbook was last saved")
    return None


def _latest_date(raw: RawFile) -> ExportDate | None:
    """The latest date in any column of the file whose first rows read as dates."""
    best: ExportDate | None = None
    for i, name in enumerate(raw.columns):
        sample = [row[i].strip() for row in raw.sample if i < len(row) and row[i] and row[i].strip()]
        order = date_order(sample) if sample else DateOrder.AMBIGUOUS
        if not sample or order is DateOrder.AMBIGUOUS or date_share(sample) < 0.8:
            continue
        params = Params(raw.read_params())
        formats = ", ".join(params.bind(f) for f in _ISO_FORMATS + _ORDER_FORMATS[order])
        cleaned = f"regexp_replace(trim(c{i}), '(Z|[+-][0-9]{{2}}:?[0-9]{{2}})$', '')"
        found = scratch(f"SELECT MAX(try_strptime({cleaned}, [{formats}])) FROM {raw.read_sql()}", params)[0][0]
        if found is not None and (best is None or found.date() > best.day):
            best = ExportDate(found.date(), f"the latest date in '{name}'")
    return best


def import_files(conn: duckdb.DuckDBPyConnection, uploads: Sequence[Upload], note: str,
                 progress: Callable[[float, str], None] | None = None, keep_sample: bool = True,
                 sample: bool = False, author: str | None = None) -> ImportResult:
    """Import every file into one new snapshot, all or nothing; BadFile if any file cannot be used.

    Without `keep_sample`, the sample tables that no file replaces are empty in the new snapshot (the user's
    own data starts from empty tables; the sample stays in the earlier snapshots). `sample`: these files are the
    bundled sample data.

    Each file is first staged as a new physical table in a statement of its own, so that its `rowid`s are
    final and number the file's rows (see staging_sql). No snapshot uses a staged table until the one
    transaction that checks every file and commits the snapshot; if anything fails, the staged tables are
    dropped again, and a killed import leaves them for `store.drop_unused_tables` at the next start.
    """
    for upload in uploads:
        check_plan(upload)
    tables = [u.plan.table for u in uploads]
    if len(set(tables)) != len(tables):
        twice = next(t for t in tables if tables.count(t) > 1)
        raise BadFile(", ".join(u.raw.name for u in uploads if u.plan.table == twice),
                      f"are all read as {twice}. Import one file per table at a time, or append them one by one.")
    staged = {u.plan.table: reserve_table(u.plan.table) for u in uploads}
    # lines and quotes are counted on a thread while DuckDB reads (it releases the GIL), see _check
    counter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kpi-counts")
    counts = {u.plan.table: counter.submit(text_counts, u.raw.path) for u in uploads}
    try:
        for index, upload in enumerate(uploads):
            if progress:
                progress(0.9 * index / len(uploads), f"Reading {upload.raw.name}")
            _stage(conn, upload, staged[upload.plan.table])
        if progress:
            progress(0.9, "Checking rows and references")
        result = _commit(conn, uploads, staged, counts, note, keep_sample, sample, author)
    except BaseException:
        for physical in staged.values():
            conn.execute(f"DROP TABLE IF EXISTS {quote(physical)}")
        raise
    finally:
        release_tables(staged.values())
        counter.shutdown(wait=False, cancel_futures=True)
    if progress:
        progress(1.0, "Done")
    return result


def _stage(conn: duckdb.DuckDBPyConnection, upload: Upload, physical: str) -> None:
    """Read a file into the new physical table `physical` (committed, used by no snapshot yet).

    Read again as text when DuckDB's reader refused a timestamp, with one thread when a quoted line break lies
    further down than the sample, or from a UTF-8 copy when bytes below the part `read_file` checked are not
    UTF-8 (`RawFile.transcoded`). An interrupt is never read again.
    """
    raw, plan = upload.raw, upload.plan
    sql, params = staging_sql(raw, plan, physical, upload.as_of)
    try:
        conn.execute(sql, params)
    except duckdb.InterruptException:
        raise
    except duckdb.Error as error:
        if "timestamp_format" in params:
            return _stage(conn, replace(upload, raw=raw.as_text()), physical)
        if raw.parallel and needs_sequential(error):
            return _stage(conn, replace(upload, raw=raw.sequential()), physical)
        if raw.encoding == "utf-8" and not_utf8(error):
            return _stage(conn, replace(upload, raw=raw.transcoded()), physical)
        if out_of_space(error):
            raise disk_full(Path(conn.execute("SELECT path FROM duckdb_databases() WHERE database_name = "
                                              "current_database()").fetchone()[0] or "."), raw.name) from None
        detail = first_line(error, 300)
        raise BadFile(raw.name, f"could not be read completely ({detail}). Check that every row has the "
                                "same columns and export it again.") from None


def _commit(conn: duckdb.DuckDBPyConnection, uploads: Sequence[Upload], staged: dict[str, str],
            counts: dict[str, Future[TextCounts]], note: str, keep_sample: bool, sample: bool,
            author: str | None) -> ImportResult:
    """In one transaction: check each staged file, mark repeated ids, and record the new snapshot (one commit at a
    time, store.committing)."""
    with committing(conn) as snapshot_id:
        previous = latest_snapshot(conn, local=True)
        reports = [_check(conn, u, staged[u.plan.table], counts[u.plan.table].result(), previous)
                   for u in uploads]
        stored = {r.table: Stored(staged[r.table], r.file, _columns(u, previous, conn), r.as_of, r.currency,
                                  sample) for u, r in zip(uploads, reports, strict=True)}
        emptied = () if keep_sample or previous is None else \
            tuple(t for t in sample_tables(conn, previous) if t not in stored)
        snapshot = commit_snapshot(conn, snapshot_id, stored, note, previous, emptied, author)
        reports = [_with_warnings(conn, r, snapshot) for r in reports]
    return ImportResult(snapshot, tuple(reports), emptied)


def _columns(upload: Upload, previous: Snapshot | None, conn: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
    """The canonical columns the stored table will have: the file's, and, when it is appended to rows already
    stored, those rows' columns too."""
    if upload.mode is Mode.REPLACE or previous is None:
        return upload.columns
    before = tables(conn, previous)[upload.plan.table]
    if before.rows == 0:
        return upload.columns
    had = set(TABLES[upload.plan.table].column_names) if before.stored.columns is None else set(before.stored.columns)
    return tuple(c for c in TABLES[upload.plan.table].column_names if c in had | set(upload.columns))


def _check(conn: duckdb.DuckDBPyConnection, upload: Upload, physical: str, counts: TextCounts,
           previous: Snapshot | None) -> FileReport:
    """Count, mark repeated ids, list problems and append the previous rows; BadFile if no row can be used.

    `counts`: the file's lines and quotes. DuckDB's lenient reader reads the lines below a quote that is never
    closed into one cell (see RawFile.broken_quote); the file is checked for such a quote when its quotes are
    odd or it has more lines than DuckDB's rows. The lines also tell whether DuckDB skipped empty lines.
    """
    raw, plan = upload.raw, upload.plan
    table = TABLES[plan.table]
    records, rows, valid = conn.execute(
        f"SELECT COUNT(*), COUNT(*) FILTER (WHERE NOT __blank), COUNT(*) FILTER (WHERE __valid) FROM {quote(physical)}"
    ).fetchone()
    suspect = counts.quotes % 2 or counts.lines != raw.header_row + records
    if raw.encoding != "xlsx" and suspect and (broken := raw.broken_quote()) is not None:
        row, what = broken
        raise BadFile(raw.name, f'has a quote (") in row {row} that {what}, so lines or text after it would be read '
                                'wrongly. Close that quote, write quotes inside a quoted cell twice (""), and upload '
                                "the file again.")
    duplicates = _mark_duplicates(conn, physical, table)
    imported = valid - duplicates
    if rows == 0:
        raise BadFile(raw.name, f"has a header but no data rows. Nothing was imported. To empty the {plan.table} "
                                f"table on purpose, use 'kpicore drop {plan.table}' or 'Empty it' on the Data page.")
    problems = _problems(conn, physical, plan, raw, records, counts.lines)
    if imported == 0:
        first = problems[0] if problems else None
        detail = f" The first problem: {first.reason} (row {first.row}, column '{first.column}')." if first else ""
        raise BadFile(raw.name, f"has no row that could be imported.{detail}")
    if upload.mode is Mode.APPEND and previous is not None and table.key:
        _append_previous(conn, physical, table, previous)
    warnings = (f"{duplicates} row(s) repeat an id of a later row in the file; the later row was kept.",) \
        if duplicates else ()
    return FileReport(raw.name, plan.table, upload.mode, rows, imported, rows - imported - duplicates,
                      tuple(problems), warnings, upload.columns, upload.as_of, currency_of(raw, plan))


# ISO timestamp formats DuckDB's reader may parse itself. For a cell that one of them reads, no format before
# it in _ISO_FORMATS reads the cell too (each earlier one needs more fields), so both ways give the same value.
_READER_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")


def staging_sql(raw: RawFile, plan: Plan, physical: str, as_of: date | None = None) -> tuple[str, dict[str, object]]:
    """CREATE TABLE for a file's rows, in file order: typed canonical columns, the row's problems, validity.

    Layered so that each cell is converted once: the cells as text, then typed, then a problem wherever a cell
    has text but no typed value (`__problems`, a list that is NULL for rows without any). The table keeps the
    file's order (DuckDB preserves insertion order), so a row's `rowid` plus the header row gives its row number
    as a spreadsheet shows it; rows with no cell at all (;;; or an empty Excel row) stay in the table as
    `__blank`, so they keep that numbering too.
    Timestamp columns whose sample is ISO are parsed by DuckDB's reader (the file is then read on every core
    without a text copy of those cells); a cell that does not fit makes the statement fail, and the import
    reads the file again as text (`RawFile.as_text`). Repeated ids are marked afterwards (`_mark_duplicates`).
    With `as_of` (a status-only export), required dates may be missing and the export date stands in for
    the date of the rows whose state implies it (see model.STATUS_DATES).
    """
    table = TABLES[plan.table]
    params = Params(raw.read_params())
    index = {name: i for i, name in enumerate(raw.columns)}
    for column in table.columns:
        if column.required and plan.source_of(column.name) is None and as_of is None:
            raise BadFile(raw.name, f"has no column for the required {column.name}.")
    mapped = [c for c in table.columns if plan.source_of(c.name) is not None]
    reader = _reader_timestamps(raw, plan, mapped)
    read_by_duckdb = {index[plan.source_of(c.name)] for c in reader}
    if reader:
        params["timestamp_format"] = next(iter(reader.values()))

    def cell(column: Column) -> str:
        i = index[plan.source_of(column.name)]
        return f"src.c{i}" if column in reader else f"NULLIF(trim(src.c{i}), '')"

    def text_of(column: Column) -> str:
        return quote("__t_" + column.name)

    present = " OR ".join(f"src.c{i} IS NOT NULL" for i in range(len(raw.columns)))
    texts = [f"{cell(c)} AS {text_of(c)}" for c in mapped]
    cells = f"SELECT NOT ({present}) AS __blank{''.join(', ' + t for t in texts)} " \
            f"FROM {raw.read_sql(read_by_duckdb, params.get('timestamp_format'))} AS src"
    numbers = [f"{_number(c, text_of(c), plan)} AS {quote('__n_' + c.name)}" for c in mapped if c.type.is_number]
    conversions = {c: text_of(c) if c in reader else _convert(c, text_of(c), plan, params, raw) for c in mapped}
    converted = [f"{conversions[c]} AS {quote(c.name)}" for c in mapped]
    typed = [quote(c.name) if c in mapped else f"CAST(NULL AS {c.type.sql}) AS {quote(c.name)}"
             for c in table.columns]
    # a cell kept as text or parsed by DuckDB's reader has a value whenever it is not empty
    errors = {c: _error(c, i, text_of(c), quote(c.name), plan, conversions[c] != text_of(c))
              for i, c in enumerate(mapped)}
    problem_columns, fine, problems = _problem_sql({c.name: e for c, e in errors.items() if e is not None})
    values = f"SELECT *{''.join(', ' + c for c in converted)} FROM (SELECT *{''.join(', ' + n for n in numbers)} " \
             f"FROM ({cells}))"
    inner = f"SELECT __blank, {', '.join(typed + problem_columns)} FROM ({values})"
    if as_of is not None:
        column, applies = STATUS_DATES[plan.table]
        params["as_of"] = as_of
        inner = (f"SELECT * REPLACE (COALESCE({quote(column)}, CASE WHEN {applies} THEN CAST($as_of AS TIMESTAMP) "
                 f"END) AS {quote(column)}) FROM ({inner})")
    columns = ", ".join(quote(c.name) for c in table.columns)
    # the id's hash, for _mark_duplicates: computed while the rows stream by, it saves hashing them again
    hashed = f", hash({quote(table.key)}) AS __key_hash" if table.key else ""
    sql = (f"CREATE TABLE {quote(physical)} AS SELECT __blank, {columns}, {problems} AS __problems, "
           f"NOT __blank AND {fine} AS __valid{hashed} FROM ({inner})")
    return sql, params


def _problem_sql(errors: dict[str, str]) -> tuple[list[str], str, str]:
    """From each column's problem expression: the select items that name them, the condition that a row has
    none, and the row's list of problems (NULL for most rows: one such column costs less to store than one
    mostly empty column per mapped column)."""
    names = {column: quote("__e_" + column) for column in errors}
    items = [f"{expression} AS {names[column]}" for column, expression in errors.items()]
    fine = " AND ".join(f"{name} IS NULL" for name in names.values()) or "TRUE"
    if not errors:
        return items, fine, f"CAST(NULL AS {_PROBLEM}[])"
    found = ", ".join(names.values())
    return items, fine, f"CASE WHEN {fine} THEN NULL ELSE list_filter([{found}], lambda p: p IS NOT NULL) END"


def _reader_timestamps(raw: RawFile, plan: Plan, mapped: list[Column]) -> dict[Column, str]:
    """The mapped timestamp columns DuckDB's reader parses, with their one format (all share it; none if the
    file is read as text or no timestamp column's sample is ISO)."""
    if not raw.typed:
        return {}
    leading = {}
    for column in mapped:
        if column.type is ColumnType.TIMESTAMP and plan.date_orders.get(column.name, DateOrder.ISO) is DateOrder.ISO:
            lead = _leading_format(raw, plan, column, _ISO_FORMATS)
            if lead and lead[1] in _READER_FORMATS:
                leading[column] = lead[1]
    if not leading:
        return {}
    chosen = Counter(leading.values()).most_common(1)[0][0]  # the reader takes one timestamp format per file
    return {c: f for c, f in leading.items() if f == chosen}


def _mark_duplicates(conn: duckdb.DuckDBPyConnection, physical: str, table: Table) -> int:
    """List every valid row but the last of its id in `duplicate_rows` (rejected rows are not counted); how many.

    Ids are first grouped by their 64-bit hash (cheaper than grouping the text); only the rows whose hash
    repeats are compared by id. The staged table is never updated: an UPDATE would make DuckDB rewrite it.
    """
    if not table.key:
        return 0
    key, staged = quote(table.key), quote(physical)
    conn.execute(
        f"INSERT INTO duplicate_rows WITH repeated AS (SELECT __key_hash AS h FROM {staged} WHERE __valid "
        f"GROUP BY 1 HAVING COUNT(*) > 1), candidates AS (SELECT rowid AS r, {key} AS k FROM {staged} AS s "
        f"SEMI JOIN repeated ON s.__key_hash = repeated.h WHERE s.__valid) "
        f"SELECT $physical, c.r FROM candidates AS c JOIN (SELECT k, max(r) AS last FROM candidates GROUP BY k) "
        f"AS d ON c.k = d.k WHERE c.r < d.last", {"physical": physical})
    return conn.execute("SELECT COUNT(*) FROM duplicate_rows WHERE physical = ?", [physical]).fetchone()[0]


def _convert(column: Column, text: str, plan: Plan, params: Params, raw: RawFile | None = None) -> str:
    """SQL turning a text cell into the canonical type (NULL when it cannot be read)."""
    bind = params.bind
    kind = column.type
    if kind in (ColumnType.TIMESTAMP, ColumnType.MONTH):
        order = plan.date_orders.get(column.name, DateOrder.ISO)
        formats = _ISO_FORMATS + _ORDER_FORMATS.get(order, [])
        cleaned = f"regexp_replace({text}, '(Z|[+-][0-9]{{2}}:?[0-9]{{2}})$', '')"
        parsed = f"try_strptime({cleaned}, [{', '.join(bind(f) for f in formats)}])"
        lead = _leading_format(raw, plan, column, formats) if raw is not None else None
        if lead:  # most cells have the sample's shape: one format, no regex; the full list for the others
            shape, first = lead
            fast = f"CASE WHEN {text} LIKE {bind(shape)} THEN try_strptime({text}, {bind(first)}) END"
            parsed = f"COALESCE({fast}, {parsed})"
        return f"CAST(date_trunc('month', {parsed}) AS DATE)" if kind is ColumnType.MONTH else parsed
    if kind.is_number:
        read = quote("__n_" + column.name)  # see _number
        number = f"CASE WHEN isfinite({read}) THEN {read} END"
        if kind is ColumnType.INTEGER:
            # TRY_CAST: a whole number beyond INTEGER (99999999999) is a rejected value, not a failed import
            number = f"CASE WHEN {number} = round({number}) THEN TRY_CAST({number} AS INTEGER) END"
        if column.bounds:
            low, high = column.bounds
            number = f"CASE WHEN {number} BETWEEN {low} AND {high} THEN {number} END"
        return number
    if kind is ColumnType.BOOLEAN:
        folded = f"lower({text})"
        trues = ", ".join(bind(w) for w in TRUE_WORDS)
        falses = ", ".join(bind(w) for w in FALSE_WORDS)
        # a count (Zendesk's "Reopens": 2) says yes when it is above 0
        return (f"CASE WHEN {folded} IN ({trues}) THEN TRUE WHEN {folded} IN ({falses}) THEN FALSE "
                f"WHEN TRY_CAST({text} AS INTEGER) > 0 THEN TRUE END")
    if column.values:
        return _vocabulary(column, text, plan, bind)
    return text


def _number(column: Column, text: str, plan: Plan) -> str:
    """SQL reading a number from a text cell: plain (1234.5, 1.2E+05) at once, else without currency signs,
    spaces and thousands separators, with a decimal comma where the column has one, and 5% as 0.05.
    NULL when it is no number; `_convert` takes only finite ones."""
    stripped = f"regexp_replace({text}, '[^0-9,.%+-]', '', 'g')"
    percent = f"CASE WHEN {text} LIKE '%\\%%' ESCAPE '\\' THEN 100.0 ELSE 1.0 END"
    if column.name in plan.decimal_comma:  # 1.234 is a thousand here, not what TRY_CAST reads
        digits = f"replace(replace(replace({stripped}, '.', ''), ',', '.'), '%', '')"
        number = f"TRY_CAST({digits} AS DOUBLE) / {percent}"
    else:
        digits = f"replace(replace({stripped}, ',', ''), '%', '')"
        number = f"COALESCE(TRY_CAST({text} AS DOUBLE), TRY_CAST({digits} AS DOUBLE) / {percent})"
    return number


_DIGITS = str.maketrans("0123456789", "_" * 10)


def _leading_format(raw: RawFile, plan: Plan, column: Column, formats: list[str]) -> tuple[str, str] | None:
    """(LIKE pattern, format) for the shape most of the sample's dates have, if the format list reads them all
    with one and the same format; else None.

    The pattern fixes every character position ('____-__-__ __:__:__'), so a cell that matches it has the fields
    of the sample's cells at the same places, and the first format of the list that reads them is this one.
    """
    source = plan.source_of(column.name)
    if source not in raw.columns:
        return None
    i = raw.columns.index(source)
    values = [row[i].strip(" ") for row in raw.sample if i < len(row) and row[i] is not None and row[i].strip(" ")]
    if not values:
        return None
    shaped = [(v.translate(_DIGITS), v) for v in values]  # each digit as '_'
    shape, count = Counter(form for form, _ in shaped).most_common(1)[0]
    if count < 0.5 * len(values) or not re.fullmatch(r"[_ .:/T-]+", shape):
        return None
    of_shape = [v for form, v in shaped if form == shape]
    checks = [f"{agg}(try_strptime(v, $f{k}) IS NOT NULL)"
              for agg in ("bool_and", "bool_or") for k in range(len(formats))]
    params: dict[str, object] = {"v": of_shape, **{f"f{k}": f for k, f in enumerate(formats)}}
    found = scratch(f"SELECT {', '.join(checks)} FROM unnest($v) AS a(v)", params)[0]
    every, some = found[:len(formats)], found[len(formats):]
    for k, form in enumerate(formats):  # the first format that reads any of them must read all of them
        if some[k]:
            return (shape, form) if every[k] else None
    return None


def _vocabulary(column: Column, text: str, plan: Plan, bind: Bind) -> str:
    """CASE mapping a tool's values (user's mapping first, then the known words) onto canonical values."""
    branches = [f"WHEN {text} = {bind(source)} THEN {bind(value)}"
                for source, value in plan.values.get(column.name, {}).items()]
    folded = f"regexp_replace(lower({text}), '[\\s_-]+', '', 'g')"  # as canonical_value: 'Closed - Won' is won
    for value, words in VOCABULARIES[column.values].items():
        squashed = sorted({w.replace(" ", "") for w in words})
        branches.append(f"WHEN {folded} IN ({', '.join(bind(w) for w in squashed)}) THEN {bind(value)}")
    fallback = FALLBACKS.get(column.values)
    otherwise = f"ELSE {bind(fallback)}" if fallback else ""
    return f"CASE WHEN {text} IS NULL THEN NULL {' '.join(branches)} {otherwise} END"


_PROBLEM = "STRUCT(col INTEGER, value VARCHAR, reason VARCHAR)"  # col: the column's place among the mapped ones


def _error(column: Column, col: int, text: str, expression: str, plan: Plan, converts: bool = True) -> str | None:
    """SQL giving {col, value, reason} when the cell cannot be used, else NULL (a blank row has no problem);
    None when no cell can be refused.

    Without `converts` (the cell is the value) only an empty required cell is a problem.
    """
    reason = _reason(column, plan)
    checks = [] if not converts else \
        [f"WHEN {text} IS NOT NULL AND ({expression}) IS NULL THEN {{'col': {col}, 'value': {text}, "
         f"'reason': '{reason}'}}"]
    if column.required:
        checks.insert(0, f"WHEN {text} IS NULL AND NOT __blank THEN {{'col': {col}, 'value': '', "
                         "'reason': 'is required but empty'}")
    return f"CAST(CASE {' '.join(checks)} END AS {_PROBLEM})" if checks else None


def _reason(column: Column, plan: Plan) -> str:
    kind = column.type
    if kind.is_time:
        order = plan.date_orders.get(column.name, DateOrder.ISO)
        return f"is not a date like {_EXAMPLES.get(order, '2026-10-31')}"
    if kind.is_number:
        what = "a whole number" if kind is ColumnType.INTEGER else "a number"
        bounds = f" from {column.bounds[0]:g} to {column.bounds[1]:g}" if column.bounds else ""
        return f"is not {what}{bounds}"
    if kind is ColumnType.BOOLEAN:
        return "is not yes/no, true/false, ja/nein, 1/0 or a count"
    values = ", ".join(VOCABULARIES[column.values]) if column.values else ""
    return f"is not one of {values}" if values else "cannot be read"


def _problems(conn: duckdb.DuckDBPyConnection, physical: str, plan: Plan, raw: RawFile, records: int,
              lines: int) -> list[Problem]:
    """The first rejected values in file order, with the row numbers a spreadsheet shows (`records`: the rows
    DuckDB read, `lines`: the file's lines, see RawFile.spreadsheet_rows)."""
    table = TABLES[plan.table]
    mapped = [c.name for c in table.columns if plan.source_of(c.name) is not None]
    if not mapped:
        return []
    rows = conn.execute(
        f"SELECT r + {int(raw.header_row + 1)}, p.col, p.value, p.reason FROM (SELECT rowid AS r, "
        f"unnest(__problems) AS p FROM {quote(physical)} WHERE __problems IS NOT NULL) ORDER BY 1, 2 "
        f"LIMIT {MAX_PROBLEMS}").fetchall()
    shown = raw.spreadsheet_rows({row for row, *_ in rows}, records, lines)
    return [Problem(shown[row], plan.source_of(mapped[col]) or mapped[col], value or "", reason)
            for row, col, value, reason in rows]


def _append_previous(conn: duckdb.DuckDBPyConnection, physical: str, table: Table, previous: Snapshot) -> None:
    """Add the previous snapshot's rows whose id the new file does not have (the new file wins)."""
    key, old = quote(table.key or ""), f"{quote(previous.schema)}.{quote(table.name)}"
    columns = ", ".join(quote(c.name) for c in table.columns)
    conn.execute(
        f"INSERT INTO {quote(physical)} ({columns}, __blank, __valid) "
        f"SELECT {columns}, FALSE, TRUE FROM {old} AS o "
        f"WHERE o.{key} NOT IN (SELECT {key} FROM {quote(physical)} WHERE __valid AND {key} IS NOT NULL)"
    )


def _with_warnings(conn: duckdb.DuckDBPyConnection, report: FileReport, snapshot: Snapshot) -> FileReport:
    """Add what does not block the import: orphan references, future dates, negative amounts."""
    schema, table = quote(snapshot.schema), TABLES[report.table]
    warnings = list(report.warnings)
    for (source, column), target in REFERENCES.items():
        if source != report.table:
            continue
        if not conn.execute(f"SELECT EXISTS (SELECT 1 FROM {schema}.{quote(target)})").fetchone()[0]:
            continue  # nothing to refer to: no warning, and no scan
        key = quote(TABLES[target].key or column)
        count = conn.execute(
            f"SELECT COUNT(*) FROM {schema}.{quote(source)} AS s WHERE s.{quote(column)} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {schema}.{quote(target)} AS t WHERE t.{key} = s.{quote(column)})"
        ).fetchone()[0]
        if count:
            warnings.append(f"{count} row(s) name a {column} that is not in {target}.")
    today = date.today()
    checks = []  # (count, warning): counted in one scan of the table
    for column in table.columns:
        planned = PLANNED.get((table.name, column.name))
        if column.type.is_time:
            fact = "" if planned is None else f" AND ({planned}) IS NOT TRUE"
            checks.append((f"COUNT(*) FILTER (WHERE {quote(column.name)} > $today{fact})",
                           f"row(s) have a {column.name} in the future (after {today.isoformat()})."))
        if planned is not None:
            checks.append((f"COUNT(*) FILTER (WHERE {quote(column.name)} IS NOT NULL AND {planned})",
                           f"row(s) still open have a {column.name}: a planned date, so it is not read as the day "
                           "they closed."))
        if column.type is ColumnType.NUMBER and column.name == "amount":
            checks.append(("COUNT(*) FILTER (WHERE amount < 0)", "row(s) have a negative amount."))
    if checks:
        counts = conn.execute(f"SELECT {', '.join(c for c, _ in checks)} FROM {schema}.{quote(table.name)}",
                              {"today": today}).fetchone()
        warnings += [f"{n} {text}" for n, (_, text) in zip(counts, checks, strict=True) if n]
    return replace(report, warnings=tuple(warnings))
