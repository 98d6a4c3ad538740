"""The trace corpus (tests/traces/): every trace replays identically, as `interlock replay
--check` does, and reaches the outcome its header expects; every trace is exactly what its
scenario in tests/traces/corpus.py records; together they take every row of the decision table
and of the endpoint breaker's table, and reproduce every engine-relevant defect of the
JavaScript proxy.

Regenerate the corpus after a deliberate change: `python -m tests.traces.corpus`."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import pytest

from adapters.cli import main as cli
from adapters.trace.format import Trace, read_trace
from adapters.trace.replay import Replay, check, replay
from engine.health import BREAKER_TABLE, HALF_OPEN, EndpointHealth
from engine.table import FALLBACK, SELECTING, STREAMING, SWITCHING, TRANSITIONS
from tests.traces.corpus import DIRECTORY, SCENARIOS, Scenario, mismatches, record

TRACES = sorted(DIRECTORY.glob("*.jsonl"))
SCENARIO = {scenario.name: scenario for scenario in SCENARIOS}
TWO_HOURS = "quota-exhaustion-without-a-reset-climbs-the-quota-tiers-to-two-hours-until-a-success"
#: The JavaScript proxy's defects (reference/seed-behaviour.md §7) the engine is concerned with.
JS_DEFECTS = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 13, 17)
#: Internal states a request passes through within one engine step: no outside event reaches
#: them, so their rows for `client_disconnected` and `deadline_expired` cannot be traced.
TRANSIENT = (SELECTING, SWITCHING, FALLBACK)


def _scenario(path: Path) -> Scenario:
    return SCENARIO[path.stem]


def _traces(*, replay_defects_fail: bool, strict: bool = True) -> list[object]:
    """One parameter per trace, named for it; traces whose replay is known to diverge are
    expected to fail (strictly: a fixed replay must drop the mark) when `replay_defects_fail`;
    not strictly where a divergence may still reach the same outcome."""
    params: list[object] = []
    for path in TRACES:
        scenario = SCENARIO.get(path.stem)
        defect = scenario.replay_defect if scenario else ""
        marks = (
            [pytest.mark.xfail(strict=strict, reason=defect)]
            if replay_defects_fail and defect
            else []
        )
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


@functools.cache
def _replayed(path: Path) -> tuple[Trace, Replay]:
    trace = read_trace(path)
    return trace, replay(trace)


@pytest.mark.parametrize("path", _traces(replay_defects_fail=True))
def test_every_trace_replays_identically_to_its_recording(path: Path) -> None:
    trace, result = _replayed(path)
    assert result.problems == []
    divergence = check(trace, result)
    assert divergence is None, divergence.describe()


@pytest.mark.parametrize("path", _traces(replay_defects_fail=True, strict=False))
def test_every_replay_reaches_the_outcome_its_header_expects(path: Path) -> None:
    trace, result = _replayed(path)
    assert set(result.outcomes) == set(trace.header.expect)
    assert mismatches(trace.header.expect, result.replayed, _scenario(path).as_is) == []


@pytest.mark.parametrize("path", _traces(replay_defects_fail=False))
def test_every_recording_reaches_the_outcome_its_header_expects(path: Path) -> None:
    trace = read_trace(path)
    scenario = _scenario(path)
    assert trace.header.note == scenario.note and trace.header.expect == scenario.expect
    assert {a.request for a in trace.of("arrival")} == set(trace.header.expect)
    assert mismatches(trace.header.expect, trace, scenario.as_is) == []


def test_the_corpus_holds_one_trace_per_scenario_and_nothing_else() -> None:
    assert len(SCENARIO) == len(SCENARIOS), "scenario names must be unique"
    assert {path.stem for path in TRACES} == set(SCENARIO)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_every_committed_trace_is_exactly_what_its_scenario_records(scenario: Scenario) -> None:
    committed = scenario.path.read_text(encoding="utf-8").splitlines(keepends=True)
    assert record(scenario) == committed, (
        f"{scenario.path.name} drifted from its scenario: run python -m tests.traces.corpus"
    )


def test_two_hours_of_cooldowns_replay_in_well_under_a_second() -> None:
    trace = read_trace(DIRECTORY / f"{TWO_HOURS}.jsonl")
    assert max(out.t for out in trace.outputs()) - trace.header.start > 2 * 3600
    started = time.perf_counter()
    result = replay(trace)
    elapsed = time.perf_counter() - started
    assert check(trace, result) is None
    assert elapsed < 1.0, f"{elapsed:.3f} s"


WAITS = ("CapacityWait", "RateLimitWait", "Backoff")


def test_the_corpus_takes_every_row_of_the_decision_table_an_outside_event_can_reach() -> None:
    taken = {
        (step.source, step.trigger, step.dest)
        for path in TRACES
        for step in read_trace(path).of("step")
    }
    rows = {(row.source, row.trigger, row.dest or row.source) for row in TRANSITIONS}
    unreachable = {
        (source, trigger, dest)
        for source, trigger, dest in rows
        # the engine passes through transient states within one step: no outside event
        if (source in TRANSIENT and trigger in ("client_disconnected", "deadline_expired"))
        # a wait starts only if it ends before the deadline: its timer always comes first
        or (source in WAITS and trigger == "deadline_expired")
        # the access token is fetched before anything is sent: no stream opens without one
        or (source == STREAMING and trigger in ("token_unavailable", "misconfigured"))
    }
    assert sorted(rows - unreachable - taken) == []
    assert taken <= rows


_BREAKER_TRIGGERS = {
    "failed": "failure",
    "answered": "answer",
    "granted": "probe_granted",
    "probe_abandoned": "probe_abandoned",
}


def test_the_corpus_takes_every_row_of_the_endpoint_breakers_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every scenario recorded again with a spy on each endpoint's breaker: every row of
    `BREAKER_TABLE` is taken, and no transition the table does not list."""
    taken: set[tuple[str, str, str]] = set()

    def spy(method: str) -> object:
        original = getattr(EndpointHealth, method)

        def spying(self: EndpointHealth, now: float) -> object:
            before = self.state
            result = original(self, now)
            if method == "granted" and not result:
                return result  # not the probe: nothing changed
            if method == "probe_abandoned" and before != HALF_OPEN:
                return result  # no probe in flight: nothing changed
            taken.add((before, _BREAKER_TRIGGERS[method], self.state))
            return result

        return spying

    for method in _BREAKER_TRIGGERS:
        monkeypatch.setattr(EndpointHealth, method, spy(method))
    for scenario in SCENARIOS:
        record(scenario)
    rows = {(row.source, row.trigger, row.dest) for row in BREAKER_TABLE}
    assert sorted(rows - taken) == []
    assert sorted(taken - rows) == []


def test_the_corpus_reproduces_every_engine_relevant_defect_of_the_javascript_proxy() -> None:
    for number in JS_DEFECTS:
        assert any(name.startswith(f"js-defect-{number}-") for name in SCENARIO), number


def test_interlock_replay_check_accepts_every_trace_whose_replay_is_not_known_to_diverge(
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths = [str(p) for p in TRACES if not _scenario(p).replay_defect]
    assert cli(["replay", "--check", "--json", *paths]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["traces"]) == len(paths)
    assert all(doc["check"]["ok"] for doc in report["traces"])
