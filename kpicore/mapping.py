"""Recognising an export: which canonical table it is, which column is which, how values are written."""
from __future__ import annotations

import difflib
import functools
import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum

from kpicore.files import RawFile
from kpicore.model import ENTITY_WORDS, FALLBACKS, MONEY, REFERENCES, TABLES, VOCABULARIES, Table

SURE = 0.9  # confidence from which a column is placed without asking
PLACED = 0.5  # confidence from which a guess is placed (to be checked); below it, it is only suggested
KnownIds = Callable[[str, list[str]], float]  # (table, values) -> share of the values that are ids stored in it


class DateOrder(Enum):
    """How the dates of a column are written."""

    ISO = "iso"                # 2026-10-31 (also the fallback for Excel cells)
    DAY_FIRST = "day_first"    # 31.10.2026, 31/10/2026
    MONTH_FIRST = "month_first"  # 10/31/2026
    AMBIGUOUS = "ambiguous"    # 01/02/2026: the user must say


@dataclass(frozen=True)
class ColumnMatch:
    """Which source column feeds a canonical column, and how sure the guess is."""

    canonical: str
    source: str | None
    confidence: float

    @property
    def sure(self) -> bool:
        return self.source is not None and self.confidence >= SURE


@dataclass(frozen=True)
class Plan:
    """How one export becomes rows of one canonical table."""

    table: str
    confidence: float
    columns: tuple[ColumnMatch, ...]
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    date_orders: dict[str, DateOrder] = field(default_factory=dict)
    decimal_comma: frozenset[str] = frozenset()
    suggestions: tuple[ColumnMatch, ...] = ()  # guesses below PLACED for columns left unmapped: shown, not used

    def source_of(self, canonical: str) -> str | None:
        """The source column mapped onto a canonical column."""
        return next((m.source for m in self.columns if m.canonical == canonical), None)

    @property
    def missing_required(self) -> tuple[str, ...]:
        """Required canonical columns without a source column."""
        table = TABLES[self.table]
        return tuple(c.name for c in table.columns if c.required and self.source_of(c.name) is None)

    @property
    def unsure(self) -> tuple[ColumnMatch, ...]:
        """Placed columns whose guess is not sure enough to import without asking."""
        return tuple(m for m in self.columns if m.source is not None and not m.sure)

    def suggestion_for(self, canonical: str) -> ColumnMatch | None:
        """The guess for a column left unmapped because it was too unsure (below PLACED)."""
        return next((m for m in self.suggestions if m.canonical == canonical and self.source_of(canonical) is None),
                    None)

    @property
    def ambiguous_dates(self) -> tuple[str, ...]:
        """Mapped date columns whose day/month order cannot be told from the data."""
        return tuple(c for c, order in self.date_orders.items()
                     if order is DateOrder.AMBIGUOUS and self.source_of(c) is not None)

    def with_column(self, canonical: str, source: str | None) -> Plan:
        """The plan with a column mapping set by the user (sure by definition)."""
        columns = tuple(
            ColumnMatch(m.canonical, source, 1.0) if m.canonical == canonical
            else (ColumnMatch(m.canonical, None, 0.0) if source is not None and m.source == source else m)
            for m in self.columns
        )
        return replace(self, columns=columns)

    def with_value(self, canonical: str, source_value: str, value: str) -> Plan:
        """The plan with one value mapping set by the user, e.g. stage 'Engaging' -> open."""
        values = {c: dict(m) for c, m in self.values.items()}
        values.setdefault(canonical, {})[source_value] = value
        return replace(self, values=values)

    def with_date_order(self, canonical: str, order: DateOrder) -> Plan:
        """The plan with the user's answer to how a date column is written."""
        return replace(self, date_orders={**self.date_orders, canonical: order})


def normalize(name: str) -> str:
    """A column name folded for matching: 'Erstellt am' -> 'erstelltam', 'Lösungszeit' -> 'loesungszeit'."""
    text = name.casefold().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
    text = unicodedata.normalize("NFKD", text)
    return re.sub(r"[^a-z0-9]", "", text)


_SUFFIX = re.compile(r"\s*(\((utc|gmt|metadata|[a-z]{3})\)|\*)\s*$", re.IGNORECASE)
_PREFIX = re.compile(r"^\s*([\w ]+?)\s*(?: - |\.)\s*(.+)$")


