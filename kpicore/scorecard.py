"""Scorecards: each KPI's value against its comparison and target, and each team's score."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from enum import Enum

from kpicore.catalog import CUSTOMER, Catalog, Direction, Kpi, Unit
from kpicore.compute import KpiValues
from kpicore.periods import Comparison, Period

TREND_PERIODS = 12


class Status(Enum):
    """Where a KPI (or a score) stands against its target."""

    ON_TRACK = "on track"
    AT_RISK = "at risk"
    OFF_TRACK = "off track"
    MATURING = "maturing"
    PARTIAL = "partial period"
    UNTARGETED = "no target for this slice"  # a company-wide count or sum in a filtered view
    STATUS_ONLY = "status-only"  # a share as of a status-only export's day, not a rate of the period
    NO_DATA = "no data"

    @property
    def judged(self) -> bool:
        """Whether the status says something about the target (and counts in a score)."""
        return self in (Status.ON_TRACK, Status.AT_RISK, Status.OFF_TRACK)


@dataclass(frozen=True)
class TrendPoint:
    """One period of a KPI's trend."""

    period: Period
    value: float | None
    comparison: float | None
    maturing: bool
    partial: bool = False  # the data covers only part of the period


@dataclass(frozen=True)
class KpiResult:
    """A KPI in the selected period, as a scorecard shows it."""

    kpi: Kpi
    period: Period
    value: float | None
    comparison_period: Period
    comparison: float | None
    target: float | None
    attainment: float | None
    status: Status
    as_of: date | None
    trend: tuple[TrendPoint, ...]
    note: str | None = None  # what the data allows: no data, partial period, status-only, filters, currency
    currency: str | None = "EUR"  # the currency of its money values (None: its inputs mix currencies)
    cohort: str | None = None  # the cohort shown instead of a maturing one

    @property
    def change(self) -> float | None:
        """Value minus comparison value."""
        if self.value is None or self.comparison is None:
            return None
        return self.value - self.comparison

    @property
    def relative_change(self) -> float | None:
        """Change as a fraction of the comparison value (None when that is zero)."""
        if self.change is None or not self.comparison:
            return None
        return self.change / abs(self.comparison)

    @property
    def improved(self) -> bool | None:
        """Whether the change went in the KPI's good direction (None without change or direction)."""
        if self.change is None or self.change == 0 or self.kpi.direction is None:
            return None
        return (self.change > 0) == (self.kpi.direction is Direction.UP)

    @property
    def mature_trend(self) -> tuple[float, ...]:
        """The trend's values of whole periods and mature cohorts, oldest first: what a sparkline draws."""
        return tuple(p.value for p in self.trend if p.value is not None and not p.partial and not p.maturing)

    @property
    def line_improved(self) -> bool | None:
        """Whether the line of mature values goes the KPI's good way: the least-squares slope over the line's span,
        compared with 1% of its mean level (less is flat: None, as without a direction or two values)."""
        values = self.mature_trend
        if len(values) < 2 or self.kpi.direction is None:
            return None
        n = len(values)
        mean_x, mean_y = (n - 1) / 2, sum(values) / n
        slope = (sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
                 / sum((i - mean_x) ** 2 for i in range(n)))
        if abs(slope * (n - 1)) < 0.01 * abs(mean_y) or slope == 0:
            return None
        return (slope > 0) == (self.kpi.direction is Direction.UP)


@dataclass(frozen=True)
class TeamScore:
    """A team's score: its own KPIs and the shared customer outcomes, weighted."""

    team: str
    label: str
    score: float | None
    own_score: float | None
    customer_score: float | None
    status: Status
    kpis: tuple[KpiResult, ...]

    @property
    def untargeted(self) -> int:
        """Own KPIs left out of the score because a filtered view has no target for them."""
        return sum(1 for r in self.kpis if r.status is Status.UNTARGETED)


@dataclass(frozen=True)
class Scorecard:
    """Everything the Overview shows for one period."""

    period: Period
    comparison: Comparison
    outcomes: tuple[KpiResult, ...]
    teams: tuple[TeamScore, ...]


