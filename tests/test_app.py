"""The pages as a user sees them, run headless with Streamlit's AppTest on the sample data."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from app_support import open_page
from streamlit.testing.v1 import AppTest

from kpicore import store

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard.py"
CATALOG = ROOT / "kpicore" / "catalog.yaml"

OUTCOMES = [
    "Customer retention rate", "Churn rate", "Net revenue retention",
    "Net revenue retention (12 months)", "Lead-to-customer rate", "Lead-to-revenue",
    "Net promoter score", "Customer satisfaction (CSAT)", "CLV to CAC ratio",
]
TEAM_KPIS = {
    "marketing": ["Leads", "MQL rate", "Cost per lead", "Post-sale nurture reach", "Website visits"],
    "sales": ["Opportunities", "Win rate", "New customers", "Average deal size", "Sales cycle",
              "Onboarding hand-off within 14 days"],
    "service": ["Tickets resolved", "First response time", "Resolution time", "Reopen rate", "Open tickets at end"],
}
TEAM_LABELS = {"marketing": "Marketing", "sales": "Sales", "service": "Service"}
LATEST = "2026-10"  # the latest complete month of the sample data
DEFAULT_PARAMS = {"grain": "month", "period": LATEST, "comparison": "previous", "snapshot": "1"}


@pytest.fixture(scope="module")
def app_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file with the sample data, built once for this module."""
    path = tmp_path_factory.mktemp("app") / "kpi.duckdb"
    store.connect(path).close()
    return path


