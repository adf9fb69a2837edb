"""One's own data in the app (AppTest): the empty database, the sample as a demo, the Data page's choices."""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from app_support import APP, NONE, click_import, data_page, import_button, open_page, selectbox, upload
from streamlit.testing.v1 import AppTest

from kpicore import store
from kpicore.cli import main
from kpicore.model import TABLES
from kpicore.texts import KEEP_SAMPLE, NO_LEADS, SAMPLE_LINE, START_EMPTY, WELCOME_HERE, WELCOME_TITLE

REAL = Path(__file__).resolve().parent / "fixtures" / "real"
PAGES = ["overview", "marketing", "sales", "service", "journey", "glossary", "data"]
DEALS = b"Deal ID,Deal Stage,Create Date,Close Date,Amount\nD1,Closed Won,2017-01-05,2017-02-01,100\n" \
        b"D2,Closed Lost,2017-01-09,2017-02-20,300\n"
TICKETS = b"Ticket ID,Created at,Solved at,Priority\nT1,2017-02-01 09:00,2017-02-01 12:00,High\n"


@pytest.fixture
def sample_copy(sample_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kpi.duckdb"
    shutil.copy(sample_db, path)
    monkeypatch.setenv("KPI_DB", str(path))
    monkeypatch.delenv("KPI_CATALOG", raising=False)
    return path


@pytest.fixture
def empty_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "empty.duckdb"
    store.connect(path, sample=False).close()
    monkeypatch.setenv("KPI_DB", str(path))
    monkeypatch.delenv("KPI_CATALOG", raising=False)
    return path


def on_page(url_path: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    if url_path != "overview":
        open_page(at, url_path).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def page_links(at: AppTest) -> list[str]:
    return [link.proto.label for link in at.get("page_link")]


def snapshot_count(db: Path) -> int:
    with duckdb.connect(str(db)) as conn:
        return conn.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]


def table_rows(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db)) as conn:
        return {t.table: t.rows for t in store.tables(conn, store.latest_snapshot(conn)).values()}


# --- an empty database is a normal state -------------------------------------------------------------------


@pytest.mark.parametrize("url_path", PAGES)
def test_every_page_of_an_empty_database_shows_the_welcome(empty_db: Path, url_path: str) -> None:
    at = on_page(url_path)
    assert not at.error, [e.value for e in at.error]
    assert f"#### {WELCOME_TITLE}" in markdown(at)
    if url_path == "data":  # the upload is on this page: the welcome points below, not to itself
        assert WELCOME_HERE in markdown(at) and "Upload exports on the Data page" not in page_links(at)
    else:
        assert {"Upload exports on the Data page", "Templates for every table"} <= set(page_links(at))
    assert not [s for s in at.selectbox if s.label == "Period"], "no period to pick without data"


def test_the_data_page_of_an_empty_database_offers_templates_first_and_the_sample(empty_db: Path) -> None:
    at = on_page("data")
    subheaders = [s.value for s in at.subheader]
    assert subheaders.index("Templates") < subheaders.index("Tables")
    assert at.button(key="load-sample").label == "Load the sample data"
    at.button(key="load-sample").click().run()
    assert not at.exception and snapshot_count(empty_db) == 2
    assert table_rows(empty_db)["leads"] > 1000


# --- the sample is a demo, clearly ---------------------------------------------------------------------------


@pytest.mark.parametrize("url_path", PAGES)
def test_every_page_says_when_it_shows_the_sample(sample_copy: Path, url_path: str) -> None:
    at = on_page(url_path)
    assert SAMPLE_LINE in markdown(at)
    assert "Load your own exports" in page_links(at)


def test_the_first_import_asks_whether_to_keep_the_sample_and_starts_empty_by_default(sample_copy: Path) -> None:
    at = upload(data_page(), "deals.csv", DEALS)
    [choice] = [r for r in at.radio if r.key == "sample-choice"]
    assert choice.options == [START_EMPTY, KEEP_SAMPLE] and choice.value == START_EMPTY
    choice.set_value(KEEP_SAMPLE).run()
    click_import(at)
    rows = table_rows(sample_copy)
    assert rows["opportunities"] == 2 and rows["leads"] > 1000, "the sample tables were kept beside the file"

    at = on_page("overview")
    assert SAMPLE_LINE in markdown(at), "sample tables are still shown"


def test_after_an_own_import_no_page_speaks_of_the_sample(sample_copy: Path) -> None:
    click_import(upload(data_page(), "deals.csv", DEALS))
    assert table_rows(sample_copy) == {name: 2 if name == "opportunities" else 0 for name in TABLES}
    for url_path in PAGES:
        at = on_page(url_path)
        assert SAMPLE_LINE not in markdown(at), url_path
        assert f"#### {WELCOME_TITLE}" not in markdown(at), url_path


# --- importing: choices, a second click, several files ---------------------------------------------------------


def test_a_second_click_on_import_does_not_make_a_second_snapshot(sample_copy: Path) -> None:
    at = click_import(upload(data_page(), "deals.csv", DEALS))
    assert snapshot_count(sample_copy) == 2
    at.run()  # the page again, with the same file still in the uploader
    assert not at.exception
    assert not [b for b in at.button if b.key == "import"], "no Import button for files already imported"
    assert any("imported, as snapshot 2" in s.value for s in at.success), [s.value for s in at.success]
    assert snapshot_count(sample_copy) == 2


