"""The KPI catalog: one definition per KPI, parsed from YAML into typed objects."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from kpicore.errors import CatalogError, CatalogIssue, UnknownTeam

DEFAULT_CATALOG = Path(__file__).with_name("catalog.yaml")
CUSTOMER = "customer"
CUSTOMER_LABEL = "Customer outcome"  # the owner of the shared outcomes, as shown
GRAIN_MONTHS = {"week": 7 / 30.4375, "month": 1.0, "quarter": 3.0, "year": 12.0}


class Unit(Enum):
    """What a KPI value measures."""

    COUNT = "count"
    PERCENT = "percent"
    CURRENCY = "currency"
    DAYS = "days"
    HOURS = "hours"
    SCORE = "score"
    RATIO = "ratio"


class Direction(Enum):
    """Which way is good."""

    UP = "up"
    DOWN = "down"


class Agg(Enum):
    """Aggregations a simple KPI may use."""

    COUNT = "count"
    COUNT_DISTINCT = "count_distinct"
    SUM = "sum"
    AVG = "avg"
    MEDIAN = "median"


class Op(Enum):
    """Comparison operators of a filter condition."""

    EQ = "eq"
    NE = "ne"
    IN = "in"
    NOT_IN = "not_in"
    GT = "gt"
    GE = "ge"
    LT = "lt"
    LE = "le"
    IS_NULL = "is_null"
    NOT_NULL = "not_null"

    @property
    def takes_value(self) -> bool:
        """Whether the condition compares with a value."""
        return self not in (Op.IS_NULL, Op.NOT_NULL)

    @property
    def takes_list(self) -> bool:
        """Whether the value is a list."""
        return self in (Op.IN, Op.NOT_IN)


@dataclass(frozen=True)
class Condition:
    """A filter on one column, e.g. stage = won."""

    column: str
    op: Op
    value: Any = None


@dataclass(frozen=True)
class Simple:
    """An aggregate over one table, bucketed by one time column; with `trailing_months`, over the months up to
    the end of the period (the trailing twelve months of a month, a quarter or a year)."""

    table: str
    time: str
    agg: Agg
    column: str | None = None
    duration: tuple[str, str] | None = None
    where: tuple[Condition, ...] = ()
    trailing_months: int | None = None


@dataclass(frozen=True)
class Stock:
    """Entities active at the start or the end of a period (between a start and an end column), or, with
    `at: left`, active at its start and gone before its end (logo churn: customers won in the period do not
    count)."""

    table: str
    start: str
    end: str
    at: str
    where: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Ratio:
    """One KPI divided by another."""

    numerator: str
    denominator: str


@dataclass(frozen=True)
class Derived:
    """An arithmetic expression of KPIs and catalog parameters."""

    expr: str


@dataclass(frozen=True)
class Side:
    """One end of a conversion: a table and its time column."""

    table: str
    time: str
    where: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Conversion:
    """Share (or value per entity) of a period's cohort that reached a later event within N days.

    With `lookback`, the event must lie in the N days before instead (e.g. tickets whose customer
    was acquired in the 90 days before the ticket). Cohort rows are counted by their table's id.
    """

    source: Side
    target: Side
    key: str
    window_days: int
    value: str | None = None
    lookback: bool = False


@dataclass(frozen=True)
class NetRetention:
    """Value in the period's last month from the keys that paid in a base month, over their value then.

    The base month is the month before the period began (`months` None: the same formula at every grain) or
    the month `months` months before the last one (12: the trailing twelve-month NRR)."""

    table: str
    key: str
    time: str
    value: str
    months: int | None = None


Formula = Simple | Stock | Ratio | Derived | Conversion | NetRetention
FORMULA_KEYS = {
    "simple": Simple, "stock": Stock, "ratio": Ratio, "derived": Derived,
    "conversion": Conversion, "net_retention": NetRetention,
}


@dataclass(frozen=True)
class Target:
    """The monthly target, explicit targets for other grains, the at-risk attainment band, and monthly targets for
    slices of the data (`slices`: (dimension, value, target), e.g. ("channel", "paid_social", 300))."""

    value: float
    at_risk: float = 0.9
    by_grain: tuple[tuple[str, float], ...] = ()
    slices: tuple[tuple[str, str, float], ...] = ()


@dataclass(frozen=True)
class Kpi:
    """One catalog entry; a measure (building block) has no team, direction or target."""

    id: str
    label: str
    description: str
    unit: Unit
    formula: Formula
    team: str | None = None
    direction: Direction | None = None
    target: Target | None = None
    weight: float = 1.0
    counterweights: tuple[str, ...] = ()
    drives: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    line: int | None = None
    scored: bool = True  # False: shown with its status, not counted in team scores (`score: false`)
    mature_days: int | None = None  # a period is maturing until this many days after its end have data

    @property
    def is_measure(self) -> bool:
        """Whether this is a building block rather than a scored KPI."""
        return self.team is None

    @property
    def additive(self) -> bool:
        """Whether the value grows with the period's length (a count or sum of events)."""
        return isinstance(self.formula, Simple) and self.formula.agg in (Agg.COUNT, Agg.SUM)

    @property
    def sliced(self) -> bool:
        """Whether the target is a company total that a slice of the data (one channel, one segment) cannot be
        held to: a count, a sum or an amount of money."""
        return self.additive or self.unit in (Unit.COUNT, Unit.CURRENCY)

    def target_for(self, grain: str, slice_: tuple[str, str] | None = None) -> float | None:
        """The target for a grain: explicit if the catalog gives one, else the monthly one, scaled by the
        period's length for counts and sums and compounded for a net retention over the period. For a slice of
        the data (dimension, value), a count, sum or amount has only the slice's own target, where the catalog
        gives one."""
        if self.target is None:
            return None
        if slice_ is not None and self.sliced:
            own = {(d, v): t for d, v, t in self.target.slices}.get(slice_)
            return None if own is None else own * GRAIN_MONTHS[grain] if self.additive else own
        explicit = dict(self.target.by_grain)
        if grain in explicit:
            return explicit[grain]
        if isinstance(self.formula, NetRetention) and self.formula.months is None:
            return self.target.value ** GRAIN_MONTHS[grain]
        return self.target.value * GRAIN_MONTHS[grain] if self.additive else self.target.value


