"""A straightforward pandas implementation of the shipped catalog's shared customer outcomes and of at least one
KPI of each formula type, for every period of a grain: what an analyst would write with groupby and merge.

Written from the catalog's definitions (README, Glossary), importing nothing from `kpicore`, so the benchmark's
agreement check compares two independent implementations. Input: the canonical tables as pandas frames
(timestamps as datetime64, as DuckDB hands them over); output: {kpi id: {period start (date): value}}.
"""
from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

FREQ = {"week": "W-SUN", "month": "M", "quarter": "Q", "year": "Y"}
MONTHS = {"week": 0, "month": 1, "quarter": 3, "year": 12}
GROSS_MARGIN = 0.75

# (kpi id, formula type) of what this reference computes
KPIS = {
    "leads": "simple count", "avg_deal_size": "simple avg", "resolution_time": "simple median",
    "sales_cycle": "simple median", "open_backlog": "stock", "win_rate": "ratio", "mql_rate": "ratio",
    "csat": "ratio", "churn_rate": "ratio", "retention_rate": "derived", "nps": "derived",
    "net_revenue_retention": "net retention", "net_revenue_retention_12m": "net retention",
    "lead_to_customer_rate": "conversion", "lead_to_revenue": "conversion (value)", "clv_cac": "derived, trailing",
}


def period_starts(column: pd.Series, grain: str) -> pd.Series:
    """The first day of each timestamp's period (Monday for weeks)."""
    return column.dt.to_period(FREQ[grain]).dt.start_time.dt.normalize()


def by_period(values: pd.Series, periods: list[pd.Timestamp]) -> dict[date, float | None]:
    out = {}
    for start in periods:
        value = values.get(start)
        out[start.date()] = None if value is None or pd.isna(value) else float(value)
    return out


