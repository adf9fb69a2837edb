"""The meeting report: Markdown, HTML and PDF hold the numbers `kpicore kpis` gives for the same period and
snapshot, the story, the tensions with their charts and the period's check-ins; HTML needs no network; PDF pages
render with no text outside their margins. And every download the pages offer defuses spreadsheet formulas."""
from __future__ import annotations

import contextlib
import csv
import io
import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from kpicore import checkins, exports, kept, report, store
from kpicore.catalog import Catalog
from kpicore.cli import main
from kpicore.periods import Comparison, Grain, parse_period
from kpicore.scorecard import build_scorecard
from kpicore.tensions import find_tensions, spread_over_teams

OCTOBER = parse_period("2026-10", Grain.MONTH)
HOSTILE = "<script>alert(1)</script> [click](http://evil.example) =HYPERLINK(\"http://evil.example\")"
MARGIN_PT = 18 / 25.4 * 72  # the PDF's 18 mm margins, in points


def _cli(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(args)) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog) -> Path:
    path = tmp_path_factory.mktemp("report") / "kpi.duckdb"
    with store.connect(path) as conn:
        checkins.add(conn, catalog, "leads", OCTOBER, "campaign X paused on 14.10.", "Ana",
                     now=datetime(2026, 11, 2, 9, 30))
        checkins.add(conn, catalog, "reopen_rate", OCTOBER, HOSTILE, "Mallory", now=datetime(2026, 11, 2, 10, 0))
        checkins.add(conn, catalog, "leads", parse_period("2026-09"), "a September note", "Ana",
                     now=datetime(2026, 10, 1, 9, 0))
    return path


def _shown_values(db: Path) -> dict[str, str]:
    """KPI label -> value as `kpicore kpis` prints it (its table's columns are two or more spaces apart)."""
    lines = _cli("--db", str(db), "kpis", "--period", "2026-10").splitlines()
    header = lines.index(next(line for line in lines if line.startswith("KPI ")))
    values = {}
    for line in lines[header + 1:]:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line.strip())
        values[cells[0]] = cells[3]
    assert len(values) >= 20, values
    return values


@pytest.fixture(scope="module")
def reports(db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("out")
    made = {}
    for form in report.FORMATS:
        made[form] = folder / f"report.{form}"
        _cli("--db", str(db), "report", "--period", "2026-10", "--format", form, "--out", str(made[form]),
             "--origin", "http://kpi.example")
    return made


def _pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def _texts(reports: dict[str, Path]) -> dict[str, str]:
    import html as html_module

    return {"md": reports["md"].read_text(encoding="utf-8").replace("\\", ""),
            "html": html_module.unescape(re.sub(r"<[^>]+>", " ", reports["html"].read_text(encoding="utf-8"))),
            "pdf": _pdf_text(reports["pdf"])}


def test_every_format_holds_the_numbers_kpicore_kpis_gives(db: Path, reports: dict[str, Path]) -> None:
    values = _shown_values(db)
    for form, text in _texts(reports).items():
        flat = " ".join(text.split())
        for label, value in values.items():
            assert re.search(re.escape(label) + r"\s*\|?\s*" + re.escape(value) + r"(?!\d)", flat), \
                f"{form}: {label} {value} not in the report"


def test_every_format_has_story_teams_tensions_checkins_and_link(db: Path, catalog: Catalog,
                                                                  reports: dict[str, Path]) -> None:
    with store.connect(db) as conn:
        snap = store.latest_snapshot(conn)
        values = kept.values(conn.cursor(), catalog, snap.id, snap.schema, Grain.MONTH)
    found = spread_over_teams(find_tensions(catalog, values, OCTOBER, Comparison.PREVIOUS))
    assert found, "the sample's October has tensions"
    for form, text in _texts(reports).items():
        flat = " ".join(text.split())
        assert "The teams meet" in flat and "Biggest tension" in flat, form
        for team in catalog.teams:
            assert team.label in flat, form
        for tension in found[:report.TOP_TENSIONS]:
            assert " ".join(tension.sentence.split()) in flat, form
        assert "campaign X paused on 14.10. (Ana, 2026-11-02 09:30)" in flat, form
        assert "a September note" not in flat, form  # another period's
        assert "Mallory" in flat, form
        assert "as of 2026-10-31" in flat and "snapshot 1" in flat, form
        assert "http://kpi.example/?grain=month" in flat, form


def test_html_is_self_contained_and_escapes_notes(reports: dict[str, Path]) -> None:
    page = reports["html"].read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"""(src|href)=["'](?!http://kpi\.example)""", page), "nothing loaded from elsewhere"
    assert page.count("<svg") == report.TOP_TENSIONS


