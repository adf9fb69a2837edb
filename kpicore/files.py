"""Reading real-world exports: size limit, encoding, Excel, delimiter and header row."""
from __future__ import annotations

import codecs
import csv
import errno
import os
import re
import shutil
import tempfile
import threading
import time as time_module
import zipfile
import zlib
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from pathlib import Path
from typing import NamedTuple

import duckdb
import numpy as np
from python_calamine import CalamineWorkbook

from kpicore.errors import BadFile, KpiError, first_line

DEFAULT_MAX_UPLOAD_MB = 200
DEFAULT_MAX_XLSX_MB = 1000
MAX_COLUMNS = 20_000  # an export of every CRM property may have thousands; each table reads a dozen
SAMPLE_ROWS = 2000
_CHUNK = 1 << 20
_CHECKED = 8 << 20  # read_file checks this much for UTF-8; DuckDB finds invalid bytes further down (see not_utf8)
_DELIMITERS = (",", ";", "\t", "|")
_MAX_CELL = 1 << 24  # the csv module's default (128 KB per cell) is far below the lines DuckDB reads


@dataclass(frozen=True)
class RawFile:
    """An export ready for DuckDB: a UTF-8 delimited text file and what is known about it."""

    name: str
    path: Path
    encoding: str
    delimiter: str
    skip: int
    columns: tuple[str, ...]
    sample: tuple[tuple[str | None, ...], ...]
    sheet: str | None = None
    parallel: bool = True
    typed: bool = True  # whether DuckDB's reader may parse ISO timestamps itself (see `as_text`)
    saved: date | None = None  # the day an Excel workbook was last saved, where it says
    workdir: Path | None = None  # where a converted copy goes (None: a temporary directory, made when needed)

    @property
    def header_row(self) -> int:
        """The row of the header in the file as a spreadsheet shows it (1-based)."""
        return self.skip + 1

    def read_sql(self, timestamps: Collection[int] = (), timestamp_format: str | None = None) -> str:
        """A DuckDB table expression reading every data row, columns named c0, c1, ...

        Every column is text, except the columns in `timestamps`: DuckDB's reader parses those with
        `timestamp_format` (bound as $timestamp_format) and fails on the first cell that does not fit.
        """
        typed = set(timestamps) if timestamp_format else set()
        columns = ", ".join(f"'c{i}': '{'TIMESTAMP' if i in typed else 'VARCHAR'}'" for i in range(len(self.columns)))
        strict = ", timestampformat = $timestamp_format" if typed else ""
        # Every option is given and auto_detect is off: DuckDB's sniffer took rows starting with '#' for
        # comments and dropped them, and gave up on files whose first data row is short.
        return (
            f"read_csv($path, auto_detect = false, delim = $delim, quote = '\"', escape = '\"', header = false, "
            f"skip = {self.skip + 1}, null_padding = true, strict_mode = false{strict}, "
            f"parallel = {str(self.parallel).lower()}, columns = {{{columns}}})"
        )

    def read_params(self) -> dict[str, str]:
        """The bound parameters of `read_sql()`."""
        return {"path": str(self.path), "delim": self.delimiter}

    def spreadsheet_rows(self, numbers: Collection[int], records: int, lines: int) -> dict[int, int]:
        """Row numbers as a spreadsheet shows them, for data rows numbered one after the other from the header.

        DuckDB's reader skips empty lines, so rows below one are numbered too low. When the file's `lines`
        (see text_counts) are the header's row and the `records` DuckDB read (no empty line, no quoted line
        break), the numbers stand; otherwise the file is read with the csv module up to the last row asked for.
        """
        wanted = set(numbers)
        if not wanted or lines == self.header_row + records:
            return {n: n for n in wanted}
        found: dict[int, int] = {}
        with _csv_rows(self.path, self.delimiter, errors="replace") as file_rows:
            counted = self.header_row
            for row, cells in enumerate(file_rows, start=1):
                if row <= self.header_row or not cells:  # csv gives [] for an empty line
                    continue
                counted += 1
                if counted in wanted:
                    found[counted] = row
                    if len(found) == len(wanted):
                        break
        return {n: found.get(n, n) for n in wanted}

    def broken_quote(self) -> tuple[int, str] | None:
        """(row as a spreadsheet numbers it, what is wrong) for the first quote that does not end its cell, or None.

        DuckDB's lenient reader reads the lines below a quote that is never closed into one cell, and drops the
        text after a quote that closes too early ("x"y). The csv module reads the whole file to find them, so
        call this only when `text_counts` hints at one.
        """
        rows = 0
        with _csv_rows(self.path, self.delimiter, errors="replace", strict=True) as records:
            try:
                for _ in records:
                    rows += 1
            except csv.Error as error:
                if "unexpected end of data" in str(error):
                    return rows + 1, "is never closed"
                if "expected after" in str(error):
                    return rows + 1, "closes before its cell ends"
        return None

    def as_text(self) -> RawFile:
        """The same file with every cell read as text (after DuckDB's reader refused a timestamp)."""
        return replace(self, typed=False)

    def sequential(self) -> RawFile:
        """The same file read by one thread (DuckDB cannot pad short rows in parallel across quoted line breaks)."""
        return replace(self, parallel=False)

    def transcoded(self) -> RawFile:
        """The same file as a UTF-8 copy, for bytes that are not UTF-8 below the part `read_file` checked.

        Valid UTF-8 stays as it is (the header and sample were read that way); any other byte is read as
        Windows-1252.
        """
        target = _transcode(self.path, "utf-8", _workdir(self.workdir), errors=_CP1252_FALLBACK)
        return replace(self, path=target, encoding="utf-8+cp1252")


