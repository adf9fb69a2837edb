"""The command line: the app's numbers as table, CSV and JSON, and errors that name the problem."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb
import pytest

from kpicore import store
from kpicore.cli import main

REQUIRED = {"id", "label", "team", "unit", "direction", "value", "comparison", "target", "status", "as_of"}
OUTCOMES = {"retention_rate", "churn_rate", "net_revenue_retention", "net_revenue_retention_12m",
            "lead_to_customer_rate", "lead_to_revenue",
            "nps", "csat", "clv_cac"}

BROKEN_CATALOG = """
teams:
  - {id: sales, label: Sales}
kpis:
  - id: deals
    label: Deals
    description: Deals opened.
    team: sales
    unit: pieces
    direction: up
    target: {value: 10}
    simple: {table: opportunities, time: created_at, agg: count}
  - id: deal_share
    label: Deal share
    description: Deals per lead.
    team: sales
    unit: percent
    direction: up
    target: {value: 0.5}
    ratio: {numerator: deals, denominator: no_such_kpi}
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def snapshot_ids(path: Path) -> list[int]:
    with duckdb.connect(str(path)) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM snapshots ORDER BY id").fetchall()]


@pytest.fixture
def broken_catalog(tmp_path: Path) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN_CATALOG, encoding="utf-8")
    return path


# --- kpis ------------------------------------------------------------------------------------------


def test_kpis_json_has_every_field_and_rates_as_fractions(capsys, sample_db, catalog):
    code, out, _ = run(capsys, "--db", str(sample_db), "kpis", "--format", "json")
    assert code == 0
    records = json.loads(out)
    assert isinstance(records, list)
    scored = [k for k in catalog.kpis if not k.is_measure]
    assert [r["id"] for r in records] == [k.id for k in catalog.outcomes] + [
        k.id for team in catalog.teams for k in catalog.scored(team.id)]
    assert len(records) == len(scored)
    for record in records:
        assert set(record) >= REQUIRED, record["id"]
        if record["unit"] == "percent" and record["value"] is not None:
            assert 0 < record["value"] < 1, record["id"]  # 0.25, not 25
    assert {r["id"] for r in records if r["team"] == "customer"} == OUTCOMES
    by_id = {r["id"]: r for r in records}
    assert 0 < by_id["churn_rate"]["target"] < 1


def test_kpis_json_is_strict_json_even_with_an_infinite_attainment(capsys, tmp_path):
    # Two customers and no churn: a churn rate of 0 against its target is an infinite attainment,
    # which JSON cannot carry (Python's json writes the non-standard token Infinity).
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "customers.csv").write_text(
        "customer_id,acquired_at,churned_at\nC1,2025-12-01 10:00:00,\nC2,2026-01-31 10:00:00,\n", encoding="utf-8")
    path = tmp_path / "x.duckdb"
    store.connect(path, sample_dir=exports).close()
    code, out, _ = run(capsys, "--db", str(path), "kpis", "--period", "2026-01", "--team", "customer",
                       "--format", "json")
    assert code == 0
    churn = next(r for r in json.loads(out) if r["id"] == "churn_rate")
    assert churn["value"] == 0  # nobody of the one customer at the start of January left
    json.loads(out, parse_constant=lambda name: pytest.fail(f"kpis --format json wrote {name}, which is not JSON"))


def test_kpis_csv_has_the_same_kpis(capsys, sample_db):
    _, out_json, _ = run(capsys, "--db", str(sample_db), "kpis", "--format", "json")
    code, out, _ = run(capsys, "--db", str(sample_db), "kpis", "--format", "csv")
    assert code == 0
    records = list(csv.DictReader(io.StringIO(out)))
    assert [r["id"] for r in records] == [r["id"] for r in json.loads(out_json)]
    assert set(records[0]) >= REQUIRED
    churn = next(r for r in records if r["id"] == "churn_rate")
    assert 0 < float(churn["value"]) < 1


def test_kpis_table_shows_formatted_numbers(capsys, sample_db):
    code, out, _ = run(capsys, "--db", str(sample_db), "kpis")
    assert code == 0
    lines = {line.split("  ")[0]: line for line in out.splitlines()}
    assert "%" in lines["Churn rate"]
    assert "€" in lines["Lead-to-revenue"]
    assert "0.0" not in lines["Churn rate"].split()  # a rate is shown as a percentage, not a fraction


