"""Reading exports: size limit, encoding, Excel, delimiter and header row."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from kpicore.errors import BadFile
from kpicore.files import SAMPLE_ROWS, max_upload_bytes, read_file, text_counts

HEADER = "Deal-ID;Größe;Betrag €"


def write(tmp_path: Path, data: bytes, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("data", "encoding"), [
    pytest.param(f"{HEADER}\r\n1;groß;1.234,56 €\r\n".encode(), "utf-8", id="utf-8"),
    pytest.param(f"\ufeff{HEADER}\r\n1;groß;1.234,56 €\r\n".encode(), "utf-8-sig", id="utf-8 with BOM"),
    pytest.param(f"{HEADER}\r\n1;groß;1.234,56 €\r\n".encode("utf-16"), "utf-16", id="utf-16 LE with BOM"),
    pytest.param(b"\xfe\xff" + f"{HEADER}\r\n1;groß;1.234,56 €\r\n".encode("utf-16-be"), "utf-16",
                 id="utf-16 BE with BOM"),
    pytest.param(f"{HEADER}\r\n1;groß;1.234,56 €\r\n".encode("cp1252"), "cp1252", id="windows-1252"),
])
def test_encoding_is_detected_and_text_reads_the_same(tmp_path, data, encoding):
    raw = read_file(write(tmp_path, data), workdir=tmp_path)
    assert raw.encoding == encoding
    assert raw.columns == ("Deal-ID", "Größe", "Betrag €")
    assert raw.sample == (("1", "groß", "1.234,56 €"),)


def test_a_utf_8_character_after_the_first_megabyte_keeps_the_file_utf_8(tmp_path):
    data = b"id,name\r\n" + b"1,plain\r\n" * 200_000 + "2,Jürgen\r\n".encode()
    raw = read_file(write(tmp_path, data), workdir=tmp_path)
    assert raw.encoding == "utf-8" and raw.path == tmp_path / "export.csv"  # read in place, not copied


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter(tmp_path, delimiter):
    rows = [["lead_id", "created_at", "channel"], ["L1", "2026-10-31 14:00", "paid search"],
            ["L2", "2026-10-30 09:00", "event"]]
    text = "\r\n".join(delimiter.join(row) for row in rows) + "\r\n"
    raw = read_file(write(tmp_path, text.encode()), workdir=tmp_path)
    assert raw.delimiter == delimiter
    assert raw.columns == ("lead_id", "created_at", "channel")
    assert raw.sample[0] == ("L1", "2026-10-31 14:00", "paid search")


@pytest.mark.parametrize(("text", "delimiter", "columns"), [
    pytest.param("Deal-ID;Name;Betrag\n1;Müller, Meier, Schulze & Co;1.234,56\n", ";", ("Deal-ID", "Name", "Betrag"),
                 id="more commas than semicolons in the only row"),
    pytest.param("customer_id;month;amount\n0;01/01/2000;1,000,000,000.00\n", ";", ("customer_id", "month", "amount"),
                 id="thousands commas"),
    pytest.param("id\tnote\n1\ta, b, c\n2\td, e, f\n", "\t", ("id", "note"), id="commas in every tab row"),
    pytest.param("a;b;c\n1;2\n3;4;5\n", ";", ("a", "b", "c"), id="a short row"),
])
def test_the_delimiter_is_the_one_that_fits_every_row(tmp_path, text, delimiter, columns):
    raw = read_file(write(tmp_path, text.encode()), workdir=tmp_path)
    assert (raw.delimiter, raw.columns) == (delimiter, columns)


@pytest.mark.parametrize(("text", "header_row", "columns", "first"), [
    pytest.param("id,created\n1,2026-01-01\n", 1, ("id", "created"), ("1", "2026-01-01"), id="header first"),
    pytest.param("Leads report,,\nid,created,channel\n1,2026-01-01,web\n", 2, ("id", "created", "channel"),
                 ("1", "2026-01-01", "web"), id="title row"),
    pytest.param("Leads report\nExported by Anna\n\nid,created,channel\n1,2026-01-01,web\n", 4,
                 ("id", "created", "channel"), ("1", "2026-01-01", "web"), id="two title rows and a blank line"),
    pytest.param("\n\nid,created\n1,2026-01-01\n", 3, ("id", "created"), ("1", "2026-01-01"), id="blank lines first"),
    pytest.param("id,created,,\n1,2026-01-01,,\n", 1, ("id", "created"), ("1", "2026-01-01"),
                 id="trailing empty columns"),
    pytest.param("  Deal   Stage ,Amount,Amount,\n won ,1,2,x\n", 1, ("Deal Stage", "Amount", "Amount (2)"),
                 (" won ", "1", "2"), id="spaces, duplicates, unnamed last column"),
    pytest.param("id,,name\n1,x,y\n", 1, ("id", "Column 2", "name"), ("1", "x", "y"), id="unnamed column"),
])
def test_header_row(tmp_path, text, header_row, columns, first):
    raw = read_file(write(tmp_path, text.encode()), workdir=tmp_path)
    assert (raw.header_row, raw.columns, raw.sample[0]) == (header_row, columns, first)


def test_short_rows_are_padded_and_quoted_line_breaks_kept(tmp_path):
    text = 'id,note,amount\r\n1,"two\r\nlines",5\r\n2,short\r\n3,"say ""hi""",7\r\n'
    raw = read_file(write(tmp_path, text.encode()), workdir=tmp_path)
    assert raw.sample == (("1", "two\r\nlines", "5"), ("2", "short", None), ("3", 'say "hi"', "7"))
    assert not raw.parallel  # DuckDB's parallel reader cannot pad rows across quoted line breaks
    plain = read_file(write(tmp_path, b"id,note\r\n1,x\r\n", "plain.csv"), workdir=tmp_path)
    assert plain.parallel


