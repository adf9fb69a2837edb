"""Tensions: a KPI moving in its good direction while a KPI that guards it moves in its bad one."""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import Enum
from statistics import fmean, median

from kpicore.catalog import CUSTOMER, Catalog, Direction, Kpi, Unit
from kpicore.compute import KpiValues
from kpicore.display import format_value
from kpicore.periods import Comparison, Period
from kpicore.scorecard import Status, kpi_result

THRESHOLD = 2.5  # both KPIs must move at least this many noise units, each in its own direction (docs/tensions.md)
HISTORY = 24  # periods before a change whose period-to-period steps give the KPI's noise
MIN_HISTORY = 8  # with fewer complete periods before a change there is no verdict
BASELINE = 12  # periods before the trailing window whose mean the window's mean is compared with
MIN_BASELINE = 6
MIN_WINDOW = 3  # complete periods a trailing window needs (a cohort KPI's newest ones may be maturing)
NOISE_FLOOR = 0.01  # noise is at least 1% of the usual level, so a flat series does not alarm on crumbs
MAD_TO_SIGMA = 1.4826  # median absolute deviation to standard deviation, for Gaussian noise
STATUS_BONUS = {Status.OFF_TRACK: 1.5, Status.AT_RISK: 1.25}


class TensionKind(Enum):
    """How a tension shows: in one period against its comparison, or over the trailing periods."""

    MOVE = "move"
    TREND = "trend"


@dataclass(frozen=True)
class Tension:
    """A KPI that improved while one of its counterweights worsened, both beyond their usual noise."""

    kind: TensionKind
    kpi: Kpi
    counterweight: Kpi
    period: Period
    kpi_change: float  # MOVE: value - comparison value; TREND: trailing mean - mean of the baseline before it
    counterweight_change: float
    severity: float
    at_stake: tuple[Kpi, ...]
    sentence: str
    window: tuple[Period, ...]  # MOVE: (comparison period, period); TREND: the trailing periods
    team_labels: tuple[str, str]  # as shown: "Marketing", "Sales", "Customer outcome"

    @property
    def teams(self) -> tuple[str, str]:
        """The teams owning the KPI and the counterweight."""
        return self.kpi.team or "", self.counterweight.team or ""


@dataclass(frozen=True)
class _Shift:
    """A KPI's change, the value it is measured from, and its size in noise units (positive = good)."""

    change: float
    base: float
    z: float


def find_tensions(catalog: Catalog, values: KpiValues, period: Period, comparison: Comparison,
                  trailing: int = 6) -> list[Tension]:
    """Every tension in `period` (MOVE) and over the `trailing` periods up to it (TREND), most severe first."""
    index = values.periods.index(values.check(period))
    compared = period.compared(comparison)
    before = values.periods.index(compared) if compared in values.periods else None
    windows = {TensionKind.MOVE: (compared, period),
               TensionKind.TREND: values.periods[max(0, index - trailing + 1):index + 1]}
    series = {k.id: _complete(values, k) for k in catalog.kpis if not k.is_measure}
    found: list[Tension] = []
    for kpi in catalog.kpis:
        for counterweight in (catalog.kpi(c) for c in kpi.counterweights):
            if kpi.direction is None or counterweight.direction is None or None in (
                    values.value(kpi.id, period), values.value(counterweight.id, period)):
                continue
            pair = (kpi, counterweight)
            shifts = {TensionKind.MOVE: [_move(k, series[k.id], index, before) for k in pair],
                      TensionKind.TREND: [_trend(k, series[k.id], index, trailing) for k in pair]}
            for kind, (good, bad) in shifts.items():
                if good is None or bad is None or min(good.z, -bad.z) < THRESHOLD:
                    continue
                stake = _at_stake(catalog, kpi, counterweight)
                statuses = {kpi_result(o, values, period, comparison).status for o in stake}
                bonus = max((STATUS_BONUS.get(s, 1.0) for s in statuses), default=1.0)
                sentence = _sentence(catalog, kind, pair, (good, bad), stake, comparison, windows[kind],
                                     min(BASELINE, index - trailing + 1))
                labels = (catalog.owner_label(kpi.team or ""), catalog.owner_label(counterweight.team or ""))
                found.append(Tension(kind, kpi, counterweight, period, good.change, bad.change,
                                     min(good.z, -bad.z) * bonus, stake, sentence, windows[kind], labels))
    return sorted(found, key=lambda t: -t.severity)


