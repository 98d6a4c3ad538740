"""The request machine as an SVG, generated from `engine.table` and `engine.diagram.edges()`:
one box per state (`<g data-state="NAME">`, where the page shows the requests in it) and one
arrow per (source, destination) edge, its triggers in a tooltip. The layout is a fixed grid
with Selecting, the hub, in the middle and the happy path to its right; every state of the
table has a cell of its own (a test checks)."""

from __future__ import annotations

import math
from functools import cache
from html import escape

from engine.diagram import edges
from engine.table import STATES

LAYOUT: dict[str, tuple[int, int]] = {
    "CapacityWait": (0, 0),
    "RateLimitWait": (0, 2),
    "Backoff": (1, 0),
    "Selecting": (1, 1),
    "Fallback": (1, 2),
    "Fetching": (2, 1),
    "Switching": (2, 2),
    "Done": (3, 0),
    "Streaming": (3, 1),
    "Failed": (3, 2),
}
"""(column, row) of each state."""

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 150, 52, 70, 60, 16
BEND = 18.0  # how far an arrow bows out of the straight line, so opposite arrows part


def _center(state: str) -> tuple[float, float]:
    col, row = LAYOUT[state]
    return (
        MARGIN + col * (BOX_W + GAP_X) + BOX_W / 2,
        MARGIN + row * (BOX_H + GAP_Y) + BOX_H / 2,
    )


def _on_border(center: tuple[float, float], toward: tuple[float, float]) -> tuple[float, float]:
    """Where the line from a box's center toward a point leaves the box."""
    dx, dy = toward[0] - center[0], toward[1] - center[1]
    if dx == 0 and dy == 0:
        return center
    scale = min(
        (BOX_W / 2) / abs(dx) if dx else math.inf,
        (BOX_H / 2) / abs(dy) if dy else math.inf,
    )
    return center[0] + dx * scale, center[1] + dy * scale


def _arrow(source: str, dest: str, label: str) -> str:
    (x1, y1), (x2, y2) = _center(source), _center(dest)
    length = math.hypot(x2 - x1, y2 - y1)
    # bow to the left of the direction of travel: A->B and B->A take different sides
    cx = (x1 + x2) / 2 + BEND * (y1 - y2) / length
    cy = (y1 + y2) / 2 + BEND * (x2 - x1) / length
    sx, sy = _on_border((x1, y1), (cx, cy))
    ex, ey = _on_border((x2, y2), (cx, cy))
    return (
        f'<path class="edge" data-edge="{source}>{dest}" marker-end="url(#arrow)" '
        f'd="M{sx:.1f},{sy:.1f} Q{cx:.1f},{cy:.1f} {ex:.1f},{ey:.1f}">'
        f"<title>{escape(source)} → {escape(dest)}: {escape(label)}</title></path>"
    )


def _box(name: str, description: str) -> str:
    x, y = _center(name)
    left, top = x - BOX_W / 2, y - BOX_H / 2
    return (
        f'<g class="state" data-state="{name}"><title>{escape(description)}</title>'
        f'<rect x="{left:.0f}" y="{top:.0f}" width="{BOX_W}" height="{BOX_H}" rx="8"/>'
        f'<text class="name" x="{x:.0f}" y="{y - 6:.0f}">{name}</text>'
        f'<text class="count" x="{x:.0f}" y="{y + 14:.0f}"></text></g>'
    )


@cache
def svg() -> str:
    """The chart (the same for every page: the table is fixed at import)."""
    cols = 1 + max(col for col, _ in LAYOUT.values())
    rows = 1 + max(row for _, row in LAYOUT.values())
    width = 2 * MARGIN + cols * BOX_W + (cols - 1) * GAP_X
    height = 2 * MARGIN + rows * BOX_H + (rows - 1) * GAP_Y
    arrows = [_arrow(s, d, label) for (s, d), label in edges().items() if s != d]
    boxes = [_box(state.name, state.doc) for state in STATES]
    return (
        f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="the request machine">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker>'
        "</defs>" + "".join(arrows) + "".join(boxes) + "</svg>"
    )
