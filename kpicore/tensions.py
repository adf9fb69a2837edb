"""Tensions: a KPI moving in its good direction while a KPI that guards it moves in its bad one."""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import Enum
from statistics import fmean, median

from kpicore.catalog import CUSTOMER, Catalog, Direction, Kpi, Unit
from kpicore.compute import KpiValues
from kpicore.display import format_value, possessive
from kpicore.periods import Comparison, Grain, Period
from kpicore.scorecard import Status, kpi_result

THRESHOLD = 2.5  # both KPIs must move at least this many noise units, each in its own direction (docs/tensions.md)
HISTORY = 36  # at most this many k-step changes before a change give the usual size of a k-step change
MIN_CHANGES = 8  # with fewer complete k-step changes before a change there is no verdict on it
BASELINE = 12  # periods before the trailing window whose mean the window's mean is compared with
MIN_BASELINE = 6
MIN_WINDOW = 3  # complete periods a trailing window needs (a cohort KPI's newest ones may be maturing)
NOISE_FLOOR = 0.01  # one value's noise is at least 1% of the usual level, so a flat series does not alarm on crumbs
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
    severity: float  # the smaller of the two moves in noise units, raised when an outcome at stake is in trouble
    at_stake: tuple[Kpi, ...]
    sentence: str
    window: tuple[Period, ...]  # MOVE: (comparison period, period); TREND: the trailing periods
    team_labels: tuple[str, str]  # as shown: "Marketing", "Sales", "Customer outcome"
    rarity: str = ""  # how unusual the smaller move is: "Even the smaller of the two moves happens about once in ..."

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
    measured: dict[str, dict[TensionKind, _Shift | None]] = {}

    def shifts(kpi: Kpi) -> dict[TensionKind, _Shift | None]:
        """A KPI's move and trend, worked out once however many pairs it is part of."""
        if kpi.id not in measured:
            series = _complete(values, kpi)
            errors = values.errors.get(kpi.id) or (None,) * len(values.periods)
            measured[kpi.id] = {TensionKind.MOVE: _move(kpi, series, errors, index, before),
                                TensionKind.TREND: _trend(kpi, series, errors, index, trailing)}
        return measured[kpi.id]

    found: list[Tension] = []
    for kpi in catalog.kpis:
        for counterweight in (catalog.kpi(c) for c in kpi.counterweights):
            if kpi.direction is None or counterweight.direction is None or None in (
                    values.value(kpi.id, period), values.value(counterweight.id, period)):
                continue
            pair = (kpi, counterweight)
            for kind in TensionKind:
                good, bad = shifts(kpi)[kind], shifts(counterweight)[kind]
                if good is None or bad is None or min(good.z, -bad.z) < THRESHOLD:
                    continue
                stake = _at_stake(catalog, kpi, counterweight)
                statuses = {kpi_result(o, values, period, comparison).status for o in stake}
                bonus = max((STATUS_BONUS.get(s, 1.0) for s in statuses), default=1.0)
                sentence = _sentence(catalog, kind, pair, (good, bad), stake, comparison, windows[kind],
                                     min(BASELINE, index - trailing + 1))
                labels = (catalog.owner_label(kpi.team or ""), catalog.owner_label(counterweight.team or ""))
                weaker = min(good.z, -bad.z)
                found.append(Tension(kind, kpi, counterweight, period, good.change, bad.change, weaker * bonus,
                                     stake, sentence, windows[kind], labels, rarity(kind, weaker, values.grain)))
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
        "rarity": tension.rarity,
        "window": [p.label for p in tension.window],
        "sentence": tension.sentence,
    }


def _complete(values: KpiValues, kpi: Kpi) -> list[float | None]:
    """The KPI's values, None where there is no data, the cohort is still maturing, the period is partial, or
    the value has a sampling error that its few rows cannot measure (an average of two deals)."""
    raw = values.values.get(kpi.id) or (None,) * len(values.periods)
    unfinished = values.maturing.get(kpi.id, frozenset()) | values.partial.get(kpi.id, frozenset())
    errors = values.errors.get(kpi.id)
    unknown = {i for i, e in enumerate(errors) if e is None} if errors else set()
    return [None if p in unfinished or i in unknown else v
            for i, (p, v) in enumerate(zip(values.periods, raw, strict=True))]


def _usual_square(series: list[float | None], end: int, lag: int) -> float | None:
    """The usual square of a `lag`-step change among the complete values before `end` (a robust estimate of
    the variogram: median absolute change, scaled for Gaussian noise, then squared; the usual drift included)."""
    changes = []
    for t in range(end - 1, lag - 1, -1):
        if series[t] is not None and series[t - lag] is not None:
            changes.append(abs(series[t] - series[t - lag]))  # type: ignore[operator]
            if len(changes) == HISTORY:
                break
    if len(changes) < MIN_CHANGES:
        return None
    return (MAD_TO_SIGMA * median(changes)) ** 2


