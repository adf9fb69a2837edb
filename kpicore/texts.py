"""Sentences the app, the command line and reports share, so that they say the same thing."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from kpicore.catalog import Catalog
from kpicore.coverage import Loaded, missing_columns
from kpicore.model import TABLES

SAMPLE_LINE = ("**Sample data**: these are the numbers of a made-up company, to look around. Your own exports "
               "replace them; the sample stays restorable.")
WELCOME_TITLE = "No data yet"
WELCOME_TEXT = (
    "Load the exports of your CRM, marketing, helpdesk or billing tool (CSV, TSV or Excel) on the Data page. "
    f"Each file becomes one of {len(TABLES)} tables ({', '.join(TABLES)}); column names from HubSpot, Salesforce, "
    "Pipedrive, Zendesk, Stripe and others are recognised, and an empty template of every table is there too. "
    "Each KPI is shown as soon as the tables it is built on have data."
)
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


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
