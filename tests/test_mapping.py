"""Recognising exports: which table, which column, how dates and numbers are written, which values mean what."""
from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpicore.files import RawFile
from kpicore.mapping import (
    DateOrder,
    _Folded,
    apply_saved,
    canonical_value,
    date_order,
    normalize,
    propose,
    to_saved,
    uses_decimal_comma,
)


def raw(columns: list[str], *rows: list[str | None], delimiter: str = ",") -> RawFile:
    """A file as read_file describes it, without a file: only columns, sample rows and delimiter matter here."""
    return RawFile("export.csv", Path("export.csv"), "utf-8", delimiter, 0, tuple(columns), tuple(map(tuple, rows)))


@pytest.mark.parametrize(("name", "folded"), [
    ("Erstellt am", "erstelltam"),
    ("Lösungszeit", "loesungszeit"),
    ("Größe", "groesse"),
    ("Kündigungsdatum", "kuendigungsdatum"),
    ("Deal-ID", "dealid"),
    ("Ticket #", "ticket"),
    ("  Close_Date ", "closedate"),
    ("Créé le", "creele"),
    ("CSAT (1-5)", "csat15"),
])
def test_normalize(name, folded):
    assert normalize(name) == folded


@pytest.mark.parametrize(("vocabulary", "value", "canonical"), [
    ("stage", "Closed Won", "won"),
    ("stage", "closedwon", "won"),
    ("stage", "Closed-Won", "won"),
    ("stage", "CLOSED_LOST", "lost"),
    ("stage", "Gewonnen", "won"),
    ("stage", "Verloren", "lost"),
    ("stage", "Won", "won"),
    ("stage", "In Bearbeitung", "open"),
    ("stage", "Engaging", "open"),  # any other stage of a CRM is a deal still open
    ("stage", "Appointment scheduled", "open"),
    ("team", "Vertrieb", "sales"),
    ("team", "Kundenservice", "service"),
    ("team", "Customer Success", "service"),
    ("team", "MKTG", "marketing"),
    ("team", "Finance", None),  # no fallback: the user must say
])
def test_canonical_value(vocabulary, value, canonical):
    assert canonical_value(vocabulary, value) == canonical


@pytest.mark.parametrize(("sample", "order"), [
    (["2026-10-31", "2026-10-31 14:00:00", "2026-10-31T14:00:00Z"], DateOrder.ISO),
    (["31.10.2026", "01.02.2026 09:30"], DateOrder.DAY_FIRST),
    (["01.02.2026"], DateOrder.DAY_FIRST),  # dots are day first wherever they are used
    (["31/10/2026", "01/02/2026"], DateOrder.DAY_FIRST),
    (["13/01/26"], DateOrder.DAY_FIRST),
    (["10/31/2026 2:00 PM", "01/02/2026"], DateOrder.MONTH_FIRST),
    (["1/13/2026"], DateOrder.MONTH_FIRST),
    (["01/02/2026", "03/04/2026 10:00"], DateOrder.AMBIGUOUS),
    (["13/01/2026", "01/13/2026"], DateOrder.AMBIGUOUS),  # contradicts itself: ask
    (["10.2026", "11.2026"], DateOrder.DAY_FIRST),  # a billing month
    (["2026-10-31", "31.10.2026", "30.10.2026"], DateOrder.DAY_FIRST),  # the most common shape wins
    ([], DateOrder.ISO),
])
def test_date_order(sample, order):
    assert date_order(sample) is order


@pytest.mark.parametrize(("sample", "comma_locale", "decimal_comma"), [
    (["1.234,56", "99,90"], False, True),
    (["1.234,56 €", "€ 12,5"], False, True),
    (["1,234.56", "99.90"], True, False),
    (["$1,234.56", "$12,000.00", "3,500"], False, False),
    (["12,5 %"], False, True),
    (["-$1,234.56"], True, False),  # the sign before the currency symbol
    (["-€ 0,01"], False, True),
    (["$-12.50"], True, False),
    (["3,500", "12,000"], False, False),  # US thousands, whole amounts
    (["1.234", "12.500"], True, True),  # German thousands, whole amounts
    (["1.234", "12.500"], False, True),
    (["0.5", "1.234"], True, False),  # 0.5 can only be a decimal point
    (["100", "250"], True, True),  # nothing to tell: the file's locale decides
    (["100", "250"], False, False),
    ([], True, True),
])
def test_uses_decimal_comma(sample, comma_locale, decimal_comma):
    assert uses_decimal_comma(sample, comma_locale) is decimal_comma