def test_a_cell_larger_than_the_csv_module_default_is_read(tmp_path):
    big = "x" * 300_000
    raw = read_file(write(tmp_path, f"id,note\n1,{big}\n2,y\n".encode()), workdir=tmp_path)
    assert raw.sample == (("1", big), ("2", "y"))


def test_the_sample_is_the_first_rows_only(tmp_path):
    data = b"id,n\n" + b"".join(f"{i},{i}\n".encode() for i in range(SAMPLE_ROWS + 500))
    raw = read_file(write(tmp_path, data), workdir=tmp_path)
    assert len(raw.sample) == SAMPLE_ROWS and raw.sample[0] == ("0", "0")


def test_column_names_never_reach_the_sql(tmp_path):
    header = 'lead_id,"created_at""); DROP TABLE leads; --"'
    raw = read_file(write(tmp_path, f"{header}\n1,2026-01-01\n".encode()), workdir=tmp_path)
    assert raw.columns == ("lead_id", 'created_at"); DROP TABLE leads; --')
    assert "DROP" not in raw.read_sql() and str(raw.path) not in raw.read_sql()
    assert raw.read_params() == {"path": str(raw.path), "delim": ","}


def xlsx(tmp_path: Path, rows: list[list[object]], name: str = "export.xlsx") -> Path:
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.title = "Deals"
    for row in rows:
        workbook.active.append(row)
    path = tmp_path / name
    workbook.save(path)
    return path


def test_excel_with_a_title_row(tmp_path):
    path = xlsx(tmp_path, [["Deals Q4 – Export"], [], ["Deal ID", "Created", "Amount", "Won", "Note", "Link"],
                           ["D1", datetime(2026, 10, 31, 14, 0), 1234.56, True, '=HYPERLINK("http://x","y")', "=1+1"],
                           ["D2", datetime(2026, 10, 30), 99, False, None, None]])
    from openpyxl import load_workbook

    workbook = load_workbook(path)
    workbook.active["E4"].data_type = "s"  # a text cell that looks like a formula; F4 stays a real formula
    workbook.save(path)
    raw = read_file(path, workdir=tmp_path)
    assert (raw.encoding, raw.sheet, raw.header_row, raw.delimiter) == ("xlsx", "Deals", 3, ",")
    assert raw.columns == ("Deal ID", "Created", "Amount", "Won", "Note", "Link")
    # text stays text; a formula is never evaluated (Excel's cached result is read, and this file has none)
    assert raw.sample == (("D1", "2026-10-31 14:00:00", "1234.56", "true", '=HYPERLINK("http://x","y")', None),
                          ("D2", "2026-10-30", "99", "false", None, None))  # a midnight date cell reads as a date


