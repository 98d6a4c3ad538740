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
)
from engine.failures import FailureKind, UpstreamFacts
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


def test_an_unhealthy_pool_is_served_after_the_hybrid_emergency_throttle_of_250_ms() -> None:
    world = World(["A"])
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
    assert world.timers(request) == [(30.5, "every account cooling down")]
    world.fire_timer(request)
    assert world.attempts() == [(30.5, "A", "daily")]


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


def test_capacity_exhaustion_retries_the_same_endpoint_on_the_tiers_then_switches_briefly() -> None:
    world = World(["A", "B"])
    request = world.open()
    for _ in range(6):
        world.answer(request, capacity(503))
        if request.state == "CapacityWait":
            world.fire_timer(request)
    assert world.attempts() == [
        (0.0, "A", "daily"),
        (5.0, "A", "daily"),
        (15.0, "A", "daily"),
        (35.0, "A", "daily"),
        (65.0, "A", "daily"),
        (125.0, "A", "daily"),
        (125.0, "B", "daily"),
    ]
    rest = world.pool.cooldown("A", MODEL, 125.0)
    assert rest is not None and rest.reason == "capacity exhausted"
    assert 135.0 <= rest.until <= 145.0  # 15 s +- 5 s jitter, never a quota lock


def test_capacity_exhaustion_honours_the_servers_retry_delay_when_longer_than_the_tier() -> None:
    world = World(["A"])
    request = world.open()
    world.answer(request, capacity(503, retry_ms=39_000))
    world.fire_timer(request)
    assert world.attempts() == [(0.0, "A", "daily"), (39.0, "A", "daily")]


def test_a_subsecond_reset_is_retried_on_the_same_endpoint_a_bounded_number_of_times() -> None:
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, rate_limit_429(300))  # 300 ms -> +200 ms = 500 ms
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


def test_a_short_rate_limit_backs_off_exponentially_on_the_same_account_then_switches() -> None:
    world = World(["A", "B"])
    request = world.open()
    for _ in range(4):
        world.answer(request, rate_limit_429(3000))
        world.fire_timer(request)
    assert world.attempts() == [
        (0.0, "A", "daily"),
        (3.0, "A", "daily"),
        (9.0, "A", "daily"),
        (21.0, "A", "daily"),
        (26.0, "B", "daily"),
    ]


def test_quota_exhaustion_rests_the_account_until_its_reset_and_switches_after_5_s() -> None:
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, quota_429(7_384_500))
    rest = world.pool.cooldown("A", MODEL, 0.0)
    assert rest is not None and (rest.until, rest.reason) == (7384.5, "quota exhausted")
    world.fire_timer(request)
    assert world.attempts() == [(0.0, "A", "daily"), (5.0, "B", "daily")]


def test_quota_exhaustion_without_a_reset_rests_on_the_quota_tiers_until_a_success() -> None:
    world = World(["A"], strategy="sticky")
    rests = []
    for t in (0.0, 70.0, 400.0, 2300.0):
        request = world.at(t).open()
        world.answer(request, quota_429())
        rest = world.pool.cooldown("A", MODEL, t)
        assert rest is not None
        rests.append(rest.until - t)
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


def test_when_every_account_is_refused_by_401s_the_failure_is_not_retryable() -> None:
    world = World(["A", "B"])
    request = world.open()
    while request.outcome is None:
        world.answer(request, AUTH_401)
    assert {account for _, account, _ in world.attempts()} == {"A", "B"}
    assert (request.outcome.status, request.outcome.retryable) == (500, False)
    assert "refused the credentials of every account" in request.outcome.message


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


def test_a_server_error_pauses_1_s_then_tries_the_next_endpoint_then_another_account() -> None:
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, SERVER_500)
    world.fire_timer(request)
    world.answer(request, SERVER_500)
    world.answer(request, "ok")
    assert world.attempts() == [(0.0, "A", "daily"), (1.0, "A", "prod"), (1.0, "B", "daily")]
    assert world.pool.account("A").consecutive_failures == 1
    assert world.pool.account("B").consecutive_failures == 0


def test_an_unreachable_endpoint_moves_to_the_next_one_without_pausing() -> None:
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, "unreachable")
    world.answer(request, "unreachable")
    assert world.attempts() == [(0.0, "A", "daily"), (0.0, "A", "prod"), (0.0, "B", "daily")]


def test_three_consecutive_failures_rest_the_account_for_the_extended_cooldown() -> None:
    world = World(["A"], strategy="sticky")
    for t in (0.0, 10.0, 20.0):
        request = world.at(t).open()
        world.answer(request, "unreachable")
        world.answer(request, "unreachable")
        world.handle(request, ClientDisconnected())
    rest = world.pool.cooldown("A", MODEL, 20.0)
    assert rest is not None and (rest.until, rest.reason) == (80.0, "consecutive failures")


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
    world.answer(request, UpstreamFacts(status=413, message="Request payload size exceeds"))
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


