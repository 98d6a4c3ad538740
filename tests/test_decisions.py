"""Every row of the decision table (DESIGN.md §2), told as a story on the virtual clock with
exact times and exact upstream attempts (time, account, endpoint)."""

from __future__ import annotations

from engine.effects import CancelAttempt, CancelTimer, Commit, RelayContent
from engine.events import (
    ClientDisconnected,
    ContentReceived,
    DeadlineExpired,
    StreamBroken,
    StreamEnded,
    StreamOpened,
    UpstreamUnreachable,
)
from engine.failures import FailureKind
from tests.support import (
    AUTH_401,
    BAD_400,
    BANNED_403,
    MODEL,
    REVOKED_401,
    SERVER_500,
    VALIDATION_403,
    VERIFY_URL,
    World,
    capacity,
    failed,
    google,
    quota_429,
    rate_limit_429,
)

# Selecting ------------------------------------------------------------------------------------


def test_a_granted_account_is_tried_at_the_first_endpoint_and_a_stream_succeeds() -> None:
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, "ok")
    assert world.attempts() == [(0.0, "A", "daily")]
    assert request.state == "Done" and request.outcome and request.outcome.ok


def test_an_unhealthy_pool_is_served_after_a_configured_hybrid_emergency_throttle() -> None:
    world = World(["A"], hybrid_emergency_throttle_ms=250)
    world.pool.account("A").health, world.pool.account("A").health_at = 40.0, 0.0
    request = world.open()
    assert request.state == "Backoff"
    assert world.timers(request) == [(0.25, "hybrid throttle")]
    world.fire_timer(request)
    assert world.attempts() == [(0.25, "A", "daily")]


def test_when_every_account_rests_briefly_the_request_waits_for_the_earliest_reset() -> None:
    world = World(["A", "B"])
    world.pool.cool_down("A", MODEL, 30.0, "quota exhausted", 0.0)
    world.pool.cool_down("B", MODEL, 60.0, "quota exhausted", 0.0)
    request = world.open()
    assert request.state == "RateLimitWait"
    assert world.timers(request) == [(30.0, "every account cooling down")]  # no longer
    world.fire_timer(request)
    assert world.attempts() == [(30.0, "A", "daily")]


def test_when_every_account_rests_too_long_the_request_fails_429_with_retry_after() -> None:
    world = World(["A"])
    world.pool.cool_down("A", MODEL, 3600.0, "quota exhausted", 0.0)
    request = world.open()
    outcome = request.outcome
    assert outcome is not None
    assert (outcome.status, outcome.error_type, outcome.retry_after_s) == (
        429,
        "rate_limit_error",
        3600,
    )
    assert "Quota will reset after 1h0m0s" in outcome.message
    assert world.attempts() == []


def test_when_every_account_rests_too_long_a_configured_fallback_model_is_used() -> None:
    world = World(["A"], fallback_enabled=True)
    world.pool.cool_down("A", MODEL, 3600.0, "quota exhausted", 0.0)
    request = world.open()
    world.answer(request, "ok")
    assert [(s.account, s.endpoint) for s in world.sent] == [("A", "daily")]
    assert world.of_type(request, type(world.effects[0][2]))  # a SendAttempt was made
    assert request.outcome is not None and request.outcome.model == "gemini-3-flash"


def test_with_no_enabled_valid_account_the_request_fails_at_once_with_the_reasons() -> None:
    world = World(["A", "B"])
    world.pool.mark_invalid("A", "Token revoked - re-authentication required", None, 0.0)
    world.pool.set_enabled("B", False, 0.0)
    request = world.open()
    assert request.outcome is not None and request.outcome.status == 500
    assert "1 account invalid: Token revoked" in request.outcome.message
    assert "1 account disabled" in request.outcome.message
    assert world.attempts() == []


def test_with_no_usable_account_the_failure_names_the_accounts_and_is_not_retryable() -> None:
    world = World(["A", "B"])
    world.pool.mark_invalid("A", "Token revoked - re-authentication required", None, 0.0)
    world.pool.mark_invalid("B", "Token revoked - re-authentication required", None, 0.0)
    request = world.open()
    assert request.outcome is not None and not request.outcome.retryable
    assert "(A, B)" in request.outcome.message


# Fetching -------------------------------------------------------------------------------------


