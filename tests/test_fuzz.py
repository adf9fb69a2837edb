"""Fuzzing the importer: generated and mutated CSV, TSV and XLSX bytes are either imported or refused with a
KpiError; nothing else is raised, and a refused file changes no stored data. CI runs a few hundred inputs;
KPI_FUZZ_EXAMPLES=10000 runs a long campaign (its figures are in the README)."""
from __future__ import annotations

import codecs
import io
import os
from pathlib import Path

import duckdb
import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpicore import actions, store
from kpicore.access import Actor, Role
from kpicore.errors import KpiError
from kpicore.files import read_file
from kpicore.ingest import Upload

EXAMPLES = int(os.environ.get("KPI_FUZZ_EXAMPLES", "200"))
EDITOR = Actor("fuzzer", Role.EDITOR)
SEEDS = [
    b"lead_id,created_at,channel\nL1,2026-01-05 10:00:00,web\nL2,2026-01-06 11:30:00,event\n",
    "Deal ID;Phase;Betrag;Erstellt am;Abschluss am;Besitzer\nD-1;Gewonnen;4.200,00 €;02.11.2026;20.11.2026;Lena\n"
    .encode("cp1252"),
    "ticket_id\tcreated_at\tresolved_at\tcsat\nT1\t2026-02-01 08:00\t2026-02-01 12:00\t5\n".encode("utf-16"),
    codecs.BOM_UTF8 + b'"customer_id","acquired_at","churned_at"\n"C1","2026-01-05",""\n'
                      b'"C2","2026-02-01","2026-06-30"\n',
]
NASTY = [b"\x00", b"\xff\xfe", codecs.BOM_UTF8, b'"', b'""', b",", b";", b"\t", b"\n", b"\r\n", b"\r", b"\xc3",
         b"\xe2\x82", b"=HYPERLINK(\"x\")", b"9" * 400, b"2026-13-45", b"NaN", b"-1e309", b"\\", b"'; DROP TABLE x;--"]


def _xlsx(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@st.composite
def exports(draw: st.DrawFn) -> tuple[str, bytes]:
    """A file name and its bytes: a seed export mutated, random bytes, or a small workbook of random cells."""
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "random", "xlsx", "xlsx-cut"]))
    if kind == "random":
        return "random.csv", draw(st.binary(min_size=0, max_size=400))
    if kind.startswith("xlsx"):
        cells = st.one_of(st.none(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                          st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=30),
                          st.sampled_from(["lead_id", "created_at", "2026-01-05 10:00:00", "L1", "=1+1"]))
        data = _xlsx(draw(st.lists(st.lists(cells, min_size=1, max_size=5), min_size=0, max_size=6)))
        if kind == "xlsx-cut":  # cut at a share of its length (a workbook's length varies with the clock)
            data = data[:int(len(data) * draw(st.floats(0, 1)))]
        return "book.xlsx", data
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "flip", "cut", "repeat"]))
        if action == "insert":
            data[at:at] = draw(st.sampled_from(NASTY))
        elif action == "flip" and data:
            data[min(at, len(data) - 1)] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[at:at + draw(st.integers(1, 40))]
        else:
            data[at:at] = data[max(0, at - 60):at] * draw(st.integers(1, 3))
    return draw(st.sampled_from(["export.csv", "export.tsv", "export.txt"])), bytes(data)


def _stored(conn: duckdb.DuckDBPyConnection) -> tuple:
    latest = store.latest_snapshot(conn)
    return (conn.execute("SELECT id, note FROM snapshots ORDER BY id").fetchall(),
            conn.execute("SELECT table_name, rows, physical FROM snapshot_tables WHERE snapshot_id = ? ORDER BY 1",
                         [latest.id]).fetchall())


FRESH_EVERY = 250  # a new database after this many inputs, so a long run does not slow down as snapshots pile up


class Fresh:
    """The database the fuzzer imports into, replaced by a fresh copy every FRESH_EVERY inputs."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.used, self.made, self.conn = folder, 0, 0, None

    def get(self) -> duckdb.DuckDBPyConnection:
        if self.conn is None or self.used >= FRESH_EVERY:
            self.close()
            self.made += 1
            self.conn, self.used = store.connect(self.folder / f"kpi-{self.made}.duckdb"), 0
        self.used += 1
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            (self.folder / f"kpi-{self.made}.duckdb").unlink()
            self.conn = None


def test_any_export_is_imported_or_refused_and_a_refusal_changes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "inputs"
    folder.mkdir()
    databases = Fresh(tmp_path)

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(exports())
    def one(export: tuple[str, bytes]) -> None:
        name, data = export
        path = folder / name
        path.write_bytes(data)
        conn = databases.get()
        before = _stored(conn)
        try:
            raw = read_file(path, workdir=folder)
            plan, _ = store.plan_for(conn, raw)
            actions.import_files(conn, EDITOR, [Upload(raw, plan)], f"fuzz: {name}")
        except KpiError as refused:
            assert str(refused), "a refusal says why"
            assert _stored(conn) == before, "a refused file changes no stored data"

    try:
        one()
    finally:
        databases.close()
