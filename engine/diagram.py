"""Diagrams of the request machine, generated from `engine.table` (pure: text in, text out).

`mermaid()` draws the state chart (one edge per source, destination and trigger, guards listed);
`markdown_table()` lists every row of the decision table. `adapters.cli diagram` writes them to
`diagrams/`, and a test fails when the files there are stale.
"""

from __future__ import annotations

from engine.table import NON_TERMINAL, STATES, TRANSITIONS, Row

_EVERYWHERE = ("client_disconnected", "deadline_expired")


def _condition(row: Row) -> str:
    parts = list(row.guards) + [f"not {u}" for u in row.unless]
    return " and ".join(parts)


def _everywhere(row: Row) -> bool:
    return row.trigger in _EVERYWHERE


def mermaid() -> str:
    """The state chart in Mermaid `stateDiagram-v2` syntax."""
    lines = ["stateDiagram-v2", "    direction TB", f"    [*] --> {STATES[0].name}"]
    edges: dict[tuple[str, str, str], list[str]] = {}
    for row in TRANSITIONS:
        if _everywhere(row):
            continue
        dest = row.dest or row.source
        edges.setdefault((row.source, dest, row.trigger), []).append(_condition(row))
    for (source, dest, trigger), conditions in edges.items():
        label = trigger
        guarded = list(dict.fromkeys(c for c in conditions if c))
        if all(conditions):
            label += " [" + " | ".join(guarded) + "]"
        lines.append(f"    {source} --> {dest}: {label}")
    for state in STATES:
        if state.terminal:
            lines.append(f"    {state.name} --> [*]")
    lines.append(
        "    note right of Failed\n"
        f"        from every non-terminal state: {', '.join(_EVERYWHERE)}\n"
        "    end note"
    )
    return "\n".join(lines) + "\n"


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


def files() -> dict[str, str]:
    """The generated files of `diagrams/`, by name."""
    chart = mermaid()
    return {
        "request-machine.mmd": chart,
        "request-machine.md": "# The request machine\n\n```mermaid\n"
        + chart
        + "```\n\n"
        + "The full decision table: [transitions.md](transitions.md).\n",
        "transitions.md": markdown_table(),
    }
