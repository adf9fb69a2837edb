"""Kept values: computed once per snapshot, catalog, code, grain and filters, then read back from the database."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from app_support import open_page
from streamlit.testing.v1 import AppTest

from kpicore import kept, store
from kpicore.catalog import parse_catalog
from kpicore.cli import main as cli
from kpicore.compute import compute
from kpicore.filters import NO_FILTERS, Filters
from kpicore.filters import options as filter_options
from kpicore.periods import Grain

ROOT = Path(__file__).resolve().parent.parent
CHANNEL = Filters((("channel", ("paid_social",)),))
LEADS = "lead_id,created_at,channel,segment,region\nL1,2026-03-02,web,SMB,EMEA\nL2,2026-03-09,web,SMB,EMEA\n" \
        "L3,2026-04-01,event,SMB,EMEA\n"


@pytest.fixture
def sample(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    conn = store.connect(tmp_path / "kpi.duckdb")
    yield conn
    conn.close()


def _values(conn: duckdb.DuckDBPyConnection, catalog, grain: Grain = Grain.MONTH, filters: Filters = NO_FILTERS):
    snap = store.latest_snapshot(conn)
    return kept.values(conn, catalog, snap.id, snap.schema, grain, filters, store.loaded(conn, snap))


def _rows(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    return conn.execute(f"SELECT snapshot_id, grain, filters FROM {kept.TABLE} ORDER BY ALL").fetchall()


@pytest.mark.parametrize("grain", list(Grain))
@pytest.mark.parametrize("filters", [NO_FILTERS, CHANNEL])
def test_values_survive_the_trip_through_json_exactly(sample, catalog, grain, filters):
    snap = store.latest_snapshot(sample)
    computed = compute(sample, catalog, snap.schema, grain, filters, store.loaded(sample, snap))
    assert computed.periods and computed.maturing and computed.partial and computed.errors  # nothing left empty
    assert kept.from_json(kept.to_json(computed)) == computed


def test_values_of_an_empty_database_survive_the_trip(tmp_path, catalog):
    conn = store.connect(tmp_path / "empty.duckdb", sample=False)
    snap = store.latest_snapshot(conn)
    computed = compute(conn, catalog, snap.schema, Grain.MONTH, loaded=store.loaded(conn, snap))
    assert computed.periods == ()
    assert kept.from_json(kept.to_json(computed)) == computed


def test_the_second_request_reads_the_kept_values_back(sample, catalog):
    first = _values(sample, catalog)
    assert _rows(sample) == [(1, "month", "[]")]
    # Change the kept copy: if the next request reads it back (rather than computing again), it shows the change.
    payload = json.loads(sample.execute(f"SELECT payload FROM {kept.TABLE}").fetchone()[0])
    payload["values"]["leads"][-1] = 123456.0
    sample.execute(f"UPDATE {kept.TABLE} SET payload = $p", {"p": json.dumps(payload)})
    again = _values(sample, catalog)
    assert again.values["leads"][-1] == 123456.0
    assert again.values["leads"][:-1] == first.values["leads"][:-1]
    assert _rows(sample) == [(1, "month", "[]")]


def test_each_grain_and_filter_is_kept_apart(sample, catalog):
    month, week, sliced = _values(sample, catalog), _values(sample, catalog, Grain.WEEK), _values(sample, catalog,
                                                                                                    filters=CHANNEL)
    assert _rows(sample) == [(1, "month", '[["channel", ["paid_social"]]]'), (1, "month", "[]"), (1, "week", "[]")]
    assert month.grain is Grain.MONTH and week.grain is Grain.WEEK and sliced.filters == CHANNEL
    assert sliced.values["leads"] != month.values["leads"]  # paid social is a part of the leads


def test_a_new_snapshot_is_computed_from_its_own_data(sample, catalog, tmp_path):
    before = _values(sample, catalog)
    leads = tmp_path / "leads.csv"
    leads.write_text(LEADS)
    sample.close()
    assert cli(["--db", str(tmp_path / "kpi.duckdb"), "load", str(leads)]) == 0
    conn = store.connect(tmp_path / "kpi.duckdb")
    try:
        after = _values(conn, catalog)
        assert [s for s, _, _ in _rows(conn)] == [1, 2]
        # three leads by hand: two in March 2026, one in April; none before
        assert [(p.label, v) for p, v in zip(after.periods, after.values["leads"], strict=True)] == [
            ("2026-03", 2.0), ("2026-04", 1.0)]
        assert after.periods != before.periods
    finally:
        conn.close()


def test_another_catalog_is_computed_afresh(sample, catalog):
    _values(sample, catalog)
    text = (ROOT / "kpicore" / "catalog.yaml").read_text(encoding="utf-8")
    changed = parse_catalog(text.replace("label: Leads\n", "label: New leads\n", 1))
    assert changed.fingerprint != catalog.fingerprint
    _values(sample, changed)
    assert sample.execute(f"SELECT COUNT(DISTINCT catalog) FROM {kept.TABLE}").fetchone()[0] == 2


def test_values_of_other_code_are_never_read_back_but_left_for_it(tmp_path, catalog):
    """During an upgrade two versions may share the file: each reads only its own values, neither deletes the
    other's."""
    path = tmp_path / "kpi.duckdb"
    conn = store.connect(path)
    first = _values(conn, catalog)
    payload = json.loads(conn.execute(f"SELECT payload FROM {kept.TABLE}").fetchone()[0])
    payload["values"]["leads"][-1] = 123456.0
    conn.execute(f"UPDATE {kept.TABLE} SET code = 'older-code', payload = $p", {"p": json.dumps(payload)})
    conn.close()
    conn = store.connect(path)
    try:
        again = _values(conn, catalog)
        assert again.values["leads"][-1] == first.values["leads"][-1] != 123456.0  # computed afresh
        codes = sorted(c for (c,) in conn.execute(f"SELECT code FROM {kept.TABLE}").fetchall())
        assert codes == sorted(["older-code", kept.CODE])
    finally:
        conn.close()


