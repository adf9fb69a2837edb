"""Charts: the Vega-Lite specs of trend charts and sparklines."""
from __future__ import annotations

from datetime import date
from typing import Any

import altair as alt
import pytest
from altair.utils.schemapi import validate_jsonschema

from kpicore.catalog import Agg, Direction, Kpi, Ratio, Simple, Target, Unit
from kpicore.charts import sparkline, trend_chart
from kpicore.periods import Grain, Period
from kpicore.scorecard import KpiResult, Status, TrendPoint

PERIODS = [Period(date(2026, month, 1), Grain.MONTH) for month in (1, 2, 3)]


def make_result(unit: Unit = Unit.PERCENT, target: float | None = 0.3,
                maturing: tuple[bool, ...] = (False, False, False)) -> KpiResult:
    """A KPI result with the trend 0.1, 0.2, 0.25 against 0.05, 0.1, 0.2."""
    formula = Ratio("a", "b") if unit is Unit.PERCENT else Simple("revenue", "month", Agg.SUM, "amount")
    kpi = Kpi("k", "Win rate" if unit is Unit.PERCENT else "Revenue", "A test KPI.", unit, formula, team="sales",
              direction=Direction.UP, target=None if target is None else Target(target))
    trend = tuple(TrendPoint(p, v, c, m) for p, v, c, m in zip(PERIODS, (0.1, 0.2, 0.25), (0.05, 0.1, 0.2), maturing,
                                                               strict=True))
    return KpiResult(kpi=kpi, period=PERIODS[-1], value=0.25, comparison_period=PERIODS[1], comparison=0.2,
                     target=target, attainment=None if target is None else 0.25 / target, status=Status.AT_RISK,
                     as_of=date(2026, 3, 31), trend=trend)


def layers(spec: dict[str, Any], mark: str) -> list[dict[str, Any]]:
    """The layers drawing `mark`."""
    found = []
    for layer in spec["layer"]:
        kind = layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]
        if kind == mark:
            found.append(layer)
    return found


def rows(spec: dict[str, Any], layer: dict[str, Any]) -> list[dict[str, Any]]:
    """The data rows a layer draws."""
    data = layer.get("data", spec.get("data"))
    return data["values"] if "values" in data else spec["datasets"][data["name"]]


def test_trend_chart_draws_the_value_and_the_comparison_as_lines():
    spec = trend_chart(make_result(), "Previous period")
    [line] = layers(spec, "line")
    drawn = rows(spec, line)
    series = {(r["period"], r["series"]): r["value"] for r in drawn}
    assert series[("2026-03", "Value")] == 0.25
    assert series[("2026-03", "Previous period")] == 0.2
    assert series[("2026-01", "Previous period")] == 0.05
    assert line["encoding"]["color"]["scale"]["domain"] == ["Value", "Previous period"]
    assert line["encoding"]["y"]["field"] == "value"


def test_trend_chart_draws_the_target_as_a_rule():
    spec = trend_chart(make_result(target=0.3), "Previous period")
    [rule] = layers(spec, "rule")
    field = rule["encoding"]["y"]["field"]
    assert [r[field] for r in rows(spec, rule)] == [0.3]


def test_trend_chart_without_target_has_no_rule():
    spec = trend_chart(make_result(target=None), "Previous period")
    assert layers(spec, "rule") == []
    assert len(layers(spec, "line")) == 1


@pytest.mark.parametrize(("unit", "percent"), [(Unit.PERCENT, True), (Unit.CURRENCY, False)])
def test_y_axis_format_follows_the_unit(unit, percent):
    spec = trend_chart(make_result(unit=unit, target=None), "Previous period")
    [line] = layers(spec, "line")
    assert ("%" in line["encoding"]["y"]["axis"]["format"]) is percent


def test_maturing_points_are_marked():
    spec = trend_chart(make_result(maturing=(False, False, True)), "Previous period")
    [line] = layers(spec, "line")
    marked = [r for r in rows(spec, line) if r["series"] == "Value" and "matur" in r["maturing"]]
    assert [r["period"] for r in marked] == ["2026-03"]
    points = layers(spec, "point")
    assert points, "a point layer marks the maturing values"
    [hollow] = [layer for layer in points if "maturing" in str(layer.get("transform"))]
    assert hollow["encoding"]["fill"] == {"value": "white"} and "color" not in hollow["encoding"]  # hollow, not filled


def test_sparkline_has_no_axes():
    spec = sparkline(make_result())
    assert spec["mark"]["type"] == "line"
    assert spec["encoding"]["x"]["axis"] is None
    assert spec["encoding"]["y"]["axis"] is None
    assert [r["value"] for r in rows(spec, spec)] == [0.1, 0.2, 0.25]


def _valid(spec: dict[str, Any]) -> None:
    """The spec is valid Vega-Lite (Altair's bundled schema) and Altair reads it back."""
    validate_jsonschema(spec, alt.vegalite.v6.schema.core.load_schema())
    (alt.Chart if "mark" in spec else alt.LayerChart).from_dict(spec)


@pytest.mark.parametrize("target", [0.3, None])
@pytest.mark.parametrize("unit", [Unit.PERCENT, Unit.CURRENCY])
def test_trend_charts_are_valid_vega_lite(unit, target):
    _valid(trend_chart(make_result(unit=unit, target=target, maturing=(False, True, True)), "Previous period"))


def test_sparklines_are_valid_vega_lite():
    _valid(sparkline(make_result()))


def test_a_broken_spec_is_refused_by_the_check():
    spec = trend_chart(make_result(), "Previous period")
    spec["layer"][0]["mark"]["type"] = "lines"
    with pytest.raises(Exception, match="lines"):
        _valid(spec)


def test_against_the_previous_period_only_the_value_is_drawn():
    """The previous period's line would be the value's own line shifted by one period."""
    spec = trend_chart(make_result(), "Previous period", compare=False)
    [line] = layers(spec, "line")
    assert {r["series"] for r in rows(spec, line)} == {"Value"}
    assert line["encoding"]["color"]["legend"] is None
    _valid(spec)


@pytest.mark.parametrize(("unit", "title"), [(Unit.PERCENT, "percent"), (Unit.CURRENCY, "€")])
def test_the_value_axis_is_titled_with_the_unit_only(unit, title):
    spec = trend_chart(make_result(unit=unit), "Previous period")
    [line] = layers(spec, "line")
    assert line["encoding"]["y"]["title"] == title
