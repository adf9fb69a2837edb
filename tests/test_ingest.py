"""Importing real exports: one table of awkward and broken files with the outcome each must have.

Every case goes through the functions the app and the CLI use (read_file, propose, Plan.with_*,
import_files). A refused file must leave the store exactly as it was; an imported one must land as a
new snapshot next to an untouched previous one.
"""
from __future__ import annotations

import importlib.util
import re
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from store_support import db_state, row_counts, state

from kpicore import ingest, store
from kpicore.cli import main
from kpicore.errors import BadFile
from kpicore.files import read_file
from kpicore.ingest import ImportResult, Mode, Problem, Upload, import_files
from kpicore.mapping import DateOrder, propose
from kpicore.model import TABLES

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXPORTS = FIXTURES / "exports"
_spec = importlib.util.spec_from_file_location("make_exports", FIXTURES / "make_exports.py")
make_exports = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_exports)

# The tiny store every test starts from: snapshot 1 with two leads, two customers and one deal.
BASE = {
    "leads": "lead_id,created_at,channel\nL1,2026-01-05 10:00:00,event\nL9,2026-01-06 10:00:00,event\n",
    "customers": "customer_id,acquired_at\nC1,2026-01-05 10:00:00\nC2,2026-02-01 00:00:00\n",
    "opportunities": "opportunity_id,created_at,stage,amount\nO1,2026-01-05 10:00:00,won,100\n",
}
BASE_ROWS = {name: BASE[name].count("\n") - 1 if name in BASE else 0 for name in TABLES}


