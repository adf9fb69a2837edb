"""Check-ins: a note on a KPI in a period, stored in DuckDB with its author and time, shown on the KPI's chart and
tile as text (never Markdown or HTML)."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from app_support import open_page
from streamlit.testing.v1 import AppTest

from kpicore import checkins, kept, store
from kpicore.catalog import Catalog
from kpicore.charts import tension_chart, trend_chart
from kpicore.errors import BadParameter
from kpicore.periods import Comparison, Grain, parse_period
from kpicore.scorecard import build_scorecard
from kpicore.tensions import find_tensions

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard.py"
OCTOBER = parse_period("2026-10", Grain.MONTH)
HOSTILE = "<script>alert(1)</script> **bold** [link](http://evil.example) ![x](http://evil.example/t.png)"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "kpi.duckdb"
    store.connect(path).close()
    return path


def test_a_checkin_is_stored_with_author_and_time_and_survives_reopening(db: Path, catalog: Catalog) -> None:
    when = datetime(2026, 11, 3, 9, 12, 30)
    with store.connect(db) as conn:
        made = checkins.add(conn, catalog, "leads", OCTOBER, "  campaign X paused\non 14.10. ", "Ana", now=when)
    with store.connect(db) as conn:
        found = checkins.of_grain(conn, Grain.MONTH)
    assert found == (made,)
    assert (made.kpi, made.period, made.note, made.author) == ("leads", "2026-10", "campaign X paused on 14.10.", "Ana")
    assert made.created_at == datetime(2026, 11, 3, 9, 12, 30)
    assert made.line == "campaign X paused on 14.10. (Ana, 2026-11-03 09:12)"
    with store.connect(db) as conn:
        assert checkins.of_grain(conn, Grain.WEEK) == ()
        assert checkins.on(found, "leads", parse_period("2026-09", Grain.MONTH)) == ()
        assert checkins.remove(conn, made.id) and not checkins.remove(conn, made.id)
        assert checkins.of_grain(conn, Grain.MONTH) == ()


@pytest.mark.parametrize(("kpi", "note", "author", "says"), [
    ("no_such_kpi", "a note", "Ana", "'no_such_kpi' is not a KPI of the catalog"),
    ("leads", "   \n ", "Ana", "note is empty"),
    ("leads", "a note", "", "author name is empty"),
    ("leads", "x" * (checkins.NOTE_LIMIT + 1), "Ana", f"at most {checkins.NOTE_LIMIT}"),
])
def test_a_bad_checkin_is_refused_and_nothing_is_stored(db: Path, catalog: Catalog, kpi: str, note: str,
                                                        author: str, says: str) -> None:
    with store.connect(db) as conn:
        with pytest.raises(BadParameter, match=says):
            checkins.add(conn, catalog, kpi, OCTOBER, note, author)
        assert checkins.of_grain(conn, Grain.MONTH) == ()


def test_terminal_escapes_in_a_checkin_are_removed(db: Path, catalog: Catalog) -> None:
    with store.connect(db) as conn:
        made = checkins.add(conn, catalog, "leads", OCTOBER, "paused\x1b]0;owned\x07 campaign\x1b[2J", "Bo\rb")
    assert "\x1b" not in made.note and "\x07" not in made.note and made.author == "Bo b"


def test_the_trend_chart_marks_the_period_of_a_checkin(sample_db: Path, catalog: Catalog) -> None:
    with store.connect(sample_db) as conn:
        snap = store.latest_snapshot(conn)
        values = kept.values(conn.cursor(), catalog, snap.id, snap.schema, Grain.MONTH)
    result = next(r for r in build_scorecard(catalog, values, OCTOBER, Comparison.PREVIOUS).teams[0].kpis
                  if r.kpi.id == "leads")
    note = checkins.CheckIn(7, "leads", Grain.MONTH, "2026-09", HOSTILE, "Ana", datetime(2026, 10, 2, 8, 0))
    other = checkins.CheckIn(8, "win_rate", Grain.MONTH, "2026-09", "not this KPI", "Bo", datetime(2026, 10, 2, 8, 0))
    spec = trend_chart(result, "Previous period", notes=[note, other])
    tension = next(t for t in find_tensions(catalog, values, OCTOBER, Comparison.PREVIOUS) if "leads" in
                   (t.kpi.id, t.counterweight.id))
    marked = tension_chart(tension, values, notes=[note, other])["datasets"]["checkins"]
    lines = [f"Leads: {note.line}"] + (
        [f"Win rate: {other.line}"] if "win_rate" in (tension.kpi.id, tension.counterweight.id) else [])
    assert marked == [{"period": "2026-09", "notes": " · ".join(lines)}]  # a KPI's check-ins show in its tensions
    assert spec["datasets"]["checkins"] == [{"period": "2026-09", "notes": note.line}]
    assert "checkins" not in trend_chart(result, "Previous period", notes=[other])["datasets"]


@pytest.fixture
def app_db(db: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KPI_DB", str(db))
    monkeypatch.delenv("KPI_CATALOG", raising=False)
    return db


def _team_page(team: str = "marketing") -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.query_params.clear()
    open_page(at, team)
    at.query_params.update({"period": "2026-10"})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_checkin_added_on_a_team_page_shows_as_text_on_its_tile_and_chart(app_db: Path) -> None:
    at = _team_page()
    at.text_input(key="checkin-author").set_value("Ana").run()
    at.selectbox(key="checkin-kpi").set_value("leads")
    at.text_input(key="checkin-note").set_value(HOSTILE)
    at.button[[b.label for b in at.button].index("Add check-in")].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    with store.connect(app_db) as conn:
        (stored,) = checkins.of_grain(conn, Grain.MONTH)
    assert (stored.kpi, stored.period, stored.author, stored.note) == ("leads", "2026-10", "Ana", HOSTILE)
    shown = [t.value for t in at.text]
    assert f"✎ {stored.line}" in shown  # on the Leads tile, as st.text (no Markdown, no HTML)
    assert f"Leads: {stored.line}" in shown  # in the period's list
    assert not any(HOSTILE in m.value for m in at.markdown)  # never rendered as Markdown
    assert at.text_input(key="checkin-note").value == ""  # stored, so the field is empty again
    marked = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart") if '"checkins"' in c.proto.spec]
    trends = [m for m in marked if m["height"] == 320]  # trend charts; the others are the tensions with Leads
    assert len(trends) == 1, "the Leads trend chart, of all trend charts, marks the check-in"
    assert any(layer.get("data") == {"name": "checkins"} for layer in trends[0]["layer"])
    assert len(marked) == 1 + sum(1 for c in at.get("vega_lite_chart") if "Leads (Marketing)" in c.proto.spec)


def test_a_refused_checkin_keeps_the_note_and_says_why(app_db: Path) -> None:
    at = _team_page()
    at.text_input(key="checkin-note").set_value("campaign X paused")
    at.button[[b.label for b in at.button].index("Add check-in")].click().run()
    assert len(at.error) == 1 and "author name is empty" in at.error[0].value
    assert at.text_input(key="checkin-note").value == "campaign X paused"
    with store.connect(app_db) as conn:
        assert checkins.of_grain(conn, Grain.MONTH) == ()


def test_every_scorecard_page_offers_the_report_and_each_chart_png_and_svg(app_db: Path) -> None:
    at = _team_page("sales")
    sidebar = [b.proto.label for b in at.sidebar.get("download_button")]
    assert sidebar == ["PDF", "HTML", "Markdown"]  # the meeting report
    labels = [b.proto.label for b in at.main.get("download_button")]
    charts_drawn = len(at.get("vega_lite_chart"))
    assert labels.count("PNG") == labels.count("SVG") == charts_drawn > 0
    presenting = AppTest.from_file(str(APP), default_timeout=60)
    presenting.query_params.update({"period": "2026-10", "present": "1"})
    presenting.run()
    assert not presenting.get("download_button"), "no controls in presentation mode"
