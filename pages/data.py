"""Data: upload exports, check how they map, import them as a new snapshot, and manage tables and snapshots."""
from __future__ import annotations

from datetime import date

import streamlit as st

from kpicore import actions, store, targets
from kpicore.display import plain
from kpicore.errors import BadParameter, KpiError
from kpicore.exports import csv_bytes
from kpicore.ingest import Mode, Upload, check_plan
from kpicore.mapping import DateOrder, currency_of, remap
from kpicore.model import TABLES, VOCABULARIES
from kpicore.templates import describe, template_csv
from kpicore.texts import (
    KEEP_SAMPLE,
    START_EMPTY,
    TARGETS,
    VIEW_ONLY,
    catalog_named,
    currency_assumed,
    currency_warning,
    missing_inputs,
    started_empty,
)
from pages import common, uploads, widgets

ctx = common.context()
widgets.page_header(ctx, "Data", period=False)
house = common.warehouse_setting()
if house.url:
    st.markdown(f"KPIs are computed on the warehouse: **{plain(house.describe)}**. Its canonical tables are read "
                "as snapshots: each reading records the row counts, and the KPI values computed from it are kept "
                "under it, so a pinned link shows the same numbers. Read it again after the data there changed.")
else:
    st.markdown("Upload CSV, TSV or Excel exports from your CRM, marketing, helpdesk or billing tool. Each file is "
                "recognised as one of the tables below; check the mapping, then import. An import becomes a new "
                "snapshot: the previous data stays readable and can be restored.")
st.caption(TARGETS.format(source=catalog_named(ctx.catalog.source)))


def templates() -> None:
    st.subheader("Templates", anchor="templates")
    st.markdown("Each table in one screen. Column names from other tools and languages are recognised too.")
    for name in TABLES:
        with st.expander(name):
            st.markdown(describe(name))
            st.download_button(f"Download an empty {name} template", template_csv(name), file_name=f"{name}.csv",
                               mime="text/csv", key=f"template-{name}")


templates_first = ctx.empty or st.query_params.get("section") == "templates"
me = common.actor()
files = []
if house.url and me.editor and st.button("Read the warehouse again", icon=":material/sync:", key="read-warehouse"):
    try:
        made = actions.read_warehouse(common.connection(), me, common.warehouse_engine(), house)
    except KpiError as error:
        st.error(f"Nothing was read: {plain(error)}", icon=":material/error:")
    else:
        common.forget_view()
        st.session_state["data-note"] = f"The warehouse is read again, as snapshot {made.id}."
        st.rerun()
if not me.editor:
    st.info(VIEW_ONLY, icon=":material/visibility:")
else:  # uploads go into the file, or into the warehouse
    files = st.file_uploader("Exports", type=["csv", "tsv", "txt", "xlsx"], accept_multiple_files=True,
                             help=f"Up to {uploads.upload_limit_mb()} MB per file." + (
                                 " Each replaces its table in the warehouse." if house.url else ""))