@pytest.fixture(scope="session")
def base_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file holding the tiny base as snapshot 1 (copied per test, never changed)."""
    folder = tmp_path_factory.mktemp("tiny_base")
    for name, text in BASE.items():
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    path = folder / "kpi.duckdb"
    conn = store.connect(path, sample_dir=folder)
    # the base stands for data the user imported before, not for the bundled sample (which imports replace)
    conn.execute("UPDATE snapshot_tables SET sample = FALSE")
    conn.close()
    return path


class _Today(date):
    @classmethod
    def today(cls) -> date:
        return date(2026, 11, 29)


@pytest.fixture(autouse=True)
def fixed_today(monkeypatch: pytest.MonkeyPatch) -> None:
    """'In the future' is judged against 2026-11-29, whenever the tests run."""
    monkeypatch.setattr(ingest, "date", _Today)


@pytest.fixture
def db_path(base_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "kpi.duckdb"
    shutil.copy(base_db, path)
    return path


@pytest.fixture
def db(db_path: Path) -> duckdb.DuckDBPyConnection:
    conn = store.connect(db_path)
    yield conn
    conn.close()


# --- the table of cases -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Imported:
    """The file lands: the table it is read as, row counts, some exact values, rejected rows, warnings."""

    table: str
    rows: int
    imported: int
    values: dict[str, dict[str, object]]  # key value -> canonical column -> stored value
    problems: tuple[Problem, ...] = ()
    warnings: tuple[str, ...] = ()  # each must be part of one warning
    key: str | None = None  # the column `values` is keyed by (default: the table's id)
    total: int | None = None  # rows of the table in the new snapshot (default: imported)


@dataclass(frozen=True)
class Refused:
    """The file is refused with BadFile naming the file, saying `says`, and naming `column` where given."""

    says: str
    column: str | None = None


@dataclass(frozen=True)
class Options:
    table: str | None = None
    map: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    dates: str | None = None
    mode: str = "replace"
    max_mb: str | None = None


def case(file: str, expected: Imported | Refused, **options: object) -> object:
    label = file + "".join(f"-{k}" if isinstance(v, dict) else f"-{k}={v}" for k, v in options.items())
    return pytest.param(file, Options(**options), expected, id=label)


T = datetime
CASES = [
    # --- dialects and encodings ---
    case("leads_comma_iso.csv", Imported("leads", 3, 3, {
        "L1": {"created_at": T(2026, 10, 31, 14, 0), "campaign": "Autumn, big", "qualified_at": T(2026, 11, 2, 9, 30),
               "customer_id": "C1", "channel": "paid_search"},
        "L2": {"created_at": T(2026, 10, 30, 9, 15), "campaign": None, "qualified_at": None},
        "L3": {"created_at": T(2026, 10, 29)},
    })),
    case("leads_semicolon_bom_dotted.csv", Imported("leads", 2, 2, {
        "L1": {"created_at": T(2026, 10, 31, 14, 0), "channel": "Messe", "campaign": "Frühjahr Ölmesse"},
        "L2": {"created_at": T(2026, 2, 1), "campaign": "Größe zählt"},
    })),
    case("leads_tab_month_first.tsv", Imported("leads", 3, 3, {
        "L1": {"created_at": T(2026, 10, 31, 14, 0), "channel": "Organic Search"},
        "L2": {"created_at": T(2026, 1, 2, 9, 30)},
        "L3": {"created_at": T(2025, 12, 13)},
    })),
    case("leads_pipe_day_first.csv", Imported("leads", 2, 2, {
        "L1": {"created_at": T(2026, 10, 31, 14, 0)}, "L2": {"created_at": T(2026, 2, 1)},
    })),
    case("leads_utf16_tab.csv", Imported("leads", 2, 2, {
        "L1": {"created_at": T(2026, 10, 31, 14, 0), "campaign": "Müller € Aktion"}, "L2": {"campaign": "Straße"},
    })),
    case("opportunities_cp1252_euro.csv", Imported("opportunities", 3, 3, {
        "O1": {"created_at": T(2026, 10, 31, 14, 0), "stage": "won", "amount": 1234.56, "owner": "Jürgen Größ"},
        "O2": {"created_at": T(2026, 10, 30), "stage": "lost", "amount": 99.9, "owner": "Anaïs Dupont"},
        "O3": {"stage": "open", "amount": 12000.0},
    })),
    case("opportunities_point_thousands.csv", Imported("opportunities", 3, 3, {
        "O1": {"amount": 1234.56, "stage": "won"}, "O2": {"amount": 12000.0}, "O3": {"amount": 3500.0},
    })),
    case("opportunities_us_whole_thousands.csv", Imported("opportunities", 2, 2, {
        "O1": {"amount": 3500.0}, "O2": {"amount": 12000.0},
    })),
    case("opportunities_de_whole_thousands.csv", Imported("opportunities", 2, 2, {
        "O1": {"amount": 1234.0, "created_at": T(2026, 10, 31, 14, 0)},
        "O2": {"amount": 12500.0, "created_at": T(2026, 10, 30)},
    })),
    case("customers_booleans.csv", Imported("customers", 9, 9, {
        "C1": {"churned": True}, "C2": {"churned": False}, "C3": {"churned": True}, "C4": {"churned": False},
        "C5": {"churned": True}, "C6": {"churned": False}, "C7": {"churned": True}, "C8": {"churned": False},
        "C9": {"churned": None, "acquired_at": T(2026, 1, 1)},
    })),
    case("team_metrics_percent.csv", Imported("team_metrics", 3, 3, {
        "Abschlussquote": {"value": 0.125, "team": "sales", "date": T(2026, 10, 31)},
        "Anrufe": {"value": 1234.0, "team": "service"},
        "Budget": {"value": 2500.75, "team": "marketing"},
    }, key="metric")),
    case("revenue_month_dotted.csv", Imported("revenue", 2, 2, {
        "C1": {"month": date(2026, 10, 1), "amount": 1000.5}, "C2": {"month": date(2026, 11, 1), "amount": 99.0},
    }, key="customer_id")),
    # --- layout ---
    case("leads_quoted_newlines.csv", Imported("leads", 3, 2, {
        "L1": {"campaign": 'Spring\nlaunch, "big"', "created_at": T(2026, 10, 31, 14, 0)},
        "L3": {"campaign": "plain"},
    }, problems=(Problem(3, "created_at", "not a date", "is not a date like 2026-10-31"),))),
    case("leads_blank_lines.csv", Imported("leads", 3, 2, {
        "L1": {"created_at": T(2026, 10, 31, 14, 0)}, "L2": {"created_at": T(2026, 10, 30, 14, 0)},
    }, problems=(Problem(9, "created_at", "yesterday", "is not a date like 2026-10-31"),))),
    case("leads_trailing_empty_columns.csv", Imported("leads", 2, 2, {
        "L1": {"channel": "event", "created_at": T(2026, 10, 31, 14, 0)}, "L2": {"channel": None},
    })),
    case("leads_short_rows.csv", Imported("leads", 3, 3, {
        "L1": {"channel": "event", "campaign": "Autumn"}, "L2": {"channel": None, "campaign": None},
        "L3": {"channel": "web", "campaign": None},
    })),
    case("leads_title_rows.csv", Imported("leads", 3, 2, {
        "L1": {"created_at": T(2026, 10, 31, 14, 0), "channel": "event"}, "L2": {"created_at": T(2026, 10, 30, 14, 0)},
    }, problems=(Problem(7, "created_at", "31.10.2026", "is not a date like 2026-10-31"),))),
    case("opportunities_title_row.xlsx", Imported("opportunities", 3, 3, {
        "O1": {"created_at": T(2026, 10, 31, 14, 0), "stage": "won", "amount": 1234.56, "closed_at": T(2026, 11, 15)},
        "O2": {"created_at": T(2026, 10, 30, 9, 0), "stage": "lost", "amount": 99.0, "closed_at": None},
        "O3": {"stage": "open", "amount": None},
    })),
    case("leads_empty_rows.xlsx", Imported("leads", 3, 2, {
        "L1": {"created_at": T(2026, 10, 31, 14, 0)}, "L3": {"created_at": T(2026, 10, 29), "channel": "web"},
    }, problems=(Problem(6, "created_at", "kaputt", "is not a date like 2026-10-31"),))),  # row 6 as Excel shows it
    # --- tools ---
    case("hubspot_deals_de.csv", Imported("opportunities", 3, 3, {
        "1001": {"stage": "won", "amount": 1234.56, "created_at": T(2026, 10, 31, 14, 0),
                 "closed_at": T(2026, 11, 15), "owner": "Jörg Weiß"},
        "1002": {"stage": "lost", "amount": 500.0},
        "1003": {"stage": "open", "amount": 12500.0, "closed_at": None, "owner": "Anna Groß"},
    })),
    case("hubspot_deals_de.csv", Imported("opportunities", 3, 3, {
        "1003": {"stage": "lost"}, "1001": {"stage": "won"},
    }), values={"stage": {"Engaging": "lost"}}),
    case("opportunities_de_commas_in_names.csv", Imported("opportunities", 2, 2, {
        "1": {"amount": 1234.56}, "2": {"amount": 5.0},
    })),
    case("salesforce_opportunities.csv", Imported("opportunities", 3, 3, {
        "006A1": {"stage": "won", "amount": 1234.56, "created_at": T(2026, 10, 31, 14, 0),
                  "closed_at": T(2026, 11, 15), "customer_id": "001X1", "owner": "Jane Roe"},
        "006A2": {"stage": "lost", "created_at": T(2026, 10, 30, 9, 0)},
        "006A3": {"stage": "open", "amount": None},
    }, warnings=("3 row(s) name a customer_id that is not in customers.",))),
    case("zendesk_tickets.csv", Imported("tickets", 3, 3, {
        "101": {"created_at": T(2026, 10, 31, 14, 0), "resolved_at": T(2026, 11, 1, 9, 0), "csat": 5,
                "priority": "High", "channel": "Mail"},
        "102": {"created_at": T(2026, 10, 30, 8, 0), "resolved_at": None, "csat": None},
        "103": {"csat": 2, "resolved_at": T(2026, 10, 29, 12, 0)},
    })),
    # --- values that must pass through as plain text, and sizes ---
    case("leads_formula_cells.csv", Imported("leads", 2, 2, {
        "L1": {"campaign": '=HYPERLINK("http://x","y")', "channel": "+cmd|' /C calc'!A0"},
        "L2": {"campaign": "-2+3", "channel": "@SUM(1+1)"},
    })),
    case("tickets_hash_ids.csv", Imported("tickets", 4, 4, {  # rows starting with '#' are rows, not comments
        "T-1": {"created_at": T(2026, 10, 31)}, "#3": {"created_at": T(2026, 10, 31)},
        "#4": {"created_at": T(2026, 10, 31, 10, 0), "priority": None},
    })),
    case("leads_ten_thousand_columns.csv", Imported("leads", 3, 3, {
        "L1": {"created_at": T(2026, 10, 1, 8, 0), "channel": None}, "L3": {"created_at": T(2026, 10, 3, 8, 0)},
    })),
    case("leads_long_line.csv", Imported("leads", 2, 2, {
        "L1": {"campaign": make_exports.LONG_CELL}, "L2": {"campaign": "short"},
    })),
    # --- warnings that do not block, rows rejected with row, column, value and reason ---
    case("leads_duplicate_ids.csv", Imported("leads", 3, 2, {
        "L1": {"channel": "second", "created_at": T(2026, 10, 3, 10, 0)}, "L2": {"channel": "other"},
    }, warnings=("1 row(s) repeat an id of a later row in the file; the later row was kept.",))),
    case("tickets_csat_out_of_range.csv", Imported("tickets", 3, 1, {"T1": {"csat": 5, "reopened": True}}, problems=(
        Problem(3, "csat", "7", "is not a whole number from 1 to 5"),
        Problem(4, "reopened", "maybe", "is not yes/no, true/false, ja/nein, 1/0 or a count"),
    ))),
    case("opportunities_negative_amounts.csv", Imported("opportunities", 2, 2, {"O1": {"amount": -250.0}},
                                                        warnings=("1 row(s) have a negative amount.",))),
    case("leads_future_dates.csv", Imported("leads", 2, 2, {"L1": {"created_at": T(2099, 1, 1)}}, warnings=(
        "1 row(s) have a created_at in the future (after 2026-11-29).",))),
    case("opportunities_orphans.csv", Imported("opportunities", 2, 2, {"O2": {"customer_id": "C-NOPE"}}, warnings=(
        "1 row(s) name a lead_id that is not in leads.", "1 row(s) name a customer_id that is not in customers."))),
    # --- answers the user gives: date order, column mapping, table ---
    case("leads_ambiguous_dates.csv", Imported("leads", 2, 2, {
        "L1": {"created_at": T(2026, 2, 1)}, "L2": {"created_at": T(2026, 4, 3, 10, 0)},
    }), dates="day_first"),
    case("leads_ambiguous_dates.csv", Imported("leads", 2, 2, {
        "L1": {"created_at": T(2026, 1, 2)}, "L2": {"created_at": T(2026, 3, 4, 10, 0)},
    }), dates="month_first"),
    case("leads_sql_column_name.csv", Imported("leads", 1, 1, {"L1": {"created_at": T(2026, 10, 31, 14, 0)}}),
         map={"created_at": 'created_at"); DROP TABLE leads; --'}),
    case("leads_misspelled_headers.csv", Imported("leads", 1, 1, {"L1": {"created_at": T(2026, 10, 31, 14, 0)}}),
         map={"lead_id": "Lead Idd", "created_at": "Created Dat"}),
    case("surveys_as_leads.csv", Imported("surveys", 1, 1, {"C1": {"score": 9}}, key="customer_id")),
    case("leads_comma_iso.csv", Imported("leads", 3, 3, {"L1": {"campaign": "Autumn, big"}, "L9": {"channel": "event"}},
                                         total=4), mode="append"),
    # --- refused files ---
    case("empty.csv", Refused("is empty (0 bytes)")),
    case("empty.xlsx", Refused("is empty (0 bytes)")),
    case("header_only.csv", Refused("has a header but no data rows")),
    case("binary_junk.csv", Refused("is not a text file")),
    case("legacy.xls", Refused("is an old Excel (.xls) file")),
    case("broken.xlsx", Refused("is not a readable Excel file")),
    case("surveys_as_leads.csv", Refused("is read as leads, but has no column for the required lead_id, created_at"),
         table="leads"),
    case("leads_missing_created_at.csv", Refused('has no column for the required created_at: map a column onto it '
                                                 '(in the app, or with --map created_at="Source column")')),
    case("leads_sql_column_name.csv", Refused("has no column for the required created_at")),
    case("leads_ambiguous_dates.csv", Refused("could be day/month or month/day", column="created_at")),
    case("leads_all_rows_bad.csv", Refused("has no row that could be imported. The first problem: is not a date like "
                                           "2026-10-31 (row 2, column 'created_at').")),
    case("leads_long_line.csv", Refused("is 1.0 MB, more than the limit of 0.5 MB. Split the export, or raise the "
                                        "limit with KPI_MAX_UPLOAD_MB."), max_mb="0.5"),
]


def run(conn: duckdb.DuckDBPyConnection, file: str, options: Options, workdir: Path) -> ImportResult:
    """Import one fixture as the app does: read, propose, apply the user's answers, import."""
    raw = read_file(EXPORTS / file, workdir=workdir)
    plan = propose(raw, options.table)
    for canonical, source in options.map.items():
        plan = plan.with_column(canonical, source)
    for canonical, pairs in options.values.items():
        for source_value, value in pairs.items():
            plan = plan.with_value(canonical, source_value, value)
    if options.dates:
        for column in plan.ambiguous_dates:
            plan = plan.with_date_order(column, DateOrder(options.dates))
    return import_files(conn, [Upload(raw, plan, Mode(options.mode))], f"import {file}")


