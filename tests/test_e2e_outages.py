"""Issue 8 as a user sees it: the real proxy on the fake upstream, with one endpoint down, a
capacity hint on one account, every account exhausted. Serve as soon as anything can serve."""

from __future__ import annotations

import logging
import time

import pytest

from adapters.fake_upstream import drop_before, error, google_error
from tests.e2e import calls, post, proxy, run, written

A1, A2 = "account-1", "account-2"
#: the e2e proxy's shortened policy keeps waits at 0; these tests want v2's own behaviour
LIVE = {"max_wait_before_error_ms": 120_000}


def capacity_for(seconds: int) -> object:
    return error(
        503,
        google_error(
            503,
            "No capacity available for model claude-sonnet-4-6 on the server",
            "UNAVAILABLE",
            reason="MODEL_CAPACITY_EXHAUSTED",
            retry_delay=f"{seconds}s",
        ),
    )


def test_one_endpoint_refusing_connections_is_skipped_and_every_request_is_served() -> None:
    # v1: after ~55 requests every request answered 529 with no upstream call
    async def scenario() -> None:
        async with proxy(policy=LIVE) as served:
            assert served.fake is not None
            served.fake.script(None, [drop_before()] * 1000, endpoint="daily")
            started = time.monotonic()
            statuses = [(await post(served))[0] for _ in range(70)]
            elapsed = time.monotonic() - started
            assert statuses == [200] * 70
            daily = [c for c in calls(served) if c[0] == "daily"]
            # three failures open its breaker; then one probe per second at most
            assert len(daily) <= 3 + int(elapsed) + 1, (len(daily), elapsed)
            assert len([c for c in calls(served) if c[0] == "prod"]) == 70

    run(scenario())


def test_a_long_capacity_hint_on_one_account_is_served_at_once_by_another() -> None:
    # v1: waits of max(40 s, tier) x5 on the same account: 220 s
    async def scenario() -> None:
        async with proxy(policy=LIVE) as served:
            assert served.fake is not None
            served.fake.script(A1, [capacity_for(40)] * 10)
            started = time.monotonic()
            status, _, _ = await post(served)
            assert status == 200 and time.monotonic() - started < 2.0
            assert calls(served) == [("daily", A1), ("prod", A1), ("daily", A2)]

    run(scenario())


def test_every_account_exhausted_answers_a_real_429_before_any_ping_when_streaming() -> None:
    # v1: three 5 s switch pauses passed the ping interval: a 200 stream, then an SSE error
    quota = error(
        429,
        google_error(
            429,
            "You have exhausted your capacity on this model.",
            reason="QUOTA_EXHAUSTED",
            metadata={"quotaResetDelay": "3600s"},
        ),
    )

    async def scenario() -> None:
        async with proxy(accounts=3, policy=LIVE, server={"ping_interval_s": 0.2}) as served:
            assert served.fake is not None
            served.fake.script(None, [quota] * 10)
            status, headers, body = await post(served, stream=True)
            assert status == 429 and int(headers["retry-after"]) > 3500
            assert body["error"]["type"] == "rate_limit_error"
            assert len(calls(served)) == 3  # each account once: a quota rests the account

    run(scenario())


def test_an_absurd_retry_delay_rests_an_account_for_a_day_at_most_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # issue 11: retryDelay 999999999s rested every account x model for 31 years, persisted
    quota = error(
        429,
        google_error(
            429,
            "You have exhausted your capacity on this model.",
            reason="QUOTA_EXHAUSTED",
            retry_delay="999999999s",
        ),
    )

    async def scenario() -> None:
        async with proxy(policy=LIVE) as served:
            assert served.fake is not None
            served.fake.script(A1, [quota])
            status, _, _ = await post(served)
            assert status == 200  # account-2 serves
            await written(served)
            cooldowns = {a.email: a.cooldowns for a in served.store.accounts()}
            (until, _reason), *_ = cooldowns["account-1@sandbox.invalid"].values()
            assert until - time.time() <= 86_400 + 5

    with caplog.at_level(logging.WARNING, logger="interlock.transport"):
        run(scenario())
    assert any(
        "capped at 1d0h0m0s" in r.getMessage() or "capped at 24h0m0s" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