def test_of_several_files_one_can_be_skipped(sample_copy: Path) -> None:
    at = data_page()
    at.file_uploader[0].set_value([("deals.csv", DEALS, "text/csv"), ("tickets.csv", TICKETS, "text/csv")]).run()
    assert import_button(at).label == "Import 2 file(s)"
    skips = [t for t in at.toggle if t.label == "Skip this file"]
    assert len(skips) == 2
    skips[1].set_value(True).run()  # the files are shown in upload order: tickets.csv second
    assert import_button(at).label == "Import 1 file(s)"
    click_import(at)
    rows = table_rows(sample_copy)
    assert rows["opportunities"] == 2 and rows["tickets"] == 0


def test_a_file_can_be_given_another_table(sample_copy: Path) -> None:
    at = upload(data_page(), "export.csv", b"ID,Created at\nX1,2017-02-01 09:00\nX2,2017-02-02 09:00\n")
    selectbox(at, "Table").set_value("tickets").run()
    assert selectbox(at, "ticket_id *").value == "ID" and selectbox(at, "created_at *").value == "Created at"
    click_import(at)
    assert table_rows(sample_copy)["tickets"] == 2


def test_a_required_column_not_found_blocks_the_import_and_a_weak_guess_is_only_suggested(sample_copy: Path) -> None:
    telco = (REAL / "telco_customer_churn.csv").read_bytes()
    at = upload(data_page(), "telco.csv", telco)
    selectbox(at, "Table").set_value("customers").run()
    assert selectbox(at, "churned_at").value == NONE, "a 34% guess is not filled in"
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Perhaps 'Contract'?") and "not used unless you pick it" in c for c in captions), captions
    assert selectbox(at, "churned").value == "Churn"
    warnings = [w.value for w in at.warning]
    assert any("has no column for the required acquired_at" in w and "status-only" in w for w in warnings), warnings
    assert import_button(at).disabled
    assert any("No acquired_at column:" in c and "New customers" in c for c in captions), captions


def test_a_status_only_export_needs_its_day_which_is_never_today(sample_copy: Path) -> None:
    telco = (REAL / "telco_customer_churn.csv").read_bytes()
    at = upload(data_page(), "telco.csv", telco)
    selectbox(at, "Table").set_value("customers").run()
    [status] = [t for t in at.toggle if t.label.startswith("This is a status-only export")]
    status.set_value(True).run()
    [day] = at.date_input
    assert day.value is None, "the file shows no date: nothing is proposed, today least of all"
    assert any("enter the day it was exported" in c.value for c in at.caption)
    assert import_button(at).disabled
    day.set_value(pd.Timestamp("2026-11-30").date()).run()
    assert not import_button(at).disabled
    click_import(at)
    at = on_page("overview")
    churn = next(m for m in at.metric if m.label == "Churn rate")
    expected = pd.read_csv(REAL / "telco_customer_churn.csv").Churn.eq("Yes").mean()
    assert churn.value == f"{expected * 100:.1f}%"
    assert "2026-11" in at.main.caption[0].value
    assert any("status-only" in c.value for c in at.caption)  # a share as of the export's day: not scored


def test_a_status_only_export_with_a_date_column_proposes_its_latest_date(sample_copy: Path) -> None:
    export = b"Customer ID,Churned,Last Contact\nC1,yes,2026-09-03\nC2,no,2026-09-28\n"
    at = upload(data_page(), "customers.csv", export)
    [status] = [t for t in at.toggle if t.label.startswith("This is a status-only export")]
    status.set_value(True).run()
    assert str(at.date_input[0].value) == "2026-09-28"
    assert any("Proposed from the latest date in 'Last Contact'" in c.value for c in at.caption)


# --- tables emptied on purpose ----------------------------------------------------------------------------------


def test_a_table_is_emptied_and_all_tables_emptied_from_the_data_page(sample_copy: Path) -> None:
    at = on_page("data")
    at.selectbox(key="empty-choice").set_value("tickets").run()
    at.button(key="empty-table").click().run()
    assert not at.exception
    assert table_rows(sample_copy)["tickets"] == 0 and table_rows(sample_copy)["leads"] > 1000
    assert any("tickets is empty in snapshot 2" in s.value for s in at.success)
    at.button(key="start-empty").click().run()
    assert table_rows(sample_copy) == dict.fromkeys(TABLES, 0)
    assert f"#### {WELCOME_TITLE}" in markdown(on_page("overview"))


# --- the app and the command line side by side ----------------------------------------------------------------


def test_an_import_from_the_command_line_appears_in_the_running_app(sample_copy: Path, capsys) -> None:
    at = on_page("sales")
    deals = sample_copy.parent / "deals.csv"
    deals.write_bytes(DEALS)
    assert main(["--db", str(sample_copy), "load", str(deals)]) == 0  # while the app runs, between two views
    capsys.readouterr()
    at.run()
    assert any("Newer data is in snapshot 2" in i.value for i in at.info), [i.value for i in at.info]
    fresh = on_page("sales")
    assert dict(fresh.query_params)["snapshot"] == "2"
    assert next(m for m in fresh.metric if m.label == "Win rate").value == "50.0%"  # D1 won, D2 lost


def test_the_journey_without_leads_says_there_is_no_cohort_to_follow(sample_copy: Path) -> None:
    click_import(upload(data_page(), "deals.csv", DEALS))
    at = on_page("journey")
    assert any(i.value == NO_LEADS for i in at.info), [i.value for i in at.info]
    assert "Load a leads export on the Data page" in page_links(at)
    assert not at.get("vega_lite_chart"), "no funnel of zero leads"
