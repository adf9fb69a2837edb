"""Seeded generator of the sample data: team KPIs look green while customer outcomes turn worse.

36 months of a B2B company. The story: from March 2026 the paid_social campaign "Spring Boost 2026"
lifts lead volume by half, but its leads rarely qualify, swamp sales (fewer opportunities per
qualified lead) and the few customers they bring churn early. From April 2026 service closes tickets much faster, and
more of them are reopened and rated badly. NPS slips through 2026.

Revenue has one row per customer and month in which the customer was active, from the
acquisition month through the churn month (the churn month is still billed). Opportunities
closed in the window whose lead came before it keep an empty lead_id, as do their customers
and the customers acquired before the window.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

# The customer base that already exists when the window opens, and the pipeline warm-up.
INITIAL_CUSTOMERS = 700
INITIAL_ACQUIRED_FROM = date(2021, 1, 1)
WARMUP_MONTHS = 4

# Lead flow.
BASE_LEADS_PER_MONTH = 950
LEAD_GROWTH_PER_YEAR = 0.03
SEASONALITY = (1.00, 1.02, 1.06, 1.00, 0.98, 0.94, 0.88, 0.84, 1.16, 1.08, 1.02, 0.78)  # Jan-Dec
MONTHLY_NOISE = 0.05
WEEKEND_WEIGHT = 0.35
CHANNEL_MIX = {"paid_search": 0.27, "paid_social": 0.14, "organic": 0.24, "referral": 0.10,
               "events": 0.08, "email": 0.17}
QUALIFY_RATE = {"paid_search": 0.32, "paid_social": 0.26, "organic": 0.36, "referral": 0.50,
                "events": 0.40, "email": 0.30}
CAMPAIGNS = {"paid_search": ("Always-on search", "Brand search"),
             "paid_social": ("Social always-on",),
             "organic": ("",),
             "referral": ("Customer referral program",),
             "events": ("Trade fair", "Partner roadshow"),
             "email": ("Newsletter", "Product update mailing")}

# Story 1: the campaign.
CAMPAIGN = "Spring Boost 2026"
CAMPAIGN_CHANNEL = "paid_social"
CAMPAIGN_START = date(2026, 3, 1)
CAMPAIGN_LIFT = 0.5
CAMPAIGN_QUALIFY_RATE = 0.25
CAMPAIGN_SEGMENT_MIX = {"SMB": 0.85, "Mid-Market": 0.14, "Enterprise": 0.01}
CAMPAIGN_EARLY_CHURN = 0.30
CAMPAIGN_CHURN_FACTOR = 2.0
CAMPAIGN_COST_PER_LEAD = 180.0
CAMPAIGN_ONBOARDING = (0.45, 0.30)

# Sales.
OPPORTUNITY_RATE = 0.62
OPPORTUNITY_RATE_DURING_CAMPAIGN = 0.55
WIN_RATE = 0.28
CAMPAIGN_WIN_RATE = 0.12  # the campaign's leads flood sales with deals that rarely close
WON_CYCLE_DAYS = (9.0, 5.0)
LOST_CYCLE_DAYS = (4.0, 8.0)
SEGMENT_MIX = {"SMB": 0.60, "Mid-Market": 0.30, "Enterprise": 0.10}
MEDIAN_ACV = {"SMB": 4800.0, "Mid-Market": 18000.0, "Enterprise": 60000.0}
ACV_SPREAD = 0.45
REGION_OWNERS = {"DACH": ("Anna Keller", "Jonas Weber", "Lena Fischer"),
                 "Nordics": ("Mikael Lindqvist", "Sofia Berg"),
                 "UK": ("Oliver Hughes", "Emma Clarke"),
                 "US": ("Noah Miller", "Ava Johnson")}
REGION_MIX = {"DACH": 0.42, "Nordics": 0.15, "UK": 0.18, "US": 0.25}

# Retention and revenue.
EARLY_CHURN_DAYS = 90
EARLY_CHURN = 0.05
MONTHLY_CHURN = {"SMB": 0.016, "Mid-Market": 0.011, "Enterprise": 0.006}
EXPANSION = (0.025, 1.05, 1.30)
CONTRACTION = (0.012, 0.75, 0.95)

# Story 2: service closes faster from April 2026, reaching the new pace after the ramp.
SERVICE_PUSH_START = date(2026, 4, 1)
SERVICE_PUSH_RAMP_DAYS = 75
FIRST_RESPONSE_HOURS = (4.0, 3.0)
WORK_HOURS = (25.0, 14.0)
REOPEN_RATE = (0.06, 0.14)
CSAT_GOOD = (0.91, 0.83)
REOPENED_CSAT_GOOD = 0.50
CSAT_RESPONSE_RATE = 0.40
TICKETS_PER_MONTH = {"SMB": 0.35, "Mid-Market": 0.70, "Enterprise": 1.40}
NEW_CUSTOMER_TICKET_FACTOR = 1.8
PRIORITY_MIX = {"low": 0.25, "normal": 0.50, "high": 0.20, "urgent": 0.05}
PRIORITY_SPEED = {"low": 1.4, "normal": 1.0, "high": 0.6, "urgent": 0.3}
TICKET_CHANNEL_MIX = {"email": 0.50, "chat": 0.30, "phone": 0.20}
AVG_HANDLE_MINUTES = (22.0, 15.0)

# Story 3: NPS (promoter and detractor shares) slips through 2026.
SURVEY_RATE = 0.15
NPS_MIX = (0.48, 0.13)
NPS_MIX_SLIPPED = (0.42, 0.18)
NPS_SLIP = (date(2026, 1, 1), date(2026, 10, 1))
CAMPAIGN_NPS_MIX = (0.32, 0.28)

# Touches: onboarding within 14 days / later, and monthly reach by segment.
ONBOARDING = (0.86, 0.09)
TOUCH_RATES = (("marketing", "newsletter", {"SMB": 0.35, "Mid-Market": 0.35, "Enterprise": 0.35}),
               ("marketing", "webinar", {"SMB": 0.05, "Mid-Market": 0.07, "Enterprise": 0.08}),
               ("sales", "QBR", {"SMB": 0.0, "Mid-Market": 0.12, "Enterprise": 0.33}),
               ("sales", "check-in call", {"SMB": 0.03, "Mid-Market": 0.03, "Enterprise": 0.03}),
               ("service", "check-in call", {"SMB": 0.04, "Mid-Market": 0.04, "Enterprise": 0.04}))

# Spend per month.
MARKETING_SPEND = {"paid_search": 72000.0, "paid_social": 30000.0, "organic": 14000.0,
                   "referral": 11000.0, "events": 24000.0, "email": 6000.0}
EVENT_SEASON = (0.6, 1.0, 2.2, 1.0, 1.0, 0.8, 0.3, 0.3, 2.2, 1.2, 1.0, 0.3)  # Jan-Dec
SALES_SPEND = 240000.0
SALES_SPEND_GROWTH_PER_MONTH = 0.004
SPEND_NOISE = 0.06

TABLE_COLUMNS = {
    "leads": ("lead_id", "created_at", "channel", "campaign", "qualified_at", "customer_id"),
    "opportunities": ("opportunity_id", "created_at", "lead_id", "customer_id", "stage",
                      "closed_at", "amount", "owner"),
    "customers": ("customer_id", "acquired_at", "churned_at", "segment", "region", "lead_id"),
    "revenue": ("customer_id", "month", "amount"),
    "tickets": ("ticket_id", "created_at", "customer_id", "first_response_at", "resolved_at",
                "csat", "reopened", "channel", "priority"),
    "surveys": ("customer_id", "responded_at", "score"),
    "touches": ("customer_id", "occurred_at", "team", "kind"),
    "spend": ("month", "amount", "team", "channel"),
    "team_metrics": ("date", "team", "metric", "value"),
}
DATE_COLUMNS = frozenset({"month", "date"})

DAY = np.timedelta64(86400, "s")
MONTH_DAYS = 30.44


@dataclass(frozen=True)
class _Window:
    """The months the sample covers, as numpy datetimes."""

    start: np.datetime64
    stop: np.datetime64
    warmup_start: np.datetime64
    months: np.ndarray

    @classmethod
    def ending(cls, end: date, months: int) -> _Window:
        """The window of `months` calendar months whose last day is `end`."""
        last = np.datetime64(end, "M")
        first = last - np.timedelta64(months - 1, "M")
        return cls(start=np.datetime64(first, "s"), stop=np.datetime64(np.datetime64(end, "D") + 1, "s"),
                   warmup_start=np.datetime64(first - np.timedelta64(WARMUP_MONTHS, "M"), "s"),
                   months=np.arange(first, last + 1))


def generate(seed: int = 7, end: date = date(2026, 10, 31), months: int = 36,
             scale: float = 1.0) -> dict[str, pd.DataFrame]:
    """Generate every sample table for the `months` months up to and including `end`; `scale` multiplies the
    company's size (leads, the initial customer base and spend; about 40,000 leads at 1), for benchmarks."""
    rng = np.random.default_rng(seed)
    window = _Window.ending(end, months)
    leads = _leads(rng, window, scale)
    opportunities = _opportunities(rng, leads, window)
    customers = _customers(rng, opportunities, window, scale)
    opportunities["customer_id"] = _customer_of(opportunities["opportunity_id"], customers)
    leads["customer_id"] = _customer_of(leads["lead_id"], customers)
    active = _customer_months(customers, window)
    tickets = _tickets(rng, active, window)
    tables = {
        "leads": leads[leads["lead_id"].notna()],
        "opportunities": opportunities,
        "customers": customers,
        "revenue": _revenue(rng, active),
        "tickets": tickets,
        "surveys": _surveys(rng, active),
        "touches": _touches(rng, customers, active, window),
        "spend": _spend(rng, leads, window, scale),
        "team_metrics": _team_metrics(rng, leads, opportunities, window),
    }
    return {name: tables[name].loc[:, list(columns)].reset_index(drop=True)
            for name, columns in TABLE_COLUMNS.items()}


