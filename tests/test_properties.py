"""The engine's invariants (DESIGN §2, 1-8) as Hypothesis properties, through the real runner.

Every scenario (tests/scenarios.py) runs its concurrent requests as asyncio tasks through
`engine.runner.Runner` on one `VirtualClock`, sharing one pool, against a scripted upstream, with
recording clients and a recording trace sink (tests/world.py); the invariants are read from what
was recorded (tests/invariants.py). Every row of the transition table and of the breaker table a
run takes is recorded with `hypothesis.event` (`--hypothesis-show-statistics` lists them), and
`test_the_generator_takes_every_reachable_row` checks that the generator reaches them all.

Example counts scale with the Hypothesis profile (tests/conftest.py): `HYPOTHESIS_PROFILE=dev`
is the quick loop.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import Phase, event, given, settings

from engine.bounds import step_bound
from engine.events import UpstreamFailed
from engine.health import BREAKER_TABLE
from engine.policy import load_policy
from engine.store import AccountRecord
from engine.table import TRANSITIONS
from tests import invariants as inv
from tests.scenarios import BODIES, CHAINS, MODELS, scenarios
from tests.world import Arrival, Observed, Reply, Scenario, run

Check = Callable[[Observed], list[str]]


def examples(n: int) -> int:
    """`n` examples in the default profile, proportionally fewer in a quicker one."""
    profile = settings.default
    assert profile is not None
    return max(5, n * profile.max_examples // 100)


CASES = examples(300)


def observe(s: Scenario) -> Observed:
    seen = run(s, inv.Conservation())
    for source, trigger, dest in sorted(inv.rows_taken(seen), key=str):
        event(f"row {source} --{trigger}--> {dest}")
    for source, trigger, dest in sorted(inv.breaker_rows_taken(seen)):
        event(f"breaker {source} --{trigger}--> {dest}")
    if any(isinstance(b.event, UpstreamFailed) and b.event.shared_duplicate for b in seen.brackets):
        event("a 429 inside the shared dedup window another instance holds")
    steps = max((len(inv.steps_of(seen, rid)) for rid in seen.clients), default=0)
    bound = step_bound(s.policy, len(s.accounts))
    event(f"most steps of a request: {10 * (10 * steps // bound)}-% of the step bound")
    return seen


def holds(check: Check, s: Scenario) -> None:
    violations = check(observe(s))
    assert not violations, "\n".join(violations[:10])


# Safety -------------------------------------------------------------------------------------------
@settings(max_examples=CASES)
@given(scenarios())
def test_1_every_request_ends_within_its_step_bound_and_its_deadline(s: Scenario) -> None:
    holds(inv.check_termination, s)


@settings(max_examples=CASES)
@given(scenarios())
def test_2_after_commit_no_attempt_is_made_and_no_content_is_duplicated(s: Scenario) -> None:
    holds(inv.check_commit, s)


@settings(max_examples=CASES)
@given(scenarios())
def test_3_no_account_or_target_is_sent_to_before_a_reset_the_upstream_stated(s: Scenario) -> None:
    holds(inv.check_stated_resets, s)


@settings(max_examples=CASES)
@given(scenarios())
def test_3_a_cooldown_or_capacity_rest_in_force_only_ever_extends(s: Scenario) -> None:
    holds(inv.check_rests_only_extend, s)


@settings(max_examples=CASES)
@given(scenarios())
def test_3_concurrent_429s_inside_the_dedup_window_escalate_once(s: Scenario) -> None:
    holds(inv.check_dedup, s)


@settings(max_examples=CASES)
@given(scenarios())
def test_4_each_request_has_one_outcome_and_releases_every_lease(s: Scenario) -> None:
    holds(inv.check_one_outcome, s)


@settings(max_examples=CASES)
@given(scenarios())
def test_4_every_timer_armed_is_fired_by_the_runner_or_cancelled(s: Scenario) -> None:
    holds(inv.check_timers, s)


@settings(max_examples=examples(100))
@given(scenarios())
def test_5_the_same_scenario_runs_to_the_identical_sequence(s: Scenario) -> None:
    first, second = run(s).signature(), run(s).signature()
    assert first == second


# Liveness -----------------------------------------------------------------------------------------
@settings(max_examples=CASES)
@given(scenarios())
def test_6_a_request_never_waits_or_gives_up_while_a_target_is_usable(s: Scenario) -> None:
    holds(inv.check_conservation, s)


@settings(max_examples=CASES)
@given(scenarios())
def test_7_a_failure_changes_only_the_state_of_its_scope(s: Scenario) -> None:
    holds(inv.check_scope, s)


@settings(max_examples=CASES)
@given(scenarios())
def test_8_once_the_upstream_recovers_the_next_request_succeeds_at_once(s: Scenario) -> None:
    holds(inv.check_recovery, s)


# The generator reaches every row ------------------------------------------------------------------
COVERAGE_EXAMPLES = 1000
UNREACHABLE: dict[tuple[str, str, str | None], str] = {
    **{
        (state, trigger, "Failed"): f"{state} is transient: the engine leaves it within the "
        "same call, so no event from outside can find a request there"
        for state in ("Selecting", "Switching", "Fallback")
        for trigger in ("client_disconnected", "deadline_expired")
    },
    **{
        (state, "deadline_expired", "Failed"): "no wait starts that would end at or past the "
        "deadline (invariant 1), so the wait's timer always fires first"
        for state in ("CapacityWait", "RateLimitWait", "Backoff")
    },
    ("Streaming", "token_unavailable", "Switching"): "the access token is obtained before the "
    "attempt is sent, so the token endpoint cannot fail once the stream is open",
}


def test_the_generator_takes_every_reachable_row_and_every_invariant_holds() -> None:
    """A fixed, derandomized run of the generator takes every reachable row of
    `engine.table.TRANSITIONS` and of `engine.health.BREAKER_TABLE` (the unreachable ones are
    listed above with why), and every invariant holds on each scenario."""
    taken: set[tuple[str, str, str | None]] = set()
    breaker: set[tuple[str, str, str]] = set()
    shared_quota_duplicates = 0

    @settings(
        max_examples=COVERAGE_EXAMPLES, derandomize=True, database=None, phases=[Phase.generate]
    )
    @given(scenarios())
    def explore(s: Scenario) -> None:
        seen = observe(s)
        nonlocal shared_quota_duplicates
        taken.update(inv.rows_taken(seen))
        breaker.update(inv.breaker_rows_taken(seen))
        shared_quota_duplicates += sum(
            isinstance(b.event, UpstreamFailed)
            and b.event.shared_duplicate
            and b.attempt is not None
            and b.attempt.reply.body is not None
            and b.attempt.reply.body.name == "quota"
            for b in seen.brackets
        )
        for name, check in inv.ALL_CHECKS.items():
            violations = check(seen)
            assert not violations, f"{name}: {violations[:5]}"

    explore()
    table = {(r.source, r.trigger, r.dest) for r in TRANSITIONS}
    assert set(UNREACHABLE) <= table
    assert taken - table == set(), "steps that are not rows of the table"
    assert table - set(UNREACHABLE) - taken == set(), "reachable rows never taken"
    assert taken & set(UNREACHABLE) == set(), "rows listed as unreachable were taken"
    assert {(r.source, r.trigger, r.dest) for r in BREAKER_TABLE} - breaker == set()
    assert shared_quota_duplicates > 0, "no quota 429 met a window another instance holds"


def test_every_breaker_transition_taken_is_a_row_of_the_breaker_table() -> None:
    policy = load_policy(
        "default",
        {"strategy": "sticky", "endpoints": ("daily",), "breaker": {"failures_to_open": 1}},
    )
    slow_ok = Reply("ok", delay=0.5)
    fail = Reply("error", BODIES["500"], delay=0.05)
    scenario = Scenario(
        policy,
        (AccountRecord(id="a0"),),
        MODELS,
        ((("a0", "daily"), (fail, slow_ok)),),
        heal_at=1e9,
        arrivals=(Arrival(0.0, "m1"), Arrival(0.0, "m1")),
        recovery=False,
    )
    # r0's attempt fails at 0.05 and opens the breaker; r1's, sent at 0 too, answers at 0.5
    rows = inv.breaker_rows_taken(run(scenario))
    assert rows <= {(r.source, r.trigger, r.dest) for r in BREAKER_TABLE}


# The step bound is tight --------------------------------------------------------------------------
def adversarial(fallback: int, refresh: bool) -> Scenario:
    """One request against 4 accounts on 2 endpoints where every attempt is throttled (hybrid,
    every account unhealthy), opens its stream, is rate limited for 3 s inside it, and pauses
    before switching (another account's 3 s rest has always ended by then): 6 steps per failed
    attempt, for 40 attempts per model; with `refresh`, a 401 inside the stream first."""
    policy = load_policy(
        "default",
        {
            "strategy": "hybrid",
            "health": {"initial": 0},
            "hybrid_emergency_throttle_ms": 250,  # the JS proxy's (0 by default)
            "hybrid_last_resort_throttle_ms": 500,
            "endpoints": ["daily", "prod"],
            "switch_account_delay_ms": 1000,
            "max_retries": 20,
            "max_rate_limit_retries": 20,
            "max_pool_waits": 0,
            "max_retry_rounds": 0,
            "max_wait_before_error_ms": 600_000,
            "deadline_ms": 3_600_000,
            "fallback_enabled": fallback > 0,
            "max_fallback_depth": max(fallback, 1),
        },
    ).model_copy(update={"fallback_chains": CHAINS})
    accounts = tuple(AccountRecord(id=f"a{i}") for i in range(4))
    limited = Reply("error_in_stream", BODIES["rate limit 3 s"])
    script = ((Reply("error_in_stream", BODIES["401"]),) if refresh else ()) + (limited,) * 200
    scripts = tuple(((a.id, e), script) for a in accounts for e in policy.endpoints)
    return Scenario(policy, accounts, MODELS, scripts, 1e9, (Arrival(0.0, "m1"),), recovery=False)


@pytest.mark.parametrize(("fallback", "refresh"), [(0, False), (0, True), (2, True)])
def test_an_adversarial_upstream_drives_a_request_to_most_of_its_step_bound(
    fallback: int, refresh: bool
) -> None:
    s = adversarial(fallback, refresh)
    seen = run(s, inv.Conservation())
    for check in inv.ALL_CHECKS.values():
        assert check(seen) == []
    steps = len(inv.steps_of(seen, "r0"))
    assert steps >= 0.8 * step_bound(s.policy, len(s.accounts), "m1")
    assert steps >= 0.95 * inv.tight_step_bound(s.policy, len(s.accounts), "m1")
