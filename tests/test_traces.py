"""Traces: recorded live through the proxy, replayed offline identically; bad files refused."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.fake_upstream import drop_after, preset, stream, text
from adapters.trace.format import (
    Arrival,
    TraceError,
    dumps,
    json_schema,
    parse_lines,
    read_trace,
)
from adapters.trace.replay import check, policy_of, replay
from tests.e2e import post, proxy, run


async def _traffic(record_dir: Path) -> None:
    async with proxy(accounts=3, server={"record": str(record_dir)}) as served:
        assert served.fake is not None
        served.fake.script("account-1", [preset("quota_429"), preset("server_500")])
        served.fake.script("account-2", [preset("capacity_429"), preset("auth_401")])
        served.fake.script("account-3", [drop_after(2, stream(text("abcdefgh"), chunks=4))])
        await asyncio.gather(*(post(served, stream=i % 2 == 0) for i in range(4)))
        await post(served, stream=True)


def test_traffic_recorded_through_the_proxy_replays_identically_every_time(
    tmp_path: Path,
) -> None:
    for attempt in range(20):
        record_dir = tmp_path / f"run{attempt}"
        run(_traffic(record_dir))
        (path,) = record_dir.glob("*.jsonl")
        trace = read_trace(path)
        assert len(trace.of("arrival")) == 5 and trace.of("answer")
        result = replay(trace)
        divergence = check(trace, result)
        assert divergence is None, divergence.describe()
        assert result.problems == []


def test_a_trace_holds_no_content_and_no_secrets(tmp_path: Path) -> None:
    run(_traffic(tmp_path))
    (path,) = tmp_path.glob("*.jsonl")
    raw = path.read_text()
    assert "Hello from the fake upstream" not in raw and '"hi"' not in raw
    assert "1//fake-" not in raw and "Bearer" not in raw


def test_replaying_under_another_policy_shows_what_would_change(tmp_path: Path) -> None:
    run(_traffic(tmp_path))
    (path,) = tmp_path.glob("*.jsonl")
    trace = read_trace(path)
    result = replay(trace, policy=policy_of(trace.header, {"max_retries": 1, "strategy": "sticky"}))
    assert check(trace, result) is not None
    assert set(result.outcomes) == {a.request for a in trace.of("arrival")}


def _header_line() -> str:
    return json.dumps(
        {
            "kind": "header",
            "format": 2,
            "interlock": "0.1.0",
            "policy": {},
            "seed": 0,
            "start": 0.0,
            "wall_start": 0.0,
            "accounts": [],
        }
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty.jsonl:1: empty trace: expected a header line"),
        (_header_line() + "\n{not json\n", ":2: not JSON"),
        (_header_line() + '\n{"kind": "arrival", "t": 0', ":2: not JSON"),
        (_header_line().replace('"format": 2', '"format": 0'), ":1: unknown trace format version"),
        (_header_line().replace('"format": 2', '"format": 9'), ":1: written by a newer interlock"),
        (_header_line().replace('"format": 2', '"format": 1'), ":1: written by an older interlock"),
        ('{"kind": "arrival"}\n', ":1: the first line must be the trace header"),
        (_header_line() + '\n{"kind": "warp", "t": 1}\n', ":2: "),
    ],
    ids=[
        "empty",
        "not-json",
        "truncated",
        "unknown-version",
        "newer",
        "older",
        "no-header",
        "bad-kind",
    ],
)
def test_a_bad_trace_is_one_line_naming_the_file_and_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    with pytest.raises(TraceError, match=message.replace(".", r"\.")):
        read_trace(path)
    result = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "replay", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("interlock: ") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_trace_json_schema_describes_every_record_kind() -> None:
    schema = json.dumps(json_schema())
    for kind in ("header", "arrival", "answer", "disconnect", "step", "effects"):
        assert f'"{kind}"' in schema


def test_replay_check_exits_1_and_shows_both_sides_when_the_outputs_differ(
    tmp_path: Path,
) -> None:
    run(_traffic(tmp_path))
    (path,) = tmp_path.glob("*.jsonl")
    lines = path.read_text().splitlines(keepends=True)
    step = next(i for i, line in enumerate(lines) if '"kind":"step"' in line)
    lines[step] = lines[step].replace('"dest":"Fetching"', '"dest":"Backoff"')
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("".join(lines))
    assert check(parse_lines(lines), replay(parse_lines(lines))) is not None
    result = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "replay", "--check", str(tampered)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "recorded:" in result.stdout and "replayed:" in result.stdout


def test_an_arrival_carries_the_client_model_when_known_and_omits_it_otherwise() -> None:
    named = Arrival(
        t=1.0,
        request="r1",
        model="claude-opus-4-6-thinking",
        stream=True,
        client_model="claude-opus-4-8",
    )
    unnamed = Arrival(t=1.0, request="r2", model="claude-sonnet-4-6", stream=False)
    assert json.loads(dumps(named))["client_model"] == "claude-opus-4-8"
    assert "client_model" not in json.loads(dumps(unnamed))  # older readers see no new field
    header = json.dumps(
        {"kind": "header", "format": 2, "policy": {}, "seed": 0, "start": 0, "wall_start": 0}
        | {"accounts": []}
    )
    old = json.dumps(
        {"kind": "arrival", "t": 1.0, "request": "r3", "model": "gemini-3-flash", "stream": True}
    )
    trace = parse_lines([header, old, dumps(named)])
    assert [a.client_model for a in trace.of("arrival")] == [None, "claude-opus-4-8"]
    assert "client_model" in json_schema()["$defs"]["Arrival"]["properties"]
