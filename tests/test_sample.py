"""The sample data: deterministic, consistent, and telling the story the dashboard is shown with."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kpicore.sample import generate, write_csvs

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"
WINDOW_START = pd.Timestamp("2023-11-01")
WINDOW_STOP = pd.Timestamp("2026-11-01")

COLUMNS = {
    "leads": ["lead_id", "created_at", "channel", "campaign", "qualified_at", "customer_id"],
    "opportunities": ["opportunity_id", "created_at", "lead_id", "customer_id", "stage", "closed_at",
                      "amount", "owner"],
    "customers": ["customer_id", "acquired_at", "churned_at", "segment", "region", "lead_id"],
    "revenue": ["customer_id", "month", "amount"],
    "tickets": ["ticket_id", "created_at", "customer_id", "first_response_at", "resolved_at", "csat",
                "reopened", "channel", "priority"],
    "surveys": ["customer_id", "responded_at", "score"],
    "touches": ["customer_id", "occurred_at", "team", "kind"],
    "spend": ["month", "amount", "team", "channel"],
    "team_metrics": ["date", "team", "metric", "value"],
}


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return generate()


def _month(moments: pd.Series) -> pd.Series:
    return moments.dt.to_period("M")


def _between(moments: pd.Series, first: str, last: str) -> pd.Series:
    month = _month(moments)
    return (month >= pd.Period(first, "M")) & (month <= pd.Period(last, "M"))


def _active_span(tables: dict[str, pd.DataFrame], events: pd.DataFrame) -> pd.DataFrame:
    customers = tables["customers"].set_index("customer_id")
    return events.join(customers[["acquired_at", "churned_at"]], on="customer_id")


def _conversion_90d(tables: dict[str, pd.DataFrame], leads: pd.DataFrame) -> float:
    acquired = leads["customer_id"].map(tables["customers"].set_index("customer_id")["acquired_at"])
    return (acquired <= leads["created_at"] + pd.Timedelta(days=90)).mean()


def _tickets_of_quarter(tables: dict[str, pd.DataFrame], quarter: str) -> pd.DataFrame:
    tickets = tables["tickets"]
    return tickets[tickets["created_at"].dt.to_period("Q") == pd.Period(quarter, "Q")]


def _csat_share(tickets: pd.DataFrame) -> float:
    rated = tickets["csat"].dropna()
    return (rated >= 4).mean()


def _nps(surveys: pd.DataFrame) -> float:
    return 100 * ((surveys["score"] >= 9).mean() - (surveys["score"] <= 6).mean())


def test_same_seed_gives_identical_tables(tables: dict[str, pd.DataFrame]) -> None:
    again = generate(seed=7)
    for name, table in tables.items():
        pd.testing.assert_frame_equal(again[name], table, obj=name)


def test_other_seed_gives_other_data(tables: dict[str, pd.DataFrame]) -> None:
    other = generate(seed=8)
    assert not other["leads"].equals(tables["leads"])
    assert not other["tickets"].equals(tables["tickets"])


@pytest.mark.parametrize("name", COLUMNS)
def test_columns(tables: dict[str, pd.DataFrame], name: str) -> None:
    assert list(tables[name].columns) == COLUMNS[name]


def test_ids_are_unique(tables: dict[str, pd.DataFrame]) -> None:
    for name, key in [("leads", "lead_id"), ("opportunities", "opportunity_id"), ("customers", "customer_id"),
                      ("tickets", "ticket_id")]:
        assert tables[name][key].is_unique, name
    assert not tables["revenue"].duplicated(["customer_id", "month"]).any()


def test_references_exist(tables: dict[str, pd.DataFrame]) -> None:
    leads, opportunities, customers = tables["leads"], tables["opportunities"], tables["customers"]
    assert opportunities["lead_id"].dropna().isin(leads["lead_id"]).all()
    for name in ["leads", "opportunities", "revenue", "tickets", "surveys", "touches"]:
        assert tables[name]["customer_id"].dropna().isin(customers["customer_id"]).all(), name
    assert customers["lead_id"].dropna().isin(leads["lead_id"]).all()


def test_customers_come_from_won_deals_of_their_leads(tables: dict[str, pd.DataFrame]) -> None:
    leads, opportunities, customers = tables["leads"], tables["opportunities"], tables["customers"]
    won = opportunities[opportunities["stage"] == "won"]
    assert won["customer_id"].notna().all()
    assert opportunities.loc[opportunities["stage"] != "won", "customer_id"].isna().all()
    acquired = won["customer_id"].map(customers.set_index("customer_id")["acquired_at"])
    assert (acquired == won["closed_at"]).all()
    lead_of_customer = customers.dropna(subset=["lead_id"]).set_index("customer_id")["lead_id"]
    converted = leads.dropna(subset=["customer_id"])
    assert (converted["customer_id"].map(lead_of_customer) == converted["lead_id"]).all()
    assert len(converted) == len(lead_of_customer)
    sourced = won.dropna(subset=["lead_id"])
    assert (sourced["customer_id"].map(lead_of_customer) == sourced["lead_id"]).all()


def test_dates_are_in_order(tables: dict[str, pd.DataFrame]) -> None:
    leads, opportunities, customers, tickets = (tables[n] for n in ["leads", "opportunities", "customers", "tickets"])
    qualified = leads.dropna(subset=["qualified_at"])
    assert (qualified["created_at"] <= qualified["qualified_at"]).all()
    sourced = opportunities.dropna(subset=["lead_id"])
    lead_qualified = sourced["lead_id"].map(leads.set_index("lead_id")["qualified_at"])
    assert (lead_qualified <= sourced["created_at"]).all()
    closed = opportunities.dropna(subset=["closed_at"])
    assert (closed["created_at"] <= closed["closed_at"]).all()
    assert (opportunities["stage"] == "open").eq(opportunities["closed_at"].isna()).all()
    churned = customers.dropna(subset=["churned_at"])
    assert (churned["acquired_at"] < churned["churned_at"]).all()
    answered = tickets.dropna(subset=["first_response_at"])
    assert (answered["created_at"] <= answered["first_response_at"]).all()
    resolved = tickets.dropna(subset=["resolved_at"])
    assert (resolved["first_response_at"] <= resolved["resolved_at"]).all()


def test_events_happen_while_the_customer_is_active(tables: dict[str, pd.DataFrame]) -> None:
    for name, column in [("tickets", "created_at"), ("surveys", "responded_at"), ("touches", "occurred_at")]:
        events = _active_span(tables, tables[name])
        stop = events["churned_at"].fillna(WINDOW_STOP)
        assert ((events["acquired_at"] <= events[column]) & (events[column] < stop)).all(), name
    revenue = _active_span(tables, tables["revenue"])
    last_month = _month(revenue["churned_at"].fillna(WINDOW_STOP - pd.Timedelta(seconds=1)))
    assert (_month(revenue["acquired_at"]) <= _month(revenue["month"])).all()
    assert (_month(revenue["month"]) <= last_month).all()


def test_revenue_covers_every_active_month(tables: dict[str, pd.DataFrame]) -> None:
    customers = tables["customers"]
    first = _month(customers["acquired_at"]).clip(lower=pd.Period("2023-11", "M"))
    last = _month(customers["churned_at"].fillna(WINDOW_STOP - pd.Timedelta(seconds=1)))
    expected = ((last - first).map(lambda offset: offset.n) + 1).clip(lower=0)
    rows = tables["revenue"]["customer_id"].value_counts()
    assert (customers["customer_id"].map(rows).fillna(0) == expected).all()


def test_history_spans_36_months_up_to_the_last_day(tables: dict[str, pd.DataFrame]) -> None:
    for name, column in [("leads", "created_at"), ("tickets", "created_at"), ("surveys", "responded_at"),
                         ("touches", "occurred_at")]:
        moments = tables[name][column]
        assert moments.min() >= WINDOW_START, name
        assert moments.max() < WINDOW_STOP, name
        assert _month(moments).nunique() == 36, name
    assert (tables["leads"]["created_at"].dt.date == pd.Timestamp("2026-10-31").date()).any()
    assert (tables["tickets"]["created_at"].dt.date == pd.Timestamp("2026-10-31").date()).any()
    for name, column in [("revenue", "month"), ("spend", "month"), ("team_metrics", "date")]:
        months = tables[name][column]
        assert (months.dt.day == 1).all(), name
        assert months.min() == WINDOW_START and months.max() == pd.Timestamp("2026-10-01"), name
        assert months.nunique() == 36, name
    assert tables["opportunities"]["closed_at"].max() < WINDOW_STOP


def test_initial_base_exists_before_the_window(tables: dict[str, pd.DataFrame]) -> None:
    customers = tables["customers"]
    initial = customers[customers["acquired_at"] < WINDOW_START]
    assert 500 <= len(initial) <= 1000
    assert initial["lead_id"].isna().all()
    assert initial["acquired_at"].min() >= pd.Timestamp("2021-01-01")
    assert initial["churned_at"].dropna().min() >= WINDOW_START


def test_value_vocabularies(tables: dict[str, pd.DataFrame]) -> None:
    assert set(tables["leads"]["channel"]) == {"paid_search", "paid_social", "organic", "referral", "events", "email"}
    assert set(tables["opportunities"]["stage"]) == {"open", "won", "lost"}
    assert set(tables["customers"]["segment"]) == {"SMB", "Mid-Market", "Enterprise"}
    assert set(tables["customers"]["region"]) == {"DACH", "Nordics", "UK", "US"}
    assert set(tables["tickets"]["csat"].dropna()) <= {1, 2, 3, 4, 5}
    assert set(tables["tickets"]["channel"]) == {"email", "chat", "phone"}
    assert set(tables["tickets"]["priority"]) == {"low", "normal", "high", "urgent"}
    assert tables["surveys"]["score"].between(0, 10).all()
    assert set(tables["touches"]["team"]) == {"marketing", "sales", "service"}
    assert set(tables["spend"]["team"]) == {"marketing", "sales"}
    assert set(tables["team_metrics"]["team"]) == {"marketing", "sales", "service"}
    assert (tables["opportunities"]["amount"] > 0).all() and (tables["revenue"]["amount"] > 0).all()


def test_only_recent_work_is_still_open(tables: dict[str, pd.DataFrame]) -> None:
    opportunities, tickets = tables["opportunities"], tables["tickets"]
    still_open = opportunities[opportunities["stage"] == "open"]
    assert len(still_open) > 0 and still_open["created_at"].min() >= pd.Timestamp("2026-01-01")
    unresolved = tickets[tickets["resolved_at"].isna()]
    assert 0 < len(unresolved) < 0.01 * len(tickets)
    assert unresolved["created_at"].min() >= pd.Timestamp("2026-10-01")
    assert unresolved["csat"].isna().all() and not unresolved["reopened"].any()
    rated_share = tickets["csat"].notna().mean()
    assert 0.35 <= rated_share <= 0.45


def test_campaign_lifts_lead_volume_by_half(tables: dict[str, pd.DataFrame]) -> None:
    leads = tables["leads"]
    per_month = leads.groupby(_month(leads["created_at"])).size()
    before = per_month[pd.Period("2025-04", "M"):pd.Period("2025-10", "M")].mean()
    during = per_month[pd.Period("2026-04", "M"):pd.Period("2026-10", "M")].mean()
    assert during >= 1.35 * before
    assert per_month[:pd.Period("2026-02", "M")].between(600, 1300).all()
    campaign = leads[leads["campaign"] == "Spring Boost 2026"]
    assert (campaign["channel"] == "paid_social").all()
    assert campaign["created_at"].min() >= pd.Timestamp("2026-03-01")


def test_campaign_lowers_qualification_and_conversion(tables: dict[str, pd.DataFrame]) -> None:
    leads = tables["leads"]
    before = leads[_between(leads["created_at"], "2025-04", "2025-07")]
    during = leads[_between(leads["created_at"], "2026-04", "2026-07")]
    assert _conversion_90d(tables, during) < 0.85 * _conversion_90d(tables, before)
    assert during["qualified_at"].notna().mean() < before["qualified_at"].notna().mean() - 0.04
    assert 0.045 <= _conversion_90d(tables, before) <= 0.08


def test_campaign_customers_churn_early(tables: dict[str, pd.DataFrame]) -> None:
    leads, customers = tables["leads"], tables["customers"]
    campaign_leads = leads.loc[leads["campaign"] == "Spring Boost 2026", "lead_id"]
    mature = customers[customers["acquired_at"].between(WINDOW_START, pd.Timestamp("2026-08-01"))]
    churned_early = mature["churned_at"] < mature["acquired_at"] + pd.Timedelta(days=90)
    from_campaign = mature["lead_id"].isin(campaign_leads)
    assert from_campaign.sum() >= 20
    assert churned_early[from_campaign].mean() >= 0.15
    assert churned_early[from_campaign].mean() > 2.5 * churned_early[~from_campaign].mean()


def test_paid_social_spend_rises_with_the_campaign(tables: dict[str, pd.DataFrame]) -> None:
    spend = tables["spend"]
    social = spend[spend["channel"] == "paid_social"].set_index("month")["amount"]
    assert social["2026-04-01":"2026-10-01"].mean() > 2 * social["2025-04-01":"2025-10-01"].mean()


def test_service_resolves_faster_but_worse(tables: dict[str, pd.DataFrame]) -> None:
    before, after = _tickets_of_quarter(tables, "2025Q3"), _tickets_of_quarter(tables, "2026Q3")

    def median_hours(tickets: pd.DataFrame, column: str) -> float:
        return ((tickets[column] - tickets["created_at"]).dt.total_seconds() / 3600).median()

    assert median_hours(after, "resolved_at") < 0.75 * median_hours(before, "resolved_at")
    assert median_hours(after, "first_response_at") < median_hours(before, "first_response_at")
    assert after["reopened"].mean() > before["reopened"].mean() + 0.04
    assert _csat_share(after) < _csat_share(before) - 0.05


def test_the_rest_is_stable(tables: dict[str, pd.DataFrame]) -> None:
    customers, opportunities = tables["customers"], tables["opportunities"]
    months = pd.period_range("2024-01", "2025-12", freq="M")
    starts = months.to_timestamp()
    at_start = [((customers["acquired_at"] < s) & ~(customers["churned_at"] < s)).sum() for s in starts]
    lost = [((customers["acquired_at"] < s) & _month(customers["churned_at"]).eq(m)).sum()
            for s, m in zip(starts, months, strict=True)]
    churn = pd.Series(lost) / pd.Series(at_start)
    assert 0.012 <= churn.mean() <= 0.018
    closed = opportunities[opportunities["stage"].isin(["won", "lost"])]
    win_rate = (closed["stage"] == "won").groupby(closed["closed_at"].dt.year).mean()
    assert win_rate.between(0.24, 0.33).all()
    won = opportunities[opportunities["stage"] == "won"]
    assert 30 <= (won["closed_at"] - won["created_at"]).dt.days.median() <= 60
    surveys = tables["surveys"]
    nps_2025 = _nps(surveys[surveys["responded_at"].dt.year == 2025])
    assert 30 <= nps_2025 <= 42
    assert _nps(surveys[_between(surveys["responded_at"], "2026-05", "2026-10")]) < nps_2025 - 4


def test_onboarding_is_late_for_campaign_customers(tables: dict[str, pd.DataFrame]) -> None:
    leads, customers, touches = tables["leads"], tables["customers"], tables["touches"]
    onboarding = touches[touches["kind"] == "onboarding"].groupby("customer_id")["occurred_at"].min()
    new = customers[customers["acquired_at"].between(WINDOW_START, pd.Timestamp("2026-10-15"))]
    on_time = new["customer_id"].map(onboarding) <= new["acquired_at"] + pd.Timedelta(days=14)
    from_campaign = new["lead_id"].isin(leads.loc[leads["campaign"] == "Spring Boost 2026", "lead_id"])
    assert on_time[~from_campaign].mean() >= 0.8
    assert on_time[from_campaign].mean() < on_time[~from_campaign].mean() - 0.2


def test_committed_csvs_match_the_generator(tables: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    written = write_csvs(tables, tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in SAMPLE_DIR.glob("*.csv"))
    for path in written:
        assert (SAMPLE_DIR / path.name).read_bytes() == path.read_bytes(), path.name
    assert sum(p.stat().st_size for p in written) < 15_000_000


def test_csv_cells_use_the_canonical_text_forms() -> None:
    leads = pd.read_csv(SAMPLE_DIR / "leads.csv", dtype=str, keep_default_na=False)
    assert leads["created_at"].str.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}").all()
    assert (leads.loc[leads["channel"] == "organic", "campaign"] == "").all()
    tickets = pd.read_csv(SAMPLE_DIR / "tickets.csv", dtype=str, keep_default_na=False)
    assert set(tickets["reopened"]) == {"true", "false"}
    assert set(tickets["csat"]) == {"", "1", "2", "3", "4", "5"}
    revenue = pd.read_csv(SAMPLE_DIR / "revenue.csv", dtype=str, keep_default_na=False)
    assert revenue["month"].str.fullmatch(r"\d{4}-\d{2}-01").all()
    assert revenue["amount"].str.fullmatch(r"\d+\.\d{2}").all()
