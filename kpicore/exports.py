"""Files people download: CSV that a spreadsheet opens safely."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse(value: object) -> object:
    """A cell a spreadsheet will not run as a formula: text starting with = + - @ gets a leading '."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 CSV (with BOM, so Excel reads umlauts and the euro sign) with every text cell defused."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([defuse(h) for h in header])
    for row in rows:
        writer.writerow(["" if v is None else defuse(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
