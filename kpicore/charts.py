"""Altair charts of KPI results (specs only: the app decides where they are drawn)."""
from __future__ import annotations

import altair as alt
import pandas as pd

from kpicore.catalog import CUSTOMER, Unit
from kpicore.compute import KpiValues
from kpicore.display import CURRENCY_SYMBOLS, format_value
from kpicore.journey import Journey, Step
from kpicore.scorecard import KpiResult
from kpicore.tensions import Tension

VALUE_COLOR = "#1f6feb"
COMPARISON_COLOR = "#9aa4b2"
TARGET_COLOR = "#d1242f"
AXIS_FORMATS = {
    Unit.PERCENT: ".0%", Unit.CURRENCY: ",.0f", Unit.COUNT: ",.0f", Unit.HOURS: ",.1f",
    Unit.DAYS: ",.0f", Unit.SCORE: ",.0f", Unit.RATIO: ",.1f",
}


def _axis_title(result: KpiResult, currency: str | None) -> str:
    unit = result.kpi.unit
    if unit is Unit.CURRENCY:
        shown = "mixed currencies" if currency is None else CURRENCY_SYMBOLS.get(currency, currency).strip()
        return f"{result.kpi.label} ({shown})"
    if unit in (Unit.HOURS, Unit.DAYS):
        return f"{result.kpi.label} ({unit.value})"
    return result.kpi.label


def trend_frame(result: KpiResult, comparison_label: str, currency: str | None = "EUR") -> pd.DataFrame:
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
                "maturing": "cohort still maturing" if point.maturing else "partial period" if point.partial
                else "complete",
            })
    return pd.DataFrame(rows)


def trend_chart(result: KpiResult, comparison_label: str, currency: str | None = "EUR",
                height: int = 220) -> alt.LayerChart:
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
               alt.Tooltip("shown:N", title=result.kpi.label), alt.Tooltip("maturing:N", title="Data")]
    base = alt.Chart(frame).encode(x=x, y=y, color=color, tooltip=tooltip)
    dashes = alt.Scale(domain=["Value", comparison_label], range=[[1, 0], [4, 3]])
    lines = base.mark_line(point=alt.OverlayMarkDef(filled=True, size=40)).encode(
        strokeDash=alt.StrokeDash("series:N", scale=dashes, legend=None),
    )
    maturing = base.transform_filter(  # a maturing cohort or a partial period: hollow, not a full value yet
        (alt.datum.series == "Value") & (alt.datum.maturing != "complete")
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


TENSION_COLOR = "#bc4c00"


def tension_chart(tension: Tension, values: KpiValues, currency: str = "EUR", periods: int = 12) -> alt.LayerChart:
    """Both KPIs of a tension over the recent periods, each on its own axis (left, right), its window shaded.

    The axes have no titles (long rotated titles squeeze the plot): the legend names each line and each
    axis's labels take its line's colour."""
    shown = [p for p in values.periods if p <= tension.period][-periods:]
    shown = [p for p in values.periods if tension.window[0] <= p < shown[0]] + shown
    labels = [p.label for p in shown]
    names = [f"{k.label} ({team})" for k, team in zip((tension.kpi, tension.counterweight), tension.team_labels,
                                                         strict=True)]
    colors = [VALUE_COLOR, TENSION_COLOR]
    x = alt.X("period:O", title=None, sort=labels, scale=alt.Scale(domain=labels), axis=alt.Axis(labelAngle=-45))
    color = alt.Color("series:N", scale=alt.Scale(domain=names, range=colors),
                      legend=alt.Legend(title=None, orient="bottom", columns=1, labelLimit=320))
    window = pd.DataFrame([{"period": p.label, "note": f"{tension.kind.value} window"}
                           for p in tension.window if p in shown])
    layers: list[alt.LayerChart | alt.Chart] = [
        alt.Chart(window).mark_rect(color=COMPARISON_COLOR, opacity=0.2).encode(x=x, tooltip=["note:N"])
    ]
    for kpi, name, side, line_color in zip((tension.kpi, tension.counterweight), names, ("left", "right"), colors,
                                           strict=True):
        maturing = values.maturing.get(kpi.id, frozenset())
        frame = pd.DataFrame([{
            "period": p.label,
            "series": name,
            "value": values.value(kpi.id, p),
            "shown": format_value(values.value(kpi.id, p), kpi.unit, currency),
            "maturing": "cohort still maturing" if p in maturing else "complete",
        } for p in shown])
        y = alt.Y("value:Q", title=None, scale=alt.Scale(zero=False),
                  axis=alt.Axis(orient=side, format=AXIS_FORMATS[kpi.unit], labelColor=line_color))
        tooltip = [alt.Tooltip("period:O", title="Period"), alt.Tooltip("shown:N", title=kpi.label),
                   alt.Tooltip("maturing:N", title="Data")]
        line = alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(filled=True, size=30)).encode(
            x=x, y=y, color=color, tooltip=tooltip)
        hollow = line.transform_filter(alt.datum.maturing == "cohort still maturing").mark_point(
            filled=True, size=50, opacity=1).encode(fill=alt.value("white"), stroke=alt.value(line_color))
        layers.append(alt.layer(line, hollow))
    return alt.layer(*layers).resolve_scale(y="independent").properties(height=260, width="container")