def test_capacity_exhaustion_rests_only_the_target_and_the_next_target_is_tried_at_once() -> None:
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, capacity(503))  # no hint: the target rests for the 5 s tier
    world.answer(request, capacity(503))
    world.answer(request, "ok")
    assert world.attempts() == [(0.0, "A", "daily"), (0.0, "A", "prod"), (0.0, "B", "daily")]
    rest = world.pool.rest("A", MODEL, "daily", 0.0)
    assert rest is not None and (rest.until, rest.reason) == (5.0, "capacity exhausted")
    assert world.pool.cooldown("A", MODEL, 0.0) is None  # never a quota lock on the account


def test_capacity_on_the_only_target_climbs_the_tiers_within_the_wait_budget() -> None:
    world = World(["A"], endpoints=("daily",))
    request = world.open()
    world.drive(request, capacity(503))
    assert [t for t, _, _ in world.attempts()] == [0.0, 5.0, 15.0, 35.0, 65.0]
    outcome = request.outcome
    assert (outcome.status, outcome.error_type, outcome.retry_after_s) == (
        529,
        "overloaded_error",
        60,
    )  # the next 60 s tier would pass the 120 s wait budget: say when instead


def test_capacity_everywhere_waits_for_the_earliest_server_hint_as_stated() -> None:
    world = World(["A"])
    request = world.open()
    world.answer(request, capacity(503, retry_ms=39_000))
    world.at(1.0).answer(request, capacity(503, retry_ms=3_000))  # prod: back at 4.0
    assert request.state == "CapacityWait"
    world.fire_timer(request)
    assert world.attempts() == [(0.0, "A", "daily"), (0.0, "A", "prod"), (4.0, "A", "prod")]


def test_a_short_capacity_hint_is_not_rounded_up_to_a_tier() -> None:
    world = World(["A"], endpoints=("daily",))
    request = world.open()
    world.answer(request, capacity(503, retry_ms=3_000))
    world.fire_timer(request)
    world.answer(request, "ok")
    assert world.attempts() == [(0.0, "A", "daily"), (3.0, "A", "daily")]  # not the 5 s tier


def test_a_subsecond_rate_limit_rests_the_account_while_another_serves_at_once() -> None:
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, rate_limit_429(300))  # 300 ms -> +200 ms = 500 ms
    assert world.attempts() == [(0.0, "A", "daily"), (0.0, "B", "daily")]
    rest = world.pool.cooldown("A", MODEL, 0.0)
    assert rest is not None and rest.until == 0.5


def test_a_subsecond_rate_limit_on_the_only_account_is_waited_out_exactly() -> None:
    world = World(["A"])
    request = world.open()
    world.answer(request, rate_limit_429(300))
    assert request.state == "RateLimitWait"
    world.fire_timer(request)
    assert world.attempts() == [(0.0, "A", "daily"), (0.5, "A", "daily")]


def test_a_concurrent_429_inside_the_dedup_window_switches_and_escalates_once() -> None:
    world = World(["A", "B"], strategy="sticky")
    first, second = world.open(), world.open()
    assert [s.account for s in world.sent] == ["A", "A"]
    world.answer(first, quota_429())  # strike 1: the 60 s quota tier
    world.at(1.0).answer(second, quota_429())  # same account x model 1 s later
    assert second.rl_duplicate and second.state == "Fetching"
    assert world.attempts(second) == [(0.0, "A", "daily"), (1.0, "B", "daily")]
    assert world.pool.note_rate_limit("A", MODEL, "probe", 1.5) == (True, 1)  # escalated once
    rest = world.pool.cooldown("A", MODEL, 1.0)
    assert rest is not None and rest.until == 61.0  # the longer of the two


def test_a_short_rate_limit_moves_the_request_to_another_account_at_once() -> None:
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, rate_limit_429(2000))
    world.answer(request, "ok")
    assert world.attempts() == [(0.0, "A", "daily"), (0.0, "B", "daily")]


def test_endless_short_rate_limits_on_the_only_account_end_in_a_bounded_429() -> None:
    world = World(["A"], endpoints=("daily",))
    request = world.open()
    world.drive(request, rate_limit_429(3000))
    times = [t for t, _, _ in world.attempts()]
    assert times[:4] == [0.0, 3.0, 6.0, 9.0]  # each stated reset waited out, no longer
    assert len(times) <= request.engine.policy.max_failed_sends(1)
    assert (request.outcome.status, request.outcome.error_type) == (429, "rate_limit_error")
    assert request.outcome.retry_after_s == 3