@dataclass(frozen=True)
class Team:
    """A team that owns KPIs."""

    id: str
    label: str
    description: str = ""


@dataclass(frozen=True)
class Scoring:
    """How a team's score mixes its own KPIs with the shared customer outcomes."""

    team_weight: float = 0.5
    customer_weight: float = 0.5
    attainment_cap: float = 1.2
    at_risk: float = 0.9


JOURNEY_STEPS = ("lead", "qualified", "opportunity", "customer", "retained", "promoter")


@dataclass(frozen=True)
class JourneySettings:
    """How the Journey follows a lead cohort: the team owning each step (`customer` for the outcome), the days
    after a cohort's period until a step's count stops growing, how long a customer must stay to count as
    retained, the KPI whose window the early churn by channel uses, and the hand-off KPIs with the hand-over
    each one measures."""

    owners: tuple[tuple[str, str], ...] = (("lead", "marketing"), ("qualified", "marketing"),
                                           ("opportunity", "sales"), ("customer", "sales"),
                                           ("retained", "service"), ("promoter", CUSTOMER))
    settle_days: tuple[tuple[str, int], ...] = (("qualified", 30), ("opportunity", 60), ("customer", 90))
    retained_days: int = 365
    early_churn: str | None = None
    early_churn_days: int = 90  # the window of the `early_churn` KPI, so that the breakdown adds up to it
    handoffs: tuple[tuple[str, str], ...] = ()

    def settle(self, step: str) -> int:
        """The days after a cohort's period until a step's count stops growing (0: it never grows later)."""
        return dict(self.settle_days).get(step, 0)

    def owner(self, step: str) -> str:
        """The team that owns a step."""
        return dict(self.owners)[step]


