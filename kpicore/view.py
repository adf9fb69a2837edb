"""What a view shows (grain, period, comparison), read from and written to URL query parameters."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from kpicore.compute import KpiValues
from kpicore.errors import UnknownPeriod
from kpicore.filters import NO_FILTERS, Filters
from kpicore.periods import Comparison, Grain, Period, grain_of, parse_period


@dataclass(frozen=True)
class View:
    """The state that shapes a scorecard view; `period` None means the latest complete one."""

    grain: Grain = Grain.MONTH
    period: str | None = None
    comparison: Comparison = Comparison.PREVIOUS
    snapshot: int | None = None
    filters: Filters = NO_FILTERS

    @classmethod
    def from_query_params(cls, params: Mapping[str, str]) -> tuple[View, list[str]]:
        """The view a URL asks for, and a notice for each parameter that was not understood."""
        notices: list[str] = []
        view = cls(filters=Filters.from_query_params(params))
        grain_text, period, comparison = params.get("grain"), params.get("period"), params.get("comparison")
        snapshot = params.get("snapshot")
        if snapshot is not None:
            if re.fullmatch(r"[1-9][0-9]{0,8}", snapshot):
                view = replace(view, snapshot=int(snapshot))
            else:
                notices.append(f"URL parameter snapshot: '{snapshot}' is not a snapshot number. "
                               "Showing the latest data.")
        if grain_text is not None:
            try:
                view = replace(view, grain=Grain(grain_text))
            except ValueError:
                notices.append(_unknown("grain", grain_text, [g.value for g in Grain]))
        if comparison is not None:
            try:
                view = replace(view, comparison=Comparison(comparison))
            except ValueError:
                notices.append(_unknown("comparison", comparison, [c.value for c in Comparison]))
        if period is not None:
            try:
                found = grain_of(period)
                if grain_text is None:
                    view = replace(view, grain=found)
                parse_period(period, view.grain)
                view = replace(view, period=period)
            except UnknownPeriod as error:
                notices.append(f"URL parameter period: {error} Showing the latest complete period instead.")
        return view, notices

    def to_query_params(self, period: Period | None) -> dict[str, str]:
        """Query parameters that reproduce this view, with the period actually shown (none without data)."""
        params = {"grain": self.grain.value, "comparison": self.comparison.value}
        if period is not None:
            params["period"] = period.label
        if self.snapshot is not None:
            params["snapshot"] = str(self.snapshot)
        return params | self.filters.to_query_params()

    def link(self, period: Period | None, page: str = "", pinned: bool = True, origin: str = "") -> str:
        """A link that opens this view: `origin` (scheme and host, '' for a path only), the page's URL path ('' for
        the Overview) and the query; `pinned` keeps the snapshot, so the link shows these numbers after new
        uploads too, else it shows the newest data."""
        params = self.to_query_params(period)
        if not pinned:
            params.pop("snapshot", None)
        return f"{origin.rstrip('/')}/{page.strip('/')}?{urlencode(params)}"

    def resolve(self, values: KpiValues, kpi_ids: Iterable[str] | None = None) -> tuple[Period, list[str]]:
        """The period to show: the one asked for if the data reaches it, else the latest complete period of the
        data of these KPIs (the ones on the page)."""
        latest = values.latest(kpi_ids)
        if self.period is None:
            return latest, []
        try:
            return values.check(parse_period(self.period, self.grain)), []
        except UnknownPeriod as error:
            return latest, [f"URL parameter period: {error} Showing {latest.label} instead."]


def _unknown(name: str, value: str, allowed: list[str]) -> str:
    return f"URL parameter {name}: '{value}' is not one of {', '.join(allowed)}. Using the default instead."