def test_quota_exhaustion_rests_the_account_until_its_reset_and_switches_without_a_pause() -> None:
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, quota_429(7_384_500))
    rest = world.pool.cooldown("A", MODEL, 0.0)
    assert rest is not None and (rest.until, rest.reason) == (7384.5, "quota exhausted")
    assert world.attempts() == [(0.0, "A", "daily"), (0.0, "B", "daily")]


def test_a_configured_switch_pause_is_kept_but_never_taken_when_nothing_is_left() -> None:
    world = World(["A", "B"], switch_account_delay_ms=5000)
    request = world.open()
    world.answer(request, quota_429(7_384_500))
    assert request.state == "Backoff"  # B is usable: the JS proxy's pause, as configured
    world.fire_timer(request)
    world.answer(request, quota_429(7_384_500))  # nothing left to switch to: no pause
    assert world.attempts() == [(0.0, "A", "daily"), (5.0, "B", "daily")]
    assert request.outcome is not None and request.outcome.status == 429


def test_quota_exhaustion_without_a_reset_rests_on_the_quota_tiers_until_a_success() -> None:
    world = World(["A"], strategy="sticky")
    rests = []
    for t in (0.0, 70.0, 400.0, 2300.0):
        request = world.at(t).open()
        world.answer(request, quota_429())
        rest = world.pool.cooldown("A", MODEL, t)
        assert rest is not None
        rests.append(rest.until - t)
        if request.outcome is None:
            world.handle(request, ClientDisconnected())
    assert rests == [60.0, 300.0, 1800.0, 7200.0]
    world.pool.record_success("A", MODEL, 9600.0)
    request = world.at(9600.0).open()
    world.answer(request, quota_429())
    rest = world.pool.cooldown("A", MODEL, 9600.0)
    assert rest is not None and rest.until == 9660.0


def test_a_transient_401_refreshes_the_token_once_and_retries_the_same_endpoint() -> None:
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, AUTH_401)
    refresh = [e for _, _, e in world.effects if getattr(e, "refresh_credentials", False)]
    assert world.attempts() == [(0.0, "A", "daily"), (0.0, "A", "daily")] and len(refresh) == 1
    world.answer(request, AUTH_401)
    assert world.attempts()[-1] == (0.0, "B", "daily")


def test_a_401_after_a_refresh_invalidates_the_account_and_when_none_is_left_says_so() -> None:
    world = World(["A", "B"])
    request = world.open()
    world.drive(request, AUTH_401)
    assert world.attempts() == [(0.0, "A", "daily")] * 2 + [(0.0, "B", "daily")] * 2
    assert world.pool.account("A").invalid_reason == "Authentication failed after a token refresh"
    assert (request.outcome.status, request.outcome.retryable) == (500, False)
    assert "No usable account: 2 accounts invalid" in request.outcome.message


def test_a_revoked_token_invalidates_the_account_and_another_serves_the_request() -> None:
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, REVOKED_401)
    world.answer(request, "ok")
    assert world.attempts() == [(0.0, "A", "daily"), (0.0, "B", "daily")]
    assert world.pool.account("A").invalid_reason == "Token revoked - re-authentication required"
    assert request.outcome is not None and request.outcome.ok


def test_a_403_asking_for_verification_invalidates_the_account_with_its_verify_url() -> None:
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, VALIDATION_403)
    state = world.pool.account("A")
    assert (state.invalid_reason, state.verify_url) == ("Account requires verification", VERIFY_URL)
    assert world.attempts()[-1] == (0.0, "B", "daily")


def test_a_403_terms_of_service_ban_invalidates_the_account() -> None:
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, BANNED_403)
    assert "Terms of Service" in (world.pool.account("A").invalid_reason or "")
    assert world.attempts()[-1] == (0.0, "B", "daily")


