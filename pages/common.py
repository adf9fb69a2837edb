"""The app side of kpicore: caching, URL state, navigation and the sidebar controls."""
from __future__ import annotations

import hashlib
import runpy
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

import altair as alt
import duckdb
import pandas as pd
import pyarrow as pa
import streamlit as st
from streamlit import dataframe_util
from streamlit.errors import StreamlitSecretNotFoundError

from kpicore import access, charts, checkins, engines, exports, kept, report, store, targets, warehouse
from kpicore.catalog import CUSTOMER, Catalog, JourneySettings, catalog_path, load_catalog
from kpicore.charts import Spec
from kpicore.checkins import CheckIn
from kpicore.compute import KpiValues
from kpicore.coverage import Engine
from kpicore.display import plain, printable
from kpicore.errors import CatalogError, KpiError
from kpicore.files import clean_workdirs
from kpicore.filters import DIMENSIONS, Filters, checked
from kpicore.filters import LABELS as FILTER_LABELS
from kpicore.filters import options as filter_options
from kpicore.journey import ChannelChurn, Journey, early_churn_by_channel, journey
from kpicore.periods import Comparison, Grain, Period
from kpicore.scorecard import Scorecard, build_scorecard
from kpicore.tensions import Tension, find_tensions, spread_over_teams
from kpicore.texts import OPEN_EDITING, catalog_named
from kpicore.view import View

VIEW_KEYS = ("grain", "period", "comparison", "snapshot", *DIMENSIONS)
ROUTER = Path(__file__).resolve().parent.parent / "dashboard.py"
LINGER = 1.0  # seconds the database stays open after a run, for the next click (a command waits for it)
_CONTEXT = "_context"  # session-state key of the current run's Context
_RUN = threading.local()  # the cursor of the script run going on in this thread


@st.cache_resource
def _database(path: str, sample: bool = True) -> store.Database:
    """The database file, shared by every session of the process (open only while a run uses it). First, what
    a killed import left in the temporary directory is removed. A new file starts with the sample data, unless
    a warehouse holds the data."""
    clean_workdirs()
    return store.Database(path, linger=LINGER, sample=sample)


@st.cache_resource
def _state_pool(url: str, schema: str, state: str) -> engines.StatePool:
    """The app's own tables in PostgreSQL, shared by every session of the process (and every replica)."""
    return warehouse.state_pool(warehouse.Setting(url, schema, state))


def _app_database() -> store.Database | engines.StatePool:
    """Where the app's own tables are: the DuckDB file, or the PostgreSQL warehouse every replica shares."""
    chosen = warehouse_setting()
    if warehouse.shares_state(chosen):
        return _state_pool(chosen.url, chosen.schema, chosen.state)
    return _database(str(store.db_path()), not chosen.url)


@contextmanager
def database_for_this_run() -> Iterator[None]:
    """Hold the database open while this run reads and draws; between runs the command line can open it
    (DuckDB lets one process at a time open the file). While another program holds it, say so and stop."""
    try:
        opened = _app_database().cursor()
        cursor = opened.__enter__()
    except store.DatabaseBusy as error:
        st.warning(f"**The data is being changed from the command line.** {plain(error)} This page shows the data when "
                   "that is done: reload it in a moment.", icon=":material/hourglass_top:")
        st.stop()
        raise
    except (store.BrokenDatabase, KpiError) as error:  # also: a warehouse holding the state cannot be reached
        st.error(f"**The database cannot be used.** {plain(error)}", icon=":material/error:")
        st.stop()
        raise
    previous, _RUN.cursor = getattr(_RUN, "cursor", None), cursor
    try:
        yield
    except duckdb.IOException as error:  # a file damaged further in than its first pages
        st.error(f"**The database cannot be read.** {plain(store.broken(store.db_path(), error))}",
                 icon=":material/error:")
    finally:
        _RUN.cursor = previous
        opened.__exit__(None, None, None)


def _kpi_secrets() -> dict[str, object]:
    """The [kpi] section of .streamlit/secrets.toml (empty without one)."""
    try:
        return dict(st.secrets.get("kpi", {}))
    except (FileNotFoundError, KeyError, StreamlitSecretNotFoundError):  # no secrets.toml
        return {}