def test_excel_with_an_empty_first_sheet_is_refused(tmp_path):
    with pytest.raises(BadFile, match=r"^export.xlsx: has an empty first worksheet. Put the table on the first sheet"):
        read_file(xlsx(tmp_path, []), workdir=tmp_path)


@pytest.mark.parametrize(("data", "name", "says"), [
    (b"", "leads.csv", "is empty (0 bytes)"),
    (b"", "deals.xlsx", "is empty (0 bytes)"),
    (b"\x00\x01\x02binary\x00" * 10, "junk.csv", "is not a text file"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old.xls", "is an old Excel (.xls) file"),
    (b"PK\x03\x04not a zip at all", "broken.xlsx", "is not a readable Excel file"),
    (b"\r\n\r\n,,\r\n", "blank.csv", "has no header row"),
])
def test_unreadable_files_are_refused_with_their_name(tmp_path, data, name, says):
    with pytest.raises(BadFile) as raised:
        read_file(write(tmp_path, data, name), workdir=tmp_path)
    assert str(raised.value).startswith(f"{name}: {says}")


def test_the_name_shown_is_the_uploaded_name_not_the_temp_file(tmp_path):
    with pytest.raises(BadFile, match=r"^Q4 deals\.csv: is empty"):
        read_file(write(tmp_path, b"", "tmp123.csv"), name="Q4 deals.csv", workdir=tmp_path)


@pytest.mark.parametrize(("setting", "expected"), [
    (None, 200 * 1024 * 1024), ("1", 1024 * 1024), ("0.5", 512 * 1024), ("lots", 200 * 1024 * 1024),
])
def test_max_upload_size(monkeypatch, setting, expected):
    if setting is None:
        monkeypatch.delenv("KPI_MAX_UPLOAD_MB", raising=False)
    else:
        monkeypatch.setenv("KPI_MAX_UPLOAD_MB", setting)
    assert max_upload_bytes() == expected


def test_a_file_above_the_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("KPI_MAX_UPLOAD_MB", "1")
    path = write(tmp_path, b"id,n\n" + b"1,1\n" * 300_000)
    with pytest.raises(BadFile, match=r"^export.csv: is 1.1 MB, more than the limit of 1 MB. Split the export, "
                                      r"or raise the limit with KPI_MAX_UPLOAD_MB."):
        read_file(path, workdir=tmp_path)


@pytest.mark.parametrize(("content", "lines", "quotes"), [
    (b"a,b\n1,2\n", 2, 0), (b"a,b\n1,2", 2, 0), (b"a,b", 1, 0), (b"\n", 1, 0), (b"a\n\n\nb\n", 4, 0),
    (b"a\r\n\r\nb\r\n", 3, 0), (b'a,b\n1,"x ""y"""\n', 2, 6), (b'a,b\n1,5" screen\n', 2, 1),
    (b"x" * (9 << 20) + b'\n"' + b"y", 2, 1),  # beyond the first chunk
])
def test_text_counts(tmp_path, content, lines, quotes):
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    assert text_counts(path) == (lines, quotes)


def test_sessions_reading_uploads_at_once_do_not_share_a_connection(tmp_path):
    # two editors uploading at the same moment: each read of a file runs on its own cursor (DuckDB's
    # module-level connection refused the second caller with "connection is busy with another call")
    import threading
    paths = []
    for n in range(6):
        path = tmp_path / f"leads_{n}.csv"
        path.write_text("lead_id,created_at,channel\n" + "".join(
            f"L{i},2026-01-05 10:00:00,web\n" for i in range(20_000)), encoding="utf-8")
        paths.append(path)
    failures = []

    def read_often(path):
        for _ in range(8):
            try:
                assert read_file(path, workdir=tmp_path).columns == ("lead_id", "created_at", "channel")
            except Exception as error:  # noqa: BLE001 - collected, and the test fails on any
                failures.append(repr(error))

    threads = [threading.Thread(target=read_often, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
