"""Reference test: every shipped KPI recomputed with plain pandas from the sample CSVs, against `kpicore kpis`.

The reference below is written from the catalog's descriptions and formulas and the conventions of
SPEC.md only; it imports nothing from `kpicore`, so a shared mistake cannot hide in shared code.
"""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CATALOG = yaml.safe_load((ROOT / "kpicore" / "catalog.yaml").read_text(encoding="utf-8"))
DEFINITIONS = {entry["id"]: entry for entry in CATALOG["measures"] + CATALOG["kpis"]}
KPIS = {entry["id"]: entry for entry in CATALOG["kpis"]}

CLI = "import sys; from kpicore.cli import main; sys.exit(main(sys.argv[1:]))"
RUNS = [
    ("month", "2025-06", "previous"),
    ("month", "2026-03", "previous"),
    ("month", "2026-10", "previous"),
    ("quarter", "2026-Q2", "year_ago"),
    ("week", "2026-W20", "previous"),
]

DATE_COLUMNS = {
    "leads": ["created_at", "qualified_at"],
    "opportunities": ["created_at", "closed_at"],
    "customers": ["acquired_at", "churned_at"],
    "revenue": ["month"],
    "tickets": ["created_at", "first_response_at", "resolved_at"],
    "surveys": ["responded_at"],
    "touches": ["occurred_at"],
    "spend": ["month"],
    "team_metrics": ["date"],
}
MONTH_TYPED = {("revenue", "month"), ("spend", "month")}
WEEK_SHARE_OF_MONTH = 7 / 30.4375

Data = dict[str, pd.DataFrame]
Value = float | None


# ---- periods ----

@dataclass(frozen=True)
class Period:
    grain: str
    label: str
    start: date
    end: date  # exclusive


def first_of_month(year: int, month: int) -> date:
    """The first day of a month, with months past December rolling into the next year."""
    return date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def period_from_start(grain: str, start: date) -> Period:
    """The period of `grain` that begins on `start`."""
    if grain == "month":
        return Period(grain, f"{start:%Y-%m}", start, first_of_month(start.year, start.month + 1))
    if grain == "quarter":
        label = f"{start.year}-Q{(start.month - 1) // 3 + 1}"
        return Period(grain, label, start, first_of_month(start.year, start.month + 3))
    iso_year, week, _ = start.isocalendar()
    return Period(grain, f"{iso_year}-W{week:02d}", start, start + timedelta(days=7))


def parse_period(grain: str, label: str) -> Period:
    """'2026-07', '2026-Q3' or '2026-W40' as a period."""
    if grain == "month":
        year, month = label.split("-")
        return period_from_start(grain, date(int(year), int(month), 1))
    if grain == "quarter":
        year, quarter = label.split("-Q")
        return period_from_start(grain, date(int(year), 3 * int(quarter) - 2, 1))
    year, week = label.split("-W")
    return period_from_start(grain, date.fromisocalendar(int(year), int(week), 1))


