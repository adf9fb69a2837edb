"""Check-ins: a note on one KPI in one period ("campaign X paused on 14.10."), with who wrote it and when.

Check-ins belong to the KPI and the period, not to a snapshot: a new upload keeps them. They are plain text
everywhere they are shown (chart tooltips, tiles, reports), never Markdown or HTML.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from kpicore.catalog import Catalog
from kpicore.coverage import Engine
from kpicore.display import printable
from kpicore.errors import BadParameter
from kpicore.periods import Grain, Period

TABLE = "checkins"
NOTE_LIMIT = 500  # characters: a check-in is a line in a meeting, not a document
AUTHOR_LIMIT = 80


@dataclass(frozen=True)
class CheckIn:
    """One note on a KPI in a period."""

    id: int
    kpi: str
    grain: Grain
    period: str  # the period's label, e.g. 2026-10
    note: str
    author: str
    created_at: datetime

    @property
    def line(self) -> str:
        """'campaign X paused on 14.10. (Ana, 2026-11-03 09:12)': the note as every page and report shows it."""
        return f"{self.note} ({self.author}, {self.created_at:%Y-%m-%d %H:%M})"


def create(conn: Engine) -> None:
    """The table of check-ins (once per database)."""
    conn.execute(f"CREATE SEQUENCE IF NOT EXISTS {TABLE}_id")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY DEFAULT nextval('{TABLE}_id'), "
                 "kpi VARCHAR NOT NULL, grain VARCHAR NOT NULL, period VARCHAR NOT NULL, note VARCHAR NOT NULL, "
                 "author VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL)")


def _clean(text: str, what: str, limit: int) -> str:
    """One line of printable text: control characters (terminal escapes, line breaks) become spaces."""
    cleaned = " ".join(printable(text).split())
    if not cleaned:
        raise BadParameter(f"The check-in's {what} is empty: fill it in.")
    if len(cleaned) > limit:
        raise BadParameter(f"The check-in's {what} has {len(cleaned)} characters; at most {limit} are kept. "
                           "Shorten it.")
    return cleaned


def add(conn: Engine, catalog: Catalog, kpi: str, period: Period, note: str, author: str,
        now: datetime | None = None) -> CheckIn:
    """Store a check-in on a scored KPI of the catalog (BadParameter, saying what to fix, if it cannot be)."""
    known = {k.id for k in catalog.kpis if not k.is_measure}
    if kpi not in known:
        raise BadParameter(f"'{kpi}' is not a KPI of the catalog in use. Use one of: {', '.join(sorted(known))}.")
    text, who = _clean(note, "note", NOTE_LIMIT), _clean(author, "author name", AUTHOR_LIMIT)
    when = (now or datetime.now()).replace(microsecond=0)
    row = conn.execute(f"INSERT INTO {TABLE} (kpi, grain, period, note, author, created_at) VALUES (?, ?, ?, ?, ?, ?) "
                       "RETURNING id", [kpi, period.grain.value, period.label, text, who, when]).fetchone()
    return CheckIn(row[0], kpi, period.grain, period.label, text, who, when)


def remove(conn: Engine, checkin_id: int) -> bool:
    """Delete a check-in; whether there was one with that id."""
    return conn.execute(f"DELETE FROM {TABLE} WHERE id = ? RETURNING id", [checkin_id]).fetchone() is not None


def of_grain(conn: Engine, grain: Grain) -> tuple[CheckIn, ...]:
    """Every check-in at a grain, oldest first (pages pick the KPI's and the period's)."""
    rows = conn.execute(f"SELECT id, kpi, grain, period, note, author, created_at FROM {TABLE} WHERE grain = ? "
                        "ORDER BY created_at, id", [grain.value]).fetchall()
    return tuple(CheckIn(r[0], r[1], Grain(r[2]), r[3], r[4], r[5], r[6]) for r in rows)


def on(found: Iterable[CheckIn], kpi: str | None = None, period: Period | None = None) -> tuple[CheckIn, ...]:
    """The check-ins on a KPI and/or in a period."""
    return tuple(c for c in found if (kpi is None or c.kpi == kpi)
                 and (period is None or (c.grain is period.grain and c.period == period.label)))