def access_settings() -> access.Settings:
    """The deployment's access settings ([kpi] in .streamlit/secrets.toml; none: editing is open to everyone)."""
    try:
        return access.Settings.from_mapping(_kpi_secrets())
    except KpiError as error:
        st.error(f"**The access settings cannot be used.** {plain(error)}")
        st.stop()
        raise


def warehouse_setting() -> warehouse.Setting:
    """Where KPIs are computed ($KPI_ENGINE, or engine in [kpi] of secrets.toml; none: the embedded DuckDB file)."""
    try:
        return warehouse.setting(_kpi_secrets())
    except KpiError as error:
        st.error(f"**The engine setting cannot be used.** {plain(error)}", icon=":material/error:")
        st.stop()
        raise


@st.cache_resource
def _warehouse(url: str, schema: str) -> warehouse.Engine:
    """The warehouse connection, shared by every session of the process."""
    return warehouse.open_engine(warehouse.Setting(url, schema))  # (where the state lives plays no part)


def warehouse_engine() -> warehouse.Engine:
    """The warehouse set (an error on the page, and the page stops, when it cannot be reached)."""
    chosen = warehouse_setting()
    try:
        return _warehouse(chosen.url, chosen.schema)
    except KpiError as error:
        st.error(f"**The warehouse cannot be used.** {plain(error)}", icon=":material/error:")
        st.stop()
        raise


def data_engine(snapshot: store.Snapshot) -> Engine:
    """What computes a snapshot's KPIs: this run's cursor, or the warehouse the snapshot was read from."""
    return warehouse.engine_for(snapshot, warehouse_setting(), connection(), warehouse_engine)


def logins() -> bool:
    """Whether Streamlit's OIDC login is configured ([auth] in secrets.toml)."""
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, StreamlitSecretNotFoundError):
        return False


EDITOR = "_editor"  # session-state key: the name of whoever unlocked editing with the password


def actor() -> access.Actor:
    """Who is looking, with the role the settings give them (kpicore.access decides what each role may do)."""
    settings = access_settings()
    if logins() and st.user.is_logged_in:
        claims = st.user.to_dict()
        return access.Actor(str(claims.get("name") or claims.get("email") or "signed-in user"),
                            settings.role_of(claims))
    if settings.editor_password_hash and (name := st.session_state.get(EDITOR)):
        return access.Actor(name, access.Role.EDITOR)
    if settings.open_editing and not logins():
        return access.Actor(access.ANYONE, access.Role.EDITOR, named=False)
    return access.Actor("a visitor", access.Role.VIEWER)


def login_gate() -> None:
    """Where viewing needs a login (viewing = "login"): the login button instead of the app until signed in."""
    settings = access_settings()
    if settings.viewing != "login":
        return
    if not logins():
        st.error("**Viewing is set to need a login** (viewing = \"login\" in secrets.toml), but no login is "
                 "configured: add an [auth] section (see the README) or set viewing = \"open\".")
        st.stop()
    if not st.user.is_logged_in:
        st.title("KPI scorecards")
        st.info("Log in to see the scorecards.", icon=":material/lock:")
        st.button("Log in", on_click=st.login, icon=":material/login:", type="primary", key="login")
        st.stop()


def editing_box(ctx: Context) -> None:
    """The sidebar's Editing section: who may edit, and the way to unlock editing or log in."""
    settings, me = access_settings(), actor()
    st.header("Editing")
    if logins():
        if st.user.is_logged_in:
            st.caption(f"Signed in as {plain(me.name)} ({me.role.value}).")
            st.button("Log out", on_click=st.logout, icon=":material/logout:", key="logout")
            return
        st.button("Log in", on_click=st.login, icon=":material/login:", key="login")
        return
    if settings.open_editing:
        st.caption(OPEN_EDITING)
        return
    if me.editor:
        st.caption(f"Editing as {plain(me.name)}.")
        if st.button("Lock editing", icon=":material/lock:", key="lock-editing"):
            st.session_state.pop(EDITOR, None)
            st.rerun()
        return
    with st.form("unlock", border=False):
        st.text_input("Your name", key="unlock-name", max_chars=80)
        st.text_input("Editor password", type="password", key="unlock-password")
        st.form_submit_button("Unlock editing", icon=":material/lock_open:", on_click=_unlock)
    if failed := st.session_state.pop("unlock-error", None):
        st.error(failed)


