"""Roles: viewers view, editors change; the one action layer refuses a viewer's write from the app and the command
line alike, and every write records who made it."""
from __future__ import annotations

import contextlib
import io
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from app_support import open_page
from streamlit.testing.v1 import AppTest

from kpicore import access, actions, store
from kpicore.access import Actor, NotAllowed, Role, Settings
from kpicore.catalog import Catalog
from kpicore.cli import main
from kpicore.errors import BadParameter
from kpicore.files import read_file
from kpicore.ingest import Upload
from kpicore.mapping import propose, to_saved
from kpicore.periods import parse_period

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard.py"
PASSWORD = "correct horse battery"
VIEWER = Actor("Vic", Role.VIEWER)
EDITOR = Actor("Ana", Role.EDITOR)


@pytest.fixture(scope="module")
def password_hash() -> str:
    return access.hash_password(PASSWORD)


def test_the_editor_password_is_kept_as_a_salted_argon2_hash(password_hash: str) -> None:
    assert password_hash.startswith("$argon2id$") and PASSWORD not in password_hash
    assert access.hash_password(PASSWORD) != password_hash  # a new salt each time
    settings = Settings.from_mapping({"editor_password_hash": password_hash})
    assert settings.password_unlocks(PASSWORD)
    assert not settings.password_unlocks("correct horse battery!") and not settings.password_unlocks("")
    assert not settings.open_editing
    with pytest.raises(BadParameter, match="at least 10 characters"):
        access.hash_password("short")


@pytest.mark.parametrize(("given", "says"), [
    ({"editor_pasword_hash": "x"}, "unknown setting"),
    ({"viewing": "everyone"}, "'everyone' is not one of open, login"),
    ({"editor_password_hash": "plain text"}, "not an argon2 hash"),
    ({"editor_emails": "ana@example.com"}, "give a list"),
])
def test_settings_that_cannot_be_used_are_named(given: dict, says: str) -> None:
    with pytest.raises(BadParameter, match=says):
        Settings.from_mapping(given)


def test_the_editor_role_comes_from_the_email_list_or_the_group_claim() -> None:
    settings = Settings.from_mapping({"editor_emails": ["Ana@Example.com"], "editor_group": "kpi-editors",
                                      "group_claim": "roles"})
    assert settings.role_of({"email": "ana@example.com"}) is Role.EDITOR
    assert settings.role_of({"email": "bo@example.com", "roles": ["kpi-editors", "staff"]}) is Role.EDITOR
    assert settings.role_of({"email": "bo@example.com", "roles": "kpi-editors"}) is Role.EDITOR
    assert settings.role_of({"email": "bo@example.com", "roles": ["staff"]}) is Role.VIEWER
    assert settings.role_of({"email": "bo@example.com", "groups": ["kpi-editors"]}) is Role.VIEWER  # other claim
    assert Settings().open_editing and Settings().role_of({"email": "x@example.com"}) is Role.EDITOR


def _state(conn: duckdb.DuckDBPyConnection) -> tuple:
    return (conn.execute("SELECT * FROM snapshots ORDER BY id").fetchall(),
            conn.execute("SELECT * FROM mappings ORDER BY name").fetchall(),
            conn.execute("SELECT * FROM checkins ORDER BY id").fetchall())


def _leads(folder: Path) -> Upload:
    """A one-row leads export, recognised."""
    export = folder / "leads.csv"
    export.write_text("lead_id,created_at\nL1,2026-01-01 10:00:00\n", encoding="utf-8")
    raw = read_file(export, workdir=folder)
    return Upload(raw, propose(raw, "leads"))


def test_every_action_refuses_a_viewer_and_changes_nothing(tmp_path: Path, catalog: Catalog) -> None:
    upload = _leads(tmp_path)
    raw = upload.raw
    with store.connect(tmp_path / "kpi.duckdb") as conn:
        before = _state(conn)
        for attempt in (lambda: actions.import_files(conn, VIEWER, [upload], "Upload"),
                        lambda: actions.drop_tables(conn, VIEWER, ["leads"]),
                        lambda: actions.start_empty(conn, VIEWER),
                        lambda: actions.load_sample(conn, VIEWER),
                        lambda: actions.restore(conn, VIEWER, 1),
                        lambda: actions.save_mapping(conn, VIEWER, "mine", to_saved(upload.plan, raw)),
                        lambda: actions.add_checkin(conn, VIEWER, catalog, "leads", parse_period("2026-10"), "x")):
            with pytest.raises(NotAllowed, match="needs the editor role; Vic may view only"):
                attempt()
        assert _state(conn) == before


