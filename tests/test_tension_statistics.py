"""The statistics behind tensions: sampling errors from compute, k-step noise, words for rarity, and a simulation
of independent KPIs (no real tension) that must raise almost no false alarms."""
from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest

from kpicore.catalog import Catalog, load_catalog, parse_catalog
from kpicore.compute import KpiValues, compute
from kpicore.periods import Comparison, Grain, Period, parse_period
from kpicore.tensions import TensionKind, find_tensions, rarity


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- sampling errors, worked out by hand on tiny tables -----------------------------------------------------------

OPPORTUNITIES = [
    # September: two wins, so an average or median of them has no measurable spread
    {"opportunity_id": "S1", "created_at": ts("2026-09-20 09:00"), "closed_at": ts("2026-09-30 09:00"),
     "stage": "won", "amount": 500.0},
    {"opportunity_id": "S2", "created_at": ts("2026-09-01 09:00"), "closed_at": ts("2026-09-25 09:00"),
     "stage": "won", "amount": 700.0},
    # October: wins of 1000, 2000 and 6000 after 10, 20 and 40 days; two losses
    {"opportunity_id": "W1", "created_at": ts("2026-09-21 09:00"), "closed_at": ts("2026-10-01 09:00"),
     "stage": "won", "amount": 1000.0},
    {"opportunity_id": "W2", "created_at": ts("2026-10-02 09:00"), "closed_at": ts("2026-10-22 09:00"),
     "stage": "won", "amount": 2000.0},
    {"opportunity_id": "W3", "created_at": ts("2026-09-21 09:00"), "closed_at": ts("2026-10-31 09:00"),
     "stage": "won", "amount": 6000.0},
    {"opportunity_id": "L1", "created_at": ts("2026-09-21 09:00"), "closed_at": ts("2026-10-15 09:00"),
     "stage": "lost", "amount": 900.0},
    {"opportunity_id": "L2", "created_at": ts("2026-09-21 09:00"), "closed_at": ts("2026-10-16 09:00"),
     "stage": "lost", "amount": 800.0},
]
LEADS = [{"lead_id": f"L{i}", "created_at": ts(f"2026-10-{day:02d} 09:00")} for i, day in enumerate((1, 10, 20, 31))]
CUSTOMERS = [
    {"customer_id": "C0", "acquired_at": ts("2026-10-01 09:00")},
    {"customer_id": "C1", "acquired_at": ts("2026-10-15 09:00"), "lead_id": "L0"},
    {"customer_id": "C2", "acquired_at": ts("2026-10-31 09:00")},
]


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    return load_catalog()


def test_counts_averages_medians_and_shares_carry_their_sampling_error(memory_conn, tiny_store, shipped):
    values = compute(memory_conn, shipped, tiny_store({"opportunities": OPPORTUNITIES}), Grain.MONTH)
    october = parse_period("2026-10")
    assert values.error("deals_won", october) == pytest.approx(math.sqrt(3))  # a Poisson count: root of 3
    # win rate 3 of 5; the error uses (3 + 1) / (5 + 2) so that 0 of 5 is no certainty
    assert values.error("win_rate", october) == pytest.approx(math.sqrt(4 / 7 * 3 / 7 / 5))
    # average 3000; squared deviations 4e6 + 1e6 + 9e6 over n - 1 = 2 give a variance of 7e6; over n = 3
    assert values.value("avg_deal_size", october) == pytest.approx(3000)
    assert values.error("avg_deal_size", october) == pytest.approx(math.sqrt(7e6 / 3))
    # median 20 days; quartiles (interpolated) 15 and 30: 1.2533 sigma / root n with sigma = IQR / 1.349
    assert values.value("sales_cycle", october) == pytest.approx(20)
    assert values.error("sales_cycle", october) == pytest.approx(1.2533 * (15 / 1.349) / math.sqrt(3))


def test_an_average_or_median_of_two_rows_has_no_sampling_error(memory_conn, tiny_store, shipped):
    values = compute(memory_conn, shipped, tiny_store({"opportunities": OPPORTUNITIES}), Grain.MONTH)
    september = parse_period("2026-09")
    assert values.value("avg_deal_size", september) == pytest.approx(600)
    assert values.error("avg_deal_size", september) is None and values.error("sales_cycle", september) is None
    assert values.error("win_rate", september) == pytest.approx(math.sqrt(3 / 4 * 1 / 4 / 2))  # 2 of 2


