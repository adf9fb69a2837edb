"""Computing on a warehouse (KPI_ENGINE): the setting, canonical views over a company's own tables from a mapping
file, readings as snapshots, the command line and the app on a real PostgreSQL server (started by the fixture).

The company tables here are hand-made, with their own names and values; every expected number is counted by hand
from the rows below."""
from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psycopg
import pytest
from app_support import APP, open_page
from pg_support import postgres_server
from streamlit.testing.v1 import AppTest
from test_engines import copy_schema

from kpicore import actions, checkins, compute, store, warehouse
from kpicore.access import Actor, Role
from kpicore.catalog import Catalog
from kpicore.cli import main
from kpicore.errors import BadParameter, KpiError
from kpicore.filters import Filters
from kpicore.filters import options as filter_options
from kpicore.periods import Grain, parse_period
from kpicore.scorecard import Status

EDITOR = Actor("Dana", Role.EDITOR)
# the company's CRM table as it exports it: its own column names, dates as text, its own channel codes
LEADS = [("L1", "2026-09-03 10:00", "PAID", "2026-09-05 08:00"),
         ("L2", "2026-09-20 10:00", "ORGANIC", None),
         ("L3", "2026-09-29 23:00", "PAID", None),
         ("L4", "2026-10-02 09:00", "ORGANIC", "2026-10-03 12:00")]
MAPPING = """\
tables:
  leads:
    from: crm.Leads
    columns:
      lead_id: Record ID
      created_at: Create Date
      channel: Source
      qualified_at: MQL Date
    values:
      channel: {PAID: paid search, ORGANIC: organic}
"""


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, str]]:
    """A PostgreSQL server holding the company's CRM table: its libpq DSN and its URL (as KPI_ENGINE takes it)."""
    with postgres_server() as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA crm")
            conn.execute('CREATE TABLE crm."Leads" ("Record ID" text, "Create Date" text, "Source" text, '
                         '"MQL Date" text)')
            with conn.cursor().copy('COPY crm."Leads" FROM STDIN') as copy:
                for row in LEADS:
                    copy.write_row(row)
        port = dsn.split("port=")[1].split()[0]
        yield dsn, f"postgresql://kpi@127.0.0.1:{port}/postgres"


