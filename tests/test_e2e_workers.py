"""`interlock serve --workers 2` as a user runs it: a real process tree on one port, against the
fake upstream (in this process) with a state database holding its accounts. Both workers
answer; concurrent streams are served whole; a cooldown one worker learns reaches the other
through the state database; a client that leaves still cancels the upstream; SIGTERM stops
everything."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.fake_upstream import FakeUpstream, hang, preset
from tests.e2e import BODY, run, sse_events, streamed_text
from tests.redis_server import RedisServer
from tests.serve_process import health, serve, write_config

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SO_REUSEPORT")


class Workers:
    def __init__(self, url: str, fake: FakeUpstream, process: asyncio.subprocess.Process) -> None:
        self.url, self.fake, self.process = url, fake, process


@asynccontextmanager
async def workers(
    tmp_path: Path, count: int = 2, redis_url: str | None = None
) -> AsyncIterator[Workers]:
    """`serve --workers count`; with `redis_url` the workers share the pool through Redis and
    read the state database only every 1.5 s (the longest poll allowed)."""
    fake = FakeUpstream()
    urls = await fake.start(("daily", "prod"))
    for name in ("account-1", "account-2"):
        fake.add_account(name)
    poll = 0.2 if redis_url is None else 1.5
    config = write_config(
        tmp_path,
        fake,
        urls,
        ("account-1", "account-2"),
        server=f"state_poll_s = {poll}\n",
        upstream="first_byte_timeout_s = 30\n",
        redis_url=redis_url,
    )
    try:
        async with serve(config, "--workers", str(count)) as serving:
            assert f"with {count} workers" in serving.first_line, serving.first_line
            served = Workers(serving.url, fake, serving.process)
            await until_both_answer(served, count)
            yield served
    finally:
        await fake.stop()


async def until_both_answer(served: Workers, count: int) -> None:
    """Every worker has started (new connections land on each, bounded)."""
    seen: set[int] = set()
    for _ in range(400):
        with suppress(aiohttp.ClientError):
            seen.add((await health(served.url))["worker"])
        if len(seen) == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"only workers {sorted(seen)} answered")


async def ask(url: str, *, stream: bool = False, timeout: float = 30) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url + "/v1/messages",
            json={**BODY, "stream": stream},
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response,
    ):
        text = await response.text()
        return response.status, sse_events(text) if stream else json.loads(text)


async def exhaust_account_1_on_one_worker(served: Workers) -> None:
    served.fake.script("account-1", [preset("quota_429")])  # once, to one worker
    for _ in range(6):  # round-robin in each worker: account-1 gets asked
        code, _ = await ask(served.url)
        assert code == 200
    assert any(r.outcome == "preset:quota_429" for r in served.fake.log)


async def only_account_2_is_asked(served: Workers) -> None:
    served.fake.clear_log()
    for _ in range(12):  # new connections: both workers answer some
        code, _ = await ask(served.url)
        assert code == 200
    generate = served.fake.requests(path="streamGenerateContent")
    assert generate and {r.account for r in generate} == {"account-2"}


def test_two_workers_share_the_port_and_serve_concurrent_streams_whole(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with workers(tmp_path) as served:
            status = await health(served.url)
            assert status["workers"] == 2
            answers = await asyncio.gather(*(ask(served.url, stream=True) for _ in range(24)))
            assert all(code == 200 for code, _ in answers)
            texts = {streamed_text(events) for _, events in answers}
            assert len(texts) == 1 and texts != {""}

    run(scenario(), timeout=120)


def test_a_cooldown_one_worker_learns_reaches_the_other_through_the_state_database(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with workers(tmp_path) as served:
            await exhaust_account_1_on_one_worker(served)
            await asyncio.sleep(1.5)  # written behind, read by the other within state_poll_s
            await only_account_2_is_asked(served)

    run(scenario(), timeout=120)


def test_a_cooldown_one_worker_learns_reaches_the_other_through_redis_at_once(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async def scenario() -> None:
        async with workers(tmp_path, redis_url=redis_server.url) as served:
            await exhaust_account_1_on_one_worker(served)
            applied: dict[int, int] = {}
            for _ in range(400):  # bounded: the other worker applied it from Redis
                status = await health(served.url)
                assert status["shared"]["redis"] == "connected"
                applied[status["worker"]] = status["shared"]["applied"]
                if sum(applied.values()) >= 1:
                    break
                await asyncio.sleep(0.005)
            assert sum(applied.values()) >= 1, applied
            await only_account_2_is_asked(served)

    run(scenario(), timeout=120)


def test_a_client_that_leaves_still_cancels_the_upstream_under_workers(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with workers(tmp_path) as served:
            served.fake.script(None, [hang()])
            with pytest.raises(asyncio.TimeoutError):
                await ask(served.url, stream=True, timeout=0.5)
            [record] = served.fake.requests(path="streamGenerateContent")
            for _ in range(300):  # the upstream call ends soon after the client left
                if record.finished is not None:
                    break
                await asyncio.sleep(0.01)
            assert record.finished is not None

    run(scenario(), timeout=120)


def test_sigterm_stops_the_workers_and_the_parent(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with workers(tmp_path) as served:
            served.process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(served.process.wait(), 30) == 0
            with pytest.raises(aiohttp.ClientError):
                await health(served.url)

    run(scenario(), timeout=120)


def test_workers_with_the_sandbox_are_refused_in_one_line(tmp_path: Path) -> None:
    async def scenario() -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "adapters.cli",
            "serve",
            "--sandbox",
            "--workers",
            "2",
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 2
        lines = err.decode().strip().splitlines()
        assert len(lines) == 1 and "--workers needs real accounts" in lines[0]

    run(scenario())