def test_every_fixture_file_has_a_case():
    assert len({p.values[0] for p in CASES}) >= 30
    assert {p.values[0] for p in CASES} == {p.name for p in EXPORTS.iterdir()}


@pytest.mark.parametrize(("file", "options", "expected"), CASES)
def test_import(db, tmp_path, monkeypatch, file, options, expected):
    if options.max_mb:
        monkeypatch.setenv("KPI_MAX_UPLOAD_MB", options.max_mb)
    before = state(db)
    if isinstance(expected, Refused):
        with pytest.raises(BadFile) as raised:
            run(db, file, options, tmp_path)
        message = str(raised.value)
        assert message.startswith(file) and raised.value.file == file
        assert expected.says in message
        assert raised.value.column == expected.column
        if expected.column:
            assert f"column '{expected.column}'" in message
        assert state(db) == before  # nothing changed: no snapshot, schema, table, view, mapping or row
        return

    check_imported(db, run(db, file, options, tmp_path), expected, before)


def check_imported(db: duckdb.DuckDBPyConnection, result: ImportResult, expected: Imported,
                   before: dict[str, object]) -> None:
    """The import went as `expected` says, into a new snapshot next to the untouched previous one."""
    report = result.files[0]
    assert (report.table, report.rows, report.imported) == (expected.table, expected.rows, expected.imported)
    assert list(report.problems) == list(expected.problems)
    assert report.rejected == len({p.row for p in expected.problems})
    for text in expected.warnings:
        assert any(text in warning for warning in report.warnings), report.warnings
    if not expected.warnings:
        assert report.warnings == ()
    schema = result.snapshot.schema
    key = expected.key or TABLES[expected.table].key
    for id_, columns in expected.values.items():
        names = ", ".join(f'"{c}"' for c in columns)
        row = db.execute(f'SELECT {names} FROM "{schema}"."{expected.table}" WHERE "{key}" = ?', [id_]).fetchall()
        assert row == [tuple(columns.values())], id_
    # a new snapshot; the previous one is as it was, and the other tables are carried over
    assert result.snapshot.id == 2
    assert row_counts(db, "snapshot_1") == before["rows"]
    assert row_counts(db, schema) == {**BASE_ROWS, expected.table: expected.total or expected.imported}


