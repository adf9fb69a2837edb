"""SQL building blocks shared by every query kpicore writes (kept portable for other engines)."""
from __future__ import annotations


def quote(name: str) -> str:
    """A SQL identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'


def percentile(expr: str, fraction: float) -> str:
    """The one building block for medians and percentiles (standard SQL)."""
    return f"PERCENTILE_CONT({fraction!r}) WITHIN GROUP (ORDER BY {expr})"
