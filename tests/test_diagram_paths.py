"""The Graphviz chart, path diagrams of one request, and `interlock replay --diagram`."""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from adapters.cli import main
from adapters.trace import path as paths
from adapters.trace.format import Arrival, Effects, Header, Step, Trace, dumps, parse_lines
from adapters.trace.recorder import TraceRecorder
from engine import diagram
from engine.machine import Engine
from engine.policy import load_policy
from engine.pool import AccountPool
from engine.runner import Runner, VirtualClock
from engine.table import STATES, TRANSITIONS
from tests.fakes import Answer, RecordingClient, ScriptedTransport, error, ok
from tests.support import ENDPOINTS, MODEL, capacity

ROOT = Path(__file__).resolve().parent.parent
HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot is not installed")
EDGE = re.compile(r'^    (\w+) -> (\w+) \[label="((?:[^"\\]|\\.)*)"(.*)\];$')


def _dot_edges(text: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(source, dest) -> (label with its line breaks undone, the other attributes)."""
    found = {}
    for line in text.splitlines():
        match = EDGE.match(line)
        if match:
            source, dest, label, rest = match.groups()
            found[(source, dest)] = (label.replace("\\n", " ").replace(",  ", ", "), rest)
    return found


# the chart ------------------------------------------------------------------------------------
def test_the_dot_chart_has_every_state_and_every_merged_edge_of_the_mermaid_chart() -> None:
    text = diagram.dot()
    assert text.startswith("// ") and "digraph request_machine {" in text
    for state in STATES:
        (line,) = [x for x in text.splitlines() if x.startswith(f"    {state.name} [")]
        assert ("peripheries=2" in line) == state.terminal
    edges = _dot_edges(text)
    mermaid_edges = {
        tuple(line.split(": ")[0].strip().split(" --> ")): line.split(": ")[1]
        for line in diagram.mermaid().splitlines()
        if "-->" in line and ": " in line
    }
    assert {edge: label for edge, (label, _) in edges.items()} == diagram.edges() == mermaid_edges
    for row in TRANSITIONS:
        if row.trigger in ("client_disconnected", "deadline_expired"):
            continue
        label, _ = edges[(row.source, row.dest or row.source)]
        assert row.trigger in label.replace("*", "").split(", ")
    assert "_start -> Selecting;" in text
    assert re.search(r"_everywhere \[label=\"from every non-terminal state:\\n", text)
    assert "_everywhere -> Failed [style=" in text


def test_the_diagrams_directory_holds_the_dot_chart() -> None:
    assert diagram.DOT_FILE in diagram.files()
    assert (ROOT / "diagrams" / diagram.DOT_FILE).read_text(encoding="utf-8") == diagram.dot()


def test_the_committed_svg_chart_if_any_was_rendered_from_the_current_dot_chart() -> None:
    svg = ROOT / "diagrams" / "request-machine.svg"
    if not svg.exists():
        pytest.skip("no SVG chart in diagrams/ (rendered only where Graphviz is installed)")
    assert paths.svg_stamp(diagram.dot()) in svg.read_text(encoding="utf-8"), "make diagrams"


@needs_dot
def test_graphviz_renders_the_chart_to_valid_svg_carrying_its_stamp() -> None:
    stamp = paths.svg_stamp(diagram.dot())
    svg = paths.render_svg(diagram.dot(), comment=stamp)
    root = ET.fromstring(svg.encode())
    assert root.tag.endswith("svg")
    assert stamp in svg
    assert all(state.name in svg for state in STATES)


def _diagram(out: Path, *extra: str) -> int:
    return main(["diagram", "--out", str(out), "--readme", str(out / "none.md"), *extra])


def test_diagram_writes_the_dot_chart_and_check_passes_without_graphviz(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert _diagram(tmp_path) == 0
    assert (tmp_path / diagram.DOT_FILE).read_text(encoding="utf-8") == diagram.dot()
    assert not (tmp_path / "request-machine.svg").exists()
    assert "not rendered" in capsys.readouterr().out
    assert _diagram(tmp_path, "--check") == 0


def test_diagram_check_fails_on_an_svg_rendered_from_another_chart_and_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert _diagram(tmp_path) == 0
    svg = tmp_path / "request-machine.svg"
    svg.write_text(f"<svg><!-- {paths.svg_stamp('digraph old {}')} --></svg>", encoding="utf-8")
    capsys.readouterr()
    assert _diagram(tmp_path, "--check") == 1
    assert str(svg) in capsys.readouterr().err
    assert _diagram(tmp_path) == 1  # cannot render it again without Graphviz
    assert "install Graphviz" in capsys.readouterr().err


def test_diagram_check_compares_the_svg_by_its_dot_text_not_its_bytes(tmp_path: Path) -> None:
    assert _diagram(tmp_path) == 0
    svg = tmp_path / "request-machine.svg"
    # what another Graphviz version would draw from the same chart: other bytes, same stamp
    svg.write_text(f"<svg><!-- {paths.svg_stamp(diagram.dot())} --><g/></svg>", encoding="utf-8")
    assert _diagram(tmp_path, "--check") == 0
    assert _diagram(tmp_path) == 0
    assert svg.read_text(encoding="utf-8").endswith("<g/></svg>")  # not rendered again


@needs_dot
def test_diagram_renders_the_svg_chart_when_graphviz_is_installed(tmp_path: Path) -> None:
    assert _diagram(tmp_path) == 0
    svg = (tmp_path / "request-machine.svg").read_text(encoding="utf-8")
    ET.fromstring(svg.encode())
    assert paths.svg_stamp(diagram.dot()) in svg
    assert _diagram(tmp_path, "--check") == 0


# one request's path ----------------------------------------------------------------------------
HEADER = Header(policy={}, seed=0, start=100.0, wall_start=0.0, accounts=[])
OK = {"ok": True, "status": 200, "error_type": None, "message": "", "model": MODEL}


def _trace(request: str, steps: list[tuple[float, str, str, str, list[dict[str, Any]]]]) -> Trace:
    """A trace of one request arriving at 100 s: each step and the effects it emitted."""
    lines = [dumps(HEADER), dumps(Arrival(t=100.0, request=request, model=MODEL, stream=True))]
    for t, source, trigger, dest, effects in steps:
        lines.append(dumps(Step(t=t, request=request, source=source, trigger=trigger, dest=dest)))
        lines.append(dumps(Effects(t=t, request=request, state=dest, effects=effects)))
    return parse_lines(lines)


def _known_trace() -> Trace:
    """r1: granted, capacity exhausted (a 5 s wait), fetching again, three chunks, done."""
    timer = {"type": "StartTimer", "at": 105.5, "purpose": "model capacity"}
    return _trace(
        "r1",
        [
            (100.0, "Selecting", "target_granted", "Fetching", []),
            (100.5, "Fetching", "capacity_exhausted", "CapacityWait", [timer]),
            (105.5, "CapacityWait", "timer_fired", "Fetching", []),
            (105.6, "Fetching", "stream_opened", "Streaming", []),
            (105.6, "Streaming", "content_received", "Streaming", []),
            (105.7, "Streaming", "content_received", "Streaming", []),
            (105.8, "Streaming", "content_received", "Streaming", []),
            (105.9, "Streaming", "stream_ended", "Done", [{"type": "Finish", "outcome": OK}]),
        ],
    )


def test_a_path_numbers_its_edges_in_order_and_annotates_each_wait() -> None:
    path = paths.path_of(_known_trace(), "r1")
    assert [(s.number, s.label) for s in path.steps] == [
        (1, "target_granted"),
        (2, "capacity_exhausted (wait 5.0 s)"),
        (3, "timer_fired"),
        (4, "stream_opened"),
        (5, "content_received ×3"),
        (6, "stream_ended"),
    ]
    assert path.summary == "r1: ok after 5.900 s"
    chart = paths.mermaid(path)
    assert chart.splitlines()[:3] == [
        "stateDiagram-v2",
        "    direction TB",
        "    [*] --> Selecting",
    ]
    taken = [line.strip() for line in chart.splitlines() if ": (" in line]
    assert taken == [
        "Selecting --> Fetching: (1) target_granted",
        "Fetching --> CapacityWait: (2) capacity_exhausted (wait 5.0 s)",
        "CapacityWait --> Fetching: (3) timer_fired",
        "Fetching --> Streaming: (4) stream_opened",
        "Streaming --> Streaming: (5) content_received ×3",
        "Streaming --> Done: (6) stream_ended",
    ]
    assert "Done --> [*]" in chart and "r1: ok after 5.900 s" in chart
    assert "RateLimitWait" not in chart  # only the path: untaken states are left out


def test_the_dot_path_draws_the_whole_chart_with_the_taken_edges_numbered_and_the_rest_grey() -> (
    None
):
    text = paths.dot(paths.path_of(_known_trace(), "r1"))
    edges = _dot_edges(text)
    assert set(diagram.edges()) <= set(edges)
    label, style = edges[("Fetching", "CapacityWait")]
    assert label == "2. capacity_exhausted (wait 5.0 s)" and "penwidth" in style
    assert edges[("Fetching", "Streaming")][0] == "4. stream_opened"
    label, style = edges[("Fetching", "Switching")]
    assert label.startswith("account_withdrawn") and "grey" in style and "penwidth" not in style
    assert 'label="r1: ok after 5.900 s"' in text


def test_a_path_that_leaves_through_a_disconnect_draws_that_edge_too() -> None:
    trace = _trace(
        "q",
        [
            (100.0, "Selecting", "target_granted", "Fetching", []),
            (102.0, "Fetching", "client_disconnected", "Failed", []),
        ],
    )
    path = paths.path_of(trace, "q")
    assert path.outcome is None and "no outcome" in path.summary
    assert _dot_edges(paths.dot(path))[("Fetching", "Failed")][0] == "2. client_disconnected"
    with pytest.raises(KeyError):
        paths.path_of(trace, "nobody")


# interlock replay --diagram -------------------------------------------------------------------
def _record(path: Path, scripts: dict[str, list[Answer]], arrivals: list[float]) -> Path:
    """A trace recorded through the runner on the virtual clock (no network)."""
    clock = VirtualClock(start=0.0)
    policy = load_policy(overrides={"endpoints": ENDPOINTS})
    pool = AccountPool(policy, list(scripts), now=0.0)
    engine = Engine(policy, pool, rng=random.Random(1))
    header = Header(
        policy=policy.model_dump(mode="json"),
        seed=1,
        start=0.0,
        wall_start=clock.wall(),
        accounts=[pool.record(a) for a in pool.account_ids],
    )
    lines: list[str] = []
    recorder = TraceRecorder(lines.append, header)
    engine.on_step = recorder.on_step
    runner = Runner(engine, ScriptedTransport(clock, scripts), clock, recorder)  # type: ignore[arg-type]

    async def scenario() -> None:
        async def one(i: int, at: float) -> None:
            await asyncio.sleep(at - clock.now())
            await runner.run(f"r{i}", MODEL, True, RecordingClient(clock), f"r{i}")

        await asyncio.gather(*(one(i, at) for i, at in enumerate(arrivals)))

    clock.run(scenario())
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    # A's two targets run out of capacity (no hint: 5 s rests), r0 waits for the first
    scripts = {"A": [error(capacity(503)), error(capacity(503)), ok()]}
    return _record(tmp_path / "trace.jsonl", scripts, [0.0, 0.5])


def test_replay_writes_the_first_requests_path_as_mermaid_markdown_and_dot(
    trace_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(trace_file), "--diagram", str(tmp_path / "r0.mmd")]) == 0
    assert "the path of r0" in capsys.readouterr().out
    chart = (tmp_path / "r0.mmd").read_text(encoding="utf-8")
    assert chart.startswith("stateDiagram-v2\n")
    assert "Fetching --> Switching: (2) capacity_exhausted" in chart
    assert "Selecting --> CapacityWait: (7) pool_cooling_down (wait 5.0 s)" in chart

    assert main(["replay", str(trace_file), "--diagram", str(tmp_path / "r0.md")]) == 0
    markdown = (tmp_path / "r0.md").read_text(encoding="utf-8")
    assert f"```mermaid\n{chart}```\n" in markdown

    out = tmp_path / "r1.dot"
    assert main(["replay", str(trace_file), "--diagram", str(out), "--request", "r1"]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("// ") and "digraph request_machine {" in text
    assert _dot_edges(text)[("Fetching", "Streaming")][0] == "4. stream_opened"


def test_replay_diagram_with_an_unknown_request_is_one_line_listing_the_requests(
    trace_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.mmd"
    assert main(["replay", str(trace_file), "--diagram", str(out), "--request", "r9"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "interlock: --request r9: no such request; the traces hold r0, r1\n"
    assert captured.out == "" and not out.exists()


def test_replay_diagram_refuses_an_unknown_format_and_a_request_without_a_diagram(
    trace_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(trace_file), "--diagram", str(tmp_path / "x.png")]) == 2
    assert "unknown format .png" in capsys.readouterr().err
    assert main(["replay", str(trace_file), "--request", "r0"]) == 2
    assert "needs --diagram" in capsys.readouterr().err


def test_replay_diagram_to_svg_without_graphviz_is_one_clear_line_and_exit_2(
    trace_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(paths.shutil, "which", lambda name: None)
    out = tmp_path / "r0.svg"
    assert main(["replay", str(trace_file), "--diagram", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("interlock: ") and len(err.strip().splitlines()) == 1
    assert "Graphviz" in err and "not installed" in err
    assert not out.exists()


@needs_dot
def test_replay_diagram_to_svg_writes_valid_svg_when_graphviz_is_installed(
    trace_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r0.svg"
    assert main(["replay", str(trace_file), "--diagram", str(out)]) == 0
    svg = out.read_text(encoding="utf-8")
    assert ET.fromstring(svg.encode()).tag.endswith("svg")
    assert "7. pool_cooling_down (wait 5.0 s)" in svg