def test_a_conversion_share_carries_the_binomial_error_of_its_cohort(memory_conn, tiny_store, shipped):
    schema = tiny_store({"leads": LEADS, "customers": CUSTOMERS})
    values = compute(memory_conn, shipped, schema, Grain.MONTH)
    october = parse_period("2026-10")
    assert values.value("lead_to_customer_rate", october) == pytest.approx(1 / 4)
    share = (1 + 1) / (4 + 2)
    assert values.error("lead_to_customer_rate", october) == pytest.approx(math.sqrt(share * (1 - share) / 4))
    assert values.error("leads", october) == pytest.approx(2.0)


# --- tensions on hand-made series ---------------------------------------------------------------------------------

PAIR = parse_catalog("""version: 1
teams:
  - {id: marketing, label: Marketing, description: Brings in leads.}
  - {id: sales, label: Sales, description: Wins deals.}
kpis:
  - id: guarded
    label: Guarded
    team: marketing
    description: A KPI whose gains must not come at the counterweight's expense.
    unit: count
    direction: up
    simple: {table: leads, time: created_at, agg: count}
    target: {value: 100}
    counterweights: [guard]
  - id: guard
    label: Guard
    team: sales
    description: The counterweight.
    unit: count
    direction: up
    simple: {table: opportunities, time: created_at, agg: count}
    target: {value: 100}
""")
DEALS = parse_catalog("""version: 1
teams:
  - {id: sales, label: Sales, description: Wins deals.}
measures:
  - id: deals_won
    label: Deals won
    description: Deals won.
    unit: count
    simple: {table: opportunities, time: closed_at, agg: count, where: [{column: stage, op: eq, value: won}]}
  - id: deals_closed
    label: Deals closed
    description: Deals won or lost.
    unit: count
    simple: {table: opportunities, time: closed_at, agg: count, where: [{column: stage, op: in, value: [won, lost]}]}
kpis:
  - id: avg_deal_size
    label: Average deal size
    team: sales
    description: Mean amount of the won deals.
    unit: currency
    direction: up
    simple: {table: opportunities, time: closed_at, agg: avg, column: amount,
             where: [{column: stage, op: eq, value: won}]}
    target: {value: 10000}
    counterweights: [win_rate]
  - id: win_rate
    label: Win rate
    team: sales
    description: Won over closed.
    unit: percent
    direction: up
    ratio: {numerator: deals_won, denominator: deals_closed}
    target: {value: 0.3}
    counterweights: [avg_deal_size]
""")


def periods(grain: Grain, n: int, first: str) -> tuple[Period, ...]:
    start = parse_period(first, grain)
    return tuple(start.shift(i) for i in range(n))


def pair_values(guarded: list[float | None], guard: list[float | None], grain: Grain = Grain.MONTH,
                **extra: object) -> KpiValues:
    found = periods(grain, len(guarded), "2022-01" if grain is Grain.MONTH else "2022-W01")
    return KpiValues(grain, found, {"guarded": tuple(guarded), "guard": tuple(guard)}, {}, {}, {}, **extra)


def kinds(catalog: Catalog, values: KpiValues, comparison: Comparison) -> set[TensionKind]:
    return {t.kind for t in find_tensions(catalog, values, values.periods[-1], comparison)}


def test_a_year_ago_move_is_judged_by_the_usual_change_over_twelve_months():
    # Both KPIs wander slowly (a 30-month swing of +-60, one-month wobble of about 3): a one-month change of 60 is
    # extraordinary, a twelve-month change of 60 is what these series do all the time.
    t = np.arange(48)
    rng = np.random.default_rng(7)
    guarded = list(1000 + 60 * np.sin(2 * np.pi * t / 30) + 3 * rng.standard_normal(48))
    guard = list(1000 + 60 * np.sin(2 * np.pi * t / 30 + np.pi) + 3 * rng.standard_normal(48))
    # the last month: each moved by an ordinary twelve-month amount against a year ago
    year_ago_guarded, year_ago_guard = guarded[-13], guard[-13]
    usual = np.median([abs(a - b) for a, b in zip(guarded[12:], guarded[:-12], strict=True)])
    guarded[-1], guard[-1] = year_ago_guarded + usual, year_ago_guard - usual
    assert TensionKind.MOVE not in kinds(PAIR, pair_values(guarded, guard), Comparison.YEAR_AGO)
    # the same change from the month before is far beyond one month's wobble
    guarded[-1], guard[-1] = guarded[-2] + usual, guard[-2] - usual
    assert TensionKind.MOVE in kinds(PAIR, pair_values(guarded, guard), Comparison.PREVIOUS)