# --- the same, for files written here (the generated fixtures stay as they are) ----------------------------------

WRITTEN = [
    pytest.param("tickets_oversized_rating.csv",
                 "ticket_id,created_at,csat\nT1,2026-10-31 14:00:00,99999999999\nT2,2026-10-31 14:00:00,4\n"
                 "T3,2026-10-31 14:00:00,-99999999999\n",
                 Imported("tickets", 3, 1, {"T2": {"csat": 4}}, problems=(
                     Problem(2, "csat", "99999999999", "is not a whole number from 1 to 5"),
                     Problem(4, "csat", "-99999999999", "is not a whole number from 1 to 5"),
                 )), id="oversized-whole-number-is-a-rejected-value"),
    pytest.param("leads_duplicate_of_a_rejected_row.csv",  # duplicates are judged among valid rows only
                 "lead_id,created_at,channel\nL1,2026-10-01 10:00:00,first\nL1,not a date,second\n"
                 "L2,2026-10-02 10:00:00,other\nL3,2026-10-03 10:00:00,early\nL3,2026-10-04 10:00:00,late\n"
                 "L3,yesterday,rejected\n",
                 Imported("leads", 6, 3, {
                     "L1": {"channel": "first", "created_at": T(2026, 10, 1, 10, 0)}, "L2": {"channel": "other"},
                     "L3": {"channel": "late", "created_at": T(2026, 10, 4, 10, 0)},
                 }, problems=(
                     Problem(3, "created_at", "not a date", "is not a date like 2026-10-31"),
                     Problem(7, "created_at", "yesterday", "is not a date like 2026-10-31"),
                 ), warnings=("1 row(s) repeat an id of a later row in the file; the later row was kept.",)),
                 id="valid-row-kept-when-a-later-row-with-its-id-is-rejected"),
]


