"""The customer journey: a lead cohort followed from lead to promoter, step by step, and its hand-offs."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum
from typing import Any, NamedTuple

from kpicore.catalog import Catalog, JourneySettings, Kpi
from kpicore.coverage import Engine, Span, table_spans
from kpicore.filters import NO_FILTERS, Filters
from kpicore.periods import Period
from kpicore.sql import Bind, Params, percentile, seconds_between
from kpicore.sql import days as interval

COHORTS = 12  # cohorts shown over time, the selected one last
DEFAULT_SETTINGS = JourneySettings()
NO_LEAD = "no lead (existing base)"
UNKNOWN_CHANNEL = "unknown channel"
TABLES_READ = ("leads", "opportunities", "customers", "surveys")
SOURCES = {("leads", "created_at"), ("leads", "qualified_at"), ("opportunities", "created_at"),
           ("customers", "acquired_at"), ("customers", "churned_at"), ("surveys", "responded_at")}


class Step(Enum):
    """A step of the journey, in order."""

    LEAD = "lead"
    QUALIFIED = "qualified"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"
    RETAINED = "retained"
    PROMOTER = "promoter"

    @property
    def label(self) -> str:
        """How the step is named on screen."""
        return _LABELS[self]

    @property
    def since(self) -> str | None:
        """What the step's median days are measured between (None: not measured)."""
        return _SINCE[self]


_LABELS = {Step.LEAD: "Lead", Step.QUALIFIED: "Qualified (MQL)", Step.OPPORTUNITY: "Opportunity",
           Step.CUSTOMER: "Customer", Step.RETAINED: "Retained 12 months", Step.PROMOTER: "Promoter (NPS 9-10)"}
_SINCE = {Step.LEAD: None, Step.QUALIFIED: "lead created → qualified",
          Step.OPPORTUNITY: "qualified → first deal opened", Step.CUSTOMER: "first deal opened → customer",
          Step.RETAINED: None, Step.PROMOTER: "customer → first promoter answer"}
_REACH = {Step.QUALIFIED: "qualify", Step.OPPORTUNITY: "reach a deal", Step.CUSTOMER: "become customers"}


@dataclass(frozen=True)
class StepCount:
    """One step of a cohort: how many reached it, and whether that number can still grow."""

    step: Step
    label: str  # how the step is named on screen
    owner: str  # the team that owns the step (`customer` for the shared outcome), as the catalog says
    count: int
    previous: int | None
    first: int
    median_days: float | None
    maturing_note: str | None = None

    @property
    def conversion(self) -> float | None:
        """Share of the previous step's count (None for the first step or an empty previous step)."""
        return self.count / self.previous if self.previous else None

    @property
    def from_first(self) -> float | None:
        """Share of the cohort's leads."""
        return self.count / self.first if self.first else None

    @property
    def maturing(self) -> bool:
        """Whether the cohort has not had the time this step needs yet."""
        return self.maturing_note is not None

    def shown(self, share: float | None) -> str:
        """One of the step's shares as a page shows it: '50.0%', '–' when there is none, and '0.0% so far' while
        the step is maturing (its count can still grow, so the share is not final)."""
        if share is None:
            return "–"
        return f"{share:.1%} so far" if self.maturing else f"{share:.1%}"


@dataclass(frozen=True)
class Cohort:
    """The leads created in one period and how far they got."""

    period: Period
    steps: tuple[StepCount, ...]

    def step(self, step: Step) -> StepCount:
        """The count of one step."""
        return next(s for s in self.steps if s.step is step)


@dataclass(frozen=True)
class Journey:
    """The cohort of a period and the cohorts before it, as known on `as_of`."""

    period: Period
    as_of: date
    cohorts: tuple[Cohort, ...]
    notes: tuple[str, ...] = ()
    settings: JourneySettings = JourneySettings()

    @property
    def cohort(self) -> Cohort:
        """The selected period's cohort."""
        return self.cohorts[-1]

    @property
    def steps(self) -> tuple[StepCount, ...]:
        """The selected cohort's steps."""
        return self.cohort.steps

    def latest_mature(self) -> Period | None:
        """The latest period whose cohort has had its full time to become customers (None: none has yet)."""
        return next((c.period for c in reversed(self.cohorts) if not c.step(Step.CUSTOMER).maturing), None)

    @property
    def early_churn_maturing(self) -> bool:
        """Whether some customers won in the period have not had their first 90 days by `as_of`."""
        return self.period.end + timedelta(days=self.settings.early_churn_days) > self.as_of + timedelta(days=1)


class ChannelChurn(NamedTuple):
    """Customers won in a period from one channel and how many of them left within 90 days."""

    channel: str
    customers: int
    churned: int
    share: float