def test_a_server_error_counts_against_the_endpoint_and_the_next_target_is_tried_at_once() -> None:
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, SERVER_500)
    world.answer(request, SERVER_500)
    world.answer(request, "ok")
    assert world.attempts() == [(0.0, "A", "daily"), (0.0, "A", "prod"), (0.0, "B", "daily")]
    assert world.pool.endpoints["daily"].state == "closed"  # the success closed it again
    assert world.pool.endpoints["prod"].failures == 1
    assert world.pool.cooldown("A", MODEL, 0.0) is None  # never the account


def test_an_unreachable_endpoint_moves_to_the_next_one_without_pausing() -> None:
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, "unreachable")
    world.answer(request, "unreachable")
    assert world.attempts() == [(0.0, "A", "daily"), (0.0, "A", "prod"), (0.0, "B", "daily")]


def test_three_refused_connections_open_the_endpoint_and_requests_skip_it_until_its_probe() -> None:
    world = World(["A"], strategy="sticky")
    for t in (0.0, 0.1, 0.2):
        request = world.at(t).open()
        world.answer(request, "unreachable")  # daily refuses
        world.answer(request, "ok")  # prod serves at once
    assert world.pool.endpoints["daily"].state == "open"
    assert world.pool.cooldown("A", MODEL, 0.2) is None  # never the account
    skipped = world.at(0.5).open()
    world.answer(skipped, "ok")
    probe = world.at(1.2).open()  # the probe is due 1 s after opening
    world.answer(probe, "ok")
    assert world.attempts(skipped) == [(0.5, "A", "prod")]
    assert world.attempts(probe) == [(1.2, "A", "daily")]
    assert world.pool.endpoints["daily"].state == "closed"


def test_a_400_fails_at_once_with_the_upstreams_message() -> None:
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, BAD_400)
    outcome = request.outcome
    assert outcome is not None
    assert (outcome.status, outcome.error_type) == (400, "invalid_request_error")
    assert "Invalid `signature`" in outcome.message
    assert world.attempts() == [(0.0, "A", "daily")]


def test_a_413_fails_at_once_as_request_too_large() -> None:
    world = World(["A"])
    request = world.open()
    world.answer(request, google(status=413, message="Request payload size exceeds"))
    assert request.outcome is not None and request.outcome.status == 413
    assert request.outcome.error_type == "request_too_large"


# Streaming ------------------------------------------------------------------------------------


def test_the_first_content_commits_and_every_content_is_relayed_once() -> None:
    world = World(["A"])
    request = world.open()
    world.handle(request, StreamOpened())
    first = world.handle(request, ContentReceived(content="He"))
    second = world.handle(request, ContentReceived(content="llo"))
    assert [type(e) for e in first] == [Commit, RelayContent]
    assert [type(e) for e in second] == [RelayContent]
    world.handle(request, StreamEnded())
    assert request.outcome is not None and request.outcome.ok


def test_an_empty_stream_tries_every_other_target_first_then_retry_rounds_then_overloaded() -> None:
    world = World(["A"])
    request = world.open()
    world.drive(request, "empty")
    assert world.attempts() == [
        (0.0, "A", "daily"),
        (0.0, "A", "prod"),
        (0.5, "A", "daily"),  # after 500 ms, every target again
        (0.5, "A", "prod"),
        (1.5, "A", "daily"),  # after 1000 ms more
        (1.5, "A", "prod"),
    ]
    outcome = request.outcome
    assert (outcome.status, outcome.error_type) == (529, "overloaded_error")
    assert "empty response" in outcome.message


def test_an_empty_stream_ends_with_a_placeholder_only_if_configured() -> None:
    world = World(["A"], empty_response_placeholder=True, max_retry_rounds=0)
    request = world.open()
    world.answer(request, "empty")
    world.answer(request, "empty")
    assert request.outcome is not None and request.outcome.ok and request.outcome.placeholder


def test_a_stream_broken_before_any_content_is_retried_on_the_next_endpoint() -> None:
    world = World(["A"])
    request = world.open()
    world.handle(request, StreamOpened())
    world.handle(request, StreamBroken(reason="reset"))
    assert world.attempts() == [(0.0, "A", "daily"), (0.0, "A", "prod")]


def test_a_stream_broken_after_commit_fails_once_and_is_never_resent() -> None:
    world = World(["A", "B"])
    request = world.open()
    world.handle(request, StreamOpened())
    world.handle(request, ContentReceived(content="Hel"))
    world.handle(request, StreamBroken(reason="reset"))
    outcome = request.outcome
    assert outcome is not None and not outcome.ok and outcome.committed
    assert len(world.finishes(request)) == 1
    assert world.attempts() == [(0.0, "A", "daily")]


