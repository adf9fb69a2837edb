"""The KPI tree: layers from `drives` links, non-overlapping positions, and the chart spec."""
from __future__ import annotations

import itertools
from typing import Any

import pytest

from kpicore.catalog import CUSTOMER, Catalog, parse_catalog
from kpicore.display import STATUS_LOOKS
from kpicore.scorecard import Status
from kpicore.tree import Layout, Link, layout, tree_chart


def entry(kpi_id: str, team: str, drives: tuple[str, ...] = (), guards: tuple[str, ...] = (),
          label: str | None = None) -> str:
    """A catalog entry counting leads, owned by `team`, with its drives and counterweights."""
    return f"""
  - id: {kpi_id}
    label: {label or kpi_id.replace("_", " ").capitalize()}
    team: {team}
    description: A test KPI.
    unit: count
    direction: up
    simple: {{table: leads, time: created_at, agg: count}}
    target: {{value: 10}}
    drives: [{", ".join(drives)}]
    counterweights: [{", ".join(guards)}]"""


def catalog_of(*entries: str) -> Catalog:
    """A catalog with marketing and sales, one measure, and the given KPI entries."""
    return parse_catalog("""
teams:
  - {id: marketing, label: Marketing}
  - {id: sales, label: Sales}
measures:
  - id: lead_count
    label: Lead count
    description: Leads created in the period.
    unit: count
    simple: {table: leads, time: created_at, agg: count}
kpis:""" + "".join(entries))


# visits -> leads -> revenue_per_lead is the longest path (3 layers); visits also feeds revenue_per_lead
# directly, past the middle layer; calls drives nothing and sits next to the outcomes.
TINY = catalog_of(
    entry("retention", CUSTOMER),
    entry("revenue_per_lead", CUSTOMER),
    entry("visits", "marketing", drives=("leads", "revenue_per_lead")),
    entry("leads", "marketing", drives=("revenue_per_lead",), guards=("win_rate",)),
    entry("win_rate", "sales", drives=("retention",), guards=("retention",)),
    entry("calls", "sales"),
)


def distance_ok(plan: Layout) -> bool:
    """Whether every two nodes are a whole node apart: one layer across or one row down."""
    return all(max(abs(a.x - b.x), abs(a.y - b.y)) >= 1 - 1e-9 for a, b in itertools.combinations(plan.nodes, 2))


def test_layers_follow_the_longest_drive_path_with_customer_outcomes_last():
    layers = {n.kpi_id: n.layer for n in layout(TINY).nodes}
    assert layers == {"visits": 0, "leads": 1, "win_rate": 1, "calls": 1, "retention": 2, "revenue_per_lead": 2}


def test_measures_are_not_nodes():
    assert "lead_count" not in {n.kpi_id for n in layout(TINY).nodes}


def test_nodes_carry_label_and_team_and_their_layer_as_x():
    leads = next(n for n in layout(TINY).nodes if n.kpi_id == "leads")
    assert (leads.label, leads.team, leads.x) == ("Leads", "marketing", 1.0)


def test_edges_of_both_kinds_point_the_right_way():
    edges = {(e.source, e.target, e.kind) for e in layout(TINY).edges}
    assert edges == {
        ("visits", "leads", Link.DRIVES), ("visits", "revenue_per_lead", Link.DRIVES),
        ("leads", "revenue_per_lead", Link.DRIVES), ("win_rate", "retention", Link.DRIVES),
        ("win_rate", "leads", Link.GUARDS), ("retention", "win_rate", Link.GUARDS),
    }


def test_a_drive_link_past_a_layer_bends_around_the_nodes_of_that_layer():
    plan = layout(TINY)
    [edge] = [e for e in plan.edges if (e.source, e.target) == ("visits", "revenue_per_lead")]
    [(x, y)] = edge.bends
    assert x == 1.0
    assert all(abs(n.y - y) >= 1 for n in plan.nodes if n.layer == 1)


def test_nodes_do_not_overlap():
    assert distance_ok(layout(TINY))


def test_teams_keep_to_their_own_band():
    plan = layout(TINY)
    bands = {b.team: b for b in plan.bands}
    assert bands["marketing"].bottom + 1 <= bands["sales"].top
    for node in plan.nodes:
        if node.team != CUSTOMER:
            assert bands[node.team].top - 1e-9 <= node.y <= bands[node.team].bottom + 1e-9


