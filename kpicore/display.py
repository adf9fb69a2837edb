"""Numbers for people: values, changes and statuses formatted by unit."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from kpicore.catalog import Unit
from kpicore.scorecard import KpiResult, Status

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF "}


@dataclass(frozen=True)
class StatusLook:
    """How a status is drawn everywhere: in text, badges, tables and the KPI tree."""

    emoji: str
    icon: str  # Material Symbols name
    badge: str  # Streamlit colour name
    text: str  # CSS colour of its text in tables
    fill: str  # CSS colour of a shape filled with it


STATUS_LOOKS = {
    Status.ON_TRACK: StatusLook("🟢", "check_circle", "green", "#1a7f37", "#1a7f37"),
    Status.AT_RISK: StatusLook("🟠", "warning", "orange", "#bc4c00", "#bc4c00"),
    Status.OFF_TRACK: StatusLook("🔴", "error", "red", "#cf222e", "#cf222e"),
    Status.MATURING: StatusLook("⏳", "hourglass_top", "gray", "#6e7781", "#6e7781"),
    Status.PARTIAL: StatusLook("◐", "contrast", "gray", "#6e7781", "#afb8c1"),
    Status.STATUS_ONLY: StatusLook("◆", "inventory", "gray", "#6e7781", "#afb8c1"),
    Status.UNTARGETED: StatusLook("◇", "filter_alt", "gray", "#6e7781", "#afb8c1"),
    Status.NO_DATA: StatusLook("⚪", "remove", "gray", "#6e7781", "#d0d7de"),
}
# the colour of a tile's sparkline and of its change: the KPI's good way, its bad way, neither (Streamlit's names)
GOOD_WAY_COLORS = {True: "green", False: "red", None: "gray"}
UNIT_LABELS = {
    Unit.COUNT: "count", Unit.PERCENT: "%", Unit.CURRENCY: "currency", Unit.DAYS: "days",
    Unit.HOURS: "hours", Unit.SCORE: "score", Unit.RATIO: "ratio",
}


def format_value(value: float | None, unit: Unit, currency: str | None = "EUR", versus: float | None = None) -> str:
    """A KPI value as people read it: 12.3%, €1,234, 18.5 h, 3.2× (money without a sign when `currency` is None:
    its inputs mix currencies). Against `versus` (its target), a value that would read the same as the target
    without being it gets the decimals that tell them apart: NPS 34.94 against 35 reads 34.9, not 35."""
    if value is None:
        return "–"
    shown = _formatted(value, unit, currency, 0)
    if versus is not None and value != versus:
        for extra in range(1, 4):
            if shown != _formatted(versus, unit, currency, extra - 1):
                break
            shown = _formatted(value, unit, currency, extra)
    return shown


def _formatted(value: float, unit: Unit, currency: str | None, extra: int) -> str:
    """The value with `extra` more decimals than its unit shows."""
    if unit is Unit.PERCENT:
        return f"{value * 100:.{1 + extra}f}%"
    if unit is Unit.CURRENCY:
        symbol = "" if currency is None else CURRENCY_SYMBOLS.get(currency, currency + " ")
        sign = "-" if value < 0 else ""
        digits = (0 if abs(value) >= 100 else 2) + extra
        return f"{sign}{symbol}{abs(value):,.{digits}f}"
    if unit is Unit.HOURS:
        return f"{value:.{1 + extra}f} h"
    if unit is Unit.DAYS:
        return f"{value:.{1 + extra}f} d"
    if unit is Unit.RATIO:
        return f"{value:.{2 + extra}f}×"
    if unit is Unit.SCORE:
        return f"{value:.{extra}f}"
    if extra:
        return f"{value:,.{extra}f}"
    return f"{value:,.0f}" if abs(value - round(value)) < 1e-9 or abs(value) >= 10 else f"{value:,.1f}"


def format_change(result: KpiResult) -> str | None:
    """The change against the comparison: percentage points for rates, else relative."""
    change = result.change
    if change is None:
        return None
    unit = result.kpi.unit
    if unit is Unit.PERCENT:  # the difference of the two values as shown (to a tenth of a point)
        points = float(f"{result.value * 100:.1f}") - float(f"{result.comparison * 100:.1f}")
        return "±0.0 pp" if round(points, 1) == 0 else f"{points:+.1f} pp"
    if unit is Unit.SCORE:  # scores are shown whole: 32 against 25 is +7, even when 32.4 - 24.6 = 7.8
        return f"{float(f'{result.value:.0f}') - float(f'{result.comparison:.0f}'):+.0f} pts"
    relative = result.relative_change
    if relative is None:
        return f"{change:+,.1f}"
    return f"{relative * 100:+.1f}%"


def format_status(status: Status) -> str:
    """A status with its icon, e.g. '🟢 on track'."""
    return f"{STATUS_LOOKS[status].emoji} {status.value}"


def format_score(score: float | None) -> str:
    """A team score (weighted attainment) as a percentage of target."""
    return "–" if score is None else f"{score * 100:.0f}%"


def possessive(name: str) -> str:
    """"Sales'", "Service's": a team's name as the owner of something."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"


WORD_JOINER = "\u2060"  # invisible, and no web or mail address runs across it
_MARKDOWN_SIGNS = str.maketrans({c: "\\" + c for c in "\\`*[]<>|~$#!&"})  # links, images, emphasis, HTML, math
_EMPHASIS = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")  # '_' inside a word (opportunity_id) is plain
_ADDRESS = re.compile(r"(?<=:)(?=//)|(?<=\bwww)(?=\.)|(?<=@)", re.IGNORECASE)  # where an address would begin


def plain(text: object) -> str:
    """Text from outside (a file or column name, a cell, a URL parameter, a message quoting one) made safe to put
    into Markdown: no link, image, emphasis, HTML, Streamlit directive or list can come of it, and no web or mail
    address turns into a link (the renderer links those even with their signs escaped, so an invisible word
    joiner goes after 'http:', 'www' and '@'); line breaks and control characters become spaces. It reads as
    written."""
    out = _EMPHASIS.sub(r"\\_", _ADDRESS.sub(WORD_JOINER, printable(str(text))).translate(_MARKDOWN_SIGNS))
    if out[:1] in ("-", "+", "="):  # would start a list or a heading line
        return "\\" + out
    return re.sub(r"^(\d+)([.)])(?=\s)", r"\1\\\2", out)  # '1. ' would start a numbered list


_LINKING = re.compile(r"\]\s*[(\[]|<\s*[a-z][a-z0-9+.-]*:|[a-z][a-z0-9+.-]*://|\bwww\.|\bjavascript:|"
                      r"[^\s@]@[^\s@]+\.[a-z]", re.IGNORECASE)


def linking(text: str) -> str | None:
    """The part of a text that Markdown would turn into a link or an image (a '[..](..)' or '![..](..)', an
    '<scheme:...>', a web or mail address), or None. Text the deployment writes (the catalog) is checked with it,
    since pages show that text as Markdown."""
    found = _LINKING.search(text)
    return None if found is None else text[max(0, found.start() - 20):found.end() + 20]


def printable(text: str) -> str:
    """Text without control characters (terminal escapes, line breaks, bells): each becomes a space."""
    return "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in text)