def variants(name: str, table: Table) -> list[str]:
    """The forms of a header to match: itself, without a suffix tools add ('Created (UTC)', 'Amount (USD)',
    a required-field '*'), and without a prefix naming this table's entity ('Deal - Value' in a deals export,
    'subscriptions.cancelled_at'). A prefix naming another entity ('Organization - ID') is kept."""
    found = [name]
    bare = _SUFFIX.sub("", name)
    if bare and bare != name:
        found.append(bare)
    for text in list(found):
        prefixed = _PREFIX.match(text)
        if prefixed and normalize(prefixed.group(1)) in ENTITY_WORDS.get(table.name, ()):
            found.append(prefixed.group(2))
    return found


@dataclass(frozen=True)
class _Folded:
    """A column name folded for matching, with the letters it has ready for quick comparisons."""

    text: str
    drop: dict[int, None]

    @classmethod
    def of(cls, name: str) -> _Folded:
        text = normalize(name)
        return cls(text, str.maketrans("", "", text))

    def similarity(self, other: _Folded) -> float:
        """difflib's ratio, or 0 where cheap bounds (lengths, shared letters) show it is below 0.8."""
        a, b = self.text, other.text
        need = 0.4 * (len(a) + len(b))  # ratio = 2 * matches / (len(a) + len(b)) >= 0.8
        if (min(len(a), len(b)) < need or len(b) - len(b.translate(self.drop)) < need
                or len(a) - len(a.translate(other.drop)) < need):
            return 0.0
        return difflib.SequenceMatcher(None, a, b).ratio()


@functools.lru_cache(maxsize=512)
def _folded_names(canonical: str, aliases: tuple[str, ...]) -> tuple[_Folded, ...]:
    """The canonical name first, then its aliases, folded."""
    return (_Folded.of(canonical), *(_Folded.of(a) for a in aliases))


ALIAS = 0.95  # a header that is one of a column's aliases; each later alias a little less (the list's order is
ALIAS_STEP = 0.0005  # the preference: Stripe's "Ended At" before "Canceled At", "Resolved time" before "Closed time")
STRIPPED = 0.98  # a header matched without its suffix or entity prefix, below the same header matched whole


def _name_confidence(source: _Folded, canonical: str, aliases: tuple[str, ...]) -> float:
    names = _folded_names(canonical, aliases)
    if source.text == names[0].text:
        return 1.0
    for index, name in enumerate(names[1:]):
        if source.text == name.text:
            return round(ALIAS - ALIAS_STEP * index, 4)
    best = max(source.similarity(name) for name in names)
    return round(best * 0.8, 2) if best >= 0.8 else 0.0


def propose(raw: RawFile, table: str | None = None, known_ids: KnownIds | None = None) -> Plan:
    """The most likely table (or the one given) and column mapping, with value and format guesses.

    `known_ids` tells how many of a column's values are ids stored in another table, so that a column repeating
    the stored customer ids is recognised as the customer reference whatever it is called."""
    samples = _columns_sample(raw)
    shares = {source: date_share(sample) if sample else 0.0 for source, sample in samples.items()}  # once per file
    candidates = [table] if table else list(TABLES)
    plans = [_match(raw, TABLES[name], samples, shares, known_ids) for name in candidates]
    return max(plans, key=lambda p: p.confidence)


def _columns_sample(raw: RawFile) -> dict[str, list[str]]:
    return {
        name: [v.strip() for row in raw.sample if (v := row[i]) is not None and v.strip()]
        for i, name in enumerate(raw.columns)
    }


def _match(raw: RawFile, table: Table, samples: dict[str, list[str]], shares: dict[str, float],
           known_ids: KnownIds | None) -> Plan:
    scored = []
    for source in raw.columns:
        whole, *stripped = [_Folded.of(v) for v in variants(source, table)]
        dated = shares[source] >= 0.6
        for column in table.columns:
            confidence = max([_name_confidence(whole, column.name, column.aliases),
                              *(min(_name_confidence(f, column.name, column.aliases), ALIAS) * STRIPPED
                                for f in stripped)])
            if confidence and samples[source] and column.type.is_time is not dated:
                confidence *= 0.5  # a date column's name with other values, or dates under another column's name
            if confidence:
                scored.append((round(confidence, 4), column.name, source))
    placed, used = _place(scored, PLACED)
    placed |= _by_values(raw, table, samples, used, placed, known_ids)
    used = {m.source for m in placed.values()}
    suggested, _ = _place([s for s in scored if s[1] not in placed and s[2] not in used], 0.0)
    suggested |= _dates_left(table, shares, used | {m.source for m in suggested.values()}, placed | suggested)
    columns = tuple(placed.get(c.name, ColumnMatch(c.name, None, 0.0)) for c in table.columns)
    required = [m.confidence for m, c in zip(columns, table.columns, strict=True) if c.required]
    coverage = len(used) / max(len(raw.columns), 1)
    confidence = round(0.75 * (sum(required) / len(required)) + 0.25 * coverage, 3)
    plan = Plan(table.name, confidence, columns, suggestions=tuple(suggested.values()))
    return _guess_formats(plan, samples, raw.delimiter == ";")


