"""End-to-end harness: the real proxy (aiohttp on 127.0.0.1) in sandbox mode on the fake upstream.

The policy is shortened (10 ms capacity tiers, no switch pause, no pool waits, 0.5 s first-byte
timeout) so that every fault resolves in well under a second of real time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiohttp

from adapters import serve
from adapters.config import load_settings
from adapters.serve import Served
from adapters.server import PROXY

T = TypeVar("T")
FAST_POLICY: dict[str, Any] = {
    "capacity_backoff_tiers_ms": [2000],  # a rest outlasts the test: no timing races
    "max_capacity_retries": 1,
    "server_error_pause_ms": 0,
    "empty_retry_base_ms": 10,
    "max_rate_limit_retries": 0,
    "max_wait_before_error_ms": 0,
    "deadline_ms": 20_000,
    "strategy": "round-robin",
}
FAST_UPSTREAM: dict[str, Any] = {"first_byte_timeout_s": 0.5, "idle_timeout_s": 1.0}
MODEL = "claude-sonnet-4-6"
BODY = {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}


def run(coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


@asynccontextmanager
async def proxy(
    accounts: int = 2,
    *,
    policy: dict[str, Any] | None = None,
    server: dict[str, Any] | None = None,
    upstream: dict[str, Any] | None = None,
    models: dict[str, Any] | None = None,
    quota: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
) -> AsyncIterator[Served]:
    settings = load_settings(
        env={},
        overrides={
            "server": {"port": 0, **(server or {})},
            "policy": {**FAST_POLICY, **(policy or {})},
            "upstream": {**FAST_UPSTREAM, **(upstream or {})},
            "models": models or {},
            "quota": quota or {},
            "state": state or {},
        },
    )
    served = await serve.start(settings, sandbox_accounts=accounts, seed=0)
    try:
        yield served
    finally:
        await served.stop()


async def written(served: Served) -> None:
    """Wait until what the proxy queued for the state database so far is written (the writes
    happen behind the requests, not inside them)."""
    await served.runner.app[PROXY].sync.tick()


def calls(served: Served) -> list[tuple[str, str | None]]:
    assert served.fake is not None
    return [(r.endpoint, r.account) for r in served.fake.requests(path="streamGenerateContent")]


async def post(
    served: Served,
    body: Any = None,
    *,
    stream: bool = False,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
    path: str = "/v1/messages",
) -> tuple[int, Any, Any]:
    """POST to the proxy; returns (status, headers, JSON body or the list of SSE events)."""
    payload = raw if raw is not None else json.dumps({**(body or BODY), "stream": stream}).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            served.url + path,
            data=payload,
            headers={"content-type": "application/json", **(headers or {})},
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response,
    ):
        text = await response.text()
        if response.content_type == "text/event-stream":
            return response.status, response.headers.copy(), sse_events(text)
        return response.status, response.headers.copy(), json.loads(text) if text else None


def sse_events(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.split("\n\n"):
        data = [line[5:].strip() for line in block.splitlines() if line.startswith("data:")]
        if data:
            events.append(json.loads("\n".join(data)))
    return events


def streamed_text(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
