"""The app side of kpicore: caching, URL state, the controls and the pieces every page shows."""
from __future__ import annotations

import runpy
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlencode

import duckdb
import pandas as pd
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from kpicore import store
from kpicore.catalog import CUSTOMER, Catalog, Kpi, catalog_path, load_catalog
from kpicore.charts import tension_chart, trend_chart
from kpicore.compute import KpiValues, compute
from kpicore.display import format_change, format_score, format_value
from kpicore.errors import CatalogError, KpiError
from kpicore.files import RawFile, max_upload_bytes, read_file
from kpicore.filters import DIMENSIONS, Filters, checked
from kpicore.filters import LABELS as FILTER_LABELS
from kpicore.filters import options as filter_options
from kpicore.glossary import formula_text
from kpicore.journey import ChannelChurn, Journey, Step, early_churn_by_channel, journey
from kpicore.mapping import Plan, apply_saved, propose, to_saved
from kpicore.periods import Comparison, Grain, Period
from kpicore.scorecard import KpiResult, Scorecard, Status, TeamScore, build_scorecard
from kpicore.tensions import Tension, TensionKind, find_tensions, spread_over_teams
from kpicore.view import View

VIEW_KEYS = ("grain", "period", "comparison", "snapshot", *DIMENSIONS)
ROUTER = Path(__file__).resolve().parent.parent / "dashboard.py"
STATUS_COLORS = {Status.ON_TRACK: "green", Status.AT_RISK: "orange", Status.OFF_TRACK: "red",
                 Status.MATURING: "gray", Status.NO_DATA: "gray"}
STATUS_ICONS = {Status.ON_TRACK: "check_circle", Status.AT_RISK: "warning", Status.OFF_TRACK: "error",
                Status.MATURING: "hourglass_top", Status.NO_DATA: "remove"}


@st.cache_resource
def _connection(path: str):  # noqa: ANN202 - a DuckDB connection shared by the whole process
    return store.connect(path)


@st.cache_resource
def _catalog(path: str, modified: float) -> Catalog:
    return load_catalog(path)


@st.cache_data(show_spinner="Computing KPIs…", max_entries=64)
def _values(db: str, schema: str, catalog_fingerprint: str, grain: Grain, filters: Filters,
            _catalog: Catalog) -> KpiValues:
    """KPI values, cached per database, snapshot, catalog version, grain and filters."""
    return compute(_connection(db).cursor(), _catalog, schema, grain, filters)


@st.cache_data(max_entries=16)
def _options(db: str, schema: str) -> dict[str, list[str]]:
    """The channels, segments and regions in a snapshot."""
    return filter_options(_connection(db).cursor(), schema)


def catalog() -> Catalog:
    """The catalog in use; a broken one stops the page with every problem listed."""
    path = catalog_path()
    try:
        return _catalog(str(path), path.stat().st_mtime if path.exists() else 0.0)
    except CatalogError as error:
        st.error(f"**The KPI catalog cannot be used.** Fix these problems in `{error.source}` and reload:")
        st.code("\n".join(str(issue) for issue in error.issues), language=None)
        st.stop()
        raise


@dataclass(frozen=True)
class Context:
    """What every page works from in one run."""

    catalog: Catalog
    snapshot: store.Snapshot
    latest: store.Snapshot
    view: View
    period: Period
    values: KpiValues
    notices: tuple[str, ...]

    def scorecard(self) -> Scorecard:
        """Customer outcomes and team scorecards for the period shown."""
        return build_scorecard(self.catalog, self.values, self.period, self.view.comparison)

    @property
    def comparison_label(self) -> str:
        return f"{self.view.comparison.label} ({self.period.compared(self.view.comparison).label})"


