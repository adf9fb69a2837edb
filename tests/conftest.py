"""Shared fixtures: the shipped catalog, a real DuckDB file with the sample data, tiny stores."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS
from playwright.sync_api import Browser, Page, sync_playwright

from kpicore import store
from kpicore.catalog import Catalog, load_catalog

ROOT = Path(__file__).resolve().parent.parent
# The slowest test files under CI's load, slowest first. Two workers take whole files (--dist loadfile) in the
# order they are collected: with these first, neither worker is left alone with a long file at the end (the kill
# loop once started last and ran on one worker while the other was done).
SLOWEST_FIRST = ("test_spark.py", "test_reference.py", "test_hostile_browser.py", "test_kill.py",
                 "test_benchmark.py", "test_install.py", "test_browser.py", "test_engines.py", "test_replicas.py",
                 "test_load.py", "test_own_data_browser.py", "test_warehouse.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Collect the slowest files first (the rest in their usual order: the sort is stable)."""
    rank = {name: place for place, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The shipped KPI catalog."""
    return load_catalog(ROOT / "kpicore" / "catalog.yaml")


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file on disk holding the bundled sample data as snapshot 1 (read it, do not change it)."""
    path = tmp_path_factory.mktemp("db") / "kpi.duckdb"
    store.connect(path).close()
    return path


@pytest.fixture
def app_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh DuckDB file with the sample data, which the app (AppTest) of this test reads."""
    path = tmp_path / "app.duckdb"
    store.connect(path).close()
    monkeypatch.setenv("KPI_DB", str(path))
    monkeypatch.delenv("KPI_CATALOG", raising=False)
    return path


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium; CI installs it, so a missing one is a failure, not a skip."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium package (apt-get install chromium).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def app_page(chromium: Browser) -> Iterator[Page]:
    """A fresh browser tab per test, waiting up to a minute for elements."""
    context = chromium.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


@pytest.fixture
def memory_conn() -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB with the snapshots table and no data."""
    conn = duckdb.connect(":memory:")
    yield conn
    conn.close()


def build_tiny_store(conn: duckdb.DuckDBPyConnection, rows: dict[str, list[dict]], schema: str = "tiny") -> str:
    """Create every canonical table in `schema` (typed as the data model says) and insert `rows`.

    `rows` maps a table name to a list of dicts (column -> value; missing columns are NULL).
    Returns the schema name, ready for `kpicore.compute.compute(conn, catalog, schema, grain)`.
    Note: compute only reports complete periods, i.e. up to the last period that ends by the latest
    date in the data (let some row fall on the period's last day), starting with the period in which
    every non-empty table has data.
    """
    from kpicore.model import TABLES
    from kpicore.sql import quote

    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
    for name, table in TABLES.items():
        columns = ", ".join(f"{quote(c.name)} {c.type.sql}" for c in table.columns)
        conn.execute(f"CREATE OR REPLACE TABLE {quote(schema)}.{quote(name)} ({columns})")
        for row in rows.get(name, []):
            unknown = set(row) - set(table.column_names)
            assert not unknown, f"{name} has no columns {unknown}"
            names = ", ".join(quote(c) for c in row)
            marks = ", ".join("?" for _ in row)
            conn.execute(f"INSERT INTO {quote(schema)}.{quote(name)} ({names}) VALUES ({marks})", list(row.values()))
    return schema


@pytest.fixture
def tiny_store(memory_conn: duckdb.DuckDBPyConnection):
    """A function rows -> schema that fills a fresh in-memory DuckDB with hand-made canonical tables."""
    return lambda rows, schema="tiny": build_tiny_store(memory_conn, rows, schema)

