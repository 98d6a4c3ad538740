"""Path diagrams: one request's way through the state chart, from a trace or a replay.

`path_of(trace, request)` reads the request's `step` records in order (and the `StartTimer`
effects of the steps into a wait state: how long it was to wait there). `mermaid(path)` draws
only the path: the states it visited and its edges, one per step, numbered in order (Mermaid's
state diagrams cannot style single edges, so the untaken part of the chart could not be shown
faintly: it would look taken). `dot(path)` draws the whole chart with the path over it (see
`engine.diagram.dot`): taken edges bold, coloured and numbered, the rest grey. Both are pure.

`render_svg()` runs Graphviz's `dot` (when it is installed) to turn DOT into SVG; `svg_stamp()`
is the comment an SVG carries naming the DOT text it was rendered from, so that a rendered
chart can be checked against its source without comparing SVG bytes, which differ between
Graphviz versions.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass, replace
from typing import Any

from adapters.trace.format import Step, Trace
from engine import diagram
from engine.table import STATES

DOT_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class PathStep:
    """One numbered edge of a path: a step, or a run of identical loops (relayed content)."""

    number: int
    at: float  # seconds after the request's arrival
    source: str
    trigger: str
    dest: str
    count: int = 1
    wait: float | None = None  # the timer armed on entering `dest`, in seconds

    @property
    def label(self) -> str:
        times = f" ×{self.count}" if self.count > 1 else ""
        wait = f" (wait {_duration(self.wait)})" if self.wait is not None else ""
        return f"{self.trigger}{times}{wait}"


@dataclass(frozen=True, slots=True)
class RequestPath:
    request: str
    steps: tuple[PathStep, ...]
    outcome: str | None  # "ok", "504 timeout_error"...; None: the trace ends before one
    duration: float | None  # seconds from arrival to the outcome

    @property
    def summary(self) -> str:
        if self.outcome is None:
            return f"{self.request}: no outcome (the trace ends here)"
        return f"{self.request}: {self.outcome} after {self.duration or 0.0:.3f} s"


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds >= 0.95 else f"{seconds * 1000:.0f} ms"


def request_ids(trace: Trace) -> list[str]:
    """The trace's requests in order of arrival."""
    ids = [record.request for record in trace.of("arrival")]
    ids += [record.request for record in trace.of("step")]
    return list(dict.fromkeys(ids))


def path_of(trace: Trace, request: str) -> RequestPath:
    """The path of `request` through the chart (KeyError if the trace has no such request)."""
    arrivals = [r.t for r in trace.of("arrival") if r.request == request]
    records = [r for r in trace.outputs() if r.request == request]
    if not arrivals and not records:
        raise KeyError(request)
    start = arrivals[0] if arrivals else records[0].t
    steps: list[PathStep] = []
    outcome: str | None = None
    duration: float | None = None
    for record in records:
        if isinstance(record, Step):
            edge = (record.source, record.trigger, record.dest)
            last = steps[-1] if steps else None
            if (
                last is not None
                and (last.source, last.trigger, last.dest) == edge
                and record.source == record.dest
                and last.wait is None
            ):
                steps[-1] = replace(last, count=last.count + 1)  # one edge for a run of loops
            else:
                steps.append(PathStep(len(steps) + 1, record.t - start, *edge))
            continue
        for effect in record.effects:
            kind = effect.get("type")
            if kind == "StartTimer" and steps and steps[-1].dest == record.state:
                # the timer armed on entering the wait state: the step's wait
                steps[-1] = replace(steps[-1], wait=float(effect["at"]) - record.t)
            elif kind == "Finish":
                outcome, duration = _outcome(effect["outcome"]), record.t - start
    return RequestPath(request, tuple(steps), outcome, duration)


def _outcome(data: dict[str, Any]) -> str:
    if data["ok"]:
        return "ok" + (" (placeholder)" if data.get("placeholder") else "")
    return f"{data['status']} {data['error_type']}"


def mermaid(path: RequestPath) -> str:
    """The path as a Mermaid `stateDiagram-v2`: visited states only, one edge per step.

    Edges read `(1) trigger`, not `1. trigger`: Mermaid 10+ parses labels as Markdown, where
    `1. ` starts a list, and shows "Unsupported markdown: list" instead."""
    lines = ["stateDiagram-v2", "    direction TB", f"    [*] --> {STATES[0].name}"]
    for step in path.steps:
        lines.append(f"    {step.source} --> {step.dest}: ({step.number}) {step.label}")
    last = path.steps[-1].dest if path.steps else STATES[0].name
    if any(state.terminal and state.name == last for state in STATES):
        lines.append(f"    {last} --> [*]")
    lines += [f"    note right of {last}", f"        {path.summary}", "    end note"]
    return "\n".join(lines) + "\n"


def mermaid_markdown(path: RequestPath) -> str:
    """`mermaid(path)` in a Markdown document (renders on GitHub)."""
    return f"# The path of {path.request}\n\n```mermaid\n{mermaid(path)}```\n"


def dot(path: RequestPath) -> str:
    """The whole chart in Graphviz DOT with the path over it: numbered, bold, coloured."""
    taken: dict[tuple[str, str], list[str]] = {}
    for step in path.steps:
        taken.setdefault((step.source, step.dest), []).append(f"{step.number}. {step.label}")
    return diagram.dot(taken, caption=path.summary)


# Graphviz ---------------------------------------------------------------------------------------
class GraphvizError(Exception):
    """Graphviz's `dot` is missing, failed or took too long (the message says which)."""


class GraphvizMissing(GraphvizError):
    pass


def dot_executable() -> str | None:
    """Graphviz's `dot` on PATH, if installed."""
    return shutil.which("dot")


def svg_stamp(source: str) -> str:
    """The comment an SVG rendered from the DOT text `source` carries (see `render_svg`)."""
    return f"rendered from DOT sha256 {hashlib.sha256(source.encode()).hexdigest()}"


def render_svg(source: str, *, comment: str = "", timeout: float = DOT_TIMEOUT_S) -> str:
    """SVG rendered from the DOT text `source` by Graphviz, with `comment` as an XML comment."""
    executable = dot_executable()
    if executable is None:
        raise GraphvizMissing(
            "Graphviz's `dot` is not installed (not on PATH): install Graphviz for SVG "
            "(e.g. apt-get install graphviz, brew install graphviz)"
        )
    command = [executable, "-Tsvg", *([f"-Gcomment={comment}"] if comment else [])]
    try:
        done = subprocess.run(
            command, input=source, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise GraphvizError(f"Graphviz's `dot` took longer than {timeout:.0f} s") from None
    except OSError as err:
        raise GraphvizError(f"cannot run {executable}: {err.strerror}") from None
    if done.returncode != 0 or not done.stdout:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[0]
        raise GraphvizError(f"Graphviz's `dot` failed: {why}")
    return done.stdout
