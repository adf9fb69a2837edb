"""Two app replicas on one PostgreSQL: two real `streamlit run` processes, their data and their own tables (snapshots,
kept values, check-ins) in the same PostgreSQL server, driven by Chromium. An upload through one is visible through
the other, and a link copied from one opens on the other with the same numbers."""
from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from browser_support import TIMEOUT_MS, streamlit_server
from pg_support import postgres_server
from playwright.sync_api import Browser, Page, expect
from test_engines import copy_schema

from kpicore import store, warehouse
from kpicore.model import TABLES

# the export uploaded through replica A: three leads created in October 2026, one in September
LEADS = ("lead_id,created_at,channel\nR1,2026-10-01 09:00:00,web\nR2,2026-10-12 10:00:00,event\n"
         "R3,2026-10-30 17:00:00,web\nR4,2026-09-15 08:00:00,web\n")


@pytest.fixture(scope="module")
def replicas(sample_db: Path, tmp_path_factory: pytest.TempPathFactory,
             chromium: Browser) -> Iterator[tuple[str, str]]:
    """The sample data in a PostgreSQL schema with the canonical views over it, and two app processes computing
    on it and sharing their state there (KPI_ENGINE); their base URLs, each past its first page view."""
    folder = tmp_path_factory.mktemp("replicas")
    with postgres_server() as dsn, pytest.MonkeyPatch.context() as env:
        conn = duckdb.connect(str(sample_db), read_only=True)
        engine = copy_schema(conn, store.latest_snapshot(conn).schema, dsn, "crm")  # the company's tables
        conn.close()
        identity = {name: warehouse.Source(name, ("crm", name), {c.name: c.name for c in table.columns}, {})
                    for name, table in TABLES.items()}
        warehouse.make_views(engine, identity, "kpi", "mapping.yaml")  # and the canonical views over them
        engine.close()
        port = dsn.split("port=")[1].split()[0]
        env.setenv("KPI_ENGINE", f"postgresql://kpi@127.0.0.1:{port}/postgres")
        env.setenv("KPI_SCHEMA", "kpi")
        with streamlit_server(folder / "a.duckdb", folder / "a.log") as a, \
                streamlit_server(folder / "b.duckdb", folder / "b.log") as b:
            for url in (a, b):
                page = chromium.new_page()
                page.goto(f"{url}/")
                page.get_by_test_id("stMetricValue").first.wait_for(timeout=TIMEOUT_MS)
                page.close()
            yield a, b
        assert not (folder / "a.duckdb").exists() and not (folder / "b.duckdb").exists()  # nothing kept locally


def tiles(page: Page) -> dict[str, str]:
    """Every metric tile of the page once it is drawn (the same number of tiles for a second): label and value."""
    page.get_by_test_id("stMetricValue").first.wait_for(timeout=TIMEOUT_MS)
    counts = [-1]
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while (len(counts) < 3 or len(set(counts[-3:])) > 1) and time.monotonic() < deadline:
        page.wait_for_timeout(500)
        counts.append(page.get_by_test_id("stMetric").count())
    found = {}
    for tile in page.get_by_test_id("stMetric").all():
        found[tile.get_by_test_id("stMetricLabel").inner_text().strip()] = \
            tile.get_by_test_id("stMetricValue").inner_text().strip()
    return found


def tile(page: Page, label: str):
    """The value of the metric tile with exactly this label."""
    named = page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True)
    return page.get_by_test_id("stMetric").filter(has=named).get_by_test_id("stMetricValue")


def test_an_upload_through_one_replica_is_seen_through_the_other(replicas, chromium: Browser,
                                                                 tmp_path: Path) -> None:
    a, b = replicas
    context = chromium.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{b}/marketing?period=2026-10")
    before = tile(page, "Leads").inner_text()
    assert before not in ("", "3"), before  # the sample's October

    export = tmp_path / "leads.csv"
    export.write_text(LEADS, encoding="utf-8")
    page.goto(f"{a}/data")
    expect(page.get_by_text("KPIs are computed on the warehouse")).to_be_visible()
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(export)
    expect(page.get_by_role("heading", name="leads.csv")).to_be_visible()
    page.get_by_role("button", name="Import 1 file(s)").click()
    expect(page.get_by_role("heading", name=re.compile(r"Imported as snapshot \d+"))).to_be_visible()
    imported = re.search(r"snapshot (\d+)", page.get_by_role("heading", name=re.compile("Imported as")).inner_text())

    page.goto(f"{b}/marketing?period=2026-10")  # the other replica, a new visit
    expect(tile(page, "Leads")).to_have_text("3")  # R1, R2, R3
    expect(page.get_by_test_id("stSidebar").get_by_text(f"snapshot {imported.group(1)}", exact=False)).to_be_visible()
    context.close()


def test_a_link_from_one_replica_opens_on_the_other_with_the_same_numbers(replicas, chromium: Browser) -> None:
    a, b = replicas
    context = chromium.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{a}/sales?period=2026-09&grain=month&comparison=year")
    on_a = tiles(page)
    link = page.get_by_test_id("stSidebar").get_by_test_id("stCode").inner_text().strip()
    assert link.startswith(a) and "snapshot=" in link, link  # the link pins the snapshot shown
    page.goto(link.replace(a, b))
    expect(page.get_by_test_id("stMain").get_by_role("heading", name="Sales", exact=True).first).to_be_visible()
    assert len(on_a) > 5
    expect(page.get_by_test_id("stMetric")).to_have_count(len(on_a))
    for label, value in on_a.items():  # each as drawn on A (waiting while B draws)
        expect(tile(page, label)).to_have_text(value)
    context.close()