class TextCounts(NamedTuple):
    """What `text_counts` finds in a text file."""

    lines: int  # a last line without a line break counts too
    quotes: int  # '"' characters: an odd number means a quote may not end its cell (see RawFile.broken_quote)


def text_counts(path: Path) -> TextCounts:
    """Lines and quote characters in a text file, read in chunks into one buffer."""
    buffer = bytearray(_CHUNK * 8)
    view, lines, quotes, last = memoryview(buffer), 0, 0, 10
    with path.open("rb") as handle:
        while size := handle.readinto(buffer):
            chunk = np.frombuffer(view[:size], dtype=np.uint8)
            lines += int(np.count_nonzero(chunk == 10))  # 10: a line break
            quotes += int(np.count_nonzero(chunk == 34))  # 34: '"'
            last = int(chunk[-1])
    return TextCounts(lines + (last != 10), quotes)


def needs_sequential(error: Exception) -> bool:
    """Whether DuckDB refused a parallel read of a file with quoted line breaks (`RawFile.sequential` reads it)."""
    return "parallel=false" in str(error)


def not_utf8(error: Exception) -> bool:
    """Whether DuckDB refused a file as not UTF-8 (`RawFile.transcoded` reads it)."""
    return "not utf-8" in str(error).lower()


_CP1252_FALLBACK = "kpi-cp1252-fallback"