def _unlock() -> None:
    """Check the editor password (against its argon2 hash); the session can edit under the given name."""
    state = st.session_state
    name = " ".join(printable(state.get("unlock-name", "")).split())
    password = state.get("unlock-password", "")
    state["unlock-password"] = ""
    if not name:
        state["unlock-error"] = "Give your name: it is recorded with every change you make."
    elif not access_settings().password_unlocks(password):
        state["unlock-error"] = "That is not the editor password."
    else:
        state[EDITOR] = name


def writing() -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """A cursor for a widget callback, which runs before the run opens the database (DatabaseBusy while the
    command line holds it)."""
    return _app_database().cursor()


def connection() -> duckdb.DuckDBPyConnection:
    """This run's cursor on the database."""
    cursor = getattr(_RUN, "cursor", None)
    if cursor is None:
        raise RuntimeError("The database is opened by dashboard.py for each run; this code ran outside one.")
    return cursor


@st.cache_resource
def _catalog(path: str, modified: float) -> Catalog:
    return load_catalog(path)


@st.cache_data(show_spinner="Computing KPIs…", max_entries=64)
def _values(db: str, snapshot: store.Snapshot, catalog_fingerprint: str, grain: Grain, filters: Filters,
            _catalog: Catalog, keep: bool = True) -> KpiValues:
    """KPI values, cached per database, snapshot, catalog version, grain and filters (and kept in the database,
    so that a restarted server or another process reads them back instead of computing them)."""
    cursor = connection()
    return kept.values(cursor, _catalog, snapshot.id, snapshot.schema, grain, filters, store.loaded(cursor, snapshot),
                       data_engine(snapshot), keep)


@st.cache_data(max_entries=16)
def _options(db: str, snapshot: store.Snapshot) -> dict[str, list[str]]:
    """The channels, segments and regions in a snapshot."""
    return filter_options(data_engine(snapshot), snapshot.schema)


@st.cache_data(max_entries=64)
def _tables(db: str, snapshot: store.Snapshot) -> dict[str, store.SnapshotTable]:
    """What a snapshot holds of each table."""
    return store.tables(connection(), snapshot)


def catalog() -> Catalog:
    """The catalog in use; a broken one stops the page with every problem listed."""
    path = catalog_path()
    try:
        return _catalog(str(path), path.stat().st_mtime if path.exists() else 0.0)
    except CatalogError as error:
        named = plain(catalog_named(error.source))
        st.error(f"**The KPI catalog cannot be used.** Fix these problems in {named} and reload:")
        st.code("\n".join(str(issue) for issue in error.issues), language=None)
        st.stop()
        raise


@st.cache_resource(max_entries=256)
def _scorecard(view: str, _ctx: Context) -> Scorecard:
    """The scorecard of a view, shared by every rerun and session showing it (it is never changed)."""
    assert _ctx.period is not None
    return build_scorecard(_ctx.catalog, _ctx.values, _ctx.period, _ctx.view.comparison)


@st.cache_resource(max_entries=256)
def _tensions(view: str, _ctx: Context) -> tuple[Tension, ...]:
    """The tensions of a view, shared by every rerun and session showing it."""
    assert _ctx.period is not None
    return tuple(spread_over_teams(find_tensions(_ctx.catalog, _ctx.values, _ctx.period, _ctx.view.comparison)))


@st.cache_resource(max_entries=1024)
def _chart_spec(view: str, what: str, _build: Callable[[], alt.TopLevelMixin | Spec]) -> Spec:
    """A chart's Vega-Lite spec, built once per view (`view`, `what` say which chart it is), its datasets already
    in the Arrow form Streamlit sends (converting them was a third of a rerun). Not validated against the
    Vega-Lite schema here (a fifth of the time): the chart tests validate every kind. Never changed once made."""
    built = _build()
    spec = built if isinstance(built, dict) else built.to_dict(validate=False)
    datasets = {name: dataframe_util.convert_arrow_table_to_arrow_bytes(pa.Table.from_pylist(rows))
                for name, rows in spec.get("datasets", {}).items()}
    return spec | {"datasets": datasets} if datasets else spec