def write_csvs(tables: dict[str, pd.DataFrame], out_dir: Path) -> list[Path]:
    """Write each table to `out_dir/<table>.csv` and return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table in tables.items():
        path = out_dir / f"{name}.csv"
        _csv_cells(table).to_csv(path, index=False, lineterminator="\n")
        paths.append(path)
    return paths


def _customer_of(keys: pd.Series, customers: pd.DataFrame) -> pd.Series:
    """The customer id that each lead or opportunity id turned into, missing where none."""
    column = keys.name
    return keys.map(customers.dropna(subset=[column]).set_index(column)["customer_id"])


def _csv_cells(table: pd.DataFrame) -> pd.DataFrame:
    """The table as CSV text: ISO times, true/false, money with 2 decimals, blanks for missing."""
    cells = {}
    for name, column in table.items():
        if pd.api.types.is_datetime64_any_dtype(column):
            text = column.dt.strftime("%Y-%m-%d" if name in DATE_COLUMNS else "%Y-%m-%d %H:%M:%S")
        elif pd.api.types.is_bool_dtype(column):
            text = column.map({True: "true", False: "false"})
        elif pd.api.types.is_float_dtype(column):
            text = column.map("{:.2f}".format, na_action="ignore")
        else:
            text = column.astype("string")
        cells[name] = text.fillna("")
    return pd.DataFrame(cells)


def _leads(rng: np.random.Generator, window: _Window, scale: float = 1.0) -> pd.DataFrame:
    """Leads from the warm-up start to the end, with ids only for those inside the window."""
    days = np.arange(window.warmup_start, window.stop, DAY).astype("datetime64[D]")
    month = days.astype("datetime64[M]")
    month_numbers, month_of_day = np.unique(month, return_inverse=True)
    years = (month - window.start.astype("datetime64[M]")).astype(int) / 12
    level = (scale * BASE_LEADS_PER_MONTH * (1 + LEAD_GROWTH_PER_YEAR) ** years
             * np.array(SEASONALITY)[month.astype(int) % 12]
             * rng.lognormal(0.0, MONTHLY_NOISE, len(month_numbers))[month_of_day])
    weekday = (days.astype(int) + 3) % 7
    weight = np.where(weekday >= 5, WEEKEND_WEIGHT, 1.0)
    per_day = level * weight / ((5 + 2 * WEEKEND_WEIGHT) / 7) / _days_in_month(month)
    campaign_per_day = np.where(days >= np.datetime64(CAMPAIGN_START), CAMPAIGN_LIFT * per_day, 0.0)
    base_count = rng.poisson(per_day)
    campaign_count = rng.poisson(campaign_per_day)

    channels = tuple(CHANNEL_MIX)
    base_channel = rng.choice(len(channels), base_count.sum(), p=list(CHANNEL_MIX.values()))
    channel = np.concatenate([base_channel, np.full(campaign_count.sum(), channels.index(CAMPAIGN_CHANNEL))])
    is_campaign = np.arange(len(channel)) >= base_count.sum()
    created = _ts(np.concatenate([np.repeat(days, base_count), np.repeat(days, campaign_count)]))
    created = created + rng.integers(6 * 3600, 23 * 3600, len(created)).astype("timedelta64[s]")

    campaign = _base_campaigns(rng, channel, created)
    campaign = np.where(is_campaign, CAMPAIGN, campaign)
    qualify_rate = np.where(is_campaign, CAMPAIGN_QUALIFY_RATE, np.array([QUALIFY_RATE[c] for c in channels])[channel])
    qualified = created + _days(rng.gamma(2.0, 1.5, len(created)))
    qualified = np.where((rng.random(len(created)) < qualify_rate) & (qualified < window.stop),
                         qualified, np.datetime64("NaT"))

    order = np.argsort(created, kind="stable")
    leads = pd.DataFrame({
        "created_at": created[order],
        "channel": np.array(channels)[channel[order]],
        "campaign": campaign[order],
        "qualified_at": qualified[order],
        "is_campaign": is_campaign[order],
    })
    leads["campaign"] = leads["campaign"].mask(leads["campaign"] == "")
    in_window = leads["created_at"] >= window.start
    leads["lead_id"] = _ids("L", 6, in_window.sum()).set_axis(leads.index[in_window])
    return leads


def _base_campaigns(rng: np.random.Generator, channel: np.ndarray, created: np.ndarray) -> np.ndarray:
    """Name the campaign of each ordinary lead from its channel; event campaigns carry the year."""
    names = [CAMPAIGNS[c] for c in CHANNEL_MIX]
    sizes = np.array([len(n) for n in names])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = np.array([name for group in names for name in group], dtype=object)
    campaign = flat[offsets[channel] + (rng.random(len(channel)) * sizes[channel]).astype(int)]
    year = created.astype("datetime64[Y]").astype(int) + 1970
    is_event = channel == list(CHANNEL_MIX).index("events")
    campaign[is_event] = campaign[is_event] + " " + year[is_event].astype(str).astype(object)
    return campaign


def _opportunities(rng: np.random.Generator, leads: pd.DataFrame, window: _Window) -> pd.DataFrame:
    """Deals opened from qualified leads; those still running at the end stay open."""
    qualified = leads[leads["qualified_at"].notna()]
    qualified_at = qualified["qualified_at"].to_numpy()
    rate = np.where(qualified_at >= np.datetime64(CAMPAIGN_START), OPPORTUNITY_RATE_DURING_CAMPAIGN,
                    OPPORTUNITY_RATE)
    created = qualified_at + _days(rng.gamma(2.0, 2.0, len(qualified)))
    opened = (rng.random(len(qualified)) < rate) & (created < window.stop)
    source = qualified[opened]
    created = created[opened]
    n = len(source)
    is_campaign = source["is_campaign"].to_numpy()

    segment = np.where(is_campaign, _pick(rng, CAMPAIGN_SEGMENT_MIX, n), _pick(rng, SEGMENT_MIX, n))
    region = _pick(rng, REGION_MIX, n)
    won = rng.random(n) < np.where(is_campaign, CAMPAIGN_WIN_RATE, WIN_RATE)
    cycle = np.where(won, rng.gamma(*WON_CYCLE_DAYS, n), rng.gamma(*LOST_CYCLE_DAYS, n))
    closed = created + _days(cycle)
    is_open = closed >= window.stop
    opportunities = pd.DataFrame({
        "created_at": created,
        "lead_id": source["lead_id"].to_numpy(),
        "stage": np.where(is_open, "open", np.where(won, "won", "lost")),
        "closed_at": np.where(is_open, np.datetime64("NaT"), closed),
        "amount": _acv(rng, segment),
        "owner": _owners(rng, region),
        "segment": segment,
        "region": region,
        "is_campaign": is_campaign,
    })
    opportunities = opportunities[opportunities["lead_id"].notna()
                                  | (opportunities["closed_at"] >= window.start) | is_open]
    opportunities = opportunities.sort_values("created_at", kind="stable").reset_index(drop=True)
    opportunities.insert(0, "opportunity_id", _ids("O", 6, len(opportunities)))
    return opportunities


def _customers(rng: np.random.Generator, opportunities: pd.DataFrame, window: _Window,
               scale: float = 1.0) -> pd.DataFrame:
    """The initial base plus a customer per won deal, each with its churn moment if it came."""
    won = opportunities[opportunities["stage"] == "won"]
    n_initial = round(INITIAL_CUSTOMERS * scale)
    initial_from = np.datetime64(INITIAL_ACQUIRED_FROM, "s")
    initial_span = (window.start - initial_from).astype(int)
    initial_segment = _pick(rng, SEGMENT_MIX, n_initial)
    customers = pd.concat([
        pd.DataFrame({
            "acquired_at": initial_from + rng.integers(0, initial_span, n_initial).astype("timedelta64[s]"),
            "segment": initial_segment,
            "region": _pick(rng, REGION_MIX, n_initial),
            "lead_id": pd.Series([None] * n_initial, dtype="str"),
            "is_campaign": False,
            "acv": _acv(rng, initial_segment),
            "opportunity_id": pd.Series([None] * n_initial, dtype="str"),
        }),
        pd.DataFrame({
            "acquired_at": won["closed_at"].to_numpy(),
            "segment": won["segment"].to_numpy(),
            "region": won["region"].to_numpy(),
            "lead_id": won["lead_id"].to_numpy(),
            "is_campaign": won["is_campaign"].to_numpy(),
            "acv": won["amount"].to_numpy(),
            "opportunity_id": won["opportunity_id"].to_numpy(),
        }),
    ], ignore_index=True)
    customers = customers.sort_values("acquired_at", kind="stable").reset_index(drop=True)
    customers.insert(0, "customer_id", _ids("C", 5, len(customers)))
    customers["churned_at"] = _churn_moments(rng, customers, window)
    return customers


def _churn_moments(rng: np.random.Generator, customers: pd.DataFrame, window: _Window) -> np.ndarray:
    """When each customer churns: some early after acquisition, the rest at a segment hazard."""
    n = len(customers)
    acquired = customers["acquired_at"].to_numpy()
    is_campaign = customers["is_campaign"].to_numpy()
    early_rate = np.where(is_campaign, CAMPAIGN_EARLY_CHURN, EARLY_CHURN)
    early = (rng.random(n) < early_rate) & (acquired >= window.start)
    early_at = acquired + _days(rng.uniform(14, EARLY_CHURN_DAYS, n))
    hazard = customers["segment"].map(MONTHLY_CHURN).to_numpy() * np.where(is_campaign, CAMPAIGN_CHURN_FACTOR, 1.0)
    late_from = np.maximum(acquired + EARLY_CHURN_DAYS * DAY, window.start)
    late_at = late_from + _days(rng.exponential(MONTH_DAYS / hazard))
    churned = np.where(early, early_at, late_at)
    return np.where(churned < window.stop, churned, np.datetime64("NaT"))


def _customer_months(customers: pd.DataFrame, window: _Window) -> pd.DataFrame:
    """One row per customer and window month in which the customer was active, with the active span."""
    acquired = customers["acquired_at"].to_numpy()
    churned = customers["churned_at"].to_numpy()
    stop = np.where(np.isnat(churned), window.stop, churned)
    first = np.maximum(acquired.astype("datetime64[M]"), window.months[0])
    last = (stop - np.timedelta64(1, "s")).astype("datetime64[M]")
    count = np.maximum((last - first).astype(int) + 1, 0)
    row = np.repeat(np.arange(len(customers)), count)
    month = first[row] + (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count))
    lo = np.maximum(_ts(month), acquired[row])
    hi = np.minimum(_ts(month + 1), stop[row])
    return pd.DataFrame({
        "customer_id": customers["customer_id"].to_numpy()[row],
        "customer": row,
        "month": month.astype("datetime64[s]"),
        "lo": lo,
        "hi": hi,
        "exposure": (hi - lo) / DAY / _days_in_month(month),
        "age_days": (lo - acquired[row]) / DAY,
        "segment": customers["segment"].to_numpy()[row],
        "is_campaign": customers["is_campaign"].to_numpy()[row],
        "acv": customers["acv"].to_numpy()[row],
    })


def _revenue(rng: np.random.Generator, active: pd.DataFrame) -> pd.DataFrame:
    """Monthly recurring revenue: a twelfth of the contract value, drifting with expansion and contraction."""
    n = len(active)
    draw = rng.random(n)
    expansion_rate, expansion_low, expansion_high = EXPANSION
    contraction_rate, contraction_low, contraction_high = CONTRACTION
    factor = np.where(draw < expansion_rate, rng.uniform(expansion_low, expansion_high, n),
                      np.where(draw > 1 - contraction_rate, rng.uniform(contraction_low, contraction_high, n), 1.0))
    factor[~active["customer"].duplicated().to_numpy()] = 1.0
    growth = pd.Series(factor).groupby(active["customer"].to_numpy()).cumprod().to_numpy()
    revenue = pd.DataFrame({
        "customer_id": active["customer_id"],
        "month": active["month"],
        "amount": (active["acv"] / 12 * growth).round(2),
    })
    return revenue.sort_values(["month", "customer_id"], kind="stable")


def _tickets(rng: np.random.Generator, active: pd.DataFrame, window: _Window) -> pd.DataFrame:
    """Service tickets of active customers; the service push speeds them up and makes them worse."""
    rate = (active["segment"].map(TICKETS_PER_MONTH) * active["exposure"]
            * np.where(active["age_days"] < 60, NEW_CUSTOMER_TICKET_FACTOR, 1.0))
    row = np.repeat(np.arange(len(active)), rng.poisson(rate.to_numpy()))
    n = len(row)
    lo = active["lo"].to_numpy()[row]
    hi = active["hi"].to_numpy()[row]
    created = lo + ((hi - lo).astype(float) * rng.random(n)).astype("timedelta64[s]")
    push = _service_push(created)
    priority = _pick(rng, PRIORITY_MIX, n)
    speed = pd.Series(priority).map(PRIORITY_SPEED).to_numpy()
    first_response = created + _hours(speed * _blend(FIRST_RESPONSE_HOURS, push) * rng.lognormal(0, 0.8, n))
    resolved = first_response + _hours(speed * _blend(WORK_HOURS, push) * rng.lognormal(0, 0.9, n))
    is_resolved = resolved < window.stop
    reopened = is_resolved & (rng.random(n) < _blend(REOPEN_RATE, push))
    good = rng.random(n) < np.where(reopened, REOPENED_CSAT_GOOD, _blend(CSAT_GOOD, push))
    score = np.where(good, rng.choice([4, 5], n, p=[0.45, 0.55]), rng.choice([1, 2, 3], n, p=[0.2, 0.3, 0.5]))
    rated = is_resolved & (rng.random(n) < CSAT_RESPONSE_RATE)
    tickets = pd.DataFrame({
        "created_at": created,
        "customer_id": active["customer_id"].to_numpy()[row],
        "first_response_at": np.where(first_response < window.stop, first_response, np.datetime64("NaT")),
        "resolved_at": np.where(is_resolved, resolved, np.datetime64("NaT")),
        "csat": pd.array(np.where(rated, score, 0), dtype="Int64"),
        "reopened": reopened,
        "channel": _pick(rng, TICKET_CHANNEL_MIX, n),
        "priority": priority,
    })
    tickets["csat"] = tickets["csat"].mask(~rated)
    tickets = tickets.sort_values("created_at", kind="stable").reset_index(drop=True)
    tickets.insert(0, "ticket_id", _ids("T", 6, len(tickets)))
    return tickets


def _surveys(rng: np.random.Generator, active: pd.DataFrame) -> pd.DataFrame:
    """NPS answers of active customers; promoters thin out in 2026 and among campaign customers."""
    answered = active[rng.random(len(active)) < SURVEY_RATE * active["exposure"]]
    n = len(answered)
    responded = _between(rng, answered["lo"].to_numpy(), answered["hi"].to_numpy())
    slip_start, slip_end = (np.datetime64(d, "s") for d in NPS_SLIP)
    slip = np.clip((responded - slip_start) / (slip_end - slip_start), 0, 1)
    promoter = np.where(answered["is_campaign"], CAMPAIGN_NPS_MIX[0],
                        _blend((NPS_MIX[0], NPS_MIX_SLIPPED[0]), slip))
    detractor = np.where(answered["is_campaign"], CAMPAIGN_NPS_MIX[1],
                         _blend((NPS_MIX[1], NPS_MIX_SLIPPED[1]), slip))
    draw = rng.random(n)
    score = np.where(draw < promoter, rng.integers(9, 11, n),
                     np.where(draw < promoter + detractor,
                              rng.choice(np.arange(7), n, p=[0.04, 0.04, 0.07, 0.10, 0.15, 0.25, 0.35]),
                              rng.integers(7, 9, n)))
    surveys = pd.DataFrame({"customer_id": answered["customer_id"].to_numpy(), "responded_at": responded,
                            "score": score})
    return surveys.sort_values(["responded_at", "customer_id"], kind="stable")


def _touches(rng: np.random.Generator, customers: pd.DataFrame, active: pd.DataFrame,
             window: _Window) -> pd.DataFrame:
    """Onboarding of new customers (often late for campaign customers) and monthly contacts of the base."""
    new = customers[customers["acquired_at"] >= window.start]
    is_campaign = new["is_campaign"].to_numpy()
    on_time = np.where(is_campaign, CAMPAIGN_ONBOARDING[0], ONBOARDING[0])
    late = np.where(is_campaign, CAMPAIGN_ONBOARDING[1], ONBOARDING[1])
    draw = rng.random(len(new))
    delay = np.where(draw < on_time, rng.uniform(0.2, 14, len(new)), rng.uniform(15, 45, len(new)))
    onboarded = new["acquired_at"].to_numpy() + _days(delay)
    stop = new["churned_at"].fillna(pd.Timestamp(window.stop)).to_numpy()
    keep = (draw < on_time + late) & (onboarded < stop)
    parts = [pd.DataFrame({"customer_id": new["customer_id"].to_numpy()[keep], "occurred_at": onboarded[keep],
                           "team": "service", "kind": "onboarding"})]
    for team, kind, rates in TOUCH_RATES:
        touched = active[rng.random(len(active)) < active["segment"].map(rates) * active["exposure"]]
        parts.append(pd.DataFrame({
            "customer_id": touched["customer_id"].to_numpy(),
            "occurred_at": _between(rng, touched["lo"].to_numpy(), touched["hi"].to_numpy()),
            "team": team,
            "kind": kind,
        }))
    touches = pd.concat(parts, ignore_index=True)
    return touches.sort_values(["occurred_at", "customer_id"], kind="stable")


def _spend(rng: np.random.Generator, leads: pd.DataFrame, window: _Window, scale: float = 1.0) -> pd.DataFrame:
    """Monthly marketing spend per channel (the campaign paid per lead) and sales spend."""
    months = window.months
    n = len(months)
    month_start = months.astype("datetime64[s]")
    campaign_cost = CAMPAIGN_COST_PER_LEAD * _monthly_counts(leads.loc[leads["is_campaign"], "created_at"], months)
    parts = []
    for channel, base in MARKETING_SPEND.items():
        season = np.array(EVENT_SEASON)[months.astype(int) % 12] if channel == "events" else 1.0
        extra = campaign_cost if channel == CAMPAIGN_CHANNEL else 0.0
        amount = scale * base * season * rng.lognormal(0, SPEND_NOISE, n) + extra
        parts.append(pd.DataFrame({"month": month_start, "amount": amount, "team": "marketing", "channel": channel}))
    sales = (scale * SALES_SPEND * (1 + SALES_SPEND_GROWTH_PER_MONTH) ** np.arange(n)
             * rng.lognormal(0, SPEND_NOISE / 2, n))
    parts.append(pd.DataFrame({"month": month_start, "amount": sales, "team": "sales",
                               "channel": pd.Series([None] * n, dtype="str")}))
    spend = pd.concat(parts, ignore_index=True)
    spend["amount"] = spend["amount"].round(2)
    return spend.sort_values(["month", "team"], kind="stable")


def _team_metrics(rng: np.random.Generator, leads: pd.DataFrame, opportunities: pd.DataFrame,
                  window: _Window) -> pd.DataFrame:
    """Monthly numbers the teams report from their own tools, following the activity they reflect."""
    months = window.months
    n = len(months)
    lead_count = _monthly_counts(leads["created_at"], months)
    campaign_count = _monthly_counts(leads.loc[leads["is_campaign"], "created_at"], months)
    deal_count = _monthly_counts(opportunities["created_at"], months)
    push = _service_push(_ts(months))
    values = {
        ("marketing", "website_visits"): lead_count * 38 * rng.lognormal(0, 0.05, n),
        ("marketing", "social_impressions"): (60000 + campaign_count * 900) * rng.lognormal(0, 0.08, n),
        ("sales", "sales_calls"): deal_count * 9 * rng.lognormal(0, 0.05, n),
        ("sales", "demos_held"): deal_count * 0.8 * rng.lognormal(0, 0.05, n),
        ("service", "agents_on_duty"): 12 + np.arange(n) // 12 + rng.integers(-1, 2, n),
        ("service", "avg_handle_minutes"): _blend(AVG_HANDLE_MINUTES, push) * rng.lognormal(0, 0.04, n),
    }
    metrics = pd.concat([pd.DataFrame({"date": months.astype("datetime64[s]"), "team": team, "metric": metric,
                                       "value": np.round(value).astype(int)})
                         for (team, metric), value in values.items()], ignore_index=True)
    return metrics.sort_values(["date", "team", "metric"], kind="stable")


def _service_push(moments: np.ndarray) -> np.ndarray:
    """How far the service push has got at each moment, from 0 (before) to 1 (fully in force)."""
    elapsed = (moments - np.datetime64(SERVICE_PUSH_START, "s")) / DAY
    return np.clip(elapsed / SERVICE_PUSH_RAMP_DAYS, 0, 1)


def _monthly_counts(moments: pd.Series, months: np.ndarray) -> np.ndarray:
    """How many of the moments fall in each of the months."""
    index = (moments.to_numpy().astype("datetime64[M]") - months[0]).astype(int)
    return np.bincount(index[(index >= 0) & (index < len(months))], minlength=len(months))


def _pick(rng: np.random.Generator, mix: dict[str, float], n: int) -> np.ndarray:
    """Draw `n` labels with the shares of `mix`."""
    return np.array(list(mix), dtype=object)[rng.choice(len(mix), n, p=list(mix.values()))]


def _acv(rng: np.random.Generator, segment: np.ndarray) -> np.ndarray:
    """Annual contract values around each segment's median, rounded to whole euros."""
    median = pd.Series(segment).map(MEDIAN_ACV).to_numpy()
    return np.round(median * rng.lognormal(0, ACV_SPREAD, len(segment))).astype(float)


