"""Altair charts of KPI results (specs only: the app decides where they are drawn)."""
from __future__ import annotations

import altair as alt
import pandas as pd

from kpicore.catalog import Unit
from kpicore.display import CURRENCY_SYMBOLS, format_value
from kpicore.scorecard import KpiResult

VALUE_COLOR = "#1f6feb"
COMPARISON_COLOR = "#9aa4b2"
TARGET_COLOR = "#d1242f"
AXIS_FORMATS = {
    Unit.PERCENT: ".0%", Unit.CURRENCY: ",.0f", Unit.COUNT: ",.0f", Unit.HOURS: ",.1f",
    Unit.DAYS: ",.0f", Unit.SCORE: ",.0f", Unit.RATIO: ",.1f",
}


def _axis_title(result: KpiResult, currency: str) -> str:
    unit = result.kpi.unit
    if unit is Unit.CURRENCY:
        return f"{result.kpi.label} ({CURRENCY_SYMBOLS.get(currency, currency).strip()})"
    if unit in (Unit.HOURS, Unit.DAYS):
        return f"{result.kpi.label} ({unit.value})"
    return result.kpi.label


def trend_frame(result: KpiResult, comparison_label: str, currency: str = "EUR") -> pd.DataFrame:
    """Long table of the trend: one row per period and series (this period, comparison)."""
    rows = []
    for point in result.trend:
        for series, value in (("Value", point.value), (comparison_label, point.comparison)):
            rows.append({
                "period": point.period.label,
                "start": point.period.start.isoformat(),
                "series": series,
                "value": value,
                "shown": format_value(value, result.kpi.unit, currency),
                "maturing": "cohort still maturing" if point.maturing else "complete",
            })
    return pd.DataFrame(rows)


def trend_chart(result: KpiResult, comparison_label: str, currency: str = "EUR", height: int = 220) -> alt.LayerChart:
    """Value over time, the comparison period dashed, and the target as a rule."""
    frame = trend_frame(result, comparison_label, currency)
    fmt = AXIS_FORMATS[result.kpi.unit]
    x = alt.X("period:O", title=None, sort=None, axis=alt.Axis(labelAngle=-45))
    y = alt.Y("value:Q", title=_axis_title(result, currency), axis=alt.Axis(format=fmt), scale=alt.Scale(zero=False))
    color = alt.Color(
        "series:N",
        scale=alt.Scale(domain=["Value", comparison_label], range=[VALUE_COLOR, COMPARISON_COLOR]),
        legend=alt.Legend(title=None, orient="bottom"),
    )
    tooltip = [alt.Tooltip("period:O", title="Period"), alt.Tooltip("series:N", title="Series"),
               alt.Tooltip("shown:N", title=result.kpi.label), alt.Tooltip("maturing:N", title="Cohort")]
    base = alt.Chart(frame).encode(x=x, y=y, color=color, tooltip=tooltip)
    dashes = alt.Scale(domain=["Value", comparison_label], range=[[1, 0], [4, 3]])
    lines = base.mark_line(point=alt.OverlayMarkDef(filled=True, size=40)).encode(
        strokeDash=alt.StrokeDash("series:N", scale=dashes, legend=None),
    )
    maturing = base.transform_filter(
        (alt.datum.series == "Value") & (alt.datum.maturing == "cohort still maturing")
    ).mark_point(filled=True, color="white", stroke=VALUE_COLOR, size=60, opacity=1)
    layers: list[alt.Chart] = [lines, maturing]
    if result.target is not None:
        label = f"Target {format_value(result.target, result.kpi.unit, currency)}"
        target = pd.DataFrame([{"target": result.target, "label": label}])
        rule = alt.Chart(target).mark_rule(color=TARGET_COLOR, strokeDash=[6, 4]).encode(
            y="target:Q", tooltip=[alt.Tooltip("label:N", title="Target")]
        )
        text = alt.Chart(target).mark_text(align="left", dx=4, dy=-6, color=TARGET_COLOR, fontSize=11).encode(
            y="target:Q", x=alt.value(0), text="label:N"
        )
        layers += [rule, text]
    return alt.layer(*layers).properties(height=height, width="container")


def sparkline(result: KpiResult, height: int = 48) -> alt.Chart:
    """A small line of the KPI's recent values, without axes."""
    frame = pd.DataFrame(
        [{"period": p.period.label, "value": p.value} for p in result.trend if p.value is not None]
    )
    return (
        alt.Chart(frame)
        .mark_line(color=VALUE_COLOR, strokeWidth=2)
        .encode(
            x=alt.X("period:O", axis=None, sort=None),
            y=alt.Y("value:Q", axis=None, scale=alt.Scale(zero=False)),
            tooltip=[alt.Tooltip("period:O", title="Period"),
                     alt.Tooltip("value:Q", title=result.kpi.label, format=AXIS_FORMATS[result.kpi.unit])],
        )
        .properties(height=height, width="container")
        .configure_view(strokeWidth=0)
    )