@dataclass(frozen=True)
class Catalog:
    """A validated KPI catalog."""

    source: str
    fingerprint: str
    teams: tuple[Team, ...]
    kpis: tuple[Kpi, ...]
    scoring: Scoring = Scoring()
    parameters: dict[str, float] = field(default_factory=dict)
    currency: str = "EUR"
    journey: JourneySettings = JourneySettings()

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def kpi(self, kpi_id: str) -> Kpi:
        """The entry with id `kpi_id`."""
        return next(k for k in self.kpis if k.id == kpi_id)

    def owner_label(self, owner: str) -> str:
        """An owner as shown: a team's label, or "Customer outcome" for the shared outcomes."""
        return CUSTOMER_LABEL if owner == CUSTOMER else self.team(owner).label

    def team(self, team_id: str) -> Team:
        """The team with id `team_id`."""
        for team in self.teams:
            if team.id == team_id:
                return team
        known = ", ".join(t.id for t in self.teams)
        raise UnknownTeam(f"There is no team '{team_id}' in the catalog. Teams: {known}.")

    def scored(self, team_id: str) -> tuple[Kpi, ...]:
        """The scored KPIs owned by a team (`customer` for the shared outcomes)."""
        return tuple(k for k in self.kpis if k.team == team_id)

    @property
    def outcomes(self) -> tuple[Kpi, ...]:
        """The shared customer outcomes."""
        return self.scored(CUSTOMER)

    @property
    def measures(self) -> tuple[Kpi, ...]:
        """Building blocks that other KPIs are computed from."""
        return tuple(k for k in self.kpis if k.is_measure)


class _LineDict(dict):
    """A YAML mapping that remembers its line."""

    line: int | None = None


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser: a tenth of the first view
    """SafeLoader that records line numbers and duplicate keys."""

    duplicates: list[tuple[int, str, _LineDict]]


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    mapping = _LineDict(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            loader.duplicates.append((key_node.start_mark.line + 1, str(key), mapping))
        seen.add(key)
    return mapping


def _owners(document: Any) -> dict[int, str]:
    """Maps id() of every mapping inside a catalog entry to that entry's id."""
    owners: dict[int, str] = {}

    def walk(value: Any, owner: str) -> None:
        if isinstance(value, dict):
            owners[id(value)] = owner
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            return
        for child in children:
            walk(child, owner)

    if isinstance(document, dict):
        for section in ("measures", "kpis"):
            for entry in document.get(section) or []:
                if isinstance(entry, dict):
                    walk(entry, str(entry.get("id", "?")))
    return owners


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def catalog_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The catalog to use: an explicit path, else $KPI_CATALOG, else the shipped one."""
    chosen = explicit or os.environ.get("KPI_CATALOG")
    return Path(chosen) if chosen else DEFAULT_CATALOG


def load_catalog(path: str | os.PathLike[str] | None = None) -> Catalog:
    """Read and validate a catalog file; raise CatalogError listing every problem."""
    source = catalog_path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CatalogError(str(source), [CatalogIssue("catalog", "file", f"cannot be read ({error}).")]) from None
    return parse_catalog(text, str(source))


def parse_catalog(text: str, source: str = "<text>") -> Catalog:
    """Parse and validate catalog YAML text; raise CatalogError listing every problem."""
    from kpicore.validate import build_catalog

    loader = _Loader(text)
    loader.duplicates = []
    try:
        document = loader.get_single_data()
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark else None
        issue = CatalogIssue("catalog", "file", f"is not valid YAML: {error}", line)
        raise CatalogError(source, [issue]) from None
    finally:
        loader.dispose()
    fingerprint = hashlib.sha256(text.encode()).hexdigest()[:16]
    catalog, issues = build_catalog(document, source, fingerprint)
    owners = _owners(document)
    issues = [CatalogIssue(owners.get(id(mapping), "catalog"), key, "is given twice in the same mapping.", line)
              for line, key, mapping in loader.duplicates] + issues
    if issues or catalog is None:
        raise CatalogError(source, issues)
    return catalog
