"""Altair charts of KPI results (specs only: the app decides where they are drawn)."""
from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

import altair as alt
import pandas as pd

from kpicore.catalog import CUSTOMER, Unit
from kpicore.checkins import CheckIn
from kpicore.compute import KpiValues
from kpicore.display import CURRENCY_SYMBOLS, format_value
from kpicore.journey import Journey, Step
from kpicore.periods import Grain
from kpicore.scorecard import KpiResult
from kpicore.tensions import Tension

Spec = dict[str, Any]  # a Vega-Lite spec
VEGA_LITE = "https://vega.github.io/schema/vega-lite/v6.json"
VALUE_COLOR = "#1f6feb"
COMPARISON_COLOR = "#9aa4b2"
TARGET_COLOR = "#d1242f"
CHECKIN_COLOR = "#8250df"
AXIS_FORMATS = {
    Unit.PERCENT: ".0%", Unit.CURRENCY: ",.0f", Unit.COUNT: ",.0f", Unit.HOURS: ",.1f",
    Unit.DAYS: ",.0f", Unit.SCORE: ",.0f", Unit.RATIO: ",.1f",
}


def _axis_title(unit: Unit, currency: str | None) -> str:
    """The unit of a value axis, short enough never to be cut (the KPI's name is the chart's heading)."""
    if unit is Unit.CURRENCY:
        return "mixed currencies" if currency is None else CURRENCY_SYMBOLS.get(currency, currency).strip()
    return {Unit.PERCENT: "percent", Unit.RATIO: "ratio (×)"}.get(unit, unit.value)


def trend_frame(result: KpiResult, comparison_label: str, currency: str | None = "EUR",
                compare: bool = True) -> pd.DataFrame:
    """Long table of the trend: one row per period and series (this period, and with `compare` the comparison)."""
    rows = []
    for point in result.trend:
        pairs = (("Value", point.value), (comparison_label, point.comparison)) if compare else (("Value", point.value),)
        for series, value in pairs:
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
                height: int = 320, compare: bool = True, notes: Sequence[CheckIn] = ()) -> Spec:
    """Value over time, with `compare` the comparison period dashed (against the previous period it would be the
    same line shifted by one), the target as a rule, and each period with check-ins (`notes` on this KPI) marked
    by a violet rule whose tooltip reads them. `height` is the whole chart's, axes and legend included (Streamlit
    fits the chart to it)."""
    frame = trend_frame(result, comparison_label, currency, compare)
    fmt = AXIS_FORMATS[result.kpi.unit]
    x = {"field": "period", "type": "ordinal", "title": None, "sort": None, "axis": {"labelAngle": -45}}
    y = {"field": "value", "type": "quantitative", "title": _axis_title(result.kpi.unit, currency),
         "axis": {"format": fmt}, "scale": {"zero": False}}
    series = ["Value", comparison_label] if compare else ["Value"]
    color = {"field": "series", "type": "nominal",
             "scale": {"domain": series, "range": [VALUE_COLOR, COMPARISON_COLOR][:len(series)]},
             "legend": {"title": None, "orient": "bottom"} if compare else None}
    tooltip = [_tip("period", "ordinal", "Period"), _tip("series", "nominal", "Series"),
               _tip("shown", "nominal", result.kpi.label), _tip("maturing", "nominal", "Data")]
    base = {"x": x, "y": y, "color": color, "tooltip": tooltip}
    lines = {"data": {"name": "trend"}, "mark": {"type": "line", "point": {"filled": True, "size": 40}},
             "encoding": base | {"strokeDash": {"field": "series", "type": "nominal", "legend": None,
                                                "scale": {"domain": series, "range": [[1, 0], [4, 3]][:len(series)]}}}}
    maturing = {  # a maturing cohort or a partial period: hollow, not a full value yet (no colour encoding,
        # which would fill the point)
        "data": {"name": "trend"},
        "transform": [{"filter": "datum.series === 'Value' && datum.maturing !== 'complete'"}],
        "mark": {"type": "point", "filled": True, "size": 60, "opacity": 1, "strokeWidth": 2},
        "encoding": {"x": x, "y": y, "tooltip": tooltip, "fill": {"value": "white"}, "stroke": {"value": VALUE_COLOR}},
    }
    layers = [lines, maturing]
    datasets = {"trend": _records(frame)}
    if result.target is not None:
        label = f"Target {format_value(result.target, result.kpi.unit, currency)}"
        datasets["target"] = [{"target": result.target, "label": label}]
        target_y = {"field": "target", "type": "quantitative"}
        layers.append({"data": {"name": "target"}, "mark": {"type": "rule", "color": TARGET_COLOR,
                                                              "strokeDash": [6, 4]},
                       "encoding": {"y": target_y, "tooltip": [_tip("label", "nominal", "Target")]}})
        layers.append({"data": {"name": "target"},  # at the right end, clear of the value axis's labels
                       "mark": {"type": "text", "align": "right", "dx": -4, "dy": -6, "color": TARGET_COLOR,
                                "fontSize": 11},
                       "encoding": {"y": target_y, "x": {"value": "width"}, "text": {"field": "label",
                                                                                     "type": "nominal"}}})
    if marked := checkin_marks(result, notes):
        datasets["checkins"] = marked
        rule = _checkin_rule(x | {"field": "period"})
        layers += [rule, rule | {"mark": {"type": "point", "shape": "diamond", "filled": True, "size": 90,
                                          "color": CHECKIN_COLOR, "opacity": 1},
                                 "encoding": rule["encoding"] | {"y": {"value": 0}}}]
    return _top({"layer": layers, "datasets": datasets, "height": height, "width": "container"})


