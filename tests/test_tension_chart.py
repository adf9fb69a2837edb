"""The tension chart: both KPIs of a tension on one time axis, each on its own scale, its window shaded."""
from __future__ import annotations

from datetime import date
from typing import Any

import altair as alt
import pytest
from altair.utils.schemapi import validate_jsonschema

from kpicore.catalog import Agg, Direction, Kpi, Ratio, Simple, Unit
from kpicore.charts import tension_chart
from kpicore.compute import KpiValues
from kpicore.periods import Grain, Period
from kpicore.tensions import Tension, TensionKind

PERIODS = tuple(Period(date(2025 + m // 12, m % 12 + 1, 1), Grain.MONTH) for m in range(16))  # 2025-01 .. 2026-04
LABELS = [p.label for p in PERIODS]
LEADS = Kpi("leads", "Leads", "New leads.", Unit.COUNT, Simple("leads", "created_at", Agg.COUNT),
            team="marketing", direction=Direction.UP)
WIN = Kpi("win_rate", "Win rate", "Won over closed deals.", Unit.PERCENT, Ratio("deals_won", "deals_closed"),
          team="sales", direction=Direction.UP)
VALUES = KpiValues(
    Grain.MONTH, PERIODS,
    {"leads": tuple(1000.0 + 10 * i for i in range(16)), "win_rate": tuple(0.30 - 0.005 * i for i in range(16))},
    {}, {"win_rate": frozenset(PERIODS[-1:])}, {},
)


def tension(kind: TensionKind, index: int, window: tuple[Period, ...]) -> Tension:
    """Leads against win rate in PERIODS[index]; the numbers besides the window do not matter to the chart."""
    return Tension(kind, LEADS, WIN, PERIODS[index], 100.0, -0.05, 3.0, (), "A sentence.", window,
                   ("Marketing", "Sales"))


def rows(spec: dict[str, Any], layer: dict[str, Any]) -> list[dict[str, Any]]:
    """The data rows a layer (or a layer of layers) draws."""
    return spec["datasets"][layer["data"]["name"]]


def parts(spec: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The shaded window, and each series' layers (its line first, then its maturing points)."""
    band, *series = spec["layer"]
    return band, series, [s["layer"][0] for s in series]


def test_both_kpis_are_drawn_and_labelled_with_their_team():
    spec = tension_chart(tension(TensionKind.MOVE, 13, PERIODS[12:14]), VALUES)
    _, series, lines = parts(spec)
    assert lines[0]["encoding"]["color"]["scale"]["domain"] == ["Leads (Marketing)", "Win rate (Sales)"]
    leads, win = ({r["period"]: r["value"] for r in rows(spec, s)} for s in series)
    assert leads["2026-02"] == 1130.0
    assert win["2026-02"] == pytest.approx(0.235)
    assert {r["series"] for r in rows(spec, series[1])} == {"Win rate (Sales)"}


def test_each_kpi_has_its_own_axis_and_unit_format():
    spec = tension_chart(tension(TensionKind.MOVE, 13, PERIODS[12:14]), VALUES)
    _, _, lines = parts(spec)
    assert spec["resolve"]["scale"]["y"] == "independent"
    axes = [line["encoding"]["y"]["axis"] for line in lines]
    assert [a["orient"] for a in axes] == ["left", "right"]
    assert ["%" in a["format"] for a in axes] == [False, True]


def test_a_move_shades_the_period_and_its_comparison_and_shows_the_twelve_periods_up_to_it():
    spec = tension_chart(tension(TensionKind.MOVE, 13, PERIODS[12:14]), VALUES)
    band, series, _ = parts(spec)
    assert [r["period"] for r in rows(spec, band)] == ["2026-01", "2026-02"]
    for layer in series:  # 2025-03 .. 2026-02, nothing later
        assert [r["period"] for r in rows(spec, layer)] == LABELS[2:14]


def test_a_move_against_last_year_reaches_back_to_its_comparison():
    spec = tension_chart(tension(TensionKind.MOVE, 13, (PERIODS[1], PERIODS[13])), VALUES)
    band, series, _ = parts(spec)
    assert [r["period"] for r in rows(spec, band)] == ["2025-02", "2026-02"]
    for layer in series:
        assert [r["period"] for r in rows(spec, layer)] == LABELS[1:14]


def test_the_time_axis_runs_in_time_order_from_the_data_alone():
    """The periods are in the data, not the spec: the same tension a period later is the same spec with other
    data (the browser then updates the chart instead of building it again), and labels sort as time does."""
    def without_data(spec: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in spec.items() if k != "datasets"}

    earlier = tension_chart(tension(TensionKind.MOVE, 13, PERIODS[12:14]), VALUES)
    later = tension_chart(tension(TensionKind.MOVE, 14, PERIODS[13:15]), VALUES)
    assert without_data(earlier) == without_data(later)
    assert earlier["datasets"] != later["datasets"]
    _, _, lines = parts(later)
    assert lines[0]["encoding"]["x"]["sort"] == "ascending"
    assert sorted(LABELS) == LABELS
    weeks = [Period(date(2025, 12, 22), Grain.WEEK).shift(n).label for n in range(4)]  # over an ISO year's turn
    assert sorted(weeks) == weeks == ["2025-W52", "2026-W01", "2026-W02", "2026-W03"]


def test_a_trend_shades_its_trailing_window():
    spec = tension_chart(tension(TensionKind.TREND, 15, PERIODS[10:16]), VALUES)
    band, _, _ = parts(spec)
    assert [r["period"] for r in rows(spec, band)] == LABELS[10:16]


def test_maturing_cohorts_are_marked():
    spec = tension_chart(tension(TensionKind.TREND, 15, PERIODS[10:16]), VALUES)
    _, series, _ = parts(spec)
    flags = {r["period"]: r["maturing"] for r in rows(spec, series[1])}
    assert flags["2026-04"] == "cohort still maturing"
    assert flags["2026-03"] == "complete"
    hollow = series[1]["layer"][1]
    assert hollow["mark"]["type"] == "point"
    assert "cohort still maturing" in hollow["transform"][0]["filter"]


@pytest.mark.parametrize(("kind", "index", "window"), [(TensionKind.MOVE, 13, PERIODS[12:14]),
                                                       (TensionKind.TREND, 15, PERIODS[10:16])])
def test_tension_charts_are_valid_vega_lite(kind, index, window):
    spec = tension_chart(tension(kind, index, window), VALUES)
    validate_jsonschema(spec, alt.vegalite.v6.schema.core.load_schema())
    alt.LayerChart.from_dict(spec)


def test_each_axis_names_its_unit_in_its_line_colour():
    spec = tension_chart(tension(TensionKind.MOVE, 13, PERIODS[12:14]), VALUES)
    _, _, lines = parts(spec)
    assert [line["encoding"]["y"]["title"] for line in lines] == ["count", "percent"]
    assert [line["encoding"]["y"]["axis"]["titleColor"] for line in lines] == [
        line["encoding"]["y"]["axis"]["labelColor"] for line in lines]
