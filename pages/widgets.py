"""The pieces pages show: KPI tiles, the outcome strip, scorecards, tensions and journey tables."""
from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import streamlit as st

from kpicore import actions, checkins, report
from kpicore.catalog import CUSTOMER, Catalog, Kpi
from kpicore.charts import tension_chart, trend_chart
from kpicore.display import GOOD_WAY_COLORS, STATUS_LOOKS, format_change, format_score, format_value, plain
from kpicore.errors import KpiError
from kpicore.glossary import formula_text
from kpicore.journey import ChannelChurn, Journey, Step
from kpicore.periods import Comparison
from kpicore.scorecard import KpiResult, Scorecard, Status, TeamScore
from kpicore.story import contrast, story
from kpicore.tensions import Tension, TensionKind
from kpicore.texts import SAMPLE_LINE, WELCOME_HERE, WELCOME_TEXT, WELCOME_TITLE
from pages.common import Context, actor, chart, data_page, team_link, writing


def page_header(ctx: Context, title: str, period: bool = True) -> None:
    """Page title with the period and comparison it shows (where the page depends on them)."""
    st.title(title)
    if ctx.empty or not period:
        return
    filtered = f" · filtered by {plain(ctx.view.filters.describe())}" if ctx.view.filters else ""
    st.caption(f"{ctx.view.grain.value.capitalize()} {ctx.period.label} · compared with {ctx.comparison_label}"
               f"{filtered}")


def story_line(ctx: Context, card: Scorecard, team: str | None = None) -> None:
    """The period's story in one or two sentences, first thing under the title, and its two numbers side by side:
    the teams' own targets against the customer outcomes (kpicore.story)."""
    st.info(story(card, ctx.tensions(), team), icon=":material/campaign:")
    with st.container(horizontal=True, key="contrast"):
        for label, value in contrast(card, team):
            st.metric(label, value, border=True, width="content")


def sample_banner(ctx: Context) -> None:
    """One line on every page while the bundled sample data is loaded, with the way to one's own data."""
    if not ctx.sample:
        return
    with st.container(horizontal=True, vertical_alignment="center", key="sample-banner"):
        st.markdown(f":material/science: {SAMPLE_LINE}", width="content")
        st.page_link(data_page(), label="Load your own exports", icon=":material/upload_file:")


def welcome(title: str) -> None:
    """What every page shows while no table has data: what to load and where (on the Data page: below)."""
    if title not in ("Data", "Glossary"):
        st.title(title)
    with st.container(border=True, key="welcome"):
        st.markdown(f"#### {WELCOME_TITLE}")
        if title == "Data":
            st.markdown(WELCOME_HERE)
            return
        st.markdown(WELCOME_TEXT)
        with st.container(horizontal=True):
            st.page_link(data_page(), label="Upload exports on the Data page", icon=":material/upload_file:")
            st.page_link(data_page(), label="Templates for every table", icon=":material/table_view:",
                         query_params={"section": "templates"})


def metric(result: KpiResult, ctx: Context) -> None:
    """A KPI tile: value, a small trend of its mature values coloured by the way the line goes (green the KPI's
    good way, red its bad way), the change coloured by the way it went, status, target and as-of date."""
    kpi, currency = result.kpi, result.currency
    value = format_value(result.value, kpi.unit, currency, versus=result.target)
    if result.status is Status.MATURING:
        value = f"{value} so far"
    target = format_value(result.target, kpi.unit, ctx.catalog.currency)  # targets are the catalog's
    as_of = f" · as of {result.as_of.isoformat()}" if result.as_of else ""
    trend = result.mature_trend
    explained = f"{kpi.description}\n\n**Formula:** {formula_text(kpi.formula, ctx.catalog)}"
    with st.container(border=True, key=f"tile-{kpi.id}"):
        # Streamlit colours a metric's chart like its delta, and a metric without a delta grey: the delta carries
        # the line's colour, hidden by APP_CSS, and the change is a badge of its own, coloured by its own way
        st.metric(kpi.label, value, format_change(result) or "·", delta_color=GOOD_WAY_COLORS[result.line_improved],
                  delta_arrow="off", help=explained + (f"\n\n{result.cohort}" if result.cohort else ""),
                  chart_data=list(trend) if len(trend) > 1 else None)
        if (change := change_badge(result)) is not None:
            st.caption(f"{change} vs {result.comparison_period.label}")
        cohort = f" · cohort {result.period.label}" if result.period != ctx.period else ""
        unscored = "" if kpi.scored else " :gray-badge[shown, not scored]"
        st.caption(f"{status_badge(result.status)}{unscored} Target {target}{as_of}{cohort}")
        if result.note:
            st.caption(f":material/info: {result.note}")
        for note in ctx.notes(kpi.id):
            st.text(f"✎ {note.line}")  # plain text: a check-in is never Markdown or HTML