@pytest.fixture
def on_warehouse(server: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """KPI_ENGINE set to the server, a schema of the test's own (the app's state beside it, in <schema>_state),
    and the canonical views made there from MAPPING."""
    monkeypatch.setenv("KPI_ENGINE", server[1])
    monkeypatch.setenv("KPI_SCHEMA", f"kpi_{secrets.token_hex(4)}")
    monkeypatch.setenv("KPI_DB", str(tmp_path / "kpi.duckdb"))
    mapping = tmp_path / "crm.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    assert main(["warehouse", "views", str(mapping)]) == 0
    return server[1], tmp_path / "kpi.duckdb"


# --- the setting ---------------------------------------------------------------------------------------------------

def test_the_setting_comes_from_the_environment_before_secrets_and_never_shows_a_password(monkeypatch) -> None:
    monkeypatch.delenv("KPI_ENGINE", raising=False)
    monkeypatch.delenv("KPI_SCHEMA", raising=False)
    assert warehouse.setting({}) == warehouse.Setting("", "kpi")
    assert warehouse.setting({}).describe == "the embedded DuckDB file"
    given = warehouse.setting({"engine": "postgresql://ana:s3cret@db.example:5433/crm", "schema": "scorecards"})
    assert (given.dialect, given.schema) == ("postgres", "scorecards")
    assert given.shown == "postgresql://ana@db.example:5433/crm" and "s3cret" not in given.describe
    assert warehouse.setting({"engine": "local[*]"}).dialect == "spark"
    assert warehouse.setting({"engine": "spark://master:7077"}).dialect == "spark"
    monkeypatch.setenv("KPI_ENGINE", "postgresql://kpi@localhost/db")
    assert warehouse.setting({"engine": "local[*]"}).url == "postgresql://kpi@localhost/db"


def test_the_state_may_live_in_another_postgresql_but_only_beside_a_warehouse(monkeypatch) -> None:
    monkeypatch.setenv("KPI_ENGINE", "local[*]")
    monkeypatch.setenv("KPI_STATE", "postgresql://kpi:pw@state.example/kpi")
    chosen = warehouse.setting({})
    assert warehouse.shares_state(chosen) and chosen.state_url == "postgresql://kpi:pw@state.example/kpi"
    monkeypatch.setenv("KPI_STATE", "mysql://kpi:pw@state.example/kpi")
    with pytest.raises(BadParameter, match="KPI_STATE: 'mysql://kpi@state.example/kpi' is not a PostgreSQL server"):
        warehouse.setting({})
    monkeypatch.delenv("KPI_ENGINE")
    monkeypatch.setenv("KPI_STATE", "postgresql://kpi@state.example/kpi")
    with pytest.raises(BadParameter, match="KPI_STATE is set but KPI_ENGINE is not"):
        warehouse.setting({})
    monkeypatch.delenv("KPI_STATE")
    assert not warehouse.shares_state(warehouse.setting({"engine": "local[2]"}))  # Spark alone: the DuckDB file


@pytest.mark.parametrize(("engine", "schema", "named"), [
    ("mysql://root:pw@db/crm", "kpi", "KPI_ENGINE: 'mysql://root@db/crm' is not an engine"),
    ("postgresql://db/crm", "kpi; DROP TABLE x", "KPI_SCHEMA: 'kpi; DROP TABLE x' is not a schema name"),
])
def test_a_setting_kpicore_cannot_use_is_refused_naming_it(monkeypatch, engine: str, schema: str,
                                                          named: str) -> None:
    monkeypatch.setenv("KPI_ENGINE", engine)
    monkeypatch.setenv("KPI_SCHEMA", schema)
    with pytest.raises(BadParameter) as refused:
        warehouse.setting({})
    assert named in str(refused.value) and "pw" not in str(refused.value)


# --- the mapping file ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "named"), [
    ("tables:\n  deals:\n    from: crm.deals\n", "crm.yaml: tables.deals: there is no canonical table 'deals'"),
    ("tables:\n  leads:\n    columns: {lead_id: Id, created_at: Created}\n", "tables.leads: needs 'from'"),
    ("tables:\n  leads:\n    from: crm.leads\n    columns: {lead_id: Id, created: Created}\n",
     "tables.leads.columns.created: 'leads' has no column 'created'"),
    ("tables:\n  leads:\n    from: crm.leads\n    columns: {lead_id: Id}\n",
     "tables.leads.columns: the required column 'created_at'"),
    ("tables:\n  leads:\n    from: crm.leads\n    columns: {lead_id: Id, created_at: C}\n"
     "    values: {channel: {A: b}}\n",
     "tables.leads.values.channel: renames values of a column the mapping does not map"),
    ("tables: [leads]\n", "crm.yaml: needs a 'tables' section"),
    ("tables:\n  leads: {from: 'a.b.c', columns: {lead_id: Id, created_at: C}}\n",
     "tables.leads.from: 'a.b.c' is not a table name"),
    ("tables: {leads: [\n", "crm.yaml: is not a YAML file"),
])
def test_a_mapping_file_with_a_problem_is_refused_naming_the_file_and_the_entry(tmp_path: Path, text: str,
                                                                                named: str) -> None:
    path = tmp_path / "crm.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KpiError) as refused:
        warehouse.load_mapping(path)
    assert named in str(refused.value), str(refused.value)


def test_views_over_a_column_the_table_lacks_are_refused_and_nothing_is_made(server, tmp_path: Path) -> None:
    dsn, _ = server
    path = tmp_path / "crm.yaml"
    path.write_text(MAPPING.replace("MQL Date", "Qualified On"), encoding="utf-8")
    engine = warehouse.open_engine(warehouse.Setting(server[1], "refused"))
    try:
        with pytest.raises(KpiError) as refused:
            warehouse.make_views(engine, warehouse.load_mapping(path), "refused", path.name)
        assert "crm.yaml: tables.leads.columns.qualified_at: crm.Leads has no column 'Qualified On'" in \
            str(refused.value)
        assert "MQL Date" in str(refused.value)  # its columns are listed
    finally:
        engine.close()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'refused'"
                            ).fetchone() == (0,)


# --- readings and the command line ---------------------------------------------------------------------------------

def kpis(capsys, period: str) -> dict[str, dict]:
    capsys.readouterr()
    assert main(["kpis", "--period", period, "--format", "json"]) == 0
    return {r["id"]: r for r in json.loads(capsys.readouterr().out)}