def _cp1252_fallback(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return error.object[error.start:error.end].decode("cp1252", errors="replace"), error.end


codecs.register_error(_CP1252_FALLBACK, _cp1252_fallback)


def _workdir(given: Path | None) -> Path:
    """The caller's directory for converted copies, else a new temporary one (made only when a copy is needed)."""
    return given or workdir("import")


def max_upload_bytes() -> int:
    """The upload size limit: $KPI_MAX_UPLOAD_MB megabytes, 200 by default."""
    try:
        return int(float(os.environ.get("KPI_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB)) * 1024 * 1024)
    except ValueError:
        return DEFAULT_MAX_UPLOAD_MB * 1024 * 1024


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # a write failed for want of space


def read_file(path: Path, name: str | None = None, workdir: Path | None = None) -> RawFile:
    """Inspect an export (CSV, TSV or XLSX) and make it readable by DuckDB; BadFile says what is wrong, KpiError
    that its working copy did not fit into the temporary folder."""
    name = name or path.name
    try:
        return _read_file(path, name, workdir)
    except OSError as error:
        if error.errno not in _FULL:
            raise
        raise temp_full(name) from None


def temp_full(name: str) -> KpiError:
    """The temporary folder ran out of space while a working copy of an export was written (its path is left out:
    visitors of the app see this message)."""
    return KpiError(f"{name}: its working copy could not be written, because the temporary folder (TMPDIR) is "
                    "full. Nothing was imported. Free some space there, or point TMPDIR at a larger disk, and try "
                    "again.")


def _read_file(path: Path, name: str, workdir: Path | None) -> RawFile:
    size = path.stat().st_size
    limit = max_upload_bytes()
    if size > limit:
        raise BadFile(name, f"is {size / 1024 / 1024:.1f} MB, more than the limit of {limit / 1024 / 1024:g} MB. "
                            "Split the export, or raise the limit with KPI_MAX_UPLOAD_MB.")
    if size == 0:
        raise BadFile(name, "is empty (0 bytes). Export it again with at least a header row and data rows.")
    with path.open("rb") as handle:
        head = handle.read(8192)
    saved = None
    if head.startswith(b"PK\x03\x04"):
        text, sheet = _excel_to_csv(path, name, _workdir(workdir))
        encoding, saved = "xlsx", workbook_saved(path)
    elif head.startswith(b"\xd0\xcf\x11\xe0"):
        raise BadFile(name, "is an old Excel (.xls) file. Save it as .xlsx or CSV and upload that.")
    else:
        encoding = _encoding(head, path, name)
        text, sheet = (path if encoding == "utf-8" else _transcode(path, encoding, _workdir(workdir), name=name)), None
    delimiter, skip, columns = _layout(text, name)
    return _sample(RawFile(name, text, encoding, delimiter, skip, columns, (), sheet, workdir=workdir, saved=saved))


def _encoding(head: bytes, path: Path, name: str) -> str:
    """UTF-8 (with or without BOM), UTF-16 (by BOM), else Windows-1252.

    Only the first 8 MB are checked for UTF-8: a file that is not UTF-8 further down is refused by DuckDB's
    reader, and the import reads a converted copy then (`RawFile.transcoded`).
    """
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if b"\x00" in head:
        raise BadFile(name, "is not a text file (it contains binary data). Upload a CSV, TSV or XLSX export.")
    with path.open("rb") as handle:
        chunk = handle.read(_CHECKED)
        whole = not handle.read(1)
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError as error:
        if whole or error.start < len(chunk) - 3:  # not a character cut in two at the end of the part checked
            return "cp1252"
    return "utf-8"


ENCODING_NAMES = {"utf-8-sig": "UTF-8", "utf-16": "UTF-16", "utf-8": "UTF-8", "cp1252": "Windows-1252"}


def _transcode(path: Path, encoding: str, workdir: Path, errors: str | None = None, name: str | None = None) -> Path:
    """Re-encode a text file as UTF-8 in chunks (never the whole file in memory). A byte that is not in the
    file's encoding (say a UTF-8 file with a BOM and one Windows-1252 byte, or UTF-16 cut in the middle of a
    character) is a BadFile naming the row."""
    target = workdir / (path.stem + ".utf8.csv")
    # Windows-1252 decodes every byte; a stray byte in UTF-8 with a BOM is read as Windows-1252, as in UTF-8
    # without one (RawFile.transcoded); UTF-16 has no such reading
    errors = errors or {"cp1252": "replace", "utf-8-sig": _CP1252_FALLBACK}.get(encoding, "strict")
    decoder = codecs.getincrementaldecoder(encoding)(errors)
    lines = 0
    with path.open("rb") as source, target.open("w", encoding="utf-8", newline="") as sink:
        try:
            while chunk := source.read(_CHUNK):
                text = decoder.decode(chunk)
                lines += text.count("\n")
                sink.write(text)
            sink.write(decoder.decode(b"", final=True))
        except UnicodeDecodeError as error:
            before = error.object[:error.start].decode(encoding, errors="ignore").count("\n")
            sink.close()
            target.unlink(missing_ok=True)
            raise BadFile(name or path.name, f"is not valid {ENCODING_NAMES.get(encoding, encoding)}: it has bytes "
                                             f"that are not characters ({error.reason}). Save the export again as "
                                             "UTF-8 (in Excel: CSV UTF-8) and upload that; nothing was imported.",
                          row=lines + before + 1) from None
    return target


_SCRATCH: list[duckdb.DuckDBPyConnection] = []  # the in-memory database the file reads run in, once made
_SCRATCH_LOCK = threading.Lock()


def scratch(query: str, params: object = None) -> list[tuple]:
    """Rows of a query that reads files only, on a cursor of its own: DuckDB's module-level connection is one for
    the whole process, and two sessions reading uploads at once found it busy ("connection is busy with another
    call"). The cursors share one in-memory database: starting a database for each read was 20 ms, a fifth of
    reading a file's layout and sample."""
    with _SCRATCH_LOCK:
        if not _SCRATCH:
            _SCRATCH.append(duckdb.connect(":memory:"))
        cursor = _SCRATCH[0].cursor()
    with cursor:
        return cursor.execute(query, params).fetchall()


def _layout(path: Path, name: str) -> tuple[str, int, tuple[str, ...]]:
    """Delimiter (DuckDB's sniffer), header row (skipping title rows) and column names."""
    try:  # null_padding as read_sql reads: without it one short row makes the sniffer see a single column
        sniffed = scratch("SELECT Delimiter FROM sniff_csv($path, sample_size = 2048, null_padding = true)",
                          {"path": str(path)})
        sniffed = sniffed[0] if sniffed else None
    except duckdb.Error as error:
        raise BadFile(name, f"could not be read as a table ({first_line(error)}). "
                            "Upload a CSV, TSV or XLSX export with a header row.") from None
    delimiter = sniffed[0] if sniffed and sniffed[0] in _DELIMITERS else ","
    top = _top_rows(path, delimiter)
    if not _consistent(top):  # the sniffer may split '1;Müller, Meier, Schulze;5' at the commas: take what fits
        delimiter, top = next(((other, rows) for other in _DELIMITERS if other != delimiter
                               for rows in [_top_rows(path, other)] if _consistent(rows)), (delimiter, top))
    widths = [sum(1 for cell in row if cell.strip()) for row in top]
    if not widths or max(widths) == 0:
        raise BadFile(name, "has no header row. The first row must name the columns.")
    skip = next(i for i, w in enumerate(widths) if w >= max(2, 0.6 * max(widths)) or w == max(widths))
    header = top[skip]
    while header and not header[-1].strip():
        header = header[:-1]
    if not header:
        raise BadFile(name, "has no header row. The first row must name the columns.")
    if len(header) > MAX_COLUMNS:
        raise BadFile(name, f"has {len(header):,} columns; at most {MAX_COLUMNS:,} are read. Export only the "
                            "columns you need (each table uses at most a dozen).")
    return delimiter, skip, _unique_names(header)


def _top_rows(path: Path, delimiter: str) -> list[list[str]]:
    """The first rows of a UTF-8 file as the csv module splits them."""
    with _csv_rows(path, delimiter) as rows:
        return [row for _, row in zip(range(25), rows, strict=False)]


@contextmanager
def _csv_rows(path: Path, delimiter: str, errors: str = "strict",
              strict: bool = False) -> Iterator[Iterator[list[str]]]:
    """A UTF-8 file's records as the csv module reads them, with cells as long as DuckDB reads."""
    csv.field_size_limit(max(csv.field_size_limit(), _MAX_CELL))
    with path.open("r", encoding="utf-8", newline="", errors=errors) as handle:
        yield csv.reader(handle, delimiter=delimiter, strict=strict)


def _consistent(rows: list[list[str]]) -> bool:
    """Whether every row that is not empty has the same number of cells, two or more."""
    widths = {len(row) for row in rows if any(cell.strip() for cell in row)}
    return len(widths) == 1 and min(widths) >= 2


def _unique_names(header: list[str]) -> tuple[str, ...]:
    """The column names, each repeat numbered ('Amount', 'Amount (2)'), in time linear in the number of columns
    (a file of 300,000 repeated names takes a fraction of a second, not minutes)."""
    names: dict[str, None] = {}  # a dict keeps the order and finds a name at once
    tried: dict[str, int] = {}  # per name, the next number to try
    for index, cell in enumerate(header, start=1):
        base = " ".join(cell.split()) or f"Column {index}"
        name, n = base, tried.get(base, 2)
        while name in names:
            name, n = f"{base} ({n})", n + 1
        tried[base] = n
        names[name] = None
    return tuple(names)


def _sample(raw: RawFile) -> RawFile:
    """The file with its first data rows as text (read by one thread if they have quoted line breaks)."""
    try:
        rows = scratch(f"SELECT * FROM {raw.read_sql()} LIMIT {SAMPLE_ROWS}", raw.read_params())
    except duckdb.Error as error:
        if raw.parallel and needs_sequential(error):
            return _sample(raw.sequential())
        raise BadFile(raw.name, f"could not be read as a table ({first_line(error)}).") from None
    return replace(raw, sample=tuple(tuple(row) for row in rows))


def _excel_to_csv(path: Path, name: str, workdir: Path) -> tuple[Path, str]:
    """The first worksheet as a UTF-8 CSV (dates written ISO, whole numbers without '.0'), and its name.

    python-calamine reads the workbook (several times faster than openpyxl, and no XML entity is expanded). A
    workbook that would expand to more than max_expanded_bytes() is refused before anything is expanded.
    """
    _check_expanded_size(path, name)
    _check_cell_sizes(path, name)
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        names = workbook.sheet_names
        sheet = workbook.get_sheet_by_index(0) if names else None
    except Exception as error:  # noqa: BLE001 - calamine raises several kinds for broken files
        raise BadFile(name, f"is not a readable Excel file ({first_line(error)}). "
                            "Open it in Excel and save it again as .xlsx or CSV.") from None
    target = workdir / (Path(name).stem + ".xlsx.csv")
    try:
        with target.open("w", encoding="utf-8", newline="") as sink:
            writer = csv.writer(sink)
            for row in sheet.iter_rows() if sheet is not None else ():
                writer.writerow([_excel_text(v) for v in row])
    except OSError as error:
        if error.errno in _FULL:
            raise
        raise BadFile(name, f"is not a readable Excel file ({first_line(error)}). "
                            "Open it in Excel and save it again as .xlsx or CSV.") from None
    except Exception as error:  # noqa: BLE001 - a malformed cell fails while the rows are read
        raise BadFile(name, f"is not a readable Excel file ({first_line(error)}). "
                            "Open it in Excel and save it again as .xlsx or CSV.") from None
    finally:
        workbook.close()
    if target.stat().st_size == 0 or not target.read_text(encoding="utf-8").strip(", \r\n"):
        raise BadFile(name, "has an empty first worksheet. Put the table on the first sheet.")
    return target, names[0]


def max_expanded_bytes() -> int:
    """How large an Excel file may become once unzipped: $KPI_MAX_XLSX_MB megabytes, 1,000 by default (an
    export of a few hundred thousand rows expands to a few hundred MB; a zip bomb to many GB)."""
    try:
        return int(float(os.environ.get("KPI_MAX_XLSX_MB", DEFAULT_MAX_XLSX_MB)) * 1024 * 1024)
    except ValueError:
        return DEFAULT_MAX_XLSX_MB * 1024 * 1024


def _check_expanded_size(path: Path, name: str) -> None:
    """Refuse a workbook by the sizes its zip directory declares (read without expanding anything)."""
    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (OSError, zipfile.BadZipFile) as error:
        raise BadFile(name, f"is not a readable Excel file ({first_line(error)}). "
                            "Open it in Excel and save it again as .xlsx or CSV.") from None
    limit = max_expanded_bytes()
    if expanded > limit:
        raise BadFile(name, f"would expand to {expanded / 1024 / 1024:,.0f} MB when opened, more than the "
                            f"{limit / 1024 / 1024:,.0f} MB allowed. Save the sheet as CSV and upload that (or raise "
                            "the limit with KPI_MAX_XLSX_MB).")


EXCEL_CELL_CHARS = 32_767  # Excel's own limit for the text of one cell
_MAX_CELL_XML = EXCEL_CELL_CHARS * 10  # the most XML that text can take (each character written as &#x10FFFF;)
_CELL_PARTS = ("xl/sharedStrings.xml", "xl/worksheets/")  # where a workbook keeps its cells' text


def _check_cell_sizes(path: Path, name: str) -> None:
    """Refuse a workbook with a cell longer than Excel allows, reading its text parts as a stream (a 1 MB file
    can hold one 1 GB cell, which a reader would hold in memory several times over). Between two tags of the XML
    is a cell's text or the space between tags, so the longest stretch without '<' bounds the longest cell."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename.startswith(_CELL_PARTS) and _longest_text(archive, info) > _MAX_CELL_XML:
                    raise BadFile(name, f"holds a cell longer than {EXCEL_CELL_CHARS:,} characters, Excel's own "
                                        "limit for a cell, so it was not saved by Excel or is damaged. Open it in "
                                        "Excel and save it again, or export the table as CSV.")
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as error:
        raise BadFile(name, f"is not a readable Excel file ({first_line(error)}). "
                            "Open it in Excel and save it again as .xlsx or CSV.") from None


def _longest_text(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> int:
    """The longest stretch of bytes without '<' in one part of the archive, found chunk by chunk."""
    longest = run = 0  # run: the bytes since the last '<' of the chunks read so far
    with archive.open(info) as stream:
        while chunk := stream.read(4 * _CHUNK):
            marks = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == ord("<"))
            if marks.size == 0:
                run += len(chunk)
            else:
                inner = int(np.diff(marks).max()) - 1 if marks.size > 1 else 0
                longest = max(longest, run + int(marks[0]), inner)
                run = len(chunk) - 1 - int(marks[-1])
            if max(longest, run) > _MAX_CELL_XML:
                break
    return max(longest, run)


WORKDIR_OWNER = ".owner"  # in an import's temporary directory of an older version: the id of its process
_WORKDIR_PREFIXES = ("kpi-upload-", "kpi-load-", "kpi-import-")
_OWNER_IN_NAME = re.compile(r"^kpi-(?:upload|load|import)-(\d+)-")
_ORPHAN_SECONDS = 24 * 3600  # a directory without owner (older versions) is left alone for a day


def workdir(purpose: str) -> Path:
    """A new temporary directory for one import's copies ('upload', 'load' or 'import'), named with this
    process's id (made in one step, so a process killed at any moment leaves no directory without its owner),
    so that clean_workdirs removes it once the process is gone."""
    return Path(tempfile.mkdtemp(prefix=f"kpi-{purpose}-{os.getpid()}-"))


def _owner(folder: Path) -> int | None:
    """The id of the process a temporary directory belongs to, from its name or an older version's .owner file."""
    if found := _OWNER_IN_NAME.match(folder.name):
        return int(found.group(1))
    try:
        return int((folder / WORKDIR_OWNER).read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None


def clean_workdirs(root: Path | None = None) -> list[Path]:
    """Remove the temporary directories of imports whose process has ended; the ones removed."""
    removed = []
    for folder in Path(root or tempfile.gettempdir()).iterdir():
        if not folder.name.startswith(_WORKDIR_PREFIXES) or not folder.is_dir():
            continue
        pid = _owner(folder)
        if pid is not None and process_running(pid):
            continue
        try:
            if pid is None and time_module.time() - folder.stat().st_mtime < _ORPHAN_SECONDS:
                continue
        except OSError:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def process_running(pid: int) -> bool:
    """Whether a process with this id runs (of any user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def workbook_saved(path: Path) -> date | None:
    """The day an Excel workbook was last saved, from its document properties (None if it does not say)."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open("docProps/core.xml") as core:
            text = core.read(1 << 16).decode("utf-8", errors="replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return None
    found = re.search(r"<dcterms:modified[^>]*>(\d{4}-\d{2}-\d{2})", text)
    return date.fromisoformat(found.group(1)) if found else None


def _excel_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))  # Excel stores every number as a float: 1042, not 1042.0
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
