"""Computing on a warehouse: the engine setting, the canonical views over the company's own tables, and readings.

`KPI_ENGINE` (or `engine` in the [kpi] section of .streamlit/secrets.toml) names the engine that holds the data:
`postgresql://user@host:port/db`, a Spark master (`spark://host:port`, `local[*]`), or nothing for the embedded
DuckDB file. `KPI_SCHEMA` (or `schema`) names the schema there whose tables or views are the canonical ones
(default `kpi`). The environment wins over secrets.toml.

A mapping file says how the company's tables become the canonical ones, in the importer's vocabulary (the
canonical column: the source column; values: the source value: the canonical value); `views` makes one view per
canonical table from it. A reading records, in the app's own database, a snapshot whose tables are the
warehouse's as they were read (row counts, which columns hold values): KPI values computed then are kept under
it, so a pinned link shows the same numbers while they are kept.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from sqlglot import exp

from kpicore import coverage, engines, ingest, store
from kpicore.errors import BadParameter, KpiError, first_line
from kpicore.files import workdir
from kpicore.model import TABLES
from kpicore.sql import quote

DEFAULT_SCHEMA = "kpi"
Engine = engines.PostgresEngine | engines.SparkEngine  # a warehouse kpicore computes on
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_SPARK = re.compile(r"spark://[^\s/]+:\d+|local(\[(\*|\d+)\])?")
USE = ("Use postgresql://user@host:port/database, spark://host:port or local[*], or leave it unset for the "
       "embedded DuckDB file.")


@dataclass(frozen=True)
class Setting:
    """Where KPIs are computed: `url` empty for the embedded DuckDB file, else a warehouse and its schema."""

    url: str = ""
    schema: str = DEFAULT_SCHEMA
    state: str = ""  # KPI_STATE: a PostgreSQL server for the app's own tables ("" : the engine's, if PostgreSQL)

    @property
    def dialect(self) -> str | None:
        """The engine's SQL dialect (None: the embedded DuckDB file)."""
        if not self.url:
            return None
        return "spark" if _SPARK.fullmatch(self.url) else "postgres"

    @property
    def shown(self) -> str:
        """The engine as people may read it: the URL without its password."""
        return _hidden(self.url) if self.dialect == "postgres" else self.url

    @property
    def state_url(self) -> str:
        """The PostgreSQL server holding the app's own tables ("" : the DuckDB file)."""
        return self.state or (self.url if self.dialect == "postgres" else "")

    @property
    def describe(self) -> str:
        """One line for pages and the command line."""
        return f"{self.shown}, schema {self.schema}" if self.url else "the embedded DuckDB file"


