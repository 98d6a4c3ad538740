"""The engine's invariants (DESIGN.md §2), as Hypothesis properties over arbitrary upstream
behaviour: arbitrary policies, pools, per-account scripts of answers (errors with any status,
reason and reset; drops, empty streams, hangs), timings and client disconnects, with several
concurrent requests sharing one pool and one virtual clock (tests/simulation.py).

Together these generate more than 10,000 cases per `make test`."""

from __future__ import annotations

from hypothesis import given, settings

from tests.simulation import EPS, Scenario, Simulation, scenarios

CASES = 2100


@settings(max_examples=CASES)
@given(scenarios())
def test_every_request_ends_within_its_step_bound_and_its_deadline(s: Scenario) -> None:
    trace = Simulation(s).run()
    assert not [v for v in trace.violations if "never ended" in v or "settle" in v]
    for rid, request in trace.requests.items():
        assert request.steps <= trace.bounds[rid], (rid, request.steps, trace.bounds[rid])
        at, outcome = trace.finished[rid]
        if not outcome.committed:
            assert at <= request.deadline + EPS, (rid, at, request.deadline)
    assert not [v for v in trace.violations if "past the deadline" in v]


@settings(max_examples=CASES)
@given(scenarios())
def test_after_commit_no_attempt_is_made_and_no_content_is_duplicated(s: Scenario) -> None:
    sim = Simulation(s)
    trace = sim.run()
    assert not [v for v in trace.violations if "after commit" in v]
    for rid in trace.requests:
        assert sim.contents_relayed.get(rid, 0) == sim.contents_delivered.get(rid, 0)


@settings(max_examples=CASES)
@given(scenarios())
def test_no_account_is_used_before_its_reset_and_cooldowns_only_extend(s: Scenario) -> None:
    trace = Simulation(s).run()
    assert not [v for v in trace.violations if "rests" in v or "before its reset" in v]
    assert not [v for v in trace.violations if "shortened" in v or "in the past" in v]


@settings(max_examples=CASES)
@given(scenarios())
def test_concurrent_429s_inside_the_dedup_window_escalate_once(s: Scenario) -> None:
    trace = Simulation(s).run()
    window = s.policy.rate_limit_dedup_window_ms / 1000.0
    last: dict[tuple[str, str], tuple[float, str]] = {}
    for at, rid, key in trace.escalations:
        if key in last:
            then, other = last[key]
            assert other == rid or at - then >= window, (key, then, other, at, rid)
        last[key] = (at, rid)


@settings(max_examples=CASES)
@given(scenarios())
def test_each_request_has_one_outcome_and_releases_every_account_and_timer(s: Scenario) -> None:
    sim = Simulation(s)
    trace = sim.run()
    assert not [v for v in trace.violations if "outcome" in v or "timer" in v], trace.violations
    assert set(trace.finished) == set(trace.requests)
    assert sim.pool.leases() == 0
    assert not any(sim.armed.values())


@settings(max_examples=600)
@given(scenarios())
def test_the_same_scenario_replays_to_the_identical_sequence(s: Scenario) -> None:
    first, second = Simulation(s).run(), Simulation(s).run()
    assert first.signature() == second.signature()
