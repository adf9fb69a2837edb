"""Many people at once: `python benchmarks/load.py` (loopback only, bounded in sessions and time).

One app server (`serve.py`, the README's start command) on a copy of the sample database, with an editor password.
For `--seconds` (120 by default) it is used by

- `--viewers` sessions (23) through Streamlit's own browserless protocol, the agent API (`POST
  /_stcore/agent/interact`, on for this run only): each opens a fresh link to a random page and period, reads the
  finished page, waits a moment as a person would, and opens the next. A request is answered once the page's run
  is over, so its time is the server's time to a rendered page, and the clients cost this machine almost nothing;
- `--editors` people (2) in Debian's headless Chromium, who unlock editing with the password and upload a
  helpdesk export on the Data page again and again; each import commits a new snapshot while the viewers read.

It prints sessions held, page loads, errors (goal 0), p50/p95 seconds to a rendered scorecard (Overview and team
pages) and to any page, the server's peak memory and CPU seconds, the client's CPU seconds, the imports, and the
snapshot check: every page a viewer saw names one committed snapshot, and every page of the same snapshot, page
and period shows the same tile values (a page mixing two snapshots would differ from its group). It exits 1 on
any error or mix. `--out` writes the raw runs as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import httpx
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from browser_support import CHROMIUM, CHROMIUM_ARGS, running_app  # noqa: E402

from kpicore import access, store  # noqa: E402
from kpicore.texts import KEEP_SAMPLE  # noqa: E402

PASSWORD = "load-test editor password"
PAGES = ["", "marketing", "sales", "service", "journey", "glossary"]  # url paths; "" is the Overview
SCORECARDS = {"", "marketing", "sales", "service"}
PERIODS = ["2026-08", "2026-09", "2026-10"]
MAX_SESSIONS = 60
MAX_SECONDS = 900
TIMEOUT_S = 120


@dataclass
class Load:
    """One page a viewer opened."""

    viewer: int
    page: str
    period: str
    started: float  # seconds since the run began
    seconds: float
    snapshot: str | None = None
    tiles: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None


@dataclass
class Upload:
    """One import an editor made."""

    editor: int
    started: float
    seconds: float
    snapshot: int | None = None
    error: str | None = None


def _walk(node: dict) -> list[dict]:
    found = [node]
    for child in node.get("children", ()):
        found.extend(_walk(child))
    return found


def read_page(answer: dict) -> tuple[str | None, list[tuple[str, str]], str | None]:
    """The snapshot a finished page names, its tiles (label, value) in order, and what went wrong, if anything."""
    nodes = _walk(answer.get("tree", {}))
    tiles, tiles_of = [], set()
    for node in nodes:
        if node.get("key", "").startswith("tile-"):
            for inner in _walk(node):
                if inner.get("type") == "metric":
                    tiles.append((inner["props"]["label"], inner["props"]["value"]))
                    tiles_of.add(id(inner))
    failed = [n for n in nodes if n.get("type") in ("exception", "error")]
    error = None
    if answer.get("status") != "ready":
        error = f"status {answer.get('status')}"
    elif failed:
        props = failed[0].get("props", {})
        error = f"{failed[0]['type']}: {props.get('message') or props.get('body')}"
    snapshot = (answer.get("query_params", {}).get("snapshot") or [None])[0]
    return snapshot, tiles, error


def viewer(number: int, base: str, began: float, until: float, think: tuple[float, float],
           loads: list[Load], lock: threading.Lock) -> None:
    """One person reading the scorecards: a fresh link to a page and period, read, a pause, the next."""
    chance = random.Random(number)
    session = None
    with httpx.Client(base_url=base, timeout=TIMEOUT_S) as client:
        while time.monotonic() < until:
            page, period = chance.choice(PAGES), chance.choice(PERIODS)
            request: dict = {"page": page, "query_params": {"period": [period]}}
            if session is not None:
                request["session_id"] = session
            started = time.monotonic()
            load = Load(number, page, period, started - began, 0.0)
            try:
                response = client.post("/_stcore/agent/interact", json=request)
                load.seconds = time.monotonic() - started
                answer = response.json()
                if response.status_code != 200:
                    load.error = f"HTTP {response.status_code}: {answer.get('error', answer)}"
                else:
                    session = answer["session_id"]
                    load.snapshot, load.tiles, load.error = read_page(answer)
            except (httpx.HTTPError, ValueError, KeyError) as error:
                load.seconds, load.error = time.monotonic() - started, f"{type(error).__name__}: {error}"
            with lock:
                loads.append(load)
            time.sleep(chance.uniform(*think))


def solo(base: str, rounds: int = 3) -> list[float]:
    """The reference measured in the same run: one viewer alone on the server, each scorecard page `rounds`
    times, as fresh links (seconds per page)."""
    times = []
    with httpx.Client(base_url=base, timeout=TIMEOUT_S) as client:
        session = client.post("/_stcore/agent/interact", json={}).json()["session_id"]
        for _ in range(rounds):
            for page in sorted(SCORECARDS):
                started = time.monotonic()
                answer = client.post("/_stcore/agent/interact", json={
                    "session_id": session, "page": page, "query_params": {"period": [PERIODS[-1]]}}).json()
                times.append(time.monotonic() - started)
                if read_page(answer)[2] is not None:
                    raise SystemExit(f"the page /{page} fails with nobody else on the server: {read_page(answer)[2]}")
    return times


def editor(number: int, base: str, export: tuple[Path, Path], began: float, until: float, pause: float,
           uploads: list[Upload], lock: threading.Lock) -> None:
    """One editor in Chromium: unlock editing, then upload the export on the Data page until the time is up (a
    failed upload leaves a screenshot beside the exports)."""
    shots = export[0].parent.parent
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_S * 1000)
        expect.set_options(timeout=TIMEOUT_S * 1000)
        page.goto(f"{base}/data")
        page.get_by_label("Your name").fill(f"Editor {number}")
        page.get_by_label("Editor password").fill(PASSWORD)
        page.get_by_role("button", name="Unlock editing").click()
        expect(page.get_by_text(f"Editing as Editor {number}.")).to_be_visible()
        turn = 0
        while turn == 0 or time.monotonic() < until:  # at least one upload, however long unlocking took
            started, turn = time.monotonic(), turn + 1
            upload = Upload(number, started - began, 0.0)
            try:
                page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(export[turn % 2])
                button = page.get_by_role("button", name="Import 1 file(s)")
                button.wait_for()
                keep = page.get_by_text(KEEP_SAMPLE)
                if keep.count():  # the first import beside the sample keeps it (the viewers read every page)
                    keep.click()
                button.click()
                done = page.get_by_text("These files are imported, as snapshot")
                expect(done).to_be_visible()
                upload.snapshot = int(done.inner_text().rstrip(".").rsplit(" ", 1)[-1])
            except Exception as error:  # noqa: BLE001 - whatever the browser met is this upload's error
                said = page.locator("[data-testid=stAlert], [data-testid=stException]").all_inner_texts()
                shown = " | ".join(said)[:500]
                page.screenshot(path=str(shots / f"editor-{number}-upload-{turn}.png"), full_page=True)
                upload.error = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}; the page said: {shown}"
            upload.seconds = time.monotonic() - started
            with lock:
                uploads.append(upload)
            # the next upload is a new file in the same session (reloading would lock editing again)
            remove = page.get_by_test_id("stFileChipDeleteBtn")
            while remove.count():
                remove.first.click()
                page.wait_for_timeout(300)
            time.sleep(pause)
        browser.close()


def exports(workdir: Path, editors: int) -> list[tuple[Path, Path]]:
    """Two helpdesk exports per editor, the sample's tickets with a different share left out by each editor, so
    every import changes the numbers. Two copies, used in turn: Chromium does not tell the page when the file
    chooser is given the same path as last time."""
    lines = (ROOT / "sample_data" / "tickets.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    made = []
    for number in range(editors):
        keep = [line for i, line in enumerate(lines[1:]) if i % (number + 3) != 0]
        paths = []
        for turn in ("a", "b"):
            folder = workdir / f"editor-{number}{turn}"
            folder.mkdir()
            paths.append(folder / "tickets.csv")
            paths[-1].write_text(lines[0] + "".join(keep), encoding="utf-8")
        made.append((paths[0], paths[1]))
    return made


def server_facts(pid: int) -> tuple[float, float]:
    """The server's peak resident memory (MB, VmHWM) and CPU seconds so far."""
    peak = next(int(line.split()[1]) / 1024 for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("VmHWM:"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return peak, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def mixes(loads: list[Load], committed: set[str]) -> list[str]:
    """Pages that name no committed snapshot, or whose tiles differ from other pages of the same snapshot, page and
    period (what a page showing some tiles of one snapshot and some of another would do)."""
    found = [f"viewer {load.viewer} saw snapshot {load.snapshot!r}, which was never committed"
             for load in loads if load.error is None and load.snapshot not in committed]
    groups: dict[tuple, set[tuple]] = defaultdict(set)
    for load in loads:
        if load.error is None and load.tiles:
            groups[(load.snapshot, load.page, load.period)].add(tuple(load.tiles))
    found += [f"{len(shown)} different sets of tiles for snapshot {snap}, page /{page}, period {period}"
              for (snap, page, period), shown in groups.items() if len(shown) > 1]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=23)
    parser.add_argument("--editors", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--think", default="1,4", help="a viewer's pause between pages, min,max seconds")
    parser.add_argument("--upload-pause", type=float, default=10, help="an editor's pause between imports (s)")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--out", type=Path, help="write the raw runs here as JSON")
    args = parser.parse_args(argv)
    if not 0 < args.viewers + args.editors <= MAX_SESSIONS or not 0 < args.seconds <= MAX_SECONDS:
        parser.error(f"at most {MAX_SESSIONS} sessions and {MAX_SECONDS} seconds")
    think = tuple(float(x) for x in args.think.split(","))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kpi-load-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "kpi.duckdb"
    db.unlink(missing_ok=True)
    for folder in workdir.glob("editor-*"):
        shutil.rmtree(folder)
    store.connect(db).close()  # the sample data as snapshot 1
    secrets = workdir / "secrets.toml"
    secrets.write_text(f'[kpi]\neditor_password_hash = "{access.hash_password(PASSWORD)}"\n', encoding="utf-8")
    files = exports(workdir, args.editors)

    loads: list[Load] = []
    uploads: list[Upload] = []
    lock = threading.Lock()
    options = ("--server.enableAgentApi", "true", "--secrets.files", str(secrets))
    with running_app("dashboard.py", db, workdir / "server.log", options=options) as (base, proc):
        httpx.post(f"{base}/_stcore/agent/interact", json={}, timeout=TIMEOUT_S)  # the first run loads modules
        alone = solo(base)
        _, cpu_before = server_facts(proc.pid)
        began = time.monotonic()
        until = began + args.seconds
        threads = [threading.Thread(target=viewer, args=(n, base, began, until, think, loads, lock))
                   for n in range(args.viewers)]
        threads += [threading.Thread(target=editor, args=(n, base, files[n], began, until, args.upload_pause,
                                                          uploads, lock)) for n in range(args.editors)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began
        peak_mb, cpu_after = server_facts(proc.pid)
        alive = proc.poll() is None
    conn = store.connect(db)
    try:
        committed = {str(snap.id) for snap, _ in store.snapshots(conn)}
    finally:
        conn.close()

    ok = [load for load in loads if load.error is None]
    errors = [load for load in loads if load.error] + [u for u in uploads if u.error]
    scorecards = [load.seconds for load in ok if load.page in SCORECARDS]
    held = len({load.viewer for load in ok}) + len({u.editor for u in uploads if u.error is None})
    seen = sorted({load.snapshot for load in ok if load.snapshot}, key=int)
    mixed = mixes(loads, committed)
    changed = len({tuple(load.tiles) for load in ok if load.page == "service" and load.period == PERIODS[-1]})
    client = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"load: {args.viewers} viewers (agent API) + {args.editors} editors (Chromium) for {elapsed:.0f} s, "
          f"think {think[0]:g}-{think[1]:g} s, on {os.cpu_count()} cores")
    print(f"  sessions held          {held} of {args.viewers + args.editors}; server "
          f"{'still running' if alive else 'GONE'}")
    print(f"  page loads             {len(loads)} ({len(loads) / elapsed:.1f}/s), {len(ok)} finished without error")
    print(f"  errors                 {len(errors)}")
    for failure in errors[:10]:
        print(f"    - {failure.error}")
    print(f"  scorecard p50 / p95    {percentile(scorecards, 0.5):.2f} s / {percentile(scorecards, 0.95):.2f} s "
          f"({len(scorecards)} Overview and team pages)")
    every = [load.seconds for load in ok]
    print(f"  alone p50 / p95        {percentile(alone, 0.5):.2f} s / {percentile(alone, 0.95):.2f} s (one viewer "
          "on the server, the same scorecard pages, measured first)")
    print(f"  any page p50 / p95     {percentile(every, 0.5):.2f} s / {percentile(every, 0.95):.2f} s")
    print(f"  imports                {sum(u.error is None for u in uploads)} committed, median "
          f"{statistics.median([u.seconds for u in uploads]) if uploads else float('nan'):.1f} s from upload to "
          "'Imported as snapshot N'")
    print(f"  server                 peak {peak_mb:.0f} MB resident, {cpu_after - cpu_before:.0f} CPU s "
          f"({(cpu_after - cpu_before) / elapsed:.2f} cores)")
    print(f"  client                 {client.ru_utime + client.ru_stime:.0f} CPU s in this process, "
          f"{children.ru_utime + children.ru_stime:.0f} CPU s in Chromium and the other children")
    print(f"  snapshots              seen {', '.join(seen) or 'none'} of committed "
          f"{', '.join(sorted(committed, key=int))}; {changed} different Service pages for {PERIODS[-1]}")
    print(f"  snapshot mix           {'none' if not mixed else f'{len(mixed)} FOUND'}")
    for found in mixed[:10]:
        print(f"    - {found}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "date": date.today().isoformat(), "viewers": args.viewers, "editors": args.editors,
            "seconds": elapsed, "think": think, "alone": alone, "peak_mb": peak_mb,
            "server_cpu_s": cpu_after - cpu_before,
            "loads": [asdict(load) for load in loads], "uploads": [asdict(u) for u in uploads],
            "committed": sorted(committed, key=int), "mixes": mixed}, indent=1), encoding="utf-8")
    return 0 if alive and not errors and not mixed and held == args.viewers + args.editors else 1


if __name__ == "__main__":
    sys.exit(main())
