"""`interlock replay TRACE...`: replay traces offline and print what happened.

Prints each request's timeline (time, transition, attempts, waits, rests) and its outcome.
`--check` compares the replay with the recorded outputs and exits 1 at the first difference,
showing both sides. `--set key=value` / `--policy FILE` replay under another configuration and
show what would change. `--json` prints one JSON document. `--diagram OUT [--request ID]` draws
one request's replayed path over the state chart (`adapters.trace.path`). A trace that cannot
be read is one line naming the file and the line, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path
from typing import Any

from adapters.timeline import Timeline
from adapters.trace import path as paths
from adapters.trace.format import Trace, TraceError, json_schema, read_trace
from adapters.trace.replay import check, policy_of, replay
from engine.effects import Outcome
from engine.policy import PolicyError


class ReplayUsageError(Exception):
    """Bad arguments (exit status 2)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("traces", nargs="*", metavar="TRACE", help="trace files (JSON Lines)")
    parser.add_argument(
        "--schema", action="store_true", help="print the JSON Schema of a trace line and exit"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 unless the replay matches the recorded outputs exactly",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="replay with this policy field changed (repeatable), e.g. "
        "--set max_wait_before_error_ms=300000",
    )
    parser.add_argument(
        "--policy", metavar="FILE", help="replay with the policy fields of this TOML or JSON file"
    )
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument(
        "--diagram",
        metavar="OUT",
        help="also draw one request's replayed path over the state chart to OUT: .mmd "
        "(Mermaid), .md (Mermaid in Markdown), .dot (Graphviz) or .svg (needs Graphviz)",
    )
    parser.add_argument(
        "--request",
        metavar="ID",
        help="the request --diagram draws (default: the first request of the first trace)",
    )


DIAGRAM_SUFFIXES = (".mmd", ".md", ".dot", ".svg")


def _diagram_out(args: argparse.Namespace) -> Path | None:
    """`--diagram OUT`, checked before anything is replayed."""
    if args.diagram is None:
        if args.request is not None:
            raise ReplayUsageError(
                "--request ID needs --diagram OUT (it chooses the request drawn)"
            )
        return None
    out = Path(args.diagram)
    if out.suffix.lower() not in DIAGRAM_SUFFIXES:
        raise ReplayUsageError(
            f"--diagram {out}: unknown format {out.suffix or '(no suffix)'}: "
            f"use {', '.join(DIAGRAM_SUFFIXES)}"
        )
    if out.suffix.lower() == ".svg" and paths.dot_executable() is None:
        raise ReplayUsageError(
            f"--diagram {out}: SVG needs Graphviz's `dot`, which is not installed (not on PATH): "
            "install Graphviz, or write .dot, .mmd or .md"
        )
    return out


def _diagram_request(
    args: argparse.Namespace, trace: Trace, seen: list[str], last: bool
) -> str | None:
    """The request of `trace` to draw, if it is there; an error after the `last` trace."""
    ids = paths.request_ids(trace)
    seen += ids
    if args.request is None and ids:
        return ids[0]
    if args.request in ids:
        return str(args.request)
    if not last:
        return None
    if args.request is None:
        raise ReplayUsageError("--diagram: the traces hold no request")
    shown = ", ".join(seen[:20]) + (f" ... ({len(seen)} in all)" if len(seen) > 20 else "")
    raise ReplayUsageError(f"--request {args.request}: no such request; the traces hold {shown}")