def test_an_empty_stream_is_retried_twice_after_500_and_1000_ms_then_overloaded() -> None:
    world = World(["A"])
    request = world.open()
    for _ in range(2):
        world.answer(request, "empty")
        world.fire_timer(request)
    world.answer(request, "empty")
    assert world.attempts() == [(0.0, "A", "daily"), (0.5, "A", "daily"), (1.5, "A", "daily")]
    outcome = request.outcome
    assert outcome is not None
    assert (outcome.status, outcome.error_type) == (529, "overloaded_error")


def test_an_empty_stream_ends_with_a_placeholder_only_if_configured() -> None:
    world = World(["A"], empty_response_placeholder=True, max_empty_retries=0)
    request = world.open()
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
    assert request.state == "Backoff"


# Switching and Fallback -------------------------------------------------------------------------


def test_attempts_are_bounded_by_max_retries_or_accounts_plus_one() -> None:
    world = World(["A", "B"], max_wait_before_error_ms=0)
    request = world.open()
    while request.outcome is None:
        if request.wait_until is not None:
            world.fire_timer(request)
        else:
            world.answer(request, "unreachable")
    assert request.attempts == 5 and len(world.attempts()) == 10
    outcome = request.outcome
    assert (outcome.status, outcome.error_type, outcome.failure) == (
        500,
        "api_error",
        FailureKind.UNREACHABLE,
    )


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
    world = World(["A", "B"], strategy="sticky")
    waiting, other = world.open(), world.open()
    world.answer(waiting, capacity(503))  # waits 5 s to retry A
    world.at(1.0).answer(other, quota_429(7_384_500))  # A now rests for two hours
    world.fire_timer(waiting)
    assert world.attempts(waiting) == [(0.0, "A", "daily"), (5.0, "B", "daily")]


# Any state ----------------------------------------------------------------------------------------


def test_a_client_that_leaves_during_a_wait_fails_the_request_and_cancels_the_timer() -> None:
    world = World(["A"])
    request = world.open()
    world.answer(request, capacity(503))
    world.at(2.0).handle(request, ClientDisconnected())
    assert request.outcome is not None and request.outcome.status == 499
    assert world.of_type(request, CancelTimer) and world.pool.leases() == 0


def test_a_client_that_leaves_during_an_attempt_cancels_it_upstream() -> None:
    world = World(["A"])
    request = world.open()
    world.at(1.0).handle(request, ClientDisconnected())
    assert world.of_type(request, CancelAttempt) and world.pool.leases() == 0


def test_no_wait_starts_that_would_end_past_the_deadline() -> None:
    world = World(["A", "B"], deadline_ms=8000)
    request = world.open()
    world.answer(request, capacity(503))  # the 5 s tier fits the 8 s deadline
    world.fire_timer(request)
    world.answer(request, capacity(503))  # the 10 s tier would not: switch now
    assert world.attempts() == [(0.0, "A", "daily"), (5.0, "A", "daily"), (5.0, "B", "daily")]


def test_the_deadline_fails_an_uncommitted_request_with_a_timeout() -> None:
    world = World(["A"], deadline_ms=30_000)
    request = world.open()
    world.at(30.0).handle(request, DeadlineExpired())
    outcome = request.outcome
    assert outcome is not None and (outcome.status, outcome.error_type) == (504, "timeout_error")
    assert world.of_type(request, CancelAttempt)


def test_when_overload_failures_spend_the_retry_budget_requests_stop_retrying() -> None:
    # 4 tokens, retries allowed while more than 2 remain: the pool-wide budget stops a storm.
    world = World(["A", "B"], retry_budget={"max_tokens": 4, "token_ratio": 0.5})
    first = world.open()
    world.answer(first, "unreachable")  # 3 tokens left: retried on the next endpoint
    assert world.attempts(first) == [(0.0, "A", "daily"), (0.0, "A", "prod")]
    world.answer(first, "unreachable")  # 2 left: no more retries, for any request
    outcome = first.outcome
    assert outcome is not None
    assert (outcome.status, outcome.error_type) == (529, "overloaded_error")
    second = world.open()
    world.answer(second, capacity(503))
    assert second.outcome is not None and second.outcome.status == 529
    assert len(world.attempts(second)) == 1


def test_successes_refund_the_retry_budget() -> None:
    world = World(["A"], retry_budget={"max_tokens": 4, "token_ratio": 0.5})
    world.pool.budget_tokens = 2.0
    request = world.open()
    world.answer(request, "ok")
    assert world.pool.budget_tokens == 2.5 and world.pool.retries_allowed()