def leave_pages_directory_mode() -> None:
    """Route through dashboard.py, in this same run, when Streamlit ran a page file on its own.

    Until some run calls st.navigation, a fresh Streamlit server (and every AppTest run) treats
    `pages/` as an old-style pages directory, so the first visitor of e.g. /glossary would get that
    file without the router (no navigation, no controls). Running the router here, rather than
    rerunning, keeps the widget events of this run (a button click) intact.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        runpy.run_path(str(ROUTER), run_name="__main__")
        st.stop()


def context() -> Context:
    """Read the view from the URL (or the session), compute, and write the full view back to the URL."""
    leave_pages_directory_mode()
    cat = catalog()
    db = str(store.db_path())
    params = {key: st.query_params[key] for key in VIEW_KEYS if key in st.query_params}
    if not params and "view" in st.session_state:
        params = st.session_state["view"]
    view, notices = View.from_query_params(params)
    snapshot, latest = _snapshot(db, view, notices)
    filters, dropped = checked(view.filters, _options(db, snapshot.schema))
    view = replace(view, snapshot=snapshot.id, filters=filters)
    values = _values(db, snapshot.schema, cat.fingerprint, view.grain, filters, cat)
    notices += dropped
    period, more = view.resolve(values)
    wanted = view.to_query_params(period)
    for key in VIEW_KEYS:
        if key not in wanted and key in st.query_params:
            del st.query_params[key]
    for key, value in wanted.items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value
    st.session_state["view"] = wanted
    return Context(cat, snapshot, latest, replace(view, period=period.label), period, values, tuple(notices + more))


def _snapshot(db: str, view: View, notices: list[str]) -> tuple[store.Snapshot, store.Snapshot]:
    """The snapshot the view asks for (the latest if none or unknown) and the latest one."""
    cursor = _connection(db).cursor()
    latest = store.latest_snapshot(cursor)
    if view.snapshot is None or view.snapshot == latest.id:
        return latest, latest
    try:
        return store.snapshot(cursor, view.snapshot), latest
    except KpiError as error:
        notices.append(f"URL parameter snapshot: {error} Showing the latest data.")
        return latest, latest


def controls(ctx: Context) -> None:
    """Grain, period, comparison and filter pickers in the sidebar; a change goes to the URL."""
    with st.sidebar:
        st.header("View")
        grains = [g.value for g in Grain]
        grain = st.segmented_control("Grain", grains, default=ctx.view.grain.value, key=f"grain-{ctx.view.grain.value}",
                                     format_func=str.capitalize, required=True)
        labels = [p.label for p in reversed(ctx.values.periods)]
        period = st.selectbox("Period", labels, index=labels.index(ctx.period.label),
                              key=f"period-{ctx.period.label}", help="Latest complete period first.")
        comparisons = [c.value for c in Comparison]
        comparison = st.radio("Compare with", comparisons, index=comparisons.index(ctx.view.comparison.value),
                              key=f"comparison-{ctx.view.comparison.value}",
                              format_func=lambda c: Comparison(c).label.capitalize())
        st.header("Filters")
        options = _options(str(store.db_path()), ctx.snapshot.schema)
        picked = {}
        for dimension in DIMENSIONS:
            current = list(ctx.view.filters.values(dimension))
            picked[dimension] = st.multiselect(
                FILTER_LABELS[dimension].capitalize(), options[dimension], default=current,
                key=f"filter-{dimension}-{','.join(current)}", placeholder="All",
                help="Applies to every table that carries it; KPIs that cannot be filtered say so.")
        st.caption(f"Data as of {_latest_as_of(ctx)} · snapshot {ctx.snapshot.id} ({ctx.snapshot.note})")
    if ctx.snapshot.id != ctx.latest.id:
        st.info(f"You are looking at snapshot {ctx.snapshot.id} from {ctx.snapshot.created_at:%Y-%m-%d %H:%M}. "
                f"Newer data is in snapshot {ctx.latest.id}.", icon=":material/history:")
        if st.button("Show the latest data", key="latest-data"):
            st.query_params["snapshot"] = str(ctx.latest.id)
            st.session_state.pop("view", None)
            st.rerun()
    chosen = {"grain": grain, "period": period, "comparison": comparison, "snapshot": str(ctx.snapshot.id)}
    chosen |= {d: ",".join(sorted(v)) for d, v in picked.items() if v}
    if grain != ctx.view.grain.value:
        chosen.pop("period")
    if chosen != ctx.view.to_query_params(ctx.period):
        st.query_params.clear()
        st.query_params.update(chosen)
        st.session_state.pop("view", None)
        st.rerun()
    for notice in ctx.notices:
        st.warning(notice, icon="⚠️")


def _latest_as_of(ctx: Context) -> str:
    days = [d for d in ctx.values.as_of.values() if d is not None]
    return max(days).isoformat() if days else "–"


def page_header(ctx: Context, title: str) -> None:
    """Page title with the period and comparison it shows."""
    st.title(title)
    filtered = f" · filtered by {ctx.view.filters.describe()}" if ctx.view.filters else ""
    st.caption(f"{ctx.view.grain.value.capitalize()} {ctx.period.label} · compared with {ctx.comparison_label}"
               f"{filtered}")


def metric(result: KpiResult, ctx: Context) -> None:
    """A KPI tile: value, change, status, target, as-of date and a small trend."""
    kpi, currency = result.kpi, ctx.catalog.currency
    value = format_value(result.value, kpi.unit, currency)
    if result.status is Status.MATURING:
        value = f"{value} so far"
    delta = None if result.status is Status.MATURING else format_change(result, currency)
    inverse = kpi.direction is not None and kpi.direction.value == "down"
    flat = delta is not None and delta.startswith("±")  # a change too small to show has no colour
    target = format_value(result.target, kpi.unit, currency)
    as_of = result.as_of.isoformat() if result.as_of else "no data"
    trend = [p.value for p in result.trend if p.value is not None]
    explained = f"{kpi.description}\n\n**Formula:** {formula_text(kpi.formula, ctx.catalog)}"
    with st.container(border=True):
        st.metric(
            kpi.label, value, delta, delta_color="off" if flat else "inverse" if inverse else "normal",
            delta_arrow="off" if flat else "auto",
            help=explained + (f"\n\n{result.note}" if result.note else ""),
            chart_data=trend if len(trend) > 1 else None,
            delta_description=f"vs {result.comparison_period.label}" if delta else None,
        )
        cohort = f" · cohort {result.period.label}" if result.period != ctx.period else ""
        st.caption(f"{status_badge(result.status)} Target {target} · as of {as_of}{cohort}")
        if data_note := ctx.values.notes.get(kpi.id):
            st.caption(f":material/info: {data_note}")


def outcome_strip(ctx: Context, card: Scorecard) -> None:
    """The shared customer outcomes, on top of every page."""
    st.subheader("Customer outcomes", help="Shared by every team and counted in every team's score.")
    per_row = 4
    for start in range(0, len(card.outcomes), per_row):
        columns = st.columns(per_row)
        for column, result in zip(columns, card.outcomes[start:start + per_row], strict=False):
            with column:
                metric(result, ctx)


def score_line(team: TeamScore) -> str:
    """'Score 94% (own KPIs 102%, customer outcomes 86%)'."""
    return (f"Score **{format_score(team.score)}** · own KPIs {format_score(team.own_score)} · "
            f"customer outcomes {format_score(team.customer_score)}")


def trend(result: KpiResult, ctx: Context) -> None:
    """The KPI's trend chart."""
    st.altair_chart(trend_chart(result, ctx.view.comparison.label.capitalize(), ctx.catalog.currency))


