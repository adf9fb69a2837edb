"""The view in the URL: what a shared link asks for, what is shown, and a notice for every misread parameter."""
from __future__ import annotations

from datetime import date
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpicore.compute import KpiValues
from kpicore.errors import UnknownPeriod
from kpicore.filters import Filters
from kpicore.periods import Comparison, Grain, containing, parse_period
from kpicore.view import View

W, M, Q = Grain.WEEK, Grain.MONTH, Grain.QUARTER
PREV, YEAR = Comparison.PREVIOUS, Comparison.YEAR_AGO


# (params, expected view, expected notices: each a list of phrases that notice must contain)
CASES = [
    ({}, View(M, None, PREV), []),
    ({"grain": "quarter"}, View(Q, None, PREV), []),
    ({"comparison": "year_ago"}, View(M, None, YEAR), []),
    ({"grain": "week", "period": "2026-W40", "comparison": "year_ago"}, View(W, "2026-W40", YEAR), []),
    ({"grain": "month", "period": "2026-10"}, View(M, "2026-10", PREV), []),
    ({"period": "2026-Q3"}, View(Q, "2026-Q3", PREV), []),
    ({"period": "2026-W53"}, View(W, "2026-W53", PREV), []),
    ({"period": "2026-10", "comparison": "previous"}, View(M, "2026-10", PREV), []),
    ({"grain": "day"}, View(M, None, PREV),
     [["URL parameter grain", "'day' is not one of week, month, quarter", "Using the default instead"]]),
    ({"comparison": "last_year"}, View(M, None, PREV),
     [["URL parameter comparison", "'last_year' is not one of previous, year_ago"]]),
    ({"grain": "day", "comparison": "last_year"}, View(M, None, PREV),
     [["grain", "'day'"], ["comparison", "'last_year'"]]),
    ({"grain": "day", "period": "2026-10"}, View(M, "2026-10", PREV), [["grain", "'day'"]]),
    ({"period": "2026-13"}, View(M, None, PREV),
     [["URL parameter period", "'2026-13' does not exist", "Showing the latest complete period instead"]]),
    ({"grain": "week", "period": "2025-W53"}, View(W, None, PREV), [["'2025-W53' does not exist"]]),
    ({"period": "oct-2026"}, View(M, None, PREV), [["'oct-2026' is not a period", "2026-Q3"]]),
    ({"grain": "quarter", "period": "tomorrow"}, View(Q, None, PREV), [["'tomorrow' is not a period"]]),
    ({"grain": "month", "period": "2026-Q3"}, View(M, None, PREV),
     [["'2026-Q3' is a quarter, but the grain is month", "2026-10", "Showing the latest complete period"]]),
    ({"grain": "quarter", "period": "2026-W40", "comparison": "year_ago"}, View(Q, None, YEAR),
     [["'2026-W40' is a week, but the grain is quarter"]]),
]


@pytest.mark.parametrize(("params", "view", "notices"), CASES, ids=[str(c[0]) for c in CASES])
def test_from_query_params(params, view, notices):
    found, messages = View.from_query_params(params)
    assert found == view
    assert len(messages) == len(notices), messages
    for message, phrases in zip(messages, notices, strict=True):
        for phrase in phrases:
            assert phrase in message


def test_query_params_name_the_period_actually_shown():
    view = View(Q, None, YEAR)
    assert view.to_query_params(parse_period("2026-Q2")) == {
        "grain": "quarter", "period": "2026-Q2", "comparison": "year_ago",
    }


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)), st.sampled_from(list(Grain)),
       st.sampled_from(list(Comparison)))
def test_a_shared_link_reproduces_the_view(day, grain, comparison):
    period = containing(day, grain)
    params = View(grain, None, comparison).to_query_params(period)
    view, notices = View.from_query_params(params)
    assert notices == []
    assert view == View(grain, period.label, comparison)


def _values(*labels: str) -> KpiValues:
    """KPI values covering the given periods (the view only looks at which periods there are)."""
    periods = tuple(parse_period(label) for label in labels)
    grain = periods[0].grain if periods else M
    return KpiValues(grain, periods, {"leads": tuple(10.0 for _ in periods)}, {}, {}, {})


MONTHS = _values("2026-01", "2026-02", "2026-03")


@pytest.mark.parametrize(("view", "shown", "notices"), [
    (View(M, None, PREV), "2026-03", []),
    (View(M, "2026-02", PREV), "2026-02", []),
    (View(M, "2026-01", YEAR), "2026-01", []),
    (View(M, "2025-06", PREV), "2026-03",
     ["URL parameter period: There is no data for 2025-06: the data covers 2026-01 to 2026-03. "
      "Showing 2026-03 instead."]),
    (View(M, "2026-04", PREV), "2026-03",
     ["URL parameter period: There is no data for 2026-04: the data covers 2026-01 to 2026-03. "
      "Showing 2026-03 instead."]),
])
def test_resolve_falls_back_to_the_latest_period_with_a_notice(view, shown, notices):
    period, messages = view.resolve(MONTHS)
    assert period.label == shown
    assert messages == notices


def test_resolve_without_any_complete_period_says_to_load_data():
    for view in (View(M, None, PREV), View(M, "2026-02", PREV)):
        with pytest.raises(UnknownPeriod, match="load some exports"):
            view.resolve(_values())


def test_a_link_pins_the_snapshot_unless_it_should_show_the_newest_data():
    view = View(grain=Grain.MONTH, period="2026-10", snapshot=3,
                filters=Filters.from_query_params({"channel": "paid_social,event"}))
    october = parse_period("2026-10")
    assert view.link(october, "sales", origin="https://kpi.example.com/") == (
        "https://kpi.example.com/sales?grain=month&comparison=previous&period=2026-10&snapshot=3"
        "&channel=event%2Cpaid_social")
    assert view.link(october, pinned=False) == "/?grain=month&comparison=previous&period=2026-10" \
                                               "&channel=event%2Cpaid_social"
    # what the link opens is this view again
    query = view.link(october, "sales").split("?", 1)[1]
    again, notices = View.from_query_params(dict(parse_qsl(query)))
    assert again == view and notices == []
