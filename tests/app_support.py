"""Driving the app headless with Streamlit's AppTest, as the page and Data page tests do."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Button, Selectbox

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard.py"
NONE = "— none —"


def open_page(at: AppTest, url_path: str) -> AppTest:
    """Select the page registered under `url_path` ("overview" is the default page) for the next run.

    `switch_page("pages/team.py")` always picks the first team, because the same file serves every
    team; the page hash of the wanted registration is looked up after a first run instead.
    """
    wanted = "" if url_path == "overview" else url_path
    hashes = [h for h, info in at._registered_pages.items() if info.get("url_pathname") == wanted]
    assert hashes, f"no page with url path {url_path!r}: {at._registered_pages}"
    at._page_hash = hashes[0]
    return at


def data_page() -> AppTest:
    """A fresh session on the Data page."""
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page("pages/data.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Data"], [e.value for e in at.error]
    return at


def upload(at: AppTest, name: str, data: bytes, mime: str = "text/csv") -> AppTest:
    at.file_uploader[0].set_value([(name, data, mime)]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def selectbox(at: AppTest, label: str) -> Selectbox:
    """The one selectbox of the upload with this label (a column like 'owner', or a value like 'Engaging')."""
    found = [s for s in at.selectbox if s.label == label and s.key and s.key.startswith(("map-", "value-", "table-"))]
    assert len(found) == 1, [s.label for s in at.selectbox]
    return found[0]


def choose(at: AppTest, label: str, value: str) -> AppTest:
    selectbox(at, label).set_value(value).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def import_button(at: AppTest) -> Button:
    return at.button(key="import")


def click_import(at: AppTest) -> AppTest:
    import_button(at).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at
