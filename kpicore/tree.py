"""The KPI tree: team KPIs feeding the shared customer outcomes, laid out in layers and drawn with Altair."""
from __future__ import annotations

import itertools
import textwrap
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import altair as alt
import pandas as pd

from kpicore.catalog import CUSTOMER, CUSTOMER_LABEL, Catalog, Kpi
from kpicore.display import STATUS_LOOKS
from kpicore.scorecard import Status

DARK_TEXT = "#24292f"  # on the light "no data" fill; white on the others
SWEEPS = 6  # barycenter sweeps (down and up) when ordering the layers
PASSES = 4  # sweeps when placing nodes near their neighbours
BAND_GAP = 0.6  # rows between two team bands
CUSTOMER_SPREAD = 0.8  # share of the even spacing the customer outcomes keep at least
OUTCOMES_TITLE = "Shared customer outcomes"


class Link(StrEnum):
    """How one KPI relates to another in the tree."""

    DRIVES = "drives"
    GUARDS = "guards"


LINK_COLORS = {Link.DRIVES: "#8c959f", Link.GUARDS: "#8250df"}
LINK_DASHES = {Link.DRIVES: [1, 0], Link.GUARDS: [5, 3]}
LINK_LEGEND = {Link.DRIVES: "drives (feeds into)", Link.GUARDS: "guards (counterweight)"}


@dataclass(frozen=True)
class Node:
    """A scored KPI in the tree: x is its layer (column), y its row; two nodes are at least one unit apart."""

    kpi_id: str
    label: str
    team: str
    x: float
    y: float
    layer: int


@dataclass(frozen=True)
class Edge:
    """A link from one KPI to another, through `bends` (x, y) where a drive link crosses a layer."""

    source: str
    target: str
    kind: Link
    bends: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Band:
    """The rows (first and last, inclusive) holding one team's KPIs."""

    team: str
    label: str
    top: float
    bottom: float