def test_a_week_with_five_won_deals_cannot_make_a_tension_by_itself():
    # 40 weeks of about 20 won deals of about 10,000 (spread 4,000) among 60 closed; then a week of 5 wins, one of
    # them 187,338, among 40 closed: the average rises to 45,468 (+350%) and the win rate falls to 12.5% (-20 pp).
    rng = np.random.default_rng(3)
    deal, deal_error, win, win_error = [], [], [], []
    for _ in range(40):
        amounts = rng.normal(10_000, 4_000, 20)
        deal.append(float(amounts.mean()))
        deal_error.append(float(amounts.std(ddof=1) / math.sqrt(20)))
        won = int(rng.binomial(60, 1 / 3))
        win.append(won / 60)
        win_error.append(math.sqrt((won + 1) / 62 * (1 - (won + 1) / 62) / 60))
    week = [9_000.0, 11_000.0, 8_000.0, 12_000.0, 187_338.0]
    small = {"avg_deal_size": deal + [fmean(week)], "win_rate": win + [5 / 40]}
    errors = {"avg_deal_size": deal_error + [stdev(week) / math.sqrt(5)],
              "win_rate": win_error + [math.sqrt(6 / 42 * 36 / 42 / 40)]}
    found = periods(Grain.WEEK, 41, "2025-W01")
    none = (None,) * 41
    values = KpiValues(Grain.WEEK, found, {k: tuple(v) for k, v in small.items()} | {
        "deals_won": none, "deals_closed": none}, {}, {}, {}, errors={k: tuple(v) for k, v in errors.items()})
    assert kinds(DEALS, values, Comparison.PREVIOUS) == set()
    # without the sampling errors the same numbers look like a tension: the errors are what stops it
    bare = KpiValues(Grain.WEEK, found, values.values, {}, {}, {})
    assert TensionKind.MOVE in kinds(DEALS, bare, Comparison.PREVIOUS)


def test_a_partial_period_never_enters():
    rng = np.random.default_rng(11)
    guarded = list(1000 + 10 * rng.standard_normal(30))
    guard = list(1000 + 10 * rng.standard_normal(30))
    guarded[-1], guard[-1] = 1200.0, 800.0
    whole = pair_values(guarded, guard)
    assert TensionKind.MOVE in kinds(PAIR, whole, Comparison.PREVIOUS)
    last = whole.periods[-1]
    partial = pair_values(guarded, guard, partial={"guarded": frozenset({last})})
    assert kinds(PAIR, partial, Comparison.PREVIOUS) == set()
    # a partial comparison period gives no move either
    guarded[-2], guarded[-1] = guarded[-3], 1200.0
    before = whole.periods[-2]
    assert TensionKind.MOVE not in kinds(PAIR, pair_values(guarded, guard, partial={"guard": frozenset({before})}),
                                         Comparison.PREVIOUS)


@pytest.mark.parametrize(("z", "grain", "words"), [
    # one-sided chance of 2.5 sigma: 0.00621; 1 / 0.00621 = 161 periods
    (2.5, Grain.MONTH, "about once in 13 years of ordinary months"),  # 161 / 12
    (2.5, Grain.WEEK, "about once in 3 years of ordinary weeks"),  # 161 / 52
    (2.5, Grain.QUARTER, "about once in 40 years of ordinary quarters"),  # 161 / 4
    (2.5, Grain.YEAR, "less than once a century of ordinary years"),
    (3.0, Grain.MONTH, "about once in 62 years of ordinary months"),  # chance 0.00135: 741 months
    (4.0, Grain.MONTH, "less than once a century of ordinary months"),
])
def test_how_unusual_a_tension_is_is_said_in_words(z, grain, words):
    assert rarity(TensionKind.MOVE, z, grain) == f"Even the smaller of the two moves happens {words}."
    assert rarity(TensionKind.TREND, z, grain) == f"Even the smaller of the two shifts happens {words}."


def test_each_tension_says_how_unusual_it_is():
    rng = np.random.default_rng(11)
    guarded = list(1000 + 10 * rng.standard_normal(30))
    guard = list(1000 + 10 * rng.standard_normal(30))
    guarded[-1], guard[-1] = 1200.0, 800.0
    found = find_tensions(PAIR, pair_values(guarded, guard), parse_period("2024-06"), Comparison.PREVIOUS)
    [move] = [t for t in found if t.kind is TensionKind.MOVE]
    assert move.rarity == "Even the smaller of the two moves happens less than once a century of ordinary months."


# --- the simulation: independent KPIs, so every tension found is a false alarm --------------------------------------