@pytest.mark.parametrize("team", ["sales", "customer", "service"])
def test_kpis_for_one_team(capsys, sample_db, catalog, team):
    code, out, _ = run(capsys, "--db", str(sample_db), "kpis", "--team", team, "--format", "json")
    assert code == 0
    records = json.loads(out)
    assert records and {r["team"] for r in records} == {team}
    assert [r["id"] for r in records] == [k.id for k in catalog.scored(team)]


def test_kpis_for_a_quarter(capsys, sample_db):
    code, out, _ = run(capsys, "--db", str(sample_db), "kpis", "--grain", "quarter", "--period", "2026-Q2",
                       "--team", "sales", "--format", "json")
    assert code == 0
    assert {r["period"] for r in json.loads(out)} == {"2026-Q2"}


@pytest.mark.parametrize(("args", "expected"), [
    (["--team", "finance"], ["finance", "marketing", "sales", "service", "customer"]),  # names it, lists known
    (["--period", "2026-13"], ["2026-13"]),  # no 13th month
    (["--period", "Oct 2026"], ["Oct 2026", "2026-10"]),  # malformed, with an example of the right form
    (["--period", "2019-01"], ["2019-01", "2021-01", "2026-10"]),  # no data; names the range there is
    (["--period", "2026-Q1"], ["2026-Q1", "quarter", "month"]),  # a quarter while the grain is month
    (["--grain", "quarter", "--period", "2026-03"], ["2026-03", "quarter"]),
])
def test_kpis_errors_name_the_problem(capsys, sample_db, args, expected):
    code, out, err = run(capsys, "--db", str(sample_db), "kpis", *args)
    assert code != 0
    assert out == ""
    for text in expected:
        assert text in err


def test_kpis_with_a_broken_catalog_names_kpi_and_field(capsys, sample_db, broken_catalog):
    code, _, err = run(capsys, "--db", str(sample_db), "--catalog", str(broken_catalog), "kpis")
    assert code != 0
    assert str(broken_catalog) in err
    assert "deals" in err and "unit" in err and "pieces" in err


def test_kpis_creates_a_missing_database_with_the_sample_data(capsys, tmp_path):
    path = tmp_path / "new" / "x.duckdb"
    code, out, _ = run(capsys, "--db", str(path), "kpis", "--team", "customer", "--format", "json")
    assert code == 0
    assert path.exists()
    assert snapshot_ids(path) == [1]
    assert len(json.loads(out)) == len(OUTCOMES)


# --- check-catalog -----------------------------------------------------------------------------------------


def test_check_catalog_accepts_the_shipped_catalog(capsys):
    code, out, _ = run(capsys, "check-catalog")
    assert code == 0
    assert "OK" in out


def test_check_catalog_lists_every_problem(capsys, broken_catalog):
    code, out, err = run(capsys, "check-catalog", str(broken_catalog))
    assert code != 0
    assert "OK" not in out
    assert "2 problem" in err
    unit_line = next(line for line in err.splitlines() if "pieces" in line)
    assert "deals" in unit_line and "unit" in unit_line
    ratio_line = next(line for line in err.splitlines() if "no_such_kpi" in line)
    assert "deal_share" in ratio_line and "ratio" in ratio_line