def test_markdown_shows_a_note_as_text(reports: dict[str, Path]) -> None:
    text = reports["md"].read_text(encoding="utf-8")
    assert not re.search(r"(?<!\\)<script", text) and not re.search(r"(?<!\\)\]\(http://evil", text)
    assert "\\<script\\>alert(1)\\</script\\> \\[click\\](http://evil.example)" in text


def test_pdf_pages_render_on_a4_with_every_word_inside_the_margins(reports: dict[str, Path], tmp_path: Path) -> None:
    info = subprocess.run(["pdfinfo", str(reports["pdf"])], capture_output=True, text=True, check=True).stdout
    assert "595.28 x 841.89 pts (A4)" in info
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(reports["pdf"]), str(tmp_path / "page")], check=True)
    assert len(list(tmp_path.glob("page-*.png"))) == pages >= 2
    boxes = subprocess.run(["pdftotext", "-bbox", str(reports["pdf"]), "-"], capture_output=True, text=True,
                           check=True).stdout
    words = re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">', boxes)
    assert len(words) > 300
    for x0, y0, x1, y1 in ((float(v) for v in w) for w in words):
        assert x0 >= MARGIN_PT - 1 and x1 <= 595.28 - MARGIN_PT + 1, (x0, x1)
        assert y0 >= MARGIN_PT - 1 and y1 <= 841.89 - MARGIN_PT + 1, (y0, y1)


def test_a_team_report_holds_that_team_only(db: Path, catalog: Catalog, tmp_path: Path) -> None:
    out = tmp_path / "sales.md"
    _cli("--db", str(db), "report", "--period", "2026-10", "--team", "sales", "--out", str(out))
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# KPI scorecard · Sales · 2026-10\n")
    assert "### Sales KPIs" in text and "Marketing KPIs" not in text and "Service KPIs" not in text
    assert "Customer outcomes" in text and "campaign X" not in text  # a Marketing KPI's check-in


def test_an_unknown_team_or_format_is_refused(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", str(db), "report", "--team", "finance"]) == 1
    assert "There is no team 'finance'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--db", str(db), "report", "--format", "docx"])


def test_the_html_report_shows_every_chart_with_the_network_blocked(reports: dict[str, Path],
                                                                      chromium: Browser) -> None:
    context = chromium.new_context(offline=True)
    asked: list[str] = []
    context.route(re.compile(r"^(?!file:).*"), lambda route: (asked.append(route.request.url), route.abort()))
    page = context.new_page()
    page.goto(reports["html"].as_uri())
    figures = page.locator("figure svg")
    assert figures.count() == report.TOP_TENSIONS
    for index in range(figures.count()):
        box = figures.nth(index).bounding_box()
        assert box and box["width"] > 300 and box["height"] > 150
        assert figures.nth(index).locator("path").count() > 3  # lines drawn, not an empty frame
    assert asked == []
    context.close()


def test_every_download_defuses_spreadsheet_formulas(catalog: Catalog, sample_db: Path) -> None:
    """The CSV of each KPI table goes through exports.csv_bytes: a cell a spreadsheet would run starts with '."""
    rows = [("=HYPERLINK(\"http://evil.example\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "plain")]
    data = exports.csv_bytes(["KPI", "Value", "Change", "Target", "Status"], rows).decode("utf-8-sig")
    (parsed,) = list(csv.reader(io.StringIO(data)))[1:]
    assert parsed == ["'=HYPERLINK(\"http://evil.example\")", "'+cmd|' /C calc'!A0", "'-2+3", "'@SUM(A1)", "plain"]
    with store.connect(sample_db) as conn:
        snap = store.latest_snapshot(conn)
        values = kept.values(conn.cursor(), catalog, snap.id, snap.schema, Grain.MONTH)
    card = build_scorecard(catalog, values, OCTOBER, Comparison.PREVIOUS)
    table = report.kpi_table(card.teams[0].kpis, catalog.currency)
    data = exports.csv_bytes(table.header, table.rows).decode("utf-8-sig")
    for row in list(csv.reader(io.StringIO(data)))[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row), row