def _hidden(url: str) -> str:
    """A PostgreSQL URL without its password (and options)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = (f"{parts.username}@" if parts.username else "") + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def setting(given: Mapping[str, Any] | None = None) -> Setting:
    """The engine setting: $KPI_ENGINE, $KPI_SCHEMA and $KPI_STATE, else `engine`, `schema` and `state` of `given`
    (the [kpi] section of secrets.toml). BadParameter, naming the setting, for one kpicore cannot use."""
    given = given or {}
    url = str(os.environ.get("KPI_ENGINE") or given.get("engine") or "").strip()
    schema = str(os.environ.get("KPI_SCHEMA") or given.get("schema") or DEFAULT_SCHEMA).strip()
    where = "KPI_ENGINE" if os.environ.get("KPI_ENGINE") else "engine in secrets.toml"
    if url in ("duckdb", "embedded"):
        url = ""
    if url and not (_SPARK.fullmatch(url) or urlsplit(url).scheme in ("postgresql", "postgres")):
        raise BadParameter(f"{where}: '{Setting(url).shown}' is not an engine kpicore computes on. {USE}")
    if not _NAME.fullmatch(schema):
        raise BadParameter(f"KPI_SCHEMA: '{schema}' is not a schema name kpicore uses: letters, digits and _, "
                           "starting with a letter or _, at most 63 characters.")
    state = str(os.environ.get("KPI_STATE") or given.get("state") or "").strip()
    if state and urlsplit(state).scheme not in ("postgresql", "postgres"):
        raise BadParameter(f"KPI_STATE: '{_hidden(state)}' is not a PostgreSQL server. Give "
                           "postgresql://user@host:port/database, or leave it unset.")
    if state and not url:
        raise BadParameter("KPI_STATE is set but KPI_ENGINE is not: replicas sharing their state must also read the "
                           "same data, so set KPI_ENGINE to the warehouse that holds it.")
    return Setting(url, schema, state)


def open_engine(chosen: Setting) -> Engine:
    """A connection to the warehouse the setting names; KpiError saying what to check when it cannot be reached."""
    try:
        if chosen.dialect == "spark":
            return engines.SparkEngine(chosen.url, chosen.schema)
        return engines.PostgresEngine(chosen.url, chosen.schema)
    except Exception as error:  # the driver's own errors: a wrong host, password or database
        raise KpiError(f"The warehouse {chosen.shown} cannot be reached: {first_line(error)}. Check KPI_ENGINE (or "
                       "engine in secrets.toml) and that the server runs.") from None


# --- canonical views from a mapping file -------------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    """Where one canonical table comes from: a table or view of the warehouse, its columns and value renames."""

    table: str
    relation: tuple[str, ...]  # (schema, table) or (table,)
    columns: dict[str, str]  # canonical column: source column
    values: dict[str, dict[str, str]]  # canonical column: {source value: canonical value}


def load_mapping(path: Path) -> dict[str, Source]:
    """The mapping file's sources by canonical table; KpiError naming the file and the entry for every problem."""
    name = path.name
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise KpiError(f"{name}: cannot be read ({error.strerror}).") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise KpiError(f"{name}: is not a YAML file ({first_line(error)}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("tables"), dict):
        raise KpiError(f"{name}: needs a 'tables' section, one entry per canonical table (leads: from: crm.leads, "
                       "columns: ...). See docs/warehouse.md.")
    problems: list[str] = []
    sources = {}
    for table, entry in data["tables"].items():
        at = f"{name}: tables.{table}"
        if table not in TABLES:
            problems.append(f"{at}: there is no canonical table '{table}'. Tables: {', '.join(TABLES)}.")
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("from"), str) or not entry["from"].strip():
            problems.append(f"{at}: needs 'from', the warehouse table or view (schema.table) it comes from.")
            continue
        relation = tuple(part.strip() for part in entry["from"].split("."))
        if len(relation) > 2 or not all(relation):
            problems.append(f"{at}.from: '{entry['from']}' is not a table name: write table or schema.table.")
        columns = entry.get("columns") or {}
        values = entry.get("values") or {}
        if not isinstance(columns, dict) or not isinstance(values, dict):
            problems.append(f"{at}: 'columns' and 'values' are mappings (canonical column: ...).")
            continue
        known = {c.name for c in TABLES[table].columns}
        for canonical, source in columns.items():
            if canonical not in known:
                problems.append(f"{at}.columns.{canonical}: '{table}' has no column '{canonical}'. Columns: "
                                f"{', '.join(sorted(known))}.")
            elif not isinstance(source, str) or not source:
                problems.append(f"{at}.columns.{canonical}: give the source column's name as text.")
        for column in TABLES[table].columns:
            if column.required and column.name not in columns:
                problems.append(f"{at}.columns: the required column '{column.name}' ({column.description}) has no "
                                "source column. Map it: a missing required column is never guessed.")
        for canonical, pairs in values.items():
            if canonical not in columns:
                problems.append(f"{at}.values.{canonical}: renames values of a column the mapping does not map.")
            elif not isinstance(pairs, dict) or not all(isinstance(v, str) for v in pairs.values()):
                problems.append(f"{at}.values.{canonical}: write source value: canonical value, one per line.")
        sources[table] = Source(table, relation, {str(k): str(v) for k, v in columns.items()},
                                {str(k): {str(a): str(b) for a, b in v.items()} for k, v in values.items()
                                 if isinstance(v, dict)})
    if problems:
        raise KpiError("\n".join(problems))
    return sources