@pytest.fixture(autouse=True)
def app_env(app_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every app run reads the sample database and the shipped catalog."""
    monkeypatch.setenv("KPI_DB", str(app_db))
    monkeypatch.delenv("KPI_CATALOG", raising=False)


def run_page(url_path: str = "overview", **params: str) -> AppTest:
    """Open a page with `params` in the URL, as a link shared in a meeting would."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    if url_path != "overview":
        at.run()
        at.query_params.clear()
        del at.session_state["view"]
        open_page(at, url_path)
    at.query_params.update(params)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def tiles(at: AppTest) -> list:
    """The KPI tiles (not the story's two numbers, the teams' own KPIs against the customer outcomes)."""
    return [m for m in at.metric if not (m.label == "Customer outcomes" or "own KPIs" in m.label)]


def metric_labels(at: AppTest) -> list[str]:
    return [m.label for m in tiles(at)]


def page_caption(at: AppTest) -> str:
    """The line under the page title that names the period and the comparison."""
    return at.main.caption[0].value


def texts(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


# --- every page -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url_path", ["overview", "marketing", "sales", "service", "glossary"])
def test_page_runs_without_exception_or_warning(url_path: str) -> None:
    at = run_page(url_path)
    assert not at.exception
    assert not at.error
    assert warnings(at) == []
    assert f"Month {LATEST}" in page_caption(at)


@pytest.mark.parametrize("url_path", ["overview", "marketing", "sales", "service"])
def test_customer_outcomes_on_top_of_every_scorecard_page(url_path: str) -> None:
    at = run_page(url_path)
    assert "Customer outcomes" in [s.value for s in at.subheader]
    labels = metric_labels(at)
    assert labels[:len(OUTCOMES)] == OUTCOMES
    assert all(m.value and m.value != "–" for m in tiles(at)[:len(OUTCOMES)]), [m.value for m in tiles(at)]


@pytest.mark.parametrize("team", list(TEAM_KPIS))
def test_team_page_shows_its_own_kpis_with_trends(team: str) -> None:
    at = run_page(team)
    assert [t.value for t in at.title] == [TEAM_LABELS[team]]
    labels = metric_labels(at)
    team_labels = labels[len(OUTCOMES):]
    assert set(TEAM_KPIS[team]) <= set(team_labels)
    others = {label for other, kpis in TEAM_KPIS.items() if other != team for label in kpis}
    assert not others & set(labels)
    assert len(at.get("vega_lite_chart")) >= len(TEAM_KPIS[team])
    assert "Score" in texts(at)


def test_switch_page_to_team_file_opens_the_first_team() -> None:
    at = run_page()
    at.switch_page("pages/team.py").run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Marketing"]
    assert "Leads" in metric_labels(at)


@pytest.mark.parametrize("page_file", ["pages/overview.py", "pages/glossary.py"])
def test_first_request_to_a_deep_link_shows_the_whole_app(page_file: str) -> None:
    """A link to /overview or /glossary opened as the very first request must still get navigation and controls."""
    at = AppTest.from_file(str(APP), default_timeout=60).switch_page(page_file).run()
    assert not at.exception
    assert [s.label for s in at.sidebar.selectbox] == ["Period"], "the sidebar view controls are missing"
    assert {info.get("url_pathname") for info in at._registered_pages.values()} >= {"sales", "glossary"}


def test_overview_shows_every_team_scorecard() -> None:
    at = run_page()
    markdown = texts(at)
    for team, label in TEAM_LABELS.items():
        assert f"### {label}" in markdown
        tables = [df.value for df in at.dataframe]
        kpis_in_tables = {kpi for df in tables for kpi in df["KPI"]}
        assert set(TEAM_KPIS[team]) <= kpis_in_tables
    assert markdown.count("Score") >= 3
    assert len(at.dataframe) == 3
    assert metric_labels(at) == OUTCOMES
    # retention and 12-month NRR (score: false in the catalog) say they are shown, not scored; nothing else does
    assert sum("shown, not scored" in c.value for c in at.caption) == 2


# --- glossary -------------------------------------------------------------------------------------


def heading_of(markdown: str) -> str | None:
    """The heading text a Markdown block starts with, if it starts with one."""
    found = re.match(r"#{1,6} (.+?)\s*$", markdown.split("\n")[0])
    return found.group(1) if found else None


def glossary_headings(at: AppTest) -> list[str]:
    """The KPI names the glossary lists, in order."""
    return [name for m in at.main.markdown if (name := heading_of(m.value))]


def test_glossary_lists_every_definition() -> None:
    at = run_page("glossary")
    headings = glossary_headings(at)
    for label in OUTCOMES + [kpi for kpis in TEAM_KPIS.values() for kpi in kpis]:
        assert label in headings
    assert "**Formula:**" in texts(at)
    assert any(f"{len(headings)} of {len(headings)} definitions" in c.value for c in at.caption)
    assert "**Judged:** Matures for 14 days" in texts(at)  # the MQL rate's maturity is stated


def test_glossary_status_bands_are_distinct_thresholds() -> None:
    """'on track at 98.5% or more, at risk from 98.5%' would tell the reader nothing; each band is in the KPI's unit."""
    at = run_page("glossary")
    heading, unclear = "", []
    for m in at.main.markdown:
        heading = heading_of(m.value) or heading
        band = re.search(r"on track at (.+?) or (?:more|less), at risk (?:from|up to) (.+?), ", m.value)
        if band and band.group(1) == band.group(2):
            unclear.append(f"{heading}: {band.group(0)}")
    assert "at risk from" in texts(at) and "at risk up to" in texts(at)
    assert unclear == []


@pytest.mark.parametrize(("query", "expected"), [
    ("churn", "Churn rate"),
    ("Abwanderungsrate", "Churn rate"),
    ("MQL", "MQL rate"),
    ("Lösungszeit", "Resolution time"),
])
def test_glossary_search_narrows_the_definitions(query: str, expected: str) -> None:
    at = run_page("glossary")
    everything = glossary_headings(at)
    at.text_input[0].set_value(query).run()
    assert not at.exception
    found = glossary_headings(at)
    assert expected in found
    assert 0 < len(found) < len(everything)
    assert "Tickets resolved" not in found
    assert at.query_params.get("q") == query
    assert not at.info


def test_glossary_search_without_match_says_so() -> None:
    at = run_page("glossary")
    at.text_input[0].set_value("xyzzy-nonsense").run()
    assert not at.exception
    assert glossary_headings(at) == []
    assert at.info and "xyzzy-nonsense" in at.info[0].value


def test_glossary_search_comes_from_the_url() -> None:
    at = run_page("glossary", q="churn")
    assert at.text_input[0].value == "churn"
    assert "Churn rate" in glossary_headings(at)
    assert "Leads" not in glossary_headings(at)


# --- view state in the URL ------------------------------------------------------------------------


def test_app_writes_the_full_view_into_the_url() -> None:
    at = run_page()
    assert dict(at.query_params) == DEFAULT_PARAMS


@pytest.mark.parametrize(("params", "caption", "url"), [
    ({"period": "2026-07"}, ["Month 2026-07", "previous period (2026-06)"],
     {"grain": "month", "period": "2026-07", "comparison": "previous", "snapshot": "1"}),
    ({"grain": "quarter", "period": "2026-Q2"}, ["Quarter 2026-Q2", "(2026-Q1)"],
     {"grain": "quarter", "period": "2026-Q2", "comparison": "previous", "snapshot": "1"}),
    ({"period": "2026-Q2"}, ["Quarter 2026-Q2"],
     {"grain": "quarter", "period": "2026-Q2", "comparison": "previous", "snapshot": "1"}),
    ({"comparison": "year_ago"}, [f"Month {LATEST}", "same period last year (2025-10)"],
     {"grain": "month", "period": LATEST, "comparison": "year_ago", "snapshot": "1"}),
    ({"period": "2026-W40"}, ["Week 2026-W40", "(2026-W39)"],
     {"grain": "week", "period": "2026-W40", "comparison": "previous", "snapshot": "1"}),
])
def test_url_chooses_the_view(params: dict[str, str], caption: list[str], url: dict[str, str]) -> None:
    at = run_page(**params)
    for fragment in caption:
        assert fragment in page_caption(at)
    assert warnings(at) == []
    assert dict(at.query_params) == url
    assert at.sidebar.selectbox[0].value == url["period"]
    assert metric_labels(at) == OUTCOMES


def test_period_from_url_compares_metrics_with_the_period_before() -> None:
    at = run_page("sales", period="2026-07")
    changes = [c.value for c in at.main.caption if re.fullmatch(r":(green|red|gray)-badge\[.*\] vs \S+", c.value)]
    # every tile but the cohort KPIs (compared cohort with cohort) against June: 9 outcomes and 6 Sales KPIs
    assert sum(c.endswith(" vs 2026-06") for c in changes) >= 12, changes
    assert not any(c.endswith(" vs 2026-09") for c in changes), changes
    default = run_page("sales")
    assert [m.value for m in tiles(at)] != [m.value for m in tiles(default)]


@pytest.mark.parametrize(("params", "name"), [
    ({"grain": "fortnight"}, "grain"),
    ({"period": "2026-13"}, "period"),
    ({"period": "1999-01"}, "period"),
    ({"period": "yesterday"}, "period"),
    ({"comparison": "banana"}, "comparison"),
])
@pytest.mark.parametrize("url_path", ["overview", "sales"])
def test_invalid_url_parameter_warns_and_shows_the_default(url_path: str, params: dict[str, str], name: str) -> None:
    at = run_page(url_path, **params)
    assert any(w.startswith(f"URL parameter {name}:") for w in warnings(at)), warnings(at)
    assert f"Month {LATEST} · compared with previous period (2026-09)" in page_caption(at)
    assert dict(at.query_params) == DEFAULT_PARAMS
    assert metric_labels(at)[:len(OUTCOMES)] == OUTCOMES
    if url_path == "sales":
        assert "Win rate" in metric_labels(at)


# --- sidebar controls -----------------------------------------------------------------------------


@pytest.mark.parametrize("url_path", ["overview", "sales"])
def test_period_picker_updates_the_view_and_the_url(url_path: str) -> None:
    at = run_page(url_path)
    assert at.sidebar.selectbox[0].options[0] == LATEST
    at.sidebar.selectbox[0].set_value("2026-07").run()
    assert not at.exception
    assert dict(at.query_params) == {"grain": "month", "period": "2026-07", "comparison": "previous", "snapshot": "1"}
    assert "Month 2026-07" in page_caption(at)
    assert at.sidebar.selectbox[0].value == "2026-07"
    if url_path == "sales":
        assert [t.value for t in at.title] == ["Sales"]
        assert "Win rate" in metric_labels(at)


def test_grain_picker_switches_to_the_latest_period_of_that_grain() -> None:
    at = run_page(period="2026-07")
    at.button_group[0].set_value("quarter").run()
    assert not at.exception
    assert dict(at.query_params) == {"grain": "quarter", "period": "2026-Q3", "comparison": "previous", "snapshot": "1"}
    assert "Quarter 2026-Q3" in page_caption(at)


def test_comparison_picker_updates_the_view_and_the_url() -> None:
    at = run_page("service")
    at.radio[0].set_value("year_ago").run()
    assert not at.exception
    assert dict(at.query_params) == {"grain": "month", "period": LATEST, "comparison": "year_ago", "snapshot": "1"}
    assert "same period last year (2025-10)" in page_caption(at)
    assert [t.value for t in at.title] == ["Service"]


# --- a broken catalog -----------------------------------------------------------------------------


def test_broken_catalog_lists_the_problem_instead_of_crashing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = CATALOG.read_text(encoding="utf-8")
    broken = text.replace("  - id: customers_at_start\n", "  - id: customers_at_start\n    colour: blue\n", 1)
    assert broken != text
    path = tmp_path / "catalog.yaml"
    path.write_text(broken, encoding="utf-8")
    monkeypatch.setenv("KPI_CATALOG", str(path))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert at.error and "catalog" in at.error[0].value
    problems = "\n".join(c.value for c in at.code) + "\n".join(e.value for e in at.error)
    assert "customers_at_start" in problems and "colour" in problems
    assert not at.metric


def metric_value(at: AppTest, label: str) -> str:
    return next(m.value for m in tiles(at) if m.label == label)


def test_a_channel_filter_narrows_the_numbers_and_lives_in_the_url():
    everything = run_page("marketing", period="2026-07")
    paid = run_page("marketing", period="2026-07", channel="paid_social")
    assert any("filtered by marketing channel: paid_social" in c.value for c in paid.caption)
    # the paid-social leads are a part of all leads: fewer of them, and the filter stays in the URL
    assert int(metric_value(paid, "Leads").replace(",", "")) < int(metric_value(everything, "Leads").replace(",", ""))
    assert paid.query_params["channel"] == ["paid_social"] or paid.query_params["channel"] == "paid_social"
    assert not paid.warning


def test_a_segment_filter_says_which_kpis_it_cannot_filter():
    at = run_page("marketing", period="2026-07", segment="SMB")
    # leads carry no segment: their tile says so instead of silently showing unfiltered numbers
    assert any("leads has no segment" in c.value for c in at.caption)


def test_an_unknown_filter_value_is_named_and_ignored():
    at = run_page("overview", channel="fax_machine")
    assert any(w.value.startswith("URL parameter channel: 'fax_machine'") for w in at.warning)
    assert "channel" not in at.query_params
    assert not any("filtered by" in c.value for c in at.caption)


def markdown_text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_overview_tension_panel_names_both_stories_with_their_teams():
    at = run_page("overview", period="2026-10")
    text = markdown_text(at)
    assert "Tensions" in [s.value for s in at.subheader]
    assert "Marketing's Leads improved" in text and "Sales' Win rate worsened" in text
    assert "Service's Resolution time improved" in text and "Service's Reopen rate worsened" in text
    assert "Marketing vs Sales" in text
    rarities = [c.value for c in at.caption if c.value.startswith("Even the smaller of the two")]
    assert rarities and all("of ordinary months." in r for r in rarities)
    assert "severity" not in text


def test_a_team_page_shows_only_the_tensions_its_team_is_part_of():
    at = run_page("marketing", period="2026-10")
    text = markdown_text(at)
    assert "Marketing's Leads improved" in text
    assert "Service's Resolution time" not in text


def test_a_calm_month_says_nothing_pulls_against_its_counterweight():
    at = run_page("overview", period="2025-02")
    assert any("No KPI pulls against its counterweight in 2025-02" in s.value for s in at.success)


def test_each_page_opens_with_its_story():
    """The Overview's story counts the teams and the customer outcomes; a team page tells that team's."""
    overview = run_page(period=LATEST)
    [told] = [i.value for i in overview.info if i.value.startswith("The teams meet")]
    assert " of their own targets on average " in told and " customer outcomes " in told
    assert "Biggest tension: " in told  # October 2026 of the sample has tensions (see test_tensions)
    marketing = run_page("marketing", period=LATEST)
    [mine] = [i.value for i in marketing.info if i.value.startswith("Marketing meets")]
    assert " of its own targets " in mine


def test_the_sidebar_offers_a_link_to_this_view_pinned_or_always_newest():
    at = run_page("marketing", period=LATEST)
    [link] = [c.value for c in at.sidebar.code]
    assert link == f"/marketing?grain=month&comparison=previous&period={LATEST}&snapshot=1"
    at.sidebar.toggle(key="link-newest").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [c.value for c in at.sidebar.code] == [f"/marketing?grain=month&comparison=previous&period={LATEST}"]
    overview = run_page(period=LATEST)
    assert [c.value for c in overview.sidebar.code] == [
        f"/?grain=month&comparison=previous&period={LATEST}&snapshot=1"]


def test_presentation_mode_drops_the_controls_until_it_is_left():
    at = run_page(period=LATEST)
    at.sidebar.button(key="present").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params["present"] == "1"
    assert not at.sidebar.selectbox and not at.sidebar.multiselect  # no pickers
    assert any(i.value.startswith("The teams meet") for i in at.info)  # the story is still there
    at.button(key="exit-presentation").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "present" not in at.query_params
    assert [s.label for s in at.sidebar.selectbox] == ["Period"]


@pytest.mark.parametrize(("count", "per_row"), [(9, 3), (8, 4), (7, 4), (6, 3), (5, 3), (4, 4), (10, 4)])
def test_outcome_tiles_fill_their_rows(count: int, per_row: int) -> None:
    """Nine outcomes: three rows of three, not 4 + 4 + 1; as few rows as four a row allow, the last one fullest."""
    from pages.widgets import tiles_per_row

    assert tiles_per_row(count) == per_row

