"""The Data page as a user drives it, headless with Streamlit's AppTest: upload, mapping, import, report, snapshots.

Each test works on its own copy of the sample database (snapshot 1), because imports write to it.
"""
from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from app_support import APP, NONE, choose, click_import, data_page, import_button, open_page, selectbox, upload
from streamlit.testing.v1 import AppTest

from kpicore import store
from kpicore.model import TABLES

# A German CRM export as Excel writes it: semicolons, Windows-1252 (the euro sign is byte 0x80), decimal comma,
# dd.mm.yyyy dates, CRLF. Row numbers as a spreadsheet shows them: the header is row 1, D-1 is row 2.
# D-3 "Engaging" has an expected close date, as open deals in HubSpot do; D-6 has a date that does not exist.
GERMAN_HEADER = "Deal ID;Deal Stage;Betrag;Erstellt am;Close Date;Deal Owner"
GERMAN_ROWS = [
    "D-1;Gewonnen;1.234,50 €;01.09.2026;15.10.2026;Anna Keller",
    "D-2;Verloren;2.000,00 €;02.09.2026;20.10.2026;Emma Clarke",
    "D-3;Engaging;3.500,00 €;05.10.2026;25.10.2026;Lena Fischer",
    "D-4;Gewonnen;10.000,00 €;10.09.2026;30.10.2026;Anna Keller",
    "D-5;Engaging;800,00 €;12.10.2026;;Emma Clarke",
    "D-6;Gewonnen;500,00 €;31.02.2026;20.10.2026;Emma Clarke",
]
GUESSED_COLUMNS = {"opportunity_id *": "Deal ID", "stage": "Deal Stage", "amount": "Betrag",
                   "created_at *": "Erstellt am", "closed_at": "Close Date", "owner": "Deal Owner",
                   "lead_id": NONE, "customer_id": NONE}


def export(rows: list[str], header: str = GERMAN_HEADER) -> bytes:
    """A semicolon export encoded as Windows-1252, lines ending in CRLF."""
    return "\r\n".join([header, *rows, ""]).encode("cp1252")


GERMAN = export(GERMAN_ROWS)
assert b"\x80" in GERMAN, "the euro sign must be written as Windows-1252"


