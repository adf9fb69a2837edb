"""Targets an editor changes: a new snapshot judged by the new target, earlier snapshots by theirs; who changed it
and when; refused changes change nothing; a viewer cannot; the command line and the Data page do it too."""
from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from app_support import open_page
from streamlit.testing.v1 import AppTest

from kpicore import actions, kept, store, targets
from kpicore.access import Actor, NotAllowed, Role
from kpicore.catalog import Catalog
from kpicore.cli import main
from kpicore.errors import BadParameter
from kpicore.files import read_file
from kpicore.ingest import Upload
from kpicore.mapping import propose
from kpicore.periods import Comparison, Grain, parse_period
from kpicore.scorecard import Status, build_scorecard

ROOT = Path(__file__).resolve().parent.parent
EDITOR = Actor("Ana", Role.EDITOR)
VIEWER = Actor("Vic", Role.VIEWER)
OCTOBER = parse_period("2026-10", Grain.MONTH)
# October's NPS answers: promoters 10 and 9, a passive 7, a detractor 3: NPS = 100 * (2 - 1) / 4 = 25
SURVEYS = ("customer_id,responded_at,score\nC1,2026-10-02 10:00:00,10\nC2,2026-10-09 10:00:00,9\n"
           "C3,2026-10-20 10:00:00,7\nC4,2026-10-31 10:00:00,3\n")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A database holding only October's four NPS answers (snapshot 2)."""
    path = tmp_path / "kpi.duckdb"
    export = tmp_path / "surveys.csv"
    export.write_text(SURVEYS, encoding="utf-8")
    with store.connect(path, sample=False) as conn:
        raw = read_file(export, workdir=tmp_path)
        actions.import_files(conn, EDITOR, [Upload(raw, propose(raw))], "Upload: surveys.csv")
    return path


def nps_in_october(conn, catalog: Catalog, snapshot: store.Snapshot):
    values = kept.values(conn, catalog, snapshot.id, snapshot.schema, Grain.MONTH, loaded=store.loaded(conn, snapshot))
    judged = targets.catalog_for(conn, catalog, snapshot.id)
    card = build_scorecard(judged, values, OCTOBER, Comparison.PREVIOUS)
    return next(r for r in card.outcomes if r.kpi.id == "nps")


def test_a_changed_target_judges_the_new_snapshot_and_leaves_the_earlier_one(db: Path, catalog: Catalog) -> None:
    with store.connect(db) as conn:
        before = store.latest_snapshot(conn)
        shipped = nps_in_october(conn, catalog, before)
        assert shipped.value == pytest.approx(25.0) and shipped.target == 35  # the shipped target
        assert shipped.status is Status.OFF_TRACK  # 25 / 35 = 71%, below the at-risk band of 85%

        made, change = actions.change_target(conn, EDITOR, catalog, "nps", 26.0, 0.9)  # 25 / 26 = 96%: at risk
        assert made.id == before.id + 1 and made.author == "Ana"
        assert made.note == "Target of Net promoter score set to 26"
        assert [(t.table, t.stored) for t in store.tables(conn, made).values()] == [
            (t.table, t.stored) for t in store.tables(conn, before).values()], "the same tables, not copied"
        after = nps_in_october(conn, catalog, made)
        assert (after.target, after.status) == (26.0, Status.AT_RISK)
        assert nps_in_october(conn, catalog, before).status is Status.OFF_TRACK, "an earlier snapshot keeps its"
        assert change.line(catalog).startswith("26 (off track below 90% of it), set by Ana on ")

        actions.change_target(conn, EDITOR, catalog, "nps", 20.0)  # 25 / 20: on track; the band stays 90%
        latest = store.latest_snapshot(conn)
        now = nps_in_october(conn, catalog, latest)
        assert (now.target, now.status) == (20.0, Status.ON_TRACK)
        assert targets.catalog_for(conn, catalog, latest.id).kpi("nps").target.at_risk == 0.85  # the catalog's

        back, _ = actions.change_target(conn, EDITOR, catalog, "nps", None)
        assert back.note == "Target of Net promoter score set back to the catalog's"
        assert nps_in_october(conn, catalog, back).target == 35
        assert targets.in_force(conn, back.id)["nps"].line(catalog).startswith("back to the catalog's target by Ana")


def test_an_import_after_a_change_keeps_the_changed_target(db: Path, catalog: Catalog, tmp_path: Path) -> None:
    with store.connect(db) as conn:
        actions.change_target(conn, EDITOR, catalog, "nps", 26.0)
        export = tmp_path / "more" / "surveys.csv"
        export.parent.mkdir()
        export.write_text(SURVEYS + "C5,2026-10-30 10:00:00,10\n", encoding="utf-8")  # NPS 100 * (3 - 1) / 5 = 40
        raw = read_file(export, workdir=tmp_path)
        imported = actions.import_files(conn, EDITOR, [Upload(raw, propose(raw))], "Upload: surveys.csv").snapshot
        result = nps_in_october(conn, catalog, imported)
        assert (result.value, result.target, result.status) == (pytest.approx(40.0), 26.0, Status.ON_TRACK)


