"""The quota reader: when it reads, how much at once, and what it tells the pool.

Driven on the virtual clock (`VirtualClock.run`: `asyncio.sleep` jumps), with scripted
`fetch` and `read_tier` functions in place of the Cloud Code calls."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest

from adapters.cloudcode.models import ModelInfo
from adapters.cloudcode.tier import Tier, tier_of
from adapters.config import QuotaSettings
from adapters.quota import QUOTA_REASON, REPORTED_EMPTY, QuotaMonitor, Reading
from engine.effects import CoolDownAccount, SendAttempt
from engine.policy import Policy
from engine.pool import AccountPool
from engine.runner.clock import VirtualClock
from engine.store import AccountRecord, InMemoryStore

MODEL = "claude-sonnet-4-6"
A1, A2, A3 = "a1", "a2", "a3"


def info(fraction: float | None, reset_in: float | None = None, *, wall: float = 0.0) -> ModelInfo:
    reset_wall = None if reset_in is None else wall + reset_in
    return ModelInfo(
        id=MODEL,
        display_name=MODEL,
        remaining_fraction=fraction,
        reset_time=None if reset_in is None else f"+{reset_in}s",
        reset_wall=reset_wall,
    )


class Upstream:
    """Scripted fetchAvailableModels: per account, the quota of MODEL (or an exception)."""

    def __init__(self, clock: VirtualClock, latency: float = 1.0) -> None:
        self.clock = clock
        self.latency = latency
        self.answers: dict[str, ModelInfo | Exception] = {}
        self.calls: list[tuple[float, str]] = []
        self.running = 0
        self.most_running = 0

    def set(self, account: str, fraction: float | None, reset_in: float | None = None) -> None:
        self.answers[account] = info(fraction, reset_in, wall=self.clock.wall())

    async def fetch(self, account: str) -> Mapping[str, ModelInfo]:
        self.calls.append((self.clock.now(), account))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(self.latency)
        finally:
            self.running -= 1
        answer = self.answers.get(account, info(1.0))
        if isinstance(answer, Exception):
            raise answer
        return {MODEL: answer}

    def reads(self, account: str) -> int:
        return sum(1 for _, a in self.calls if a == account)


def pool_of(*accounts: str, strategy: str = "round-robin") -> AccountPool:
    store = InMemoryStore([AccountRecord(id=a) for a in accounts])
    return AccountPool(Policy(strategy=strategy), store=store, now=0.0)  # type: ignore[arg-type]


def monitor(
    clock: VirtualClock,
    pool: AccountPool,
    upstream: Upstream,
    *,
    read_tier: Callable[[str], Awaitable[Tier]] | None = None,
    on_read: Callable[[str, Reading], None] | None = None,
    **settings: Any,
) -> QuotaMonitor:
    return QuotaMonitor(
        QuotaSettings(**settings),
        pool,
        upstream.fetch,
        read_tier,
        clock=clock,
        max_reset_s=86_400,
        rng=random.Random(0),
        on_read=on_read,
    )


def test_an_account_reported_at_zero_rests_until_its_reset_before_any_request() -> None:
    clock = VirtualClock()
    pool, upstream = pool_of(A1, A2), Upstream(clock)
    upstream.set(A1, 0.0, reset_in=3600)
    upstream.set(A2, 0.8)
    quota = monitor(clock, pool, upstream)

    clock.run(quota.read_all())

    now = clock.now()
    rest = pool.cooldown(A1, MODEL, now)
    assert rest is not None and rest.reason == REPORTED_EMPTY
    assert rest.until == pytest.approx(now + 3600 - upstream.latency)
    assert not pool.usable(A1, MODEL, now)
    assert pool.usable(A2, MODEL, now)
    assert pool.account(A2).quota[MODEL] == (0.8, now)


def test_a_zero_without_a_reset_ahead_feeds_the_strategy_but_rests_nothing() -> None:
    clock = VirtualClock()
    pool, upstream = pool_of(A1), Upstream(clock)
    upstream.answers[A1] = info(0.0, reset_in=-10, wall=clock.wall())  # a reset already past
    quota = monitor(clock, pool, upstream)

    clock.run(quota.read_all())

    assert pool.cooldown(A1, MODEL, clock.now()) is None
    assert pool.account(A1).quota[MODEL][0] == 0.0


def test_a_later_reading_with_quota_lifts_the_rest_a_reading_set() -> None:
    clock = VirtualClock()
    pool, upstream = pool_of(A1), Upstream(clock)
    upstream.set(A1, 0.0, reset_in=3600)
    quota = monitor(clock, pool, upstream)
    clock.run(quota.read_all())
    assert not pool.usable(A1, MODEL, clock.now())

    upstream.set(A1, 0.5)
    clock.run(quota.read(A1))

    assert pool.usable(A1, MODEL, clock.now())


def test_a_reading_never_lifts_a_rest_that_a_429_set() -> None:
    clock = VirtualClock()
    pool, upstream = pool_of(A1), Upstream(clock)
    pool.cool_down(A1, MODEL, 600.0, "quota exhausted", 0.0)
    upstream.set(A1, 0.5)
    quota = monitor(clock, pool, upstream)

    clock.run(quota.read_all())

    rest = pool.cooldown(A1, MODEL, clock.now())
    assert rest is not None and rest.reason == "quota exhausted"


def test_reads_start_at_once_and_repeat_about_every_refresh_s_with_jitter() -> None:
    clock = VirtualClock()
    pool, upstream = pool_of(A1), Upstream(clock, latency=0.0)
    quota = monitor(clock, pool, upstream, refresh_s=100, jitter=0.1)

    async def run_for(seconds: float) -> None:
        quota.start()
        await asyncio.sleep(seconds)
        await quota.close()

    clock.run(run_for(1000))

    times = [at for at, _ in upstream.calls]
    assert times[0] == 0.0
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert 9 <= len(gaps) <= 11
    assert all(90 <= gap <= 110 for gap in gaps)
    assert len(set(gaps)) > 1  # jittered, not a fixed period


def test_at_most_concurrency_accounts_are_read_at_once() -> None:
    clock = VirtualClock()
    accounts = [f"a{i}" for i in range(10)]
    pool, upstream = pool_of(*accounts), Upstream(clock)
    quota = monitor(clock, pool, upstream, concurrency=3)

    clock.run(quota.read_all())

    assert upstream.most_running == 3
    assert sorted(a for _, a in upstream.calls) == sorted(accounts)


def test_concurrent_reads_of_one_account_share_one_flight() -> None:
    clock = VirtualClock()
    pool, upstream = pool_of(A1), Upstream(clock)
    quota = monitor(clock, pool, upstream)

    async def many() -> list[Reading]:
        return await asyncio.gather(*(quota.read(A1) for _ in range(5)))

    readings = clock.run(many())

    assert upstream.reads(A1) == 1
    assert len({id(r) for r in readings}) == 1


def test_a_failed_read_keeps_the_last_reading_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock()
    pool, upstream = pool_of(A1), Upstream(clock)
    upstream.set(A1, 0.4)
    quota = monitor(clock, pool, upstream)
    clock.run(quota.read(A1))
    upstream.answers[A1] = RuntimeError("HTTP 503 from every endpoint")

    with caplog.at_level(logging.WARNING, "interlock.quota"):
        clock.run(quota.read(A1))
        clock.run(quota.read(A1))

    reading = quota.readings[A1]
    assert reading.models[MODEL].remaining_fraction == 0.4
    assert reading.error == "HTTP 503 from every endpoint"
    assert [r.getMessage() for r in caplog.records] == [
        "quota of a1 not read: HTTP 503 from every endpoint"
    ]


def test_a_quota_429_reads_the_account_again_at_most_once_per_after_429_s() -> None:
    clock = VirtualClock()
    pool, upstream = pool_of(A1, A2), Upstream(clock, latency=0.0)
    quota = monitor(clock, pool, upstream, after_429_s=5)
    rest = CoolDownAccount(account=A1, model=MODEL, until=60.0, reason=QUOTA_REASON)
    other = CoolDownAccount(account=A2, model=MODEL, until=60.0, reason="rate limited")
    send = SendAttempt(account=A2, endpoint="daily", model=MODEL, attempt=1)

    async def story() -> None:
        for second in range(12):  # a quota 429 rests a1 every second; a2 only rate limits
            quota.emitted(f"r{second}", clock.now(), "Switching", [send, rest])
            quota.emitted(f"s{second}", clock.now(), "Switching", [other])
            await asyncio.sleep(1)
        await asyncio.sleep(0)

    clock.run(story())

    assert QUOTA_REASON == "quota exhausted"
    assert [at for at, _ in upstream.calls] == [0.0, 5.0, 10.0]
    assert upstream.reads(A2) == 0


def test_the_tier_is_read_with_the_first_reading_and_then_at_most_every_tier_refresh_s() -> None:
    clock = VirtualClock()
    pool, upstream = pool_of(A1), Upstream(clock, latency=0.0)
    tier_reads: list[float] = []

    async def read_tier(account: str) -> Tier:
        tier_reads.append(clock.now())
        return tier_of({"currentTier": {"id": "standard-tier"}, "paidTier": {"id": "g1-pro-tier"}})

    quota = monitor(clock, pool, upstream, read_tier=read_tier, refresh_s=100, jitter=0.0)

    async def run_for(seconds: float) -> None:
        quota.start()
        await asyncio.sleep(seconds)
        await quota.close()

    clock.run(run_for(7250))

    assert tier_reads == [0.0, 3600.0, 7200.0]
    assert quota.readings[A1].tier == Tier("pro", "g1-pro-tier")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"paidTier": {"id": "g1-ultra-tier"}, "currentTier": {"id": "free-tier"}}, "ultra"),
        ({"currentTier": {"id": "standard-tier"}}, "pro"),
        ({"currentTier": {"id": "g1-premium"}}, "pro"),
        ({"currentTier": {"id": "free-tier"}}, "free"),
        ({"currentTier": {"id": "legacy-tier"}}, "unknown"),
        ({"allowedTiers": [{"id": "free-tier"}]}, "unknown"),
        ("not an object", "unknown"),
    ],
)
def test_the_tier_is_named_as_the_javascript_proxy_names_it(answer: Any, expected: str) -> None:
    assert tier_of(answer).name == expected


def test_every_successful_reading_is_handed_on_and_a_removed_account_is_not_applied() -> None:
    clock = VirtualClock()
    pool, upstream = pool_of(A1, A2), Upstream(clock)
    handed: list[str] = []
    quota = monitor(clock, pool, upstream, on_read=lambda account, _: handed.append(account))

    async def remove_while_reading() -> None:
        reading = asyncio.ensure_future(quota.read(A2))
        await asyncio.sleep(0)
        pool.remove_account(A2)
        await reading
        await quota.read(A1)

    clock.run(remove_while_reading())

    assert handed == [A1]
    assert A2 not in quota.readings