def spread_over_teams(found: list[Tension]) -> list[Tension]:
    """The most severe tension of each pair of teams first, then the rest, each part by severity."""
    seen: set[frozenset[str]] = set()
    leaders, rest = [], []
    for tension in found:
        pair = frozenset(tension.teams)
        (rest if pair in seen else leaders).append(tension)
        seen.add(pair)
    return leaders + rest


def as_record(tension: Tension) -> dict[str, object]:
    """A tension as plain data (rates as fractions), for JSON, CSV and tables."""
    return {
        "kind": tension.kind.value,
        "period": tension.period.label,
        "kpi": tension.kpi.id,
        "kpi_label": tension.kpi.label,
        "kpi_team": tension.teams[0],
        "kpi_change": tension.kpi_change,
        "counterweight": tension.counterweight.id,
        "counterweight_label": tension.counterweight.label,
        "counterweight_team": tension.teams[1],
        "counterweight_change": tension.counterweight_change,
        "at_stake": [o.id for o in tension.at_stake],
        "severity": tension.severity,
        "window": [p.label for p in tension.window],
        "sentence": tension.sentence,
    }


def _complete(values: KpiValues, kpi: Kpi) -> list[float | None]:
    """The KPI's values, None where there is no data, the cohort is still maturing or the period is partial."""
    raw = values.values.get(kpi.id) or (None,) * len(values.periods)
    unfinished = values.maturing.get(kpi.id, frozenset()) | values.partial.get(kpi.id, frozenset())
    return [None if p in unfinished else v for p, v in zip(values.periods, raw, strict=True)]


def _spread(numbers: list[float]) -> float:
    """Robust standard deviation: the median absolute deviation, scaled for Gaussian noise."""
    centre = median(numbers)
    return MAD_TO_SIGMA * median(abs(n - centre) for n in numbers)


def _noise(series: list[float | None], end: int) -> float | None:
    """The typical noise of one period's value, from the steps between the complete periods before `end`."""
    history = [v for v in series[max(0, end - HISTORY):end] if v is not None]
    if len(history) < MIN_HISTORY:
        return None
    steps = [b - a for a, b in zip(history, history[1:], strict=False)]
    # A step is the difference of two noisy values: its spread is sqrt(2) times one value's.
    return max(_spread(steps) / math.sqrt(2), NOISE_FLOOR * abs(median(history)), 1e-12)


def _good(kpi: Kpi) -> int:
    """+1 if up is good for the KPI, -1 if down is."""
    return 1 if kpi.direction is Direction.UP else -1


def _move(kpi: Kpi, series: list[float | None], index: int, before: int | None) -> _Shift | None:
    """The change against the comparison period, in units of the noise of such a change."""
    noise = _noise(series, index)
    now, then = series[index], None if before is None else series[before]
    if now is None or then is None or noise is None:
        return None
    return _Shift(now - then, then, _good(kpi) * (now - then) / (noise * math.sqrt(2)))


def _trend(kpi: Kpi, series: list[float | None], index: int, trailing: int) -> _Shift | None:
    """The trailing window's mean against the baseline's mean, in units of the noise of that difference."""
    start = index - trailing + 1
    noise = _noise(series, start) if start >= 0 else None
    window = [v for v in series[max(0, start):index + 1] if v is not None]
    baseline = [v for v in series[max(0, start - BASELINE):max(0, start)] if v is not None]
    if noise is None or len(window) < min(MIN_WINDOW, trailing) or len(baseline) < MIN_BASELINE:
        return None
    # A baseline that wanders more than its steps suggest (slow drift) widens the noise.
    noise = max(noise, _spread(baseline))
    base = fmean(baseline)
    change = fmean(window) - base
    return _Shift(change, base, _good(kpi) * change / (noise * math.sqrt(1 / len(window) + 1 / len(baseline))))


