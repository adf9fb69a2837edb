"""Hostile and broken input: files that are not what they claim, names and values made to look like links or
commands. None crashes, none renders as Markdown, none leaves files behind."""
from __future__ import annotations

import codecs
import contextlib
import io
import os
import random
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import openpyxl
import pytest
from streamlit.testing.v1 import AppTest

from kpicore import files, store
from kpicore.cli import main
from kpicore.display import plain, printable
from kpicore.errors import BadFile
from kpicore.files import MAX_COLUMNS, WORKDIR_OWNER, _unique_names, clean_workdirs, read_file, workdir

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard.py"
LINK = "[Session expired - log in again](http://evil.example)"
IMAGE = "![t](http://evil.example/track.png)"


def test_a_bom_file_with_one_windows_byte_reads_that_byte_as_windows_1252(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes(codecs.BOM_UTF8 + b"lead_id,owner\nL1,Ana\nL2,M\xfcller\n")  # 0xFC: 'ü' in Windows-1252
    raw = read_file(path, workdir=tmp_path)
    assert raw.sample == (("L1", "Ana"), ("L2", "Müller"))


def test_utf16_cut_in_the_middle_of_a_character_names_the_file_and_row(tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    path.write_bytes("ticket_id,created_at\nT1,2026-01-01\n".encode("utf-16") + b"\x41")
    with pytest.raises(BadFile) as refused:
        read_file(path, workdir=tmp_path)
    assert (refused.value.file, refused.value.row) == ("tickets.csv", 3)
    assert "is not valid UTF-16" in str(refused.value) and "Save the export again as UTF-8" in str(refused.value)
    assert [p.name for p in tmp_path.iterdir()] == ["tickets.csv"], "no half-converted copy is left"


def test_repeated_column_names_are_numbered(tmp_path: Path) -> None:
    assert _unique_names(["x", "x", "x", " x ", "", ""]) == ("x", "x (2)", "x (3)", "x (4)", "Column 5", "Column 6")
    assert _unique_names(["a", "a (2)", "a", "a"]) == ("a", "a (2)", "a (3)", "a (4)")
    assert len(set(_unique_names(["amount"] * 50_000))) == 50_000


def test_a_file_with_too_many_columns_is_refused_and_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(MAX_COLUMNS + 1)) + "\n" + ",".join("1" * (MAX_COLUMNS + 1))
                    + "\n", encoding="utf-8")
    with pytest.raises(BadFile, match=f"has {MAX_COLUMNS + 1:,} columns; at most {MAX_COLUMNS:,} are read"):
        read_file(path, workdir=tmp_path)


def test_an_excel_file_that_would_expand_past_the_limit_is_refused_unexpanded(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bomb.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["lead_id", "created_at"])
    for i in range(20_000):
        sheet.append([f"L{i}", "2026-01-01"])
    book.save(path)
    monkeypatch.setenv("KPI_MAX_XLSX_MB", "0.5")  # the sheet's XML is larger than half a megabyte
    with pytest.raises(BadFile, match=r"would expand to \d+ MB when opened, more than the 0 MB allowed|"
                                      r"would expand to .* MB when opened"):
        read_file(path, workdir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.xlsx"], "nothing was expanded"
    monkeypatch.setenv("KPI_MAX_XLSX_MB", "100")
    assert read_file(path, workdir=tmp_path).columns == ("lead_id", "created_at")


def _workbook_with_cell(path: Path, text: str) -> Path:
    """A one-sheet workbook whose second row holds `text` in one cell. openpyxl cuts text at Excel's limit, so the
    cell is written into the sheet's XML afterwards, as a damaged or hand-made file would have it."""
    book = openpyxl.Workbook()
    book.active.append(["lead_id", "created_at", "campaign"])
    book.active.append(["L1", "2026-01-05", "PLACEHOLDER"])
    made = io.BytesIO()
    book.save(made)
    with zipfile.ZipFile(made) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                assert b"PLACEHOLDER" in data
                data = data.replace(b"PLACEHOLDER", text.encode("utf-8"))
            target.writestr(info.filename, data)
    return path


def test_a_cell_longer_than_excel_allows_is_refused_without_expanding_it(tmp_path: Path) -> None:
    # one 200 MB cell packs into a file of about 200 KB; reading it would hold it in memory several times
    path = _workbook_with_cell(tmp_path / "one cell.xlsx", "A" * 200_000_000)
    assert path.stat().st_size < 1_000_000
    probe = textwrap.dedent(f"""
        import resource, sys
        from pathlib import Path
        from kpicore.errors import BadFile
        from kpicore.files import read_file
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            read_file(Path({str(path)!r}), workdir=Path({str(tmp_path)!r}))
        except BadFile as refused:
            print(refused)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    """)
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    message, grown_mb = done.stdout.strip().splitlines()
    assert "one cell.xlsx" in message and "longer than 32,767 characters, Excel's own limit" in message, message
    assert int(grown_mb) < 60, f"reading the refused workbook grew memory by {grown_mb} MB"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one cell.xlsx"], "nothing was expanded"


def test_a_cell_as_long_as_excel_allows_is_read(tmp_path: Path) -> None:
    # Excel's longest cell, in four-byte characters (its XML is four times its length)
    text = "\U0001F600" * 32_767
    raw = read_file(_workbook_with_cell(tmp_path / "long.xlsx", text), workdir=tmp_path)
    assert raw.sample[0][2] == text


@pytest.mark.parametrize("chunk", [1, 3, 16, 1 << 20])
def test_the_longest_text_is_found_across_chunk_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           chunk: int) -> None:
    monkeypatch.setattr(files, "_CHUNK", chunk)  # the scan reads 4 * _CHUNK bytes at a time
    parts = random.Random(chunk)
    for _ in range(30):
        data = bytes(parts.choice(b"<ab>") for _ in range(parts.randint(0, 300)))
        with zipfile.ZipFile(tmp_path / "t.zip", "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("xl/sharedStrings.xml", data)
        with zipfile.ZipFile(tmp_path / "t.zip") as archive:
            found = files._longest_text(archive, archive.getinfo("xl/sharedStrings.xml"))
        assert found == max(len(piece) for piece in data.split(b"<")), data


def test_the_working_copies_of_ended_processes_are_removed(tmp_path: Path) -> None:
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    dead = int(ended.stdout)
    gone, mine, foreign = tmp_path / "kpi-load-gone", tmp_path / "kpi-upload-mine", tmp_path / "other-dir"
    for folder, owner in ((gone, dead), (mine, os.getpid()), (foreign, dead)):
        folder.mkdir()
        (folder / WORKDIR_OWNER).write_text(str(owner))
        (folder / "copy.csv").write_text("x\n")
    fresh_orphan = tmp_path / "kpi-import-old-version"  # no owner file, made just now: left for a day
    fresh_orphan.mkdir()
    named_gone, named_mine = tmp_path / f"kpi-load-{dead}-x1y2", tmp_path / f"kpi-upload-{os.getpid()}-x3y4"
    named_gone.mkdir()
    named_mine.mkdir()
    assert sorted(clean_workdirs(tmp_path)) == sorted([gone, named_gone])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["kpi-import-old-version", "kpi-upload-mine",
                                                                 "other-dir", named_mine.name])
    made = workdir("upload")
    try:
        assert made.name.startswith(f"kpi-upload-{os.getpid()}-")  # the owner is in the name from the start
    finally:
        import shutil
        shutil.rmtree(made)