def divide(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return numerator / denominator.where(denominator != 0)


def compute(tables: dict[str, pd.DataFrame], grain: str, periods: list[date]) -> dict[str, dict[date, float | None]]:
    """Every KPI in KPIS for every period (given by its first day)."""
    starts = [pd.Timestamp(p) for p in periods]
    ends = [s + (pd.DateOffset(weeks=1) if grain == "week" else pd.DateOffset(months=MONTHS[grain])) for s in starts]
    calendar = pd.Series(range(len(starts)), index=starts)
    leads, deals, customers = tables["leads"], tables["opportunities"], tables["customers"]
    tickets, surveys, revenue, spend = tables["tickets"], tables["surveys"], tables["revenue"], tables["spend"]
    found: dict[str, pd.Series] = {}

    def count(frame: pd.DataFrame, time: str) -> pd.Series:
        return frame.groupby(period_starts(frame[time], grain)).size().reindex(calendar.index, fill_value=0)

    # simple
    found["leads"] = count(leads, "created_at").astype(float)
    won = deals[deals["stage"] == "won"]
    closed = deals[deals["stage"].isin(["won", "lost"])]
    found["avg_deal_size"] = won.groupby(period_starts(won["closed_at"], grain))["amount"].mean()
    cycle = (won["closed_at"] - won["created_at"]).dt.total_seconds() / 86400
    found["sales_cycle"] = cycle.groupby(period_starts(won["closed_at"], grain)).median()
    resolved = tickets[tickets["resolved_at"].notna()]
    hours = (resolved["resolved_at"] - resolved["created_at"]).dt.total_seconds() / 3600
    found["resolution_time"] = hours.groupby(period_starts(resolved["resolved_at"], grain)).median()
    # ratios
    found["win_rate"] = divide(count(won, "closed_at"), count(closed, "closed_at"))
    found["mql_rate"] = divide(count(leads[leads["qualified_at"].notna()], "created_at"), count(leads, "created_at"))
    rated = resolved[resolved["csat"].notna()]
    found["csat"] = divide(count(rated[rated["csat"] >= 4], "resolved_at"), count(rated, "resolved_at"))
    # stocks: rows started before a moment and not ended before it, by sorted search
    found["open_backlog"] = pd.Series(stock_at(tickets, "created_at", "resolved_at", ends), index=starts)
    at_start = pd.Series(stock_at(customers, "acquired_at", "churned_at", starts), index=starts)
    at_end = pd.Series(stock_at(customers, "acquired_at", "churned_at", ends), index=starts)
    lost = []
    for start, end in zip(starts, ends, strict=True):
        there = customers["acquired_at"].isna() | (customers["acquired_at"] < start)
        lost.append(int((there & (customers["churned_at"] >= start) & (customers["churned_at"] < end)).sum()))
    found["churn_rate"] = divide(pd.Series(lost, index=starts, dtype=float), at_start)
    new = count(customers, "acquired_at")
    found["retention_rate"] = divide(at_end - new, at_start)
    # NPS
    answers = count(surveys, "responded_at")
    promoters = count(surveys[surveys["score"] >= 9], "responded_at")
    detractors = count(surveys[surveys["score"] <= 6], "responded_at")
    found["nps"] = divide(100 * (promoters - detractors), answers)
    # conversions: the period's leads reaching a customer within 90 days, or won contract value within 120
    cohort = period_starts(leads["created_at"], grain)
    became = leads[["lead_id", "created_at"]].merge(
        customers.loc[customers["lead_id"].notna(), ["lead_id", "acquired_at"]], on="lead_id")
    became = became[(became["acquired_at"] >= became["created_at"])
                    & (became["acquired_at"] < became["created_at"] + pd.Timedelta(days=90))]
    converted = became.groupby(period_starts(became["created_at"], grain))["lead_id"].nunique()
    found["lead_to_customer_rate"] = divide(converted.reindex(calendar.index, fill_value=0),
                                            leads.groupby(cohort)["lead_id"].nunique())
    paid = leads[["lead_id", "created_at"]].merge(won.loc[won["lead_id"].notna(), ["lead_id", "closed_at", "amount"]],
                                                  on="lead_id")
    paid = paid[(paid["closed_at"] >= paid["created_at"])
                & (paid["closed_at"] < paid["created_at"] + pd.Timedelta(days=120))]
    value = paid.groupby(period_starts(paid["created_at"], grain))["amount"].sum()
    found["lead_to_revenue"] = divide(value.reindex(calendar.index, fill_value=0.0),
                                      leads.groupby(cohort)["lead_id"].nunique())
    if grain != "week":  # revenue and spend are monthly: no weekly value
        found |= monthly_kpis(customers, revenue, spend, starts, ends)
    return {kpi: by_period(series, starts) for kpi, series in found.items()}


def stock_at(frame: pd.DataFrame, start: str, end: str, moments: list[pd.Timestamp]) -> list[int]:
    """Rows active at each moment: started before it (or no start) and not ended before it. Counted by sorted
    search, which needs every row to end no earlier than it starts (checked)."""
    both = frame[frame[start].notna() & frame[end].notna()]
    assert not (both[end] < both[start]).any(), f"rows of {start}..{end} that end before they start"
    starts = np.sort(frame[start].dropna().to_numpy())
    no_start = int(frame[start].isna().sum())
    ends = np.sort(frame[end].dropna().to_numpy())
    moments64 = np.array(moments, dtype="datetime64[ns]")
    began = np.searchsorted(starts, moments64, side="left") + no_start
    gone = np.searchsorted(ends, moments64, side="left")  # ended strictly before the moment
    return list((began - gone).astype(int))


def monthly_kpis(customers: pd.DataFrame, revenue: pd.DataFrame, spend: pd.DataFrame, starts: list[pd.Timestamp],
                 ends: list[pd.Timestamp]) -> dict[str, pd.Series]:
    """NRR (the period's last month against the month before it began, and against 12 months before) and
    CLV:CAC over the trailing twelve months."""
    per_month = revenue.groupby(["month", "customer_id"])["amount"].sum()
    months = {m: per_month.loc[m] for m in per_month.index.get_level_values(0).unique()}
    nrr, nrr12, clv_cac = [], [], []
    for start, end in zip(starts, ends, strict=True):
        last = (end - pd.DateOffset(months=1)).normalize()
        nrr.append(retained(months, last, start - pd.DateOffset(months=1)))
        nrr12.append(retained(months, last, last - pd.DateOffset(months=12)))
        since = end - pd.DateOffset(months=12)
        rows = revenue[(revenue["month"] >= since) & (revenue["month"] < end)]
        lost = ((customers["churned_at"] >= since) & (customers["churned_at"] < end)).sum()
        won = ((customers["acquired_at"] >= since) & (customers["acquired_at"] < end)).sum()
        cost = spend[spend["team"].isin(["marketing", "sales"]) & (spend["month"] >= since)
                     & (spend["month"] < end)]["amount"].sum()
        if len(rows) and lost and won and cost:
            clv = (rows["amount"].sum() / len(rows) * GROSS_MARGIN) / (lost / len(rows))
            clv_cac.append(clv / (cost / won))
        else:
            clv_cac.append(None)
    return {"net_revenue_retention": pd.Series(nrr, index=starts, dtype=float),
            "net_revenue_retention_12m": pd.Series(nrr12, index=starts, dtype=float),
            "clv_cac": pd.Series(clv_cac, index=starts, dtype=float)}


def retained(months: dict[pd.Timestamp, pd.Series], last: pd.Timestamp, base: pd.Timestamp) -> float | None:
    if base not in months or last not in months:
        return None
    was = months[base]
    now = months[last].reindex(was.index).sum()
    return float(now / was.sum()) if was.sum() else None