def team_page(team_id: str, label: str) -> st.Page:
    """The page of one team (one script serves every team; the URL path names the team)."""
    return st.Page("pages/team.py", title=label, icon=":material/groups:", url_path=team_id)


def team_link(ctx: Context, team_id: str, label: str) -> None:
    """A link to a team's page that keeps the current view."""
    st.page_link(team_page(team_id, ctx.catalog.team(team_id).label), label=label,
                 icon=":material/arrow_forward:", query_params=ctx.view.to_query_params(ctx.period))


def score_table(results: tuple[KpiResult, ...], ctx: Context) -> pd.DataFrame:
    """A team's KPIs as a compact table of formatted values."""
    currency = ctx.catalog.currency
    return pd.DataFrame([
        {
            "KPI": r.kpi.label,
            "Value": format_value(r.value, r.kpi.unit, currency),
            "Change": format_change(r, currency) or "–",
            "Status": r.status.value,
        }
        for r in results
    ])


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
    return f":{STATUS_COLORS[status]}-badge[:material/{STATUS_ICONS[status]}: {status.value}]"


def styled_scores(results: tuple[KpiResult, ...], ctx: Context) -> pd.io.formats.style.Styler:
    """The score table with each status coloured."""
    css = {s.value: f"color: {STATUS_CSS[s]}; font-weight: 600" for s in Status}
    return score_table(results, ctx).style.map(lambda v: css.get(v, ""), subset=["Status"])


