"""Diagrams of the request machine, generated from `engine.table`, and of each endpoint's
circuit breaker, generated from `engine.health.BREAKER_TABLE` (pure: text in, text out).

`mermaid()` and `dot()` (Graphviz) draw the state chart: one edge per source and destination,
labelled with the triggers that take it; `markdown_table()` lists every row of the decision
table. `dot(taken)` also draws one request's path over the chart (`adapters.trace.path`).
`adapters.cli diagram` writes them to `diagrams/` (and renders the SVG when Graphviz is
installed), and a test fails when the files there are stale.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from engine.health import BREAKER_TABLE, CLOSED
from engine.table import DONE, FAILED, NON_TERMINAL, STATES, TRANSITIONS, Row

_EVERYWHERE = ("client_disconnected", "deadline_expired")


def _condition(row: Row) -> str:
    return " and ".join(row.guards)


def _everywhere(row: Row) -> bool:
    return row.trigger in _EVERYWHERE


def edges() -> dict[tuple[str, str], str]:
    """The chart's edges: (source, destination) -> the triggers that take it, `*` marking a
    trigger that takes it only when its guards hold. Internal transitions are loops; the
    transitions from every non-terminal state are left out (the charts note them once)."""
    merged: dict[tuple[str, str], dict[str, bool]] = {}  # trigger -> every row guarded
    for row in TRANSITIONS:
        if _everywhere(row):
            continue
        triggers = merged.setdefault((row.source, row.dest or row.source), {})
        triggers[row.trigger] = triggers.get(row.trigger, True) and bool(row.guards)
    return {
        edge: ", ".join(t + ("*" if guarded else "") for t, guarded in triggers.items())
        for edge, triggers in merged.items()
    }


def mermaid() -> str:
    """The state chart in Mermaid `stateDiagram-v2` syntax: one edge per source and
    destination, labelled with the triggers that take it (guards and their order are in the
    transition table, `markdown_table()`)."""
    lines = ["stateDiagram-v2", "    direction TB", f"    [*] --> {STATES[0].name}"]
    for (source, dest), label in edges().items():
        lines.append(f"    {source} --> {dest}: {label}")
    for state in STATES:
        if state.terminal:
            lines.append(f"    {state.name} --> [*]")
    lines.append(
        "    note right of Failed\n"
        f"        from every non-terminal state: {', '.join(_EVERYWHERE)}\n"
        "    end note"
    )
    lines.append("    note left of Selecting\n        * only when its guards hold\n    end note")
    return "\n".join(lines) + "\n"


def breaker_mermaid() -> str:
    """Each endpoint's circuit breaker as a Mermaid state chart (one edge per row, labelled
    with its trigger and guard)."""
    lines = ["stateDiagram-v2", "    direction LR", f"    [*] --> {CLOSED}"]
    for row in BREAKER_TABLE:
        guard = f" [{row.guard}]" if row.guard else ""
        lines.append(f"    {row.source} --> {row.dest}: {row.trigger}{guard}")
    return "\n".join(lines) + "\n"


def breaker_table() -> str:
    out = [
        "# The endpoint breaker",
        "",
        "Generated from `engine/health.py` by `make diagrams`; do not edit by hand. Each",
        "endpoint has one; rows for one state and trigger are tried in order.",
        "",
        "```mermaid",
        breaker_mermaid() + "```",
        "",
        "| from | trigger | guard | to | note |",
        "|---|---|---|---|---|",
    ]
    for row in BREAKER_TABLE:
        out.append(
            f"| `{row.source}` | `{row.trigger}` | {row.guard or '(otherwise)'} | "
            f"`{row.dest}` | {row.note} |"
        )
    return "\n".join(out) + "\n"


# Graphviz ---------------------------------------------------------------------------------------
_DOT_KEYWORDS = {"node", "edge", "graph", "digraph", "subgraph", "strict"}
Attrs = dict[str, str | float]
_TAKEN = "#1a73e8"  # a path's states and edges
_FADED: Attrs = {"color": "grey80", "fontcolor": "grey60"}  # the rest of the chart, under a path
_TERMINAL_FILL = {DONE: "#e6f4ea", FAILED: "#fce8e6"}


def _q(text: str) -> str:
    """`text` as a quoted DOT string (its line breaks become DOT's centred line breaks)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _id(name: str) -> str:
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and name.lower() not in _DOT_KEYWORDS
    return name if plain else _q(name)


def _statement(subject: str, attrs: Attrs) -> str:
    listed = ", ".join(f"{k}={_q(v) if isinstance(v, str) else v}" for k, v in attrs.items())
    return f"    {subject} [{listed}];" if listed else f"    {subject};"


def _wrap(label: str, width: int = 36) -> str:
    """A list of triggers broken after its commas into lines of about `width` characters."""
    lines: list[str] = []
    for part in label.split(", "):
        if lines and len(lines[-1]) + 2 + len(part) <= width:
            lines[-1] += ", " + part
        else:
            lines.append(part)
    return ",\n".join(lines)


def dot(taken: Mapping[tuple[str, str], Sequence[str]] | None = None, *, caption: str = "") -> str:
    """The state chart in Graphviz DOT, left to right: the edges and labels of `mermaid()`,
    terminal states outlined twice, filled and last, the transitions from every non-terminal
    state as a note.

    With `taken` ((source, destination) -> the labels of the times a path took that edge, such
    as `["1. account_granted", "7. account_granted"]`), it draws that path over the chart: its
    states and edges bold and coloured, those edges labelled with the path's labels; every
    other state and edge grey. `caption` titles the graph."""
    path = dict(taken) if taken is not None else None
    faded = _FADED if path is not None else {}
    visited = {state for edge in path or {} for state in edge}
    title = f", label={_q(caption)}, labelloc=t, fontsize=14" if caption else ""
    out = [
        "// The request machine, generated from engine/table.py: do not edit by hand.",
        "digraph request_machine {",
        f'    graph [rankdir=LR, fontname="Helvetica", nodesep=0.45, ranksep=0.55{title}];',
        '    node [shape=box, style=rounded, fontname="Helvetica", fontsize=12];',
        '    edge [fontname="Helvetica", fontsize=9];',
        "",
        _statement("_start", {"shape": "point", "width": 0.15, "label": ""}),
    ]
    for state in STATES:
        attrs: Attrs = {"tooltip": state.doc}
        if state.terminal:
            attrs |= {"peripheries": 2, "style": "rounded,filled"}
            attrs["fillcolor"] = _TERMINAL_FILL.get(state.name, "grey92")
        if state.name in visited:
            attrs |= {"color": _TAKEN, "penwidth": 2}
        elif path is not None:
            attrs |= faded | ({"fillcolor": "grey97"} if state.terminal else {})
        out.append(_statement(_id(state.name), attrs))
    note: Attrs = {"shape": "note", "fontsize": 10, **faded}
    out += [
        _statement(
            "_everywhere",
            {"label": f"from every non-terminal state:\n{', '.join(_EVERYWHERE)}", **note},
        ),
        _statement("_guarded", {"label": "* only when its guards hold", **note}),
        "    { rank=sink; " + " ".join(f"{_id(s.name)};" for s in STATES if s.terminal) + " }",
        "",
        _statement(
            f"_start -> {_id(STATES[0].name)}",
            {"color": _TAKEN, "penwidth": 2} if path is not None else {},
        ),
    ]
    chart = edges()
    for edge in [*chart, *(e for e in path or {} if e not in chart)]:
        if path is not None and edge in path:
            attrs = {"label": "\n".join(path[edge]), "color": _TAKEN, "fontcolor": _TAKEN}
            attrs["penwidth"] = 2.2
        else:
            attrs = {"label": _wrap(chart[edge]), **faded}
        out.append(_statement(f"{_id(edge[0])} -> {_id(edge[1])}", attrs))
    out += [
        _statement(f"_everywhere -> {FAILED}", {"style": "dashed", "arrowhead": "none", **faded}),
        "}",
    ]
    return "\n".join(out) + "\n"


def markdown_table() -> str:
    """Every row of the transition table, grouped by source state, in decision order."""
    out = [
        "# The request machine's transition table",
        "",
        "Generated from `engine/table.py` by `make diagrams`; do not edit by hand. Rows for one",
        "state and trigger form a decision list: the first row whose guards hold is taken.",
        "",
        "## States",
        "",
        "| state | the request is... | on enter | on exit |",
        "|---|---|---|---|",
    ]
    for s in STATES:
        out.append(
            f"| `{s.name}` | {s.doc} | {', '.join(s.on_enter) or '-'} | "
            f"{', '.join(s.on_exit) or '-'} |"
        )
    out += ["", "## Transitions", ""]
    current = None
    for row in TRANSITIONS:
        if _everywhere(row):
            continue
        if row.source != current:
            current = row.source
            out += [
                "",
                f"### {current}",
                "",
                "| trigger | guards | to | action | note |",
                "|---|---|---|---|---|",
            ]
        out.append(
            f"| `{row.trigger}` | {_condition(row) or '(otherwise)'} | "
            f"{row.dest or '(stays)'} | {row.action or '-'} | {row.note} |"
        )
    everywhere = [r for r in TRANSITIONS if _everywhere(r)]
    out += [
        "",
        "### Every non-terminal state",
        "",
        "| trigger | to | action | note |",
        "|---|---|---|---|",
    ]
    seen = set()
    for row in everywhere:
        if row.trigger in seen:
            continue
        seen.add(row.trigger)
        out.append(f"| `{row.trigger}` | {row.dest} | {row.action} | {row.note} |")
    out += ["", f"Non-terminal states: {', '.join(NON_TERMINAL)}.", ""]
    return "\n".join(out)


README_START = "<!-- request-machine chart: generated by `make diagrams`, do not edit -->"
README_END = "<!-- end of generated chart -->"


def embed_in_readme(readme: str) -> str:
    """`readme` with the chart between its markers replaced by the current one."""
    start, end = readme.find(README_START), readme.find(README_END)
    if start < 0 or end < start:
        return readme
    block = (
        f"{README_START}\n```mermaid\n{mermaid()}```\n\n"
        "Each endpoint's circuit breaker ([diagrams/endpoint-breaker.md]"
        "(diagrams/endpoint-breaker.md)):\n\n"
        f"```mermaid\n{breaker_mermaid()}```\n"
    )
    return readme[:start] + block + readme[end:]


DOT_FILE = "request-machine.dot"


def files() -> dict[str, str]:
    """The generated files of `diagrams/`, by name."""
    chart = mermaid()
    return {
        "request-machine.mmd": chart,
        DOT_FILE: dot(),
        "request-machine.md": "# The request machine\n\n```mermaid\n"
        + chart
        + "```\n\n"
        + "The full decision table: [transitions.md](transitions.md).\n",
        "transitions.md": markdown_table(),
        "endpoint-breaker.md": breaker_table(),
    }
