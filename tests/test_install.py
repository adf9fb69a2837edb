"""A fresh machine: `pip install .` (not editable) into a new virtual environment starts the app on the sample data.

This is what a user's first command does; a file left out of the package (the sample CSVs, the catalog) or a
dependency installed here by hand but not declared fails it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from browser_support import TIMEOUT_MS, streamlit_server
from playwright.sync_api import Browser, expect

from kpicore.texts import SAMPLE_LINE

ROOT = Path(__file__).resolve().parent.parent


def test_a_fresh_non_editable_install_starts_the_app_on_the_sample_data(tmp_path: Path, chromium: Browser) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    # --no-compile: the same files, without compiling every module of every dependency ahead (a third of the time)
    installed = subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                "--no-compile", str(ROOT)], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]

    # the app's files, away from the source tree, so that the installed package is the one imported
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(ROOT / "dashboard.py", app)
    shutil.copy(ROOT / "serve.py", app)
    shutil.copytree(ROOT / "pages", app / "pages", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / ".streamlit", app / ".streamlit")
    env = {key: value for key, value in os.environ.items() if key not in ("KPI_DB", "KPI_CATALOG", "PYTHONPATH")}
    where = subprocess.run([python, "-c", "import kpicore; print(kpicore.__file__)"], cwd=app, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv)), where

    db = tmp_path / "kpi.duckdb"
    kpis = subprocess.run([str(venv / "bin" / "kpicore"), "--db", str(db), "kpis", "--format", "json"], cwd=app,
                          env=env, capture_output=True, text=True, timeout=300)
    assert kpis.returncode == 0, kpis.stderr
    assert SAMPLE_LINE in kpis.stderr
    records = {r["id"]: r for r in json.loads(kpis.stdout)}
    assert records["leads"]["period"] == "2026-10" and records["leads"]["value"] > 0  # the sample's latest month

    with streamlit_server(db, tmp_path / "streamlit.log", python=python, app=app) as url:
        page = chromium.new_page()
        page.goto(f"{url}/")
        page.get_by_test_id("stMetricValue").first.wait_for(timeout=TIMEOUT_MS)
        expect(page.get_by_text(SAMPLE_LINE.split(":")[0], exact=False).first).to_be_visible()
        expect(page.get_by_test_id("stException")).to_have_count(0)
        page.close()