def _place(scored: list[tuple[float, str, str]], least: float) -> tuple[dict[str, ColumnMatch], set[str]]:
    """The best guesses from `least` on, each canonical and each source column used once."""
    placed: dict[str, ColumnMatch] = {}
    used: set[str] = set()
    for confidence, canonical, source in sorted(scored, reverse=True):
        if confidence >= least and canonical not in placed and source not in used:
            placed[canonical] = ColumnMatch(canonical, source, confidence)
            used.add(source)
    return placed, used


_VALUE_GUESS = 0.6  # a column recognised from its values only: placed, to be checked


def _by_values(raw: RawFile, table: Table, samples: dict[str, list[str]], used: set[str],
               placed: dict[str, ColumnMatch], known_ids: KnownIds | None) -> dict[str, ColumnMatch]:
    """Columns recognised from their values where their names said nothing: the deal amount (money-like
    numbers next to a stage) and references (a column repeating another table's stored ids)."""
    found: dict[str, ColumnMatch] = {}
    free = [c for c in raw.columns if c not in used and samples[c]]
    amount = table.column("amount")
    if table.name == "opportunities" and "stage" in placed and amount and "amount" not in placed:
        money = [(statistics.median(numbers), c) for c in free if (numbers := _money(samples[c]))]
        if money:
            source = max(money)[1]
            found["amount"] = ColumnMatch("amount", source, _VALUE_GUESS)
            free.remove(source)
    for (owner, column), target in REFERENCES.items():
        if owner != table.name or column in placed or known_ids is None:
            continue
        shares = [(known_ids(target, sorted(set(samples[c]))[:200]), c) for c in free if _id_like(samples[c])]
        share, source = max(shares, default=(0.0, ""))
        if share >= 0.8:
            found[column] = ColumnMatch(column, source, round(0.5 + 0.4 * share, 2))
            free.remove(source)
    return found


_DATES_LEFT = 0.3  # a required date nothing names, offered from the one column of dates left unmapped


def _dates_left(table: Table, shares: dict[str, float], used: set[str],
                known: dict[str, ColumnMatch]) -> dict[str, ColumnMatch]:
    """A suggestion for a required date no header names: the file's only unmapped column of dates (a pipeline's
    'engage_date' for created_at). Never placed: only offered."""
    dates = [c for c, share in shares.items() if c not in used and share >= 0.8]
    wanted = [c for c in table.columns if c.required and c.type.is_time and c.name not in known]
    if len(dates) != 1 or len(wanted) != 1:
        return {}
    return {wanted[0].name: ColumnMatch(wanted[0].name, dates[0], _DATES_LEFT)}


_NUMBER = re.compile(r"^[^\d-]{0,4}-?\d[\d.,' ]*[^\d]{0,4}$")


def _money(sample: list[str]) -> list[float]:
    """The values of a column that reads as amounts of money (numbers, mostly 10 or more, not all whole numbers
    from 0 to 100 as a probability is), else []."""
    numbers = []
    for value in sample:
        if not _NUMBER.match(value):
            return []
        digits = re.sub(r"[^\d.,-]", "", value).replace(",", "")
        try:
            numbers.append(float(digits))
        except ValueError:
            return []
    if not numbers or statistics.median(numbers) < 10 or all(0 <= n <= 100 for n in numbers):
        return []
    return numbers


def _id_like(sample: list[str]) -> bool:
    """Whether values look like ids: short, without spaces, mostly distinct."""
    return all(len(v) <= 64 and " " not in v for v in sample) and len(set(sample)) >= 0.5 * len(sample)