def chart(ctx: Context, what: str, build: Callable[[], alt.TopLevelMixin | Spec], **options: object) -> None:
    """Draw a chart that is built once per view and drawn from its spec on every rerun (building and validating
    Altair specs was most of a rerun's time), with PNG and SVG downloads made only when clicked. `what` names the
    chart uniquely within the view."""
    st.vega_lite_chart(_chart_spec(ctx.key, what, build), **options)  # type: ignore[arg-type]  # (it copies)
    if presenting():
        return
    name = f"{what}-{ctx.period.label}" if ctx.period else what

    def plain() -> Spec:
        built = build()
        return built if isinstance(built, dict) else built.to_dict(validate=False)

    with st.container(horizontal=True, gap="small", key=f"download-{what}"):
        st.download_button("PNG", lambda: charts.to_png(plain()), f"{name}.png", "image/png", icon=DOWNLOAD,
                           type="tertiary", on_click="ignore", key=f"png-{what}", help="Download the chart as PNG")
        st.download_button("SVG", lambda: charts.to_svg(plain()), f"{name}.svg", "image/svg+xml", icon=DOWNLOAD,
                           type="tertiary", on_click="ignore", key=f"svg-{what}", help="Download the chart as SVG")


DOWNLOAD = ":material/download:"


def table_download(frame: Callable[[], pd.DataFrame], name: str, key: str) -> None:
    """A CSV download of a table (made when clicked), with every cell a spreadsheet could run as a formula
    defused."""
    if presenting():
        return

    def data() -> bytes:
        table = frame()
        return exports.csv_bytes([str(c) for c in table.columns], table.itertuples(index=False))

    st.download_button("CSV", data, f"{name}.csv", "text/csv", icon=DOWNLOAD, type="tertiary", on_click="ignore",
                       key=f"csv-{key}", help="Download the table as CSV (cells a spreadsheet would run as a "
                                              "formula start with ')")


@dataclass(frozen=True)
class Context:
    """What every page works from in one run."""

    catalog: Catalog
    snapshot: store.Snapshot
    latest: store.Snapshot
    view: View
    period: Period | None  # None: no table has any data yet
    values: KpiValues
    notices: tuple[str, ...]
    tables: dict[str, store.SnapshotTable]
    checkins: tuple[CheckIn, ...] = ()  # every check-in at the view's grain

    def notes(self, kpi: str | None = None, period: Period | None = None) -> tuple[CheckIn, ...]:
        """The check-ins on a KPI (any KPI if None) in a period (the one shown if None)."""
        return checkins.on(self.checkins, kpi, period or self.period)

    def scorecard(self) -> Scorecard:
        """Customer outcomes and team scorecards for the period shown (worked out once per view)."""
        assert self.period is not None, "no period without data: pages check Context.empty first"
        return _scorecard(self.key, self)

    def tensions(self) -> tuple[Tension, ...]:
        """The period's tensions, the worst of each pair of teams first (worked out once per view)."""
        assert self.period is not None, "no period without data: pages check Context.empty first"
        return _tensions(self.key, self)

    @cached_property
    def key(self) -> str:
        """What identifies the numbers this view shows (the database, snapshot, catalog version, view and period),
        as one short text: every cached part of a page is looked up by it, on every rerun."""
        shown = (str(store.db_path()), self.snapshot, self.catalog.fingerprint, self.view, self.period)
        return hashlib.sha256(repr(shown).encode()).hexdigest()

    @property
    def empty(self) -> bool:
        """Whether no table has data yet (every page then shows the welcome)."""
        return self.period is None

    @property
    def sample(self) -> list[str]:
        """The tables that hold the bundled sample data."""
        return [name for name, t in self.tables.items() if t.stored.sample and t.rows]

    @property
    def comparison_label(self) -> str:
        assert self.period is not None
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
    """This run's view and data: computed once per run (by dashboard.py), then reused by the page."""
    leave_pages_directory_mode()
    if (ctx := st.session_state.get(_CONTEXT)) is None:
        ctx = st.session_state[_CONTEXT] = _read_context()
    return ctx


