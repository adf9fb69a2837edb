"""Where the KPIs are computed: the embedded DuckDB file by default, or a warehouse that already holds the data.

The compiler (`kpicore.compute`), the coverage queries and the filters write one SQL, DuckDB's, kept to a small
set of standard constructs (the lint test `tests/test_engines.py` holds the allow-list). An engine runs it as its
own dialect: sqlglot transpiles it, and the engine binds the named parameters its driver's way. What sqlglot
would turn into something else silently is kept out of the SQL in the first place (no `generate_series` or
`range`, periods from a calendar of VALUES; casts before every division; medians through one exact
`PERCENTILE_CONT`; weeks from `date_trunc('week')`, ISO Mondays in every engine listed here).

Verified here against DuckDB on the same data (`tests/test_engines.py`: a real PostgreSQL server on loopback and a
local Spark session): PostgreSQL and Spark. Generated and inspectable (`kpicore sql KPI --engine trino`), not run
here: the other dialects in `UNVERIFIED`.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlglot

from kpicore.catalog import Catalog, Derived, Ratio
from kpicore.compute import build_query
from kpicore.errors import BadParameter, KpiError, first_line
from kpicore.model import TABLES, ColumnType
from kpicore.periods import Grain, Period
from kpicore.sql import quote
from kpicore.validate import references

VERIFIED = ("duckdb", "postgres", "spark")
UNVERIFIED = ("trino", "bigquery", "snowflake", "clickhouse")  # SQL generated, not verified here
DIALECTS = VERIFIED + UNVERIFIED
_LITERAL_PERCENT = re.compile(r"%(?!\(\w+\)s|s(?!\w))")  # a "%" that is no psycopg placeholder
# the canonical columns' types as PostgreSQL names them
_PG_TYPES = {ColumnType.ID: "VARCHAR", ColumnType.TEXT: "VARCHAR", ColumnType.TIMESTAMP: "TIMESTAMP",
             ColumnType.MONTH: "DATE", ColumnType.NUMBER: "DOUBLE PRECISION", ColumnType.INTEGER: "INTEGER",
             ColumnType.BOOLEAN: "BOOLEAN"}


_SPARK_TYPES = {ColumnType.ID: "STRING", ColumnType.TEXT: "STRING", ColumnType.TIMESTAMP: "TIMESTAMP_NTZ",
                ColumnType.MONTH: "DATE", ColumnType.NUMBER: "DOUBLE", ColumnType.INTEGER: "INT",
                ColumnType.BOOLEAN: "BOOLEAN"}
_MATERIALIZING = ("duckdb", "postgres")  # the engines that take `WITH x AS MATERIALIZED (...)`
# How each engine's SQL takes medians and quartiles (PERCENTILE_CONT ... WITHIN GROUP in DuckDB's)
PERCENTILES = {
    "duckdb": "exact", "postgres": "exact", "snowflake": "exact",
    "spark": "exact (written as Spark's percentile(); sqlglot alone would make it percentile_approx)",
    "trino": "approximate (Trino has only approx_percentile): label medians approximate",
    "bigquery": "not runnable as written (PERCENTILE_CONT is a window function in BigQuery): needs a template",
    "clickhouse": "not runnable as written (ClickHouse has no WITHIN GROUP; quantileExactInclusive is the exact "
                  "one): needs a template",
}


@lru_cache(maxsize=256)
def transpile(sql: str, dialect: str) -> str:
    """DuckDB SQL as another engine writes it. Named parameters are written the way each engine's driver binds
    them (`$name` for DuckDB, `%(name)s` for psycopg, `:name` for Trino...). A common table expression is
    computed once where the engine is told so (`MATERIALIZED`), and left to the planner elsewhere."""
    if dialect not in DIALECTS:
        raise BadParameter(f"'{dialect}' is not an engine kpicore writes SQL for. Use one of: {', '.join(DIALECTS)}.")
    if dialect == "duckdb":
        return sql
    tree = sqlglot.parse_one(sql, read="duckdb")
    if dialect not in _MATERIALIZING:
        for cte in tree.find_all(sqlglot.exp.CTE):
            cte.set("materialized", None)
    if dialect == "spark":  # percentile(x, p) is exact and interpolates as PERCENTILE_CONT does
        for within in list(tree.find_all(sqlglot.exp.WithinGroup)):
            if isinstance(within.this, sqlglot.exp.PercentileCont):
                ordered = within.expression.expressions[0].this
                within.replace(sqlglot.exp.Anonymous(this="percentile",
                                                     expressions=[ordered, within.this.this]))
    return tree.sql(dialect=dialect)


@dataclass
class _Result:
    """What a query gave: its rows and its columns (DB-API `description`)."""

    rows: list[tuple]
    description: list[tuple]

    def fetchall(self) -> list[tuple]:
        return self.rows

    def fetchone(self) -> tuple | None:
        return self.rows[0] if self.rows else None


class PostgresEngine:
    """KPIs computed in PostgreSQL (`postgresql://user@host:port/db`), on the canonical tables in `schema`: the
    `Engine` that kpicore.compute needs. Each query is transpiled once and runs in its own read-only transaction,
    with JIT compilation off (it costs seconds on a statement this wide and saves nothing)."""

    def __init__(self, dsn: str, schema: str = "kpi") -> None:
        import psycopg  # imported here: only a PostgreSQL engine needs the driver

        self.dsn, self.schema, self.dialect = dsn, schema, "postgres"
        self._lock = threading.Lock()  # one statement at a time on the connection (the app's sessions share it)
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._conn.execute("SET jit = off")

    def execute(self, query: str, parameters: dict[str, Any] | None = None) -> _Result:
        sql = _LITERAL_PERCENT.sub("%%", transpile(query, "postgres"))  # sqlglot writes $name as %(name)s
        with self._lock, self._conn.transaction(), self._conn.cursor() as cursor:
            cursor.execute("SET TRANSACTION READ ONLY")
            cursor.execute(sql, parameters or {})
            columns = [(column.name,) for column in cursor.description or ()]
            return _Result(cursor.fetchall() if cursor.description else [], columns)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def writing(self) -> Iterator[Any]:
        """A transaction on the server for writing the canonical tables (see `copy_tables`)."""
        with self._conn.transaction():
            yield self._conn

    def relation_kind(self, schema: str, name: str) -> str | None:
        """Whether `schema.name` is a "VIEW" or a "TABLE" here (None: neither)."""
        found = self.execute("SELECT table_type FROM information_schema.tables WHERE table_schema = $schema AND "
                             "table_name = $name", {"schema": schema, "name": name}).fetchone()
        return None if found is None else "VIEW" if found[0] == "VIEW" else "TABLE"

    def define(self, statements: Sequence[str]) -> None:
        """Run statements already in PostgreSQL's dialect (views, schemas) in one transaction: all or none."""
        with self._lock, self.writing() as conn:
            for statement in statements:
                conn.execute(statement)  # without parameters, psycopg sends the text as it is


