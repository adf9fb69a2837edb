"""Hostile text through every input, seen in Chromium: a file name, column names and cells uploaded on the Data
page, catalog text, a check-in note, a saved mapping's name, an editor's name and URL parameters. Each string is
made to run a script, fetch an image, become a link or a formula, or drop a table. On every page none of them runs,
fetches anything or links anywhere, the text reads as written, and the database's tables are only the ones an
import makes."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote, urlparse

import duckdb
import pytest
import yaml
from browser_support import streamlit_server
from playwright.sync_api import Browser, Page, expect

from kpicore import actions, store
from kpicore.access import Actor, Role
from kpicore.catalog import DEFAULT_CATALOG, load_catalog
from kpicore.errors import CatalogError
from kpicore.files import read_file
from kpicore.mapping import propose, to_saved
from kpicore.periods import parse_period

# (what it tries, the string); every one that can reach a page is fed through every input below
HOSTILE = [
    ("script", "<script>window.__pwned = 'script'</script>"),
    ("html event", "<img src=x onerror=\"window.__pwned = 'img'\">"),
    ("markdown link", "[Session expired - log in again](http://evil.example/login)"),
    ("markdown image", "![t](http://evil.example/track.png)"),
    ("javascript link", "[open](javascript:window.__pwned='link')"),
    ("bare address", "www.evil.example/a http://evil.example/b mail@evil.example"),
    ("streamlit directive", ":red[**alarm**] :material/warning: $x^2$"),
    ("sql", "x'); DROP TABLE snapshots; --"),
    ("formula", "+cmd|' /C calc'!A0 =SUM(A1:A9)"),
    ("path", "../../../etc/passwd"),
]
ALL = " ".join(text for _, text in HOSTILE)
# links and media that leave the page (a heading's own '#anchor' stays), and elements carrying event handlers
ESCAPES = """() => {
  const found = [];
  for (const a of document.querySelectorAll('a[href]')) {
    if (a.getAttribute('href').startsWith('#')) continue;
    const to = new URL(a.href, location.href);
    if (to.protocol !== location.protocol || to.hostname !== location.hostname) found.push(a.outerHTML);
  }
  for (const e of document.querySelectorAll('img[src], iframe, object, embed, video, audio, source')) {
    const to = new URL(e.getAttribute('src') || e.getAttribute('data') || '', location.href);
    if (!['data:', 'blob:'].includes(to.protocol) && to.hostname !== location.hostname) found.push(e.outerHTML);
  }
  for (const e of document.querySelectorAll('[onerror], [onload], [onclick]')) found.push(e.outerHTML);
  return found.map(html => html.slice(0, 300));
}"""
SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def hostile_catalog(folder: Path, words: dict[str, str]) -> Path:
    """The shipped catalog with the NPS's and leads' label or description and a team's description replaced."""
    data = yaml.safe_load(DEFAULT_CATALOG.read_text(encoding="utf-8"))
    for kpi in data["measures"] + data["kpis"]:
        if kpi["id"] == "nps":
            kpi["label"], kpi["description"] = words["label"], words["description"]
        if kpi["id"] == "leads":
            kpi["description"] = words["description"]
    data["teams"][0]["description"] = words["description"]
    path = folder / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# what the catalog may hold (the pages show it as written) and what it may not (it would become a link or image)
SHOWN = [text for what, text in HOSTILE if what not in ("markdown link", "markdown image", "javascript link",
                                                          "bare address")]
LINKING = [text for what, text in HOSTILE if text not in SHOWN]


@pytest.mark.parametrize("text", LINKING)
def test_catalog_text_that_would_become_a_link_is_refused_naming_the_field(tmp_path: Path, text: str) -> None:
    path = hostile_catalog(tmp_path, {"label": "Net promoter score", "description": "Promoters. " + text})
    with pytest.raises(CatalogError) as refused:
        load_catalog(path)
    fields = {(issue.kpi, issue.field) for issue in refused.value.issues}
    assert {("nps", "description"), ("leads", "description"), ("team marketing", "description")} <= fields, fields
    assert all("would show as a link or an image" in str(issue) for issue in refused.value.issues)


def hostile_export() -> tuple[str, bytes]:
    """A leads export named like a link and an HTML tag, with hostile column names and one lead per hostile string
    as its channel and campaign."""
    header = ["lead_id", "created_at", "channel", "campaign", HOSTILE[1][1], HOSTILE[2][1]]
    lines = [",".join('"' + h.replace('"', '""') + '"' for h in header)]
    for number, (_, text) in enumerate(HOSTILE):
        cell = '"' + text.replace('"', '""') + '"'
        lines.append(f"H{number},2026-10-{number + 2:02d} 10:00:00,{cell},{cell},{cell},{cell}")
    return "[Session expired - log in again](http://evil.example) <img src=x onerror=alert(1)>.csv", (
        "\n".join(lines) + "\n").encode("utf-8")


def schema_names(db: Path) -> set[tuple[str, str]]:
    conn = duckdb.connect(str(db), read_only=True)
    try:
        return set(conn.execute("SELECT schema_name, table_name FROM duckdb_tables() UNION ALL "
                                "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal").fetchall())
    finally:
        conn.close()


def watched(page: Page, outside: list[str], dialogs: list[str]) -> None:
    """Record every request to a host other than the app's, and every dialog a script opens."""
    def route(request_route) -> None:
        host = urlparse(request_route.request.url).hostname
        if host not in ("127.0.0.1", "localhost"):
            outside.append(request_route.request.url)
            request_route.abort()
        else:
            request_route.continue_()
    page.route("**/*", route)
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))


