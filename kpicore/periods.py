"""Reporting periods: weeks, months, quarters and years, their labels and arithmetic."""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum
from functools import cached_property

from kpicore.errors import UnknownPeriod


class Grain(Enum):
    """How long one reporting period is."""

    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"

    @property
    def months(self) -> int:
        """Months in one period (0 for a week)."""
        return {Grain.WEEK: 0, Grain.MONTH: 1, Grain.QUARTER: 3, Grain.YEAR: 12}[self]


class Comparison(Enum):
    """What a period's value is compared with."""

    PREVIOUS = "previous"
    YEAR_AGO = "year_ago"

    @property
    def label(self) -> str:
        """How the comparison is named on screen."""
        return {Comparison.PREVIOUS: "previous period", Comparison.YEAR_AGO: "same period last year"}[self]


_PATTERNS = {
    Grain.WEEK: re.compile(r"^(\d{4})-W(\d{2})$"),
    Grain.MONTH: re.compile(r"^(\d{4})-(\d{2})$"),
    Grain.QUARTER: re.compile(r"^(\d{4})-Q([1-4])$"),
    Grain.YEAR: re.compile(r"^(\d{4})()$"),
}
_EXAMPLES = {Grain.WEEK: "2026-W40", Grain.MONTH: "2026-10", Grain.QUARTER: "2026-Q3", Grain.YEAR: "2026"}


@dataclass(frozen=True, order=True)
class Period:
    """One reporting period [start, end), end exclusive."""

    start: date
    grain: Grain

    @cached_property
    def end(self) -> date:
        """First day after the period (asked for thousands of times per computation, so kept once known)."""
        return self.shift(1).start

    @property
    def label(self) -> str:
        """The period as written in URLs and on the command line."""
        if self.grain is Grain.WEEK:
            year, week, _ = self.start.isocalendar()
            return f"{year}-W{week:02d}"
        if self.grain is Grain.MONTH:
            return f"{self.start.year}-{self.start.month:02d}"
        if self.grain is Grain.QUARTER:
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        return str(self.start.year)

    def shift(self, n: int) -> Period:
        """The period n periods later (earlier for negative n)."""
        if self.grain is Grain.WEEK:
            return Period(self.start + timedelta(weeks=n), self.grain)
        months = n * self.grain.months
        index = self.start.year * 12 + self.start.month - 1 + months
        return Period(date(index // 12, index % 12 + 1, 1), self.grain)

    def compared(self, comparison: Comparison) -> Period:
        """The period this one is compared with."""
        if comparison is Comparison.PREVIOUS:
            return self.shift(-1)
        if self.grain is Grain.WEEK:
            year, week, _ = self.start.isocalendar()
            try:
                return parse_period(f"{year - 1}-W{week:02d}", Grain.WEEK)
            except UnknownPeriod:  # week 53 has no twin in a 52-week year
                return parse_period(f"{year - 1}-W52", Grain.WEEK)
        return self.shift(-12 // self.grain.months)

    def __str__(self) -> str:
        return self.label


def add_months(day: date, months: int) -> date:
    """The same day `months` months later (earlier when negative), the month's last day where it is shorter."""
    index = day.year * 12 + day.month - 1 + months
    year, month = index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def containing(day: date, grain: Grain) -> Period:
    """The period of `grain` that contains `day`."""
    if grain is Grain.WEEK:
        return Period(day - timedelta(days=day.weekday()), grain)
    if grain is Grain.MONTH:
        return Period(date(day.year, day.month, 1), grain)
    if grain is Grain.QUARTER:
        return Period(date(day.year, (day.month - 1) // 3 * 3 + 1, 1), grain)
    return Period(date(day.year, 1, 1), grain)


def grain_of(label: str) -> Grain:
    """The grain a period label is written in."""
    for grain, pattern in _PATTERNS.items():
        if pattern.match(label):
            return grain
    raise UnknownPeriod(
        f"'{label}' is not a period. Write a month as 2026-10, a quarter as 2026-Q3, "
        "an ISO week as 2026-W40 or a year as 2026."
    )


def parse_period(label: str, grain: Grain | None = None) -> Period:
    """Parse '2026-10', '2026-Q3' or '2026-W40'; `grain`, if given, must match."""
    found = grain_of(label)
    if grain is not None and found is not grain:
        raise UnknownPeriod(
            f"'{label}' is a {found.value}, but the grain is {grain.value}: "
            f"write the period like {_EXAMPLES[grain]}."
        )
    year_text, part_text = _PATTERNS[found].match(label).groups()  # type: ignore[union-attr]
    year, part = int(year_text), int(part_text or 1)
    try:
        if found is Grain.WEEK:
            return Period(date.fromisocalendar(year, part, 1), found)
        if found is Grain.MONTH:
            return Period(date(year, part, 1), found)
        if found is Grain.QUARTER:
            return Period(date(year, (part - 1) * 3 + 1, 1), found)
        return Period(date(year, 1, 1), found)
    except ValueError:
        raise UnknownPeriod(f"'{label}' does not exist in the calendar.") from None