def checkin_marks(result: KpiResult, notes: Sequence[CheckIn]) -> list[Spec]:
    """One mark per period of the trend with check-ins on the KPI: the period and its notes as one text."""
    return _marks(notes, {result.kpi.id: ""}, result.period.grain, {p.period.label for p in result.trend})


def _marks(notes: Sequence[CheckIn], kpis: dict[str, str], grain: Grain, shown: Collection[str]) -> list[Spec]:
    """The check-ins on these KPIs (each note after its KPI's prefix) in the periods shown, one row per period."""
    by_period: dict[str, list[str]] = {}
    for note in notes:
        if note.kpi in kpis and note.grain is grain and note.period in shown:
            by_period.setdefault(note.period, []).append(kpis[note.kpi] + note.line)
    return [{"period": period, "notes": " · ".join(lines)} for period, lines in by_period.items()]


def _checkin_rule(x: Spec) -> Spec:
    """The violet rule at each period with check-ins, its tooltip reading them."""
    return {"data": {"name": "checkins"}, "mark": {"type": "rule", "color": CHECKIN_COLOR, "strokeWidth": 2,
                                                    "strokeDash": [2, 2]},
            "encoding": {"x": x, "tooltip": [_tip("period", "ordinal", "Period"),
                                             _tip("notes", "nominal", "Check-in")]}}


def sparkline(result: KpiResult, height: int = 48) -> Spec:
    """A small line of the KPI's recent values, without axes."""
    values = [{"period": p.period.label, "value": p.value} for p in result.trend if p.value is not None]
    return _top({
        "data": {"values": values},
        "mark": {"type": "line", "color": VALUE_COLOR, "strokeWidth": 2},
        "encoding": {
            "x": {"field": "period", "type": "ordinal", "axis": None, "sort": None},
            "y": {"field": "value", "type": "quantitative", "axis": None, "scale": {"zero": False}},
            "tooltip": [_tip("period", "ordinal", "Period"),
                        _tip("value", "quantitative", result.kpi.label) | {"format": AXIS_FORMATS[result.kpi.unit]}],
        },
        "height": height, "width": "container", "config": {"view": {"strokeWidth": 0}},
    })


TENSION_COLOR = "#bc4c00"


