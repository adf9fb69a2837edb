"""Templates and one-screen descriptions of the canonical tables, from the data model the importer uses."""
from __future__ import annotations

from kpicore.exports import csv_bytes
from kpicore.model import FALSE_WORDS, TABLES, TRUE_WORDS, VOCABULARIES, ColumnType

_TYPE_WORDS = {
    ColumnType.ID: "an id (text)",
    ColumnType.TIMESTAMP: "a date or date and time: 2026-10-31, 31.10.2026 14:00, 10/31/2026",
    ColumnType.MONTH: "a month: 2026-10, 2026-10-01 or 10/2026",
    ColumnType.NUMBER: "a number: 1234.56, 1.234,56, €1,234 or 12%",
    ColumnType.INTEGER: "a whole number",
    ColumnType.TEXT: "text",
    ColumnType.BOOLEAN: f"yes or no ({', '.join(TRUE_WORDS[:4])} / {', '.join(FALSE_WORDS[:4])})",
}


def template_csv(table: str) -> bytes:
    """An empty CSV with the table's canonical column names."""
    return csv_bytes(TABLES[table].column_names, [])


def describe(table: str) -> str:
    """What a row of the table is and what each column holds, as Markdown."""
    spec = TABLES[table]
    lines = [f"**{spec.name}**: {spec.description}", "",
             "| column | required | holds | also recognised as |", "|---|---|---|---|"]
    for column in spec.columns:
        holds = _TYPE_WORDS[column.type]
        if column.values:
            holds = f"one of {', '.join(VOCABULARIES[column.values])}"
        if column.bounds:
            holds += f" from {column.bounds[0]:g} to {column.bounds[1]:g}"
        aliases = ", ".join(column.aliases[:5])
        lines.append(f"| `{column.name}` | {'yes' if column.required else ''} | {column.description} "
                     f"({holds}) | {aliases} |")
    if spec.key:
        lines += ["", f"`{spec.key}` identifies a row: appending a file replaces the rows with the same "
                      f"`{spec.key}` and adds the others."]
    return "\n".join(lines)