@pytest.mark.parametrize(("file", "text", "expected"), WRITTEN)
def test_import_written(db, tmp_path, file, text, expected):
    (tmp_path / file).write_text(text, encoding="utf-8")
    before = state(db)
    raw = read_file(tmp_path / file, workdir=tmp_path)
    check_imported(db, import_files(db, [Upload(raw, propose(raw))], f"import {file}"), expected, before)


def test_bytes_that_are_not_utf8_below_the_checked_part_are_read_as_windows_1252(db, tmp_path):
    path = tmp_path / "leads.csv"
    lines = ["lead_id,created_at,campaign"] + [f"L{i},2026-10-01 10:00:00,Größe {i % 7}" for i in range(300_000)]
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8") + "LX,2026-10-02 10:00:00,Müller €\n".encode("cp1252"))
    assert path.stat().st_size > 9 * 1024 * 1024  # beyond what read_file checks
    raw = read_file(path, workdir=tmp_path)
    result = import_files(db, [Upload(raw, propose(raw))], "late cp1252 bytes")
    assert result.files[0].imported == 300_001
    rows = db.execute(f"SELECT lead_id, campaign FROM {result.snapshot.schema}.leads WHERE lead_id IN ('L1', 'LX') "
                      "ORDER BY lead_id").fetchall()
    assert rows == [("L1", "Größe 1"), ("LX", "Müller €")]