RECOGNITION = [
    pytest.param(
        ["Record ID", "Deal Name", "Deal Stage", "Amount", "Create Date", "Close Date", "Deal owner"],
        ["1", "Acme", "closedwon", "1200", "2026-10-31 14:00", "2026-11-15", "Anna"],
        "opportunities",
        {"opportunity_id": "Record ID", "stage": "Deal Stage", "amount": "Amount", "created_at": "Create Date",
         "closed_at": "Close Date", "owner": "Deal owner"}, id="HubSpot deals"),
    pytest.param(
        ["Record ID", "First Name", "Create Date", "Original Source", "Became a Marketing Qualified Lead Date"],
        ["7", "Eva", "2026-10-01", "Organic Search", "2026-10-05"],
        "leads",
        {"lead_id": "Record ID", "created_at": "Create Date", "channel": "Original Source",
         "qualified_at": "Became a Marketing Qualified Lead Date"}, id="HubSpot contacts"),
    pytest.param(
        ["Opportunity ID", "Opportunity Name", "Account ID", "Stage", "Amount", "Close Date", "Created Date",
         "Opportunity Owner"],
        ["006A1", "Acme", "001X1", "Closed Won", "1234.56", "11/15/2026", "10/31/2026", "Jane Roe"],
        "opportunities",
        {"opportunity_id": "Opportunity ID", "customer_id": "Account ID", "stage": "Stage", "amount": "Amount",
         "closed_at": "Close Date", "created_at": "Created Date", "owner": "Opportunity Owner"},
        id="Salesforce opportunities"),
    pytest.param(
        ["Deal-ID", "Erstellt am", "Betrag", "Verkaufsphase", "Abschlussdatum", "Besitzer"],
        ["1", "31.10.2026", "1.234,56", "Gewonnen", "15.11.2026", "Jörg"],
        "opportunities",
        {"opportunity_id": "Deal-ID", "created_at": "Erstellt am", "amount": "Betrag", "stage": "Verkaufsphase",
         "closed_at": "Abschlussdatum", "owner": "Besitzer"}, id="German CRM deals"),
    pytest.param(
        ["Ticket ID", "Subject", "Created at", "Solved at", "Satisfaction Rating", "Priority", "Via"],
        ["101", "Login", "2026-10-31 14:00", "2026-11-01 09:00", "5", "High", "Mail"],
        "tickets",
        {"ticket_id": "Ticket ID", "created_at": "Created at", "resolved_at": "Solved at",
         "csat": "Satisfaction Rating", "priority": "Priority", "channel": "Via"}, id="Zendesk tickets"),
    pytest.param(
        ["Ticketnummer", "Erstellt", "Erste Antwort am", "Gelöst am", "Zufriedenheit", "Wiedereröffnet"],
        ["9", "31.10.2026 08:00", "31.10.2026 09:00", "01.11.2026", "4", "nein"],
        "tickets",
        {"ticket_id": "Ticketnummer", "created_at": "Erstellt", "first_response_at": "Erste Antwort am",
         "resolved_at": "Gelöst am", "csat": "Zufriedenheit", "reopened": "Wiedereröffnet"}, id="German helpdesk"),
    pytest.param(
        ["Kundennummer", "Kunde seit", "Gekündigt am", "Kundensegment", "Land"],
        ["K1", "01.01.2025", "", "KMU", "DE"],
        "customers",
        {"customer_id": "Kundennummer", "acquired_at": "Kunde seit", "churned_at": "Gekündigt am",
         "segment": "Kundensegment", "region": "Land"}, id="German customer list"),
    pytest.param(
        ["Customer ID", "Billing Month", "MRR"], ["C1", "2026-10", "99.00"],
        "revenue", {"customer_id": "Customer ID", "month": "Billing Month", "amount": "MRR"}, id="billing"),
    pytest.param(
        ["Customer ID", "Submitted at", "NPS Score"], ["C1", "2026-10-31", "9"],
        "surveys", {"customer_id": "Customer ID", "responded_at": "Submitted at", "score": "NPS Score"}, id="NPS"),
    pytest.param(
        ["Monat", "Kosten", "Kanal", "Abteilung"], ["10.2026", "1.000,00", "SEA", "Marketing"],
        "spend", {"month": "Monat", "amount": "Kosten", "channel": "Kanal", "team": "Abteilung"}, id="German spend"),
    pytest.param(
        ["Customer ID", "Activity Date", "Department", "Activity Type"], ["C1", "2026-10-31", "Sales", "Call"],
        "touches", {"customer_id": "Customer ID", "occurred_at": "Activity Date", "team": "Department",
                    "kind": "Activity Type"}, id="CRM activities"),
    pytest.param(
        ["Datum", "Abteilung", "Kennzahl", "Wert"], ["31.10.2026", "Vertrieb", "Anrufe", "12"],
        "team_metrics", {"date": "Datum", "team": "Abteilung", "metric": "Kennzahl", "value": "Wert"},
        id="German team numbers"),
]


@pytest.mark.parametrize(("columns", "row", "table", "sure"), RECOGNITION)
def test_recognises_the_table_and_places_the_columns(columns, row, table, sure):
    plan = propose(raw(columns, row))
    assert plan.table == table
    assert {m.canonical: m.source for m in plan.columns if m.sure} == sure
    assert not plan.missing_required and not plan.unsure