def previous(period: Period) -> Period:
    """The period right before `period`."""
    day = period.start - timedelta(days=1)
    if period.grain == "month":
        return period_from_start("month", date(day.year, day.month, 1))
    if period.grain == "quarter":
        return period_from_start("quarter", date(day.year, 3 * ((day.month - 1) // 3) + 1, 1))
    return period_from_start("week", period.start - timedelta(days=7))


def year_ago(period: Period) -> Period:
    """The same period one year before (for weeks: the same ISO week of the previous ISO year)."""
    year, rest = period.label.split("-", 1)
    return parse_period(period.grain, f"{int(year) - 1}-{rest}")


def compared_with(period: Period, comparison: str) -> Period:
    return previous(period) if comparison == "previous" else year_ago(period)


def in_period(column: pd.Series, period: Period) -> pd.Series:
    """Rows whose time falls in [start, end); missing times never do."""
    return (column >= pd.Timestamp(period.start)) & (column < pd.Timestamp(period.end))


# ---- small arithmetic helpers ----

def ratio(numerator: Value, denominator: Value) -> Value:
    """numerator / denominator, null when either is null or the denominator is zero."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def number(value: float) -> Value:
    """A pandas aggregate as a float, NaN (no rows) as null."""
    return None if pd.isna(value) else float(value)


def hours(start: pd.Series, end: pd.Series) -> pd.Series:
    return (end - start).dt.total_seconds() / 3600


def days(start: pd.Series, end: pd.Series) -> pd.Series:
    return (end - start).dt.total_seconds() / 86400


def active_on(frame: pd.DataFrame, start: str, end: str, day: date) -> float:
    """Rows begun before `day` and not ended before it."""
    moment = pd.Timestamp(day)
    return float(((frame[start] < moment) & (frame[end].isna() | (frame[end] >= moment))).sum())


def conversion_pairs(cohort: pd.DataFrame, later: pd.DataFrame, key: str, since: str, at: str,
                     window_days: int) -> pd.DataFrame:
    """(cohort row, later row) pairs with the same key where `at` lies in [since, since + window)."""
    pairs = cohort.dropna(subset=[key]).merge(later.dropna(subset=[key]), on=key, suffixes=("", "_to"))
    in_window = (pairs[at] >= pairs[since]) & (pairs[at] < pairs[since] + pd.Timedelta(days=window_days))
    return pairs[in_window]


# ---- one plain function per catalog entry ----

REFERENCE: dict[str, Callable[[Data, Period], Value]] = {}


def reference(kpi_id: str) -> Callable[[Callable[[Data, Period], Value]], Callable[[Data, Period], Value]]:
    def register(function: Callable[[Data, Period], Value]) -> Callable[[Data, Period], Value]:
        REFERENCE[kpi_id] = function
        return function
    return register


def leads_created(d: Data, p: Period) -> pd.DataFrame:
    return d["leads"][in_period(d["leads"].created_at, p)]


def deals_closed_in(d: Data, p: Period, stages: list[str]) -> pd.DataFrame:
    deals = d["opportunities"]
    return deals[in_period(deals.closed_at, p) & deals.stage.isin(stages)]


def tickets_resolved_in(d: Data, p: Period) -> pd.DataFrame:
    return d["tickets"][in_period(d["tickets"].resolved_at, p)]


def answers_in(d: Data, p: Period) -> pd.DataFrame:
    return d["surveys"][in_period(d["surveys"].responded_at, p)]


def spend_of(d: Data, p: Period, teams: list[str]) -> float:
    spend = d["spend"]
    return float(spend[in_period(spend.month, p) & spend.team.isin(teams)].amount.sum())


def revenue_rows(d: Data, p: Period) -> pd.DataFrame:
    return d["revenue"][in_period(d["revenue"].month, p)]


@reference("customers_at_start")
def customers_at_start(d: Data, p: Period) -> Value:
    return active_on(d["customers"], "acquired_at", "churned_at", p.start)


@reference("customers_at_end")
def customers_at_end(d: Data, p: Period) -> Value:
    return active_on(d["customers"], "acquired_at", "churned_at", p.end)


@reference("customers_lost")
def customers_lost(d: Data, p: Period) -> Value:
    """Logo churn: customers there on the period's first day who left during it (won and lost inside it: not)."""
    customers = d["customers"]
    there = customers.acquired_at < pd.Timestamp(p.start)
    return float((there & in_period(customers.churned_at, p)).sum())


@reference("new_customers")
def new_customers(d: Data, p: Period) -> Value:
    return float(in_period(d["customers"].acquired_at, p).sum())


@reference("qualified_leads")
def qualified_leads(d: Data, p: Period) -> Value:
    return float(leads_created(d, p).qualified_at.notna().sum())


@reference("leads")
def leads(d: Data, p: Period) -> Value:
    return float(len(leads_created(d, p)))


@reference("marketing_spend")
def marketing_spend(d: Data, p: Period) -> Value:
    return spend_of(d, p, ["marketing"])


@reference("acquisition_spend")
def acquisition_spend(d: Data, p: Period) -> Value:
    return spend_of(d, p, ["marketing", "sales"])


@reference("deals_won")
def deals_won(d: Data, p: Period) -> Value:
    return float(len(deals_closed_in(d, p, ["won"])))


@reference("deals_closed")
def deals_closed(d: Data, p: Period) -> Value:
    return float(len(deals_closed_in(d, p, ["won", "lost"])))


@reference("tickets_resolved")
def tickets_resolved(d: Data, p: Period) -> Value:
    return float(len(tickets_resolved_in(d, p)))


@reference("tickets_reopened")
def tickets_reopened(d: Data, p: Period) -> Value:
    return float(tickets_resolved_in(d, p).reopened.eq(True).sum())


@reference("satisfied_ratings")
def satisfied_ratings(d: Data, p: Period) -> Value:
    return float((tickets_resolved_in(d, p).csat >= 4).sum())


@reference("ratings")
def ratings(d: Data, p: Period) -> Value:
    return float(tickets_resolved_in(d, p).csat.notna().sum())


@reference("promoters")
def promoters(d: Data, p: Period) -> Value:
    return float((answers_in(d, p).score >= 9).sum())


@reference("detractors")
def detractors(d: Data, p: Period) -> Value:
    return float((answers_in(d, p).score <= 6).sum())


@reference("nps_answers")
def nps_answers(d: Data, p: Period) -> Value:
    return float(len(answers_in(d, p)))


@reference("customers_reached_by_marketing")
def customers_reached_by_marketing(d: Data, p: Period) -> Value:
    touches = d["touches"]
    reached = touches[in_period(touches.occurred_at, p) & (touches.team == "marketing")]
    return float(reached.customer_id.nunique())


@reference("revenue")
def revenue(d: Data, p: Period) -> Value:
    return float(revenue_rows(d, p).amount.sum())


def trailing_year(p: Period) -> Period:
    """The twelve months up to the end of `p`."""
    start = p.end - pd.DateOffset(months=12)
    return Period(p.grain, f"12 months to {p.label}", start.date(), p.end)


@reference("revenue_ttm")
def revenue_ttm(d: Data, p: Period) -> Value:
    return revenue(d, trailing_year(p))


@reference("customer_months_ttm")
def customer_months_ttm(d: Data, p: Period) -> Value:
    return float(len(revenue_rows(d, trailing_year(p))))  # a revenue row is a customer paying in a month


@reference("customers_lost_ttm")
def customers_lost_ttm(d: Data, p: Period) -> Value:
    return float(in_period(d["customers"].churned_at, trailing_year(p)).sum())


@reference("new_customers_ttm")
def new_customers_ttm(d: Data, p: Period) -> Value:
    return new_customers(d, trailing_year(p))


@reference("acquisition_spend_ttm")
def acquisition_spend_ttm(d: Data, p: Period) -> Value:
    return spend_of(d, trailing_year(p), ["marketing", "sales"])


@reference("revenue_per_customer_month")
def revenue_per_customer_month(d: Data, p: Period) -> Value:
    return ratio(revenue_ttm(d, p), customer_months_ttm(d, p))


@reference("monthly_churn")
def monthly_churn(d: Data, p: Period) -> Value:
    return ratio(customers_lost_ttm(d, p), customer_months_ttm(d, p))


@reference("cac")
def cac(d: Data, p: Period) -> Value:
    return ratio(acquisition_spend_ttm(d, p), new_customers_ttm(d, p))


@reference("clv")
def clv(d: Data, p: Period) -> Value:
    per_month = revenue_per_customer_month(d, p)
    if per_month is None:
        return None
    return ratio(per_month * CATALOG["parameters"]["gross_margin"], monthly_churn(d, p))


@reference("retention_rate")
def retention_rate(d: Data, p: Period) -> Value:
    return ratio(customers_at_end(d, p) - new_customers(d, p), customers_at_start(d, p))


@reference("churn_rate")
def churn_rate(d: Data, p: Period) -> Value:
    return ratio(customers_lost(d, p), customers_at_start(d, p))


def retained_revenue(d: Data, last_month: date, base_month: date) -> Value:
    """Revenue in `last_month` from the customers who paid in `base_month`, over what they paid then."""
    revenue = d["revenue"]
    base = revenue[revenue.month == pd.Timestamp(base_month)].groupby("customer_id").amount.sum()
    current = revenue[revenue.month == pd.Timestamp(last_month)].groupby("customer_id").amount.sum()
    return ratio(float(current.reindex(base.index, fill_value=0).sum()), float(base.sum()))


def last_month_of(p: Period) -> date:
    day = p.end - timedelta(days=1)
    return date(day.year, day.month, 1)


@reference("net_revenue_retention")
def net_revenue_retention(d: Data, p: Period) -> Value:
    """The period's last month against the month before the period began (June for a third quarter)."""
    before = p.start - timedelta(days=1)
    return retained_revenue(d, last_month_of(p), date(before.year, before.month, 1))


@reference("net_revenue_retention_12m")
def net_revenue_retention_12m(d: Data, p: Period) -> Value:
    last = last_month_of(p)
    return retained_revenue(d, last, date(last.year - 1, last.month, 1))


@reference("lead_to_customer_rate")
def lead_to_customer_rate(d: Data, p: Period) -> Value:
    cohort = leads_created(d, p)[["lead_id", "created_at"]]
    customers = d["customers"][["lead_id", "acquired_at"]]
    converted = conversion_pairs(cohort, customers, "lead_id", "created_at", "acquired_at", 90)
    return ratio(float(converted.lead_id.nunique()), float(cohort.lead_id.nunique()))


@reference("lead_to_revenue")
def lead_to_revenue(d: Data, p: Period) -> Value:
    cohort = leads_created(d, p)[["lead_id", "created_at"]]
    won = d["opportunities"][d["opportunities"].stage == "won"][["lead_id", "closed_at", "amount"]]
    pairs = conversion_pairs(cohort, won, "lead_id", "created_at", "closed_at", 120)
    return ratio(float(pairs.amount.sum()), float(cohort.lead_id.nunique()))


@reference("nps")
def nps(d: Data, p: Period) -> Value:
    return ratio(100 * (promoters(d, p) - detractors(d, p)), nps_answers(d, p))


@reference("csat")
def csat(d: Data, p: Period) -> Value:
    return ratio(satisfied_ratings(d, p), ratings(d, p))


@reference("clv_cac")
def clv_cac(d: Data, p: Period) -> Value:
    return ratio(clv(d, p), cac(d, p))


@reference("mql_rate")
def mql_rate(d: Data, p: Period) -> Value:
    return ratio(qualified_leads(d, p), leads(d, p))


@reference("cost_per_lead")
def cost_per_lead(d: Data, p: Period) -> Value:
    return ratio(marketing_spend(d, p), leads(d, p))


@reference("nurture_reach")
def nurture_reach(d: Data, p: Period) -> Value:
    return ratio(customers_reached_by_marketing(d, p), customers_at_end(d, p))


@reference("website_visits")
def website_visits(d: Data, p: Period) -> Value:
    metrics = d["team_metrics"]
    rows = in_period(metrics.date, p) & (metrics.metric == "website_visits") & (metrics.team == "marketing")
    return float(metrics[rows].value.sum())


@reference("opportunities")
def opportunities(d: Data, p: Period) -> Value:
    return float(in_period(d["opportunities"].created_at, p).sum())


@reference("win_rate")
def win_rate(d: Data, p: Period) -> Value:
    return ratio(deals_won(d, p), deals_closed(d, p))


@reference("avg_deal_size")
def avg_deal_size(d: Data, p: Period) -> Value:
    return number(deals_closed_in(d, p, ["won"]).amount.mean())


@reference("sales_cycle")
def sales_cycle(d: Data, p: Period) -> Value:
    won = deals_closed_in(d, p, ["won"])
    return number(days(won.created_at, won.closed_at).median())


@reference("onboarding_handoff")
def onboarding_handoff(d: Data, p: Period) -> Value:
    customers = d["customers"]
    cohort = customers[in_period(customers.acquired_at, p)][["customer_id", "acquired_at"]]
    touches = d["touches"]
    onboarding = touches[(touches.team == "service") & (touches.kind == "onboarding")][["customer_id", "occurred_at"]]
    reached = conversion_pairs(cohort, onboarding, "customer_id", "acquired_at", "occurred_at", 14)
    return ratio(float(reached.customer_id.nunique()), float(cohort.customer_id.nunique()))


@reference("early_churn_rate")
def early_churn_rate(d: Data, p: Period) -> Value:
    customers = d["customers"]
    cohort = customers[in_period(customers.acquired_at, p)]
    window_end = cohort.acquired_at + pd.Timedelta(days=90)
    left_early = (cohort.churned_at >= cohort.acquired_at) & (cohort.churned_at < window_end)
    return ratio(float(left_early.sum()), float(len(cohort)))


@reference("early_ticket_share")
def early_ticket_share(d: Data, p: Period) -> Value:
    tickets = d["tickets"][in_period(d["tickets"].created_at, p)]
    acquired = tickets.merge(d["customers"][["customer_id", "acquired_at"]], on="customer_id", how="left")
    window_start = acquired.created_at - pd.Timedelta(days=90)
    new = (acquired.acquired_at <= acquired.created_at) & (acquired.acquired_at > window_start)
    return ratio(float(acquired.loc[new, "ticket_id"].nunique()), float(tickets.ticket_id.nunique()))


@reference("first_response_time")
def first_response_time(d: Data, p: Period) -> Value:
    tickets = d["tickets"][in_period(d["tickets"].created_at, p)]
    return number(hours(tickets.created_at, tickets.first_response_at).median())


@reference("resolution_time")
def resolution_time(d: Data, p: Period) -> Value:
    tickets = tickets_resolved_in(d, p)
    return number(hours(tickets.created_at, tickets.resolved_at).median())


@reference("reopen_rate")
def reopen_rate(d: Data, p: Period) -> Value:
    return ratio(tickets_reopened(d, p), tickets_resolved(d, p))


@reference("open_backlog")
def open_backlog(d: Data, p: Period) -> Value:
    return active_on(d["tickets"], "created_at", "resolved_at", p.end)


# ---- scorecard conventions: data age, cohorts, targets, status ----

def time_columns_used(kpi_id: str) -> set[tuple[str, str]]:
    """(table, column) of every time column a catalog entry reads, directly or through its inputs."""
    entry = DEFINITIONS[kpi_id]
    if "simple" in entry:
        simple = entry["simple"]
        return {(simple["table"], column) for column in [simple["time"], *simple.get("duration", {}).values()]}
    if "stock" in entry:
        stock = entry["stock"]
        return {(stock["table"], stock["start"]), (stock["table"], stock["end"])}
    if "conversion" in entry:
        sides = entry["conversion"]["from"], entry["conversion"]["to"]
        return {(side["table"], side["time"]) for side in sides}
    if "net_retention" in entry:
        return {(entry["net_retention"]["table"], entry["net_retention"]["time"])}
    if "ratio" in entry:
        inputs = [entry["ratio"]["numerator"], entry["ratio"]["denominator"]]
    else:
        inputs = [name for name in re.findall(r"[a-z_]+", entry["derived"]["expr"]) if name in DEFINITIONS]
    return set().union(*(time_columns_used(name) for name in inputs))


def is_monthly(data: Data, table: str, column: str) -> bool:
    """Whether a time column holds months: month-typed, or nothing but first days of months (team_metrics'
    monthly numbers are dated on the 1st)."""
    values = data[table][column].dropna()
    starts = bool((values == values.dt.to_period("M").dt.to_timestamp()).all()) and values.nunique() > 1
    return (table, column) in MONTH_TYPED or starts


def last_day(data: Data, table: str, column: str) -> date:
    """The last day a column has data for: the month's last day for month-typed columns, and for timestamp
    columns that hold nothing but first days of months (a monthly number dated on the 1st)."""
    latest = data[table][column].dropna().max().date()
    if is_monthly(data, table, column):
        return first_of_month(latest.year, latest.month + 1) - timedelta(days=1)
    return latest


def table_last_day(data: Data, table: str) -> date:
    """How fresh a table is: the latest date in any of its time columns the catalog reads."""
    columns = {column for name in DEFINITIONS for t, column in time_columns_used(name) if t == table}
    return max(last_day(data, table, column) for column in columns)


def as_of(data: Data, kpi_id: str) -> date:
    """The freshness of the stalest table a KPI reads."""
    return min(table_last_day(data, table) for table, _ in time_columns_used(kpi_id))


def kpi_value(data: Data, kpi_id: str, period: Period) -> Value:
    """The reference value, null where the data cannot tell (monthly data at week grain, after as_of)."""
    if period.grain == "week" and any(is_monthly(data, *used) for used in time_columns_used(kpi_id)):
        return None
    if period.start > as_of(data, kpi_id):
        return None
    return REFERENCE[kpi_id](data, period)


def is_mature(data: Data, conversion: dict, period: Period) -> bool:
    """A cohort is mature once its whole window lies within the target table's data."""
    if conversion.get("lookback"):  # looks back in time: nothing to wait for
        return True
    target = conversion["to"]
    window_end = period.end + timedelta(days=conversion["window_days"])
    return window_end <= last_day(data, target["table"], target["time"]) + timedelta(days=1)


def settled(data: Data, kpi_id: str, period: Period) -> bool:
    """Whether a period is no longer maturing: a cohort's whole window, or the KPI's `mature_days` after the
    period's end, lie within its data."""
    entry = KPIS[kpi_id]
    if "conversion" in entry:
        return is_mature(data, entry["conversion"], period)
    if "mature_days" in entry:
        return period.end + timedelta(days=entry["mature_days"]) <= as_of(data, kpi_id) + timedelta(days=1)
    return True


def reported_period(data: Data, kpi_id: str, requested: Period) -> Period:
    """The requested period, or for KPIs still maturing the latest settled period up to it."""
    period = requested
    while not settled(data, kpi_id, period):
        period = previous(period)
    return period


def target_for(kpi_id: str, grain: str) -> float:
    """The catalog's monthly target, scaled for counts and sums (compounded for a net retention over the period)
    unless the grain has its own."""
    entry = KPIS[kpi_id]
    target = entry["target"]
    months = {"month": 1, "quarter": 3, "year": 12, "week": WEEK_SHARE_OF_MONTH}[grain]
    if grain in target:
        return target[grain]
    if "net_retention" in entry and "months" not in entry["net_retention"]:
        return target["value"] ** months
    if entry.get("simple", {}).get("agg") not in ("count", "sum"):
        return target["value"]
    return target["value"] * months


def attainment_of(value: Value, target: float, direction: str) -> Value:
    return ratio(value, target) if direction == "up" else ratio(target, value)


def status_of(attainment: Value, at_risk: float) -> str:
    if attainment is None:
        return "no data"
    if attainment >= 1:
        return "on track"
    return "at risk" if attainment >= at_risk else "off track"


def expected_row(data: Data, kpi_id: str, grain: str, label: str, comparison: str) -> dict[str, object]:
    """What `kpicore kpis --format json` should say about one KPI, worked out independently."""
    entry = KPIS[kpi_id]
    period = reported_period(data, kpi_id, parse_period(grain, label))
    other = compared_with(period, comparison)
    value, compared = kpi_value(data, kpi_id, period), kpi_value(data, kpi_id, other)
    target = target_for(kpi_id, grain)
    attainment = attainment_of(value, target, entry["direction"])
    maturing = not settled(data, kpi_id, period)
    return {
        "id": kpi_id,
        "label": entry["label"],
        "team": entry["team"],
        "unit": entry["unit"],
        "direction": entry["direction"],
        "period": period.label,
        "value": value,
        "comparison_period": other.label,
        "comparison": compared,
        "change": None if value is None or compared is None else value - compared,
        "target": target,
        "attainment": attainment,
        "status": "maturing" if maturing else status_of(attainment, entry["target"]["at_risk"]),
        "as_of": as_of(data, kpi_id).isoformat(),
    }


def same(expected: object, got: object) -> bool:
    if isinstance(expected, float) and isinstance(got, int | float) and not isinstance(got, bool):
        return math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-9)
    return expected == got


# ---- fixtures and tests ----

# The bundled sample, and the same seeded generator at about a million leads (`kpicore sample --scale 26`, run as
# a program like everything else here), loaded into an empty database through `kpicore load`.
DATASETS = [pytest.param("sample", id="sample"), pytest.param("1m", id="1m-leads", marks=pytest.mark.scale)]
SCALES = {"1m": 26.0}


def run_cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in os.environ.items() if name not in ("KPI_DB", "KPI_CATALOG")}
    environment["KPI_MAX_UPLOAD_MB"] = "100000"
    result = subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True, cwd=ROOT,
                            env=environment, timeout=timeout, check=False)
    assert result.returncode == 0, result.stderr or result.stdout
    return result