def test_a_utf8_csv_read_without_a_workdir_makes_no_temporary_directory(tmp_path, monkeypatch):
    def refuse(*args: object, **kwargs: object) -> str:
        raise AssertionError("a temporary directory was made")

    monkeypatch.setattr("tempfile.mkdtemp", refuse)
    assert read_file(EXPORTS / "leads_comma_iso.csv").path == EXPORTS / "leads_comma_iso.csv"


# --- several files at once ------------------------------------------------------------------------


def test_one_bad_file_among_good_ones_imports_none_of_them(db, tmp_path):
    before = state(db)
    uploads = []
    for file in ("hubspot_deals_de.csv", "zendesk_tickets.csv", "leads_all_rows_bad.csv"):
        raw = read_file(EXPORTS / file, workdir=tmp_path)
        uploads.append(Upload(raw, propose(raw)))
    with pytest.raises(BadFile, match="leads_all_rows_bad.csv: has no row that could be imported"):
        import_files(db, uploads, "three files")
    assert state(db) == before


def test_two_files_for_one_table_are_refused(db, tmp_path):
    before = state(db)
    uploads = [Upload(raw, propose(raw)) for file in ("leads_comma_iso.csv", "leads_pipe_day_first.csv")
               for raw in [read_file(EXPORTS / file, workdir=tmp_path)]]
    with pytest.raises(BadFile, match="leads_comma_iso.csv, leads_pipe_day_first.csv: are all read as leads"):
        import_files(db, uploads, "two lead files")
    assert state(db) == before


def test_several_files_land_in_one_snapshot(db, tmp_path):
    uploads = [Upload(raw, propose(raw)) for file in ("hubspot_deals_de.csv", "zendesk_tickets.csv")
               for raw in [read_file(EXPORTS / file, workdir=tmp_path)]]
    result = import_files(db, uploads, "two files")
    assert [r.table for r in result.files] == ["opportunities", "tickets"]
    assert row_counts(db, result.snapshot.schema) == {**BASE_ROWS, "opportunities": 3, "tickets": 3}
    changed = db.execute("SELECT table_name, source FROM snapshot_tables WHERE snapshot_id = 2 AND changed "
                         "ORDER BY table_name").fetchall()
    assert changed == [("opportunities", "hubspot_deals_de.csv"), ("tickets", "zendesk_tickets.csv")]


def test_a_quoted_line_break_far_below_the_sample_still_imports(db, tmp_path):
    # DuckDB's parallel reader cannot pad rows once a quoted cell spans lines; the sample does not reach
    # this far, so the import itself has to notice and read the file again with one thread.
    path = tmp_path / "leads.csv"
    lines = ["lead_id,created_at,campaign"] + [f"L{i},2026-10-01 10:00:00,Campaign {i % 7}" for i in range(20_000)]
    path.write_text("\n".join([*lines, 'LX,2026-10-02 10:00:00,"two\nlines"', "LY,2026-10-03 10:00:00,short"]) + "\n")
    raw = read_file(path, workdir=tmp_path)
    result = import_files(db, [Upload(raw, propose(raw))], "late line break")
    assert result.files[0].imported == 20_002
    rows = db.execute(f"SELECT lead_id, campaign FROM {result.snapshot.schema}.leads WHERE lead_id IN ('LX', 'LY') "
                      "ORDER BY lead_id").fetchall()
    assert rows == [("LX", "two\nlines"), ("LY", "short")]


def test_stage_values_beyond_the_sample_are_read_as_the_sample_is(db, tmp_path):
    path = tmp_path / "deals.csv"
    lines = ["opportunity_id,created_at,stage"] + [f"O{i},2026-10-01,Closed Won" for i in range(2_100)]
    path.write_text("\n".join([*lines, "OX,2026-10-01,Closed - Lost", "OY,2026-10-01,closed_won"]) + "\n")
    raw = read_file(path, workdir=tmp_path)
    result = import_files(db, [Upload(raw, propose(raw))], "many deals")
    rows = db.execute(f"SELECT opportunity_id, stage FROM {result.snapshot.schema}.opportunities "
                      "WHERE opportunity_id IN ('OX', 'OY') ORDER BY 1").fetchall()
    assert rows == [("OX", "lost"), ("OY", "won")]


