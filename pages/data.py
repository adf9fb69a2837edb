"""Data: upload exports, check how they map, import them as a new snapshot, and manage snapshots."""
from __future__ import annotations

from datetime import date, timedelta

import streamlit as st

from kpicore import store
from kpicore.errors import KpiError
from kpicore.exports import csv_bytes
from kpicore.ingest import Mode, Upload, check_plan, import_files
from kpicore.mapping import DateOrder
from kpicore.model import TABLES, VOCABULARIES
from kpicore.templates import describe, template_csv
from pages import common, uploads, widgets

ctx = common.context()
widgets.page_header(ctx, "Data")
st.markdown("Upload CSV, TSV or Excel exports from your CRM, marketing, helpdesk or billing tool. Each file is "
            "recognised as one of the tables below; check the mapping, then import. An import becomes a new "
            "snapshot: the previous data stays readable and can be restored.")

files = st.file_uploader("Exports", type=["csv", "tsv", "txt", "xlsx"], accept_multiple_files=True,
                         help=f"Up to {uploads.upload_limit_mb()} MB per file.")
to_import: list[Upload] = []
for file in files or []:
    prepared = uploads.prepared_upload(file)
    if isinstance(prepared, KpiError):
        st.error(str(prepared), icon=":material/error:")
        continue
    raw, plan, saved_name = prepared
    key = uploads.upload_key(file)
    with st.container(border=True, key=f"upload-{key}"):
        st.markdown(f"#### {raw.name}")
        detail = f"{raw.encoding}, delimiter {raw.delimiter!r}, header on row {raw.header_row}"
        if saved_name:
            detail += f", saved mapping '{saved_name}' applied"
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
            hint = "" if match.source is None else f"{match.confidence:.0%} sure"
            with cells[index % 3]:
                chosen = st.selectbox(label, options, index=options.index(match.source) if match.source else 0,
                                      key=f"map-{key}-{column.name}-{match.source}", help=column.description,
                                      placeholder=hint)
                if not match.sure and match.source is not None:
                    st.caption(f":orange[{hint}: check this guess]")
            source = None if chosen == options[0] else chosen
            if source != match.source:
                uploads.update_plan(file, plan.with_column(column.name, source))
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
        mode = st.radio("Import as", [m.value for m in Mode], horizontal=True, key=f"mode-{key}",
                        format_func=lambda m: "replace the table" if m == "replace" else
                        "append (same id replaces, new ids are added)")
        name_col, button_col = st.columns([3, 1], vertical_alignment="bottom")
        mapping_name = name_col.text_input("Save this mapping as", key=f"save-{key}",
                                           placeholder="e.g. HubSpot deals")
        if button_col.button("Save mapping", key=f"save-button-{key}", disabled=not mapping_name):
            uploads.save_mapping(mapping_name, plan, raw)
            st.success(f"Saved. The next file with the same columns uses '{mapping_name}' automatically.")
        as_of = None
        if Upload(raw, plan).status_only:
            missing = ", ".join(plan.missing_required)
            as_of = st.date_input(
                f"This file has no {missing}. If it is a status-only export, the day it describes",
                value=date.today().replace(day=1) - timedelta(days=1), key=f"as-of-{key}", format="YYYY-MM-DD",
                help="KPIs built on this table are then computed as of that day, in the period that contains it.")
        upload = Upload(raw, plan, Mode(mode), as_of)
        try:
            check_plan(upload)
            to_import.append(upload)
        except KpiError as error:
            st.warning(str(error), icon=":material/warning:")

if files:
    ready = len(to_import) == len(files)
    if st.button(f"Import {len(to_import)} file(s)", type="primary", disabled=not ready or not to_import, key="import"):
        bar = st.progress(0.0, text="Starting the import")
        try:
            result = import_files(common.connection(), to_import, "Upload: " + ", ".join(u.raw.name for u in to_import),
                                  progress=lambda share, text: bar.progress(share, text=text))
        except KpiError as error:
            bar.empty()
            st.error(f"Nothing was imported: {error}", icon=":material/error:")
        else:
            common.forget_view()
            st.session_state["last-import"] = result
            st.rerun()

if (result := st.session_state.get("last-import")) is not None:
    st.subheader(f"Imported as snapshot {result.snapshot.id}")
    for report in result.files:
        with st.container(border=True, key=f"report-{report.file}"):
            st.markdown(f"**{report.file}** → {report.table} ({report.mode.value})")
            left, right = st.columns(2)
            left.metric("Rows imported", f"{report.imported:,}")
            right.metric("Rows rejected", f"{report.rejected:,}")
            for warning in report.warnings:
                st.warning(warning, icon=":material/warning:")
            if report.problems:
                rows = [(p.row, p.column, p.value, p.reason) for p in report.problems]
                st.dataframe(uploads.problems_frame(rows), hide_index=True)
                data = csv_bytes(["row", "column", "value", "reason"], rows)
                st.download_button("Download rejected rows (CSV)", data, file_name=f"{report.file}-rejected.csv",
                                   mime="text/csv", key=f"download-{report.file}")

st.subheader("Snapshots")
for snap, tables in store.snapshots(common.connection()):
    with st.container(border=True, key=f"snapshot-{snap.id}"):
        changed = ", ".join(f"{t.table} ({t.rows:,} rows from {t.source})" for t in tables if t.changed) or "–"
        current = " · current" if snap.id == ctx.latest.id else ""
        st.markdown(f"**Snapshot {snap.id}** · {snap.created_at:%Y-%m-%d %H:%M} · {snap.note}{current}  \n"
                    f"Changed: {changed}")
        view, restore = st.columns([1, 1])
        with view:
            common.overview_link(ctx, snap.id, f"View snapshot {snap.id}")
        if snap.id != ctx.latest.id and restore.button(f"Restore snapshot {snap.id}", key=f"restore-{snap.id}"):
            restored = store.restore(common.connection(), snap.id)
            common.forget_view()
            st.success(f"Snapshot {snap.id} is current again, as snapshot {restored.id}.")
            st.rerun()

st.subheader("Templates")
st.markdown("Each table in one screen. Column names from other tools and languages are recognised too.")
for name in TABLES:
    with st.expander(name):
        st.markdown(describe(name))
        st.download_button(f"Download an empty {name} template", template_csv(name), file_name=f"{name}.csv",
                           mime="text/csv", key=f"template-{name}")
