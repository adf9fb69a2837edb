"""Files to tables: typed conversion in DuckDB, row-level problems, and the import into a new snapshot."""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from enum import Enum

import duckdb

from kpicore.errors import BadFile
from kpicore.files import RawFile, needs_sequential, not_utf8
from kpicore.mapping import DateOrder, Plan
from kpicore.model import (
    FALLBACKS,
    FALSE_WORDS,
    STATUS_DATES,
    TABLES,
    TRUE_WORDS,
    VOCABULARIES,
    Column,
    ColumnType,
    Table,
)
from kpicore.sql import quote
from kpicore.store import Snapshot, commit_snapshot, latest_snapshot, physical_of

MAX_PROBLEMS = 1000
_ISO_FORMATS = ["%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d", "%Y-%m"]
# Two-digit years first: %Y would read 31.10.26 as the year 26.
_ORDER_FORMATS = {
    DateOrder.ISO: [],
    DateOrder.DAY_FIRST: ["%d.%m.%y %H:%M:%S", "%d.%m.%y %H:%M", "%d.%m.%y", "%d/%m/%y %H:%M:%S", "%d/%m/%y %H:%M",
                          "%d/%m/%y", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d/%m/%Y %H:%M:%S",
                          "%d/%m/%Y %H:%M", "%d/%m/%Y", "%m.%Y", "%m/%Y"],
    DateOrder.MONTH_FIRST: ["%m/%d/%y %H:%M:%S", "%m/%d/%y %H:%M", "%m/%d/%y %I:%M %p", "%m/%d/%y %I:%M%p", "%m/%d/%y",
                            "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %I:%M%p",
                            "%m/%d/%Y", "%m/%Y"],
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


@dataclass(frozen=True)
class ImportResult:
    """The new snapshot and a report per file."""

    snapshot: Snapshot
    files: tuple[FileReport, ...]


@dataclass(frozen=True)
class Upload:
    """One file to import: the file, how it maps, and replace or append."""

    raw: RawFile
    plan: Plan
    mode: Mode = Mode.REPLACE
    as_of: date | None = None  # the export date of a status-only export (states, no dates)

    @property
    def status_only(self) -> bool:
        """Whether the file lacks required dates that its export date can stand in for."""
        missing = self.plan.missing_required
        table = TABLES[self.plan.table]
        return bool(missing) and self.plan.table in STATUS_DATES and all(
            table.column(name).type.is_time for name in missing)


def check_plan(upload: Upload) -> None:
    """Refuse a plan that would guess: missing required columns, unsure columns, ambiguous dates."""
    plan, name = upload.plan, upload.raw.name
    if upload.status_only and upload.as_of is None:
        missing = ", ".join(plan.missing_required)
        raise BadFile(name, f"has no {missing}. If it is a status-only export (states, no dates), give the day it "
                            "describes (in the app, or on the command line with --as-of 2026-10-31); otherwise map "
                            f'the column (--map {plan.missing_required[0]}="Source column").')
    if plan.missing_required and not (upload.status_only and upload.as_of):
        missing = ", ".join(plan.missing_required)
        example = f'--map {plan.missing_required[0]}="Source column"'
        raise BadFile(name, f"is read as {plan.table}, but no column could be placed for {missing}. Map them "
                            f"(in the app, or on the command line with {example}).")
    if plan.ambiguous_dates:
        column = plan.ambiguous_dates[0]
        raise BadFile(name, "has dates like 01/02/2026 that could be day/month or month/day. Say which "
                            "(in the app, or on the command line with --dates day_first or --dates month_first).",
                      column=plan.source_of(column))


def import_files(conn: duckdb.DuckDBPyConnection, uploads: Sequence[Upload], note: str,
                 progress: Callable[[float, str], None] | None = None) -> ImportResult:
    """Import every file into one new snapshot, all or nothing; BadFile if any file cannot be used."""
    try:
        return _import(conn, uploads, note, progress)
    except _ReadAgain as again:
        raw = again.upload.raw
        raw = raw.transcoded() if again.transcode else raw.sequential()
        uploads = [replace(u, raw=raw) if u is again.upload else u for u in uploads]
        return import_files(conn, uploads, note, progress)


class _ReadAgain(Exception):
    """Import again: a file has a quoted line break further down than its sample (read it with one thread), or
    bytes that are not UTF-8 further down than `read_file` checks (read a UTF-8 copy, see RawFile.transcoded)."""

    def __init__(self, upload: Upload, transcode: bool = False) -> None:
        super().__init__(upload.raw.name)
        self.upload, self.transcode = upload, transcode


def _import(conn: duckdb.DuckDBPyConnection, uploads: Sequence[Upload], note: str,
            progress: Callable[[float, str], None] | None) -> ImportResult:
    for upload in uploads:
        check_plan(upload)
    tables = [u.plan.table for u in uploads]
    if len(set(tables)) != len(tables):
        twice = next(t for t in tables if tables.count(t) > 1)
        raise BadFile(", ".join(u.raw.name for u in uploads if u.plan.table == twice),
                      f"are all read as {twice}. Import one file per table at a time, or append them one by one.")
    previous = latest_snapshot(conn)
    conn.execute("BEGIN TRANSACTION")
    try:
        snapshot_id = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM snapshots").fetchone()[0]
        reports, changed = [], {}
        for index, upload in enumerate(uploads):
            if progress:
                progress(index / len(uploads), f"Reading {upload.raw.name}")
            physical = f"{upload.plan.table}__{snapshot_id}"
            reports.append(_stage(conn, upload, physical, previous))
            changed[upload.plan.table] = physical
        if progress:
            progress(0.95, "Checking references")
        sources = {u.plan.table: u.raw.name for u in uploads}
        status = {u.plan.table: u.as_of for u in uploads if u.status_only}
        snapshot = commit_snapshot(conn, snapshot_id, changed, note, previous, sources, status)
        reports = [_with_warnings(conn, r, snapshot) for r in reports]
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if progress:
        progress(1.0, "Done")
    return ImportResult(snapshot, tuple(reports))


def _stage(conn: duckdb.DuckDBPyConnection, upload: Upload, physical: str, previous: Snapshot | None) -> FileReport:
    raw, plan = upload.raw, upload.plan
    table = TABLES[plan.table]
    sql, params = staging_sql(raw, plan, physical, upload.as_of if upload.status_only else None)
    try:
        conn.execute(sql, params)
    except duckdb.Error as error:
        if raw.parallel and needs_sequential(error):
            raise _ReadAgain(upload) from None
        if raw.encoding == "utf-8" and not_utf8(error):
            raise _ReadAgain(upload, transcode=True) from None
        detail = str(error).strip().splitlines()[0][:300]
        raise BadFile(raw.name, f"could not be read completely ({detail}). Check that every row has the "
                                "same columns and export it again.") from None
    _mark_duplicates(conn, physical, table)
    rows, imported = conn.execute(
        f"SELECT COUNT(*), COUNT(*) FILTER (WHERE __valid AND NOT __dup) FROM {quote(physical)}"
    ).fetchone()
    if rows == 0:
        raise BadFile(raw.name, "has a header but no data rows. Nothing was imported.")
    problems = _problems(conn, physical, plan)
    if imported == 0:
        first = problems[0] if problems else None
        detail = f" The first problem: {first.reason} (row {first.row}, column '{first.column}')." if first else ""
        raise BadFile(raw.name, f"has no row that could be imported.{detail}")
    if upload.mode is Mode.APPEND and previous is not None and table.key:
        _append_previous(conn, physical, table, previous)
    duplicates = conn.execute(f"SELECT COUNT(*) FROM {quote(physical)} WHERE __valid AND __dup").fetchone()[0]
    warnings = (f"{duplicates} row(s) repeat an id of a later row in the file; the later row was kept.",) \
        if duplicates else ()
    return FileReport(raw.name, plan.table, upload.mode, rows, imported, rows - imported - duplicates,
                      tuple(problems), warnings)


def staging_sql(raw: RawFile, plan: Plan, physical: str, as_of: date | None = None) -> tuple[str, dict[str, object]]:
    """CREATE TABLE for a file's rows: typed canonical columns, a problem per column and validity.

    Layered so that each cell is converted once: the cells as text, then typed, then a problem wherever a cell
    has text but no typed value. `__dup` is FALSE here; `_mark_duplicates` sets it afterwards.
    With `as_of` (a status-only export), required dates may be missing and the export date stands in for
    the date of the rows whose state implies it (see model.STATUS_DATES).
    """
    table = TABLES[plan.table]
    params: dict[str, object] = dict(raw.read_params())
    index = {name: i for i, name in enumerate(raw.columns)}
    for column in table.columns:
        if column.required and plan.source_of(column.name) is None and as_of is None:
            raise BadFile(raw.name, f"has no column for the required {column.name}.")
    mapped = [c for c in table.columns if plan.source_of(c.name) is not None]

    def text_of(column: Column) -> str:
        return quote("__t_" + column.name)

    texts = [f"NULLIF(trim(src.c{index[plan.source_of(c.name)]}), '') AS {text_of(c)}" for c in mapped]
    converted = [f"{_convert(c, text_of(c), plan, params, raw)} AS {quote(c.name)}" for c in mapped]
    typed = [quote(c.name) if c in mapped else f"CAST(NULL AS {c.type.sql}) AS {quote(c.name)}"
             for c in table.columns]
    problem_columns = [f"{_error(c, text_of(c), quote(c.name), plan)[1]} AS {quote('__e_' + c.name)}"
                       for c in mapped]
    valid = " AND ".join(f"{quote('__e_' + c.name)} IS NULL" for c in mapped) or "TRUE"
    present = " OR ".join(f"src.c{i} IS NOT NULL" for i in range(len(raw.columns)))
    # rows are numbered before empty ones (;;; or an empty Excel row) are left out, as a spreadsheet numbers them
    cells = (
        f"SELECT src.__row{''.join(', ' + t for t in texts)} FROM (SELECT row_number() OVER () + "
        f"{raw.header_row} AS __row, * FROM {raw.read_sql()}) AS src WHERE {present}"
    )
    values = f"SELECT *{''.join(', ' + c for c in converted)} FROM ({cells})"
    inner = f"SELECT __row, {', '.join(typed + problem_columns)} FROM ({values})"
    if as_of is not None:
        column, applies = STATUS_DATES[plan.table]
        params["as_of"] = as_of
        inner = (f"SELECT * REPLACE (COALESCE({quote(column)}, CASE WHEN {applies} THEN CAST($as_of AS TIMESTAMP) "
                 f"END) AS {quote(column)}) FROM ({inner})")
    sql = f"CREATE TABLE {quote(physical)} AS SELECT *, {valid} AS __valid, FALSE AS __dup FROM ({inner})"
    return sql, params


def _mark_duplicates(conn: duckdb.DuckDBPyConnection, physical: str, table: Table) -> None:
    """Mark every valid row but the last of its id as a duplicate (rejected rows are not counted).

    One aggregate over the id column: a window over the whole table would hold every column in memory.
    """
    if not table.key:
        return
    key, staged = quote(table.key), quote(physical)
    conn.execute(
        f"UPDATE {staged} SET __dup = TRUE FROM (SELECT {key} AS k, max(__row) AS last FROM {staged} WHERE __valid "
        f"GROUP BY {key} HAVING COUNT(*) > 1) AS d WHERE {staged}.{key} = d.k AND {staged}.__valid "
        f"AND {staged}.__row < d.last"
    )


class _Bind:
    def __init__(self, params: dict[str, object]) -> None:
        self.params = params

    def __call__(self, value: object) -> str:
        name = f"v{len(self.params)}"
        self.params[name] = value
        return f"${name}"


def _convert(column: Column, text: str, plan: Plan, params: dict[str, object], raw: RawFile | None = None) -> str:
    """SQL turning a text cell into the canonical type (NULL when it cannot be read)."""
    bind = _Bind(params)
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
    if kind in (ColumnType.NUMBER, ColumnType.INTEGER):
        stripped = f"regexp_replace({text}, '[^0-9,.%+-]', '', 'g')"
        percent = f"CASE WHEN {text} LIKE '%\\%%' ESCAPE '\\' THEN 100.0 ELSE 1.0 END"
        if column.name in plan.decimal_comma:
            digits = f"replace(replace(replace({stripped}, '.', ''), ',', '.'), '%', '')"
        else:
            digits = f"replace(replace({stripped}, ',', ''), '%', '')"
        number = f"(TRY_CAST({digits} AS DOUBLE) / {percent})"
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
        return f"CASE WHEN {folded} IN ({trues}) THEN TRUE WHEN {folded} IN ({falses}) THEN FALSE END"
    if column.values:
        return _vocabulary(column, text, plan, bind)
    return text


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
    shapes = Counter(re.sub(r"[0-9]", "_", v) for v in values)
    shape, count = shapes.most_common(1)[0]
    if count < 0.5 * len(values) or not re.fullmatch(r"[_ .:/T-]+", shape):
        return None
    of_shape = [v for v in values if re.sub(r"[0-9]", "_", v) == shape]
    checks = [f"{agg}(try_strptime(v, $f{k}) IS NOT NULL)"
              for agg in ("bool_and", "bool_or") for k in range(len(formats))]
    params: dict[str, object] = {"v": of_shape, **{f"f{k}": f for k, f in enumerate(formats)}}
    with duckdb.connect() as conn:
        found = conn.execute(f"SELECT {', '.join(checks)} FROM unnest($v) AS a(v)", params).fetchone()
    every, some = found[:len(formats)], found[len(formats):]
    for k, form in enumerate(formats):  # the first format that reads any of them must read all of them
        if some[k]:
            return (shape, form) if every[k] else None
    return None


def _vocabulary(column: Column, text: str, plan: Plan, bind: _Bind) -> str:
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


def _error(column: Column, text: str, expression: str, plan: Plan) -> tuple[str, str]:
    """(column name, SQL giving {'value', 'reason'} when the cell cannot be used, else NULL)."""
    reason = _reason(column, plan)
    checks = [f"WHEN {text} IS NOT NULL AND ({expression}) IS NULL THEN {{'value': {text}, 'reason': '{reason}'}}"]
    if column.required:
        checks.insert(0, f"WHEN {text} IS NULL THEN {{'value': '', 'reason': 'is required but empty'}}")
    return column.name, f"CASE {' '.join(checks)} END"


def _reason(column: Column, plan: Plan) -> str:
    kind = column.type
    if kind.is_time:
        order = plan.date_orders.get(column.name, DateOrder.ISO)
        return f"is not a date like {_EXAMPLES.get(order, '2026-10-31')}"
    if kind in (ColumnType.NUMBER, ColumnType.INTEGER):
        what = "a whole number" if kind is ColumnType.INTEGER else "a number"
        bounds = f" from {column.bounds[0]:g} to {column.bounds[1]:g}" if column.bounds else ""
        return f"is not {what}{bounds}"
    if kind is ColumnType.BOOLEAN:
        return "is not yes/no, true/false, ja/nein or 1/0"
    values = ", ".join(VOCABULARIES[column.values]) if column.values else ""
    return f"is not one of {values}" if values else "cannot be read"


def _problems(conn: duckdb.DuckDBPyConnection, physical: str, plan: Plan) -> list[Problem]:
    table = TABLES[plan.table]
    mapped = [c.name for c in table.columns if plan.source_of(c.name) is not None]
    if not mapped:
        return []
    selects = " UNION ALL ".join(
        f"SELECT __row, {i} AS col, {quote('__e_' + name)}.value AS value, {quote('__e_' + name)}.reason AS reason "
        f"FROM {quote(physical)} WHERE {quote('__e_' + name)} IS NOT NULL"
        for i, name in enumerate(mapped)
    )
    rows = conn.execute(f"SELECT * FROM ({selects}) ORDER BY __row, col LIMIT {MAX_PROBLEMS}").fetchall()
    return [Problem(row, plan.source_of(mapped[col]) or mapped[col], value or "", reason)
            for row, col, value, reason in rows]


def _append_previous(conn: duckdb.DuckDBPyConnection, physical: str, table: Table, previous: Snapshot) -> None:
    """Add the previous snapshot's rows whose id the new file does not have (the new file wins)."""
    key, old = quote(table.key or ""), quote(physical_of(conn, previous, table.name))
    columns = ", ".join(quote(c.name) for c in table.columns)
    conn.execute(
        f"INSERT INTO {quote(physical)} ({columns}, __row, __valid, __dup) "
        f"SELECT {columns}, 0, TRUE, FALSE FROM {old} AS o WHERE o.__valid AND NOT o.__dup "
        f"AND o.{key} NOT IN (SELECT {key} FROM {quote(physical)} WHERE __valid AND {key} IS NOT NULL)"
    )


_REFERENCES = {
    ("opportunities", "lead_id"): "leads", ("opportunities", "customer_id"): "customers",
    ("leads", "customer_id"): "customers", ("customers", "lead_id"): "leads",
    ("revenue", "customer_id"): "customers", ("tickets", "customer_id"): "customers",
    ("surveys", "customer_id"): "customers", ("touches", "customer_id"): "customers",
}


def _with_warnings(conn: duckdb.DuckDBPyConnection, report: FileReport, snapshot: Snapshot) -> FileReport:
    """Add what does not block the import: orphan references, future dates, negative amounts."""
    schema, table = quote(snapshot.schema), TABLES[report.table]
    warnings = list(report.warnings)
    for (source, column), target in _REFERENCES.items():
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
        if column.type.is_time:
            checks.append((f"COUNT(*) FILTER (WHERE {quote(column.name)} > $today)",
                           f"row(s) have a {column.name} in the future (after {today.isoformat()})."))
        if column.type is ColumnType.NUMBER and column.name == "amount":
            checks.append(("COUNT(*) FILTER (WHERE amount < 0)", "row(s) have a negative amount."))
    if checks:
        counts = conn.execute(f"SELECT {', '.join(c for c, _ in checks)} FROM {schema}.{quote(table.name)}",
                              {"today": today}).fetchone()
        warnings += [f"{n} {text}" for n, (_, text) in zip(counts, checks, strict=True) if n]
    return FileReport(report.file, report.table, report.mode, report.rows, report.imported, report.rejected,
                      report.problems, tuple(warnings))
