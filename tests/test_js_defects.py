"""The JavaScript proxy's defects (reference/seed-behaviour.md §7), each reproduced as its
scenario, with what interlock does instead. The JS behaviour is quoted from the EMPIRICAL traces
of §1.9; the assertions are ours."""

from __future__ import annotations

from engine.events import ContentReceived, StreamBroken, StreamOpened
from tests.support import (
    AUTH_401,
    FORBIDDEN_403,
    MODEL,
    NOT_FOUND_404,
    REVOKED_401,
    TOO_LONG_400,
    World,
    capacity,
    google,
    quota_429,
    rate_limit_429,
)


def test_1_subsecond_resets_no_longer_spin_on_one_account_forever() -> None:
    # JS: 429 retryDelay 0.5 s forever -> 24 calls in 12 s on A, B never tried, never ends.
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, rate_limit_429(500))
    world.answer(request, "ok")
    assert world.attempts() == [(0.0, "A", "daily"), (0.0, "B", "daily")]  # B at once


def test_2_short_limits_no_longer_double_forever_on_one_account() -> None:
    # JS: retryDelay 3 s -> waits 3, 6, 12, 24 s ... on A while B sat idle.
    world = World(["A", "B"])
    request = world.open()
    world.drive(request, rate_limit_429(3000))
    assert [a for _, a, _ in world.attempts()][:2] == ["A", "B"]
    assert world.attempts()[1][0] == 0.0
    assert request.outcome is not None and request.outcome.status == 429


def test_3_zero_accounts_fail_at_once_instead_of_waiting_forever() -> None:
    # JS: "All 0 account(s) rate-limited. Waiting 10s..." every 10.5 s, forever.
    world = World([])
    request = world.open()
    assert request.outcome is not None and request.outcome.status == 500
    assert "no accounts are configured" in request.outcome.message
    assert world.now == 0.0 and world.attempts() == []


def test_3_all_accounts_disabled_fail_at_once_instead_of_waiting_forever() -> None:
    world = World(["A", "B"])
    for account in ("A", "B"):
        world.pool.set_enabled(account, False, 0.0)
    request = world.open()
    assert request.outcome is not None
    assert "2 accounts disabled" in request.outcome.message


def test_4_waiting_for_short_pool_resets_is_counted_and_bounded() -> None:
    # JS: "all rate-limited, wait" iterations are uncounted: no bound on the request's duration.
    world = World(["A"], strategy="sticky", max_pool_waits=2, endpoints=("daily",))
    request = world.open()
    world.drive(request, rate_limit_429(30_000))  # every answer: rest A 30 s
    assert request.pool_waits == 2 and len(world.attempts()) == 3
    assert request.outcome is not None and request.outcome.status == 429
    assert request.outcome.retry_after_s == 30
    assert world.now == 60.0


def test_5_capacity_429s_never_escalate_into_a_two_hour_quota_lock() -> None:
    # JS: 429 MODEL_CAPACITY_EXHAUSTED x 6 -> A locked 2 h (classified as quota).
    world = World(["A", "B"])
    request = world.open()
    world.drive(request, capacity(429))
    assert world.pool.cooldown("A", MODEL, world.now) is None  # the account never rests
    rest = world.pool.rest("A", MODEL, "daily", world.now)
    assert rest is not None and rest.until - world.now <= 60.0  # at most the top tier
    assert {a for _, a, _ in world.attempts()} == {"A", "B"}


def test_5_a_503_capacity_retry_waits_for_the_servers_retry_delay() -> None:
    # JS: 503 with RetryInfo "39s" waited the 5 s tier and retried into the same wall.
    world = World(["A"], endpoints=("daily",))
    request = world.open()
    world.answer(request, capacity(503, retry_ms=39_000))
    world.fire_timer(request)
    assert world.attempts()[1][0] == 39.0