def view_statements(sources: Mapping[str, Source], schema: str, dialect: str,
                    only: Iterable[str] | None = None) -> list[str]:
    """The statements that make the canonical views in `schema` (those of `only`, else every one), in the engine's
    dialect: one per canonical table, casting each source column to the canonical type (NULL for a column the
    mapping leaves out; no rows for a table it leaves out). Built as syntax trees, so names and values are quoted
    as the dialect quotes them."""
    statements = [exp.Create(this=exp.Table(this=exp.to_identifier(schema, quoted=True)), kind="SCHEMA",
                             exists=True).sql(dialect=dialect)]
    for name, table in TABLES.items():
        if only is not None and name not in only:
            continue
        source = sources.get(name)
        items = []
        for column in table.columns:
            kind = exp.DataType.build(column.type.sql)  # DuckDB's name, written in the dialect's
            if source is None or column.name not in source.columns:
                value: exp.Expression = exp.cast(exp.null(), kind)
            else:
                value = exp.column(source.columns[column.name], quoted=True)
                renames = source.values.get(column.name, {})
                if renames:
                    text = exp.cast(value, exp.DataType.build("VARCHAR"))
                    value = exp.Case(ifs=[exp.If(this=exp.EQ(this=text, expression=exp.Literal.string(a)),
                                                 true=exp.Literal.string(b)) for a, b in renames.items()],
                                     default=text)
                value = exp.cast(value, kind)
            items.append(exp.alias_(value, column.name, quoted=True))
        select = exp.select(*items)
        if source is None:
            select = select.where(exp.false())
        else:
            *db, relation = source.relation
            select = select.from_(exp.Table(this=exp.to_identifier(relation, quoted=True),
                                            db=exp.to_identifier(db[0], quoted=True) if db else None))
        target = exp.Table(this=exp.to_identifier(name, quoted=True), db=exp.to_identifier(schema, quoted=True))
        statements.append(exp.Drop(tables=[target.copy()], kind="VIEW", exists=True).sql(dialect=dialect))
        statements.append(exp.Create(this=target, kind="VIEW", expression=select).sql(dialect=dialect))
    return statements


def source_columns(engine: Engine, relation: tuple[str, ...]) -> list[str]:
    """The columns of a warehouse table or view; KpiError if the engine has no such table."""
    name = ".".join(quote(part) for part in relation)
    try:
        return [d[0] for d in engine.execute(f"SELECT * FROM {name} WHERE 1 = 0").description]
    except Exception as error:  # the engine's own error: no such table, no permission
        raise KpiError(f"The warehouse has no table or view {'.'.join(relation)} that kpicore may read "
                       f"({first_line(error)}).") from None


def make_views(engine: Engine, sources: Mapping[str, Source], schema: str,
               file: str) -> list[str]:
    """Make the canonical views in `schema` from the mapping (in one transaction on PostgreSQL). Every source
    column is checked to exist first, and nothing is made while one is missing. The canonical tables made."""
    problems = []
    for table, source in sources.items():
        try:
            found = set(source_columns(engine, source.relation))
        except KpiError as error:
            problems.append(f"{file}: tables.{table}.from: {error}")
            continue
        for canonical, column in source.columns.items():
            if column not in found:
                problems.append(f"{file}: tables.{table}.columns.{canonical}: {'.'.join(source.relation)} has no "
                                f"column '{column}'. Its columns: {', '.join(sorted(found))}.")
    if problems:
        raise KpiError("\n".join(problems))
    try:
        engine.define(view_statements(sources, schema, engine.dialect))
    except Exception as error:
        raise KpiError(f"The warehouse refused the views in schema {schema} ({first_line(error)}). Nothing was "
                       "changed.") from None
    return list(TABLES)


