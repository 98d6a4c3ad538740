"""`interlock replay TRACE...`: replay traces offline and print what happened.

Prints each request's timeline (time, transition, attempts, waits, rests) and its outcome.
`--check` compares the replay with the recorded outputs and exits 1 at the first difference,
showing both sides. `--set key=value` / `--policy FILE` replay under another configuration and
show what would change. `--json` prints one JSON document. A trace that cannot be read is one
line naming the file and the line, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path
from typing import Any

from adapters.timeline import Timeline
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
    documents = []
    failed = False
    for name in args.traces:
        trace = read_trace(name)
        try:
            policy = policy_of(trace.header, overrides) if overrides else None
        except PolicyError as err:
            raise ReplayUsageError(str(err)) from None
        timeline = Timeline()
        result = replay(trace, policy=policy, observer=timeline)
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
        print(json.dumps({"traces": documents}, indent=2))
    return 1 if failed else 0


__all__ = ["ReplayUsageError", "TraceError", "add_arguments", "run"]