def test_layers_are_ordered_so_that_links_do_not_cross():
    # listed so that catalog order would cross: a feeds the second outcome, b the first
    plan = layout(catalog_of(
        entry("first", CUSTOMER), entry("second", CUSTOMER),
        entry("a", "marketing", drives=("second",)), entry("b", "marketing", drives=("first",)),
    ))
    y = {n.kpi_id: n.y for n in plan.nodes}
    assert (y["a"] < y["b"]) == (y["second"] < y["first"])


def test_layout_is_deterministic():
    assert layout(TINY) == layout(TINY)


def test_shipped_catalog_every_scored_kpi_is_a_node_and_every_link_an_edge(catalog: Catalog):
    plan = layout(catalog)
    scored = [k for k in catalog.kpis if not k.is_measure]
    assert sorted(n.kpi_id for n in plan.nodes) == sorted(k.id for k in scored)
    expected = {(k.id, d, Link.DRIVES) for k in scored for d in k.drives}
    expected |= {(c, k.id, Link.GUARDS) for k in scored for c in k.counterweights}
    assert sorted((e.source, e.target, e.kind) for e in plan.edges) == sorted(expected)


def test_shipped_catalog_nodes_do_not_overlap_and_outcomes_come_last(catalog: Catalog):
    plan = layout(catalog)
    assert distance_ok(plan)
    last = max(n.layer for n in plan.nodes)
    assert {n.kpi_id for n in plan.nodes if n.layer == last} == {k.id for k in catalog.outcomes}


def layers_of(spec: dict[str, Any], mark: str) -> list[dict[str, Any]]:
    """The layers drawing `mark`."""
    return [layer for layer in spec["layer"] if layer["mark"]["type"] == mark]


def rows(spec: dict[str, Any], layer: dict[str, Any]) -> list[dict[str, Any]]:
    """The data rows a layer draws."""
    return spec["datasets"][layer["data"]["name"]]


STATUSES = {"visits": Status.ON_TRACK, "leads": Status.AT_RISK, "win_rate": Status.OFF_TRACK,
            "retention": Status.MATURING}
LINKS = {kpi_id: f"/team?period=2026-10#{kpi_id}" for kpi_id in ("visits", "leads", "win_rate", "retention")}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """The tree chart of the tiny catalog as a Vega-Lite spec."""
    return tree_chart(TINY, STATUSES, LINKS).to_dict()


def test_nodes_are_coloured_by_their_status(spec: dict[str, Any]):
    [boxes] = [layer for layer in layers_of(spec, "rect") if "href" in layer["encoding"]]
    fill = boxes["encoding"]["fill"]
    colour = dict(zip(fill["scale"]["domain"], fill["scale"]["range"], strict=True))
    shown = {row["kpi_id"]: colour[row["status"]] for row in rows(spec, boxes)}
    assert shown["visits"] == STATUS_LOOKS[Status.ON_TRACK].fill == "#1a7f37"
    assert shown["leads"] == "#bc4c00"
    assert shown["win_rate"] == "#cf222e"
    assert shown["retention"] == STATUS_LOOKS[Status.MATURING].fill
    assert shown["calls"] == STATUS_LOOKS[Status.NO_DATA].fill


def test_nodes_and_their_labels_link_to_the_kpi_on_its_team_page(spec: dict[str, Any]):
    boxes = [layer for layer in layers_of(spec, "rect") + layers_of(spec, "text") if "href" in layer["encoding"]]
    assert len(boxes) == 2
    for layer in boxes:
        links = {row["kpi_id"]: row["href"] for row in rows(spec, layer) if row["href"]}
        assert links == LINKS


def test_guard_links_are_dashed_and_drive_links_solid(spec: dict[str, Any]):
    [lines] = layers_of(spec, "line")
    dash = lines["encoding"]["strokeDash"]["scale"]
    style = dict(zip(dash["domain"], dash["range"], strict=True))
    assert style["drives"] == [1, 0]
    assert len(style["guards"]) == 2 and style["guards"][1] > 0
    kinds = {row["edge"]: row["kind"] for row in rows(spec, lines)}
    assert sorted(kinds.values()) == ["drives"] * 4 + ["guards"] * 2


def test_long_labels_wrap_to_two_lines_and_are_cut_beyond():
    label = "Share of the customers won in the period who got a service onboarding contact within 14 days"
    spec = tree_chart(catalog_of(entry("o", CUSTOMER), entry("h", "sales", ("o",), label=label)), {}, {}).to_dict()
    [text] = [layer for layer in layers_of(spec, "text") if "href" in layer["encoding"]]
    lines = [row["text"] for row in rows(spec, text) if row["kpi_id"] == "h"]
    assert len(lines) == 2 and lines[1].endswith("…")
    assert " ".join(lines).startswith("Share of the customers")