def test_only_the_latest_snapshots_values_are_kept(tmp_path, catalog):
    path = tmp_path / "kpi.duckdb"
    conn = store.connect(path)
    _values(conn, catalog)  # snapshot 1
    for number in range(2, kept.KEEP_SNAPSHOTS + 2):  # snapshots 2 .. 11: snapshot 1 is no longer among the latest 10
        conn.execute("INSERT INTO snapshots (id, created_at, note) VALUES ($n, now(), 'a later one')", {"n": number})
    conn.execute(f"INSERT INTO {kept.TABLE} SELECT 11, catalog, code, grain, filters, payload, seconds "
                 f"FROM {kept.TABLE}")
    conn.close()
    conn = store.connect(path)
    try:
        assert _rows(conn) == [(11, "month", "[]")]
    finally:
        conn.close()


def test_two_processes_keeping_the_same_values_do_not_collide(sample, catalog):
    snap = store.latest_snapshot(sample)
    computed = compute(sample, catalog, snap.schema, Grain.MONTH, loaded=store.loaded(sample, snap))
    row = {"s": snap.id, "c": catalog.fingerprint, "k": kept.CODE, "p": kept.to_json(computed)}
    sample.execute(f"INSERT INTO {kept.TABLE} VALUES ($s, $c, $k, 'month', '[]', $p, 0.1)", row)  # the other one
    assert _values(sample, catalog) == computed
    assert _rows(sample) == [(1, "month", "[]")]


def test_load_computes_the_dashboards_values_unless_told_not_to(tmp_path, capsys):
    leads = tmp_path / "leads.csv"
    leads.write_text(LEADS)
    for db, extra, kept_rows in (("a.duckdb", [], 1), ("b.duckdb", ["--no-precompute"], 0)):
        assert cli(["--db", str(tmp_path / db), "load", str(leads), *extra]) == 0
        out = capsys.readouterr().out
        assert ("Computed the KPIs of snapshot 2 for the dashboard" in out) is bool(kept_rows)
        conn = duckdb.connect(str(tmp_path / db))
        try:
            assert conn.execute(f"SELECT COUNT(*) FROM {kept.TABLE} WHERE snapshot_id = 2").fetchone()[0] == kept_rows
        finally:
            conn.close()