STATUS_CSS = {Status.ON_TRACK: "#1a7f37", Status.AT_RISK: "#bc4c00", Status.OFF_TRACK: "#cf222e",
              Status.MATURING: "#6e7781", Status.NO_DATA: "#6e7781"}


def connection() -> duckdb.DuckDBPyConnection:
    """A cursor on the process's shared DuckDB connection."""
    return _connection(str(store.db_path())).cursor()


def forget_view() -> None:
    """Drop the remembered view (after an import or restore, pages show the newest snapshot)."""
    st.session_state.pop("view", None)
    st.query_params.pop("snapshot", None)


def overview_link(ctx: Context, snapshot_id: int, label: str) -> None:
    """A link to the Overview of a given snapshot, keeping the rest of the view."""
    params = {**ctx.view.to_query_params(ctx.period), "snapshot": str(snapshot_id)}
    st.page_link(overview_page(), label=label, icon=":material/visibility:", query_params=params)


def overview_page() -> st.Page:
    """The Overview, the app's default page (served at /)."""
    return st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", url_path="overview",
                   default=True)


def upload_limit_mb() -> int:
    """The upload size limit in MB."""
    return max_upload_bytes() // (1024 * 1024)


def upload_key(file: UploadedFile) -> str:
    """A stable key for one uploaded file in this session."""
    return str(file.file_id)


def prepared_upload(file: UploadedFile) -> tuple[RawFile, Plan, str | None] | KpiError:
    """The uploaded file read from disk and its mapping (remembered across reruns), or why it cannot be used."""
    key, cache = upload_key(file), st.session_state.setdefault("uploads", {})
    if key not in cache:
        workdir = Path(tempfile.mkdtemp(prefix="kpi-upload-"))
        path = workdir / Path(file.name).name
        with path.open("wb") as sink:
            shutil.copyfileobj(file, sink, 1 << 20)
        try:
            raw = read_file(path, file.name, workdir)
        except KpiError as error:
            cache[key] = error
            return error
        plan, saved = propose(raw), store.mapping_for_headers(connection(), raw.columns)
        if saved is not None:
            plan = apply_saved(plan, raw, saved[1])
        cache[key] = (raw, plan, saved[0] if saved else None)
    return cache[key]


def replan(file: UploadedFile, table: str) -> Plan:
    """Recognise the file's columns again for another table chosen by the user."""
    raw, _, saved = prepared_upload(file)  # type: ignore[misc]
    return update_plan(file, propose(raw, table))


def update_plan(file: UploadedFile, plan: Plan) -> Plan:
    """Remember a corrected mapping for the file."""
    raw, _, saved = st.session_state["uploads"][upload_key(file)]
    st.session_state["uploads"][upload_key(file)] = (raw, plan, saved)
    return plan


def save_mapping(name: str, plan: Plan, raw: RawFile) -> None:
    """Keep the mapping under a name for the next export from the same tool."""
    store.save_mapping(connection(), name, to_saved(plan, raw))


def preview(raw: RawFile) -> pd.DataFrame:
    """The first rows of a file with its own column names (text as in the file)."""
    return pd.DataFrame(list(raw.sample[:20]), columns=list(raw.columns)) if raw.sample else pd.DataFrame(
        columns=list(raw.columns))


def problems_frame(rows: list[tuple[int, str, str, str]]) -> pd.DataFrame:
    """Rejected values as a table."""
    return pd.DataFrame(rows, columns=["Row", "Column", "Value", "Reason"])


def kpi_links(ctx: Context) -> dict[str, str]:
    """Where each scored KPI is shown: its team page (at the KPI), the Overview for customer outcomes."""
    query = urlencode(ctx.view.to_query_params(ctx.period))
    return {k.id: (f"/?{query}" if k.team == CUSTOMER else f"/{k.team}?{query}#{k.id.replace('_', '-')}")
            for k in ctx.catalog.kpis if not k.is_measure}


def kpi_statuses(card: Scorecard) -> dict[str, Status]:
    """The status of every scored KPI in a scorecard."""
    return {r.kpi.id: r.status for r in card.outcomes + tuple(r for t in card.teams for r in t.kpis)}