def _owners(rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
    """A sales rep of each deal's region."""
    pools = list(REGION_OWNERS.values())
    sizes = np.array([len(p) for p in pools])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = np.array([name for pool in pools for name in pool], dtype=object)
    index = pd.Series(region).map({r: i for i, r in enumerate(REGION_OWNERS)}).to_numpy()
    return flat[offsets[index] + (rng.random(len(region)) * sizes[index]).astype(int)]


def _ids(prefix: str, width: int, n: int) -> pd.Series:
    """Sequential ids like L000001."""
    return prefix + pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(width)


def _between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A random moment in each span [lo, hi)."""
    return lo + ((hi - lo).astype(float) * rng.random(len(lo))).astype("timedelta64[s]")


def _blend(values: tuple[float, float], weight: np.ndarray) -> np.ndarray:
    """Move from the first value to the second as `weight` goes from 0 to 1."""
    return values[0] + (values[1] - values[0]) * weight


def _days(days: np.ndarray) -> np.ndarray:
    """Whole seconds of a number of days."""
    return np.round(np.asarray(days) * 86400).astype("int64").astype("timedelta64[s]")


def _hours(hours: np.ndarray) -> np.ndarray:
    """Whole seconds of a number of hours."""
    return _days(np.asarray(hours) / 24)


def _days_in_month(month: np.ndarray) -> np.ndarray:
    """How many days each month has."""
    return ((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype(int)


def _ts(value: np.ndarray | np.datetime64) -> np.ndarray:
    """The value as datetimes with second resolution."""
    return np.asarray(value).astype("datetime64[s]")