def _reach(catalog: Catalog, start: Kpi) -> dict[str, int]:
    """Every KPI reachable from `start` through `drives`, with its number of steps (0 for `start`)."""
    steps = {start.id: 0}
    queue = deque([start.id])
    while queue:
        current = queue.popleft()
        for driven in catalog.kpi(current).drives:
            if driven not in steps:
                steps[driven] = steps[current] + 1
                queue.append(driven)
    return steps


def _at_stake(catalog: Catalog, kpi: Kpi, counterweight: Kpi) -> tuple[Kpi, ...]:
    """The customer outcomes the pair feeds: the counterweight itself, then those both feed, then the nearest."""
    from_counterweight, from_kpi = _reach(catalog, counterweight), _reach(catalog, kpi)
    far = len(catalog.kpis)

    def rank(outcome: Kpi) -> tuple[bool, bool, int, int]:
        steps = from_counterweight.get(outcome.id, far)
        return steps != 0, outcome.id not in from_kpi or steps == far, steps, from_kpi.get(outcome.id, far)

    reached = [o for o in catalog.outcomes if o.id in from_counterweight or o.id in from_kpi]
    return tuple(sorted(reached, key=rank))


def _owned(catalog: Catalog, kpi: Kpi) -> str:
    """A KPI named with its owner: "Sales' Win rate", "the customer outcome Churn rate"."""
    if kpi.team == CUSTOMER:
        return f"the customer outcome {kpi.label}"
    team = catalog.owner_label(kpi.team or "")
    return f"{team}' {kpi.label}" if team.endswith("s") else f"{team}'s {kpi.label}"


def _amount(kpi: Kpi, shift: _Shift, currency: str) -> str:
    """The size of a change: percentage points for rates, points for scores, else relative to its base."""
    if kpi.unit is Unit.PERCENT:
        return f"{abs(shift.change) * 100:.1f} pp"
    if kpi.unit is Unit.SCORE:
        return f"{abs(shift.change):.0f} pts"
    if not shift.base:
        return format_value(abs(shift.change), kpi.unit, currency)
    return f"{abs(shift.change) / abs(shift.base) * 100:.1f}%"


def _sentence(catalog: Catalog, kind: TensionKind, pair: tuple[Kpi, Kpi], shifts: tuple[_Shift, _Shift],
              stake: tuple[Kpi, ...], comparison: Comparison, window: tuple[Period, ...], baseline: int) -> str:
    """One sentence a team lead understands: what moved, whose KPIs they are, and what the customer risks."""
    (kpi, counterweight), (good, bad), currency = pair, shifts, catalog.currency
    first, second = _owned(catalog, kpi), _owned(catalog, counterweight)
    if kind is TensionKind.MOVE:
        text = (f"{first} {'rose' if good.change > 0 else 'fell'} {_amount(kpi, good, currency)} "
                f"against the {comparison.label} while {second} {'rose' if bad.change > 0 else 'fell'} "
                f"{_amount(counterweight, bad, currency)}")
    else:
        grain = window[-1].grain.value
        text = (f"Over the last {len(window)} {grain}s {first} improved ({_amount(kpi, good, currency)} "
                f"{'higher' if good.change > 0 else 'lower'} than in the {baseline} {grain}s before) "
                f"while {second} worsened ({_amount(counterweight, bad, currency)} "
                f"{'higher' if bad.change > 0 else 'lower'})")
    if stake and stake[0] not in pair:
        text += f": the customer outcome {stake[0].label} is at stake"
    return text[0].upper() + text[1:] + "."