def test_every_write_records_who_made_it(tmp_path: Path, catalog: Catalog) -> None:
    upload = _leads(tmp_path)
    raw = upload.raw
    with store.connect(tmp_path / "kpi.duckdb") as conn:
        imported = actions.import_files(conn, EDITOR, [upload], "Upload: leads.csv").snapshot
        dropped = actions.drop_tables(conn, Actor("Bo", Role.EDITOR), ["tickets"])
        restored = actions.restore(conn, EDITOR, 1)
        actions.save_mapping(conn, EDITOR, "Salesforce", to_saved(upload.plan, raw))
        note = actions.add_checkin(conn, EDITOR, catalog, "leads", parse_period("2026-10"), "campaign X paused",
                                   name="Mallory")  # a signed-in editor's own name, not a typed one
        assert [(s.id, s.author) for s in (imported, dropped, restored)] == [(2, "Ana"), (3, "Bo"), (4, "Ana")]
        assert [s.author for s, _ in store.snapshots(conn)] == ["Ana", "Bo", "Ana", None]  # newest first
        assert store.latest_snapshot(conn).author == "Ana"
        assert note.author == "Ana"
        assert store.mapping_origin(conn, "Salesforce") == f"'Salesforce' saved by Ana on {datetime.now():%Y-%m-%d}"
        anyone = Actor("anyone", Role.EDITOR, named=False)  # open editing: the note is signed by hand
        assert actions.add_checkin(conn, anyone, catalog, "leads", parse_period("2026-10"), "x", "Cy").author == "Cy"
        with pytest.raises(BadParameter, match="author name is empty"):
            actions.add_checkin(conn, anyone, catalog, "leads", parse_period("2026-10"), "x")


def test_the_command_line_is_an_editor_and_signs_its_changes(tmp_path: Path) -> None:
    db = tmp_path / "kpi.duckdb"
    store.connect(db).close()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--db", str(db), "drop", "surveys"]) == 0
        assert main(["--db", str(db), "snapshots"]) == 0
    me = access.command_line().name
    assert me.endswith(" (command line)")
    assert f"Emptied surveys  by {me}" in out.getvalue()


def _app(password_hash: str | None, page: str = "data") -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    if password_hash:
        at.secrets["kpi"] = {"editor_password_hash": password_hash}
    at.run()
    if page == "data":
        at.switch_page("pages/data.py").run()
    else:
        open_page(at, page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_viewer_sees_no_upload_empty_restore_or_checkin_control(app_db: Path, password_hash: str) -> None:
    with store.connect(app_db) as conn:
        actions.drop_tables(conn, EDITOR, ["surveys"])  # snapshot 2, so that snapshot 1 could be restored
    at = _app(password_hash)
    assert not at.get("file_uploader")
    assert not [b for b in at.button if b.label.startswith(("Restore snapshot", "Empty it", "Start with empty"))]
    assert any("need the editor role" in i.value for i in at.info)
    assert [b.label for b in at.sidebar.get("form_submit_button")] == ["Unlock editing"]
    team = _app(password_hash, "sales")
    assert not [b for b in team.get("form_submit_button") if b.label == "Add check-in"]
    assert any("needs the editor role" in c.value for c in team.caption)


def test_the_editor_password_unlocks_editing_for_the_session_and_signs_the_changes(app_db: Path,
                                                                                   password_hash: str) -> None:
    at = _app(password_hash)
    at.text_input(key="unlock-name").set_value("Ana")
    at.text_input(key="unlock-password").set_value("wrong password")
    at.sidebar.get("form_submit_button")[0].click().run()
    assert [e.value for e in at.sidebar.error] == ["That is not the editor password."]
    assert not at.get("file_uploader")
    at.text_input(key="unlock-password").set_value(PASSWORD)
    at.sidebar.get("form_submit_button")[0].click().run()
    assert at.get("file_uploader"), "unlocked: the uploader is there"
    assert any(c.value == "Editing as Ana." for c in at.sidebar.caption)
    at.button(key="start-empty").click().run()
    with store.connect(app_db) as conn:
        assert store.latest_snapshot(conn).author == "Ana"


def test_without_settings_editing_is_open_and_says_so(app_db: Path) -> None:
    at = _app(None)
    assert at.get("file_uploader")
    assert any("Anyone who reaches this app can edit" in c.value for c in at.sidebar.caption)