def begin_run() -> None:
    """Forget the previous run's context: the URL or the data may have changed since."""
    st.session_state.pop(_CONTEXT, None)


def _read_context() -> Context:
    """Read the view from the URL (or the session), compute, and write the full view back to the URL."""
    cat = catalog()
    db = str(store.db_path())
    params = {key: st.query_params[key] for key in VIEW_KEYS if key in st.query_params}
    if not params and "view" in st.session_state:
        params = st.session_state["view"]
    view, notices = View.from_query_params(params)
    snapshot, latest = _snapshot(view, notices)
    cat = targets.catalog_for(connection(), cat, snapshot.id)  # the targets in force in the snapshot shown
    filters, dropped = checked(view.filters, _options(db, snapshot))
    view = replace(view, snapshot=snapshot.id, filters=filters)
    # an earlier reading's values not kept then come from the warehouse as it is now: said, and not kept as its own
    now = bool(snapshot.warehouse) and snapshot.id != latest.id and not kept.is_kept(connection(), cat, snapshot.id,
                                                                                      view.grain, filters)
    if now:
        notices.append(warehouse.computed_now(snapshot))
    values = _values(db, snapshot, cat.fingerprint, view.grain, filters, cat, not now)
    notices += dropped
    period, more = view.resolve(values, page_kpis(cat, st.session_state.get("team"))) if values.periods else (None, [])
    wanted = view.to_query_params(period)
    if presenting() and "snapshot" not in params:  # a wall screen opened without a snapshot shows the newest data
        wanted.pop("snapshot")
        st.session_state["unpinned"] = True
    else:
        st.session_state.pop("unpinned", None)
    target = {k: v for k, v in st.query_params.to_dict().items() if k not in VIEW_KEYS} | wanted
    if st.query_params.to_dict() != target:  # in one write: each write is a step in the browser's history
        st.query_params.from_dict(target)
    st.session_state["view"] = wanted
    shown = replace(view, period=period.label if period else None)
    return Context(cat, snapshot, latest, shown, period, values, tuple(notices + more), _tables(db, snapshot),
                   checkins.of_grain(connection(), view.grain))


def page_kpis(catalog: Catalog, url_path: str | None) -> list[str]:
    """The KPIs a page shows, whose data decides its default period: a team's own and the customer outcomes on
    its page, every KPI elsewhere."""
    teams = {t.id for t in catalog.teams}
    if url_path in teams:
        return [k.id for k in catalog.kpis if k.team in (url_path, CUSTOMER)]
    return [k.id for k in catalog.kpis if not k.is_measure]


def _snapshot(view: View, notices: list[str]) -> tuple[store.Snapshot, store.Snapshot]:
    """The snapshot the view asks for (the latest if none or unknown) and the latest one."""
    cursor = connection()
    latest = store.latest_snapshot(cursor)
    chosen = warehouse_setting()
    if chosen.url and not warehouse.is_reading_of(latest, chosen):  # the first run on this warehouse: read it
        try:
            latest = warehouse.read(cursor, warehouse_engine(), chosen)
        except KpiError as error:
            st.error(f"**The warehouse's tables cannot be read.** {plain(error)}", icon=":material/error:")
            st.stop()
            raise
    if view.snapshot is None or view.snapshot == latest.id:
        return latest, latest
    try:
        shown = store.snapshot(cursor, view.snapshot)
        warehouse.check_readable(shown, chosen)
        return shown, latest
    except KpiError as error:
        notices.append(f"URL parameter snapshot: {error} Showing the latest data.")
        return latest, latest