uploads.forget_others(files or [])
to_import: list[Upload] = []
keys: list[str] = []
blocked = 0  # files that are neither skipped nor ready
for file in files or []:
    prepared = uploads.prepared_upload(file)
    if isinstance(prepared, KpiError):
        st.error(f"{plain(prepared)} This file is left out.", icon=":material/error:")
        continue
    raw, plan, saved_name = prepared
    key = uploads.upload_key(file)
    with st.container(border=True, key=f"upload-{key}"):
        title, skip_cell = st.columns([4, 1], vertical_alignment="bottom")
        title.markdown(f"#### {plain(raw.name)}")
        if skip_cell.toggle("Skip this file", key=f"skip-{key}"):
            st.caption("Skipped: it is not imported.")
            continue
        detail = f"{raw.encoding}, delimiter {raw.delimiter!r}, header on row {raw.header_row}"
        if saved_name:
            detail += f", saved mapping {plain(store.mapping_origin(common.connection(), saved_name))} applied"
        st.caption(detail)
        tables = list(TABLES)
        table = st.selectbox("Table", tables, index=tables.index(plan.table), key=f"table-{key}",
                             help=f"Recognised as {plan.table} ({plan.confidence:.0%} sure).")
        if table != plan.table:
            plan = uploads.replan(file, table)
        st.dataframe(uploads.preview(raw), hide_index=True, height=180)
        st.markdown("**Columns**")
        options = ["— none —", *raw.columns]
        cells = st.columns(3)
        for index, column in enumerate(TABLES[table].columns):
            match = next(m for m in plan.columns if m.canonical == column.name)
            label = f"{column.name}{' *' if column.required else ''}"
            with cells[index % 3]:
                chosen = st.selectbox(label, options, index=options.index(match.source) if match.source else 0,
                                      key=f"map-{key}-{column.name}-{match.source}", help=column.description)
                if not match.sure and match.source is not None:
                    st.caption(f":orange[{match.confidence:.0%} sure: check this guess]")
                elif (suggestion := plan.suggestion_for(column.name)) is not None:
                    st.caption(f"Perhaps '{plain(suggestion.source)}'? ({suggestion.confidence:.0%} sure, not used "
                               "unless you pick it)")
            source = None if chosen == options[0] else chosen
            if source != match.source:
                uploads.update_plan(file, remap(plan, raw, column.name, source))
                st.rerun()  # a source column moved from one field to another: redraw every field
        for column in TABLES[table].columns:
            if column.values and column.name in plan.values:
                st.markdown(f"**Values of {column.name}**")
                choices = list(VOCABULARIES[column.values])
                value_cells = st.columns(4)
                for index, (source_value, value) in enumerate(sorted(plan.values[column.name].items())):
                    with value_cells[index % 4]:
                        picked = st.selectbox(source_value, choices, index=choices.index(value),
                                              key=f"value-{key}-{column.name}-{source_value}-{value}")
                    if picked != value:
                        plan = uploads.update_plan(file, plan.with_value(column.name, source_value, picked))
        for column in plan.ambiguous_dates:
            order = st.radio(f"How are the dates in '{plan.source_of(column)}' written?",
                             [DateOrder.DAY_FIRST.value, DateOrder.MONTH_FIRST.value], index=None,
                             key=f"dates-{key}-{column}", horizontal=True,
                             format_func=lambda o: "day first (31/01/2026)" if o == "day_first" else
                             "month first (01/31/2026)")
            if order:
                plan = uploads.update_plan(file, plan.with_date_order(column, DateOrder(order)))
        as_of = None
        if Upload(raw, plan).may_be_status_only and st.toggle(
                "This is a status-only export: states such as a churn flag or a deal stage, but no dates",
                key=f"status-{key}",
                help="KPIs built on it are then computed as of the day it describes, in the period containing it."):
            proposed = uploads.proposed_day(file, raw)
            as_of = st.date_input("The day the export describes", value=proposed.day if proposed else None,
                                  min_value=date(1990, 1, 1), max_value=date.today(), key=f"as-of-{key}",
                                  format="YYYY-MM-DD")
            st.caption(f"Proposed from {proposed.source}: check it." if proposed else
                       "The file shows no date: enter the day it was exported.")
        mode = st.radio("Import as", [m.value for m in Mode], horizontal=True, key=f"mode-{key}",
                        format_func=lambda m: "replace the table" if m == "replace" else
                        "append (same id replaces, new ids are added)")
        upload = Upload(raw, plan, Mode(mode), as_of)
        currency = currency_of(raw, plan)
        if warning := currency_warning(ctx.catalog, currency):
            st.warning(warning, icon=":material/currency_exchange:")
        if assumed := currency_assumed(ctx.catalog, table, upload.columns, currency):
            st.caption(f":material/currency_exchange: {assumed}")
        for line in missing_inputs(ctx.catalog, table, upload.columns, as_of):
            st.caption(f":material/info: {line}")
        name_col, button_col = st.columns([3, 1], vertical_alignment="bottom")
        mapping_name = name_col.text_input("Save this mapping as", key=f"save-{key}",
                                           placeholder="e.g. HubSpot deals")
        if button_col.button("Save mapping", key=f"save-button-{key}", disabled=not mapping_name):
            uploads.save_mapping(mapping_name, plan, raw)
            st.success(f"Saved. The next file with the same columns uses '{plain(mapping_name)}' automatically.")
        try:
            check_plan(upload)
        except KpiError as error:
            st.warning(plain(error), icon=":material/warning:")
            blocked += 1
        else:
            to_import.append(upload)
            keys.append(key)