def test_rows_after_blank_lines_are_numbered_as_a_spreadsheet_does(db, tmp_path):
    result = run(db, "leads_blank_lines.csv", Options(), tmp_path)
    assert [p.row for p in result.files[0].problems] == [9]  # a spreadsheet shows 'yesterday' in row 9


def test_rows_below_empty_lines_far_down_a_large_file_keep_their_numbers(db, tmp_path):
    # DuckDB's reader skips empty lines on every core; the numbers are put right after the read
    lines = ["lead_id,created_at"] + [f"L{i},2026-10-01 10:00:00" for i in range(100_000)]
    lines[50_001:50_001] = ["", ""]  # two empty lines after L50000 (file line 50,002)
    lines.append("LX,soon")  # file line 100,004
    path = tmp_path / "leads.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    raw = read_file(path, workdir=tmp_path)
    report = import_files(db, [Upload(raw, propose(raw))], "empty lines").files[0]
    assert (report.rows, report.imported) == (100_001, 100_000)
    assert [(p.row, p.value) for p in report.problems] == [(100_004, "soon")]


def test_the_fixture_files_are_what_the_generator_writes(tmp_path):
    written = {p.name: p.read_bytes() for p in make_exports.write(tmp_path)}
    committed = {p.name: p.read_bytes() for p in EXPORTS.iterdir()}
    assert sorted(committed) == sorted(written)
    for name, data in written.items():
        assert committed[name] == data, f"{name} differs: run python tests/fixtures/make_exports.py"


# --- the CLI on the same path ---------------------------------------------------------------------


