"""Sentences the app, the command line and reports share, so that they say the same thing."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

from kpicore.catalog import DEFAULT_CATALOG, Catalog
from kpicore.coverage import Loaded, missing_columns
from kpicore.display import printable
from kpicore.ingest import FileReport
from kpicore.model import MONEY, TABLES

SAMPLE_LINE = "Sample data: the numbers of a made-up company, to look around."
WELCOME_TITLE = "No data yet"
WELCOME_TEXT = (
    "Load the exports of your CRM, marketing, helpdesk or billing tool (CSV, TSV or Excel) on the Data page. "
    f"Each file becomes one of {len(TABLES)} tables ({', '.join(TABLES)}); column names from HubSpot, Salesforce, "
    "Pipedrive, Zendesk, Stripe and others are recognised, and an empty template of every table is there too. "
    "Each KPI is shown as soon as the tables it is built on have data."
)
NO_LEADS = ("The journey follows the leads of a period to customers who stay and recommend: no leads are loaded yet, "
            "so there is no cohort to follow.")
TARGETS = ("Targets, bands and the currency come from the KPI catalog in use ({source}); the shipped one is set for "
           "the sample company: give your own with KPI_CATALOG (or --catalog). Editors can change a KPI's target "
           "under Targets below.")


def catalog_named(source: str) -> str:
    """The catalog in use as a page names it: its file name, never the server's folders."""
    if Path(source) == DEFAULT_CATALOG:
        return f"the shipped {DEFAULT_CATALOG.name}"
    return f"{Path(source).name}, the file KPI_CATALOG names"
WELCOME_HERE = ("Upload the exports of your CRM, marketing, helpdesk or billing tool (CSV, TSV or Excel) below. "
                "Each file becomes one of the tables listed under Templates, where an empty template of each is; or "
                "load the sample data to look around first.")
VIEW_ONLY = ("You can view the data and its snapshots. Uploading, emptying tables, restoring snapshots, saving "
             "mappings and writing check-ins need the editor role: unlock editing in the sidebar, or log in as an "
             "editor.")
OPEN_EDITING = ("Anyone who reaches this app can edit: no editor password or login is set. Before you share it, "
                "set one (kpicore hash-password, see the README).")
START_EMPTY = "Start from empty tables: only your files (the sample stays restorable in its snapshot)"
KEEP_SAMPLE = "Keep the sample tables beside your files"


def started_empty(emptied: tuple[str, ...], sample_snapshot: int | None) -> str:
    """What an import that started from empty tables did with the sample."""
    where = f" (restore snapshot {sample_snapshot} to see it again)" if sample_snapshot else ""
    return f"Started from empty tables: the sample {', '.join(emptied)} are not in this snapshot{where}."


def missing_inputs(catalog: Catalog, table: str, columns: Iterable[str], status_as_of: date | None = None) -> list[str]:
    """For each column of `table` that a file does not give and KPIs read: 'No amount column: Average deal size
    and Lead-to-revenue will show no data.'"""
    given = frozenset(columns)
    loaded = {table: Loaded(given, status_as_of)}
    by_id = {k.id: k for k in catalog.kpis}
    lacking: dict[str, list[str]] = {}
    for kpi in catalog.kpis:
        if kpi.is_measure:
            continue
        for missing_table, column in missing_columns(kpi, by_id, loaded):
            if missing_table == table:
                lacking.setdefault(column, []).append(kpi.label)
    return [f"No {column} column: {_and(labels)} will show no data." for column, labels in
            sorted(lacking.items(), key=lambda item: TABLES[table].column_names.index(item[0]))]


def currency_warning(catalog: Catalog, currency: str | None) -> str | None:
    """What a file's currency means when it is not the catalog's: shown as it is, never converted."""
    if currency is None or currency == catalog.currency:
        return None
    found = currency.split(",")
    if len(found) > 1:
        return (f"Amounts in several currencies ({', '.join(found)}): KPIs add them up as they are, without "
                "converting; each such KPI says so.")
    return (f"Amounts are in {found[0]}, the KPI catalog counts in {catalog.currency}: the KPIs built on them are "
            f"shown in {found[0]}, not converted (set 'currency: {found[0]}' in the catalog if all your data is).")


def currency_assumed(catalog: Catalog, table: str, columns: Iterable[str], currency: str | None) -> str | None:
    """Where a file's amounts show no currency at all: which one they are taken to be in."""
    if currency is not None or not any((table, c) in MONEY for c in columns):
        return None
    return (f"The amounts show no currency sign or code: they are taken to be in {catalog.currency}, the KPI "
            "catalog's currency (set `currency:` in your catalog if they are not).")


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def report_text(report: FileReport, catalog: Catalog, problems: int = 20) -> str:
    """An import's report on one file, as the command line prints it: counts, the first rejected values,
    warnings, and the KPIs the file cannot feed."""
    lines = [f"{printable(report.file)} -> {report.table} ({report.mode.value}): {report.imported:,} row(s) "
             f"imported, {report.rejected:,} rejected."]
    for problem in report.problems[:problems]:  # cells and names as text: no terminal escape reaches the screen
        lines.append(f"  row {problem.row}, column '{printable(problem.column)}': '{printable(str(problem.value))}' "
                     f"{problem.reason}")
    if len(report.problems) > problems:
        lines.append(f"  ... and {len(report.problems) - problems} more problem(s).")
    lines += [f"  warning: {w}" for w in report.warnings]
    lines += [f"  warning: {w}" for w in [currency_warning(catalog, report.currency)] if w]
    lines += [f"  note: {n}" for n in [currency_assumed(catalog, report.table, report.columns, report.currency)] if n]
    lines += [f"  note: {line}" for line in missing_inputs(catalog, report.table, report.columns, report.as_of)]
    return "\n".join(lines)
