"""The Data page in a real browser: upload a German export, correct its mapping, import, see Sales change."""
from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import warmed_server
from playwright.sync_api import Browser, Locator, Page, expect

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


@pytest.fixture(scope="module")
def data_db(sample_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's own copy of the sample database: the server imports into it."""
    path = tmp_path_factory.mktemp("data-browser") / "kpi.duckdb"
    shutil.copy(sample_db, path)
    return path


@pytest.fixture(scope="module")
def app_url(chromium: Browser, data_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the module, already past its first page view (a first deep link gets Streamlit's notice)."""
    with warmed_server(chromium, data_db, tmp_path_factory.mktemp("log") / "streamlit.log") as url:
        yield url


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
    expect(app_page.get_by_role("combobox", name="Table", exact=True)).to_have_value("opportunities")
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
