"""Reporting periods: labels, calendar arithmetic across year ends, ISO week 53, and helpful errors."""
from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpicore.errors import UnknownPeriod
from kpicore.periods import Comparison, Grain, containing, grain_of, parse_period

W, M, Q = Grain.WEEK, Grain.MONTH, Grain.QUARTER

# ISO weeks worked out by hand: Jan 1 2026 is a Thursday, so week 1 of 2026 starts Monday Dec 29 2025 and
# 2026 has 53 weeks (Dec 28 2026, always in the last week, is a Monday). Jan 1 2025 is a Wednesday of a
# non-leap year: 2025 has 52 weeks. Jan 1 2020 is a Wednesday of a leap year: 2020 has 53 weeks.


@pytest.mark.parametrize(("label", "start", "end", "grain"), [
    ("2026-10", date(2026, 10, 1), date(2026, 11, 1), M),
    ("2026-12", date(2026, 12, 1), date(2027, 1, 1), M),
    ("2026-02", date(2026, 2, 1), date(2026, 3, 1), M),
    ("2026-Q1", date(2026, 1, 1), date(2026, 4, 1), Q),
    ("2026-Q3", date(2026, 7, 1), date(2026, 10, 1), Q),
    ("2026-Q4", date(2026, 10, 1), date(2027, 1, 1), Q),
    ("2026-W01", date(2025, 12, 29), date(2026, 1, 5), W),
    ("2026-W40", date(2026, 9, 28), date(2026, 10, 5), W),
    ("2026-W53", date(2026, 12, 28), date(2027, 1, 4), W),
    ("2020-W53", date(2020, 12, 28), date(2021, 1, 4), W),
    ("2027-W01", date(2027, 1, 4), date(2027, 1, 11), W),
])
def test_parse_and_label(label, start, end, grain):
    period = parse_period(label)
    assert (period.start, period.end, period.grain) == (start, end, grain)
    assert period.label == label
    assert str(period) == label
    assert grain_of(label) is grain
    assert parse_period(label, grain) == period


@pytest.mark.parametrize(("label", "n", "expected"), [
    ("2026-12", 1, "2027-01"),
    ("2027-01", -1, "2026-12"),
    ("2026-11", 14, "2028-01"),
    ("2026-03", -15, "2024-12"),
    ("2026-Q4", 1, "2027-Q1"),
    ("2026-Q1", -1, "2025-Q4"),
    ("2026-Q2", -9, "2024-Q1"),
    ("2026-W52", 1, "2026-W53"),
    ("2026-W53", 1, "2027-W01"),
    ("2026-W01", -1, "2025-W52"),
    ("2025-W52", 1, "2026-W01"),
    ("2026-W10", 0, "2026-W10"),
])
def test_shift_across_year_ends(label, n, expected):
    assert parse_period(label).shift(n).label == expected


@pytest.mark.parametrize(("label", "comparison", "expected"), [
    ("2026-01", Comparison.PREVIOUS, "2025-12"),
    ("2026-01", Comparison.YEAR_AGO, "2025-01"),
    ("2026-Q1", Comparison.PREVIOUS, "2025-Q4"),
    ("2026-Q3", Comparison.YEAR_AGO, "2025-Q3"),
    ("2026-W01", Comparison.PREVIOUS, "2025-W52"),
    ("2027-W01", Comparison.PREVIOUS, "2026-W53"),
    ("2026-W40", Comparison.YEAR_AGO, "2025-W40"),
    ("2026-W53", Comparison.YEAR_AGO, "2025-W52"),  # 2025 has no week 53
    ("2021-W01", Comparison.YEAR_AGO, "2020-W01"),
    ("2021-W10", Comparison.YEAR_AGO, "2020-W10"),
])
def test_compared(label, comparison, expected):
    assert parse_period(label).compared(comparison).label == expected


def test_comparison_labels():
    assert Comparison.PREVIOUS.label == "previous period"
    assert Comparison.YEAR_AGO.label == "same period last year"