# --- readings ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TableRead:
    """One canonical table as a reading found it: its rows and the canonical columns that hold any value."""

    table: str
    rows: int
    filled: tuple[str, ...]


def read_tables(engine: Engine, schema: str) -> dict[str, TableRead]:
    """Every canonical table of the warehouse schema, counted in one scan each. KpiError naming the table and
    columns the schema lacks (and what to run) before anything is recorded."""
    problems, found = [], {}
    for name, table in TABLES.items():
        try:
            present = set(source_columns(engine, (schema, name)))
        except KpiError:
            problems.append(f"The warehouse schema {schema} has no table or view '{name}'.")
            continue
        if lacking := [c.name for c in table.columns if c.name not in present]:
            problems.append(f"{schema}.{name} lacks the canonical column{'s' if len(lacking) > 1 else ''} "
                            f"{', '.join(lacking)}.")
            continue
        counts = ", ".join(f"COUNT({quote(c.name)})" for c in table.columns)
        row = engine.execute(f"SELECT COUNT(*), {counts} FROM {quote(schema)}.{quote(name)}").fetchone()
        found[name] = TableRead(name, int(row[0]),
                                tuple(c.name for c, n in zip(table.columns, row[1:], strict=True) if n))
    if problems:
        raise KpiError(" ".join(problems) + " Make the canonical views with 'kpicore warehouse views MAPPING.yaml' "
                       "(docs/warehouse.md), or create the tables there.")
    return found



def read(conn: coverage.Engine, engine: Engine, chosen: Setting, author: str | None = None,
         note: str | None = None, stored: dict[str, store.Stored] | None = None) -> store.Snapshot:
    """Read the warehouse's canonical tables now and record the reading as a new snapshot in `conn` (the app's
    own state). KpiError, recording nothing, when a table or column is missing there."""
    found = read_tables(engine, chosen.schema)
    return store.record_reading(conn, chosen.shown, chosen.schema,  # type: ignore[arg-type]
                                {name: (t.rows, t.filled) for name, t in found.items()}, author, note,
                                stored=stored)


# --- the app's own state, and uploads, in PostgreSQL ------------------------------------------------------------

def shares_state(chosen: Setting) -> bool:
    """Whether the app's own tables live in PostgreSQL (the engine's server, or KPI_STATE's, in schema
    `<schema>_state`), where every replica of the app reads and writes them; else in the DuckDB file (KPI_DB)."""
    return bool(chosen.state_url)


def state_schema(chosen: Setting) -> str:
    return f"{chosen.schema}_state"


def state_pool(chosen: Setting) -> engines.StatePool:
    """The shared state schema, as the app's runs use it (a connection per run). KpiError when the server cannot
    be reached."""
    return engines.StatePool(chosen.state_url, state_schema(chosen), store.prepare_state)


def state(chosen: Setting) -> engines.PostgresState:
    """One connection to the shared state schema (for the command line), its tables made or brought up to date."""
    conn = engines.open_state(chosen.state_url, state_schema(chosen))
    store.prepare_state(conn)  # type: ignore[arg-type]
    return conn