def settled(page: Page) -> None:
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()
    page.wait_for_timeout(300)


def nothing_ran(page: Page, where: str) -> None:
    assert page.evaluate("window.__pwned") is None, f"{where}: a hostile script ran"
    assert page.evaluate(ESCAPES) == [], f"{where}: hostile text became a link, a fetch or a handler"
    shown = page.locator("body").inner_text()
    assert "Traceback" not in shown and "/tmp/" not in shown, f"{where}: a traceback or server path is shown"


@pytest.fixture
def prepared(tmp_path: Path, sample_db: Path) -> tuple[Path, Path, tuple[str, bytes]]:
    """A sample database with a hostile check-in note and a mapping saved under a hostile name by an editor with
    a hostile name, for the export the test uploads; and the hostile catalog."""
    db = tmp_path / "kpi.duckdb"
    db.write_bytes(sample_db.read_bytes())
    catalog_path = hostile_catalog(tmp_path, {"label": "NPS " + SHOWN[0], "description": " ".join(SHOWN)})
    load_catalog(catalog_path)  # a valid catalog: these hostile words are only words
    name, data = hostile_export()
    staged = tmp_path / "export.csv"
    staged.write_bytes(data)
    raw = read_file(staged, workdir=tmp_path)
    editor = Actor(HOSTILE[1][1][:40] + HOSTILE[2][1][:38], Role.EDITOR)  # 80 characters at most
    with store.connect(db) as conn:
        actions.save_mapping(conn, editor, HOSTILE[3][1] + " " + HOSTILE[0][1], to_saved(propose(raw), raw))
        actions.add_checkin(conn, editor, load_catalog(catalog_path), "leads", parse_period("2026-10"), ALL[:500])
    return db, catalog_path, (name, data)


def test_hostile_text_through_every_input_is_shown_as_text_and_changes_no_table(chromium: Browser, tmp_path: Path,
                                                                                prepared) -> None:
    db, catalog_path, (name, data) = prepared
    before = schema_names(db)
    outside: list[str] = []
    dialogs: list[str] = []
    context = chromium.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    watched(page, outside, dialogs)
    with streamlit_server(db, tmp_path / "server.log", catalog=catalog_path) as url:
        # the upload: a hostile file name, hostile column names, a saved mapping with a hostile name and author
        page.goto(f"{url}/data")
        page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
            files=[{"name": name, "mimeType": "text/csv", "buffer": data}])
        # as written (a web address gets an invisible word joiner after 'http:', so that it is not linked)
        expect(page.get_by_text(re.compile(r"\[Session expired - log in again\]\(http:\u2060?//evil\.example\) "
                                           r"<img src=x onerror=alert\(1\)>\.csv")).first).to_be_visible()
        expect(page.get_by_text("saved by <img src=x").first).to_be_visible()  # the mapping's author, as text
        settled(page)
        nothing_ran(page, "Data page with the upload")
        page.get_by_text("Keep the sample tables beside your files").click()
        page.get_by_role("button", name="Import 1 file(s)").click()
        expect(page.get_by_text("These files are imported, as snapshot 2.")).to_be_visible()
        settled(page)
        nothing_ran(page, "Data page after the import")

        # every page, once as shared and once with hostile URL parameters
        hostile_params = "&".join(f"{key}={quote(text)}" for key, text in (
            ("snapshot", HOSTILE[2][1]), ("channel", HOSTILE[3][1]), ("period", HOSTILE[0][1]),
            ("grain", HOSTILE[4][1]), ("comparison", HOSTILE[1][1]), ("present", HOSTILE[6][1])))
        # (every page reads the URL parameters through the same code: four kinds of page try the hostile ones)
        for path in ("", "marketing", "sales", "service", "journey", "glossary", "data"):
            for params in ("period=2026-10", hostile_params)[:2 if path in ("", "sales", "journey", "data") else 1]:
                page.goto(f"{url}/{path}?{params}")
                settled(page)
                nothing_ran(page, f"/{path}?{params[:40]}")
        # the hostile channels are filter options, shown as written
        page.goto(f"{url}/?period=2026-10")
        settled(page)
        page.get_by_role("combobox", name="Channel").click()
        expect(page.get_by_role("option", name=HOSTILE[2][1], exact=True)).to_be_visible()
        page.get_by_role("option", name=HOSTILE[3][1], exact=True).click()
        settled(page)
        nothing_ran(page, "Overview filtered to a hostile channel")
        # the catalog's words and the check-in note read as written
        page.goto(f"{url}/glossary")
        settled(page)
        expect(page.get_by_text("NPS " + SHOWN[0]).first).to_be_visible()
        page.goto(f"{url}/marketing?period=2026-10")
        settled(page)
        expect(page.get_by_text(HOSTILE[0][1]).first).to_be_attached()
        nothing_ran(page, "Marketing with the check-in")
    context.close()

    assert outside == [], f"requests left the app: {outside[:5]}"
    assert dialogs == [], f"scripts opened dialogs: {dialogs}"
    after = schema_names(db)
    assert before <= after, "no table was dropped"
    added = after - before
    assert added and all(re.fullmatch(r"snapshot_2", schema) or SAFE_NAME.match(schema) for schema, _ in added)
    assert all(SAFE_NAME.match(table) for _, table in added), sorted(added)
    with store.connect(db) as conn:
        assert [s.id for s, _ in store.snapshots(conn)] == [2, 1]
        assert conn.execute(f"SELECT COUNT(*) FROM {store.latest_snapshot(conn).schema}.leads "
                            "WHERE lead_id LIKE 'H%'").fetchone() == (len(HOSTILE),)