class SparkEngine:
    """KPIs computed by Spark SQL (a `local[*]` session here, or a `spark://host:port` master), on the canonical
    tables of a Spark database `schema`: the `Engine` kpicore.compute needs. Parameters are bound by Spark
    (`spark.sql(query, args=...)`); medians use Spark's exact `percentile()` (see `transpile`)."""

    def __init__(self, master: str = "local[2]", schema: str = "kpi", warehouse: str | None = None) -> None:
        from pyspark.sql import SparkSession  # imported here: only a Spark engine needs pyspark

        builder = (SparkSession.builder.master(master).appName("kpicore")
                   .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                   .config("spark.sql.shuffle.partitions", "4")
                   .config("spark.sql.session.timeZone", "UTC").config("spark.sql.ansi.enabled", "false"))
        if warehouse is not None:
            builder = builder.config("spark.sql.warehouse.dir", warehouse)
        self.session, self.schema, self.dialect = builder.getOrCreate(), schema, "spark"

    def execute(self, query: str, parameters: dict[str, Any] | None = None) -> _Result:
        frame = self.session.sql(transpile(query, "spark"), args=dict(parameters or {}))
        return _Result([tuple(row) for row in frame.collect()], [(name,) for name in frame.columns])

    def close(self) -> None:
        self.session.stop()

    def define(self, statements: Sequence[str]) -> None:
        """Run statements already in Spark's dialect (views, databases), one after another (Spark SQL has no
        transactions: a failed one leaves the earlier ones made)."""
        for statement in statements:
            self.session.sql(statement)

    def relation_kind(self, schema: str, name: str) -> str | None:
        """Whether `schema.name` is a "VIEW" or a "TABLE" here (None: neither)."""
        if not self.session.catalog.tableExists(name, schema):
            return None
        return "VIEW" if self.session.catalog.getTable(f"{schema}.{name}").tableType == "VIEW" else "TABLE"

    def write_rows(self, schema: str, name: str, canonical: str, rows: Sequence[tuple]) -> None:
        """A table `schema.name` with the columns of a canonical table and these rows (in the data model's column
        order), replacing one of the same name; written through the driver, so a cluster's executors need no
        access to this machine's files. Timestamps are kept as written (without a time zone)."""
        columns = ", ".join(f"`{c.name}` {_SPARK_TYPES[c.type]}" for c in TABLES[canonical].columns)
        self.session.sql(f"CREATE DATABASE IF NOT EXISTS `{schema}`")
        frame = self.session.createDataFrame(list(rows), schema=columns)
        frame.write.mode("overwrite").saveAsTable(f"`{schema}`.`{name}`")

    def write_tables(self, files: dict[str, Path]) -> None:
        """Make the engine's database hold the canonical tables, each read from a Parquet file (DuckDB writes
        them: `COPY (SELECT ...) TO 'x.parquet'`), replacing what was there."""
        self.session.sql(f"CREATE DATABASE IF NOT EXISTS `{self.schema}`")
        for name, path in files.items():
            self.session.sql(f"DROP TABLE IF EXISTS `{self.schema}`.`{name}`")
            self.session.sql(f"CREATE TABLE `{self.schema}`.`{name}` USING parquet LOCATION '{path}'")


