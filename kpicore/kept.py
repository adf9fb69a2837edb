"""KPI values kept in the database: computed once per snapshot, catalog, grain and filters, then read back.

A snapshot never changes once committed, and compute reads nothing but the snapshot's tables, the catalog, the
grain and the filters (no clock), so its values can be kept beside the data: a server restart, another app
process or the next visitor reads them in milliseconds instead of computing them again (seconds at a million
leads, tens of seconds at ten million). The key also holds a fingerprint of the code that computes them and of
DuckDB's version, so values computed by other code are never read back. Only the latest snapshots' values are
kept (pruned when the database is opened).
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from kpicore.catalog import Catalog
from kpicore.compute import KpiValues, compute
from kpicore.coverage import Coverage, Engine, Loaded
from kpicore.filters import NO_FILTERS, Filters
from kpicore.periods import Grain, Period

TABLE = "kept_values"


# the modules whose code decides the values (not the words pages and the command line wrap around them)
COMPUTING = ("catalog", "compute", "coverage", "filters", "kept", "lineage", "model", "periods", "sql", "validate")
KEEP_SNAPSHOTS = 10  # the values of the latest this many snapshots are kept; older ones are computed when asked


def _code_fingerprint() -> str:
    """A fingerprint of the code that computes the values and of the DuckDB that runs it: values computed by any
    other version are never read back."""
    digest = hashlib.sha256(duckdb.__version__.encode())
    folder = Path(__file__).resolve().parent
    for name in COMPUTING:
        digest.update(name.encode())
        digest.update((folder / f"{name}.py").read_bytes())
    return digest.hexdigest()[:16]


CODE = _code_fingerprint()


def create(conn: Engine) -> None:
    """The table of kept values (once per database), with only the values of the latest KEEP_SNAPSHOTS snapshots.
    Values of other code versions stay (two versions may share the file for a while, as during an upgrade) until
    their snapshot is no longer among the latest."""
    conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (snapshot_id INTEGER, catalog VARCHAR, code VARCHAR, "
                 "grain VARCHAR, filters VARCHAR, payload VARCHAR, seconds DOUBLE, "
                 "PRIMARY KEY (snapshot_id, catalog, code, grain, filters))")
    conn.execute(f"DELETE FROM {TABLE} WHERE snapshot_id NOT IN (SELECT id FROM snapshots ORDER BY id DESC "
                 f"LIMIT {KEEP_SNAPSHOTS})")


def values(conn: Engine, catalog: Catalog, snapshot_id: int, schema: str, grain: Grain,
           filters: Filters = NO_FILTERS, loaded: Mapping[str, Loaded] | None = None,
           engine: Engine | None = None, keep: bool = True) -> KpiValues:
    """The KPI values of a snapshot: read back if kept, else computed (by `engine`, where the snapshot's tables are
    a warehouse's) and kept in `conn` (unless not to `keep`: values of an earlier warehouse reading computed now,
    from the warehouse as it is now, are not that reading's)."""
    key = _key(catalog, snapshot_id, grain, filters)
    if (found := _payload(conn, key)) is not None:
        return from_json(found)
    started = time.perf_counter()
    computed = compute(engine or conn, catalog, schema, grain, filters, loaded)
    if not keep:
        return computed
    key |= {"payload": to_json(computed), "seconds": time.perf_counter() - started}
    conn.execute(f"INSERT INTO {TABLE} VALUES ($snapshot, $catalog, $code, $grain, $filters, $payload, $seconds) "
                 "ON CONFLICT DO NOTHING", key)  # another session may have kept the same values meanwhile
    return computed


def views(options: Mapping[str, list[str]], grains: list[Grain], filters: bool) -> list[tuple[Grain, Filters]]:
    """The views `precompute` keeps: each grain unfiltered, and with `filters` each single value of each filter
    dimension (what one click on a filter asks for)."""
    single = [Filters(((dimension, (value,)),)) for dimension, values in options.items() for value in values]
    return [(grain, chosen) for grain in grains for chosen in [NO_FILTERS, *(single if filters else [])]]


def is_kept(conn: Engine, catalog: Catalog, snapshot_id: int, grain: Grain, filters: Filters) -> bool:
    """Whether the values of this view are kept already."""
    return _payload(conn, _key(catalog, snapshot_id, grain, filters)) is not None


def _payload(conn: Engine, key: dict[str, object]) -> str | None:
    """The kept JSON of a view, if any."""
    found = conn.execute(f"SELECT payload FROM {TABLE} WHERE snapshot_id = $snapshot AND catalog = $catalog "
                         "AND code = $code AND grain = $grain AND filters = $filters", key).fetchone()
    return None if found is None else found[0]


def _key(catalog: Catalog, snapshot_id: int, grain: Grain, filters: Filters) -> dict[str, object]:
    return {"snapshot": snapshot_id, "catalog": catalog.fingerprint, "code": CODE, "grain": grain.value,
            "filters": json.dumps(filters.chosen)}


def to_json(values: KpiValues) -> str:
    """KpiValues as JSON text (periods by their place in `periods`)."""
    place = values.positions

    def days(c: Coverage | None) -> list[Any] | None:
        return None if c is None else [c.first.isoformat(), c.last.isoformat(), c.status]

    return json.dumps({
        "grain": values.grain.value,
        "periods": [p.start.isoformat() for p in values.periods],
        "values": values.values,
        "as_of": {k: None if d is None else d.isoformat() for k, d in values.as_of.items()},
        "maturing": {k: sorted(place[p] for p in ps) for k, ps in values.maturing.items()},
        "notes": values.notes,
        "coverage": {k: days(c) for k, c in values.coverage.items()},
        "partial": {k: sorted(place[p] for p in ps) for k, ps in values.partial.items()},
        "tables": {k: days(c) for k, c in values.tables.items()},
        "currencies": values.currencies,
        "filters": values.filters.chosen,
        "errors": values.errors,
    })


def from_json(text: str) -> KpiValues:
    """KpiValues from `to_json`'s text."""
    data = json.loads(text)
    grain = Grain(data["grain"])
    periods = tuple(Period(date.fromisoformat(d), grain) for d in data["periods"])

    def days(c: list[Any] | None) -> Coverage | None:
        return None if c is None else Coverage(date.fromisoformat(c[0]), date.fromisoformat(c[1]), c[2])

    def series(found: dict[str, list[float | None]]) -> dict[str, tuple[float | None, ...]]:
        return {k: tuple(v) for k, v in found.items()}

    return KpiValues(
        grain, periods, series(data["values"]),
        {k: None if d is None else date.fromisoformat(d) for k, d in data["as_of"].items()},
        {k: frozenset(periods[i] for i in ps) for k, ps in data["maturing"].items()},
        data["notes"],
        {k: days(c) for k, c in data["coverage"].items()},
        {k: frozenset(periods[i] for i in ps) for k, ps in data["partial"].items()},
        {k: c for k, v in data["tables"].items() if (c := days(v)) is not None},
        {k: tuple(v) for k, v in data["currencies"].items()},
        Filters(tuple((d, tuple(v)) for d, v in data["filters"])),
        series(data["errors"]),
    )
