"""The benchmark's browser part: a period change in Debian's Chromium, from the choice to the new value shown, on
the real app and on a replay page that draws the same elements from constants, and the server's peak memory."""
from __future__ import annotations

import re
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from browser_support import CHROMIUM, CHROMIUM_ARGS, running_app  # noqa: E402

TIMEOUT_MS = 300_000  # a first view at 10M leads takes tens of seconds


@contextmanager
def server(script: Path, db: Path, log: Path) -> Iterator[tuple[str, int]]:
    """`streamlit run script` on a free port (the browser tests' launcher): its URL and process id while it runs."""
    with running_app(script, db, log) as (url, proc):
        yield url, proc.pid


def peak_memory_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def settled(page: Page) -> None:
    """Wait until the app's script run is over (Streamlit marks its root while a run goes on)."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=TIMEOUT_MS)


def choose_period(page: Page, label: str, shown: re.Pattern[str]) -> float:
    """Pick `label` in the sidebar's Period select box; seconds until `shown` is on screen and the run is over."""
    box = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(has_text="Period")
    started = time.perf_counter()
    box.click()
    page.keyboard.type(label)
    page.keyboard.press("Enter")
    page.get_by_text(shown).first.wait_for(timeout=TIMEOUT_MS)
    settled(page)
    return time.perf_counter() - started


def period_changes(db: Path, folder: Path, labels: list[str], replay: Path) -> dict[str, Any]:
    """Median seconds of a period change on the real Overview and on its replay page, and the app's peak memory."""
    found: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            with server(ROOT / "dashboard.py", db, folder / "server.log") as (url, pid):
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"{url}/?period={labels[0]}", timeout=TIMEOUT_MS)
                page.get_by_test_id("stMetricValue").first.wait_for(timeout=TIMEOUT_MS)
                settled(page)
                times = [choose_period(page, label, re.compile(rf"^\w+ {re.escape(label)} · compared"))
                         for label in labels[1:]]
                found["app"] = {"wall": statistics.median(times), "walls": times}
                found["peak_memory_mb"] = peak_memory_mb(pid)
            with server(replay, db, folder / "replay.log") as (url, _):
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(url, timeout=TIMEOUT_MS)
                page.get_by_test_id("stMetricValue").first.wait_for(timeout=TIMEOUT_MS)
                settled(page)
                times = [choose_period(page, label, re.compile(rf"^Replayed for {re.escape(label)}$"))
                         for label in labels[1:]]
                found["replay"] = {"wall": statistics.median(times), "walls": times}
        finally:
            browser.close()
    return found