if files:
    keep_sample = True
    if ctx.sample:
        choice = st.radio("The sample data is still loaded. Your files…", [START_EMPTY, KEEP_SAMPLE],
                          key="sample-choice")
        keep_sample = choice == KEEP_SAMPLE
    batch = uploads.batch_key(keys, to_import)
    done = st.session_state.setdefault("imported", {})
    if batch in done:
        st.success(f"These files are imported, as snapshot {done[batch]}.", icon=":material/check_circle:")
    elif st.button(f"Import {len(to_import)} file(s)", type="primary", disabled=bool(blocked) or not to_import,
                   key="import", help="Every file not skipped must be ready first." if blocked else None):
        bar = st.progress(0.0, text="Starting the import")
        try:
            result = actions.import_where_the_data_is(
                common.connection(), me, house, common.warehouse_engine, to_import,
                "Upload: " + ", ".join(u.raw.name for u in to_import),
                progress=lambda share, text: bar.progress(share, text=text), keep_sample=keep_sample)
        except KpiError as error:
            bar.empty()
            st.error(f"Nothing was imported: {plain(error)}", icon=":material/error:")
        else:
            done[batch] = result.snapshot.id
            common.forget_view()
            st.session_state["last-import"] = result
            st.rerun()

if (result := st.session_state.get("last-import")) is not None:
    st.subheader(f"Imported as snapshot {result.snapshot.id}")
    if result.emptied:
        st.info(started_empty(result.emptied, store.sample_snapshot(common.connection())), icon=":material/info:")
    for report in result.files:
        with st.container(border=True, key=f"report-{report.file}"):
            st.markdown(f"**{plain(report.file)}** → {report.table} ({report.mode.value})")
            left, right = st.columns(2)
            left.metric("Rows imported", f"{report.imported:,}")
            right.metric("Rows rejected", f"{report.rejected:,}")
            for warning in [*report.warnings, currency_warning(ctx.catalog, report.currency)]:
                if warning:
                    st.warning(warning, icon=":material/warning:")
            for line in missing_inputs(ctx.catalog, report.table, report.columns, report.as_of):
                st.info(line, icon=":material/info:")
            if assumed := currency_assumed(ctx.catalog, report.table, report.columns, report.currency):
                st.info(assumed, icon=":material/currency_exchange:")
            if report.problems:
                rows = [(p.row, p.column, p.value, p.reason) for p in report.problems]
                st.dataframe(uploads.problems_frame(rows), hide_index=True)
                data = csv_bytes(["row", "column", "value", "reason"], rows)
                st.download_button("Download rejected rows (CSV)", data, file_name=f"{report.file}-rejected.csv",
                                   mime="text/csv", key=f"download-{report.file}")

if templates_first:
    templates()

st.subheader("Tables", help="What the current snapshot holds. Emptying a table makes a new snapshot: the rows "
                            "stay in the earlier one.")
current = store.tables(common.connection(), ctx.latest)
st.dataframe(uploads.tables_frame(current, ctx.values.tables if ctx.snapshot.id == ctx.latest.id else {}),
             hide_index=True, width="stretch")