def controls(ctx: Context) -> None:
    """Grain, period, comparison and filter pickers in the sidebar. A change goes to the URL before the run that
    shows it (the widgets' callbacks run first), so a click costs one run, not two."""
    keys = {"grain": f"grain-{ctx.view.grain.value}", "period": f"period-{ctx.period.label}",
            "comparison": f"comparison-{ctx.view.comparison.value}"}
    keys |= {d: f"filter-{d}-{','.join(ctx.view.filters.values(d))}" for d in DIMENSIONS}
    changed = {"on_change": _view_changed, "args": (ctx, keys)}
    with st.sidebar:
        st.header("View")
        grains = [g.value for g in Grain]
        st.segmented_control("Grain", grains, default=ctx.view.grain.value, key=keys["grain"],
                             format_func=str.capitalize, required=True, **changed)
        marks = period_marks(ctx)
        labels = [p.label for p in reversed(ctx.values.periods)]
        st.selectbox("Period", labels, index=labels.index(ctx.period.label), key=keys["period"],
                     format_func=lambda p: p + marks.get(p, ""),
                     help="Newest first. A period the data covers only in part is shown but not scored.", **changed)
        comparisons = [c.value for c in Comparison]
        st.radio("Compare with", comparisons, index=comparisons.index(ctx.view.comparison.value),
                 key=keys["comparison"], format_func=lambda c: Comparison(c).label.capitalize(), **changed)
        st.header("Filters")
        options = _options(str(store.db_path()), ctx.snapshot)
        for dimension in DIMENSIONS:
            st.multiselect(
                FILTER_LABELS[dimension].capitalize(), options[dimension],
                default=list(ctx.view.filters.values(dimension)), key=keys[dimension], placeholder="All",
                help="Applies to every table that carries it; KPIs that cannot be filtered say so.", **changed)
        st.caption(f"Data as of {_latest_as_of(ctx)} · snapshot {ctx.snapshot.id} ({plain(ctx.snapshot.note)})")
        st.header("Share")
        newest = st.toggle("The link shows the newest data", key="link-newest",
                           help=f"Off: the link pins snapshot {ctx.snapshot.id}, so it shows these numbers after new "
                                "uploads too. On: whoever opens it sees the data as it is then.")
        st.code(ctx.view.link(ctx.period, st.session_state.get("team", ""), not newest, _origin()),
                language=None, wrap_lines=True)
        st.caption("Hover the link for its copy button.")
        st.markdown("**Meeting report**", help="This page's story, customer outcomes, team scores, top tensions "
                                                "with their charts and the period's check-ins, with a link here.")
        made = _report_maker(ctx)
        with st.container(horizontal=True, gap="small"):
            for form, label in (("pdf", "PDF"), ("html", "HTML"), ("md", "Markdown")):
                st.download_button(label, lambda form=form: report.render(made(), form), made.name(form),
                                   report.MIME[form], icon=DOWNLOAD, on_click="ignore", key=f"report-{form}")
        if st.button("Present this page", icon=":material/present_to_all:", key="present",
                     help="No sidebar or controls, large type: for a projector or a wall screen."):
            st.query_params[PRESENT] = "1"
            st.rerun()
        editing_box(ctx)
    if ctx.snapshot.id != ctx.latest.id:
        st.info(f"You are looking at snapshot {ctx.snapshot.id} from {ctx.snapshot.created_at:%Y-%m-%d %H:%M}. "
                f"Newer data is in snapshot {ctx.latest.id}.", icon=":material/history:")
        if st.button("Show the latest data", key="latest-data"):
            st.query_params["snapshot"] = str(ctx.latest.id)
            st.session_state.pop("view", None)
            st.rerun()
    for notice in ctx.notices:
        st.warning(plain(notice), icon="⚠️")  # they quote URL parameters


@dataclass(frozen=True)
class _ReportMaker:
    """What the meeting report of the page is made from, captured in the run; made only when downloaded (on a
    thread of its own)."""

    ctx: Context
    card: Scorecard
    tensions: tuple[Tension, ...]
    team: str | None
    link: str

    def __call__(self) -> report.Report:
        ctx = self.ctx
        facts = report.facts_line(ctx.values, ctx.period, ctx.view.comparison, ctx.view.filters, ctx.snapshot.id,
                                  ctx.snapshot.note)
        return report.build(ctx.catalog, ctx.values, self.card, self.tensions, ctx.notes(), facts, self.link,
                            self.team)

    def name(self, form: str) -> str:
        return report.file_name(self.ctx.period, self.team, form)