def test_an_error_object_inside_a_stream_before_content_is_handled_like_an_error_answer() -> None:
    world = World(["A", "B"])
    request = world.open()
    world.handle(request, StreamOpened())
    world.handle(request, failed(quota_429(7_384_500)))
    assert world.pool.cooldown("A", MODEL, 0.0) is not None
    assert world.attempts() == [(0.0, "A", "daily"), (0.0, "B", "daily")]


# Switching and Fallback -------------------------------------------------------------------------


def test_attempts_are_bounded_by_max_retries_or_accounts_plus_one_on_each_endpoint() -> None:
    world = World(["A", "B"], max_wait_before_error_ms=0, breaker={"failures_to_open": 100})
    request = world.open()
    world.drive(request, "unreachable")
    assert request.attempts == len(world.attempts()) == 4  # each target once (no pause fits)
    outcome = request.outcome
    assert (outcome.status, outcome.error_type, outcome.failure) == (
        500,
        "api_error",
        FailureKind.UNREACHABLE,
    )


def test_retry_rounds_stop_at_max_retries_or_accounts_plus_one_on_each_endpoint() -> None:
    world = World(["A", "B"], breaker={"failures_to_open": 100}, max_retry_rounds=10)
    request = world.open()
    world.drive(request, "unreachable")
    assert request.attempts == len(world.attempts()) == 10  # max(5, 3) * 2 endpoints


def test_when_attempts_run_out_a_configured_fallback_model_takes_over_once() -> None:
    world = World(
        ["A"], strategy="sticky", fallback_enabled=True, max_retries=1, max_wait_before_error_ms=0
    )
    request = world.open()
    while request.model == MODEL:
        if request.wait_until is not None:
            world.fire_timer(request)
        else:
            world.answer(request, SERVER_500)
    assert request.model == "gemini-3-flash" and request.hops == 1
    world.answer(request, "ok")
    assert request.outcome is not None and request.outcome.model == "gemini-3-flash"


def test_a_request_does_not_reuse_an_account_another_request_put_to_rest_meanwhile() -> None:
    world = World(["A", "B"], strategy="sticky", endpoints=("daily",))
    waiting, other = world.open(), world.open()
    world.answer(waiting, capacity(503, retry_ms=3000))  # A@daily rests 3 s
    world.answer(waiting, capacity(503, retry_ms=4000))  # B@daily rests 4 s: wait for A
    assert waiting.state == "CapacityWait"
    world.at(1.0).answer(other, quota_429(7_384_500))  # A now rests for two hours
    world.fire_timer(waiting)  # at 3.0 A is not used: the wait goes on for B
    assert waiting.state == "CapacityWait" and world.attempts(waiting)[-1][0] == 0.0
    world.fire_timer(waiting)
    assert world.attempts(waiting) == [
        (0.0, "A", "daily"),
        (0.0, "B", "daily"),
        (4.0, "B", "daily"),
    ]


# Any state ----------------------------------------------------------------------------------------


def test_a_client_that_leaves_during_a_wait_fails_the_request_and_cancels_the_timer() -> None:
    world = World(["A"])
    request = world.open()
    world.answer(request, capacity(503))
    world.answer(request, capacity(503))
    assert request.state == "CapacityWait"
    world.at(2.0).handle(request, ClientDisconnected())
    assert request.outcome is not None and request.outcome.status == 499
    assert world.of_type(request, CancelTimer) and world.pool.leases() == 0


def test_a_client_that_leaves_during_an_attempt_cancels_it_upstream() -> None:
    world = World(["A"])
    request = world.open()
    world.at(1.0).handle(request, ClientDisconnected())
    assert world.of_type(request, CancelAttempt) and world.pool.leases() == 0


def test_no_wait_starts_that_would_end_past_the_deadline() -> None:
    world = World(["A"], deadline_ms=8000, endpoints=("daily",))
    request = world.open()
    world.answer(request, capacity(503))  # the 5 s tier fits the 8 s deadline
    world.fire_timer(request)
    world.answer(request, capacity(503))  # the 10 s tier would not: answer now
    assert world.attempts() == [(0.0, "A", "daily"), (5.0, "A", "daily")]
    assert request.outcome is not None and request.outcome.status == 529
    assert request.outcome.retry_after_s == 10


