"""Two interlock instances share one pool through a real `redis-server` on 127.0.0.1 (started
here on a free port; `.ci/run` installs Debian's redis-server; where the binary is missing
these tests skip and say so).

Both instances are sandbox proxies with their own fake upstream and state database; their
accounts have the same emails (`account-N@sandbox.invalid`), so the same shared keys."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from adapters.config import ConfigError, load_settings
from adapters.fake_upstream import preset
from adapters.serve import Served
from adapters.server import PROXY
from adapters.shared import redis_share
from adapters.shared.redis_share import RedisShare
from adapters.trace.format import read_trace
from adapters.trace.replay import check, replay
from engine.policy import load_policy
from engine.pool import AccountPool
from tests.e2e import MODEL, calls, post, proxy, run
from tests.redis_server import RedisServer
from tests.serve_process import health

A1 = "account-1"


def share_of(served: Served) -> RedisShare:
    share = served.runner.app[PROXY].engine.pool.store.share  # type: ignore[attr-defined]
    assert isinstance(share, RedisShare)
    return share


def pool_id(served: Served, account: str) -> str:
    store = served.runner.app[PROXY].store
    return next(i.id for i in store.accounts() if i.email.startswith(account + "@"))


@asynccontextmanager
async def instance(url: str) -> AsyncIterator[Served]:
    async with proxy(2, state={"redis_url": url}) as served:
        await asyncio.wait_for(share_of(served).connected.wait(), 10)
        yield served


async def until(condition: object, limit: float = 5.0) -> float:
    """Wait (bounded) until `condition()` holds; returns how long it took."""
    start = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - start > limit:
            raise AssertionError(f"not within {limit} s")
        await asyncio.sleep(0.005)
    return time.monotonic() - start


def resting(served: Served, account: str) -> bool:
    pool = served.runner.app[PROXY].engine.pool
    now = served.runner.app[PROXY].clock.now()
    return pool.cooldown(pool_id(served, account), MODEL, now) is not None


def test_a_cooldown_one_instance_learns_rests_the_account_on_the_other_within_100_ms(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> None:
        async with instance(redis_server.url) as first, instance(redis_server.url) as second:
            assert first.fake is not None and second.fake is not None
            first.fake.script(A1, [preset("quota_429")])
            status, _, _ = await post(first)
            assert status == 200
            assert resting(first, A1)
            took = await until(lambda: resting(second, A1), limit=2.0)
            assert took < 0.1, f"propagation took {took:.3f} s"
            second.fake.clear_log()
            for _ in range(4):
                status, _, _ = await post(second)
                assert status == 200
            assert A1 not in {account for _, account in calls(second)}

    run(scenario())


def test_a_late_joiner_starts_from_what_the_others_learned(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        async with instance(redis_server.url) as first:
            assert first.fake is not None
            first.fake.script(A1, [preset("quota_429")])
            status, _, _ = await post(first)
            assert status == 200
            await asyncio.wait_for(share_of(first).flushed(), 5)
            async with instance(redis_server.url) as late:
                assert resting(late, A1)

    run(scenario())


def test_an_account_disabled_on_one_instance_is_disabled_on_the_other(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> None:
        async with instance(redis_server.url) as first, instance(redis_server.url) as second:
            pool = first.runner.app[PROXY].engine.pool
            pool.set_enabled(pool_id(first, A1), False, 0.0)
            other = second.runner.app[PROXY].engine.pool
            await until(lambda: not other.account(pool_id(second, A1)).enabled)
            pool.set_enabled(pool_id(first, A1), True, 0.0)
            await until(lambda: other.account(pool_id(second, A1)).enabled)

    run(scenario())


def test_with_redis_down_both_serve_and_what_was_learned_meanwhile_arrives_when_it_returns(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> None:
        async with instance(redis_server.url) as first, instance(redis_server.url) as second:
            assert first.fake is not None
            redis_server.stop()
            await until(lambda: share_of(first).down is not None, limit=10)
            first.fake.script(A1, [preset("quota_429")])
            for served in (first, second, first):
                status, _, _ = await post(served)
                assert status == 200  # both keep serving on local state
            assert resting(first, A1) and not resting(second, A1)
            shown = await health(first.url)
            assert shown["status"] == "degraded"
            assert shown["shared"]["redis"] == "unreachable" and shown["shared"]["pending"] >= 1
            redis_server.start()
            took = await until(lambda: resting(second, A1), limit=5)
            assert took < 2.0 + 0.5, f"resynchronised after {took:.2f} s"
            assert share_of(first).down is None and share_of(second).down is None
            shown = await health(second.url)
            assert shown["status"] == "ok" and shown["shared"]["redis"] == "connected"
            assert shown["shared"]["applied"] >= 1

    run(scenario())


def test_redis_down_is_logged_once_without_the_password_and_back_is_logged_once(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="interlock.shared")
    url = f"redis://:s3cret-pass@127.0.0.1:{redis_server.port}/0"

    async def scenario() -> None:
        async with proxy(1, state={"redis_url": url}) as served:
            share = share_of(served)
            await asyncio.wait_for(share.connected.wait(), 10)
            redis_server.stop()
            await until(lambda: share.down is not None, limit=10)
            await asyncio.sleep(1.2)  # several retries while down
            redis_server.start()
            await until(lambda: share.down is None and share.connected.is_set(), limit=5)

    run(scenario())
    messages = [r.getMessage() for r in caplog.records if r.name == "interlock.shared"]
    assert sum("unreachable" in m for m in messages) == 1
    assert sum("reachable again" in m for m in messages) == 1
    assert all("s3cret" not in m for m in messages)
    assert all("***@127.0.0.1" in m for m in messages)


# a quota 429 without a stated reset rests for the tier of its strike; the window is short so
# that the test can step past it
DEDUP_POLICY = {"quota_backoff_tiers_ms": [300, 60_000], "rate_limit_dedup_window_ms": 2000}
SLOW_OK = {"first_byte_timeout_s": 5.0, "idle_timeout_s": 5.0}  # the second's 429 is 1 s late


def test_a_429_inside_the_window_another_instance_claimed_does_not_escalate(
    redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both instances meet a quota 429 on account-1 at about the same time. The first claims
    the shared dedup window (`SET NX PX`); the second's 429 lands inside it and is a duplicate:
    its earlier strike is not raised to the second tier (60 s), so the account rests 300 ms on
    both, not 60 s. The second's trace holds the fact and replays without Redis."""
    state = {"redis_url": redis_server.url}
    monkeypatch.setattr(redis_share, "CLAIM_TIMEOUT_S", 5.0)  # a loaded machine may be slow

    async def scenario() -> None:
        async with (
            proxy(1, policy=DEDUP_POLICY, state=state, upstream=SLOW_OK) as first,
            proxy(
                1,
                policy=DEDUP_POLICY,
                state=state,
                upstream=SLOW_OK,
                server={"record": str(tmp_path)},
            ) as second,
        ):
            for served in (first, second):
                await asyncio.wait_for(share_of(served).connected.wait(), 10)
            assert first.fake is not None and second.fake is not None
            assert (await post(first))[0] == 200  # warm: its access token is fetched
            second.fake.script(A1, [preset("quota_429")])  # an earlier strike on the second
            status, _, _ = await post(second)
            assert status == 429 and resting(second, A1)
            await until(lambda: not resting(first, A1) and not resting(second, A1))
            await asyncio.sleep(2.05)  # past the second's own window
            second.fake.script(A1, [preset("quota_429", latency=1.0)])
            first.fake.script(A1, [preset("quota_429")])
            late = asyncio.ensure_future(post(second))  # its 429 comes 1 s later
            await asyncio.sleep(0.05)
            status, _, _ = await post(first)  # claims the window
            assert status == 429
            assert await dedup_keys(redis_server) == 1
            assert not late.done(), "setup: the second's 429 came before the first's claim"
            status, _, _ = await late
            assert status == 429
            took = await until(
                lambda: not resting(first, A1) and not resting(second, A1), limit=10.0
            )
            assert took < 5.0, f"account-1 rested {took:.2f} s more: the duplicate escalated"

    run(scenario())
    (path,) = tmp_path.glob("*.jsonl")
    trace = read_trace(path)
    failed = [a.event for a in trace.of("answer") if a.event.get("type") == "UpstreamFailed"]
    assert [e.get("shared_duplicate", False) for e in failed] == [False, True]
    divergence = check(trace, replay(trace))
    assert divergence is None, divergence.describe()