def test_the_command_line_computes_the_mapped_company_table_on_the_warehouse(on_warehouse, capsys,
                                                                            catalog: Catalog) -> None:
    url, db = on_warehouse
    capsys.readouterr()
    assert main(["kpis", "--period", "2026-09", "--format", "json"]) == 0
    printed = capsys.readouterr()
    assert "Read the warehouse (postgresql://kpi@127.0.0.1" in printed.err  # the first command reads it
    september = {r["id"]: r for r in json.loads(printed.out)}
    assert september["leads"]["value"] == 3  # L1, L2, L3
    assert september["mql_rate"]["value"] == pytest.approx(1 / 3)  # L1 of those three has an MQL date
    assert kpis(capsys, "2026-10")["leads"]["value"] == 1  # L4
    schema = warehouse.setting().schema
    engine = warehouse.open_engine(warehouse.setting())
    try:
        assert filter_options(engine, schema)["channel"] == ["organic", "paid search"]  # renamed by the mapping
        paid = compute.compute(engine, catalog, schema, Grain.MONTH, Filters((("channel", ("paid search",)),)))
        assert paid.value("leads", parse_period("2026-09", Grain.MONTH)) == 2  # L1, L3
    finally:
        engine.close()
    conn = warehouse.state(warehouse.setting())  # the app's own tables are in the warehouse too
    try:
        latest = store.latest_snapshot(conn)
        assert (latest.id, latest.warehouse, latest.warehouse_schema) == (1, url, warehouse.setting().schema)
        assert store.tables(conn, latest)["leads"].rows == 4
    finally:
        conn.close()
    assert not db.exists()  # and no DuckDB file holds a copy of anything


def test_a_column_the_mapping_leaves_out_counts_as_not_in_the_data(server, tmp_path: Path, monkeypatch,
                                                                  capsys) -> None:
    monkeypatch.setenv("KPI_ENGINE", server[1])
    monkeypatch.setenv("KPI_SCHEMA", "no_mql")
    monkeypatch.setenv("KPI_DB", str(tmp_path / "kpi.duckdb"))
    mapping = tmp_path / "crm.yaml"
    mapping.write_text(MAPPING.replace("      qualified_at: MQL Date\n", ""), encoding="utf-8")
    assert main(["warehouse", "views", str(mapping)]) == 0
    september = kpis(capsys, "2026-09")
    assert september["leads"]["value"] == 3
    assert september["mql_rate"]["value"] is None  # not 0 %: the warehouse has no MQL dates
    assert "the loaded leads have no qualified_at column" in september["mql_rate"]["note"]


def test_a_schema_without_the_canonical_tables_is_refused_naming_them_and_records_nothing(server, tmp_path,
                                                                                         monkeypatch) -> None:
    monkeypatch.setenv("KPI_ENGINE", server[1])
    monkeypatch.setenv("KPI_SCHEMA", "crm")  # the company's own schema: no canonical tables there
    monkeypatch.setenv("KPI_DB", str(tmp_path / "kpi.duckdb"))
    conn = store.connect(tmp_path / "kpi.duckdb", sample=False)
    before = store.snapshots(conn)
    engine = warehouse.open_engine(warehouse.setting())
    try:
        with pytest.raises(KpiError) as refused:
            actions.read_warehouse(conn, EDITOR, engine, warehouse.setting())
        assert "The warehouse schema crm has no table or view 'leads'" in str(refused.value)
        assert "kpicore warehouse views MAPPING.yaml" in str(refused.value)
        assert store.snapshots(conn) == before
    finally:
        engine.close()
        conn.close()


def test_with_the_data_in_the_warehouse_local_changes_are_refused_and_a_target_change_keeps_the_reading(
        on_warehouse, capsys, tmp_path: Path, catalog: Catalog) -> None:
    assert kpis(capsys, "2026-09")["leads"]["value"] == 3  # reads the warehouse: snapshot 1
    conn = warehouse.state(warehouse.setting())
    try:
        with pytest.raises(KpiError, match="Emptying tables changes the tables kept in the app's own file"):
            actions.drop_tables(conn, EDITOR, ["leads"])
        with pytest.raises(KpiError, match="Loading the sample data"):
            actions.load_sample(conn, EDITOR)
        with pytest.raises(KpiError, match="keeps no earlier states"):
            actions.restore(conn, EDITOR, 1)
        made, _ = actions.change_target(conn, EDITOR, catalog, "leads", 5.0)
        assert made.warehouse is not None and made.schema == warehouse.setting().schema
        assert store.tables(conn, made)["leads"].rows == 4
        assert [s.id for s, _ in store.snapshots(conn)] == [2, 1]
    finally:
        conn.close()
    # the new target judges the warehouse's numbers: 3 leads against 5, below the at-risk share (0.9 x 5)
    assert kpis(capsys, "2026-09")["leads"]["status"] == Status.OFF_TRACK.value


