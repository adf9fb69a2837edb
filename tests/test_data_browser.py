"""The Data page in a real browser: upload a German export, correct its mapping, import, see Sales change."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 60_000

# A German CRM export: semicolons, Windows-1252 (the euro sign is byte 0x80), decimal comma, dd.mm.yyyy dates.
# D-3 "Engaging" is an open deal with an expected close date; the user says it was lost.
GERMAN_EXPORT = "\r\n".join([
    "Deal ID;Deal Stage;Betrag;Erstellt am;Close Date;Deal Owner",
    "D-1;Gewonnen;1.234,50 €;01.09.2026;15.10.2026;Anna Keller",
    "D-2;Verloren;2.000,00 €;02.09.2026;20.10.2026;Emma Clarke",
    "D-3;Engaging;3.500,00 €;05.10.2026;25.10.2026;Lena Fischer",
    "D-4;Gewonnen;10.000,00 €;10.09.2026;30.10.2026;Anna Keller",
    "D-5;Engaging;800,00 €;12.10.2026;;Emma Clarke",
    "",
]).encode("cp1252")
# October 2026 by close date: won D-1 and D-4, lost D-2 and D-3 once "Engaging" is mapped to lost.
EXPECTED = {"Average deal size": "€5,617", "Win rate": "50.0%"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(db: Path, log: Path) -> Iterator[str]:
    """`streamlit run dashboard.py` on a free port, its base URL while it runs; stopped afterwards."""
    port = _free_port()
    env = {**os.environ, "KPI_DB": str(db)}
    env.pop("KPI_CATALOG", None)
    command = [sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.headless", "true",
               "--server.port", str(port), "--browser.gatherUsageStats", "false"]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not come up on port {port}:\n{log.read_text(errors='replace')}")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium; CI installs it, so a missing one is a failure, not a skip."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium package (apt-get install chromium).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def data_db(sample_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's own copy of the sample database: the server imports into it."""
    path = tmp_path_factory.mktemp("data-browser") / "kpi.duckdb"
    shutil.copy(sample_db, path)
    return path


@pytest.fixture(scope="module")
def app_url(chromium: Browser, data_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the module, already past its first page view (a first deep link gets Streamlit's notice)."""
    with streamlit_server(data_db, tmp_path_factory.mktemp("log") / "streamlit.log") as url:
        page = chromium.new_page()
        page.goto(f"{url}/")
        page.get_by_test_id("stMetricValue").first.wait_for(timeout=TIMEOUT_MS)
        page.close()
        yield url


@pytest.fixture
def app_page(chromium: Browser) -> Iterator[Page]:
    """A fresh tab per test."""
    context = chromium.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


def metric_value(page: Page, label: str) -> Locator:
    """The value of the metric tile with this label."""
    tile = page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel").filter(has_text=label))
    return tile.get_by_test_id("stMetricValue")


def choose(page: Page, combobox: Locator, option: str) -> None:
    """Pick an option of a selectbox.

    Scrolled into view first: the dropdown closes on a scroll, and Playwright's own scroll before a click can
    land just after the dropdown opened.
    """
    combobox.scroll_into_view_if_needed()
    expect(combobox).to_be_in_viewport()
    combobox.click()
    page.get_by_role("option", name=option, exact=True).click()
    expect(combobox).to_have_value(option)


def sales_metrics(page: Page, url: str) -> dict[str, str]:
    page.goto(f"{url}/sales")
    expect(page.get_by_test_id("stMain").get_by_role("heading", name="Sales", exact=True).first).to_be_visible()
    return {label: metric_value(page, label).inner_text() for label in EXPECTED}


def test_german_export_uploaded_corrected_and_imported_changes_the_sales_page(
    app_page: Page, app_url: str, tmp_path: Path
) -> None:
    before = sales_metrics(app_page, app_url)
    assert before != EXPECTED and all(before.values()), before
    export = tmp_path / "hubspot_deals.csv"
    export.write_bytes(GERMAN_EXPORT)

    app_page.goto(f"{app_url}/data")
    expect(app_page.get_by_role("heading", name="Data", exact=True).first).to_be_visible()
    app_page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(export)

    expect(app_page.get_by_role("heading", name="hubspot_deals.csv")).to_be_visible()
    expect(app_page.get_by_text("cp1252, delimiter ';'")).to_be_visible()
    expect(app_page.get_by_role("combobox", name="Table")).to_have_value("opportunities")
    expect(app_page.get_by_role("combobox", name="amount")).to_have_value("Betrag")
    engaging = app_page.get_by_role("combobox", name="Engaging")
    expect(engaging).to_have_value("open")

    choose(app_page, engaging, "lost")

    app_page.get_by_role("button", name="Import 1 file(s)").click()
    expect(app_page.get_by_role("heading", name=re.compile(r"Imported as snapshot 2"))).to_be_visible()
    expect(metric_value(app_page, "Rows imported")).to_have_text("5")
    expect(metric_value(app_page, "Rows rejected")).to_have_text("0")

    # the same session, through the navigation, as a user goes on
    app_page.get_by_test_id("stTopNavLink").filter(has_text="Sales").click()
    expect(app_page).to_have_url(re.compile(r"/sales\?.*snapshot=2"))
    for label, value in EXPECTED.items():
        expect(metric_value(app_page, label)).to_have_text(value)

    # a colleague opening /sales afterwards
    after = sales_metrics(app_page, app_url)
    assert after == EXPECTED, (before, after)