def test_a_count_target_scales_with_the_period_and_the_catalogs_own_grain_targets_give_way(
        db: Path, catalog: Catalog) -> None:
    with store.connect(db) as conn:
        made, _ = actions.change_target(conn, EDITOR, catalog, "leads", 1000.0)
        leads = targets.catalog_for(conn, catalog, made.id).kpi("leads")
        assert (leads.target_for("month"), leads.target_for("quarter"), leads.target_for("year")) == (
            1000.0, 3000.0, 12000.0)
        assert leads.target.by_grain == ()


@pytest.mark.parametrize(("kpi", "value", "at_risk", "says"), [
    ("no_such_kpi", 1.0, None, "'no_such_kpi' is not a KPI with a target"),
    ("nps_answers", 1.0, None, "'nps_answers' is not a KPI with a target"),  # a building block
    ("nps", float("nan"), None, "must be a number"),
    ("nps", float("inf"), None, "must be a number"),
    ("nps", 40.0, 0.0, "a share of the target above 0 and at most 1"),
    ("nps", 40.0, 1.5, "a share of the target above 0 and at most 1"),
])
def test_a_change_that_cannot_be_made_says_why_and_changes_nothing(db: Path, catalog: Catalog, kpi: str,
                                                                   value: float, at_risk: float | None,
                                                                   says: str) -> None:
    with store.connect(db) as conn:
        before = [s.id for s, _ in store.snapshots(conn)]
        with pytest.raises(BadParameter, match=says):
            actions.change_target(conn, EDITOR, catalog, kpi, value, at_risk)
        assert [s.id for s, _ in store.snapshots(conn)] == before
        assert targets.in_force(conn, before[0]) == {}


def test_a_viewer_cannot_change_a_target(db: Path, catalog: Catalog) -> None:
    with store.connect(db) as conn:
        before = [s.id for s, _ in store.snapshots(conn)]
        with pytest.raises(NotAllowed, match="Changing a target needs the editor role; Vic may view only"):
            actions.change_target(conn, VIEWER, catalog, "nps", 40.0)
        assert [s.id for s, _ in store.snapshots(conn)] == before


def test_the_command_line_changes_shows_and_uses_a_target(db: Path) -> None:
    def run(*args: str) -> str:
        out = io.StringIO()
        with redirect_stdout(out):
            assert main(["--db", str(db), *args]) == 0
        return out.getvalue()

    assert run("target", "nps").startswith("Net promoter score: 35 (off track below 85% of it), the catalog's target")
    assert run("target", "nps", "26", "--at-risk", "0.9").startswith("Snapshot 3 created: Target of Net promoter")
    assert "26 (off track below 90% of it), set by " in run("target", "nps")
    shown = {row["id"]: row for row in json.loads(run("kpis", "--period", "2026-10", "--format", "json"))}
    assert (shown["nps"]["target"], shown["nps"]["status"]) == (26.0, "at risk")
    told = io.StringIO()
    with redirect_stderr(told):
        assert main(["--db", str(db), "target", "nps", "forty"]) != 0
    assert "'forty' is not a number: give the monthly target (0.25 for 25%) or 'catalog'." in told.getvalue()


def _data_page(db: Path, monkeypatch: pytest.MonkeyPatch, secrets: dict | None = None) -> AppTest:
    monkeypatch.setenv("KPI_DB", str(db))
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
    if secrets is not None:
        at.secrets["kpi"] = secrets
    at.run()
    open_page(at, "data").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_an_editor_sets_a_target_on_the_data_page(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _data_page(db, monkeypatch)  # nothing configured: editing is open
    at.selectbox(key="target-kpi").set_value("nps")
    at.number_input(key="target-value").set_value(26.0)
    at.number_input(key="target-band").set_value(90.0)
    next(b for b in at.get("form_submit_button") if b.label == "Set the target").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Target of Net promoter score set to 26, as snapshot 3." in s.value for s in at.success)
    table = next(d for d in at.dataframe if "Monthly target" in d.value.columns).value
    row = table[table["KPI"] == "Net promoter score"].iloc[0]
    assert row["Monthly target"] == "26" and row["Off track below"] == "90% of it"
    assert row["Set"].startswith("26 (off track below 90% of it), set by ")
    with store.connect(db) as conn:
        assert targets.in_force(conn, 3)["nps"].value == 26.0


def test_a_rate_target_is_typed_in_percent(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _data_page(db, monkeypatch)
    at.selectbox(key="target-kpi").set_value("csat")
    at.number_input(key="target-value").set_value(80.0)  # 80%
    next(b for b in at.get("form_submit_button") if b.label == "Set the target").click().run()
    with store.connect(db) as conn:
        assert targets.in_force(conn, 3)["csat"].value == pytest.approx(0.8)


def test_a_viewer_sees_the_targets_but_no_way_to_change_them(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kpicore.access import hash_password
    at = _data_page(db, monkeypatch, {"editor_password_hash": hash_password("a long editor password")})
    assert any("Monthly target" in d.value.columns for d in at.dataframe)
    assert not [b for b in at.get("form_submit_button") if b.label in ("Set the target",
                                                                        "Back to the catalog's target")]
    assert not [s for s in at.selectbox if s.key == "target-kpi"]