@pytest.fixture
def db(sample_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own copy of the sample database, used by every app run of the test."""
    path = tmp_path / "kpi.duckdb"
    shutil.copy(sample_db, path)
    monkeypatch.setenv("KPI_DB", str(path))
    monkeypatch.delenv("KPI_CATALOG", raising=False)
    monkeypatch.delenv("KPI_MAX_UPLOAD_MB", raising=False)
    return path


def query(db: Path, sql: str) -> list[tuple]:
    """Rows of `sql` on the test's database (the app keeps it open in this process, so share its configuration)."""
    conn = duckdb.connect(str(db))
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def snapshot_ids(db: Path) -> list[int]:
    conn = duckdb.connect(str(db))
    try:
        return [snap.id for snap, _ in store.snapshots(conn)]
    finally:
        conn.close()


def import_german(at: AppTest) -> AppTest:
    """Upload the German export, map Engaging to lost and owner to nothing, and import it."""
    upload(at, "deals.csv", GERMAN)
    choose(at, "Engaging", "lost")
    choose(at, "owner", NONE)
    return click_import(at)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def texts(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def subheaders(at: AppTest) -> list[str]:
    return [s.value for s in at.subheader]


def scorecard_tables(at: AppTest) -> list[list[dict]]:
    return [df.value.to_dict("records") for df in at.dataframe]


# --- recognising an export --------------------------------------------------------------------------


def test_german_windows_1252_export_is_recognised_as_opportunities(db: Path) -> None:
    at = upload(data_page(), "deals.csv", GERMAN)
    assert not at.error and not at.warning, [m.value for m in [*at.error, *at.warning]]
    assert "#### deals.csv" in texts(at)
    assert any("cp1252" in c.value and "';'" in c.value for c in at.caption), [c.value for c in at.caption]
    assert selectbox(at, "Table").value == "opportunities"
    assert {label: selectbox(at, label).value for label in GUESSED_COLUMNS} == GUESSED_COLUMNS
    assert {v: selectbox(at, v).value for v in ["Gewonnen", "Verloren", "Engaging"]} == {
        "Gewonnen": "won", "Verloren": "lost", "Engaging": "open"}
    preview = at.dataframe[0].value
    assert list(preview.columns) == GERMAN_HEADER.split(";")
    assert preview["Betrag"].tolist()[0] == "1.234,50 €"
    assert import_button(at).label == "Import 1 file(s)" and not import_button(at).disabled


# --- correcting the mapping and importing -------------------------------------------------------------


def test_corrected_mapping_is_what_gets_imported(db: Path) -> None:
    at = import_german(data_page())
    assert "Imported as snapshot 2" in subheaders(at)
    assert "**deals.csv** → opportunities (replace)" in texts(at)
    # six data rows: D-6 has no valid creation date, the other five are imported
    assert metrics(at) == {"Rows imported": "5", "Rows rejected": "1"}
    rows = query(db, "SELECT opportunity_id, stage, amount, CAST(created_at AS DATE)::VARCHAR, "
                     "CAST(closed_at AS DATE)::VARCHAR, owner FROM snapshot_2.opportunities ORDER BY opportunity_id")
    assert rows == [
        ("D-1", "won", 1234.5, "2026-09-01", "2026-10-15", None),
        ("D-2", "lost", 2000.0, "2026-09-02", "2026-10-20", None),
        ("D-3", "lost", 3500.0, "2026-10-05", "2026-10-25", None),
        ("D-4", "won", 10000.0, "2026-09-10", "2026-10-30", None),
        ("D-5", "lost", 800.0, "2026-10-12", None, None),
    ]
    # by default the user's data starts from empty tables; the sample stays in snapshot 1
    assert query(db, "SELECT COUNT(*) FROM snapshot_2.leads") == [(0,)]
    assert query(db, "SELECT COUNT(*) FROM snapshot_1.leads")[0][0] > 1000
    assert any("Started from empty tables" in i.value and "restore snapshot 1" in i.value for i in at.info)
    assert dict(at.query_params)["snapshot"] == "2"


def test_a_source_column_moved_to_another_field_leaves_the_first_one_unmapped(db: Path) -> None:
    """A source column feeds one field: choosing it for a second field must show the first one as unmapped."""
    at = upload(data_page(), "deals.csv", GERMAN)
    choose(at, "lead_id", "Deal ID")
    warnings = [w.value for w in at.warning]
    assert any("has no column for the required opportunity_id" in w for w in warnings), warnings
    assert import_button(at).disabled
    assert selectbox(at, "opportunity_id *").value == NONE, \
        "the page says opportunity_id has no column while its selectbox still shows 'Deal ID'"


def test_rejected_row_is_listed_with_row_column_and_reason(db: Path) -> None:
    at = import_german(data_page())
    [problems] = [d.value for d in at.dataframe if "Reason" in d.value.columns]
    assert problems.to_dict("records") == [
        {"Row": 7, "Column": "Erstellt am", "Value": "31.02.2026", "Reason": "is not a date like 31.10.2026"}]
    downloads = [b.proto.label for b in at.get("download_button")]
    assert "Download rejected rows (CSV)" in downloads


# --- files that cannot be used --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("junk.csv", random.Random(3).randbytes(4096), "not a text file"),
    ("empty.csv", b"", "empty"),
], ids=["binary-junk", "empty"])
def test_broken_file_shows_an_error_naming_it_and_imports_nothing(db: Path, name: str, data: bytes,
                                                                   reason: str) -> None:
    at = upload(data_page(), name, data)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and name in errors[0] and reason in errors[0], errors
    assert "Table" not in {s.label for s in at.selectbox}, "no mapping for a file that cannot be read"
    assert import_button(at).label == "Import 0 file(s)" and import_button(at).disabled
    assert "Imported as snapshot 2" not in subheaders(at)
    assert snapshot_ids(db) == [1]