def handoffs(catalog: Catalog) -> tuple[tuple[Kpi, str], ...]:
    """The catalog's hand-off KPIs in journey order, each with the hand-over it measures."""
    by_id = {k.id: k for k in catalog.kpis}
    return tuple((by_id[kpi_id], text) for kpi_id, text in catalog.journey.handoffs if kpi_id in by_id)


def journey(engine: Engine, schema: str, period: Period, filters: Filters = NO_FILTERS,
            as_of: date | None = None, settings: JourneySettings = DEFAULT_SETTINGS) -> Journey:
    """The funnel of the leads created in `period` and in the periods before it, as known on `as_of`, with the
    owners and windows the catalog gives (`settings`)."""
    spans = table_spans(engine, schema, SOURCES)
    if as_of is None:
        as_of = _data_as_of(spans) or period.end - timedelta(days=1)
    first_lead = spans.get(("leads", "created_at"))
    periods = [p for p in (period.shift(n) for n in range(1 - COHORTS, 1))
               if p == period or (first_lead is not None and p.start >= first_lead.first)]
    until = as_of + timedelta(days=1)
    params = Params()
    sql = _journey_sql(schema, periods, until, filters, params.bind, settings.retained_days)
    rows = engine.execute(sql, params).fetchall()
    cohorts = tuple(_cohort(p, row, until, settings) for p, row in zip(periods, rows, strict=True))
    notes = tuple(f"Filters: {note}." for note in filters.unfiltered(set(TABLES_READ)))
    return Journey(period, as_of, cohorts, notes, settings)


def early_churn_by_channel(engine: Engine, schema: str, period: Period, filters: Filters = NO_FILTERS,
                           days: int = DEFAULT_SETTINGS.early_churn_days) -> list[ChannelChurn]:
    """Customers acquired in `period` by the channel of their lead, and how many left within `days`."""
    params = Params()
    bind = params.bind
    customers, leads = filters.relation(schema, "customers", bind), filters.relation(schema, "leads", bind)
    sql = (
        f"SELECT CASE WHEN c.lead_id IS NULL THEN {bind(NO_LEAD)} ELSE COALESCE(l.channel, {bind(UNKNOWN_CHANNEL)}) "
        f"END AS channel, COUNT(*) AS customers, COUNT(CASE WHEN c.churned_at >= c.acquired_at "
        f"AND c.churned_at < c.acquired_at + {interval(days)} THEN 1 END) AS churned "
        f"FROM {customers} AS c LEFT JOIN {leads} AS l ON l.lead_id = c.lead_id "
        f"WHERE c.acquired_at >= CAST({bind(period.start)} AS TIMESTAMP) "
        f"AND c.acquired_at < CAST({bind(period.end)} AS TIMESTAMP) GROUP BY 1"
    )
    found = [ChannelChurn(channel, customers_won, churned, churned / customers_won)
             for channel, customers_won, churned in engine.execute(sql, params).fetchall()]
    return sorted(found, key=lambda c: (-c.share, -c.customers, c.channel))


def _days(start: str, end: str) -> str:
    """The median days between two timestamp columns."""
    return percentile(f"{seconds_between(start, end)} / 86400.0", 0.5)