MONTHS = 48


def ar1(rng: np.random.Generator, phi: float, n: int = MONTHS) -> np.ndarray:
    """A stationary AR(1) series of unit variance: x[t] = phi x[t-1] + noise."""
    x = np.empty(n)
    x[0] = rng.standard_normal()
    for t in range(1, n):
        x[t] = phi * x[t - 1] + math.sqrt(1 - phi * phi) * rng.standard_normal()
    return x


def false_alarms(catalog: Catalog, histories: list[KpiValues]) -> tuple[float, float]:
    """Per pair-check (each period: move against the previous period, against a year ago, and trend) the share
    raising a tension, and the share of histories with any tension."""
    checks = alarms = troubled = 0
    for values in histories:
        raised = 0
        for period in values.periods:
            found = {(t.kind, t.window, t.kpi.id) for c in Comparison
                     for t in find_tensions(catalog, values, period, c)}
            pairs = sum(len(k.counterweights) for k in catalog.kpis)
            checks += 3 * pairs
            raised += len(found)
        alarms += raised
        troubled += raised > 0
    return alarms / checks, troubled / len(histories)


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.8])
def test_independent_autocorrelated_kpis_raise_almost_no_false_tensions(phi):
    rng = np.random.default_rng(int(phi * 10) + 1)
    histories = [pair_values(list(1000 + 50 * ar1(rng, phi)), list(1000 + 50 * ar1(rng, phi)))
                 for _ in range(300)]
    per_check, per_history = false_alarms(PAIR, histories)
    assert per_check <= 0.001
    assert per_history <= 0.05


def small_sample_history(rng: np.random.Generator, grain: Grain, closed: float, tail: str) -> KpiValues:
    """Average deal size and win rate from a few closed deals per period with heavy-tailed amounts, with their
    sampling errors worked out here (standard error of a mean, binomial error), nothing shared between the two."""
    deal, deal_error, win, win_error = [], [], [], []
    for _ in range(MONTHS):
        n = int(rng.poisson(closed))
        k = int(rng.binomial(n, 0.3))
        amounts = (rng.pareto(1.5, k) + 1) * 5_000 if tail == "pareto" else rng.lognormal(9, 1.2, k)
        deal.append(float(amounts.mean()) if k else None)
        deal_error.append(float(amounts.std(ddof=1) / math.sqrt(k)) if k >= 3 else None)
        share = (k + 1) / (n + 2)
        win.append(k / n if n else None)
        win_error.append(math.sqrt(share * (1 - share) / n) if n else None)
    none = (None,) * MONTHS
    return KpiValues(grain, periods(grain, MONTHS, "2022-01" if grain is Grain.MONTH else "2022-W01"),
                     {"avg_deal_size": tuple(deal), "win_rate": tuple(win), "deals_won": none, "deals_closed": none},
                     {}, {}, {}, errors={"avg_deal_size": tuple(deal_error), "win_rate": tuple(win_error)})


@pytest.mark.parametrize(("grain", "closed", "tail"), [
    (Grain.WEEK, 17, "pareto"),  # about 5 wins a week, amounts with a Pareto tail (alpha 1.5: infinite variance)
    (Grain.MONTH, 60, "lognormal"),
])
def test_small_samples_with_heavy_tails_raise_almost_no_false_tensions(grain, closed, tail):
    rng = np.random.default_rng(closed)
    histories = [small_sample_history(rng, grain, closed, tail) for _ in range(150)]
    per_check, per_history = false_alarms(DEALS, histories)
    assert per_check <= 0.001
    assert per_history <= 0.05


def test_the_simulation_catches_a_real_tension():
    # The same independent series with a real tension planted (the guarded KPI up 4 sigma, its guard down 4 sigma
    # in the last 6 months): the checks that raise no false alarms still see it.
    rng = np.random.default_rng(5)
    caught = 0
    for _ in range(50):
        guarded, guard = 1000 + 50 * ar1(rng, 0.5), 1000 + 50 * ar1(rng, 0.5)
        guarded[-6:] += 200
        guard[-6:] -= 200
        values = pair_values(list(guarded), list(guard))
        caught += bool(find_tensions(PAIR, values, values.periods[-1], Comparison.PREVIOUS))
    assert caught >= 45


def fmean(numbers: list[float]) -> float:
    return sum(numbers) / len(numbers)


def stdev(numbers: list[float]) -> float:
    centre = fmean(numbers)
    return math.sqrt(sum((n - centre) ** 2 for n in numbers) / (len(numbers) - 1))