def test_check_catalog_reports_a_file_that_is_not_yaml(capsys, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("teams: [unclosed\n", encoding="utf-8")
    code, _, err = run(capsys, "check-catalog", str(path))
    assert code != 0
    assert str(path) in err and "YAML" in err


# --- init and the database path ------------------------------------------------------------------------------


def test_init_creates_a_database_and_force_recreates_it(capsys, tmp_path):
    path = tmp_path / "x.duckdb"
    code, out, _ = run(capsys, "--db", str(path), "init")
    assert code == 0 and path.exists()
    assert "snapshot 1" in out
    with duckdb.connect(str(path)) as conn:
        store.load_sample(conn)  # a second snapshot, as an upload would make
    assert snapshot_ids(path) == [1, 2]

    code, out, _ = run(capsys, "--db", str(path), "init")
    assert code == 0 and "snapshot 2" in out  # without --force the database is kept
    assert snapshot_ids(path) == [1, 2]

    code, out, _ = run(capsys, "--db", str(path), "init", "--force")
    assert code == 0 and "snapshot 1" in out
    assert snapshot_ids(path) == [1]  # a fresh database with the sample data only


def test_kpi_db_environment_variable_is_honoured(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # if the variable were ignored, data/kpi.duckdb would appear here
    path = tmp_path / "from_env.duckdb"
    monkeypatch.setenv("KPI_DB", str(path))
    code, _, _ = run(capsys, "init")
    assert code == 0
    assert path.exists()
    assert not (tmp_path / "data").exists()
    code, out, _ = run(capsys, "kpis", "--team", "customer", "--format", "json")
    assert code == 0 and len(json.loads(out)) == len(OUTCOMES)


def test_tensions_json_names_the_campaign_story_with_both_teams(capsys, sample_db):
    code, out, _ = run(capsys, "--db", str(sample_db), "tensions", "--period", "2026-10", "--format", "json")
    assert code == 0
    records = json.loads(out)
    story = next(r for r in records if (r["kpi"], r["counterweight"]) == ("leads", "win_rate"))
    assert (story["kpi_team"], story["counterweight_team"]) == ("marketing", "sales")
    assert story["kpi_change"] > 0 and story["counterweight_change"] < 0  # more leads, lower win rate
    assert "lead_to_customer_rate" in story["at_stake"]
    assert "Marketing's Leads" in story["sentence"] and "Sales' Win rate" in story["sentence"]
    assert story["rarity"].startswith("Even the smaller of the two shifts happens ")


def test_tensions_table_says_how_unusual_each_is_in_words(capsys, sample_db):
    code, out, _ = run(capsys, "--db", str(sample_db), "tensions", "--period", "2026-10")
    assert code == 0 and "severity" not in out
    assert out.count("Even the smaller of the two shifts happens ") == int(out.split(": ")[1].split()[0])


def test_tensions_table_says_when_a_period_is_calm(capsys, sample_db):
    code, out, _ = run(capsys, "--db", str(sample_db), "tensions", "--period", "2025-02")
    assert code == 0
    assert out.strip() == "Tensions in 2025-02 (against the previous period): 0"


def test_tensions_with_an_unknown_period_fails_with_the_data_range(capsys, sample_db):
    code, _, err = run(capsys, "--db", str(sample_db), "tensions", "--period", "1999-01")
    assert code == 1 and "1999-01" in err and "2021-01" in err


def test_load_a_status_only_export_asks_for_as_of_then_imports(capsys, tmp_path):
    exports = tmp_path / "customers.csv"
    exports.write_text("Customer ID,Churned\nC1,yes\nC2,no\n", encoding="utf-8")
    db = tmp_path / "x.duckdb"
    code, _, err = run(capsys, "--db", str(db), "load", str(exports))
    assert code == 1 and "--as-of" in err and "customers.csv" in err
    assert snapshot_ids(db) == [1]
    with pytest.raises(SystemExit) as usage:  # argparse's usage error
        run(capsys, "--db", str(db), "load", str(exports), "--as-of", "31.10.2026")
    assert usage.value.code == 2 and "not a date like 2026-10-31" in capsys.readouterr().err
    code, out, _ = run(capsys, "--db", str(db), "load", str(exports), "--as-of", "2026-10-31")
    assert code == 0 and "2 row(s) imported" in out and snapshot_ids(db) == [1, 2]
    code, out, _ = run(capsys, "--db", str(db), "kpis", "--team", "customer", "--format", "json")
    churn = next(r for r in json.loads(out) if r["id"] == "churn_rate")
    assert churn["period"] == "2026-10" and churn["value"] == 0.5 and "status-only" in churn["note"]


def test_load_map_with_an_empty_source_leaves_a_guessed_column_unmapped(capsys, tmp_path):
    exports = tmp_path / "deals.csv"
    exports.write_text("Opportunity ID,Created Date,Opportunity Name\nO1,2026-10-01,Big deal\n", encoding="utf-8")
    db = tmp_path / "x.duckdb"
    code, out, err = run(capsys, "--db", str(db), "load", str(exports), "--table", "opportunities")
    assert code == 1 and "owner" in err  # a guess: owner <- 'Opportunity Name'
    code, out, _ = run(capsys, "--db", str(db), "load", str(exports), "--table", "opportunities", "--map", "owner=")
    assert code == 0 and "1 row(s) imported" in out