def load(capsys: pytest.CaptureFixture[str], db_path: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--db", str(db_path), "load", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_refuses_a_file_it_cannot_place_and_says_how_to_map_it(capsys, db_path):
    before = db_state(db_path)
    file = str(EXPORTS / "leads_sql_column_name.csv")
    code, out, err = load(capsys, db_path, file)
    assert code == 1 and "Snapshot" not in out
    assert "leads_sql_column_name.csv" in err and "has no column for the required created_at" in err
    assert '--map created_at="Source column"' in err
    assert db_state(db_path) == before

    code, out, err = load(capsys, db_path, file, "--map", 'created_at=created_at"); DROP TABLE leads; --')
    assert (code, err) == (0, "")
    assert "leads_sql_column_name.csv -> leads (replace): 1 row(s) imported, 0 rejected." in out
    after = db_state(db_path)
    assert after["rows"] == {**BASE_ROWS, "leads": 1}
    assert set(before["relations"]) < set(after["relations"])  # nothing dropped


def test_cli_never_guesses_unsure_columns(capsys, db_path):
    before = db_state(db_path)
    code, _, err = load(capsys, db_path, str(EXPORTS / "leads_misspelled_headers.csv"))
    assert code == 1
    assert "these columns are guesses: lead_id <- 'Lead Idd' (74% sure)" in err
    assert "created_at <- 'Created Dat'" in err and "channel <- 'Chanel'" in err
    assert '--map lead_id="Lead Idd"' in err
    assert db_state(db_path) == before


def test_cli_asks_for_the_date_order_and_takes_it(capsys, db_path):
    before = db_state(db_path)
    file = str(EXPORTS / "leads_ambiguous_dates.csv")
    code, _, err = load(capsys, db_path, file)
    assert code == 1 and "column 'created_at'" in err and "--dates day_first" in err
    assert db_state(db_path) == before
    code, _, _ = load(capsys, db_path, file, "--dates", "day_first")
    assert code == 0
    with duckdb.connect(str(db_path)) as conn:
        assert conn.execute("SELECT created_at FROM snapshot_2.leads WHERE lead_id = 'L1'").fetchone() == (
            T(2026, 2, 1),)


def test_cli_rejected_rows_are_listed_with_row_column_value_and_reason(capsys, db_path):
    code, out, _ = load(capsys, db_path, str(EXPORTS / "tickets_csat_out_of_range.csv"))
    assert code == 0
    assert "1 row(s) imported, 2 rejected." in out
    assert "row 3, column 'csat': '7' is not a whole number from 1 to 5" in out
    assert "row 4, column 'reopened': 'maybe' is not yes/no" in out


def test_cli_all_or_nothing_over_several_files(capsys, db_path):
    before = db_state(db_path)
    code, out, err = load(capsys, db_path, str(EXPORTS / "zendesk_tickets.csv"), str(EXPORTS / "header_only.csv"))
    assert code == 1 and "header_only.csv: has a header but no data rows" in err and "Snapshot" not in out
    assert db_state(db_path) == before


def test_cli_saved_mapping_is_applied_to_the_next_file_with_the_same_headers(capsys, db_path, tmp_path):
    first = EXPORTS / "leads_misspelled_headers.csv"
    code, out, _ = load(capsys, db_path, str(first), "--map", "lead_id=Lead Idd", "--map", "created_at=Created Dat",
                        "--map", "channel=Chanel", "--save-mapping", "old crm")
    assert code == 0 and "Saved the mapping as 'old crm'." in out
    second = tmp_path / "next_week.csv"
    second.write_text("Lead Idd,Created Dat,Chanel\nL7,2026-11-07 08:00:00,fair\nL8,2026-11-08 08:00:00,fair\n",
                      encoding="utf-8")
    code, out, err = load(capsys, db_path, str(second))
    assert (code, err) == (0, "")
    assert re.search(r"next_week.csv: using the saved mapping 'old crm' saved by \S+ \(command line\) on "
                     r"\d{4}-\d\d-\d\d\.", out)
    with duckdb.connect(str(db_path)) as conn:
        assert conn.execute("SELECT lead_id, channel FROM snapshot_3.leads ORDER BY 1").fetchall() == [
            ("L7", "fair"), ("L8", "fair")]


def test_cli_append_keeps_stored_rows_and_replaces_known_ids(capsys, db_path):
    code, out, _ = load(capsys, db_path, str(EXPORTS / "leads_duplicate_ids.csv"), "--append")
    assert code == 0 and "(append): 2 row(s) imported" in out
    with duckdb.connect(str(db_path)) as conn:
        rows = conn.execute("SELECT lead_id, channel FROM snapshot_2.leads ORDER BY 1").fetchall()
        assert rows == [("L1", "second"), ("L2", "other"), ("L9", "event")]  # L1 from the file, L9 kept
        assert conn.execute("SELECT COUNT(*) FROM snapshot_1.leads").fetchone() == (2,)


def test_a_status_only_customer_export_needs_its_date_and_then_gives_churn_as_of_that_date(tmp_path):
    from datetime import date as day

    from kpicore.catalog import load_catalog
    from kpicore.compute import compute
    from kpicore.periods import Grain, parse_period

    path = tmp_path / "customers.csv"
    path.write_text("Kunden-ID;Gekündigt;Segment\nC1;ja;SMB\nC2;nein;SMB\nC3;nein;Enterprise\nC4;ja;SMB\n",
                    encoding="utf-8")
    conn = store.connect(tmp_path / "kpi.duckdb")
    raw = read_file(path)
    plan = propose(raw)
    assert plan.table == "customers" and plan.missing_required == ("acquired_at",)
    before = store.latest_snapshot(conn)
    with pytest.raises(BadFile, match="--as-of"):
        import_files(conn, [Upload(raw, plan)], "no date given")
    assert store.latest_snapshot(conn) == before  # refused: nothing changed
    result = import_files(conn, [Upload(raw, plan, as_of=day(2026, 10, 31))], "status-only")
    assert store.loaded(conn, result.snapshot)["customers"].status_as_of == day(2026, 10, 31)
    values = compute(conn, load_catalog(), result.snapshot.schema, Grain.MONTH,
                     loaded=store.loaded(conn, result.snapshot))
    october, september = parse_period("2026-10"), parse_period("2026-09")
    assert values.value("churn_rate", october) == pytest.approx(2 / 4)  # two of the four listed customers left
    # the export has no acquisition dates: new customers (and the retention built on them) are not invented
    assert values.value("new_customers", october) is None and values.value("retention_rate", october) is None
    assert "no acquired_at column" in values.notes["new_customers"]
    assert values.value("churn_rate", september) is None  # the export only says how things stood on Oct 31
    assert "status-only customers export as of 2026-10-31" in values.notes["churn_rate"]
    # the next import of another table keeps the customers' export date
    leads = tmp_path / "leads.csv"
    leads.write_text("lead_id,created_at\nL1,2026-10-05 10:00:00\n", encoding="utf-8")
    raw_leads = read_file(leads)
    later = import_files(conn, [Upload(raw_leads, propose(raw_leads, "leads"))], "leads").snapshot
    assert store.loaded(conn, later)["customers"].status_as_of == day(2026, 10, 31)