def _journey_sql(schema: str, periods: list[Period], until: date, filters: Filters, bind: Bind,
                 retained_days: int) -> str:
    """One query: a row per cohort with each step's count, the customers not yet `retained_days` old, and the
    medians."""
    calendar = ", ".join(
        f"({bind(p.label)}, CAST({bind(p.start)} AS TIMESTAMP), CAST({bind(p.end)} AS TIMESTAMP))" for p in periods
    )
    leads, deals = filters.relation(schema, "leads", bind), filters.relation(schema, "opportunities", bind)
    customers, surveys = filters.relation(schema, "customers", bind), filters.relation(schema, "surveys", bind)
    cutoff = f"CAST({bind(until)} AS TIMESTAMP)"
    year = interval(retained_days)
    not_flagged = "NOT COALESCE(w.churned, FALSE)"
    return (
        f"WITH calendar AS (SELECT * FROM (VALUES {calendar}) AS v(period, period_start, period_end)), "
        f"cohort AS (SELECT calendar.period, l.lead_id, l.created_at, "
        f"CASE WHEN l.qualified_at < {cutoff} THEN l.qualified_at END AS qualified_at "
        f"FROM calendar JOIN {leads} AS l "
        f"ON l.created_at >= calendar.period_start AND l.created_at < calendar.period_end), "
        f"opened AS (SELECT o.lead_id, MIN(o.created_at) AS opened_at FROM {deals} AS o "
        f"WHERE o.lead_id IS NOT NULL AND o.created_at < {cutoff} GROUP BY o.lead_id), "
        f"won AS (SELECT c.lead_id, c.customer_id, c.acquired_at, c.churned_at, c.churned, "
        f"ROW_NUMBER() OVER (PARTITION BY c.lead_id ORDER BY c.acquired_at, c.customer_id) AS nth "
        f"FROM {customers} AS c WHERE c.lead_id IS NOT NULL AND c.acquired_at < {cutoff}), "
        f"promoted AS (SELECT w.customer_id, MIN(s.responded_at) AS promoted_at FROM won AS w "
        f"JOIN {surveys} AS s ON s.customer_id = w.customer_id AND s.responded_at >= w.acquired_at "
        f"WHERE w.nth = 1 AND s.score >= 9 AND s.responded_at < {cutoff} GROUP BY w.customer_id), "
        f"path AS (SELECT cohort.*, opened.opened_at, w.acquired_at, promoted.promoted_at, "
        f"CASE WHEN w.acquired_at + {year} < {cutoff} AND (w.churned_at >= w.acquired_at + {year} "
        f"OR (w.churned_at IS NULL AND {not_flagged})) THEN 1 END AS retained, "
        f"CASE WHEN w.acquired_at + {year} >= {cutoff} AND (w.churned_at IS NULL OR w.churned_at >= {cutoff}) "
        f"AND {not_flagged} THEN 1 END AS undecided "
        f"FROM cohort LEFT JOIN opened ON opened.lead_id = cohort.lead_id "
        f"LEFT JOIN won AS w ON w.lead_id = cohort.lead_id AND w.nth = 1 "
        f"LEFT JOIN promoted ON promoted.customer_id = w.customer_id) "
        f"SELECT calendar.period, COUNT(p.lead_id), COUNT(p.qualified_at), COUNT(p.opened_at), COUNT(p.acquired_at), "
        f"COUNT(p.retained), COUNT(p.promoted_at), COUNT(p.undecided), "
        f"{_days('p.created_at', 'p.qualified_at')}, {_days('p.qualified_at', 'p.opened_at')}, "
        f"{_days('p.opened_at', 'p.acquired_at')}, {_days('p.acquired_at', 'p.promoted_at')} "
        f"FROM calendar LEFT JOIN path AS p ON p.period = calendar.period "
        f"GROUP BY calendar.period, calendar.period_start ORDER BY calendar.period_start"
    )


def _cohort(period: Period, row: tuple[Any, ...], until: date, settings: JourneySettings) -> Cohort:
    """A cohort from its query row."""
    _, leads, qualified, opportunity, customer, retained, promoter, undecided, *medians = row
    counts = dict(zip(Step, (leads, qualified, opportunity, customer, retained, promoter), strict=True))
    days = dict(zip((Step.QUALIFIED, Step.OPPORTUNITY, Step.CUSTOMER, Step.PROMOTER), medians, strict=True))
    notes = _maturing_notes(period, until, customer, undecided, settings)
    steps, previous = [], None
    for step in Step:
        label = retained_label(settings.retained_days) if step is Step.RETAINED else step.label
        steps.append(StepCount(step, label, settings.owner(step.value), counts[step], previous, leads,
                               days.get(step), notes.get(step)))
        previous = counts[step]
    return Cohort(period, tuple(steps))


def _maturing_notes(period: Period, until: date, customers: int, undecided: int,
                    settings: JourneySettings) -> dict[Step, str]:
    """Why a step's count can still grow, for the steps the cohort has not had enough time for."""
    age = (until - period.end).days
    notes = {Step(step): f"Leads get {days} days after their period to {_REACH[Step(step)]}; the {period.label} "
                         f"leads have had {max(age, 0)}."
             for step, days in settings.settle_days if age < days}
    if Step.CUSTOMER in notes:
        notes[Step.RETAINED] = notes[Step.PROMOTER] = "The cohort can still bring new customers."
    elif undecided:
        young = f"{undecided} of the cohort's {customers} customers are not {_age(settings.retained_days)} old yet"
        notes[Step.RETAINED] = f"{young} and may still be retained."
        notes[Step.PROMOTER] = f"{young} and may still answer as promoters."
    return notes


def retained_label(days: int) -> str:
    """The name of the retained step for a retention window."""
    return f"Retained {_age(days)}"


def _age(days: int) -> str:
    """A retention window in words: 12 months, whole years, or days."""
    if days == 365:
        return "12 months"
    return f"{days // 365} years" if days % 365 == 0 else f"{days} days"


def _data_as_of(spans: dict[tuple[str, str], Span]) -> date | None:
    """The day through which every table the journey reads is current (its stalest table's latest day)."""
    latest: dict[str, date] = {}
    for (table, _), span in spans.items():
        latest[table] = max(latest.get(table, span.last), span.last)
    return min(latest.values()) if latest else None