async def dedup_keys(server: RedisServer) -> int:
    client = aioredis.from_url(server.url)
    try:
        return len(await client.keys("interlock:dedup:*"))
    finally:
        await client.aclose()


def test_the_shared_window_is_claimed_once_renewed_by_its_holder_and_expires(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="interlock.shared")

    async def scenario() -> None:
        async with instance(redis_server.url) as first, instance(redis_server.url) as second:
            one, two = share_of(first), share_of(second)
            a1, b1 = pool_id(first, A1), pool_id(second, A1)
            # answers, not their speed: a loaded machine may take longer than a 429 waits
            monkeypatch.setattr(redis_share, "CLAIM_TIMEOUT_S", 5.0)
            assert await one.claim(a1, MODEL, "r1", 1500) is True
            assert await two.claim(b1, MODEL, "r2", 1500) is False  # held elsewhere
            assert await one.claim(a1, MODEL, "r3", 1500) is False  # another request here too
            assert await two.claim(b1, "other-model", "r2", 1500) is True  # its own window
            await asyncio.sleep(1.0)
            assert await one.claim(a1, MODEL, "r1", 1500) is True  # the holder's repeat renews
            await asyncio.sleep(1.0)
            assert await two.claim(b1, MODEL, "r2", 1500) is False  # 2 s on: still renewed
            await asyncio.sleep(1.6)
            assert await two.claim(b1, MODEL, "r2", 1500) is True  # expired: claimed anew
            client = aioredis.from_url(redis_server.url)
            try:
                raw = await client.keys("interlock:dedup:*")
            finally:
                await client.aclose()
            assert all(b"@" not in key and b"account-1" not in key for key in raw)
            monkeypatch.setattr(redis_share, "CLAIM_TIMEOUT_S", 0.1)
            redis_server.pause()  # connected, but no reply: the 429 does not wait for one
            try:
                started = time.monotonic()
                assert await one.claim(a1, MODEL, "r8", 300) is None  # local window decides
                assert time.monotonic() - started < 1.0
                # a burst of 429s while Redis stalls holds few connections: the writer keeps one
                burst = [two.claim(b1, f"m{n}", "r", 300) for n in range(150)]
                assert set(await asyncio.gather(*burst)) == {None}
                pool = second.runner.app[PROXY].engine.pool
                now = second.runner.app[PROXY].clock.now()
                pool.cool_down(b1, "after-the-stall", now + 60, "quota exhausted", now)
                # a claim the closing link cuts short answers "not shared"
                cut = asyncio.ensure_future(one.claim(a1, MODEL, "r7", 300))
                await asyncio.sleep(0.02)
                await one.close()
                assert await cut is None
            finally:
                redis_server.resume()
            await asyncio.wait_for(two.flushed(), 10)
            assert not [r for r in caplog.records if "unreachable" in r.getMessage()]
            redis_server.stop()
            await until(lambda: two.down is not None, limit=10)
            started = time.monotonic()
            assert await two.claim(b1, MODEL, "r9", 300) is None  # local window decides
            assert time.monotonic() - started < 0.5

    run(scenario())