@pytest.fixture(scope="module", params=DATASETS)
def dataset(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(folder of the CSVs, database holding exactly them)."""
    folder = tmp_path_factory.mktemp(f"reference-{request.param}")
    database = folder / "kpi.duckdb"
    if request.param == "sample":
        return ROOT / "sample_data", database  # a fresh database starts with the bundled sample
    csvs = folder / "csv"
    run_cli("sample", "--scale", str(SCALES[request.param]), "--out", str(csvs))
    run_cli("--db", str(database), "init", "--empty")
    run_cli("--db", str(database), "load", *sorted(str(p) for p in csvs.glob("*.csv")), timeout=1200)
    return csvs, database


@pytest.fixture(scope="module")
def data(dataset: tuple[Path, Path]) -> Data:
    """The dataset's CSVs, read once with their date columns parsed."""
    return {
        table: pd.read_csv(dataset[0] / f"{table}.csv", parse_dates=columns)
        for table, columns in DATE_COLUMNS.items()
    }


@pytest.fixture(scope="module")
def program(dataset: tuple[Path, Path]) -> Callable[[str, str, str], dict[str, dict]]:
    """`kpicore kpis` as JSON rows by KPI id, run once per grain/period/comparison on the dataset's database."""
    database = dataset[1]
    runs: dict[tuple[str, str, str], dict[str, dict]] = {}

    def rows(grain: str, label: str, comparison: str) -> dict[str, dict]:
        if (grain, label, comparison) not in runs:
            result = run_cli("--db", str(database), "kpis", "--grain", grain, "--period", label, "--comparison",
                             comparison, "--format", "json")
            runs[grain, label, comparison] = {row["id"]: row for row in json.loads(result.stdout)}
        return runs[grain, label, comparison]

    return rows


def test_every_catalog_entry_has_a_reference() -> None:
    assert sorted(REFERENCE) == sorted(DEFINITIONS)


@pytest.mark.parametrize(("grain", "label", "comparison"), RUNS, ids=[f"{g}-{p}" for g, p, _ in RUNS])
def test_program_reports_every_catalog_kpi(program, grain: str, label: str, comparison: str) -> None:
    assert sorted(program(grain, label, comparison)) == sorted(KPIS)


@pytest.mark.parametrize(
    ("grain", "label", "comparison", "kpi_id"),
    [(*run, kpi_id) for run in RUNS for kpi_id in KPIS],
    ids=[f"{grain}-{label}-{kpi_id}" for grain, label, _ in RUNS for kpi_id in KPIS],
)
def test_kpi_matches_reference(program, data: Data, grain: str, label: str, comparison: str, kpi_id: str) -> None:
    got = program(grain, label, comparison)[kpi_id]
    expected = expected_row(data, kpi_id, grain, label, comparison)
    mismatches = [
        f"{field}: expected {want!r}, got {got.get(field)!r}"
        for field, want in expected.items()
        if not same(want, got.get(field))
    ]
    assert not mismatches, f"{kpi_id} at {grain} {label}: " + "; ".join(mismatches)