def test_markdown_text_from_outside_reads_as_written() -> None:
    joiner = "\u2060"  # after 'http:', 'www' and '@', so that no address turns into a link
    assert plain(LINK) == f"\\[Session expired - log in again\\](http:{joiner}//evil.example)"
    assert plain(IMAGE) == f"\\!\\[t\\](http:{joiner}//evil.example/track.png)"
    assert plain("ana@example.com or www.example.com") == f"ana@{joiner}example.com or www{joiner}.example.com"
    assert plain("opportunity_id and _emphasis_ and *bold* and :red[x] and <b>") == (
        "opportunity_id and \\_emphasis\\_ and \\*bold\\* and :red\\[x\\] and \\<b\\>")
    assert [plain(t) for t in ("- item", "1. item", "2026-10")] == ["\\- item", "1\\. item", "2026-10"]
    assert plain("a\nb\x1b[2J") == r"a b \[2J"
    assert printable("paused\x1b]0;owned\x07 now") == "paused ]0;owned  now"


def test_the_cli_prints_rejected_cells_without_terminal_escapes(tmp_path: Path) -> None:
    db = tmp_path / "kpi.duckdb"
    store.connect(db).close()
    export = tmp_path / "leads.csv"
    export.write_text("lead_id,created_at\nL1,2026-01-01 10:00:00\nL2,\x1b[2J\x1b]0;owned\x07\n", encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["--db", str(db), "load", str(export), "--map", "created_at=created_at"])
    assert "row 3, column 'created_at'" in out.getvalue()
    assert "\x1b" not in out.getvalue() and "\x07" not in out.getvalue()


@pytest.mark.parametrize(("params", "name"), [({"snapshot": LINK}, "snapshot"), ({"channel": IMAGE}, "channel"),
                                              ({"present": "1", "cycle": LINK}, "cycle")])
def test_url_parameters_quoted_in_notices_are_text(app_db: Path, params: dict[str, str], name: str) -> None:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update(params)
    at.run()
    assert not at.exception
    notices = [w.value for w in at.warning if f"URL parameter {name}" in w.value]
    assert len(notices) == 1, [w.value for w in at.warning]
    assert "\\[" in notices[0] and "http:\u2060//" in notices[0]  # no link, no image, no address


def test_an_upload_named_like_a_link_is_shown_as_its_name(app_db: Path) -> None:
    from app_support import upload

    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page("pages/data.py").run()
    upload(at, f"{LINK}.csv", b"lead_id,created_at\nL1,2026-01-01 10:00:00\n")
    shown = [m.value for m in at.markdown if "Session expired" in m.value]
    assert shown == [f"#### {plain(LINK + '.csv')}"]