def tension_chart(tension: Tension, values: KpiValues, currency: str = "EUR", periods: int = 12,
                  notes: Sequence[CheckIn] = ()) -> Spec:
    """Both KPIs of a tension over the recent periods, each on its own axis (left, right), its window shaded.

    Each axis is titled with its unit only (long rotated titles squeezed the plot): the legend names each line,
    and each axis takes its line's colour."""
    shown = [p for p in values.periods if p <= tension.period][-periods:]
    shown = [p for p in values.periods if tension.window[0] <= p < shown[0]] + shown
    labels = [p.label for p in shown]
    names = [f"{k.label} ({team})" for k, team in zip((tension.kpi, tension.counterweight), tension.team_labels,
                                                         strict=True)]
    colors = [VALUE_COLOR, TENSION_COLOR]
    # The periods are data only (each series has a row per period shown; labels of one grain sort as time does):
    # the spec of a tension stays the same from one period to the next, so the browser updates the chart's data
    # instead of building a new chart (that was most of a period change in Chromium).
    x = {"field": "period", "type": "ordinal", "title": None, "sort": "ascending", "axis": {"labelAngle": -45}}
    color = {"field": "series", "type": "nominal", "scale": {"domain": names, "range": colors},
             "legend": {"title": None, "orient": "bottom", "columns": 1, "labelLimit": 320}}
    datasets = {"window": [{"period": p.label, "note": f"{tension.kind.value} window"}
                           for p in tension.window if p in shown]}
    layers: list[Spec] = [{"data": {"name": "window"}, "mark": {"type": "rect", "color": COMPARISON_COLOR,
                                                                 "opacity": 0.2},
                           "encoding": {"x": x, "tooltip": [{"field": "note", "type": "nominal"}]}}]
    for index, (kpi, name, side, line_color) in enumerate(zip(
            (tension.kpi, tension.counterweight), names, ("left", "right"), colors, strict=True)):
        maturing = values.maturing.get(kpi.id, frozenset())
        data = f"series-{index}"
        datasets[data] = [{
            "period": p.label,
            "series": name,
            "value": values.value(kpi.id, p),
            "shown": format_value(values.value(kpi.id, p), kpi.unit, currency),
            "maturing": "cohort still maturing" if p in maturing else "complete",
        } for p in shown]
        y = {"field": "value", "type": "quantitative", "title": _axis_title(kpi.unit, currency),
             "scale": {"zero": False}, "axis": {"orient": side, "format": AXIS_FORMATS[kpi.unit],
                                                "labelColor": line_color, "titleColor": line_color}}
        encoding = {"x": x, "y": y, "color": color,
                    "tooltip": [_tip("period", "ordinal", "Period"), _tip("shown", "nominal", kpi.label),
                                _tip("maturing", "nominal", "Data")]}
        line = {"mark": {"type": "line", "point": {"filled": True, "size": 30}}, "encoding": encoding}
        hollow = {"transform": [{"filter": "datum.maturing === 'cohort still maturing'"}],
                  "mark": {"type": "point", "filled": True, "size": 50, "opacity": 1},
                  "encoding": encoding | {"fill": {"value": "white"}, "stroke": {"value": line_color}}}
        layers.append({"data": {"name": data}, "layer": [line, hollow]})
    prefixes = {k.id: f"{k.label}: " for k in (tension.kpi, tension.counterweight)}
    if marked := _marks(notes, prefixes, tension.period.grain, labels):  # check-ins on either KPI
        datasets["checkins"] = marked
        layers.append(_checkin_rule(x))
    return _top({"layer": layers, "datasets": datasets, "resolve": {"scale": {"y": "independent"}},
                 "height": 340, "width": "container"})


def _top(spec: Spec) -> Spec:
    """A top-level Vega-Lite spec. The KPI charts are written as Vega-Lite directly rather than through Altair:
    they are rebuilt for every period shown, and Altair's layering (deep copies of every sub-chart) made them
    most of a page's time. The chart tests validate each kind against Altair's Vega-Lite schema."""
    return {"$schema": VEGA_LITE, "config": {"view": {"continuousWidth": 300, "continuousHeight": 300}}} | spec


def _tip(field: str, kind: str, title: str) -> Spec:
    return {"field": field, "type": kind, "title": title}


def _records(frame: pd.DataFrame) -> list[Spec]:
    """A frame's rows as JSON-ready records (missing values as null)."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in frame.to_dict("records")]


TEAM_COLORS = ("#8250df", "#1f6feb", "#1a7f37", "#9a6700", "#bf3989", "#57606a")  # the journey's teams in order
CUSTOMER_COLOR = "#bc4c00"
MATURING = ("complete", "still maturing")


def funnel_frame(journey: Journey, owners: dict[str, str]) -> pd.DataFrame:
    """One row per step of the selected cohort, with its owner's label and the text of its bar label."""
    rows = []
    for count in journey.steps:
        share = count.shown(count.conversion)
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
            "of_leads": count.shown(count.from_first),
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


def fixed(spec: Spec, width: int) -> Spec:
    """The spec at a fixed width (a page fits 'container' charts to their column; a file has no column)."""
    return spec | {"width": width} if spec.get("width") == "container" else spec


def to_svg(spec: Spec, width: int = 640) -> str:
    """The chart as SVG, rendered offline (vl-convert carries Vega itself: no browser, no network)."""
    import vl_convert

    return vl_convert.vegalite_to_svg(fixed(spec, width))


def to_png(spec: Spec, width: int = 640, scale: float = 2.0) -> bytes:
    """The chart as a PNG at `scale` times its size (sharp on paper and on high-density screens)."""
    import vl_convert

    return vl_convert.vegalite_to_png(fixed(spec, width), scale=scale)