def _report_maker(ctx: Context) -> _ReportMaker:
    page = st.session_state.get("team")
    team = page if page in {t.id for t in ctx.catalog.teams} else None
    return _ReportMaker(ctx, ctx.scorecard(), ctx.tensions(), team,
                        ctx.view.link(ctx.period, team or "", True, _origin()))


def _view_changed(ctx: Context, keys: dict[str, str]) -> None:
    """A picker changed: write the view it asks for into the URL, which the run that follows reads."""
    chosen = ctx.view.to_query_params(ctx.period)  # a picker a cut-short run did not draw keeps its value
    for name, key in keys.items():
        if key in st.session_state:
            picked = st.session_state[key]
            chosen[name] = ",".join(sorted(picked)) if name in DIMENSIONS else picked
    chosen = {name: value for name, value in chosen.items() if value}  # an emptied filter: all values
    if chosen["grain"] != ctx.view.grain.value:
        chosen.pop("period", None)  # another grain: its latest complete period
    st.query_params.from_dict(chosen)  # one write, one step in the browser's history (Back returns to the view)
    st.session_state.pop("view", None)


PRESENT = "present"  # ?present=1: presentation mode
PRESENTATION_CSS = """<style>
html { font-size: 21px !important; }
[data-testid="stMarkdownContainer"] p, [data-testid="stCaptionContainer"] { font-size: 1.1rem !important; }
[data-testid="stMetricValue"], [data-testid="stMetricValue"] [data-testid="stMarkdownContainer"] p {
  font-size: 3.2rem !important; line-height: 1.15 !important; }
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"] {
  display: none; }
</style>"""  # type sized to be read from the back of a room on a 1920x1080 projector


def presenting() -> bool:
    """Whether the URL asks for presentation mode: no sidebar and no controls, large type."""
    return st.query_params.get(PRESENT) == "1"


CYCLE = "cycle"  # ?cycle=60: a wall screen shows each scorecard page for that many seconds, in turn
CYCLE_LIMITS = (10, 3600)
WATCH_SECONDS = 15  # how often an unpinned wall screen looks for a new snapshot


def presentation(ctx: Context, rotation: list[st.Page], page: st.Page) -> None:
    """Presentation mode: large type, one control (back to the normal page, the view staying), with `cycle` the
    scorecard pages in turn, and without a pinned snapshot the newest data as soon as it is imported."""
    st.markdown(PRESENTATION_CSS, unsafe_allow_html=True)  # kpicore's own constant CSS, never user text
    if st.button("Exit presentation", icon=":material/close_fullscreen:", key="exit-presentation"):
        for name in (PRESENT, CYCLE):
            st.query_params.pop(name, None)
        st.rerun()
    seconds = _cycle_seconds(ctx)
    if seconds is not None:
        st.session_state["shown-since"] = time.monotonic()
        following = rotation[(next((i for i, p in enumerate(rotation) if p.url_path == page.url_path), -1) + 1)
                             % len(rotation)]
        st.caption(f":material/autoplay: Next: {following.title} in {seconds} s")
        st.fragment(_rotate, run_every=seconds)(following, seconds)
    if st.session_state.get("unpinned"):
        st.fragment(_watch, run_every=WATCH_SECONDS)(ctx.snapshot.id)


def _cycle_seconds(ctx: Context) -> int | None:
    """The seconds each page is shown for (?cycle=), None without rotation; a bad value says so and rotates not."""
    text = st.query_params.get(CYCLE)
    if text is None:
        return None
    low, high = CYCLE_LIMITS
    if text.isascii() and text.isdigit() and low <= int(text) <= high:
        return int(text)
    st.warning(f"URL parameter cycle: '{plain(text)}' is not a number of seconds from {low} to {high}. The pages "
               "do not rotate.", icon="⚠️")
    return None


def _rotate(following: st.Page, seconds: int) -> None:
    """On a wall screen: the next scorecard page once this one has been shown `seconds` (this runs every
    `seconds`; its first run is the page's own)."""
    if time.monotonic() - st.session_state.get("shown-since", time.monotonic()) >= seconds * 0.9:
        st.switch_page(following, query_params=st.query_params.to_dict())


