"""The meeting report: a period's story, customer outcomes, team scores, top tensions with their charts and the
check-ins, as Markdown (for a wiki or chat), one self-contained HTML file (charts as inline SVG) or an A4 PDF.

The words and numbers are built once here, from the same scorecard, tensions and formatting as the pages; the
three formats only lay them out.
"""
from __future__ import annotations

import html
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kpicore.catalog import Catalog
from kpicore.checkins import CheckIn
from kpicore.compute import KpiValues
from kpicore.display import format_change, format_score, format_value
from kpicore.filters import Filters
from kpicore.periods import Comparison, Period
from kpicore.scorecard import KpiResult, Scorecard
from kpicore.story import story
from kpicore.tensions import Tension

if TYPE_CHECKING:  # charts (Altair, pandas) is imported when a report is built: a command that makes none
    from kpicore import charts  # starts a second sooner

FORMATS = ("md", "html", "pdf")
TOP_TENSIONS = 3
KPI_HEADER = ("KPI", "Value", "Change", "Target", "Status")


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Section:
    """A heading with its paragraphs, and optionally a table and a chart (a Vega-Lite spec)."""

    title: str
    text: tuple[str, ...] = ()
    table: Table | None = None
    chart: charts.Spec | None = None
    level: int = 2


@dataclass(frozen=True)
class Report:
    title: str
    facts: str  # period, comparison, filters, as-of date and snapshot
    link: str  # the live view, snapshot pinned
    story: str
    sections: tuple[Section, ...]


def kpi_row(result: KpiResult, currency: str) -> tuple[str, ...]:
    """A KPI as the pages' tables show it: value, change, target (in the catalog's currency) and status."""
    kpi = result.kpi
    return (kpi.label, format_value(result.value, kpi.unit, result.currency, versus=result.target),
            format_change(result) or "–", format_value(result.target, kpi.unit, currency), result.status.value)


def kpi_table(results: Sequence[KpiResult], currency: str) -> Table:
    return Table(KPI_HEADER, tuple(kpi_row(r, currency) for r in results))


def build(catalog: Catalog, values: KpiValues, card: Scorecard, tensions: Sequence[Tension],
          notes: Sequence[CheckIn], facts: str, link: str, team: str | None = None) -> Report:
    """The report of a scorecard (one team's with `team`): `notes` are the period's check-ins, `facts` the line
    naming the view and data, `link` the live view."""
    from kpicore import charts

    teams = [t for t in card.teams if team is None or t.team == team]
    shown = [t for t in tensions if team is None or team in t.teams][:TOP_TENSIONS]
    title = f"KPI scorecard{f' · {teams[0].label}' if team else ''} · {card.period.label}"
    sections = [Section("Customer outcomes", table=kpi_table(card.outcomes, catalog.currency))]
    sections.append(Section("Team scores", table=Table(
        ("Team", "Score", "Own KPIs", "Customer outcomes", "Status"),
        tuple((t.label, format_score(t.score), format_score(t.own_score), format_score(t.customer_score),
               t.status.value) for t in teams))))
    sections += [Section(f"{t.label} KPIs", table=kpi_table(t.kpis, catalog.currency), level=3) for t in teams]
    if shown:
        sections.append(Section("Top tensions"))
        for tension in shown:
            first, second = tension.team_labels
            who = f"within {first}" if first == second else f"{first} vs {second}"
            sections.append(Section(f"{tension.kpi.label} vs {tension.counterweight.label} ({who})",
                                    (tension.sentence, tension.rarity),
                                    chart=charts.tension_chart(tension, values, catalog.currency, notes=notes),
                                    level=3))
    else:
        sections.append(Section("Top tensions", ("No KPI pulls against its counterweight.",)))
    labels = {k.id: k.label for k in catalog.kpis}
    mine = {r.kpi.id for r in card.outcomes} | {r.kpi.id for t in teams for r in t.kpis}
    lines = tuple(f"{labels[n.kpi]}: {n.line}" for n in notes if n.kpi in mine)
    sections.append(Section(f"Check-ins of {card.period.label}", lines or ("No check-ins.",)))
    return Report(title, facts, link, story(card, tensions, team), tuple(sections))


