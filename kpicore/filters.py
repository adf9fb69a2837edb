"""Filters by marketing channel, customer segment and region, applied to every table that can carry them."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kpicore.sql import Bind, materialized, quote

# How each table reaches a dimension: "own" (it has the column), "lead" (via lead_id), "customer"
# (via customer_id), "customer_lead" (via customer_id -> customers.lead_id). Tables not listed are not filtered.
DIMENSIONS: dict[str, dict[str, str]] = {
    "channel": {"leads": "own", "spend": "own", "opportunities": "lead", "customers": "lead",
                "revenue": "customer_lead", "tickets": "customer_lead", "surveys": "customer_lead",
                "touches": "customer_lead"},
    # Deals are not filtered by segment or region: only won deals name their customer, so a filter
    # would drop every lost deal and turn the win rate into 100%.
    "segment": {"customers": "own", "revenue": "customer", "tickets": "customer", "surveys": "customer",
                "touches": "customer"},
    "region": {"customers": "own", "revenue": "customer", "tickets": "customer", "surveys": "customer",
               "touches": "customer"},
}
SOURCE = {"channel": ("leads", "channel"), "segment": ("customers", "segment"), "region": ("customers", "region")}
LABELS = {"channel": "marketing channel", "segment": "segment", "region": "region"}


@dataclass(frozen=True)
class Filters:
    """Which values of each dimension to keep; no entry means all."""

    chosen: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def from_query_params(cls, params: Mapping[str, str]) -> Filters:
        """Filters from `?channel=paid_social,organic&segment=SMB` (empty values are ignored)."""
        chosen = []
        for dimension in DIMENSIONS:
            values = tuple(sorted({v.strip() for v in params.get(dimension, "").split(",") if v.strip()}))
            if values:
                chosen.append((dimension, values))
        return cls(tuple(chosen))

    def to_query_params(self) -> dict[str, str]:
        """Query parameters that reproduce these filters."""
        return {dimension: ",".join(values) for dimension, values in self.chosen}

    def __bool__(self) -> bool:
        return bool(self.chosen)

    def values(self, dimension: str) -> tuple[str, ...]:
        """The kept values of a dimension (empty: all)."""
        return dict(self.chosen).get(dimension, ())

    def describe(self) -> str:
        """'marketing channel: paid_social · segment: SMB, Mid-Market', or '' without filters."""
        return " · ".join(f"{LABELS[d]}: {', '.join(v)}" for d, v in self.chosen)

    def single(self) -> tuple[str, str] | None:
        """(dimension, value) when the view shows one slice: one value of one dimension."""
        if len(self.chosen) == 1 and len(self.chosen[0][1]) == 1:
            return self.chosen[0][0], self.chosen[0][1][0]
        return None

    def left_out(self, engine: object, schema: str) -> dict[str, str]:
        """For each table a chosen filter applies to, the rows it cannot tell (no channel, no lead behind them),
        which the filter leaves out: 'spend: 36 rows have no marketing channel'.

        One statement: the ids whose value can be told are found once per way of reaching it (a query per table
        joined the leads to the customers again for each, most of a filter change at 10M leads)."""
        known: dict[str, str] = {}
        counts, counted = [], []  # a count per (dimension, table), numbered in order
        for dimension, _ in self.chosen:
            source_table, column = SOURCE[dimension]
            for table, path in DIMENSIONS[dimension].items():
                joined, unknown = self._unknown(schema, dimension, path, source_table, column, known)
                counts.append(f"SELECT {len(counts)} AS n, COUNT(*) AS unknown FROM {quote(schema)}.{quote(table)} "
                              f"AS f{joined} WHERE {unknown}")
                counted.append((dimension, table))
        if not counts:
            return {}
        ctes = ", ".join(materialized(quote(name), query) for name, query in known.items())
        unknown_rows = dict(engine.execute(  # type: ignore[attr-defined]
            f"{'WITH ' + ctes + ' ' if ctes else ''}{' UNION ALL '.join(counts)}").fetchall())
        found: dict[str, list[str]] = {}
        for n, (dimension, table) in enumerate(counted):
            if unknown_rows.get(n):
                found.setdefault(table, []).append(f"{unknown_rows[n]:,} {table} rows have no {LABELS[dimension]}")
        return {table: "; ".join(parts) + " and are left out" for table, parts in found.items()}

    @staticmethod
    def _unknown(schema: str, dimension: str, path: str, source_table: str, column: str,
                 known: dict[str, str]) -> tuple[str, str]:
        """A join and the condition for a row of `f` whose value of the dimension cannot be told (the ids that
        can, where they are a set to look rows up in, go into `known`)."""
        source = f"{quote(schema)}.{quote(source_table)}"
        if path == "own":
            return "", f"f.{quote(column)} IS NULL"
        if path == "lead":  # one lead per id (the store's rule): its own row says whether it has a value
            return (f" LEFT JOIN {source} AS l ON l.lead_id = f.lead_id",
                    f"f.lead_id IS NULL OR l.{quote(column)} IS NULL")
        name = f"known_{dimension}_{path}"
        if path == "customer":
            known[name] = (f"SELECT customer_id FROM {source} WHERE {quote(column)} IS NOT NULL "
                           "AND customer_id IS NOT NULL")
        else:
            customers = f"{quote(schema)}.{quote('customers')}"
            known[name] = (f"SELECT c.customer_id FROM {customers} AS c JOIN {source} AS l ON l.lead_id = c.lead_id "
                           f"WHERE l.{quote(column)} IS NOT NULL AND c.customer_id IS NOT NULL")
        return "", f"f.customer_id IS NULL OR f.customer_id NOT IN (SELECT customer_id FROM {quote(name)})"

    def unfiltered(self, tables: set[str]) -> list[str]:
        """Notes for tables that cannot be filtered by a chosen dimension."""
        return [f"{table} has no {LABELS[dimension]}, so it is not filtered by it"
                for dimension, _ in self.chosen for table in sorted(tables) if table not in DIMENSIONS[dimension]]

    def relation(self, schema: str, table: str, bind: Bind, kept: dict[str, str] | None = None) -> str:
        """The table as SQL: the plain relation, or a subquery keeping only the chosen values.

        With `kept`, the ids a filter keeps (the leads of a channel, their customers...) are written into it once
        (name: query), for the statement to compute once as a common table expression, and read from there by
        name: every atom of a filtered view joined the leads to the customers again (most of a filter change)."""
        plain = f"{quote(schema)}.{quote(table)}"
        conditions = [self._condition(schema, table, d, v, bind, kept) for d, v in self.chosen
                      if table in DIMENSIONS[d]]
        if not conditions:
            return plain
        return f"(SELECT f.* FROM {plain} AS f WHERE {' AND '.join(conditions)})"

    @staticmethod
    def _condition(schema: str, table: str, dimension: str, values: tuple[str, ...], bind: Bind,
                   kept: dict[str, str] | None) -> str:
        source_table, column = SOURCE[dimension]
        path = DIMENSIONS[dimension][table]
        if path == "own":
            return f"f.{quote(column)} IN ({', '.join(bind(v) for v in values)})"
        key = "lead_id" if path == "lead" else "customer_id"
        name = f"kept_{dimension}_{path}"
        if kept is not None and name in kept:
            return f"f.{key} IN (SELECT {key} FROM {quote(name)})"
        keep = f"IN ({', '.join(bind(v) for v in values)})"
        source = f"{quote(schema)}.{quote(source_table)}"
        if path in ("lead", "customer"):
            ids = f"SELECT {key} FROM {source} WHERE {quote(column)} {keep}"
        else:
            customers = f"{quote(schema)}.{quote('customers')}"
            ids = (f"SELECT c.customer_id FROM {customers} AS c JOIN {source} AS l ON l.lead_id = c.lead_id "
                   f"WHERE l.{quote(column)} {keep}")
        if kept is None:
            return f"f.{key} IN ({ids})"
        kept[name] = ids
        return f"f.{key} IN (SELECT {key} FROM {quote(name)})"


NO_FILTERS = Filters()


def options(engine: object, schema: str) -> dict[str, list[str]]:
    """The values each dimension takes in the data, for pickers and for checking URL parameters."""
    found = {}
    for dimension, (table, column) in SOURCE.items():
        rows = engine.execute(  # type: ignore[attr-defined]
            f"SELECT DISTINCT {quote(column)} FROM {quote(schema)}.{quote(table)} "
            f"WHERE {quote(column)} IS NOT NULL ORDER BY 1"
        ).fetchall()
        found[dimension] = [row[0] for row in rows]
    return found


def checked(filters: Filters, known: dict[str, list[str]]) -> tuple[Filters, list[str]]:
    """The filters without values the data does not have, and a notice for each dropped value."""
    notices, kept = [], []
    for dimension, values in filters.chosen:
        unknown = [v for v in values if v not in known.get(dimension, [])]
        for value in unknown:
            notices.append(f"URL parameter {dimension}: '{value}' is not a {LABELS[dimension]} in the data "
                           f"(known: {', '.join(known.get(dimension, [])) or 'none'}). Ignoring it.")
        if remaining := tuple(v for v in values if v not in unknown):
            kept.append((dimension, remaining))
    return Filters(tuple(kept)), notices