def attainment(kpi: Kpi, value: float | None, target: float | None) -> float | None:
    """How far the value reaches the target: 1.0 means exactly on target (not capped)."""
    if value is None or target is None or kpi.direction is None:
        return None
    if kpi.direction is Direction.UP:
        return value / target if target else None
    if value <= 0:
        return float("inf")
    return target / value


def status_of(kpi: Kpi, reached: float | None, maturing: bool, partial: bool = False,
              status_only: bool = False) -> Status:
    """On track at 100% of target or more, at risk down to the KPI's at_risk band, else off track; a cohort
    still maturing, a period the data covers only in part, or a share taken from a status-only export (everybody
    who ever churned, not the period's churn) is not judged."""
    if maturing:
        return Status.MATURING
    if partial:
        return Status.PARTIAL
    if status_only and reached is not None:
        return Status.STATUS_ONLY
    if reached is None or kpi.target is None:
        return Status.NO_DATA
    if reached >= 1:
        return Status.ON_TRACK
    return Status.AT_RISK if reached >= kpi.target.at_risk else Status.OFF_TRACK


def kpi_result(kpi: Kpi, values: KpiValues, period: Period, comparison: Comparison,
               currency: str = "EUR") -> KpiResult:
    """One KPI in a period: value, comparison, attainment, status, as-of date and trend.

    A cohort KPI whose cohort is still maturing reports the latest mature cohort instead and
    says so in its note; with no mature cohort at all it reports the value so far as maturing.
    A period the data covers only in part is shown but not judged, and is never a comparison. `currency` is the
    catalog's: the money of a KPI whose data shows another currency is in that one, and says so (not converted).
    """
    maturing = values.maturing.get(kpi.id, frozenset())
    partial = values.partial.get(kpi.id, frozenset())
    shown, cohort = period, None
    if period in maturing:
        mature = [p for p in values.periods if p <= period and p not in maturing]
        if mature:
            shown = mature[-1]
            cohort = (f"Cohort of {shown.label}, the latest that has had its full window "
                      f"({period.label} is still maturing).")
    before = shown.compared(comparison)
    value = values.value(kpi.id, shown)
    sliced = bool(values.filters) and kpi.sliced  # a company total: a slice only has a target of its own
    single = values.filters.single()
    target = (kpi.target_for(values.grain.value, single) if single else None) if sliced \
        else kpi.target_for(values.grain.value)
    reached = attainment(kpi, value, target)
    untargeted = sliced and target is None and kpi.target is not None and value is not None
    trend = tuple(
        TrendPoint(p, values.value(kpi.id, p), values.whole(kpi.id, p.compared(comparison)), p in maturing,
                   p in partial)
        for p in [p for p in values.periods if p <= period][-TREND_PERIODS:]
    )
    return KpiResult(
        kpi=kpi,
        period=shown,
        value=value,
        comparison_period=before,
        comparison=values.whole(kpi.id, before),
        target=target,
        attainment=reached,
        status=Status.UNTARGETED if untargeted else
        status_of(kpi, reached, shown in maturing, shown in partial,
                  bool((covered := values.coverage.get(kpi.id)) and covered.status)),
        as_of=values.as_of.get(kpi.id),
        trend=trend,
        note=_joined(values.notes.get(kpi.id), _coverage_note(values, kpi.id, shown, value, before),
                     _currency_note(values.currencies.get(kpi.id, ()), currency),
                     UNTARGETED_NOTE if untargeted else None),
        currency=_currency(values.currencies.get(kpi.id, ()), currency),
        cohort=cohort,
    )


UNTARGETED_NOTE = ("Its target is for the whole company, not for this slice: not judged. A catalog target for the "
                   "slice (target.slices) would judge it.")


def _currency(found: tuple[str, ...], catalog: str) -> str | None:
    if not found:
        return catalog
    return found[0] if len(found) == 1 else None


def _currency_note(found: tuple[str, ...], catalog: str) -> str | None:
    if len(found) > 1:
        return f"Mixes amounts in {' and '.join(found)}: they are added and divided as they are, not converted."
    if found and found[0] != catalog:
        return f"In {found[0]}, the currency of its data (the catalog counts in {catalog}); not converted."
    return None


