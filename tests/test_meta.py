"""Meta tests: the package stays pure, the catalog is complete and guarded, the CLI and README are documented."""
from __future__ import annotations

import argparse
import ast
import importlib.metadata
import pkgutil
import re
import subprocess
import sys
import tomllib
from collections import deque
from pathlib import Path

import pytest

import kpicore
from kpicore.catalog import CUSTOMER, Catalog, Unit
from kpicore.cli import _parser, main

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(f"kpicore.{m.name}" for m in pkgutil.iter_modules(kpicore.__path__))

# Volume and speed KPIs are the easy ones to game (more leads, faster closes). Each needs a counterweight
# owned by the catalog, unless it is accepted here with the reason why it is safe alone.
ACCEPTED_WITHOUT_COUNTERWEIGHT: dict[str, str] = {}
GAMEABLE_UNITS = {Unit.COUNT, Unit.HOURS, Unit.DAYS}


def test_every_kpicore_module_is_found():
    assert {"kpicore.catalog", "kpicore.cli", "kpicore.compute", "kpicore.periods"} <= set(MODULES)


def test_kpicore_does_not_import_streamlit():
    code = f"import sys; import {', '.join(MODULES)}; assert 'streamlit' not in sys.modules, 'streamlit imported'"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def _team_kpis(catalog: Catalog):
    return [k for k in catalog.kpis if not k.is_measure and k.team != CUSTOMER]


def test_every_scored_kpi_is_fully_defined(catalog):
    team_ids = {t.id for t in catalog.teams} | {CUSTOMER}
    scored = [k for k in catalog.kpis if not k.is_measure]
    assert scored
    for kpi in scored:
        assert kpi.description.strip(), kpi.id
        assert kpi.team in team_ids, kpi.id
        assert kpi.unit is not None, kpi.id
        assert kpi.direction is not None, kpi.id
        assert kpi.target is not None and kpi.target_for("month") is not None, kpi.id


def test_every_measure_has_a_description(catalog):
    for kpi in catalog.measures:
        assert kpi.description.strip(), kpi.id


def test_gameable_volume_and_speed_kpis_have_a_counterweight(catalog):
    unguarded = [
        k.id for k in _team_kpis(catalog)
        if k.unit in GAMEABLE_UNITS and not k.counterweights and k.id not in ACCEPTED_WITHOUT_COUNTERWEIGHT
    ]
    assert unguarded == []


def test_accepted_exceptions_are_still_in_the_catalog(catalog):
    ids = {k.id for k in catalog.kpis}
    assert set(ACCEPTED_WITHOUT_COUNTERWEIGHT) <= ids


def test_every_team_kpi_drives_something_and_reaches_a_customer_outcome(catalog):
    by_id = {k.id: k for k in catalog.kpis}
    stranded = []
    for kpi in _team_kpis(catalog):
        assert kpi.drives, f"{kpi.id} drives no KPI"
        seen, queue, reached = {kpi.id, *kpi.drives}, deque(kpi.drives), False
        while queue and not reached:
            current = by_id[queue.popleft()]
            reached = current.team == CUSTOMER
            queue.extend(d for d in current.drives if d not in seen)
            seen.update(current.drives)
        if not reached:
            stranded.append(kpi.id)
    assert stranded == []


def test_every_team_has_kpis(catalog):
    for team in catalog.teams:
        assert catalog.scored(team.id), team.id


def _commands() -> dict[str, tuple[str | None, argparse.ArgumentParser]]:
    parser = _parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in action._choices_actions}
    return {name: (helps.get(name), sub) for name, sub in action.choices.items()}


COMMANDS = sorted(_commands())


def test_the_cli_has_commands():
    assert {"init", "kpis", "check-catalog"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_cli_command_has_help(command, capsys):
    summary, sub = _commands()[command]
    assert summary and summary.strip()
    assert sub.description and sub.description.strip()
    for action in sub._actions:
        if not isinstance(action, argparse._HelpAction):
            assert action.help, f"{command} {action.option_strings or action.dest} has no help"
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: kpicore {command}")
    assert sub.description in " ".join(out.split())


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out


def test_readme_shows_the_test_command_ci_runs():
    ci = ROOT / ".ci" / "run"
    readme = ROOT / "README.md"
    assert ci.exists(), ".ci/run is missing"
    assert readme.exists(), "README.md is missing"
    commands = [
        line.strip() for line in ci.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert commands, ".ci/run has no command"
    assert commands[-1] in readme.read_text(encoding="utf-8")


# --- every third-party import is a declared dependency ---------------------------------------------------------


def _requirement_names(requirements: list[str]) -> set[str]:
    return {re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]).lower() for r in requirements}


def _third_party_imports(paths: list[Path]) -> dict[str, set[str]]:
    """Top-level modules imported by these files that are neither the standard library nor the project's own."""
    local = {p.stem for p in ROOT.glob("*.py")} | {p.name for p in ROOT.iterdir() if p.is_dir()}
    local |= {p.stem for p in (ROOT / "tests").rglob("*.py")}  # test helpers import each other by name
    local |= {p.stem for p in (ROOT / "benchmarks").rglob("*.py")}  # so do the benchmark's parts
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)) if path.is_relative_to(ROOT)
                                                     else path.name)
    return found


def _undeclared(paths: list[Path], declared: set[str]) -> list[str]:
    distributions = importlib.metadata.packages_distributions()
    missing = []
    for module, files in sorted(_third_party_imports(paths).items()):
        names = {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(module, [])}
        if not names & declared:
            missing.append(f"{module} (imported in {', '.join(sorted(files))}; installed as {names or 'nothing'})")
    return missing


def test_every_third_party_import_is_a_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = _requirement_names(project["dependencies"])
    test = runtime | _requirement_names(project["optional-dependencies"]["test"])
    engines = ROOT / "kpicore" / "engines.py"
    app = [ROOT / "dashboard.py", ROOT / "serve.py", *(ROOT / "pages").rglob("*.py"),
           *(p for p in (ROOT / "kpicore").rglob("*.py") if p != engines)]
    # the app runs on what `pip install .` installs; the Spark engine (only it) on the `spark` extra, imported
    # inside it; tests and benchmarks may use the test extras too
    assert _undeclared(app, runtime) == []
    assert _undeclared([engines], runtime | _requirement_names(project["optional-dependencies"]["spark"])) == []
    assert _undeclared([*(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")], test) == []


def test_the_dependency_check_catches_an_undeclared_import(tmp_path):
    stray = tmp_path / "stray.py"
    stray.write_text("import os\nimport yaml\nimport openpyxl\nfrom kpicore import store\n", encoding="utf-8")
    assert _undeclared([stray], {"pyyaml"}) == ["openpyxl (imported in stray.py; installed as {'openpyxl'})"]