@dataclass(frozen=True)
class Layout:
    """Nodes, edges and team bands of the KPI tree, in layer (x) and row (y) units."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    bands: tuple[Band, ...] = ()

    @property
    def columns(self) -> int:
        """How many layers the tree has."""
        return max((n.layer for n in self.nodes), default=0) + 1

    @property
    def extent(self) -> tuple[float, float]:
        """The first and last row used by a node or a band."""
        ys = [n.y for n in self.nodes] + [b.top for b in self.bands] + [b.bottom for b in self.bands]
        return (min(ys), max(ys)) if ys else (0.0, 0.0)


def _depths(kpis: dict[str, Kpi]) -> dict[str, int]:
    """Longest drive path from each KPI to a customer outcome (outcomes 0, other KPIs at least 1)."""
    depth: dict[str, int] = {}

    def visit(kpi_id: str) -> int:
        if kpi_id not in depth:
            kpi = kpis[kpi_id]
            below = (visit(t) for t in kpi.drives if t in kpis)
            depth[kpi_id] = 0 if kpi.team == CUSTOMER else 1 + max(below, default=0)
        return depth[kpi_id]

    for kpi_id in kpis:
        visit(kpi_id)
    return depth


def _crossings(layers: list[list[str]], segments: list[tuple[str, str]]) -> int:
    """Edge crossings between neighbouring layers for the given order."""
    where = {node: (index, rank) for index, layer in enumerate(layers) for rank, node in enumerate(layer)}
    between: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for source, target in segments:
        (left, a), (right, b) = where[source], where[target]
        if right == left + 1:
            between[left].append((a, b))
    return sum(1 for pairs in between.values() for i, (a, b) in enumerate(pairs) for c, d in pairs[i + 1:]
               if (a - c) * (b - d) < 0)


def _by_barycenter(nodes: list[str], reference: list[str], neighbours: dict[str, list[str]],
                   group: dict[str, int]) -> list[str]:
    """The layer sorted by team, then by the mean position of its neighbours in the reference layer."""
    seen = {node: (rank + 0.5) / len(reference) for rank, node in enumerate(reference)}
    own = {node: (rank + 0.5) / len(nodes) for rank, node in enumerate(nodes)}

    def key(node: str) -> tuple[int, float]:
        near = [seen[m] for m in neighbours[node] if m in seen]
        return group[node], sum(near) / len(near) if near else own[node]

    return sorted(nodes, key=key)


def _order(layers: list[list[str]], segments: list[tuple[str, str]], group: dict[str, int]) -> list[list[str]]:
    """Layers reordered by barycenter sweeps within team groups; the order with the fewest crossings wins."""
    before: dict[str, list[str]] = defaultdict(list)
    after: dict[str, list[str]] = defaultdict(list)
    for source, target in segments:
        before[target].append(source)
        after[source].append(target)
    current = [list(layer) for layer in layers]
    best, fewest = [list(layer) for layer in current], _crossings(current, segments)
    for _ in range(SWEEPS):
        for index in range(1, len(current)):
            current[index] = _by_barycenter(current[index], current[index - 1], before, group)
        for index in range(len(current) - 2, -1, -1):
            current[index] = _by_barycenter(current[index], current[index + 1], after, group)
        crossings = _crossings(current, segments)
        if crossings < fewest:
            best, fewest = [list(layer) for layer in current], crossings
    return best


def _spread(desired: list[float], gap: float, low: float, high: float) -> list[float]:
    """Positions nearest `desired` (least squares) that keep their order, lie `gap` apart and within [low, high]."""
    blocks: list[list[float]] = []  # pooled [sum, count] of desired[i] - i * gap (isotonic regression)
    for index, value in enumerate(desired):
        blocks.append([value - index * gap, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    fitted = [total / count for total, count in blocks for _ in range(int(count))]
    ceiling = max(low, high - (len(desired) - 1) * gap)
    return [min(max(value, low), ceiling) + index * gap for index, value in enumerate(fitted)]


def layout(catalog: Catalog) -> Layout:
    """Layers of the scored KPIs by their longest drive path, shared customer outcomes in the last layer."""
    kpis = {k.id: k for k in catalog.kpis if not k.is_measure}
    depth = _depths(kpis)
    last = max(depth.values(), default=0)
    layer_of = {kpi_id: last - d for kpi_id, d in depth.items()}
    team_of: dict[str, str] = {kpi_id: kpi.team or "" for kpi_id, kpi in kpis.items()}
    chains: dict[tuple[str, str], list[str]] = {}
    for kpi in kpis.values():
        for target in (t for t in kpi.drives if t in kpis):
            chain = [kpi.id]
            for layer in range(layer_of[kpi.id] + 1, layer_of[target]):
                virtual = f"{kpi.id}>{target}@{layer}"  # a bend of a drive link that skips a layer
                layer_of[virtual], team_of[virtual] = layer, team_of[kpi.id]
                chain.append(virtual)
            chains[(kpi.id, target)] = [*chain, target]
    segments = [pair for chain in chains.values() for pair in zip(chain, chain[1:], strict=False)]

    rank = {team.id: index for index, team in enumerate(catalog.teams)}
    group = {node: rank.get(team, len(rank)) for node, team in team_of.items()}
    layers: list[list[str]] = [[] for _ in range(last + 1)]
    for node in sorted(layer_of, key=lambda n: group[n]):
        layers[layer_of[node]].append(node)
    layers = _order(layers, segments, group)
    y, bands = _place(layers, segments, team_of, catalog)

    nodes = tuple(sorted((Node(k.id, k.label, k.team or "", float(layer_of[k.id]), y[k.id], layer_of[k.id])
                          for k in kpis.values()), key=lambda n: (n.layer, n.y)))
    drives = [Edge(s, t, Link.DRIVES, tuple((float(layer_of[v]), y[v]) for v in chain[1:-1]))
              for (s, t), chain in chains.items()]
    guards = [Edge(c, k.id, Link.GUARDS) for k in kpis.values() for c in k.counterweights if c in kpis]
    return Layout(nodes, tuple(drives + guards), bands)


def _place(layers: list[list[str]], segments: list[tuple[str, str]], team_of: dict[str, str],
           catalog: Catalog) -> tuple[dict[str, float], tuple[Band, ...]]:
    """Rows of every node: each team in its own band, customer outcomes over the full height, near neighbours."""
    counts: dict[str, int] = defaultdict(int)
    for layer in layers:
        for team in {team_of[n] for n in layer} - {CUSTOMER}:
            counts[team] = max(counts[team], sum(1 for n in layer if team_of[n] == team))
    teams = [t.id for t in catalog.teams if t.id in counts] + sorted(set(counts) - {t.id for t in catalog.teams})
    team_rows = sum(counts.values()) + BAND_GAP * max(len(teams) - 1, 0)
    outcomes = sum(1 for layer in layers for n in layer if team_of[n] == CUSTOMER)
    rows = max(team_rows, outcomes, 1.0)
    top = (rows - team_rows) / 2
    even = (rows - 1) / (outcomes - 1) if outcomes > 1 else 1.0
    ranges = {CUSTOMER: (0.0, rows - 1, max(1.0, CUSTOMER_SPREAD * even))}  # lowest row, highest row, gap
    bands = []
    for team in teams:
        ranges[team] = (top, top + counts[team] - 1, 1.0)
        label = next((t.label for t in catalog.teams if t.id == team), team)
        bands.append(Band(team, label, top, top + counts[team] - 1))
        top += counts[team] + BAND_GAP

    neighbours: dict[str, list[str]] = defaultdict(list)
    for source, target in segments:
        neighbours[source].append(target)
        neighbours[target].append(source)
    groups = [list(members) for layer in layers for _, members in itertools.groupby(layer, key=team_of.__getitem__)]
    y: dict[str, float] = {}
    for members in groups:
        low, high, gap = ranges[team_of[members[0]]]
        step = (high - low) / (len(members) - 1) if len(members) > 1 else 0.0
        y.update({n: low + index * step if step else (low + high) / 2 for index, n in enumerate(members)})
    for sweep in range(PASSES):
        for members in groups if sweep % 2 == 0 else reversed(groups):
            low, high, gap = ranges[team_of[members[0]]]
            desired = [sum(y[m] for m in neighbours[n]) / len(neighbours[n]) if neighbours[n] else y[n]
                       for n in members]
            y.update(zip(members, _spread(desired, gap, low, high), strict=True))
    return y, tuple(bands)


@dataclass(frozen=True)
class _Canvas:
    """Maps layout units to pixels."""

    width: int
    height: int
    columns: int
    first_row: float
    last_row: float
    outcome_rows: float = 1.0  # rows between two customer outcomes: they may be taller than team KPIs
    margin: float = 96.0
    header: float = 30.0

    @classmethod
    def of(cls, plan: Layout, width: int, height: int) -> _Canvas:
        """The canvas that fits the layout into width x height pixels."""
        rows = sorted(n.y for n in plan.nodes if n.team == CUSTOMER)
        spacing = min((b - a for a, b in itertools.pairwise(rows)), default=1.0)
        return cls(width, height, plan.columns, *plan.extent, min(spacing, 1.6))

    @property
    def pitch_x(self) -> float:
        """Pixels from one layer to the next."""
        return (self.width - self.margin) / self.columns

    @property
    def pitch_y(self) -> float:
        """Pixels from one row to the next."""
        return (self.height - self.header - 6) / (self.last_row - self.first_row + 1)

    @property
    def box_w(self) -> float:
        """Width of a node box; the rest of the layer's width carries the links."""
        return min(self.pitch_x * 0.66, 300.0)

    def box_h(self, team: str) -> float:
        """Height of a node box: customer outcomes have more room and may be taller."""
        return min(self.pitch_y * (self.outcome_rows if team == CUSTOMER else 1.0) * 0.76, 56.0)

    @property
    def font(self) -> float:
        """Font size of the node labels."""
        return max(11.0, min(14.0, self.pitch_y * 0.27))

    @property
    def line_height(self) -> float:
        """Distance between the two lines of a wrapped label."""
        return self.font * 1.1

    def px(self, x: float) -> float:
        """Pixel x of a layer's centre."""
        return self.margin + (x + 0.5) * self.pitch_x

    def py(self, y: float) -> float:
        """Pixel y of a row's centre."""
        return self.header + (y - self.first_row + 0.5) * self.pitch_y

    def wrap(self, label: str, team: str) -> list[str]:
        """The label in at most two lines that fit the node box, cut with an ellipsis if needed."""
        per_line = max(4, int((self.box_w - 10) / (self.font * 0.6)))
        lines = 2 if self.box_h(team) >= self.line_height * 2 + 4 else 1
        if len(label) <= per_line:
            return [label]
        for width in range(min(per_line, -(-len(label) // lines)), per_line + 1):  # lines of even length
            wrapped = textwrap.wrap(label, width, break_on_hyphens=False)
            if len(wrapped) <= lines:
                return wrapped
        rest = " ".join(wrapped[lines - 1:])
        if len(rest) > per_line:
            cut = rest[:per_line - 1]
            rest = (cut.rsplit(" ", 1)[0] if cut.rfind(" ") > per_line // 2 else cut).rstrip() + "…"
        return [*wrapped[:lines - 1], rest]


def _bezier(p0: tuple[float, float], c1: tuple[float, float], c2: tuple[float, float], p3: tuple[float, float],
            steps: int = 16) -> list[tuple[float, float]]:
    """Points along a cubic Bézier curve."""
    points = []
    for i in range(steps + 1):
        t = i / steps
        a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3
        points.append((a * p0[0] + b * c1[0] + c * c2[0] + d * p3[0], a * p0[1] + b * c1[1] + c * c2[1] + d * p3[1]))
    return points


def _sides(edge: Edge, layer: dict[str, float]) -> tuple[int, int]:
    """Which side (-1 left, +1 right) of its source and of its target an edge leaves and enters."""
    source, target = layer[edge.source], layer[edge.target]
    if target > source:
        return 1, -1
    if target < source:
        return -1, 1
    return (1, 1) if edge.kind is Link.DRIVES else (-1, -1)


def _edge_frames(plan: Layout, canvas: _Canvas, label: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sampled paths of the edges and their arrow heads, in pixels; ends spread over the node side they touch."""
    by_id = {n.kpi_id: n for n in plan.nodes}
    layer = {n.kpi_id: n.x for n in plan.nodes}
    ends: dict[tuple[str, int], list[tuple[float, int, int]]] = defaultdict(list)
    for index, edge in enumerate(plan.edges):
        out, into = _sides(edge, layer)
        source, target = by_id[edge.source], by_id[edge.target]
        route = [(source.x, source.y), *edge.bends, (target.x, target.y)]
        ends[(edge.source, out)].append((route[1][1], index, 0))
        ends[(edge.target, into)].append((route[-2][1], index, 1))
    offset: dict[tuple[int, int], float] = {}
    for (node, _), members in ends.items():
        step = min(canvas.box_h(by_id[node].team) * 0.6 / max(len(members) - 1, 1), 8.0)
        for rank, (_, index, end) in enumerate(sorted(members)):
            offset[(index, end)] = (rank - (len(members) - 1) / 2) * step

    paths, heads = [], []
    bulge = max(16.0, (canvas.pitch_x - canvas.box_w) * 0.4)
    for index, edge in enumerate(plan.edges):
        out, into = _sides(edge, layer)
        source, target = by_id[edge.source], by_id[edge.target]
        start = (canvas.px(source.x) + out * canvas.box_w / 2, canvas.py(source.y) + offset[(index, 0)])
        end = (canvas.px(target.x) + into * canvas.box_w / 2, canvas.py(target.y) + offset[(index, 1)])
        stops = [start]
        for x, y in edge.bends:
            stops += [(canvas.px(x) - canvas.box_w / 2, canvas.py(y)), (canvas.px(x) + canvas.box_w / 2, canvas.py(y))]
        stops.append(end)
        points: list[tuple[float, float]] = []
        pieces = list(zip(stops[::2], stops[1::2], strict=True))  # curves between node sides and bends
        for rank, (a, b) in enumerate(pieces):
            lead, tail = (out if rank == 0 else 1), (into if rank == len(pieces) - 1 else -1)
            reach = max(abs(b[0] - a[0]) / 2, min(bulge, 12 + abs(b[1] - a[1]) * 0.2))
            points += _bezier(a, (a[0] + lead * reach, a[1]), (b[0] + tail * reach, b[1]), b)
        about = f"{label[edge.source]} {'drives' if edge.kind is Link.DRIVES else 'guards'} {label[edge.target]}"
        paths += [{"edge": index, "step": step, "x": x, "y": y, "kind": edge.kind.value, "about": about}
                  for step, (x, y) in enumerate(points)]
        heads.append({"x": end[0] + into * 4, "y": end[1], "angle": 0 if into < 0 else 180,
                      "color": LINK_COLORS[edge.kind], "about": about})
    return pd.DataFrame(paths), pd.DataFrame(heads)


def tree_chart(catalog: Catalog, statuses: dict[str, Status], links: dict[str, str], width: int = 1100,
               height: int = 640) -> alt.LayerChart:
    """The KPI tree: nodes coloured by status and linked to their team page, drive and counterweight links."""
    plan = layout(catalog)
    canvas = _Canvas.of(plan, width, height)
    label = {n.kpi_id: n.label for n in plan.nodes}
    team_label = {t.id: t.label for t in catalog.teams} | {CUSTOMER: CUSTOMER_LABEL}
    nodes = pd.DataFrame([{
        "kpi_id": n.kpi_id, "label": n.label, "team_id": n.team, "team": team_label.get(n.team, n.team),
        "status": statuses.get(n.kpi_id, Status.NO_DATA).value, "href": links.get(n.kpi_id),
        "cx": canvas.px(n.x), "cy": canvas.py(n.y),
        "x0": canvas.px(n.x) - canvas.box_w / 2, "x1": canvas.px(n.x) + canvas.box_w / 2,
        "y0": canvas.py(n.y) - canvas.box_h(n.team) / 2, "y1": canvas.py(n.y) + canvas.box_h(n.team) / 2,
    } for n in plan.nodes])
    lines = pd.DataFrame([
        {**row, "text": text, "cy": row["cy"] + (rank - (len(wrapped) - 1) / 2) * canvas.line_height}
        for row in nodes.to_dict("records")
        for wrapped in [canvas.wrap(row["label"], row["team_id"])] for rank, text in enumerate(wrapped)
    ])
    paths, heads = _edge_frames(plan, canvas, label)

    def x(field: str) -> alt.X:
        return alt.X(field, type="quantitative", scale=alt.Scale(domain=[0, width], nice=False, zero=False), axis=None)

    def y(field: str) -> alt.Y:
        return alt.Y(field, type="quantitative", scale=alt.Scale(domain=[0, height], nice=False, zero=False,
                                                                 reverse=True), axis=None)

    kinds = [kind.value for kind in Link]
    stroke = alt.Stroke("kind:N", scale=alt.Scale(domain=kinds, range=[LINK_COLORS[k] for k in Link]),
                        legend=alt.Legend(title="Link", orient="top", labelExpr=_legend_labels()))
    dash = alt.StrokeDash("kind:N", scale=alt.Scale(domain=kinds, range=[LINK_DASHES[k] for k in Link]),
                          legend=alt.Legend(title="Link", orient="top", labelExpr=_legend_labels()))
    fills = alt.Scale(domain=[s.value for s in Status], range=[STATUS_LOOKS[s].fill for s in Status])
    fill = alt.Fill("status:N", scale=fills,
                    legend=alt.Legend(title="Status", orient="top", symbolType="square"))
    link_tip = [alt.Tooltip("about:N", title="Link")]
    node_tip = [alt.Tooltip("label:N", title="KPI"), alt.Tooltip("team:N", title="Team"),
                alt.Tooltip("status:N", title="Status")]

    layers: list[alt.Chart] = [*_backdrop(plan, canvas, x, y)]
    if not paths.empty:
        layers += [
            alt.Chart(paths).mark_line(strokeWidth=1.6, opacity=0.85).encode(
                x=x("x"), y=y("y"), detail="edge:N", order="step:Q", stroke=stroke, strokeDash=dash, tooltip=link_tip),
            alt.Chart(heads).mark_point(shape="triangle-right", filled=True, size=45, opacity=1).encode(
                x=x("x"), y=y("y"), angle=alt.Angle("angle:Q", scale=None), color=alt.Color("color:N", scale=None),
                tooltip=link_tip),
        ]
    layers += [
        alt.Chart(nodes).mark_rect(cornerRadius=7, stroke="white", strokeWidth=1.5, cursor="pointer").encode(
            x=x("x0"), x2="x1", y=y("y0"), y2="y1", fill=fill, href="href:N", tooltip=node_tip),
        alt.Chart(lines).mark_text(fontSize=canvas.font, fontWeight=600, cursor="pointer").encode(
            x=x("cx"), y=y("cy"), text="text:N", href="href:N", tooltip=node_tip,
            color=alt.condition(alt.datum.status == Status.NO_DATA.value, alt.value(DARK_TEXT), alt.value("white"))),
    ]
    return (alt.layer(*layers).properties(width=width, height=height).configure_view(strokeWidth=0)
            .configure_legend(labelFontSize=canvas.font - 1, titleFontSize=canvas.font - 1, symbolSize=canvas.font * 8))


def _legend_labels() -> str:
    """Vega expression naming the link kinds in the legend."""
    return " : ".join(f"datum.label == '{kind.value}' ? '{LINK_LEGEND[kind]}'" for kind in Link) + " : datum.label"


def _backdrop(plan: Layout, canvas: _Canvas, x: Callable[[str], alt.X], y: Callable[[str], alt.Y]) -> list[alt.Chart]:
    """Light team bands with their names, and the column of shared customer outcomes with its title."""
    outcomes_left = canvas.px(plan.columns - 1) - canvas.pitch_x / 2
    has_outcomes = any(n.team == CUSTOMER for n in plan.nodes)
    right = outcomes_left - 6 if has_outcomes else canvas.width
    font = canvas.font + 1
    bands = pd.DataFrame([{
        "x0": 0.0, "x1": right, "y0": canvas.py(b.top - 0.5), "y1": canvas.py(b.bottom + 0.5),
        "text": "\n".join(textwrap.wrap(b.label, 12)), "tx": 8.0, "ty": canvas.py(b.top - 0.5) + 8,
    } for b in plan.bands])
    charts: list[alt.Chart] = []
    if not bands.empty:
        charts += [
            alt.Chart(bands).mark_rect(color="#f6f8fa", cornerRadius=6).encode(x=x("x0"), x2="x1", y=y("y0"), y2="y1"),
            alt.Chart(bands).mark_text(align="left", baseline="top", fontSize=font, fontWeight="bold", color="#57606a",
                                       lineBreak="\n").encode(x=x("tx"), y=y("ty"), text="text:N"),
        ]
    if has_outcomes:
        column = pd.DataFrame([{"x0": outcomes_left, "x1": float(canvas.width), "y0": 0.0, "y1": float(canvas.height),
                                "tx": canvas.px(plan.columns - 1), "ty": canvas.header / 2, "text": OUTCOMES_TITLE}])
        charts += [
            alt.Chart(column).mark_rect(color="#eef4fb", cornerRadius=6).encode(x=x("x0"), x2="x1", y=y("y0"), y2="y1"),
            alt.Chart(column).mark_text(fontSize=font, fontWeight="bold", color="#0a3069").encode(
                x=x("tx"), y=y("ty"), text="text:N"),
        ]
    return charts