def facts_line(values: KpiValues, period: Period, comparison: Comparison, filters: Filters, snapshot: int,
               note: str) -> str:
    """'Month 2026-10 · compared with the previous period (2026-09) · data as of 2026-10-31 · snapshot 3 (...)'."""
    filtered = f" · filtered by {filters.describe()}" if filters else ""
    days = [d for d in values.as_of.values() if d is not None]
    return (f"{period.grain.value.capitalize()} {period.label} · compared with {comparison.label} "
            f"({period.compared(comparison).label}){filtered} · data as of {max(days).isoformat() if days else '–'}"
            f" · snapshot {snapshot} ({note})")


def file_name(period: Period, team: str | None, form: str) -> str:
    """'kpi-report-2026-10-sales.pdf'."""
    return f"kpi-report-{period.label}{f'-{team}' if team else ''}.{form}"


MIME = {"md": "text/markdown", "html": "text/html", "pdf": "application/pdf"}


def render(report: Report, form: str) -> bytes:
    """The report in one of FORMATS."""
    if form == "md":
        return markdown(report).encode("utf-8")
    if form == "html":
        return to_html(report).encode("utf-8")
    if form == "pdf":
        return to_pdf(report)
    raise ValueError(f"unknown report format {form!r}; use one of {', '.join(FORMATS)}")


# --- Markdown ---------------------------------------------------------------------------------------------------


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|~&"})


def _md(text: str) -> str:
    """Text that Markdown shows as written: no link, image, emphasis, HTML or table break from data or a note
    (only the signs that mean something mid-line are escaped, so that '98.9%' pastes as it reads)."""
    out = text.translate(_MD_SPECIAL)
    return "\\" + out if out[:1] in ("#", "+", "-", "=", "!") else out


_LEFT = ("Status",)  # columns of words, not numbers


def markdown(report: Report) -> str:
    lines = [f"# {_md(report.title)}", "", f"*{_md(report.facts)}*", "", f"> {_md(report.story)}", "",
             f"Live view: <{report.link}>", ""]
    for section in report.sections:
        lines += [f"{'#' * section.level} {_md(section.title)}", ""]
        lines += [line for text in section.text if text for line in (_md(text), "")]
        if section.table:
            lines.append("| " + " | ".join(_md(h) for h in section.table.header) + " |")
            lines.append("|" + "|".join(" --- " if h in _LEFT or i == 0 else " ---: "
                                        for i, h in enumerate(section.table.header)) + "|")
            lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in section.table.rows]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# --- HTML -------------------------------------------------------------------------------------------------------

CHART_WIDTH = 640  # px of a chart in the HTML report, and (scaled) in the PDF

_CSS = """body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:52rem;margin:2rem auto;
padding:0 1rem;color:#1f2328;line-height:1.45}h1{font-size:1.6rem;margin-bottom:.2rem}.facts{color:#59636e}
.story{background:#ddf4ff;border-left:4px solid #1f6feb;padding:.6rem .9rem;font-size:1.1rem}
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem}th,td{border-bottom:1px solid #d1d9e0;
padding:.25rem .5rem;text-align:right}th:first-child,td:first-child,th:last-child,td:last-child{text-align:left}
figure{margin:.5rem 0 1.2rem}figure svg{max-width:100%;height:auto}"""


