"""Streamlit's OIDC login end to end in Chromium, against a real OIDC provider on loopback (oidc-provider-mock):
viewing behind the login, the editor role from the group claim, a viewer without the Data page's controls."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import httpx
import oidc_provider_mock
import pytest
from browser_support import TIMEOUT_MS, free_port, streamlit_server
from playwright.sync_api import Browser, Page, expect

from kpicore import store

SECRETS = """[auth]
redirect_uri = "http://localhost:{port}/oauth2callback"
cookie_secret = "a cookie secret for the test, long enough"
client_id = "kpi-app"
client_secret = "kpi-secret"
server_metadata_url = "{issuer}/.well-known/openid-configuration"

[kpi]
editor_group = "kpi-editors"
viewing = "login"
"""


@pytest.fixture
def provider() -> str:
    with oidc_provider_mock.run_server_in_thread() as server:
        issuer = f"http://localhost:{server.server_port}"
        for email, name, groups in (("ana@example.com", "Ana", ["kpi-editors", "staff"]),
                                    ("bo@example.com", "Bo", ["staff"])):
            answer = httpx.put(f"{issuer}/users/{quote(email)}", json={"email": email, "name": name, "groups": groups})
            assert answer.status_code == 204
        yield issuer


def _log_in(page: Page, app: str, who: str) -> None:
    page.goto(f"{app}/")
    page.get_by_role("button", name="Log in").click()
    page.locator("input[name=sub]").fill(who)
    page.get_by_role("button", name="Authorize").click()
    page.get_by_test_id("stMetricValue").first.wait_for(timeout=TIMEOUT_MS)


def test_viewing_needs_the_login_and_the_group_claim_makes_an_editor(provider: str, chromium: Browser,
                                                                     tmp_path: Path) -> None:
    db = tmp_path / "kpi.duckdb"
    store.connect(db).close()
    port = free_port()
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(SECRETS.format(port=port, issuer=provider), encoding="utf-8")
    with streamlit_server(db, tmp_path / "streamlit.log", port=port,
                          options=("--secrets.files", str(secrets))) as url:
        app = url.replace("127.0.0.1", "localhost")  # the address the provider sends the browser back to
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        try:
            page.goto(f"{app}/sales")
            expect(page.get_by_text("Log in to see the scorecards.")).to_be_visible()
            expect(page.get_by_test_id("stMetricValue")).to_have_count(0)  # nothing shown before the login

            _log_in(page, app, "ana@example.com")
            sidebar = page.get_by_test_id("stSidebar")
            expect(sidebar.get_by_text("Signed in as Ana (editor).")).to_be_visible()
            page.goto(f"{app}/data")
            expect(page.get_by_test_id("stFileUploader")).to_have_count(1)

            sidebar.get_by_role("button", name="Log out").click()
            page.wait_for_url(re.compile(r"^(?!" + re.escape(app) + r"/data)"))  # to the provider's end of session
            page.goto(f"{app}/")
            expect(page.get_by_text("Log in to see the scorecards.")).to_be_visible()
            _log_in(page, app, "bo@example.com")
            expect(sidebar.get_by_text("Signed in as Bo (viewer).")).to_be_visible()
            page.goto(f"{app}/data")
            page.get_by_role("heading", name="Snapshots").wait_for()
            expect(page.get_by_test_id("stFileUploader")).to_have_count(0)
            expect(page.get_by_text("need the editor role")).to_be_visible()
        finally:
            context.close()