def test_file_without_data_rows_fails_at_import_and_changes_nothing(db: Path) -> None:
    at = upload(data_page(), "header_only.csv", export([]))
    at = click_import(at)
    errors = [e.value for e in at.error]
    assert any(e.startswith("Nothing was imported") and "header_only.csv" in e for e in errors), errors
    assert not any(s.startswith("Imported as snapshot") for s in subheaders(at))
    assert snapshot_ids(db) == [1]


# --- ambiguous dates -------------------------------------------------------------------------------------


def test_ambiguous_dates_are_asked_and_block_the_import_until_answered(db: Path) -> None:
    ambiguous = export(["A-1;Gewonnen;1.000,00 €;01/02/2026;03/04/2026;Anna Keller",
                        "A-2;Verloren;2.000,00 €;05/06/2026;07/08/2026;Emma Clarke"])
    at = upload(data_page(), "deals_slashes.csv", ambiguous)
    questions = {r.label: r for r in at.radio if r.label.startswith("How are the dates")}
    created = "How are the dates in 'Erstellt am' written?"
    closed = "How are the dates in 'Close Date' written?"
    assert set(questions) == {created, closed}
    assert all(r.value is None for r in questions.values())
    assert any("01/02/2026" in w.value for w in at.warning), [w.value for w in at.warning]
    assert import_button(at).disabled

    questions[created].set_value("day_first").run()
    assert import_button(at).disabled, "one date column is still unanswered"
    next(r for r in at.radio if r.label == closed).set_value("month_first").run()
    assert not at.warning, [w.value for w in at.warning]
    assert not import_button(at).disabled

    at = click_import(at)
    assert "Imported as snapshot 2" in subheaders(at)
    rows = query(db, "SELECT opportunity_id, CAST(created_at AS DATE)::VARCHAR, CAST(closed_at AS DATE)::VARCHAR "
                     "FROM snapshot_2.opportunities ORDER BY 1")
    assert rows == [("A-1", "2026-02-01", "2026-03-04"), ("A-2", "2026-06-05", "2026-07-08")]


# --- saved mappings --------------------------------------------------------------------------------------


def save_german_mapping(name: str) -> None:
    """In one session: upload the German export, correct it, and save the mapping under `name`."""
    at = upload(data_page(), "deals.csv", GERMAN)
    choose(at, "Engaging", "lost")
    choose(at, "owner", NONE)
    [field] = [t for t in at.text_input if t.key and t.key.startswith("save-")]
    field.input(name).run()
    [button] = [b for b in at.button if b.key and b.key.startswith("save-button-")]
    assert not button.disabled
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(name in s.value for s in at.success), [s.value for s in at.success]


NEXT_EXPORT = export(["D-7;Engaging;4.200,00 €;02.11.2026;;Lena Fischer",
                      "D-8;Gewonnen;990,00 €;03.11.2026;20.11.2026;Anna Keller"])


def test_saved_mapping_is_applied_to_the_next_file_with_the_same_columns(db: Path) -> None:
    save_german_mapping("German CRM deals")
    at = upload(data_page(), "deals_november.csv", NEXT_EXPORT)
    applied = re.compile(r"saved mapping 'German CRM deals' saved by anyone \(open editing\) on "
                         r"\d{4}-\d\d-\d\d applied")
    assert any(applied.search(c.value) for c in at.caption), \
        [c.value for c in at.caption]
    assert selectbox(at, "Engaging").value == "lost"
    assert selectbox(at, "Gewonnen").value == "won"
    assert selectbox(at, "amount").value == "Betrag"


def test_saved_mapping_keeps_a_column_the_user_left_unmapped(db: Path) -> None:
    save_german_mapping("German CRM deals")
    at = upload(data_page(), "deals_november.csv", NEXT_EXPORT)
    assert selectbox(at, "owner").value == NONE, "the user mapped owner to nothing when saving the mapping"


# --- snapshots --------------------------------------------------------------------------------------------