def _watch(shown: int) -> None:
    """On an unpinned wall screen: the whole page again as soon as a newer snapshot is committed."""
    try:
        with writing() as cursor:
            latest = store.latest_snapshot(cursor).id
    except KpiError:  # the command line holds the database: look again next time
        return
    if latest != shown:
        st.rerun(scope="app")


def _origin() -> str:
    """The scheme and host the browser reached the app at ('' when unknown, as in tests)."""
    found = urlsplit(st.context.url or "")
    return f"{found.scheme}://{found.netloc}" if found.scheme and found.netloc else ""


def period_marks(ctx: Context) -> dict[str, str]:
    """' · partial' or ' · no data' after the periods in which no KPI of the page has whole-period data."""
    kpis = page_kpis(ctx.catalog, st.session_state.get("team"))
    marks = {}
    for period in ctx.values.periods:
        if any(ctx.values.whole(k, period) is not None for k in kpis):
            continue
        partial = any(period in ctx.values.partial.get(k, ()) for k in kpis)
        marks[period.label] = " · partial" if partial else " · no data"
    return marks


def _latest_as_of(ctx: Context) -> str:
    days = [d for d in ctx.values.as_of.values() if d is not None]
    return max(days).isoformat() if days else "–"


def team_page(team_id: str, label: str) -> st.Page:
    """The page of one team (one script serves every team; the URL path names the team)."""
    return st.Page("pages/team.py", title=label, icon=":material/groups:", url_path=team_id)


def team_link(ctx: Context, team_id: str, label: str) -> None:
    """A link to a team's page that keeps the current view."""
    st.page_link(team_page(team_id, ctx.catalog.team(team_id).label), label=label,
                 icon=":material/arrow_forward:", query_params=ctx.view.to_query_params(ctx.period))


def forget_view() -> None:
    """Drop the remembered view (after an import or restore, pages show the newest snapshot)."""
    st.session_state.pop("view", None)
    st.query_params.pop("snapshot", None)


def overview_link(ctx: Context, snapshot_id: int, label: str) -> None:
    """A link to the Overview of a given snapshot, keeping the rest of the view."""
    params = {**ctx.view.to_query_params(ctx.period), "snapshot": str(snapshot_id)}
    st.page_link(overview_page(), label=label, icon=":material/visibility:", query_params=params)


def data_page() -> st.Page:
    """The Data page: uploads, snapshots and templates."""
    return st.Page("pages/data.py", title="Data", icon=":material/upload_file:", url_path="data")


def overview_page() -> st.Page:
    """The Overview, the app's default page (served at /)."""
    return st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", url_path="overview",
                   default=True)


def kpi_links(ctx: Context) -> dict[str, str]:
    """Where each scored KPI is shown: its team page (at the KPI), the Overview for customer outcomes."""
    return {k.id: ctx.view.link(ctx.period) if k.team == CUSTOMER
            else f"{ctx.view.link(ctx.period, k.team or '')}#{k.id.replace('_', '-')}"
            for k in ctx.catalog.kpis if not k.is_measure}


@st.cache_data(show_spinner="Following the lead cohorts…", max_entries=64)
def _journey(db: str, snapshot: store.Snapshot, period: Period, filters: Filters,
             settings: JourneySettings) -> tuple[Journey, list[ChannelChurn]]:
    """A period's journey and early churn by channel, cached per database, snapshot, period, filters and the
    catalog's journey settings."""
    engine, schema = data_engine(snapshot), snapshot.schema
    return (journey(engine, schema, period, filters, settings=settings),
            early_churn_by_channel(engine, schema, period, filters, settings.early_churn_days))


def journey_of(ctx: Context, period: Period | None = None) -> tuple[Journey, list[ChannelChurn]]:
    """The journey of the period shown (or `period`), and its new customers' early churn by channel, as filtered."""
    return _journey(str(store.db_path()), ctx.snapshot, period or ctx.period, ctx.view.filters,
                    ctx.catalog.journey)