def test_7_a_generic_403_or_404_rotates_to_another_account() -> None:
    # JS: "API error 403/404" went straight to the client; B never tried.
    for facts in (FORBIDDEN_403, NOT_FOUND_404):
        world = World(["A", "B"])
        request = world.open()
        world.answer(request, facts)
        world.answer(request, facts)
        world.answer(request, "ok")
        assert world.attempts() == [(0.0, "A", "daily"), (0.0, "A", "prod"), (0.0, "B", "daily")]
        assert request.outcome is not None and request.outcome.ok


def test_8_a_stream_cut_after_commit_is_never_replayed_to_the_client() -> None:
    # JS: the client saw two message_start and "Hel" + "Hello".
    world = World(["A", "B"])
    request = world.open()
    world.handle(request, StreamOpened())
    world.handle(request, ContentReceived(content="Hel"))
    world.handle(request, StreamBroken(reason="terminated"))
    relayed = [e for _, _, e in world.effects if type(e).__name__ == "RelayContent"]
    assert len(relayed) == 1 and len(world.attempts()) == 1
    assert request.outcome is not None and request.outcome.committed and not request.outcome.ok


def test_10_a_400_mentioning_250000_tokens_is_not_mistaken_for_a_5xx() -> None:
    # JS: the substring "500" made it a server error, retried on every account.
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, TOO_LONG_400)
    assert len(world.attempts()) == 1
    assert request.outcome is not None and request.outcome.status == 400


def test_10_a_529_capacity_body_without_5xx_digits_is_still_capacity() -> None:
    # JS: a 529 body without "500"/"503" escaped to the client as an unknown error.
    world = World(["A"])
    request = world.open()
    world.answer(request, capacity(529))
    assert world.pool.rest("A", MODEL, "daily", 0.0) is not None
    assert world.attempts()[-1] == (0.0, "A", "prod")


def test_10_dotted_model_names_survive_in_rate_limit_messages() -> None:
    # JS: "Rate limited on ([^.]+)\\." turned gemini-3.1-pro-high into gemini-3.
    world = World(["A"])
    world.pool.cool_down("A", "gemini-3.1-pro-high", 3600.0, "quota exhausted", 0.0)
    request = world.open(model="gemini-3.1-pro-high")
    assert request.outcome is not None and "gemini-3.1-pro-high" in request.outcome.message


def test_10_an_error_message_mentioning_401_is_not_an_auth_failure() -> None:
    # JS: parseError mapped any message containing "401" to an authentication error.
    world = World(["A"])
    request = world.open()
    world.answer(request, google(status=400, message="max_tokens: 401 is too small"))
    assert request.outcome is not None and request.outcome.error_type == "invalid_request_error"


def test_12_a_transient_401_retries_with_a_fresh_token_not_the_stale_one() -> None:
    # JS: caches cleared but the same token variable went to the next endpoint.
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, AUTH_401)
    sends = [e for _, _, e in world.effects if type(e).__name__ == "SendAttempt"]
    assert [s.refresh_credentials for s in sends] == [False, True]
    assert sends[1].endpoint == "daily"


def test_12_a_revoked_account_is_not_tried_on_its_second_endpoint() -> None:
    # JS: after marking A invalid it still sent A's revoked token to the prod endpoint.
    world = World(["A", "B"])
    request = world.open()
    world.answer(request, REVOKED_401)
    assert world.attempts() == [(0.0, "A", "daily"), (0.0, "B", "daily")]


def test_6_a_new_request_never_wipes_the_pools_cooldowns() -> None:
    # JS: POST /v1/messages reset every rate limit of every model when all were limited.
    world = World(["A"])
    world.pool.cool_down("A", MODEL, 3600.0, "quota exhausted", 0.0)
    for _ in range(3):
        world.open()
    assert world.pool.cooldown("A", MODEL, 0.0) is not None
    assert world.attempts() == []


def test_quota_resets_are_honoured_to_the_millisecond() -> None:
    world = World(["A"], strategy="sticky")
    request = world.open()
    world.answer(request, quota_429(90_000))
    world.fire_timer(request)  # the pool wait ends at the reset, to the millisecond
    assert world.attempts() == [(0.0, "A", "daily"), (90.0, "A", "daily")]