filled = [name for name, table in current.items() if table.rows]
with st.container(horizontal=True, vertical_alignment="bottom"):
    if filled and me.editor and not house.url:
        chosen = st.selectbox("Table to empty", filled, index=None, placeholder="Choose a table", key="empty-choice",
                              width=260)
        if st.button("Empty it", key="empty-table", disabled=chosen is None):
            emptied = actions.drop_tables(common.connection(), me, [chosen])
            common.forget_view()
            st.session_state["data-note"] = f"{chosen} is empty in snapshot {emptied.id}; restore snapshot " \
                                            f"{emptied.id - 1} to get its rows back."
            st.rerun()
        if st.button("Start with empty tables", key="start-empty"):
            emptied = actions.start_empty(common.connection(), me)
            common.forget_view()
            st.session_state["data-note"] = f"Every table is empty in snapshot {emptied.id}; the earlier " \
                                            "snapshots stay restorable."
            st.rerun()
    if me.editor and not ctx.sample and not house.url and st.button("Load the sample data", key="load-sample"):
        loaded = actions.load_sample(common.connection(), me)
        common.forget_view()
        st.session_state["data-note"] = f"The sample data is loaded, as snapshot {loaded.id}."
        st.rerun()
if note := st.session_state.pop("data-note", None):
    st.success(note, icon=":material/check_circle:")

st.subheader("Targets", help="Each KPI's monthly target: on track at the target, at risk below it, off track below "
                             "the share shown. The catalog sets them; an editor's change is a new snapshot, so links "
                             "to earlier snapshots keep the statuses they showed.")
in_force = targets.in_force(common.connection(), ctx.latest.id)
judged = targets.apply(common.catalog(), in_force)
st.dataframe(targets.rows(judged, in_force), hide_index=True, width="stretch")
if me.editor:
    scored = {k.id: k for k in judged.kpis if not k.is_measure and k.target is not None}
    with st.form("target", border=True):
        chosen = st.selectbox("KPI", list(scored), format_func=lambda k: scored[k].label, key="target-kpi")
        left, right = st.columns(2)
        value = left.number_input("New monthly target (in % for rates)", value=None, key="target-value",
                                  placeholder="e.g. 40")
        band = right.number_input("At risk from (% of the target)", min_value=1.0, max_value=100.0, value=None,
                                  key="target-band", placeholder="as now")
        with st.container(horizontal=True):
            set_it = st.form_submit_button("Set the target", type="primary")
            back = st.form_submit_button("Back to the catalog's target")
    if set_it or back:
        kpi = scored[chosen]
        try:
            if set_it and value is None:
                raise BadParameter("Give the new monthly target first.")
            made, _ = actions.change_target(common.connection(), me, common.catalog(), kpi.id,
                                            targets.entered(value, kpi.unit) if set_it else None,
                                            band / 100 if set_it and band is not None else None)
        except KpiError as error:
            st.error(plain(error), icon=":material/error:")
        else:
            common.forget_view()
            st.session_state["data-note"] = f"{plain(made.note)}, as snapshot {made.id}."
            st.rerun()

st.subheader("Snapshots")
for snap, tables in store.snapshots(common.connection()):
    with st.container(border=True, key=f"snapshot-{snap.id}"):
        changed = ", ".join(f"{t.table} ({t.rows:,} rows from {plain(t.source)})" for t in tables if t.changed) or "–"
        mark = " · current" if snap.id == ctx.latest.id else ""
        by = f" · by {plain(snap.author)}" if snap.author else ""
        st.markdown(f"**Snapshot {snap.id}** · {snap.created_at:%Y-%m-%d %H:%M}{by} · {plain(snap.note)}{mark}  \n"
                    f"Changed: {changed}")
        view, restore = st.columns([1, 1])
        with view:
            common.overview_link(ctx, snap.id, f"View snapshot {snap.id}")
        if me.editor and not house.url and snap.id != ctx.latest.id and restore.button(f"Restore snapshot {snap.id}",
                                                                      key=f"restore-{snap.id}"):
            restored = actions.restore(common.connection(), me, snap.id)
            common.forget_view()
            st.session_state["data-note"] = f"Snapshot {snap.id} is current again, as snapshot {restored.id}."
            st.rerun()

if not templates_first:
    templates()