TEAM_COLORS = ("#8250df", "#1f6feb", "#1a7f37", "#9a6700", "#bf3989", "#57606a")  # the journey's teams in order
CUSTOMER_COLOR = "#bc4c00"
MATURING = ("complete", "still maturing")


def funnel_frame(journey: Journey, owners: dict[str, str]) -> pd.DataFrame:
    """One row per step of the selected cohort, with its owner's label and the text of its bar label."""
    rows = []
    for count in journey.steps:
        share = "–" if count.conversion is None else f"{count.conversion:.1%}"
        if count.maturing:
            label = f"{count.count:,} so far · still maturing"
        elif count.step is Step.LEAD:
            label = f"{count.count:,} leads"
        else:
            label = f"{count.count:,} · {share} of previous step"
        rows.append({
            "step": count.label,
            "owner": owners[count.owner],
            "count": count.count,
            "label": label,
            "state": MATURING[count.maturing],
            "previous": share,
            "of_leads": "–" if count.from_first is None else f"{count.from_first:.1%}",
            "median": "–" if count.median_days is None else f"{count.median_days:.1f} days ({count.step.since})",
            "note": count.maturing_note or "complete",
        })
    return pd.DataFrame(rows)


def funnel_chart(journey: Journey, owners: dict[str, str], bar_height: int = 40) -> alt.LayerChart:
    """The cohort's funnel: a bar per step coloured by the team that owns it, maturing steps pale and dashed."""
    frame = funnel_frame(journey, owners)
    steps = list(frame["step"])
    present = list(dict.fromkeys(count.owner for count in journey.steps))
    teams = [o for o in present if o != CUSTOMER]
    colors = [CUSTOMER_COLOR if o == CUSTOMER else TEAM_COLORS[teams.index(o) % len(TEAM_COLORS)] for o in present]
    owner_scale = alt.Scale(domain=[owners[o] for o in present], range=colors)
    y = alt.Y("step:N", sort=steps, title=None,
              axis=alt.Axis(labelFontSize=13, labelLimit=220, ticks=False, domain=False, labelPadding=8))
    # Room to the right of the widest bar for its label.
    x = alt.X("count:Q", axis=None, scale=alt.Scale(domain=[0, max(int(frame["count"].max()), 1) * 1.7]))
    tooltip = [alt.Tooltip("step:N", title="Step"), alt.Tooltip("owner:N", title="Owner"),
               alt.Tooltip("count:Q", title="Count", format=","), alt.Tooltip("previous:N", title="From previous"),
               alt.Tooltip("of_leads:N", title="Of the leads"), alt.Tooltip("median:N", title="Median"),
               alt.Tooltip("note:N", title="Cohort")]
    base = alt.Chart(frame).encode(y=y, x=x, tooltip=tooltip)
    bars = base.mark_bar(cornerRadiusEnd=3, strokeWidth=1.5, height=bar_height * 0.7).encode(
        color=alt.Color("owner:N", scale=owner_scale,
                        legend=alt.Legend(title="Owner", orient="bottom", direction="horizontal")),
        stroke=alt.Stroke("owner:N", scale=owner_scale, legend=None),
        opacity=alt.Opacity("state:N", scale=alt.Scale(domain=list(MATURING), range=[1.0, 0.3]), legend=None),
        strokeDash=alt.StrokeDash("state:N", scale=alt.Scale(domain=list(MATURING), range=[[1, 0], [4, 3]]),
                                  legend=None),
    )
    labels = base.mark_text(align="left", dx=6, fontSize=13).encode(
        text="label:N",
        color=alt.Color("state:N", scale=alt.Scale(domain=list(MATURING), range=["#24292f", "#6e7781"]), legend=None),
    )
    return (alt.layer(bars, labels).resolve_scale(color="independent")
            .properties(height=alt.Step(bar_height), width="container").configure_view(strokeWidth=0))
