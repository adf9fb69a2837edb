"""Filters by marketing channel, customer segment and region, applied to every table that can carry them."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kpicore.sql import Bind, quote

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
        which the filter leaves out: 'spend: 36 rows have no marketing channel'."""
        found: dict[str, list[str]] = {}
        for dimension, _ in self.chosen:
            source_table, column = SOURCE[dimension]
            for table, path in DIMENSIONS[dimension].items():
                unknown = self._unknown(schema, path, source_table, column)
                count = engine.execute(  # type: ignore[attr-defined]
                    f"SELECT COUNT(*) FROM {quote(schema)}.{quote(table)} AS f WHERE {unknown}").fetchone()[0]
                if count:
                    found.setdefault(table, []).append(f"{count:,} {table} rows have no {LABELS[dimension]}")
        return {table: "; ".join(parts) + " and are left out" for table, parts in found.items()}

    @staticmethod
    def _unknown(schema: str, path: str, source_table: str, column: str) -> str:
        """SQL for a row of `f` whose value of the dimension cannot be told."""
        source = f"{quote(schema)}.{quote(source_table)}"
        if path == "own":
            return f"f.{quote(column)} IS NULL"
        if path == "lead":
            return f"f.lead_id IS NULL OR f.lead_id NOT IN (SELECT lead_id FROM {source} WHERE {quote(column)} " \
                   "IS NOT NULL AND lead_id IS NOT NULL)"
        if path == "customer":
            return f"f.customer_id IS NULL OR f.customer_id NOT IN (SELECT customer_id FROM {source} WHERE " \
                   f"{quote(column)} IS NOT NULL AND customer_id IS NOT NULL)"
        customers = f"{quote(schema)}.{quote('customers')}"
        return (f"f.customer_id IS NULL OR f.customer_id NOT IN (SELECT c.customer_id FROM {customers} AS c JOIN "
                f"{source} AS l ON l.lead_id = c.lead_id WHERE l.{quote(column)} IS NOT NULL "
                "AND c.customer_id IS NOT NULL)")

    def unfiltered(self, tables: set[str]) -> list[str]:
        """Notes for tables that cannot be filtered by a chosen dimension."""
        return [f"{table} has no {LABELS[dimension]}, so it is not filtered by it"
                for dimension, _ in self.chosen for table in sorted(tables) if table not in DIMENSIONS[dimension]]

    def relation(self, schema: str, table: str, bind: Bind) -> str:
        """The table as SQL: the plain relation, or a subquery keeping only the chosen values."""
        plain = f"{quote(schema)}.{quote(table)}"
        conditions = [self._condition(schema, table, d, v, bind) for d, v in self.chosen if table in DIMENSIONS[d]]
        if not conditions:
            return plain
        return f"(SELECT f.* FROM {plain} AS f WHERE {' AND '.join(conditions)})"

    @staticmethod
    def _condition(schema: str, table: str, dimension: str, values: tuple[str, ...], bind: Bind) -> str:
        keep = f"IN ({', '.join(bind(v) for v in values)})"
        source_table, column = SOURCE[dimension]
        source = f"{quote(schema)}.{quote(source_table)}"
        path = DIMENSIONS[dimension][table]
        if path == "own":
            return f"f.{quote(column)} {keep}"
        if path == "lead":
            return f"f.lead_id IN (SELECT lead_id FROM {source} WHERE {quote(column)} {keep})"
        if path == "customer":
            return f"f.customer_id IN (SELECT customer_id FROM {source} WHERE {quote(column)} {keep})"
        customers = f"{quote(schema)}.{quote('customers')}"
        return (f"f.customer_id IN (SELECT c.customer_id FROM {customers} AS c JOIN {source} AS l "
                f"ON l.lead_id = c.lead_id WHERE l.{quote(column)} {keep})")


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
