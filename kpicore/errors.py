"""Expected failures, each with a message a business user can act on."""
from __future__ import annotations

from dataclasses import dataclass


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of a library's error message, for a sentence of ours (its type's name if it says nothing)."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__


class KpiError(Exception):
    """Base of every expected failure; the message is shown to the user as is."""


@dataclass(frozen=True)
class CatalogIssue:
    """One problem found in a KPI catalog."""

    kpi: str
    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.kpi}: {self.field}: {self.message}"


class CatalogError(KpiError):
    """A catalog file that cannot be used, with every problem found in it."""

    def __init__(self, source: str, issues: list[CatalogIssue]) -> None:
        self.source = source
        self.issues = issues
        lines = "\n".join(f"  - {issue}" for issue in issues)
        super().__init__(f"The KPI catalog {source} has {len(issues)} problem(s):\n{lines}")


class UnknownPeriod(KpiError):
    """A period label that is malformed or has no data."""


class UnknownTeam(KpiError):
    """A team that the catalog does not define."""


class BadParameter(KpiError):
    """A value given on the command line or in a URL that is not allowed."""


class BadFile(KpiError):
    """An export that cannot be imported, with the file (and row and column) it is about."""

    def __init__(self, file: str, message: str, row: int | None = None, column: str | None = None) -> None:
        self.file, self.row, self.column = file, row, column
        where = "".join([f", row {row}" if row else "", f", column '{column}'" if column else ""])
        super().__init__(f"{file}{where}: {message}")