APP_CSS = """<style>
[class*="st-key-tile-"] [data-testid="stMetricDelta"] { display: none; }
[data-testid="stElementToolbar"] button[aria-label="Download as CSV"] { display: none !important; }
</style>"""  # a tile's change is its own badge (see metric); the tables' own CSV download would write cells raw


def app_style() -> None:
    """Once per run: the app's constant CSS. Table widgets lose their own CSV download, which writes a cell such
    as =HYPERLINK(...) as a live formula: KPI and journey tables have a CSV button that defuses them instead."""
    st.markdown(APP_CSS, unsafe_allow_html=True)  # kpicore's own constant CSS, never user text


def change_badge(result: KpiResult) -> str | None:
    """The change against the comparison as a badge, ':green-badge[:material/arrow_upward: +0.4 pp]' (green when
    it went the KPI's good way), None while the cohort matures or without a comparison."""
    change = None if result.status is Status.MATURING else format_change(result)
    if change is None:
        return None
    if change.startswith("±"):  # too small to show: no way, no colour
        return f":gray-badge[{change}]"
    arrow = ":material/arrow_upward:" if (result.change or 0) > 0 else ":material/arrow_downward:"
    return f":{GOOD_WAY_COLORS[result.improved]}-badge[{arrow} {change}]"


def outcome_strip(ctx: Context, card: Scorecard) -> None:
    """The shared customer outcomes, on top of every page."""
    st.subheader("Customer outcomes", help="Shared by every team and counted in every team's score (except those "
                                           "marked 'shown, not scored': see the Glossary).")
    per_row = tiles_per_row(len(card.outcomes))
    for start in range(0, len(card.outcomes), per_row):
        columns = st.columns(per_row)
        for column, result in zip(columns, card.outcomes[start:start + per_row], strict=False):
            with column:
                metric(result, ctx)