def _level(series: list[float | None], end: int) -> float:
    """The usual size of the values before `end`."""
    history = [abs(v) for v in series[max(0, end - HISTORY):end] if v is not None]
    return median(history) if history else 0.0


def _good(kpi: Kpi) -> int:
    """+1 if up is good for the KPI, -1 if down is."""
    return 1 if kpi.direction is Direction.UP else -1


def _move(kpi: Kpi, series: list[float | None], errors: tuple[float | None, ...], index: int,
          before: int | None) -> _Shift | None:
    """The change against the comparison period, in units of the usual change over as many periods (or of the
    two values' sampling errors, if those are larger)."""
    now, then = series[index], None if before is None else series[before]
    if now is None or then is None or before is None:
        return None
    usual = _usual_square(series, index, index - before)
    if usual is None:
        return None
    sampling = (errors[index] or 0.0) ** 2 + (errors[before] or 0.0) ** 2
    floor = 2 * (NOISE_FLOOR * _level(series, index)) ** 2
    return _Shift(now - then, then, _good(kpi) * (now - then) / math.sqrt(max(usual, sampling, floor, 1e-24)))


def _trend(kpi: Kpi, series: list[float | None], errors: tuple[float | None, ...], index: int,
           trailing: int) -> _Shift | None:
    """The trailing window's mean against the baseline's mean, in units of the noise of that difference.

    The difference is a contrast of the values (weights 1/n on the window, -1/m on the baseline); for a series
    whose k-step changes have the usual square V(k), its variance is -1/2 sum_ij w_i w_j V(|i - j|), which holds
    for autocorrelated and wandering series alike. V comes from the history before the window.
    """
    start = index - trailing + 1
    if start < 1:
        return None
    window = [i for i in range(start, index + 1) if series[i] is not None]
    baseline = [i for i in range(max(0, start - BASELINE), start) if series[i] is not None]
    if len(window) < min(MIN_WINDOW, trailing) or len(baseline) < MIN_BASELINE:
        return None
    usual = _variogram(series, start, window[-1] - baseline[0], trailing)
    if usual is None:
        return None
    weights = {i: 1 / len(window) for i in window} | {i: -1 / len(baseline) for i in baseline}
    spread = -0.5 * sum(wi * wj * usual[abs(i - j)] for i, wi in weights.items() for j, wj in weights.items())
    sampling = sum(w * w * (errors[i] or 0.0) ** 2 for i, w in weights.items())
    floor = (NOISE_FLOOR * _level(series, start)) ** 2 * sum(w * w for w in weights.values())
    base = fmean(series[i] for i in baseline)  # type: ignore[misc]
    change = fmean(series[i] for i in window) - base  # type: ignore[misc]
    return _Shift(change, base, _good(kpi) * change / math.sqrt(max(spread, sampling, floor, 1e-24)))


def _variogram(series: list[float | None], end: int, lags: int, needed: int) -> list[float] | None:
    """The usual square of k-step changes before `end` for k = 0..lags, None unless the history shows enough
    changes over each of 1..`needed` steps (a short history of a slowly wandering KPI has not shown its range).

    The estimates are made non-decreasing in k by pooling neighbours that fall (isotonic regression: the variance
    of a change rarely shrinks with its length, and a single low estimate should not make a trend look large);
    longer lags with too few changes take the last estimate.
    """
    estimates: list[float] = []
    for lag in range(1, lags + 1):
        usual = _usual_square(series, end, lag)
        if usual is None:
            if lag <= needed:
                return None
            break
        estimates.append(usual)
    pooled = _increasing(estimates)
    return [0.0, *pooled, *[pooled[-1]] * (lags - len(pooled))]


def _increasing(numbers: list[float]) -> list[float]:
    """The closest non-decreasing sequence (pool adjacent violators: a falling neighbour is averaged in)."""
    blocks: list[list[float]] = []  # [mean, count]
    for number in numbers:
        blocks.append([number, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (mean, count), (last, weight) = blocks[-2], blocks.pop()
            blocks[-1] = [(mean * count + last * weight) / (count + weight), count + weight]
    return [mean for mean, count in blocks for _ in range(int(count))]


def rarity(kind: TensionKind, z: float, grain: Grain) -> str:
    """How often ordinary data moves `z` noise units in one direction (one-sided Gaussian chance, one check per
    period), in words: "Even the smaller of the two moves happens about once in 13 years of ordinary months."."""
    chance = 0.5 * math.erfc(z / math.sqrt(2))
    per_year = 12 / grain.months if grain.months else 52
    years = 1 / (chance * per_year) if chance > 0 else math.inf
    what = "moves" if kind is TensionKind.MOVE else "shifts"
    often = "less than once a century" if years >= 100 else f"about once in {years:.0f} years"
    return f"Even the smaller of the two {what} happens {often} of ordinary {grain.value}s."


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
    return f"{possessive(team)} {kpi.label}"


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
