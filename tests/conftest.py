"""Shared fixtures: the shipped catalog, a real DuckDB file with the sample data, tiny stores."""
from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from kpicore import store
from kpicore.catalog import Catalog, load_catalog

ROOT = Path(__file__).resolve().parent.parent


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
def memory_conn() -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB with the snapshots table and no data."""
    conn = duckdb.connect(":memory:")
    yield conn
    conn.close()