class PostgresState:
    """The app's own tables (snapshots, check-ins, targets, saved mappings, kept values) in a PostgreSQL schema, so
    that several app processes (replicas) share them: the connection kpicore.store and the modules beside it use,
    taking the same SQL as a DuckDB connection (transpiled, `?` and `$name` parameters). A transaction first takes
    a lock every process shares, so two replicas never commit a snapshot with the same number."""

    LOCK = 0x6B7069  # the advisory lock the processes writing one state schema take in turn

    def __init__(self, dsn: str, schema: str) -> None:
        import psycopg

        self.schema = schema
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._conn.execute("SET jit = off")
        self._conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
        self._conn.execute(f"SET search_path TO {quote(schema)}")

    def execute(self, query: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        if query.strip().upper() in ("BEGIN", "BEGIN TRANSACTION"):
            self._conn.execute("BEGIN")
            return self._conn.execute(f"SELECT pg_advisory_xact_lock({self.LOCK})")
        sql = transpile(query, "postgres")
        if parameters:
            return self._conn.execute(_LITERAL_PERCENT.sub("%%", sql), parameters)
        return self._conn.execute(sql)

    def cursor(self) -> PostgresState:
        return self

    def __enter__(self) -> PostgresState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()


def open_state(dsn: str, schema: str) -> PostgresState:
    """A connection to the state schema; KpiError saying what to check when the server cannot be reached."""
    try:
        return PostgresState(dsn, schema)
    except Exception as error:  # the driver's: the server is down or refuses the login
        raise KpiError(f"The PostgreSQL server holding the app's own tables cannot be reached ({first_line(error)}). "
                       "Check KPI_ENGINE (or KPI_STATE) and that the server runs.") from None


class StatePool:
    """The state schema as the app uses it: a connection per script run, taken from a few kept open (the
    PostgreSQL counterpart of kpicore.store.Database)."""

    def __init__(self, dsn: str, schema: str, prepare: Callable[[PostgresState], None], keep: int = 8) -> None:
        self.dsn, self.schema, self.keep = dsn, schema, keep
        self._free: list[PostgresState] = []
        self._lock = threading.Lock()
        with self.cursor() as first:
            prepare(first)

    @contextmanager
    def cursor(self) -> Iterator[PostgresState]:
        with self._lock:
            conn = self._free.pop() if self._free else None
        if conn is None:
            conn = open_state(self.dsn, self.schema)
        try:
            yield conn
        except BaseException:
            conn.close()  # it may be inside a failed transaction
            raise
        with self._lock:
            if len(self._free) < self.keep:
                self._free.append(conn)
                return
        conn.close()


def copy_tables(rows_of: Iterable[tuple[str, Sequence[tuple]]], engine: PostgresEngine) -> dict[str, int]:
    """Write canonical tables into the engine's schema, replacing what was there (one transaction): `rows_of`
    gives each table's name and its rows in the data model's column order. The rows written per table."""
    return write_tables(engine, engine.schema, [(name, name, rows) for name, rows in rows_of])


def write_tables(engine: PostgresEngine, schema: str, tables: Iterable[tuple[str, str, Sequence[tuple]]],
                 then: Sequence[str] = ()) -> dict[str, int]:
    """Write tables into a schema of the engine, replacing any of the same name, then run the statements `then`
    (already in PostgreSQL's dialect), all in one transaction: `tables` gives each table's name there, the
    canonical table whose columns it has, and its rows in the data model's column order."""
    written = {}
    with engine.writing() as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
        for name, canonical, rows in tables:
            table = TABLES[canonical]
            target = f"{quote(schema)}.{quote(name)}"
            columns = ", ".join(quote(c.name) for c in table.columns)
            conn.execute(f"DROP TABLE IF EXISTS {target}")
            conn.execute(f"CREATE TABLE {target} ("
                         + ", ".join(f"{quote(c.name)} {_PG_TYPES[c.type]}" for c in table.columns) + ")")
            with conn.cursor().copy(f"COPY {target} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            written[name] = len(rows)
        for statement in then:
            conn.execute(statement)
    return written


def kpi_sql(catalog: Catalog, kpi_id: str, grain: Grain, periods: Sequence[Period], schema: str,
            dialect: str) -> tuple[str, dict[str, Any]]:
    """The query that computes one KPI (and what it is computed from) for these periods, as `dialect` writes it,
    and its parameters (`$name` in the SQL)."""
    by_id = {k.id: k for k in catalog.kpis}
    if kpi_id not in by_id:
        raise BadParameter(f"'{kpi_id}' is not in the catalog in use. Use one of: {', '.join(by_id)}.")
    needed, todo = set(), [kpi_id]
    while todo:
        current = todo.pop()
        if current in needed or current not in by_id:
            continue
        needed.add(current)
        formula = by_id[current].formula
        todo += references(formula) if isinstance(formula, (Ratio, Derived)) else []
    subset = replace(catalog, kpis=tuple(k for k in catalog.kpis if k.id in needed))
    sql, params = build_query(subset, grain, periods, schema)
    return transpile(sql, dialect), dict(params)