def test_the_deadline_fails_an_uncommitted_request_with_a_timeout() -> None:
    world = World(["A"], deadline_ms=30_000)
    request = world.open()
    world.at(30.0).handle(request, DeadlineExpired())
    outcome = request.outcome
    assert outcome is not None and (outcome.status, outcome.error_type) == (504, "timeout_error")
    assert world.of_type(request, CancelAttempt)


def test_a_spent_endpoint_budget_stops_retries_of_failed_targets_but_never_a_first_attempt() -> (
    None
):
    world = World(
        ["A"], endpoints=("daily",), endpoint_budget={"max_tokens": 1, "refill_per_s": 0.1}
    )
    first = world.open()
    world.answer(first, SERVER_500)
    world.fire_timer(first)  # the 1 s round pause; the retry costs daily's only token
    world.answer(first, SERVER_500)
    assert first.state == "Backoff"  # round 2 paused 2 s...
    world.fire_timer(first)  # ...and now waits for a token instead of retrying
    assert world.attempts(first) == [(0.0, "A", "daily"), (1.0, "A", "daily")]
    second = world.at(3.0).open()  # a new request's first attempt never pays
    assert world.attempts(second) == [(3.0, "A", "daily")]


def test_the_endpoint_budget_refills_with_time() -> None:
    world = World(["A"], endpoint_budget={"max_tokens": 2, "refill_per_s": 1})
    health = world.pool.endpoints["daily"]
    health.spend(0.0)
    health.spend(0.0)
    assert health.retry_at(0.0) == 1.0
    assert health.retry_at(10.0) == 10.0 and health.tokens == 2


# found by `make mutants` -------------------------------------------------------------------------


def test_after_max_rate_limit_retries_on_one_account_the_request_gives_it_up() -> None:
    world = World(["A"], endpoints=("daily",), max_rate_limit_retries=1, max_retry_rounds=0)
    request = world.open()
    world.drive(request, rate_limit_429(1000))
    assert world.attempts() == [(0.0, "A", "daily"), (1.0, "A", "daily")]
    assert request.outcome.status == 429


def test_retry_after_rounds_a_fractional_reset_up() -> None:
    world = World(["A"])
    world.pool.cool_down("A", MODEL, 150.3, "quota exhausted", 0.0)
    request = world.open()
    assert request.outcome is not None and request.outcome.retry_after_s == 151


def test_a_429_inside_a_stream_after_commit_still_rests_the_account_until_its_reset() -> None:
    world = World(["A"])
    request = world.open()
    world.handle(request, StreamOpened())
    world.handle(request, ContentReceived(content="Hel"))
    world.handle(request, failed(rate_limit_429(60_000)))
    assert request.outcome is not None and request.outcome.committed
    rest = world.pool.cooldown("A", MODEL, 0.0)
    assert rest is not None and rest.until == 60.0


def test_a_probe_whose_token_endpoint_is_down_leaves_the_breaker_open() -> None:
    world = World(["A", "B"], endpoints=("daily",))
    health = world.pool.endpoints["daily"]
    for _ in range(3):
        health.failed(0.0)
    request = world.at(1.0).open()  # the probe
    assert health.state == "half_open"
    world.handle(request, UpstreamUnreachable(reason="token endpoint down", credentials=True))
    # no answer from the endpoint proves it is up: it is not closed; the probe was abandoned
    # and the request's next target (B) is the new probe
    assert world.attempts() == [(1.0, "A", "daily"), (1.0, "B", "daily")]
    assert health.state == "half_open" and request.probing


def test_a_retry_round_ends_at_the_next_probe_when_that_comes_sooner() -> None:
    world = World(["A"], endpoints=("daily",), breaker={"failures_to_open": 2})
    request = world.open()
    for _ in range(3):
        world.answer(request, "unreachable")
        if request.outcome is None:
            world.fire_timer(request)
    # round 1 pauses 1 s; the second refusal opens the breaker (probe due 1 s later), so
    # round 2 pauses 1 s, not its doubled 2 s
    assert [t for t, _, _ in world.attempts()] == [0.0, 1.0, 2.0]