def test_an_upload_replaces_its_table_in_the_warehouse_and_a_refused_one_changes_nothing(
        on_warehouse, server, capsys, tmp_path: Path) -> None:
    assert kpis(capsys, "2026-09")["leads"]["value"] == 3  # the company's table, through the mapping's view
    schema = warehouse.setting().schema
    export = tmp_path / "leads.csv"
    export.write_text("lead_id,created_at,channel\nN1,2026-09-02 10:00:00,event\nN2,2026-09-03 11:00:00,web\n"
                      "N3,2026-10-04 12:00:00,web\nN4,2026-09-05 13:00:00,web\nN4,2026-09-06 13:00:00,web\n",
                      encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("lead_id,channel\nX1,web\n", encoding="utf-8")  # no creation date: refused, never guessed

    def state() -> tuple[list, list]:
        with psycopg.connect(server[0]) as pg:
            rows = pg.execute(f'SELECT lead_id FROM {schema}.leads ORDER BY 1').fetchall()
        conn = warehouse.state(warehouse.setting())
        try:
            return rows, [s.id for s, _ in store.snapshots(conn)]
        finally:
            conn.close()

    before = state()
    assert main(["load", str(bad)]) == 1
    assert "created_at" in capsys.readouterr().err
    assert main(["load", "--append", str(export)]) == 1
    assert "adding rows to what the warehouse holds is not done from here" in capsys.readouterr().err
    assert state() == before
    assert main(["load", str(export)]) == 0
    printed = capsys.readouterr().out
    assert "Snapshot 2 created." in printed and "1 row(s) repeat an id of a later row" in printed
    september = kpis(capsys, "2026-09")
    assert september["leads"]["value"] == 3  # N1, N2 and N4 (its second row replaces its first)
    assert kpis(capsys, "2026-10")["leads"]["value"] == 1  # N3
    rows, snapshots = state()
    assert rows == [("N1",), ("N2",), ("N3",), ("N4",)] and snapshots == [2, 1]
    with psycopg.connect(server[0]) as pg:
        uploaded = pg.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                              [f"{schema}_uploads"]).fetchall()
        assert len(uploaded) == 1 and uploaded[0][0].startswith("leads__")
        assert pg.execute('SELECT COUNT(*) FROM crm."Leads"').fetchone() == (4,)  # the company's table untouched


def test_an_upload_never_drops_a_table_of_the_warehouse(server, tmp_path: Path, monkeypatch, capsys) -> None:
    dsn, url = server
    with psycopg.connect(dsn, autocommit=True) as pg:  # canonical tables the company made itself, not views
        pg.execute("CREATE SCHEMA own_tables")
        pg.execute("CREATE TABLE own_tables.leads AS SELECT 'L1'::text AS lead_id, "
                   "'2026-09-01 10:00'::timestamp AS created_at")
    monkeypatch.setenv("KPI_ENGINE", url)
    monkeypatch.setenv("KPI_SCHEMA", "own_tables")
    export = tmp_path / "leads.csv"
    export.write_text("lead_id,created_at\nN1,2026-09-02 10:00:00\n", encoding="utf-8")
    assert main(["load", str(export)]) == 1
    assert "own_tables.leads is a table of the warehouse, not a view" in capsys.readouterr().err
    with psycopg.connect(dsn) as pg:
        assert pg.execute("SELECT lead_id FROM own_tables.leads").fetchall() == [("L1",)]


def test_another_spelling_of_the_same_server_does_not_read_it_again(on_warehouse, server, capsys,
                                                                     monkeypatch) -> None:
    assert kpis(capsys, "2026-09")["leads"]["value"] == 3  # reads it: snapshot 1
    monkeypatch.setenv("KPI_ENGINE", server[1].replace("127.0.0.1", "localhost"))
    assert kpis(capsys, "2026-09")["leads"]["value"] == 3
    conn = warehouse.state(warehouse.setting())
    try:
        assert [s.id for s, _ in store.snapshots(conn)] == [1]  # two replicas spelling it apart share one reading
    finally:
        conn.close()


@pytest.mark.parametrize("command", [["init"], ["backup", "copy.duckdb"], ["restore-backup", "copy.duckdb"]])
def test_commands_about_the_duckdb_file_say_where_the_data_is_instead(on_warehouse, capsys, tmp_path: Path,
                                                                     command: list[str]) -> None:
    assert main([*command[:1], *(str(tmp_path / c) for c in command[1:])]) == 1
    said = capsys.readouterr().err
    assert f"kpicore {command[0]} is about the DuckDB file" in said and "pg_dump" in said
    assert not (tmp_path / "copy.duckdb").exists() and not (tmp_path / "kpi.duckdb").exists()