def test_the_values_of_a_column_are_guessed_from_the_sample():
    plan = propose(raw(["Deal ID", "Created Date", "Deal Stage", "Amount"],
                       ["1", "31.10.2026", "Gewonnen", "1.234,56"], ["2", "30.10.2026", "Engaging", "99,00"],
                       ["3", "29.10.2026", "Closed Lost", "5"], delimiter=";"))
    assert plan.values == {"stage": {"Closed Lost": "lost", "Engaging": "open", "Gewonnen": "won"}}
    assert plan.date_orders == {"created_at": DateOrder.DAY_FIRST}
    assert plan.decimal_comma == {"amount"}


def test_a_time_column_without_dates_is_only_a_guess():
    plan = propose(raw(["lead_id", "created_at"], ["L1", "yesterday"], ["L2", "n/a"]), "leads")
    assert [(m.canonical, m.confidence) for m in plan.unsure] == [("created_at", 0.5)]


def test_a_misspelled_column_is_a_guess_the_user_must_confirm():
    plan = propose(raw(["Lead Idd", "Created Dat"], ["L1", "2026-10-31"]))
    assert plan.table == "leads"
    assert [(m.canonical, m.source, m.confidence) for m in plan.unsure] == [
        ("lead_id", "Lead Idd", 0.74), ("created_at", "Created Dat", 0.76)]
    confirmed = plan.with_column("lead_id", "Lead Idd").with_column("created_at", "Created Dat")
    assert not confirmed.unsure and confirmed.source_of("lead_id") == "Lead Idd"


def test_the_table_given_wins_over_the_guess_and_says_what_is_missing():
    surveys = raw(["customer_id", "responded_at", "score"], ["C1", "2026-10-31", "9"])
    assert propose(surveys).table == "surveys"
    plan = propose(surveys, "leads")
    assert plan.table == "leads" and plan.missing_required == ("lead_id", "created_at")


def test_mapping_a_column_moves_it_and_unmapping_frees_it():
    plan = propose(raw(["id", "Created", "Closed"], ["1", "2026-10-01", "2026-10-05"]), "opportunities")
    assert plan.source_of("created_at") == "Created" and plan.source_of("closed_at") == "Closed"
    moved = plan.with_column("closed_at", "Created")
    assert moved.source_of("closed_at") == "Created" and moved.source_of("created_at") is None
    assert moved.missing_required == ("created_at",)
    assert plan.with_column("closed_at", None).source_of("closed_at") is None
    assert plan.source_of("closed_at") == "Closed"  # plans are values: the original is unchanged


def test_value_and_date_answers():
    plan = propose(raw(["lead_id", "created_at"], ["L1", "01/02/2026"]))
    assert plan.ambiguous_dates == ("created_at",)
    answered = plan.with_date_order("created_at", DateOrder.DAY_FIRST)
    assert answered.ambiguous_dates == () and plan.ambiguous_dates == ("created_at",)
    deals = propose(raw(["opportunity_id", "created_at", "stage"], ["1", "2026-10-01", "Engaging"]))
    changed = deals.with_value("stage", "Engaging", "lost")
    assert changed.values["stage"]["Engaging"] == "lost" and deals.values["stage"]["Engaging"] == "open"


def test_a_saved_mapping_round_trips_to_the_next_file():
    first = raw(["Lead Idd", "Created Dat", "Chanel"], ["L1", "01/02/2026", "Messe"])
    plan = (propose(first).with_column("lead_id", "Lead Idd").with_column("created_at", "Created Dat")
            .with_column("channel", "Chanel").with_date_order("created_at", DateOrder.DAY_FIRST))
    saved = to_saved(plan, first)
    assert saved["headers"] == ["Lead Idd", "Created Dat", "Chanel"]
    second = raw(["Lead Idd", "Created Dat", "Chanel"], ["L7", "03/04/2026", "Web"])
    applied = apply_saved(propose(second), second, saved)
    assert {m.canonical: m.source for m in applied.columns if m.sure} == {
        "lead_id": "Lead Idd", "created_at": "Created Dat", "channel": "Chanel"}
    assert applied.date_orders == {"created_at": DateOrder.DAY_FIRST} and not applied.unsure


def test_wide_files_are_recognised_quickly():
    columns = ["lead_id", "created_at"] + [f"Custom field {i}" for i in range(2_000)]
    plan = propose(raw(columns, ["L1", "2026-10-31"] + [""] * 2_000))
    assert plan.table == "leads" and plan.source_of("created_at") == "created_at"


# The quick bounds in front of difflib must never change its answer where it matters (0.8 and up).
names = st.text(alphabet="abcdeilmnorstu0123", max_size=14)


@given(names, names)
def test_quick_similarity_agrees_with_difflib(a, b):
    ratio = difflib.SequenceMatcher(None, a, b).ratio()
    quick = _Folded.of(a).similarity(_Folded.of(b))
    assert quick == ratio if ratio >= 0.8 else quick < 0.8