def _draw(trace: Trace, request: str, out: Path) -> None:
    drawn = paths.path_of(trace, request)
    try:
        suffix = out.suffix.lower()
        if suffix == ".svg":
            text = paths.render_svg(paths.dot(drawn))
        elif suffix == ".dot":
            text = paths.dot(drawn)
        elif suffix == ".md":
            text = paths.mermaid_markdown(drawn)
        else:
            text = paths.mermaid(drawn)
        out.write_text(text, encoding="utf-8")
    except paths.GraphvizError as err:
        raise ReplayUsageError(f"--diagram {out}: {err}") from None
    except OSError as err:
        raise ReplayUsageError(f"--diagram {out}: cannot write ({err.strerror})") from None


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if args.policy:
        path = Path(args.policy)
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (OSError, ValueError) as err:
            raise ReplayUsageError(f"{path}: cannot read the policy ({err})") from None
        overrides.update(data.get("policy", data))
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ReplayUsageError(f"--set {item!r}: expected KEY=VALUE")
        try:
            overrides[key.strip()] = json.loads(raw)
        except ValueError:
            overrides[key.strip()] = raw
    return overrides


def _recorded_outcomes(trace: Trace) -> dict[str, dict[str, Any]]:
    outcomes = {}
    for record in trace.of("effects"):
        for effect in record.effects:
            if effect.get("type") == "Finish":
                outcomes[record.request] = effect["outcome"]
    return outcomes


def _describe(outcome: dict[str, Any] | Outcome | None) -> str:
    if outcome is None:
        return "no outcome"
    data = outcome.model_dump() if isinstance(outcome, Outcome) else outcome
    if data["ok"]:
        return "ok" + (" (placeholder)" if data.get("placeholder") else "")
    return f"{data['status']} {data['error_type']}: {data['message']}"


def run(args: argparse.Namespace) -> int:
    if args.schema:
        print(json.dumps(json_schema(), indent=2))
        return 0
    if not args.traces:
        raise ReplayUsageError("replay: give at least one TRACE file (or --schema)")
    overrides = _overrides(args)
    out = _diagram_out(args)
    drawn: dict[str, str] = {}  # the request drawn to `out`, and its trace
    seen: list[str] = []
    documents = []
    failed = False
    for index, name in enumerate(args.traces):
        trace = read_trace(name)
        last = index == len(args.traces) - 1
        target = _diagram_request(args, trace, seen, last) if out and not drawn else None
        try:
            policy = policy_of(trace.header, overrides) if overrides else None
        except PolicyError as err:
            raise ReplayUsageError(str(err)) from None
        timeline = Timeline()
        result = replay(trace, policy=policy, observer=timeline)
        if out is not None and target is not None:
            _draw(result.replayed, target, out)
            drawn = {"trace": name, "request": target, "file": str(out)}
        divergence = check(trace, result) if args.check else None
        failed = failed or divergence is not None
        recorded = _recorded_outcomes(trace)
        if args.json:
            documents.append(
                {
                    "trace": name,
                    "requests": {
                        rid: {
                            "outcome": outcome.model_dump(mode="json"),
                            "recorded_outcome": recorded.get(rid),
                        }
                        for rid, outcome in result.outcomes.items()
                    },
                    "problems": result.problems,
                    "check": None
                    if not args.check
                    else {
                        "ok": divergence is None,
                        "difference": divergence.describe() if divergence else None,
                    },
                }
            )
            continue
        print(
            f"{name}: {len(result.outcomes)} request(s)"
            + (f", policy changed: {', '.join(sorted(overrides))}" if overrides else "")
        )
        for rid in sorted(result.outcomes):
            print(timeline.render(rid))
            now, before = _describe(result.outcomes[rid]), _describe(recorded.get(rid))
            print(f"  outcome: {now}")
            if overrides and now != before:
                print(f"  recorded outcome was: {before}")
        for problem in result.problems:
            print(f"  note: {problem}")
        if args.check:
            print(
                "  check: replayed identically"
                if divergence is None
                else "  check: " + divergence.describe().replace("\n", "\n  ")
            )
    if args.json:
        print(json.dumps({"traces": documents, **({"diagram": drawn} if drawn else {})}, indent=2))
    elif drawn:
        print(f"diagram: the path of {drawn['request']} ({drawn['trace']}) written to {out}")
    return 1 if failed else 0


__all__ = ["ReplayUsageError", "TraceError", "add_arguments", "run"]