@pytest.mark.parametrize(("label", "message"), [
    ("2026-13", "'2026-13' does not exist in the calendar"),
    ("2026-00", "'2026-00' does not exist in the calendar"),
    ("2026-W54", "'2026-W54' does not exist in the calendar"),
    ("2026-W00", "'2026-W00' does not exist in the calendar"),
    ("2025-W53", "'2025-W53' does not exist in the calendar"),
    ("2026-Q5", "'2026-Q5' is not a period. Write a month as 2026-10, a quarter as 2026-Q3, an ISO week as "
                "2026-W40 or a year as 2026."),
    ("2026-Q0", "'2026-Q0' is not a period."),
    ("oct 2026", "'oct 2026' is not a period. Write a month as 2026-10"),
    ("", "'' is not a period."),
    ("2026-1", "'2026-1' is not a period."),
    ("26-10", "'26-10' is not a period."),
    ("2026-10 ", "'2026-10 ' is not a period."),
])
def test_malformed_labels_raise_unknown_period_with_a_helpful_message(label, message):
    with pytest.raises(UnknownPeriod) as caught:
        parse_period(label)
    assert message in str(caught.value)


@pytest.mark.parametrize(("label", "grain", "message"), [
    ("2026-Q3", M, "'2026-Q3' is a quarter, but the grain is month: write the period like 2026-10."),
    ("2026-10", W, "'2026-10' is a month, but the grain is week: write the period like 2026-W40."),
    ("2026-W40", Q, "'2026-W40' is a week, but the grain is quarter: write the period like 2026-Q3."),
])
def test_grain_mismatch(label, grain, message):
    with pytest.raises(UnknownPeriod) as caught:
        parse_period(label, grain)
    assert str(caught.value) == message


@pytest.mark.parametrize(("day", "grain", "label"), [
    (date(2026, 11, 18), W, "2026-W47"),  # a Wednesday; its week starts Monday Nov 16
    (date(2026, 11, 16), W, "2026-W47"),
    (date(2026, 11, 22), W, "2026-W47"),  # Sunday, last day of the same week
    (date(2027, 1, 2), W, "2026-W53"),
    (date(2026, 1, 1), W, "2026-W01"),
    (date(2026, 11, 18), M, "2026-11"),
    (date(2026, 11, 18), Q, "2026-Q4"),
    (date(2026, 3, 31), Q, "2026-Q1"),
    (date(2026, 4, 1), Q, "2026-Q2"),
])
def test_containing(day, grain, label):
    period = containing(day, grain)
    assert period.label == label
    assert period.start <= day < period.end


@pytest.mark.parametrize(("label", "start", "shifted", "year_ago"), [
    ("2026", date(2026, 1, 1), "2027", "2025"),
    ("1999", date(1999, 1, 1), "2000", "1998"),
])
def test_a_year_is_a_period_of_its_own(label, start, shifted, year_ago):
    year = parse_period(label)
    assert (year.grain, year.start, year.end, year.label) == (Grain.YEAR, start, date(start.year + 1, 1, 1), label)
    assert year.shift(1).label == shifted
    assert year.compared(Comparison.YEAR_AGO).label == year_ago == year.compared(Comparison.PREVIOUS).label
    assert containing(date(start.year, 12, 31), Grain.YEAR) == year
    with pytest.raises(UnknownPeriod, match="is a year, but the grain is month"):
        parse_period(label, Grain.MONTH)


def test_periods_order_by_start():
    periods = [parse_period(label) for label in ("2026-03", "2025-12", "2026-01")]
    assert [p.label for p in sorted(periods)] == ["2025-12", "2026-01", "2026-03"]


days = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31))
grains = st.sampled_from(list(Grain))


@given(days, grains)
def test_label_parse_label_is_identity(day, grain):
    period = containing(day, grain)
    assert parse_period(period.label) == period
    assert parse_period(period.label, grain).label == period.label


@given(days, grains, st.integers(min_value=-1000, max_value=1000))
def test_shift_there_and_back_is_identity(day, grain, n):
    period = containing(day, grain)
    assert period.shift(n).shift(-n) == period


@given(days, grains)
def test_periods_tile_the_calendar(day, grain):
    period = containing(day, grain)
    assert period.start <= day < period.end
    assert period.shift(1).start == period.end
    assert containing(period.end, grain) == period.shift(1)