def upload(conn: coverage.Engine, engine: Engine, chosen: Setting, uploads: Sequence[ingest.Upload], note: str,
           author: str | None = None, progress: Callable[[float, str], None] | None = None) -> ingest.ImportResult:
    """Import exports into the warehouse: each file is read, checked and converted exactly as for the DuckDB file
    (in a scratch copy), then written as a table of `<schema>_uploads`, and the canonical view of its table
    shows it from then on (in one transaction on PostgreSQL); a reading records the new state as a snapshot."""
    if appending := [u.raw.name for u in uploads if u.mode is not ingest.Mode.REPLACE]:
        raise KpiError(f"{', '.join(appending)}: adding rows to what the warehouse holds is not done from here. "
                       "Upload the whole export (it replaces the table), or add the rows in the warehouse.")
    for name in dict.fromkeys(u.plan.table for u in uploads):
        if engine.relation_kind(chosen.schema, name) == "TABLE":
            raise KpiError(f"{chosen.schema}.{name} is a table of the warehouse, not a view: an upload replaces "
                           "views only, so that no table of yours is ever dropped. Make the canonical views with "
                           "'kpicore warehouse views MAPPING.yaml', or load the export into that table there.")
    folder = workdir("upload")
    scratch = store.connect(folder / "scratch.duckdb", sample=False)
    try:
        result = ingest.import_files(scratch, uploads, note, progress=progress, author=author)
        made = store.tables(scratch, result.snapshot)
        uploaded, written, stored = f"{chosen.schema}_uploads", [], {}
        for report in result.files:
            name = report.table
            physical = f"{name}__{secrets.token_hex(6)}"
            columns = ", ".join(quote(c.name) for c in TABLES[name].columns)
            rows = scratch.execute(f"SELECT {columns} FROM {quote(result.snapshot.schema)}.{quote(name)}").fetchall()
            written.append((physical, name, rows))
            stored[name] = replace(made[name].stored, physical=f"{uploaded}.{physical}")
        sources = {name: Source(name, (uploaded, physical), {c.name: c.name for c in TABLES[name].columns}, {})
                   for physical, name, _ in written}
        views = view_statements(sources, chosen.schema, engine.dialect, only=sources)[1:]
        try:
            if isinstance(engine, engines.PostgresEngine):  # tables and views in one transaction
                engines.write_tables(engine, uploaded, written, views)
            else:  # Spark SQL has no transactions: the tables first, then the views that show them
                for physical, name, rows in written:
                    engine.write_rows(uploaded, physical, name, rows)
                engine.define(views)
        except Exception as error:  # the server's own refusal (permissions, disk)
            raise KpiError(f"The warehouse refused the upload ({first_line(error)}). The canonical views show what "
                           "they showed before.") from None
    finally:
        scratch.close()
        shutil.rmtree(folder, ignore_errors=True)
    snapshot = read(conn, engine, chosen, author, note, stored)
    return replace(result, snapshot=snapshot)


def is_reading_of(snapshot: store.Snapshot | None, chosen: Setting) -> bool:
    """Whether the snapshot was read from the warehouse and schema the setting names. Where the state lives in
    the warehouse itself, every reading in it is of that warehouse, however a replica spells its URL (two
    spellings must not take turns reading it again)."""
    if snapshot is None or snapshot.warehouse is None or snapshot.warehouse_schema != chosen.schema:
        return False
    return shares_state(chosen) or snapshot.warehouse == chosen.shown


def computed_now(snapshot: store.Snapshot) -> str:
    """What a page says when an earlier reading's values for the view asked were not kept: the warehouse keeps no
    earlier state, so they come from its tables as they are now."""
    return (f"Snapshot {snapshot.id} was read from the warehouse on {snapshot.created_at:%Y-%m-%d %H:%M}, and the "
            "numbers of this view were not kept then: they are computed from the warehouse as it is now, which may "
            "differ from what was shown at the time.")


def engine_for(snapshot: store.Snapshot, chosen: Setting, conn: coverage.Engine,
               warehouse: Callable[[], coverage.Engine]) -> coverage.Engine:
    """What computes a snapshot's KPIs: `conn` for tables in the app's own file, the warehouse (`warehouse()`
    opens it) for a reading of it. KpiError for a reading of another warehouse than the one set."""
    if snapshot.warehouse is None:
        return conn
    check_readable(snapshot, chosen)
    return warehouse()


def check_readable(snapshot: store.Snapshot, chosen: Setting) -> None:
    """KpiError for a reading of another warehouse than the one set (its numbers cannot be computed here)."""
    if snapshot.warehouse is not None and not is_reading_of(snapshot, chosen):
        raise KpiError(f"Snapshot {snapshot.id} was read from {snapshot.warehouse} (schema "
                       f"{snapshot.warehouse_schema}), and KPIs are now computed on {chosen.describe}: set "
                       "KPI_ENGINE and KPI_SCHEMA to that warehouse to see it, or open the latest data.")