def test_snapshot_list_shows_the_import_and_restore_brings_snapshot_1_back(db: Path) -> None:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    open_page(at, "sales").run()
    sample_sales = metrics(at)
    at.switch_page("pages/data.py").run()
    import_german(at)
    listed = texts(at)
    assert "**Snapshot 2**" in listed and "**Snapshot 1**" in listed
    assert listed.index("**Snapshot 2**") < listed.index("**Snapshot 1**"), "newest first"
    snapshot_2 = next(m.value for m in at.markdown if m.value.startswith("**Snapshot 2**"))
    assert "Upload: deals.csv · current" in snapshot_2
    assert "opportunities (5 rows from deals.csv)" in snapshot_2
    assert [b.label for b in at.button if b.key and b.key.startswith("restore-")] == ["Restore snapshot 1"]

    at.button(key="restore-1").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert snapshot_ids(db) == [3, 2, 1]
    snapshot_3 = next(m.value for m in at.markdown if m.value.startswith("**Snapshot 3**"))
    assert "Restored snapshot 1" in snapshot_3 and "current" in snapshot_3
    assert dict(at.query_params)["snapshot"] == "3"
    for name in TABLES:
        table = f'"{name}"'
        counts = [query(db, f"SELECT COUNT(*) FROM snapshot_{i}.{table}")[0][0] for i in (1, 3)]
        assert counts[0] == counts[1], name
        differ = query(db, f"SELECT COUNT(*) FROM ((FROM snapshot_3.{table} EXCEPT ALL FROM snapshot_1.{table}) "
                           f"UNION ALL (FROM snapshot_1.{table} EXCEPT ALL FROM snapshot_3.{table}))")
        assert differ == [(0,)], name

    at.run()
    assert not at.exception, [e.value for e in at.exception]
    open_page(at, "sales").run()
    assert not at.exception, [e.value for e in at.exception]
    assert metrics(at) == sample_sales, "the Sales page shows the restored sample data"


# --- the other pages use the new snapshot ---------------------------------------------------------------


def test_sales_page_shows_the_imported_deals(db: Path) -> None:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    open_page(at, "sales").run()
    before = metrics(at)

    at.switch_page("pages/data.py").run()
    import_german(at)
    open_page(at, "sales").run()
    assert not at.exception, [e.value for e in at.exception]
    after = metrics(at)
    # October 2026, by close date: won D-1 (1,234.50) and D-4 (10,000); lost D-2 and D-3 (Engaging, mapped to lost)
    assert after["Average deal size"] == "€5,617"
    assert after["Win rate"] == "50.0%"
    assert after["Opportunities"] == "2", "D-3 and D-5 were created in October"
    changed = ["Average deal size", "Win rate", "Opportunities"]
    assert all(before[label] != after[label] for label in changed), [(before[k], after[k]) for k in changed]


def test_snapshot_in_the_url_shows_that_snapshot_and_says_newer_data_exists(db: Path) -> None:
    first = AppTest.from_file(str(APP), default_timeout=60).run()
    before_metrics, before_tables = metrics(first), scorecard_tables(first)
    import_german(data_page())

    latest = AppTest.from_file(str(APP), default_timeout=60).run()
    assert dict(latest.query_params)["snapshot"] == "2"
    assert scorecard_tables(latest) != before_tables, "the import changed the sales scorecard"

    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["snapshot"] = "1"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert metrics(at) == before_metrics
    assert scorecard_tables(at) == before_tables
    infos = [i.value for i in at.info]
    assert any("snapshot 1" in i and "Newer data is in snapshot 2" in i for i in infos), infos
    assert dict(at.query_params)["snapshot"] == "1"
    assert not [w.value for w in at.warning if w.value.startswith("URL parameter")]


@pytest.mark.parametrize("value", ["999", "abc"])
def test_unknown_snapshot_in_the_url_warns_and_shows_the_latest(db: Path, value: str) -> None:
    import_german(data_page())
    latest = AppTest.from_file(str(APP), default_timeout=60).run()

    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["snapshot"] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning if w.value.startswith("URL parameter")]
    assert len(warnings) == 1 and warnings[0].startswith("URL parameter snapshot:"), warnings
    assert dict(at.query_params)["snapshot"] == "2"
    assert metrics(at) == metrics(latest)
    assert scorecard_tables(at) == scorecard_tables(latest)
    assert not [i.value for i in at.info if "Newer data" in i.value]
