"""Two `interlock serve` processes as a team runs them: separate state databases holding the
same accounts, one fake upstream (in this process), one real `redis-server`. What one learns
the other knows: the second sends no call to an account the first saw exhausted; with Redis
killed both keep serving, and once it is back (empty: no persistence) what either learned
meanwhile or before reaches the other and a late joiner."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.fake_upstream import FakeUpstream, preset
from tests.e2e import BODY, run
from tests.redis_server import RedisServer
from tests.serve_process import health, serve, write_config

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
ACCOUNTS = ("account-1", "account-2", "account-3")


@asynccontextmanager
async def instance(
    directory: Path, fake: FakeUpstream, urls: dict[str, str], redis_url: str
) -> AsyncIterator[str]:
    """One `interlock serve` process with its own state database holding the fake's
    accounts; yields its URL once it is linked to Redis."""
    directory.mkdir()
    config = write_config(directory, fake, urls, ACCOUNTS, redis_url=redis_url)
    async with serve(config) as serving:
        for _ in range(500):  # bounded: until it is linked to Redis
            if (await health(serving.url))["shared"]["redis"] == "connected":
                break
            await asyncio.sleep(0.01)
        yield serving.url


async def ask(url: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/messages", json=BODY) as response,
    ):
        json.loads(await response.text())
        return response.status


async def until(condition: Any, limit: float) -> None:
    for _ in range(int(limit / 0.01)):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {limit} s")


def test_two_processes_share_a_cooldown_and_what_one_learns_while_redis_is_down(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async def scenario() -> None:
        fake = FakeUpstream()
        urls = await fake.start(("daily", "prod"))
        for name in ACCOUNTS:
            fake.add_account(name)
        try:
            async with AsyncExitStack() as stack:
                first = await stack.enter_async_context(
                    instance(tmp_path / "a", fake, urls, redis_server.url)
                )
                second = await stack.enter_async_context(
                    instance(tmp_path / "b", fake, urls, redis_server.url)
                )
                # 1. the account the first tries first is exhausted; the second never calls it
                fake.script(None, [preset("quota_429")])
                assert await ask(first) == 200
                [one] = exhausted(fake)
                await until(lambda: applied(second, 1), limit=2.0)
                fake.clear_log()
                for _ in range(4):
                    assert await ask(second) == 200
                assert one not in generate_calls(fake)
                # 2. Redis killed: both keep serving; the second learns of another
                # exhausted account meanwhile
                redis_server.stop()
                await until(lambda: unreachable(first), limit=10.0)
                await until(lambda: unreachable(second), limit=10.0)
                fake.clear_log()
                fake.script(None, [preset("quota_429")])
                assert await ask(second) == 200
                [two] = exhausted(fake)
                assert two != one
                assert await ask(first) == 200
                # 3. Redis back: the first learns what the second learned meanwhile
                redis_server.start()
                await until(lambda: applied(first, 1), limit=5.0)
                fake.clear_log()
                for _ in range(4):
                    assert await ask(first) == 200
                assert generate_calls(fake) == set(ACCOUNTS) - {one, two}
                # 4. the restarted Redis lost everything written before; the instances wrote it
                # back, so a late joiner knows both exhausted accounts
                late = await stack.enter_async_context(
                    instance(tmp_path / "c", fake, urls, redis_server.url)
                )
                await until(lambda: applied(late, 2), limit=5.0)
                fake.clear_log()
                for _ in range(4):
                    assert await ask(late) == 200
                assert generate_calls(fake) == set(ACCOUNTS) - {one, two}
        finally:
            await fake.stop()

    run(scenario(), timeout=120)


def exhausted(fake: FakeUpstream) -> list[str | None]:
    return [r.account for r in fake.log if r.outcome == "preset:quota_429"]


def generate_calls(fake: FakeUpstream) -> set[str | None]:
    return {r.account for r in fake.requests(path="streamGenerateContent")}


async def applied(url: str, at_least: int) -> bool:
    return bool((await health(url))["shared"]["applied"] >= at_least)


async def unreachable(url: str) -> bool:
    return bool((await health(url))["shared"]["redis"] == "unreachable")