def test_the_code_fingerprint_follows_the_source(tmp_path):
    """Values kept by other code are never read back: a change to any kpicore module changes the fingerprint."""
    copy = tmp_path / "kpicore"
    shutil.copytree(ROOT / "kpicore", copy, ignore=shutil.ignore_patterns("__pycache__"))

    def fingerprint() -> str:
        return subprocess.run([sys.executable, "-c", "from kpicore import kept; print(kept.CODE)"], cwd=tmp_path,
                              capture_output=True, text=True, check=True,
                              env={"PYTHONPATH": str(tmp_path), "PATH": ""}).stdout.strip()

    assert fingerprint() == kept.CODE
    with (copy / "compute.py").open("a", encoding="utf-8") as source:
        source.write("\n# a change\n")
    assert fingerprint() != kept.CODE


def test_the_app_shows_the_kept_values_and_keeps_what_it_computes(tmp_path, monkeypatch, catalog):
    """A restarted server reads the values kept in the file; values it has to compute are kept for the next one."""
    path = tmp_path / "kpi.duckdb"
    conn = store.connect(path)
    month = _values(conn, catalog)
    period = month.latest(["leads"])
    payload = json.loads(conn.execute(f"SELECT payload FROM {kept.TABLE}").fetchone()[0])
    payload["values"]["leads"][month.positions[period]] = 123456.0  # shown only if the app reads the kept copy
    conn.execute(f"UPDATE {kept.TABLE} SET payload = $p", {"p": json.dumps(payload)})
    conn.close()
    monkeypatch.setenv("KPI_DB", str(path))
    monkeypatch.delenv("KPI_CATALOG", raising=False)
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
    at.query_params.update({"period": period.label})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    open_page(at, "marketing").run()
    assert not at.exception, [e.value for e in at.exception]
    leads = [m.value for m in at.metric if m.label == "Leads"]
    assert leads == ["123,456"], [(m.label, m.value) for m in at.metric]
    at.query_params["grain"] = "quarter"
    at.query_params.pop("period")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    conn = duckdb.connect(str(path))
    try:
        assert _rows(conn) == [(1, "month", "[]"), (1, "quarter", "[]")]
    finally:
        conn.close()


def test_precompute_keeps_each_single_filter_value_and_skips_what_is_kept(tmp_path, capsys, catalog):
    db = str(tmp_path / "kpi.duckdb")
    store.connect(db).close()
    assert cli(["--db", db, "precompute", "--filters"]) == 0
    first = capsys.readouterr().out.splitlines()
    conn = store.connect(db)
    try:
        snap = store.latest_snapshot(conn)
        options = filter_options(conn, snap.schema)
        wanted = 1 + sum(len(v) for v in options.values())  # no filters, then each value of each dimension
        assert len(first) == wanted + 1 and all(": computed in " in line for line in first[:-1])
        assert first[-1] == f"Snapshot 1: {wanted} view(s) kept for the dashboard."
        assert len(_rows(conn)) == wanted
        web = Filters((("channel", ("paid_social",)),))
        direct = compute(conn, catalog, snap.schema, Grain.MONTH, web, store.loaded(conn, snap))
        assert _values(conn, catalog, filters=web).values["leads"] == direct.values["leads"]  # counts: exact
    finally:
        conn.close()
    assert cli(["--db", db, "precompute", "--filters", "--grain", "week"]) == 0
    again = capsys.readouterr().out.splitlines()
    assert len(again) == wanted + 1 and all(": computed in " in line for line in again[:-1])  # week: new views
    assert cli(["--db", db, "precompute", "--grain", "month", "--grain", "week"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == ["month, no filters: kept already",
                                                        "week, no filters: kept already"]