def _guess_formats(plan: Plan, samples: dict[str, list[str]], comma_locale: bool) -> Plan:
    for match in plan.columns:
        if match.source is not None:
            plan = _guess_column(plan, match.canonical, samples[match.source], comma_locale)
    return plan


def _guess_column(plan: Plan, canonical: str, sample: list[str], comma_locale: bool) -> Plan:
    """The plan with one mapped column's formats guessed from its values: date order, decimal comma, words."""
    column = TABLES[plan.table].column(canonical)
    values = {c: m for c, m in plan.values.items() if c != canonical}
    orders = {c: o for c, o in plan.date_orders.items() if c != canonical}
    commas = set(plan.decimal_comma) - {canonical}
    if column.type.is_time:
        orders[canonical] = date_order(sample)
    elif column.type.is_number and uses_decimal_comma(sample, comma_locale):
        commas.add(canonical)
    if column.values:
        known = {v: canonical_value(column.values, v) for v in sorted(set(sample))[:100]}
        values[canonical] = {v: mapped for v, mapped in known.items() if mapped}
    return replace(plan, values=values, date_orders=orders, decimal_comma=frozenset(commas))


def remap(plan: Plan, raw: RawFile, canonical: str, source: str | None) -> Plan:
    """The plan with a column mapping set by the user, the formats of the column it now reads guessed from the
    file's values (how its dates and numbers are written, what its words mean)."""
    moved = plan.with_column(canonical, source)
    if source is None:
        return moved
    return _guess_column(moved, canonical, _columns_sample(raw)[source], raw.delimiter == ";")


def canonical_value(vocabulary: str, value: str) -> str | None:
    """The canonical value a tool's value stands for ('Closed Won' -> won), or the vocabulary's fallback."""
    folded = " ".join(value.casefold().replace("_", " ").replace("-", " ").split())
    for canonical, words in VOCABULARIES[vocabulary].items():
        if folded in words or folded.replace(" ", "") in {w.replace(" ", "") for w in words}:
            return canonical
    return FALLBACKS.get(vocabulary)


_ISO = re.compile(r"^\d{4}-\d{1,2}(-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
_DOTTED = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{2}|\d{4})( \d{1,2}:\d{2}(:\d{2})?)?$")
# 08/04/2023 and Zendesk's 08-04-2023 20:52: the order is told by the values (day or month above 12)
_SLASHED = re.compile(r"^(\d{1,2})[/-](\d{1,2})[/-](\d{2}|\d{4})( \d{1,2}:\d{2}(:\d{2})?( ?[AaPp][Mm])?)?$")
_MONTH_ONLY = re.compile(r"^(\d{1,2})[./](\d{4})$")


def date_share(sample: list[str]) -> float:
    """The share of values that are written as dates."""
    hits = sum(1 for v in sample if _ISO.match(v) or _DOTTED.match(v) or _SLASHED.match(v) or _MONTH_ONLY.match(v))
    return hits / len(sample)


def date_order(sample: list[str]) -> DateOrder:
    """How a column's dates are written, decided from the values (ambiguous if 01/02 never tells)."""
    shapes = Counter()
    day_first = month_first = False
    for value in sample:
        if _ISO.match(value):
            shapes[DateOrder.ISO] += 1
        elif _DOTTED.match(value) or _MONTH_ONLY.match(value):  # 10.2026 is read by the day-first formats
            shapes[DateOrder.DAY_FIRST] += 1
        elif m := _SLASHED.match(value):
            shapes["slash"] += 1
            first, second = int(m.group(1)), int(m.group(2))
            day_first |= first > 12
            month_first |= second > 12
    if not shapes["slash"]:
        return DateOrder.DAY_FIRST if shapes[DateOrder.DAY_FIRST] > shapes[DateOrder.ISO] else DateOrder.ISO
    if day_first != month_first:
        return DateOrder.DAY_FIRST if day_first else DateOrder.MONTH_FIRST
    return DateOrder.AMBIGUOUS


# The sign may stand before or after a currency symbol: -$1,234.56, $-1,234.56, -1.234,56 €
_COMMA_DECIMAL = re.compile(r"^\D*\d{1,3}(\.\d{3})*,\d+\D*$|^\D*\d+,\d+\D*$")
_POINT_DECIMAL = re.compile(r"^\D*\d{1,3}(,\d{3})*\.\d+\D*$|^\D*\d+\.\d+\D*$")
_DOT_THOUSANDS = re.compile(r"^\D*\d{1,3}(\.\d{3})+\D*$")
_COMMA_THOUSANDS = re.compile(r"^\D*\d{1,3}(,\d{3})+\D*$")