def _coverage_note(values: KpiValues, kpi_id: str, period: Period, value: float | None,
                   before: Period) -> str | None:
    """Why a period has no value, or only a partial one, or no comparison, in the words of the KPI's data range."""
    covered = values.coverage.get(kpi_id)
    if covered is None or covered.status:  # a status-only export's note says which period it has
        return None
    since = f"its data covers {covered.first.isoformat()} to {covered.last.isoformat()}"
    partial = values.partial.get(kpi_id, frozenset())
    if period in partial:
        return f"Partial period: {since}, so {period.label} is not scored or compared."
    if value is None and not covered.covers(period):
        return f"No data for {period.label}: {since}."
    if before in partial:
        return f"No change shown: {since}, so {before.label} is a partial period."
    return None


def _joined(*notes: str | None) -> str | None:
    return " ".join(n for n in notes if n) or None


def weighted_attainment(results: tuple[KpiResult, ...], cap: float) -> float | None:
    """Weighted mean of capped attainment over the scored KPIs whose status is judged."""
    judged = [r for r in results if r.kpi.scored and r.status.judged and r.attainment is not None]
    total = sum(r.kpi.weight for r in judged)
    if not total:
        return None
    return sum(r.kpi.weight * min(max(r.attainment, 0.0), cap) for r in judged) / total


def build_scorecard(catalog: Catalog, values: KpiValues, period: Period, comparison: Comparison) -> Scorecard:
    """The customer outcomes and every team's scored KPIs for one period."""
    def results(team: str) -> tuple[KpiResult, ...]:
        return tuple(kpi_result(k, values, period, comparison, catalog.currency) for k in catalog.scored(team))

    outcomes = results(CUSTOMER)
    scoring = catalog.scoring
    customer_score = weighted_attainment(outcomes, scoring.attainment_cap)
    teams = []
    for team in catalog.teams:
        own = results(team.id)
        own_score = weighted_attainment(own, scoring.attainment_cap)
        # a team none of whose own KPIs can be judged has no score: the customer outcomes alone say nothing of it
        score = None if own_score is None else _mix(own_score, customer_score, scoring.team_weight,
                                                    scoring.customer_weight)
        teams.append(TeamScore(team.id, team.label, score, own_score, customer_score,
                               _score_status(score, scoring.at_risk), own))
    return Scorecard(period, comparison, outcomes, tuple(teams))


def _mix(own: float | None, shared: float | None, own_weight: float, shared_weight: float) -> float | None:
    """Weighted mean of the two parts; a part without data leaves the other to stand alone."""
    parts = [(s, w) for s, w in ((own, own_weight), (shared, shared_weight)) if s is not None and w > 0]
    if not parts:
        return None
    return sum(s * w for s, w in parts) / sum(w for _, w in parts)


def _score_status(score: float | None, at_risk: float) -> Status:
    if score is None:
        return Status.NO_DATA
    if score >= 1:
        return Status.ON_TRACK
    return Status.AT_RISK if score >= at_risk else Status.OFF_TRACK



def as_record(result: KpiResult) -> dict[str, object]:
    """A KPI result as plain data (rates as fractions), for JSON, CSV and tables.

    An infinite attainment (a 'down' KPI at zero) has no number in JSON and is written as null."""
    kpi = result.kpi
    return {
        "id": kpi.id,
        "label": kpi.label,
        "team": kpi.team,
        "unit": kpi.unit.value,
        "direction": kpi.direction.value if kpi.direction else None,
        "period": result.period.label,
        "value": result.value,
        "comparison_period": result.comparison_period.label,
        "comparison": result.comparison,
        "change": result.change,
        "target": result.target,
        "attainment": result.attainment if result.attainment is None or math.isfinite(result.attainment) else None,
        "status": result.status.value,
        "as_of": result.as_of.isoformat() if result.as_of else None,
        "currency": result.currency if kpi.unit is Unit.CURRENCY else None,
        "note": _joined(result.cohort, result.note),
    }
