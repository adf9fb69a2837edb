"""One's own data in a real browser: an empty workspace, a 2016-2017 pipeline and a churn-flag list via the Data page.

Expected values are computed with pandas straight from the files in tests/fixtures/real/.
"""
from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from browser_support import warmed_server
from playwright.sync_api import Browser, Locator, Page, expect

from kpicore import store
from kpicore.texts import WELCOME_TITLE

REAL = Path(__file__).resolve().parent / "fixtures" / "real"
NAV = ["Overview", "Marketing", "Sales", "Service", "Journey", "Glossary", "Data"]
OUTCOMES = ["Customer retention rate", "Churn rate", "Net revenue retention",
    "Net revenue retention (12 months)", "Lead-to-customer rate",
            "Lead-to-revenue", "Net promoter score", "Customer satisfaction (CSAT)", "CLV to CAC ratio"]


@pytest.fixture
def empty_url(chromium: Browser, tmp_path: Path) -> Iterator[str]:
    """A server on a database with empty tables, past its first view."""
    db = tmp_path / "empty.duckdb"
    store.connect(db, sample=False).close()
    with warmed_server(chromium, db, tmp_path / "streamlit.log", ready="stPageLink") as url:
        yield url


def tile(page: Page, label: str) -> Locator:
    return page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel").filter(has_text=label))


def value_of(page: Page, label: str) -> Locator:
    return tile(page, label).first.get_by_test_id("stMetricValue")


def choose(page: Page, combobox: Locator, option: str) -> None:
    """Pick an option of a selectbox (scrolled into view first: a scroll closes the dropdown)."""
    combobox.scroll_into_view_if_needed()
    expect(combobox).to_be_in_viewport()
    combobox.click()
    page.get_by_role("option", name=option, exact=True).click()
    expect(combobox).to_have_value(option)


def upload(page: Page, url: str, path: Path) -> None:
    page.goto(f"{url}/data")
    expect(page.get_by_role("heading", name="Data", exact=True).first).to_be_visible()
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(path)
    expect(page.get_by_role("heading", name=path.name)).to_be_visible()


def import_files(page: Page) -> None:
    page.get_by_role("button", name=re.compile(r"^Import 1 file")).click()
    expect(page.get_by_role("heading", name=re.compile(r"Imported as snapshot"))).to_be_visible()


def test_every_page_of_an_empty_workspace_welcomes_and_points_to_the_data_page(app_page: Page,
                                                                              empty_url: str) -> None:
    app_page.goto(f"{empty_url}/")
    for name in NAV:
        app_page.get_by_test_id("stTopNavLink").filter(has_text=name).click()
        expect(app_page.get_by_role("heading", name=WELCOME_TITLE)).to_be_visible()
        if name != "Data":  # the Data page has the upload itself
            expect(app_page.get_by_role("link", name=re.compile("Upload exports on the Data page"))).to_be_visible()
        expect(app_page.get_by_test_id("stException")).to_have_count(0)
    expect(app_page.get_by_test_id("stFileUploader")).to_be_in_viewport()  # the upload is on the first screen
    app_page.get_by_test_id("stTopNavLink").filter(has_text="Overview").click()
    app_page.get_by_role("link", name=re.compile("Templates for every table")).click()
    expect(app_page).to_have_url(re.compile(r"/data\?"))
    expect(app_page.get_by_role("button", name="Download an empty leads template")).to_have_count(0)  # collapsed
    expect(app_page.get_by_text("leads", exact=True).first).to_be_visible()


def test_a_pipeline_and_a_churn_list_in_an_empty_workspace_show_their_own_numbers(app_page: Page, empty_url: str,
                                                                                 tmp_path: Path) -> None:
    pipeline = pd.read_csv(REAL / "crm_sales_pipeline.csv")
    closed = pipeline[pipeline.deal_stage.isin(["Won", "Lost"])].copy()
    closed["month"] = pd.to_datetime(closed.close_date, format="%m/%d/%Y").dt.strftime("%Y-%m")
    june = closed[closed.month == "2017-06"]
    june_rate = (june.deal_stage == "Won").mean()
    year_rate = (closed.deal_stage == "Won").mean()  # every deal closed in 2017

    upload(app_page, empty_url, REAL / "crm_sales_pipeline.csv")
    expect(app_page.get_by_role("combobox", name="Table", exact=True)).to_have_value("opportunities")
    expect(app_page.get_by_text(re.compile("has no column for the required created_at"))).to_be_visible()
    expect(app_page.get_by_role("button", name=re.compile(r"^Import"))).to_be_disabled()
    choose(app_page, app_page.get_by_role("combobox", name="created_at *"), "engage_date")
    choose(app_page, app_page.get_by_role("combobox", name="customer_id"), "— none —")
    expect(app_page.get_by_role("combobox", name="amount")).to_have_value("close_value")  # recognised by values
    import_files(app_page)

    app_page.goto(f"{empty_url}/sales?grain=month&period=2017-06")
    expect(value_of(app_page, "Win rate")).to_have_text(f"{june_rate * 100:.1f}%")
    app_page.goto(f"{empty_url}/sales?grain=year&period=2017")
    expect(value_of(app_page, "Win rate")).to_have_text(f"{year_rate * 100:.1f}%")
    app_page.goto(f"{empty_url}/?grain=month&period=2017-06")
    for label in OUTCOMES:  # no sample number anywhere
        expect(value_of(app_page, label)).to_have_text("–")

    churned = pd.read_csv(REAL / "telco_customer_churn.csv").Churn.eq("Yes").mean()
    listed = tmp_path / "telco_customers_2026-11-30.csv"  # exported on 30 November, as its name says
    shutil.copy(REAL / "telco_customer_churn.csv", listed)
    upload(app_page, empty_url, listed)
    choose(app_page, app_page.get_by_role("combobox", name="Table", exact=True), "customers")
    expect(app_page.get_by_role("button", name=re.compile(r"^Import"))).to_be_disabled()
    app_page.get_by_text("This is a status-only export").click()
    expect(app_page.get_by_text("Proposed from its file name: check it.")).to_be_visible()
    expect(app_page.get_by_test_id("stDateInput")).to_contain_text("2026-11-30")
    import_files(app_page)
    app_page.goto(f"{empty_url}/?grain=month&period=2026-11")
    expect(value_of(app_page, "Churn rate")).to_have_text(f"{churned * 100:.1f}%")
    expect(value_of(app_page, "New customers")).to_have_count(0)  # not on the Overview: a Sales KPI
    app_page.goto(f"{empty_url}/sales?grain=month&period=2026-11")
    expect(value_of(app_page, "New customers")).to_have_text("–")  # the list has no acquisition dates
