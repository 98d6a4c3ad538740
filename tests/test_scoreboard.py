"""The retry-quality scoreboard's harness (bench/scoreboard_harness.py) on tiny scenarios, so the
bench cannot rot. Assertions hold for any engine that serves a healthy target at once and
answers a pool exhausted for an hour with a 429; they do not pin today's PASS/MISS verdicts,
which the engine's decision logic is meant to improve."""

from __future__ import annotations

import math

import pytest

from bench import scoreboard
from bench.scoreboard_harness import (
    CHUNK_GAP,
    RTT,
    SERVER_500,
    UNREACHABLE,
    Clients,
    Scenario,
    Script,
    fail,
    quota_429,
    rule,
    run_scenario,
    target_for,
)


def test_the_target_is_half_a_second_or_ten_percent() -> None:
    assert target_for(0.0) == 0.5
    assert target_for(3.0) == 3.5
    assert target_for(100.0) == pytest.approx(110.0)


def test_lower_bounds_come_from_the_script() -> None:
    script = Script(
        [
            rule(UNREACHABLE, endpoints=["prod"], end=3.0),
            rule(fail(SERVER_500), endpoints=["daily"], times=1),
            rule(fail(quota_429(60_000)), accounts=["b"], end=60.0),
        ]
    )
    assert script.earliest_ok("a", "prod", 0.0) == pytest.approx(3.0 + RTT)
    assert script.earliest_ok("a", "daily", 0.0) == pytest.approx(2 * RTT)  # one 500 first
    assert script.earliest_ok("b", "daily", 10.0) == pytest.approx(60.0 + RTT)
    assert script.answer("a", "daily", 0.0).kind == "error"  # uses up the single 500
    assert script.earliest_ok("a", "daily", 0.0) == pytest.approx(RTT)
    forever = Script([rule(UNREACHABLE)])
    assert forever.earliest_ok("a", "daily", 0.0) == math.inf


def test_a_healthy_pool_serves_at_the_bound_and_a_client_that_left_costs_nothing() -> None:
    scenario = Scenario(
        "healthy",
        "no rules; a second client leaves before its answer",
        ("a1", "a2"),
        (),
        (Clients(), Clients(start=1.0, leave_after=RTT / 2, scored=False)),
    )
    result = run_scenario(scenario)
    served, left = result.sessions
    assert (served.status, served.ok, served.servable) == (200, True, True)
    assert served.bound == pytest.approx(RTT)
    assert served.ttfb == pytest.approx(RTT)
    assert served.done == pytest.approx(RTT + CHUNK_GAP)
    assert served.within and result.passed
    assert not left.ok and left.done == pytest.approx(RTT / 2)
    assert len(result.calls) == result.requests == 2
    assert result.calls_after_left == 0
    assert run_scenario(scenario).calls == result.calls  # deterministic


@pytest.mark.parametrize("stream", [True, False])
def test_a_pool_exhausted_for_an_hour_is_unservable_and_knowably_so(stream: bool) -> None:
    scenario = Scenario(
        "quota-all",
        "every account quota exhausted for an hour",
        ("a1", "a2"),
        (rule(fail(quota_429(3_600_000)), end=3600.0),),
        (Clients(sessions=2, stream=stream),),
    )
    result = run_scenario(scenario)
    first, second = result.sessions
    assert first.bound == pytest.approx(3600.0 + RTT)
    assert not first.servable and first.target == 0.5  # every reply states the reset: answer now
    assert (first.status, second.status) == (429, 429)
    assert len(result.calls) >= 1 and result.calls_after_left == 0
    assert first.done < result.wait_limit


def test_a_client_that_retries_through_a_blip_is_judged_from_its_first_request() -> None:
    scenario = Scenario(
        "blip",
        "every target unreachable for 3 s; the client retries 1 s after a failure",
        ("a1", "a2"),
        (rule(UNREACHABLE, end=3.0),),
        (Clients(retry_every=1.0),),
    )
    result = run_scenario(scenario)
    (session,) = result.sessions
    assert session.arrived == 0.0
    assert session.bound == pytest.approx(3.0 + RTT)
    assert session.servable and session.target == pytest.approx(3.5 + RTT)
    assert session.status == 200 and session.ttfb >= session.bound - 1e-9
    assert result.requests == len(session.requests) >= 1
    assert result.calls_after_left == 0


def test_the_scoreboard_lists_distinct_scenarios_and_prints_its_rows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = [s.name for s in scoreboard.SCENARIOS]
    assert len(names) == len(set(names)) >= 11
    result = run_scenario(Scenario("tiny", "healthy", ("a1",), ()))
    scoreboard.report([result], cpu_s=0.001, wall_s=0.001, sessions=True)
    out = capsys.readouterr().out
    assert "tiny" in out and "PASS" in out and "1 of 1 scenarios within target" in out