def uses_decimal_comma(sample: list[str], comma_locale: bool = False) -> bool:
    """Whether numbers are written 1.234,56 (German) rather than 1,234.56, decided from the values."""
    # 1,234 and 1.234 are thousands as often as decimals: only the thousands separator they share tells
    comma = sum(1 for v in sample if _COMMA_DECIMAL.match(v) and not _POINT_DECIMAL.match(v)
                and not _COMMA_THOUSANDS.match(v))
    point = sum(1 for v in sample if _POINT_DECIMAL.match(v) and not _COMMA_DECIMAL.match(v)
                and not _DOT_THOUSANDS.match(v))
    if comma != point:
        return comma > point
    dots = sum(1 for v in sample if _DOT_THOUSANDS.match(v))
    commas = sum(1 for v in sample if _COMMA_THOUSANDS.match(v))
    if dots != commas:
        return dots > commas
    return comma_locale


def apply_saved(plan: Plan, raw: RawFile, saved: dict[str, object]) -> Plan:
    """A plan with a saved mapping applied: its columns (where the file has them), values and formats."""
    plan = propose(raw, str(saved["table"])) if saved["table"] != plan.table else plan
    for canonical, source in dict(saved["columns"]).items():  # type: ignore[arg-type]
        if source is None or source in raw.columns:  # confirmed by the user, formats guessed for a moved column
            moved = source != plan.source_of(canonical)
            plan = remap(plan, raw, canonical, source) if moved else plan.with_column(canonical, source)
    for canonical, pairs in dict(saved["values"]).items():  # type: ignore[arg-type]
        for source_value, value in pairs.items():
            plan = plan.with_value(canonical, source_value, value)
    for canonical, order in dict(saved["date_orders"]).items():  # type: ignore[arg-type]
        if plan.date_orders.get(canonical) is DateOrder.AMBIGUOUS:
            plan = plan.with_date_order(canonical, DateOrder(order))
    return plan


def to_saved(plan: Plan, raw: RawFile) -> dict[str, object]:
    """A plan as plain data to save under a name (JSON-ready)."""
    return {
        "table": plan.table,
        "headers": list(raw.columns),
        "columns": {m.canonical: m.source for m in plan.columns},  # None: the user left it unmapped
        "values": plan.values,
        "date_orders": {c: o.value for c, o in plan.date_orders.items() if o is not DateOrder.AMBIGUOUS},
    }


_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "₹": "INR", "CHF": "CHF", "Fr.": "CHF"}
_CODES = ("EUR", "USD", "GBP", "CHF", "JPY", "CAD", "AUD", "SEK", "NOK", "DKK", "PLN", "CZK", "INR", "CNY", "BRL")
_CODE_IN_TEXT = re.compile(r"(?<![A-Za-z])(" + "|".join(_CODES) + r")(?![A-Za-z])", re.IGNORECASE)
_CURRENCY_COLUMNS = {"currency", "currencycode", "currencyofvalue", "waehrung", "waehrungscode", "dealcurrency"}


def currency_of(raw: RawFile, plan: Plan) -> str | None:
    """The currencies the file's money is written in ('USD', or 'EUR,USD' for several), from the signs and codes
    in its amount cells, its amount column's name ('Amount (USD)') or a currency column; None when it shows none."""
    sources = [source for table, column in MONEY if table == plan.table and (source := plan.source_of(column))]
    if not sources:
        return None
    samples = _columns_sample(raw)
    found: set[str] = set()
    for source in sources:
        found |= {code.upper() for code in _CODE_IN_TEXT.findall(source)}
        for value in samples[source][:500]:
            found |= {code for sign, code in _SYMBOLS.items() if sign in value}
            found |= {code.upper() for code in _CODE_IN_TEXT.findall(value)}
    for name, sample in samples.items():
        if any(normalize(v) in _CURRENCY_COLUMNS for v in variants(name, TABLES[plan.table])):
            found |= {v.upper() for v in sample[:500] if v.upper() in _CODES}
    return ",".join(sorted(found)) or None
