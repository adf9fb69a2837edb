"""Imports that never paper over a gap, and one's own exports end to end through the command line.

The expected KPI values of the real-looking exports (tests/fixtures/real/, shaped like the public Maven CRM
pipeline and the IBM Telco churn list) are computed here with pandas straight from the files.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from store_support import db_state, state

from kpicore import store
from kpicore.catalog import load_catalog
from kpicore.cli import main
from kpicore.errors import BadFile
from kpicore.files import read_file
from kpicore.ingest import Upload, check_plan, export_date, import_files
from kpicore.mapping import propose
from kpicore.model import TABLES
from kpicore.texts import currency_warning, missing_inputs

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REAL = FIXTURES / "real"
_spec = importlib.util.spec_from_file_location("make_exports", FIXTURES / "make_exports.py")
make_exports = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_exports)
PIPELINE, TELCO = REAL / "crm_sales_pipeline.csv", REAL / "telco_customer_churn.csv"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def raw_of(tmp_path: Path, name: str, text: str):  # noqa: ANN201 - a RawFile
    return read_file(write(tmp_path, name, text), workdir=tmp_path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def empty_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "own.duckdb"
    assert main(["--db", str(path), "init", "--empty"]) == 0
    capsys.readouterr()
    return path


# --- a missing required column blocks the import, with the choices -------------------------------------


@pytest.mark.parametrize(("name", "text", "says"), [
    # a deal list without creation dates: map it, or say it is a status-only export (states, no dates)
    ("deals.csv", "Deal ID,Deal Stage\nD1,Closed Won\n",
     ["has no column for the required created_at", "map a column onto it", "--as-of"]),
    # a lead list without creation dates cannot be a status-only export: map it, or pick another table
    ("leads.csv", "Lead ID,Source\nL1,web\n", ["has no column for the required created_at", "pick another table"]),
])
def test_a_missing_required_column_blocks_the_import_and_names_the_choices(tmp_path, name, text, says):
    raw = raw_of(tmp_path, name, text)
    upload = Upload(raw, propose(raw))
    with pytest.raises(BadFile) as raised:
        check_plan(upload)
    assert str(raised.value).startswith(f"{name}: is read as")
    for words in says:
        assert words in str(raised.value)
    if "--as-of" not in says:
        assert "--as-of" not in str(raised.value)


@pytest.mark.parametrize(("text", "table", "as_of", "says"), [
    ("Customer ID,Churned\nC1,yes\n", "customers", None, "if the file is a status-only export"),
    # a day given for a file that has its dates is refused: status-only is for lists without dates
    ("Customer ID,Customer Since,Churned\nC1,2026-01-05,yes\n", "customers", date(2026, 10, 31),
     "it has every required date"),
    # and for a table that cannot be status-only
    ("Lead ID,Source\nL1,web\n", "leads", date(2026, 10, 31), "Only a customer or deal list"),
])
def test_status_only_is_the_users_explicit_choice_and_refusals_change_nothing(tmp_path, text, table, as_of, says):
    db = store.connect(tmp_path / "kpi.duckdb", sample=False)
    before = state(db)
    raw = raw_of(tmp_path, "export.csv", text)
    with pytest.raises(BadFile, match=says):
        import_files(db, [Upload(raw, propose(raw, table), as_of=as_of)], "refused")
    assert state(db) == before
    db.close()


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("customers.csv", "Customer ID,Churned,Last Activity\nC1,yes,2026-03-02\nC2,no,2026-05-17\n",
     (date(2026, 5, 17), "the latest date in 'Last Activity'")),
    ("customers_2024-06-30.csv", "Customer ID,Churned\nC1,yes\n", (date(2024, 6, 30), "its file name")),
    ("Kunden 31.12.2025.csv", "Kundennummer;Gekündigt\nC1;ja\n", (date(2025, 12, 31), "its file name")),
    ("customers.csv", "Customer ID,Churned\nC1,yes\n", None),  # nothing to go by: the user must say
])
def test_the_export_date_is_proposed_from_the_file_and_never_today(tmp_path, name, text, expected):
    found = export_date(raw_of(tmp_path, name, text))
    assert (None if found is None else (found.day, found.source)) == expected


def test_a_workbooks_saved_date_is_proposed_when_it_shows_nothing_else(tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.append(["Customer ID", "Churned"])
    workbook.active.append(["C1", "yes"])
    path = tmp_path / "customers.xlsx"
    workbook.save(path)
    with zipfile.ZipFile(path) as archive:
        core = archive.read("docProps/core.xml").decode()
    saved = core.split("<dcterms:modified")[1].split(">")[1][:10]
    found = export_date(read_file(path, workdir=tmp_path))
    assert (found.day.isoformat(), found.source) == (saved, "the day the workbook was last saved")


# --- what an import cannot feed is named ------------------------------------------------------------------


def test_unmapped_columns_that_feed_kpis_are_named():
    catalog = load_catalog()
    lines = missing_inputs(catalog, "opportunities", ["opportunity_id", "created_at", "stage", "closed_at"])
    assert lines == ["No lead_id column: Lead-to-revenue will show no data.",
                     "No amount column: Lead-to-revenue and Average deal size will show no data."]
    assert missing_inputs(catalog, "opportunities", TABLES["opportunities"].column_names) == []


def test_open_deals_close_dates_are_plans_and_said_so(tmp_path):
    db = store.connect(tmp_path / "kpi.duckdb", sample=False)
    raw = raw_of(tmp_path, "deals.csv", "Deal ID,Deal Stage,Create Date,Close Date\n"
                                        "D1,Closed Won,2026-10-01,2026-10-20\nD2,Negotiation,2026-10-02,2027-03-31\n")
    result = import_files(db, [Upload(raw, propose(raw))], "deals")
    [report] = result.files
    assert "1 row(s) still open have a closed_at: a planned date" in " ".join(report.warnings)
    assert not any("in the future" in w for w in report.warnings)
    db.close()


@pytest.mark.parametrize(("header", "cells", "currency", "warned"), [
    ("Amount", ["$1,200.00", "$80"], "USD", "Amounts are in USD, the KPI catalog counts in EUR"),
    ("Betrag", ["1.234,50 €", "80,00 €"], "EUR", None),
    ("Amount (GBP)", ["1200", "80"], "GBP", "Amounts are in GBP"),
    ("Amount", ["1200", "80"], None, None),
])
def test_a_files_currency_is_recorded_and_flagged_when_it_is_not_the_catalogs(tmp_path, header, cells, currency,
                                                                               warned):
    db = store.connect(tmp_path / "kpi.duckdb", sample=False)
    rows = "".join(f'D{i},Closed Won,2026-10-0{i + 1},2026-10-2{i},"{cell}"\n' for i, cell in enumerate(cells))
    raw = raw_of(tmp_path, "deals.csv", f"Deal ID,Deal Stage,Create Date,Close Date,{header}\n{rows}")
    result = import_files(db, [Upload(raw, propose(raw))], "deals")
    assert result.files[0].currency == currency
    assert store.tables(db, result.snapshot)["opportunities"].stored.currency == currency
    warning = currency_warning(load_catalog(), currency)
    assert warning is None if warned is None else warned in warning
    db.close()


def test_kpis_on_money_in_another_currency_show_it_and_are_never_relabelled(capsys, empty_db, tmp_path):
    deals = write(tmp_path, "deals.csv", 'Deal ID,Deal Stage,Amount,Create Date,Close Date\n'
                                          'D1,Closed Won,"$1,200.00",2026-10-01,2026-10-20\n'
                                          'D2,Closed Won,$800,2026-10-02,2026-10-31\n')
    assert run(capsys, "--db", str(empty_db), "load", str(deals))[0] == 0
    code, out, _ = run(capsys, "--db", str(empty_db), "kpis", "--team", "sales", "--format", "json")
    size = next(r for r in json.loads(out) if r["id"] == "avg_deal_size")
    assert (size["value"], size["currency"]) == (1000.0, "USD")  # (1,200 + 800) / 2, in dollars
    assert "not converted" in size["note"]
    code, out, _ = run(capsys, "--db", str(empty_db), "kpis", "--team", "sales")
    line = next(line for line in out.splitlines() if line.startswith("Average deal size"))
    assert "$1,000" in line and "€1,000" not in line


# --- the command line on its own workspace -------------------------------------------------------------------


def test_init_empty_and_drop_and_restore(capsys, tmp_path):
    db = tmp_path / "kpi.duckdb"
    code, out, _ = run(capsys, "--db", str(db), "init")
    assert code == 0 and "snapshot 1 (Sample data" in out
    code, out, _ = run(capsys, "--db", str(db), "init", "--empty")  # an existing database: a new, empty snapshot
    assert code == 0 and "snapshot 2 (Started with empty tables)" in out
    code, out, _ = run(capsys, "--db", str(db), "restore", "1")
    assert code == 0 and "Snapshot 3 created: Restored snapshot 1" in out
    code, out, _ = run(capsys, "--db", str(db), "drop", "tickets", "surveys")
    assert code == 0 and "Snapshot 4 created: tickets, surveys empty. 'kpicore restore 3' brings the rows back." in out
    conn = duckdb.connect(str(db))
    counts = {t.table: t.rows for t in store.tables(conn, store.latest_snapshot(conn)).values()}
    assert counts["tickets"] == counts["surveys"] == 0 and counts["leads"] > 1000
    conn.close()
    before = db_state(db)
    code, _, err = run(capsys, "--db", str(db), "restore", "99")
    assert code == 1 and "There is no snapshot 99" in err and db_state(db) == before


def test_load_starts_from_empty_tables_unless_told_to_keep_the_sample(capsys, tmp_path):
    deals = write(tmp_path, "deals.csv", "Deal ID,Deal Stage,Create Date,Close Date,Amount\n"
                                         "D1,Closed Won,2017-01-05,2017-02-01,100\n")
    for flag, kept in (([], False), (["--keep-sample"], True)):
        db = tmp_path / f"kpi{len(flag)}.duckdb"
        code, out, _ = run(capsys, "--db", str(db), "load", str(deals), *flag)
        assert code == 0
        assert ("Started from empty tables" in out) is not kept
        conn = duckdb.connect(str(db))
        leads = store.tables(conn, store.latest_snapshot(conn))["leads"].rows
        assert (leads > 1000) is kept
        conn.close()


def test_kpis_on_an_empty_database_says_what_to_load(capsys, empty_db):
    code, out, err = run(capsys, "--db", str(empty_db), "kpis")
    assert code == 1 and out == ""
    assert err == "Error: There is no data yet: load some exports on the Data page (or with kpicore load).\n"


def test_the_command_line_says_in_one_line_when_the_app_holds_the_database(tmp_path, empty_db, monkeypatch):
    monkeypatch.setattr("kpicore.cli.WAIT_SECONDS", 0.5)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time, duckdb; c = duckdb.connect(sys.argv[1]); "
                               "print('holding', flush=True); time.sleep(30)", str(empty_db)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    try:
        result = subprocess.run([sys.executable, "-c", "import kpicore.cli as c, sys; c.WAIT_SECONDS = 0.5; "
                                 "sys.exit(c.main(sys.argv[1:]))", "--db", str(empty_db), "snapshots"],
                                capture_output=True, text=True)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"Error: {empty_db} is open in another program (PID {holder.pid})")
    assert "Traceback" not in result.stderr and len(lines) == 2  # the wait notice, then the one-line error


# --- end to end: a 2016-2017 pipeline and a status-only churn list ---------------------------------------------


def pipeline_frame() -> pd.DataFrame:
    frame = pd.read_csv(PIPELINE, dtype=str, keep_default_na=False)
    for column in ("engage_date", "close_date"):
        frame[column] = pd.to_datetime(frame[column], format="%m/%d/%Y", errors="coerce")
    return frame


def expected_win_rates(frame: pd.DataFrame, by: str) -> dict[str, float]:
    closed = frame[frame.deal_stage.isin(["Won", "Lost"])]
    periods = closed.close_date.dt.strftime("%Y-%m" if by == "month" else "%Y")
    counts = closed.groupby(periods).deal_stage.agg(won=lambda s: (s == "Won").sum(), closed="count")
    return {period: row.won / row.closed for period, row in counts.iterrows()}


def kpi_records(capsys, db: Path, *args: str) -> dict[str, dict]:
    code, out, err = run(capsys, "--db", str(db), "kpis", "--format", "json", *args)
    assert code == 0, err
    return {r["id"]: r for r in json.loads(out)}


def test_a_2016_2017_pipeline_in_an_empty_workspace_shows_its_own_periods(capsys, empty_db):
    code, out, err = run(capsys, "--db", str(empty_db), "load", str(PIPELINE))
    assert code == 1 and "has no column for the required created_at" in err  # nothing guessed from close dates
    code, out, err = run(capsys, "--db", str(empty_db), "load", str(PIPELINE), "--map", "created_at=engage_date",
                         "--map", "amount=close_value", "--map", "customer_id=")
    assert code == 0, err
    frame = pipeline_frame()
    engaged = frame.engage_date.notna().sum()
    assert f"{engaged:,} row(s) imported, {len(frame) - engaged:,} rejected." in out  # prospects have no date

    monthly = expected_win_rates(frame, "month")
    assert sorted(monthly) == [f"2017-{m:02d}" for m in range(3, 13)]  # deals close from March to December 2017
    for period, rate in monthly.items():
        assert kpi_records(capsys, empty_db, "--period", period)["win_rate"]["value"] == pytest.approx(rate), period
    latest = kpi_records(capsys, empty_db)  # the default period is the data's own latest, December 2017
    assert latest["win_rate"]["period"] == "2017-12"
    yearly = kpi_records(capsys, empty_db, "--grain", "year", "--period", "2017")
    assert yearly["win_rate"]["value"] == pytest.approx(expected_win_rates(frame, "year")["2017"])
    assert yearly["win_rate"]["status"] != "partial period"
    first = kpi_records(capsys, empty_db, "--period", "2016-10")["opportunities"]  # engaged from 20 October
    assert first["status"] == "partial period" and first["value"] == (frame.engage_date.dt.strftime("%Y-%m")
                                                                      == "2016-10").sum()
    # no sample number anywhere: every KPI that reads another table has no value
    for record in latest.values():
        if record["id"] not in {"win_rate", "opportunities", "avg_deal_size", "sales_cycle"}:
            assert record["value"] is None, record


def test_a_churn_flag_list_imported_as_status_only_shows_its_churn_share_there_only(capsys, empty_db):
    code, _, err = run(capsys, "--db", str(empty_db), "load", str(TELCO), "--table", "customers")
    assert code == 1 and "--as-of" in err and "acquired_at" in err
    code, out, err = run(capsys, "--db", str(empty_db), "load", str(TELCO), "--table", "customers",
                         "--as-of", "2026-11-30")
    assert code == 0, err
    churned = pd.read_csv(TELCO).Churn.eq("Yes")
    records = kpi_records(capsys, empty_db)
    assert records["churn_rate"]["period"] == "2026-11"
    assert records["churn_rate"]["value"] == pytest.approx(churned.mean())
    # everybody who ever left, as of the export's day: not a rate of the month, so not scored against its target
    assert records["churn_rate"]["status"] == "status-only"
    assert {k for k, r in records.items() if r["value"] is not None} == {"churn_rate"}  # nothing invented
    code, _, err = run(capsys, "--db", str(empty_db), "kpis", "--period", "2026-10")  # no other period exists
    assert code == 1 and err == "Error: There is no data for 2026-10: the data covers 2026-11 to 2026-11.\n"
    assert kpi_records(capsys, empty_db, "--grain", "year")["churn_rate"]["value"] == pytest.approx(churned.mean())


def test_a_zendesk_export_with_dashed_dates_and_reopen_counts(tmp_path):
    db = store.connect(tmp_path / "kpi.duckdb", sample=False)
    raw = raw_of(tmp_path, "zendesk.csv", "Id,Created at,Solved at,Reopens,Via\n"
                                          "1,28-04-2023 20:52,29-04-2023 08:10,0,Mail\n"
                                          "2,13-05-2023 09:00,,2,Web form\n")
    plan = propose(raw)
    assert plan.table == "tickets" and plan.source_of("reopened") == "Reopens"
    result = import_files(db, [Upload(raw, plan)], "zendesk")
    rows = db.execute(f"SELECT ticket_id, created_at::VARCHAR, reopened FROM {result.snapshot.schema}.tickets "
                      "ORDER BY 1").fetchall()
    assert rows == [("1", "2023-04-28 20:52:00", False), ("2", "2023-05-13 09:00:00", True)]  # reopened twice
    db.close()


def test_the_real_looking_exports_are_what_the_generator_writes(tmp_path):
    written = {p.name: p.read_bytes() for p in make_exports.write(tmp_path, make_exports.real_exports())}
    assert written == {p.name: p.read_bytes() for p in REAL.iterdir()}, "run python tests/fixtures/make_exports.py"
