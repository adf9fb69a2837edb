"""The app in a real browser: `streamlit run dashboard.py` driven by Playwright and Debian's Chromium."""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import pytest
from browser_support import TIMEOUT_MS, streamlit_server, warmed_server
from playwright.sync_api import Browser, Page, expect

from kpicore import store

OUTCOMES = [
    "Customer retention rate", "Churn rate", "Net revenue retention",
    "Net revenue retention (12 months)", "Lead-to-customer rate", "Lead-to-revenue",
    "Net promoter score", "Customer satisfaction (CSAT)", "CLV to CAC ratio",
]
PAGES = ["Overview", "Marketing", "Sales", "Service", "Glossary"]


@pytest.fixture(scope="module")
def browser_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file with the sample data for the servers of this module."""
    path = tmp_path_factory.mktemp("browser") / "kpi.duckdb"
    store.connect(path).close()
    return path


@pytest.fixture(scope="module")
def fresh_server_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second database for servers started next to the shared one (DuckDB lets one process open a file)."""
    path = tmp_path_factory.mktemp("fresh") / "kpi.duckdb"
    store.connect(path).close()
    return path


@pytest.fixture(scope="module")
def app_url(chromium: Browser, browser_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the module, already past its first page view (see test_first_visit_...)."""
    with warmed_server(chromium, browser_db, tmp_path_factory.mktemp("log") / "streamlit.log") as url:
        yield url


def open_app(page: Page, url: str) -> None:
    """Open `url` and wait until the app has drawn its metrics."""
    page.goto(url)
    page.get_by_test_id("stMetricValue").first.wait_for(timeout=TIMEOUT_MS)


@contextmanager
def screen(chromium: Browser, width: int, height: int) -> Iterator[Page]:
    """A tab in a fresh browser context (no cookies, no session) with a screen of this size."""
    context = chromium.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()


def url_params(page: Page) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(urlparse(page.url).query).items()}


def test_overview_shows_outcomes_and_every_team_scorecard(app_page: Page, app_url: str) -> None:
    open_app(app_page, f"{app_url}/")
    expect(app_page.get_by_test_id("stMetricLabel")).to_have_count(len(OUTCOMES) + 2)  # and the story's two
    expect(app_page.locator(".st-key-contrast [data-testid=stMetricLabel]")).to_have_text(
        ["Teams' own KPIs (average)", "Customer outcomes"])
    for label in OUTCOMES:
        expect(app_page.get_by_test_id("stMetricLabel").filter(has_text=label).first).to_be_visible()
    for team in ["Marketing", "Sales", "Service"]:
        expect(app_page.get_by_role("heading", name=team, exact=True)).to_be_visible()
    expect(app_page.get_by_test_id("stMarkdownContainer").filter(has_text=re.compile(r"\bScore \d+%"))).to_have_count(3)
    expect(app_page.get_by_test_id("stDataFrame")).to_have_count(3)


def test_team_link_with_period_shows_that_team_and_period(app_page: Page, app_url: str) -> None:
    open_app(app_page, f"{app_url}/sales?period=2026-07")
    main = app_page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name="Sales", exact=True).first).to_be_visible()
    expect(main.get_by_text(re.compile(r"Month 2026-07 · compared with previous period \(2026-06\)"))).to_be_visible()
    labels = app_page.get_by_test_id("stMetricLabel")
    for label in [*OUTCOMES, "Win rate", "Average deal size", "Opportunities"]:
        expect(labels.filter(has_text=label).first).to_be_visible()
    expect(labels.filter(has_text="Tickets resolved")).to_have_count(0)
    expect(app_page.get_by_role("combobox", name="Period")).to_have_value("2026-07")
    assert url_params(app_page)["period"] == "2026-07"


def test_invalid_url_parameter_warns_and_shows_the_default(app_page: Page, app_url: str) -> None:
    open_app(app_page, f"{app_url}/?grain=fortnight")
    expect(app_page.get_by_test_id("stAlert").filter(has_text="URL parameter grain")).to_be_visible()
    expect(app_page.get_by_test_id("stMetricValue")).to_have_count(len(OUTCOMES) + 2)  # and the story's two
    expect(app_page).to_have_url(re.compile(r"grain=month"))


def test_app_writes_its_view_into_the_url(app_page: Page, app_url: str) -> None:
    open_app(app_page, f"{app_url}/")
    expect(app_page).to_have_url(re.compile(r"period=2026-10"))
    assert url_params(app_page) == {"grain": "month", "period": "2026-10", "comparison": "previous", "snapshot": "1"}


def test_period_picker_changes_the_url_and_the_view(app_page: Page, app_url: str) -> None:
    open_app(app_page, f"{app_url}/service")
    caption = app_page.get_by_test_id("stMain").get_by_text(re.compile(r"^Month 2026-\d\d · compared"))
    expect(caption).to_contain_text("Month 2026-10")
    app_page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").click()
    app_page.get_by_role("option", name="2026-07", exact=True).click()
    expect(app_page).to_have_url(re.compile(r"period=2026-07"))
    expect(caption).to_contain_text("Month 2026-07")
    assert urlparse(app_page.url).path == "/service"
    expect(app_page.get_by_test_id("stMetricLabel").filter(has_text="Reopen rate")).to_have_count(1)


def test_navigating_to_a_team_keeps_the_view(app_page: Page, app_url: str) -> None:
    open_app(app_page, f"{app_url}/?period=2026-07&comparison=year_ago")
    app_page.get_by_test_id("stTopNavLink").filter(has_text="Sales").click()
    expect(app_page).to_have_url(re.compile(r"/sales\?"))
    expect(app_page.get_by_test_id("stMetricLabel").filter(has_text="Win rate")).to_have_count(1)
    expect(app_page.get_by_test_id("stMain").get_by_text(re.compile(r"^Month 2026-07 · compared"))).to_contain_text(
        "same period last year (2025-07)")
    assert url_params(app_page) == {"grain": "month", "period": "2026-07", "comparison": "year_ago", "snapshot": "1"}

    app_page.get_by_test_id("stTopNavLink").filter(has_text="Overview").click()
    app_page.get_by_role("link", name=re.compile("Open Service")).first.click()  # one per Service tension shown
    expect(app_page).to_have_url(re.compile(r"/service\?"))
    expect(app_page.get_by_test_id("stMetricLabel").filter(has_text="Reopen rate")).to_have_count(1)
    assert url_params(app_page) == {"grain": "month", "period": "2026-07", "comparison": "year_ago", "snapshot": "1"}


# The first request after a start is often a shared team link; Streamlit treats pages/ as an old-style pages
# folder until st.navigation has run once and would show its "Page not found" notice. The README's start
# command (serve.py) tells it first that dashboard.py routes.
@pytest.mark.parametrize(("path", "title"), [("/glossary", "Glossary"), ("/sales", "Sales"), ("/", "Overview")])
def test_first_visit_after_start_on_a_deep_link_shows_the_whole_app_without_notice(
    path: str, title: str, chromium: Browser, fresh_server_db: Path, tmp_path: Path
) -> None:
    """The first link anyone opens after a (re)start is often a shared deep link; it must work like any other."""
    with streamlit_server(fresh_server_db, tmp_path / "streamlit.log") as url:
        page = chromium.new_page()
        try:
            page.goto(f"{url}{path}")
            page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=TIMEOUT_MS)
            expect(page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox")).to_have_count(1)
            expect(page.get_by_test_id("stTopNavLink")).to_contain_text(PAGES)
            expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
            page.wait_for_timeout(1000)  # the notice would come with the first run's messages
            expect(page.get_by_text("Page not found")).to_have_count(0)
        finally:
            page.close()


def test_overview_names_the_marketing_vs_sales_tension_and_leads_to_marketing(app_page: Page, app_url: str) -> None:
    open_app(app_page, f"{app_url}/?period=2026-10")
    tension = app_page.locator(".st-key-tension-leads-win_rate-trend")
    expect(tension).to_contain_text("Marketing vs Sales")
    expect(tension).to_contain_text("Marketing's Leads improved")
    expect(tension).to_contain_text("Sales' Win rate worsened")
    tension.get_by_text("Open Marketing").click()
    expect(app_page).to_have_url(re.compile(r"/marketing\?"))
    expect(app_page.get_by_role("heading", name="Marketing", exact=True).first).to_be_visible()
    expect(app_page.get_by_test_id("stMetricLabel").filter(has_text="MQL rate")).to_have_count(1)
    assert url_params(app_page)["period"] == "2026-10"


def test_presentation_mode_has_no_sidebar_and_the_outcomes_above_the_fold(chromium: Browser, app_url: str) -> None:
    with screen(chromium, 1920, 1080) as page:
        open_app(page, f"{app_url}/?period=2026-10&present=1")
        expect(page.get_by_role("button", name="Exit presentation")).to_be_visible()
        expect(page.get_by_test_id("stSidebar")).not_to_be_visible()
        story = page.get_by_test_id("stAlert").filter(has_text="The teams meet")
        expect(story).to_be_visible()
        heading = page.get_by_role("heading", name="Customer outcomes")
        first_value = page.get_by_test_id("stMetricValue").first
        for element in (story, heading, first_value):
            box = element.bounding_box()
            assert box is not None and box["y"] + box["height"] <= 1080, box  # on the first screen
        assert first_value.evaluate("e => parseFloat(getComputedStyle(e).fontSize)") >= 48  # readable from the back


def test_back_and_forward_restore_the_period(app_page: Page, app_url: str) -> None:
    open_app(app_page, f"{app_url}/sales?period=2026-10")
    caption = app_page.get_by_test_id("stMain").get_by_text(re.compile(r"^Month 2026-\d\d · compared"))
    idle = app_page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')  # the run is over
    expect(caption).to_contain_text("Month 2026-10")
    for period in ("2026-07", "2026-04"):
        app_page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(has_text="Period").click()
        app_page.get_by_role("option", name=period, exact=True).click()
        expect(caption).to_contain_text(f"Month {period}")
        idle.wait_for()
    app_page.go_back()
    expect(caption).to_contain_text("Month 2026-07")
    expect(app_page).to_have_url(re.compile(r"period=2026-07"))
    idle.wait_for()
    app_page.go_back()
    expect(caption).to_contain_text("Month 2026-10")
    idle.wait_for()
    app_page.go_forward()
    expect(caption).to_contain_text("Month 2026-07")
    assert urlparse(app_page.url).path == "/sales"


def test_a_wall_screen_cycles_through_the_scorecard_pages(chromium: Browser, app_url: str) -> None:
    with screen(chromium, 1920, 1080) as page:
        open_app(page, f"{app_url}/?period=2026-10&present=1&cycle=10")
        expect(page.get_by_text("Next: Marketing in 10 s")).to_be_visible()
        expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
        page.get_by_role("heading", name="Marketing", exact=True).wait_for(timeout=25_000)
        expect(page).to_have_url(re.compile(r"/marketing\?"))
        params = url_params(page)
        assert (params["present"], params["cycle"], params["period"]) == ("1", "10", "2026-10")
        expect(page.get_by_test_id("stSidebar")).not_to_be_visible()
        expect(page.get_by_text("Next: Sales in 10 s")).to_be_visible()


def _tile_value(page: Page, label: str) -> str:
    tile = page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel").filter(has_text=label))
    return tile.get_by_test_id("stMetricValue").first.inner_text()


def test_links_after_a_new_upload_pinned_and_unpinned_and_a_wall_screen_that_follows(
        chromium: Browser, tmp_path: Path) -> None:
    """A pinned link keeps showing its numbers after new data arrives, an unpinned one shows the new numbers, and
    an unpinned wall screen picks the new snapshot up by itself."""
    db = tmp_path / "kpi.duckdb"
    store.connect(db).close()
    with streamlit_server(db, tmp_path / "streamlit.log") as url, screen(chromium, 1920, 1080) as wall:
        open_app(wall, f"{url}/?period=2026-10&present=1")
        assert _tile_value(wall, "Net promoter score") == "23"
        assert "snapshot" not in url_params(wall), "a wall screen opened without a snapshot is not pinned"

        from kpicore.cli import main
        assert main(["--db", str(db), "drop", "surveys"]) == 0  # snapshot 2: no NPS survey anymore

        for link, nps in ((f"{url}/?period=2026-10&snapshot=1", "23"), (f"{url}/?period=2026-10", "–")):
            with screen(chromium, 1280, 800) as page:
                open_app(page, link)
                expect(page.get_by_test_id("stMetric").filter(has_text="Net promoter score")
                       .get_by_test_id("stMetricValue")).to_have_text(nps)
        expect(wall.get_by_test_id("stMetric").filter(has_text="Net promoter score")
               .get_by_test_id("stMetricValue")).to_have_text("–", timeout=45_000)


OVERFLOW_JS = """() => {
  const bad = [];
  for (const box of document.querySelectorAll('[data-testid=stMain] [data-testid=stElementContainer]')) {
    const outer = box.getBoundingClientRect();
    if (!outer.width) continue;  // in a closed tab or expander
    for (const inner of box.querySelectorAll('canvas, svg, table, [data-testid=stDataFrame], [data-testid=stMetric]')) {
      const r = inner.getBoundingClientRect();
      if (r.width && (r.right > outer.right + 1 || r.left < outer.left - 1)) {
        bad.push(`${inner.tagName} ${Math.round(r.width)} px in ${Math.round(outer.width)} px`);
      }
    }
  }
  for (const grid of document.querySelectorAll('[data-testid=stMain] .dvn-scroller')) {
    if (grid.clientWidth && grid.scrollWidth > grid.clientWidth + 1) {
      bad.push(`table of ${grid.scrollWidth} px scrolls in ${grid.clientWidth} px`);
    }
  }
  return bad;
}"""


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (1440, 900), (1920, 1080)])
def test_story_and_contrast_on_the_first_screen_and_nothing_wider_than_its_container(
        width: int, height: int, chromium: Browser, app_url: str) -> None:
    with screen(chromium, width, height) as page:
        for path, own in (("/", "Teams' own KPIs (average)"), ("/sales", "Sales' own KPIs")):
            open_app(page, f"{app_url}{path}?period=2026-10")
            page.get_by_test_id("stVegaLiteChart").first.wait_for()
            page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()
            story = page.get_by_test_id("stAlert").filter(has_text="own targets")
            contrast = page.locator(".st-key-contrast [data-testid=stMetric]")
            expect(contrast).to_have_count(2)
            expect(contrast.first).to_contain_text(own)
            expect(contrast.nth(1)).to_contain_text(re.compile(r"Customer outcomes\s*\d+ of \d+ on track"))
            for element in (story, contrast.first, contrast.nth(1)):
                box = element.bounding_box()
                assert box is not None and box["y"] + box["height"] <= height, (path, box)
            page.wait_for_timeout(500)  # charts fit their width once drawn
            assert page.evaluate(OVERFLOW_JS) == [], path
        # the check itself can fail: a chart drawn wider than its column is reported
        page.add_style_tag(content="[data-testid=stMain] canvas, [data-testid=stMain] svg { min-width: 4000px; }")
        assert page.evaluate(OVERFLOW_JS), "the check must see a chart wider than its container"


def test_the_sidebar_downloads_the_meeting_report_and_a_chart(app_page: Page, app_url: str, tmp_path: Path) -> None:
    open_app(app_page, f"{app_url}/sales?period=2026-10")
    app_page.get_by_test_id("stVegaLiteChart").first.wait_for()
    with app_page.expect_download() as got:
        app_page.get_by_test_id("stSidebar").get_by_role("button", name="Markdown").click()
    assert got.value.suggested_filename == "kpi-report-2026-10-sales.md"
    text = Path(got.value.path()).read_text(encoding="utf-8")
    assert text.startswith("# KPI scorecard · Sales · 2026-10\n") and "Sales meets" in text
    assert f"{app_url}/sales?grain=month" in text  # the link to the live view
    with app_page.expect_download() as got:
        app_page.get_by_test_id("stMain").get_by_role("button", name="SVG").first.click()
    assert Path(got.value.path()).read_text(encoding="utf-8").startswith("<svg")


def test_a_link_or_image_in_a_url_parameter_shows_as_text(app_page: Page, app_url: str) -> None:
    link, image = "[Session expired](http://evil.example)", "![t](http://evil.example/t.png)"
    open_app(app_page, f"{app_url}/?snapshot={quote(link)}&channel={quote(image)}")
    notices = app_page.get_by_test_id("stAlert").filter(has_text="URL parameter")
    expect(notices).to_have_count(2)
    shown = [text.replace("\u2060", "") for text in notices.all_inner_texts()]  # (the invisible word joiners)
    assert any(link in text for text in shown) and any(image in text for text in shown), shown  # as written
    expect(app_page.locator("a[href*='evil.example']")).to_have_count(0)
    expect(app_page.locator("img[src*='evil.example']")).to_have_count(0)


def test_tables_offer_only_the_defused_csv_download(app_page: Page, app_url: str) -> None:
    """The table widget's own CSV download would write a cell like =HYPERLINK(...) as a live formula."""
    open_app(app_page, f"{app_url}/?period=2026-10")
    table = app_page.get_by_test_id("stDataFrame").first
    table.scroll_into_view_if_needed()
    table.hover()
    toolbar = app_page.get_by_test_id("stElementContainer").filter(has=table).last.get_by_test_id("stElementToolbar")
    shown = "e => getComputedStyle(e).display"
    assert toolbar.locator('button[aria-label="Search"]').evaluate(shown) != "none"  # the toolbar is there
    assert toolbar.locator('button[aria-label="Download as CSV"]').evaluate(shown) == "none"
    expect(app_page.get_by_test_id("stMain").get_by_role("button", name="CSV").first).to_be_visible()