def tiles_per_row(count: int) -> int:
    """Three or four tiles a row (five cut the labels at 1280 px): the fewer rows, then the fuller last row, so
    that nine outcomes are three rows of three rather than two of four and one alone."""
    return min((4, 3), key=lambda n: (-(-count // n), -(count % n or n)))


def score_line(team: TeamScore) -> str:
    """'Score 94% (own KPIs 102%, customer outcomes 86%)', and what a filter leaves out of it."""
    left = f" · {team.untargeted} KPI(s) without a target for this slice not scored" if team.untargeted else ""
    return (f"Score **{format_score(team.score)}** · own KPIs {format_score(team.own_score)} · "
            f"customer outcomes {format_score(team.customer_score)}{left}")


def trend(result: KpiResult, ctx: Context) -> None:
    """The KPI's trend chart."""
    notes = checkins.on(ctx.checkins, result.kpi.id)  # of every period the chart shows
    chart(ctx, f"trend-{result.kpi.id}-{','.join(str(n.id) for n in notes)}",
          lambda: trend_chart(result, ctx.view.comparison.label.capitalize(), result.currency,
                              compare=ctx.view.comparison is not Comparison.PREVIOUS, notes=notes))


def score_table(results: tuple[KpiResult, ...], ctx: Context) -> pd.DataFrame:
    """A team's KPIs as a compact table of formatted values (the report's words: kpicore.report)."""
    return pd.DataFrame(list(report.kpi_table(results, ctx.catalog.currency).rows), columns=list(report.KPI_HEADER))


def relations(catalog: Catalog, kpi: Kpi) -> str:
    """What a KPI drives, what guards it and what it guards, with owners, as Markdown."""
    owners = {t.id: t.label for t in catalog.teams} | {CUSTOMER: "customer outcome"}

    def names(ids: Iterable[str]) -> str:
        listed = [f"{catalog.kpi(i).label} ({owners.get(catalog.kpi(i).team or '', '')})" for i in ids]
        return ", ".join(listed) or "–"

    guards = [k.id for k in catalog.kpis if kpi.id in k.counterweights]
    return (f"**Drives:** {names(kpi.drives)}  \n**Guarded by:** {names(kpi.counterweights)}  \n"
            f"**Guards:** {names(guards)}")


def status_badge(status: Status) -> str:
    """A coloured Markdown badge for a status, e.g. a red 'off track'."""
    look = STATUS_LOOKS[status]
    return f":{look.badge}-badge[:material/{look.icon}: {status.value}]"


def styled_scores(results: tuple[KpiResult, ...], ctx: Context) -> pd.io.formats.style.Styler:
    """The score table with each status coloured."""
    css = {s.value: f"color: {STATUS_LOOKS[s].text}; font-weight: 600" for s in Status}
    return score_table(results, ctx).style.map(lambda v: css.get(v, ""), subset=["Status"])




def kpi_statuses(card: Scorecard) -> dict[str, Status]:
    """The status of every scored KPI in a scorecard."""
    return {r.kpi.id: r.status for r in card.outcomes + tuple(r for t in card.teams for r in t.kpis)}


def tensions(ctx: Context, team: str | None = None, limit: int = 4) -> None:
    """The tension panel: KPIs pulling against their counterweights, most severe first (a team's own, if given)."""
    found = list(ctx.tensions())
    if team is not None:
        found = [t for t in found if team in t.teams]
    st.subheader("Tensions", help="A KPI that improved while a KPI guarding it worsened, beyond their usual noise "
                                  "(see docs/tensions.md). The most severe of each pair of teams first.")
    if not found:
        st.success(f"No KPI pulls against its counterweight in {ctx.period.label}: nothing is won at another team's "
                   "or the customer's expense.", icon=":material/balance:")
        return
    for index, tension in enumerate(found[:limit]):
        _tension(ctx, tension, index, team)
    if len(found) > limit:
        more = len(found) - limit
        with st.expander(f"{more} more {'tension' if more == 1 else 'tensions'}, less unusual"):
            for index, tension in enumerate(found[limit:], start=limit):
                _tension(ctx, tension, index, team)


def _tension(ctx: Context, tension: Tension, index: int, here: str | None) -> None:
    """One tension: who pulls against whom, the sentence, links to the teams, both series in one chart."""
    key = f"tension-{tension.kpi.id}-{tension.counterweight.id}-{tension.kind.value}"
    with st.container(border=True, key=key):
        text, picture = st.columns([2, 3])
        with text:
            first, second = tension.team_labels
            who = f"within {first}" if first == second else f"{first} vs {second}"
            when = (f"trend over {len(tension.window)} {ctx.view.grain.value}s" if tension.kind is TensionKind.TREND
                    else f"{ctx.period.label} vs {tension.window[0].label}")
            st.markdown(f":red-badge[:material/compare_arrows: {who}] :gray-badge[{when}]")
            st.markdown(tension.sentence)
            st.caption(tension.rarity)
            for team_id in dict.fromkeys(tension.teams):
                if team_id not in (CUSTOMER, here):
                    team_link(ctx, team_id, f"Open {ctx.catalog.team(team_id).label}")
        with picture:
            notes = [n for n in ctx.checkins if n.kpi in (tension.kpi.id, tension.counterweight.id)]
            chart(ctx, f"tension-{key}-{tension.period.label}-{','.join(str(n.id) for n in notes)}",
                  lambda: tension_chart(tension, ctx.values, ctx.catalog.currency, notes=notes),
                  key=f"tension-chart-{index}")


def owner_labels(ctx: Context) -> dict[str, str]:
    """The label of each journey step's owner: its team, or 'Customer outcome'."""
    return {owner: ctx.catalog.owner_label(owner) for _, owner in ctx.catalog.journey.owners}


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def journey_steps(found: Journey, owners: dict[str, str]) -> pd.io.formats.style.Styler:
    """The selected cohort's steps as a table, the maturing ones greyed."""
    frame = pd.DataFrame([{
        "Step": s.label + (" (maturing)" if s.maturing else ""),
        "Owner": owners[s.owner],
        "Count": s.count,
        "From previous": s.shown(s.conversion),
        "Of the leads": s.shown(s.from_first),
        "Median days": "–" if s.median_days is None else f"{s.median_days:.1f}",
    } for s in found.steps])
    grey = [f"color: {STATUS_LOOKS[Status.MATURING].text}" if s.maturing else "" for s in found.steps]
    return frame.style.apply(lambda row: [grey[row.name]] * len(row), axis=1).format({"Count": "{:,}"})


def journey_cohorts(found: Journey) -> pd.io.formats.style.Styler:
    """The recent cohorts, newest first: each step's count and conversion from the previous step."""
    rows = []
    for cohort in reversed(found.cohorts):
        row: dict[str, object] = {"Cohort": cohort.period.label, "Leads": cohort.step(Step.LEAD).count}
        for s in cohort.steps[1:]:
            row[s.label] = f"{s.count:,} so far" if s.maturing else f"{s.count:,} · {_share(s.conversion)}"
        row["Lead → customer"] = _share(cohort.step(Step.CUSTOMER).from_first)
        rows.append(row)
    return pd.DataFrame(rows).style.format({"Leads": "{:,}"})


def early_churn_table(rows: list[ChannelChurn]) -> pd.DataFrame:
    """Early churn of the period's new customers by the channel that brought them."""
    return pd.DataFrame([{"Channel": r.channel, "New customers": r.customers, "Left within 90 days": r.churned,
                          "Early churn": _share(r.share)} for r in rows],
                        columns=["Channel", "New customers", "Left within 90 days", "Early churn"])


def median_days_help() -> str:
    """What each step's median days are measured between."""
    return "Median days between: " + "; ".join(f"{s.label}: {s.since}" for s in Step if s.since) + "."


def checkin_panel(ctx: Context, kpis: Iterable[Kpi]) -> None:
    """The period's check-ins on the page's KPIs, and a form to add one (stored with the author's name and time)."""
    shown = list(kpis)
    labels = {k.id: k.label for k in shown}
    found = [n for n in ctx.notes() if n.kpi in labels]
    with st.expander(f"Check-ins of {ctx.period.label} ({len(found)})", icon=":material/edit_note:",
                     expanded=bool(found)):
        for note in found:
            st.text(f"{labels[note.kpi]}: {note.line}")  # plain text: a check-in is never Markdown or HTML
        if not found:
            st.caption(f"No check-in on these KPIs in {ctx.period.label} yet.")
        me = actor()
        if not me.editor:
            st.caption("Writing a check-in needs the editor role (unlock editing in the sidebar).")
            return
        if not me.named:  # nobody signs in: the note is signed by hand
            st.text_input("Your name", max_chars=checkins.AUTHOR_LIMIT, key="checkin-author")
        with st.form("checkin", border=False):
            st.selectbox("KPI", list(labels), format_func=labels.__getitem__, key="checkin-kpi")
            st.text_input("Note", max_chars=checkins.NOTE_LIMIT, placeholder="e.g. campaign X paused on 14.10.",
                          key="checkin-note")
            st.form_submit_button("Add check-in", icon=":material/add_comment:", on_click=_add_checkin, args=(ctx,))
        if failed := st.session_state.pop("checkin-error", None):
            st.error(failed)


def _add_checkin(ctx: Context) -> None:
    """Store the form's check-in before the run that shows it; the note field empties only once it is stored."""
    state = st.session_state
    me = actor()
    try:
        with writing() as cursor:
            actions.add_checkin(cursor, me, ctx.catalog, state["checkin-kpi"], ctx.period, state["checkin-note"],
                                state.get("checkin-author", ""))
    except KpiError as error:
        state["checkin-error"] = str(error)
    else:
        state["checkin-note"] = ""
