"""SQL building blocks shared by every query kpicore writes (kept portable for other engines)."""
from __future__ import annotations

from collections.abc import Callable

Bind = Callable[[object], str]  # binds a value as a named parameter and returns its placeholder


def quote(name: str) -> str:
    """A SQL identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'


def percentile(expr: str, fraction: float) -> str:
    """The one building block for medians and percentiles (standard SQL)."""
    return f"PERCENTILE_CONT({fraction!r}) WITHIN GROUP (ORDER BY {expr})"


def materialized(name: str, query: str) -> str:
    """A common table expression computed once however often the statement reads it."""
    return f"{name} AS MATERIALIZED ({query})"


def period_start(expr: str, unit: str) -> str:
    """The first day of the week (ISO, Monday), month, quarter or year containing a date or timestamp, as a DATE."""
    return f"CAST(date_trunc('{unit}', {expr}) AS DATE)"


def day(expr: str) -> str:
    """The calendar day of a date or timestamp, as a DATE."""
    return f"CAST({expr} AS DATE)"


def month_number(expr: str) -> str:
    """A month as a whole number that counts months (year * 12 + month): months apart differ by their distance."""
    return f"(EXTRACT(YEAR FROM {expr}) * 12 + EXTRACT(MONTH FROM {expr}))"


def seconds_between(start: str, end: str) -> str:
    """The seconds from one timestamp to another, as a DOUBLE (sqlglot writes each engine's difference)."""
    return f"CAST(date_diff('second', {start}, {end}) AS DOUBLE)"


def days(count: int) -> str:
    """An interval of whole days (a number from the catalog, never a user's value)."""
    return f"INTERVAL '{int(count)}' DAY"


class Params(dict[str, object]):
    """The named parameters of one statement, collected while its SQL is written."""

    def bind(self, value: object) -> str:
        """Add `value` as the next parameter and return its placeholder."""
        name = f"p{len(self)}"
        while name in self:
            name += "_"
        self[name] = value
        return f"${name}"
