"""How an import reads a file: DuckDB's reader parses ISO timestamps, rows keep their spreadsheet numbers on
every core, repeated ids are listed apart, and tables no snapshot uses are cleaned up.

Expected row numbers are worked out from how the test writes the file (header on row 1, the i-th data line
on row i + 2), never taken from the importer.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from store_support import state

from kpicore import ingest, store
from kpicore.errors import BadFile
from kpicore.files import read_file
from kpicore.ingest import Problem, Upload, import_files, staging_sql
from kpicore.mapping import propose

ROWS = 200_000  # several of DuckDB's parallel read chunks


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    base = tmp_path / "base"
    base.mkdir()
    (base / "customers.csv").write_text("customer_id,acquired_at\nC1,2026-01-05 10:00:00\n", encoding="utf-8")
    connection = store.connect(tmp_path / "kpi.duckdb", sample_dir=base)
    yield connection
    connection.close()


def tickets_file(path: Path, rows: int, cell: dict[int, tuple[str, str]] | None = None) -> Path:
    """A tickets export with `rows` data lines; `cell` replaces (created_at, csat) of some lines (0-based)."""
    cell = cell or {}
    lines = ["Ticket ID,Created at,Satisfaction Rating,Via"]
    for i in range(rows):
        created, csat = cell.get(i, (f"2026-{1 + i % 9:02d}-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:07",
                                     str(1 + i % 5)))
        lines.append(f"T{i},{created},{csat},{'email' if i % 3 else 'chat'}" if created != "BLANK" else ",,,")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def database_file(conn: duckdb.DuckDBPyConnection) -> Path:
    return Path(conn.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
                             ).fetchone()[0])


def imported(conn: duckdb.DuckDBPyConnection, path: Path, tmp_path: Path, as_text: bool = False):
    raw = read_file(path, workdir=tmp_path)
    raw = raw.as_text() if as_text else raw
    return import_files(conn, [Upload(raw, propose(raw, "tickets"))], f"import {path.name}")


def reads_timestamps_itself(path: Path, tmp_path: Path) -> bool:
    raw = read_file(path, workdir=tmp_path)
    return "timestamp_format" in staging_sql(raw, propose(raw, "tickets"), "t")[1]


def test_rejected_values_keep_their_row_numbers_when_the_file_is_read_on_every_core(conn, tmp_path):
    bad = {7: ("2026-03-03 10:00:00", "9"), 150_003: ("2026-03-03 10:00:00", "0"),
           ROWS - 1: ("2026-03-03 10:00:00", "six")}
    blank = {100_000: ("BLANK", "")}  # a row of empty cells (,,,) keeps its number, as in a spreadsheet
    path = tickets_file(tmp_path / "tickets.csv", ROWS, {**bad, **blank})
    assert reads_timestamps_itself(path, tmp_path)
    report = imported(conn, path, tmp_path).files[0]
    assert (report.rows, report.imported, report.rejected) == (ROWS - 1, ROWS - 4, 3)
    reason = "is not a whole number from 1 to 5"
    assert report.problems == (Problem(9, "Satisfaction Rating", "9", reason),
                               Problem(150_005, "Satisfaction Rating", "0", reason),
                               Problem(ROWS + 1, "Satisfaction Rating", "six", reason))


def test_a_timestamp_the_reader_refuses_is_read_as_text_and_reported(conn, tmp_path):
    path = tickets_file(tmp_path / "tickets.csv", ROWS, {ROWS - 2: ("yesterday", "3"), 5: ("", "4")})
    assert reads_timestamps_itself(path, tmp_path)  # the sample is ISO: the reader tries first, then gives up
    result = imported(conn, path, tmp_path)
    report = result.files[0]
    assert (report.rows, report.imported) == (ROWS, ROWS - 2)
    assert report.problems == (Problem(7, "Created at", "", "is required but empty"),
                               Problem(ROWS, "Created at", "yesterday", "is not a date like 2026-10-31"))
    last = conn.execute(f"SELECT created_at FROM {result.snapshot.schema}.tickets WHERE ticket_id = ?",
                        [f"T{ROWS - 1}"]).fetchone()[0]
    i = ROWS - 1
    assert last == datetime(2026, 1 + i % 9, 1 + i % 28, i % 24, i % 60, 7)


def test_the_reader_and_the_text_path_store_the_same_values(tmp_path):
    cells = {0: (" 2026-10-02 10:00:00 ", "4"), 1: ("", "5"), 2: ("2026-1-6 1:02:03", "1"),
             3: ("2026-02-28 23:59:59", " 2 "), 4: ("2026-02-01 00:00:00", "")}
    path = tickets_file(tmp_path / "tickets.csv", 3000, cells)
    assert reads_timestamps_itself(path, tmp_path)
    stored = []
    for as_text in (False, True):
        folder = tmp_path / ("text" if as_text else "reader")
        folder.mkdir()
        conn = store.connect(folder / "kpi.duckdb", sample_dir=folder)
        try:
            schema = imported(conn, path, tmp_path, as_text).snapshot.schema
            stored.append(conn.execute(f"SELECT * FROM {schema}.tickets ORDER BY ticket_id").fetchall())
        finally:
            conn.close()
    assert stored[0] == stored[1] and len(stored[0]) == 2999
    by_id = {row[0]: row for row in stored[0]}
    assert by_id["T0"][1] == datetime(2026, 10, 2, 10, 0) and by_id["T2"][1] == datetime(2026, 1, 6, 1, 2, 3)
    assert "T1" not in by_id  # created_at is required


def test_day_first_timestamps_are_read_as_text(tmp_path):
    path = tmp_path / "tickets.csv"
    path.write_text("Ticket ID,Created at\nT1,31.10.2026 10:00\nT2,01.11.2026 11:00\n", encoding="utf-8")
    assert not reads_timestamps_itself(path, tmp_path)


def test_numbers_in_scientific_notation_are_read_and_infinity_is_not(conn, tmp_path):
    path = tmp_path / "deals.csv"
    path.write_text("opportunity_id,created_at,stage,amount\nO1,2026-10-01,won,1.23E+05\nO2,2026-10-01,won,inf\n"
                    "O3,2026-10-01,won,\"1,250.50\"\nO4,2026-10-01,won,5e400\n", encoding="utf-8")
    raw = read_file(path, workdir=tmp_path)
    result = import_files(conn, [Upload(raw, propose(raw, "opportunities"))], "amounts")
    rows = conn.execute(f"SELECT opportunity_id, amount FROM {result.snapshot.schema}.opportunities "
                        "ORDER BY 1").fetchall()
    assert rows == [("O1", 123_000.0), ("O3", 1250.5)]
    assert [(p.row, p.value) for p in result.files[0].problems] == [(3, "inf"), (5, "5e400")]


def test_repeated_ids_are_listed_apart_and_the_last_row_is_kept(conn, tmp_path):
    path = tickets_file(tmp_path / "tickets.csv", 5, {3: ("2026-05-05 05:05:05", "5")})
    text = path.read_text(encoding="utf-8").replace("T3,", "T1,")  # rows 3 and 5 both say T1
    path.write_text(text, encoding="utf-8")
    result = imported(conn, path, tmp_path)
    assert result.files[0].imported == 4 and "1 row(s) repeat an id" in result.files[0].warnings[0]
    assert conn.execute(f"SELECT created_at FROM {result.snapshot.schema}.tickets WHERE ticket_id = 'T1'"
                        ).fetchall() == [(datetime(2026, 5, 5, 5, 5, 5),)]
    physical = conn.execute("SELECT physical FROM snapshot_tables WHERE snapshot_id = ? AND table_name = 'tickets'",
                            [result.snapshot.id]).fetchone()[0]
    assert conn.execute("SELECT row_id FROM duplicate_rows WHERE physical = ?", [physical]).fetchall() == [(1,)]


def test_a_table_stored_with_a_dup_column_still_hides_its_repeated_rows(conn):
    # stores written before duplicate_rows existed marked repeated ids in a __dup column
    conn.execute("CREATE TABLE leads__old (__row BIGINT, lead_id VARCHAR, created_at TIMESTAMP, channel VARCHAR, "
                 "campaign VARCHAR, qualified_at TIMESTAMP, customer_id VARCHAR, __valid BOOLEAN, __dup BOOLEAN)")
    conn.execute("INSERT INTO leads__old VALUES (2, 'L1', '2026-01-01', 'web', NULL, NULL, NULL, TRUE, TRUE), "
                 "(3, 'L1', '2026-01-02', 'event', NULL, NULL, NULL, TRUE, FALSE), "
                 "(4, 'L2', '2026-01-03', 'web', NULL, NULL, NULL, FALSE, FALSE)")
    conn.execute("BEGIN TRANSACTION")
    snap = store.commit_snapshot(conn, 2, {"leads": store.Stored("leads__old", "old table")}, "old table",
                                 store.latest_snapshot(conn))
    conn.execute("COMMIT")
    assert conn.execute(f"SELECT lead_id, channel FROM {snap.schema}.leads").fetchall() == [("L1", "event")]


def test_a_staged_table_no_snapshot_uses_is_dropped_at_the_next_start(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "leads.csv").write_text("lead_id,created_at\nL1,2026-01-05 10:00:00\n", encoding="utf-8")
    path = tmp_path / "kpi.duckdb"
    conn = store.connect(path, sample_dir=base)
    used = conn.execute("SELECT DISTINCT physical FROM snapshot_tables ORDER BY 1").fetchall()
    conn.execute("CREATE TABLE leads__0a1b2c3d4e5f AS SELECT * FROM snapshot_1.leads")  # as a killed import leaves it
    conn.execute("CREATE TABLE notes (text VARCHAR)")  # not an import's table: kept
    conn.close()
    conn = store.connect(path, sample_dir=base)
    try:
        tables = {name for (name,) in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert "leads__0a1b2c3d4e5f" not in tables and "notes" in tables
        assert {name for (name,) in used} <= tables
        assert conn.execute("SELECT lead_id FROM snapshot_1.leads").fetchall() == [("L1",)]
    finally:
        conn.close()


def test_opening_the_store_again_during_an_import_keeps_the_table_it_stages(conn, tmp_path, monkeypatch):
    # e.g. another session of the app after "Clear cache": store.connect drops tables no snapshot uses,
    # but never one an import in this process is still filling
    path = tickets_file(tmp_path / "tickets.csv", 50)
    database = database_file(conn)
    checking = ingest._with_warnings

    def reopened(*args):  # noqa: ANN002, ANN202
        store.connect(database, sample_dir=tmp_path / "base")
        return checking(*args)

    monkeypatch.setattr(ingest, "_with_warnings", reopened)
    result = imported(conn, path, tmp_path)
    assert conn.execute(f"SELECT COUNT(*) FROM {result.snapshot.schema}.tickets").fetchone()[0] == 50
    store.connect(database, sample_dir=tmp_path / "base").close()  # after the import: still used, still there
    assert conn.execute(f"SELECT COUNT(*) FROM {result.snapshot.schema}.tickets").fetchone()[0] == 50


def test_an_interrupted_import_stops_and_changes_nothing(conn, tmp_path):
    big = tmp_path / "tickets.csv"
    duckdb.execute(
        "COPY (SELECT 'T' || i AS \"Ticket ID\", TIMESTAMP '2024-01-01' + to_seconds(i) AS \"Created at\", "
        "'Subject, \"' || (i % 13) || '\"' AS \"Subject\" FROM range(3000000) t(i)) "
        f"TO '{big}' (HEADER)")
    before = state(conn)
    assert reads_timestamps_itself(big, tmp_path)  # the interrupt must not be taken for a refused timestamp
    outcome: list[BaseException | object] = []
    worker = threading.Thread(target=lambda: outcome.append(_run(conn, big, tmp_path)))
    database = database_file(conn)
    size = database.stat().st_size
    worker.start()
    deadline = time.monotonic() + 60
    while database.stat().st_size < size + (1 << 20) and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)  # DuckDB writes the staged table's blocks into the file while it reads
    conn.interrupt()
    worker.join(120)
    assert isinstance(outcome[0], duckdb.InterruptException), outcome
    assert state(conn) == before


def _run(conn: duckdb.DuckDBPyConnection, path: Path, tmp_path: Path) -> BaseException | object:
    try:
        return imported(conn, path, tmp_path)
    except BaseException as error:  # noqa: BLE001 - the test looks at what it was
        return error


@pytest.mark.parametrize(("text", "what"), [
    ('lead_id,created_at,campaign\nL1,2026-10-01 10:00:00,Spring\nL2,2026-10-01 10:00:00,"Summer launch\n'
     "L3,2026-10-02 10:00:00,Autumn\nL4,2026-10-03 10:00:00,Winter\n", "is never closed"),
    # with a stray inch mark the quotes are even: the lines give it away; L2's quote is closed inside L3
    ('lead_id,created_at,campaign\nL1,2026-10-01 10:00:00,27" screens\nL2,2026-10-01 10:00:00,"Summer launch\n'
     'L3,2026-10-02 10:00:00,"Autumn ""big"""\nL4,2026-10-03 10:00:00,Winter\n', "closes before its cell ends"),
])
def test_a_quote_that_does_not_end_its_cell_is_refused_with_its_row(conn, tmp_path, text, what):
    # DuckDB's lenient reader would read L3 (and L4) into L2's campaign and import fewer rows without a word
    path = tmp_path / "leads.csv"
    path.write_text(text, encoding="utf-8")
    before = state(conn)
    raw = read_file(path, workdir=tmp_path)
    with pytest.raises(BadFile, match=rf'leads.csv: has a quote \(\"\) in row 3 that {what}'):
        import_files(conn, [Upload(raw, propose(raw, "leads"))], "open quote")
    assert state(conn) == before


def test_quotes_that_are_closed_import_every_row(conn, tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text('lead_id,created_at,campaign\nL1,2026-10-01 10:00:00,27" screens\n'
                    'L2,2026-10-01 10:00:00,"two\nlines"\nL3,2026-10-02 10:00:00,plain\n', encoding="utf-8")
    raw = read_file(path, workdir=tmp_path)
    result = import_files(conn, [Upload(raw, propose(raw, "leads"))], "odd but closed")
    assert conn.execute(f"SELECT lead_id, campaign FROM {result.snapshot.schema}.leads ORDER BY 1").fetchall() == [
        ("L1", '27" screens'), ("L2", "two\nlines"), ("L3", "plain")]
