"""Shared by the browser tests: a `streamlit run` server on a free port and Debian's headless Chromium."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 60_000
# expect() has a default of its own (5 s), which a page drawing on a loaded machine can exceed
expect.set_options(timeout=TIMEOUT_MS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppDidNotStart(RuntimeError):
    """`streamlit run` exited or did not answer in time."""


@contextmanager
def running_app(script: str | Path, db: Path, log: Path, python: str = sys.executable, app: Path = ROOT,
                port: int | None = None, options: tuple[str, ...] = (),
                catalog: Path | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`streamlit run script` (from `app`, with `python`, on `db`, with the shipped catalog or `catalog`) on a free
    port: its base URL and process while it runs (the benchmark reads its memory); stopped afterwards.
    AppDidNotStart if it does not come up."""
    port = port or free_port()
    env = {**os.environ, "KPI_DB": str(db)}
    env.pop("KPI_CATALOG", None)
    if catalog is not None:
        env["KPI_CATALOG"] = str(catalog)
    # the app through its launcher (serve.py runs dashboard.py), any other script with `streamlit run`
    start = [python, "serve.py"] if Path(script).name == "dashboard.py" else [python, "-m", "streamlit", "run",
                                                                               str(script)]
    command = [*start, "--server.headless", "true", "--server.port", str(port),
               "--browser.gatherUsageStats", "false", *options]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=app, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
                break
            except OSError as error:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AppDidNotStart(f"streamlit did not come up on port {port}:\n"
                                         f"{log.read_text(errors='replace')}") from error
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def streamlit_server(db: Path, log: Path, python: str = sys.executable, app: Path = ROOT, port: int | None = None,
                     options: tuple[str, ...] = (), catalog: Path | None = None) -> Iterator[str]:
    """The app as the README starts it (`python serve.py`, from `app`, with `python`) on a free port, its base URL
    while it runs; stopped afterwards."""
    try:
        with running_app("dashboard.py", db, log, python, app, port, options, catalog) as (url, _):
            yield url
    except AppDidNotStart as error:
        pytest.fail(str(error))


@contextmanager
def warmed_server(browser: Browser, db: Path, log: Path, ready: str = "stMetricValue") -> Iterator[str]:
    """A server already past its first page view (the very first deep link gets Streamlit's notice); `ready` is
    the test id of what the Overview shows once drawn."""
    with streamlit_server(db, log) as url:
        page = browser.new_page()
        page.goto(f"{url}/")
        page.get_by_test_id(ready).first.wait_for(timeout=TIMEOUT_MS)
        page.close()
        yield url