def to_html(report: Report) -> str:
    """One self-contained page: inline CSS and the charts as inline SVG, nothing fetched from the network."""
    from kpicore import charts

    e = html.escape
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{e(report.title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{e(report.title)}</h1>", f'<p class="facts">{e(report.facts)}</p>',
             f'<p class="story">{e(report.story)}</p>',
             f'<p>Live view: <a href="{e(report.link)}">{e(report.link)}</a></p>']
    for section in report.sections:
        parts.append(f"<h{section.level}>{e(section.title)}</h{section.level}>")
        parts += [f"<p>{e(text)}</p>" for text in section.text if text]
        if section.table:
            parts.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in section.table.header)
                         + "</tr></thead><tbody>")
            parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in section.table.rows]
            parts.append("</tbody></table>")
        if section.chart:
            parts.append(f'<figure aria-label="{e(section.title)}">{charts.to_svg(section.chart, CHART_WIDTH)}'
                         "</figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


# --- PDF --------------------------------------------------------------------------------------------------------

FONT_PATHS = (  # a Unicode TrueType font for the PDF (euro sign, dashes, arrows): the first one found
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
)
_PLAIN = str.maketrans({"€": "EUR ", "–": "-", "—": "-", "→": "->", "≥": ">=", "≤": "<=", "×": "x", "±": "+/-",
                        "✎": "*", "·": "-", "…": "...", "“": '"', "”": '"', "’": "'"})


def pdf_font() -> Path | None:
    """The Unicode font the PDF uses ($KPI_PDF_FONT, else a common system one); None: the PDF's built-in
    Helvetica, with the few signs it lacks written out (EUR, ->, >=)."""
    chosen = os.environ.get("KPI_PDF_FONT")
    for path in ((chosen,) if chosen else FONT_PATHS):
        if Path(path).is_file():
            return Path(path)
    return None


def to_pdf(report: Report) -> bytes:
    """A4 pages with 18 mm margins; every line wraps inside them, tables get column widths that fit the page."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    from kpicore import charts

    pdf = FPDF(format="A4", unit="mm")
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(True, margin=18)
    font = pdf_font()
    if font is not None:
        pdf.add_font("body", "", str(font))
        family = "body"
    else:
        family = "helvetica"

    def plain(text: str) -> str:
        """The text as the font can write it (the built-in font lacks the euro sign and a few more)."""
        return text if font else text.translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")
    pdf.add_page()
    width = pdf.epw

    def para(text: str, size: float = 10, gap: float = 1.5) -> None:
        pdf.set_font(family, size=size)
        pdf.multi_cell(width, size * 0.5, plain(text), align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    para(report.title, 18, 1)
    pdf.set_text_color(89, 99, 110)
    para(report.facts, 9)
    pdf.set_text_color(31, 35, 40)
    pdf.set_fill_color(221, 244, 255)
    pdf.set_font(family, size=11)
    pdf.multi_cell(width, 5.5, plain(report.story), fill=True, padding=2, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    para(f"Live view: {report.link}", 9, 3)
    for section in report.sections:
        png = charts.to_png(section.chart, CHART_WIDTH) if section.chart else None
        if png is not None:
            pixels = _png_size(png)
            tall = width * pixels[1] / pixels[0]
            if pdf.will_page_break(tall + 30):  # a tension's title, sentences and chart on one page
                pdf.add_page()
        para(section.title, 14 if section.level == 2 else 12, 1)
        for text in section.text:
            if text:
                para(text)
        if section.table:
            pdf.set_font(family, size=9)
            pdf.set_draw_color(209, 217, 224)
            first = 0.36 if len(section.table.header) == 5 else 0.3
            rest = (1 - first) / (len(section.table.header) - 1)
            with pdf.table(col_widths=(first, *[rest] * (len(section.table.header) - 1)), width=width,
                           text_align=("LEFT", *["RIGHT"] * (len(section.table.header) - 1)),
                           headings_style=FontFace(emphasis="BOLD" if font is None else None,
                                                   fill_color=(240, 242, 245)), cell_fill_mode="NONE",
                           line_height=4.6, padding=0.8) as table:
                for row in (section.table.header, *section.table.rows):
                    cells = table.row()
                    for cell in row:
                        cells.cell(plain(cell))
            pdf.ln(3)
        if png is not None:
            pdf.image(io.BytesIO(png), w=width)
            pdf.ln(3)
    return bytes(pdf.output())


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height of a PNG, from its header."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