def test_check_ins_and_saved_mappings_made_through_one_process_are_read_by_another(on_warehouse, capsys,
                                                                                  tmp_path: Path,
                                                                                  catalog: Catalog) -> None:
    export = tmp_path / "crm_leads.csv"
    export.write_text("Lead Number,Created\nN1,2026-09-02 10:00:00\n", encoding="utf-8")
    assert main(["load", str(export), "--table", "leads", "--map", "lead_id=Lead Number", "--map",
                 "created_at=Created", "--save-mapping", "CRM leads"]) == 0
    one = warehouse.state(warehouse.setting())  # as one replica
    try:
        actions.add_checkin(one, EDITOR, catalog, "leads", parse_period("2026-09", Grain.MONTH), "Webinar week")
    finally:
        one.close()
    other = warehouse.state(warehouse.setting())  # as another
    try:
        assert store.mapping_names(other) == ["CRM leads"]
        assert [(c.kpi, c.period, c.note, c.author) for c in checkins.of_grain(other, Grain.MONTH)] == [
            ("leads", "2026-09", "Webinar week", "Dana")]
    finally:
        other.close()


# --- the app -------------------------------------------------------------------------------------------------------

def tiles(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_app_on_the_warehouse_shows_the_numbers_the_app_shows_on_the_same_data_in_duckdb(
        sample_db: Path, server, tmp_path: Path, monkeypatch) -> None:
    conn = duckdb.connect(str(sample_db), read_only=True)
    snapshot = store.latest_snapshot(conn)
    copy_schema(conn, snapshot.schema, server[0], "sample_copy").close()
    conn.close()

    def overview(engine: str | None, db: Path) -> AppTest:
        if engine:
            monkeypatch.setenv("KPI_ENGINE", engine)
            monkeypatch.setenv("KPI_SCHEMA", "sample_copy")
        else:
            monkeypatch.delenv("KPI_ENGINE", raising=False)
        monkeypatch.setenv("KPI_DB", str(db))
        at = AppTest.from_file(str(APP), default_timeout=120)
        at.query_params["period"] = "2026-10"
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    local = overview(None, tmp_path / "local.duckdb")
    theirs = overview(server[1], tmp_path / "warehouse.duckdb")
    assert len(tiles(local)) > 8 and tiles(theirs) == tiles(local)
    assert any("snapshot 1 (Read sample_copy from the warehouse)" in c.value for c in theirs.sidebar.caption)
    open_page(theirs, "data").run()
    assert not theirs.exception, [e.value for e in theirs.exception]
    assert [u.help for u in theirs.get("file_uploader")] == [  # uploads go into the warehouse
        "Up to 200 MB per file. Each replaces its table in the warehouse."]
    assert any("KPIs are computed on the warehouse" in m.value for m in theirs.markdown)


def test_an_earlier_reading_shows_its_kept_numbers_and_says_when_they_are_computed_now(on_warehouse, server, capsys,
                                                                                      monkeypatch) -> None:
    assert kpis(capsys, "2026-09")["leads"]["value"] == 3  # reading 1, its month view kept
    with psycopg.connect(server[0], autocommit=True) as pg:  # the company's CRM gets a fifth lead in September
        pg.execute("""INSERT INTO crm."Leads" VALUES ('L5', '2026-09-10 10:00', 'PAID', NULL)""")
    try:
        assert main(["warehouse", "read"]) == 0  # reading 2
        assert kpis(capsys, "2026-09")["leads"]["value"] == 4

        def page(params: dict[str, str]) -> AppTest:
            at = AppTest.from_file(str(APP), default_timeout=120)
            for key, value in params.items():
                at.query_params[key] = value
            at.run()
            open_page(at, "marketing").run()
            assert not at.exception, [e.value for e in at.exception]
            return at

        def leads(at: AppTest) -> str:
            return next(m.value for m in at.metric if m.label == "Leads")

        kept_then = page({"snapshot": "1", "period": "2026-09", "grain": "month"})
        assert leads(kept_then) == "3"  # what reading 1 showed, though the warehouse has 4 now
        assert not any("computed from the warehouse as it is now" in w.value for w in kept_then.warning)
        not_kept = page({"snapshot": "1", "period": "2026-Q3", "grain": "quarter"})
        assert any("Snapshot 1 was read from the warehouse" in w.value and "as it is now" in w.value
                   for w in not_kept.warning)
        again = page({"snapshot": "1", "period": "2026-Q3", "grain": "quarter"})  # not kept as reading 1's
        assert any("as it is now" in w.value for w in again.warning)
    finally:
        with psycopg.connect(server[0], autocommit=True) as pg:
            pg.execute("""DELETE FROM crm."Leads" WHERE "Record ID" = 'L5'""")
