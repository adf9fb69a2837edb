"""Uploaded files on the Data page: kept on disk, read once, their mapping remembered across reruns."""
from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from kpicore import actions, store
from kpicore.coverage import Coverage
from kpicore.errors import KpiError
from kpicore.files import RawFile, max_upload_bytes, read_file, workdir
from kpicore.ingest import ExportDate, Upload, export_date
from kpicore.mapping import Plan, to_saved
from pages.common import actor, connection


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
        folder = workdir("upload")  # removed when the file leaves the uploader (forget_others), or at a restart
        path = folder / _safe_name(file.name)
        with path.open("wb") as sink:
            shutil.copyfileobj(file, sink, 1 << 20)
        try:
            raw = read_file(path, file.name, folder)
        except KpiError as error:
            shutil.rmtree(folder, ignore_errors=True)
            cache[key] = error
            return error
        plan, saved = store.plan_for(connection(), raw)
        cache[key] = (raw, plan, saved)
    return cache[key]


def _safe_name(name: str) -> str:
    """The uploaded file's own name as one file name in its folder (no path, no '..', no control character)."""
    cleaned = "".join(c if c.isprintable() and c not in "/\\" else "_" for c in Path(name).name).strip(". ")
    return cleaned[:120] or "upload"


def forget_others(files: Sequence[UploadedFile]) -> None:
    """Drop the copies of uploads no longer in the uploader (removed, or imported and cleared)."""
    cache = st.session_state.get("uploads", {})
    shown = {upload_key(f) for f in files}
    for key in [k for k in cache if k not in shown]:
        prepared = cache.pop(key)
        if not isinstance(prepared, KpiError):
            shutil.rmtree(prepared[0].path.parent, ignore_errors=True)


def replan(file: UploadedFile, table: str) -> Plan:
    """Recognise the file's columns again for another table chosen by the user."""
    raw, _, _ = prepared_upload(file)  # type: ignore[misc]
    return update_plan(file, store.plan_for(connection(), raw, table)[0])


def update_plan(file: UploadedFile, plan: Plan) -> Plan:
    """Remember a corrected mapping for the file."""
    raw, _, saved = st.session_state["uploads"][upload_key(file)]
    st.session_state["uploads"][upload_key(file)] = (raw, plan, saved)
    return plan


def proposed_day(file: UploadedFile, raw: RawFile) -> ExportDate | None:
    """The day a status-only export seems to describe, found once per file (it may read the whole file)."""
    found = st.session_state.setdefault("export-dates", {})
    key = upload_key(file)
    if key not in found:
        found[key] = export_date(raw)
    return found[key]


def save_mapping(name: str, plan: Plan, raw: RawFile) -> None:
    """Keep the mapping under a name for the next export from the same tool."""
    actions.save_mapping(connection(), actor(), name, to_saved(plan, raw))


def batch_key(keys: Sequence[str], batch: Sequence[Upload]) -> str:
    """What makes an import the same import: the files, and how each is mapped and stored."""
    text = repr([(key, u.plan, u.mode, u.as_of) for key, u in zip(keys, batch, strict=True)])
    return hashlib.sha256(text.encode()).hexdigest()


def preview(raw: RawFile) -> pd.DataFrame:
    """The first rows of a file with its own column names (text as in the file)."""
    return pd.DataFrame(list(raw.sample[:20]), columns=list(raw.columns)) if raw.sample else pd.DataFrame(
        columns=list(raw.columns))


def tables_frame(tables: dict[str, store.SnapshotTable], covered: dict[str, Coverage]) -> pd.DataFrame:
    """The tables of a snapshot: rows, where they came from and the days they cover."""
    return pd.DataFrame([{
        "Table": name,
        "Rows": f"{table.rows:,}",
        "From": ("sample data" if table.stored.sample else table.source) if table.rows else "–",
        "Data": _days(covered.get(name)),
    } for name, table in tables.items()])


def _days(covered: Coverage | None) -> str:
    if covered is None:
        return "–"
    if covered.status:
        return f"status as of {covered.last.isoformat()}"
    return f"{covered.first.isoformat()} to {covered.last.isoformat()}"


def problems_frame(rows: list[tuple[int, str, str, str]]) -> pd.DataFrame:
    """Rejected values as a table."""
    return pd.DataFrame(rows, columns=["Row", "Column", "Value", "Reason"])