def tensions(ctx: Context, team: str | None = None, limit: int = 4) -> None:
    """The tension panel: KPIs pulling against their counterweights, most severe first (a team's own, if given)."""
    found = spread_over_teams(find_tensions(ctx.catalog, ctx.values, ctx.period, ctx.view.comparison))
    if team is not None:
        found = [t for t in found if team in t.teams]
    st.subheader("Tensions", help="A KPI that improved while a KPI guarding it worsened, beyond their usual noise "
                                  "(see docs/tensions.md). The most severe of each pair of teams first.")
    if not found:
        st.success(f"No KPI pulls against its counterweight in {ctx.period.label}: nothing is won at another team's "
                   "or the customer's expense.", icon=":material/balance:")
        return
    for index, tension in enumerate(found[:limit]):
        _tension(ctx, tension, index)
    if len(found) > limit:
        with st.expander(f"{len(found) - limit} more tension(s) of lower severity"):
            for index, tension in enumerate(found[limit:], start=limit):
                _tension(ctx, tension, index)


def _tension(ctx: Context, tension: Tension, index: int) -> None:
    """One tension: who pulls against whom, the sentence, links to the teams, both series in one chart."""
    key = f"tension-{tension.kpi.id}-{tension.counterweight.id}-{tension.kind.value}"
    with st.container(border=True, key=key):
        text, chart = st.columns([2, 3])
        with text:
            first, second = tension.team_labels
            who = f"within {first}" if first == second else f"{first} vs {second}"
            when = (f"trend over {len(tension.window)} {ctx.view.grain.value}s" if tension.kind is TensionKind.TREND
                    else f"{ctx.period.label} vs {tension.window[0].label}")
            st.markdown(f":red-badge[:material/compare_arrows: {who}] :gray-badge[{when}] "
                        f":gray-badge[severity {tension.severity:.1f}]")
            st.markdown(tension.sentence)
            for team_id in dict.fromkeys(tension.teams):
                if team_id != CUSTOMER:
                    team_link(ctx, team_id, f"Open {ctx.catalog.team(team_id).label}")
        with chart:
            st.altair_chart(tension_chart(tension, ctx.values, ctx.catalog.currency), key=f"tension-chart-{index}")


@st.cache_data(show_spinner="Following the lead cohorts…", max_entries=64)
def _journey(db: str, schema: str, period: Period, filters: Filters) -> tuple[Journey, list[ChannelChurn]]:
    """A period's journey and early churn by channel, cached per database, snapshot, period and filters."""
    cursor = _connection(db).cursor()
    return journey(cursor, schema, period, filters), early_churn_by_channel(cursor, schema, period, filters)


def journey_of(ctx: Context) -> tuple[Journey, list[ChannelChurn]]:
    """The journey of the period shown, and its new customers' early churn by channel, as filtered."""
    return _journey(str(store.db_path()), ctx.snapshot.schema, ctx.period, ctx.view.filters)


def owner_labels(ctx: Context) -> dict[str, str]:
    """The label of each journey step's owner: its team, or 'Customer outcome'."""
    teams = {t.id: t.label for t in ctx.catalog.teams}
    return {s.owner: "Customer outcome" if s.owner == CUSTOMER else teams.get(s.owner, s.owner.capitalize())
            for s in Step}


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def journey_steps(found: Journey, owners: dict[str, str]) -> pd.io.formats.style.Styler:
    """The selected cohort's steps as a table, the maturing ones greyed."""
    frame = pd.DataFrame([{
        "Step": s.step.label + (" (maturing)" if s.maturing else ""),
        "Owner": owners[s.step.owner],
        "Count": s.count,
        "From previous": _share(s.conversion),
        "Of the leads": _share(s.from_first),
        "Median days": "–" if s.median_days is None else f"{s.median_days:.1f}",
    } for s in found.steps])
    grey = [f"color: {STATUS_CSS[Status.MATURING]}" if s.maturing else "" for s in found.steps]
    return frame.style.apply(lambda row: [grey[row.name]] * len(row), axis=1).format({"Count": "{:,}"})


def journey_cohorts(found: Journey) -> pd.io.formats.style.Styler:
    """The recent cohorts, newest first: each step's count and conversion from the previous step."""
    rows = []
    for cohort in reversed(found.cohorts):
        row: dict[str, object] = {"Cohort": cohort.period.label, "Leads": cohort.step(Step.LEAD).count}
        for s in cohort.steps[1:]:
            row[s.step.label] = f"{s.count:,} so far" if s.maturing else f"{s.count:,} · {_share(s.conversion)}"
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