def test_a_quota_reading_on_one_instance_reaches_the_pool_of_another_that_reads_none(
    redis_server: RedisServer,
) -> None:
    """The first reads quota (account-1 at 30 %); the second, with quota reading off, gets the
    reading in its pool (hybrid's quota term) soon after it is written."""
    state = {"redis_url": redis_server.url}

    async def scenario() -> None:
        async with (
            proxy(2, state=state) as first,
            proxy(2, state=state, quota={"enabled": False}) as second,
        ):
            for served in (first, second):
                await asyncio.wait_for(share_of(served).connected.wait(), 10)
            assert first.fake is not None
            first.fake.set_quota(MODEL, 0.3, account=A1)
            reader = first.runner.app[PROXY].quota
            assert reader is not None and second.runner.app[PROXY].quota is None
            await reader.read_all()
            pool = second.runner.app[PROXY].engine.pool
            account = pool.account(pool_id(second, A1))
            took = await until(lambda: account.quota.get(MODEL, (None,))[0] == 0.3, limit=2.0)
            assert took < 1.0, f"the reading took {took:.3f} s"  # p99 in bench/share_bench.py

    run(scenario())


def test_closing_the_link_ends_promptly_whatever_redis_command_is_in_flight(
    redis_server: RedisServer,
) -> None:
    """redis-py 8.1 can swallow a cancellation that lands inside a command (the command just
    returns), so a loop around commands must notice the cancel itself; else `close` (at every
    shutdown) can wait forever. Closed at random moments while it writes and reads, the link
    ends within a second every time."""

    class Clock:
        def now(self) -> float:
            return time.monotonic()

        def wall(self) -> float:
            return time.time()

    async def scenario() -> None:
        rng = random.Random(7)
        ids = {f"a{i}": f"key{i}" for i in range(20)}
        for round_ in range(60):
            share = RedisShare(redis_server.url, lambda: ids, clock=Clock())
            share.start(AccountPool(load_policy(), list(ids), now=0.0))
            await asyncio.wait_for(share.connected.wait(), 10)
            for n, account in enumerate(ids):  # a burst for the writer
                share.local(
                    account, f"cooldown:m{round_}", {"until": time.time() + n, "reason": "r"}
                )
            claim = None
            if rng.random() < 0.5:  # and a claim in flight at times
                claim = asyncio.ensure_future(share.claim("a1", f"m{round_}", "r", 500))
            await asyncio.sleep(rng.random() * 0.01)
            await asyncio.wait_for(share.close(), 1.0)
            if claim is not None:  # a claim the closing cut short says "not shared"
                assert await asyncio.wait_for(claim, 1.0) in (True, None)

    run(scenario(), timeout=120)


def test_the_redis_url_never_shows_in_the_settings() -> None:
    settings = load_settings(env={"INTERLOCK_REDIS_URL": "redis://:s3cret@10.0.0.1:6379/0"})
    assert settings.state.redis_url is not None
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())
    with pytest.raises(ConfigError, match="redis://"):
        load_settings(env={}, overrides={"state": {"redis_url": "http://x"}})
