"""Slow and surplus clients: raw sockets on 127.0.0.1 against the real proxy, with short
`[server]` timeouts. A connection that trickles its head, sends nothing, idles after an answer
or trickles its body is closed within its bound; connections beyond `max_connections` get a 503
at once; a long streamed answer is never cut by any of this."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from adapters.fake_upstream import stream, text
from adapters.serve import Served
from tests.e2e import BODY, post, proxy, run, streamed_text

SHORT = {"idle_timeout_s": 0.5, "body_timeout_s": 0.5}
BOUND = 5.0  # every close below is due within a second; this is the test's patience


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@asynccontextmanager
async def connection(
    served: Served,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    host, port = served.url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        yield reader, writer
    finally:
        writer.close()
        with suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1)


async def closed_by_server(
    reader: asyncio.StreamReader, trickle: asyncio.StreamWriter | None = None, line: bytes = b""
) -> tuple[float, bytes]:
    """Read until the server closes (seconds taken, bytes read); with `trickle`, keep sending
    `line` every 0.1 s meanwhile, as a slow client would."""
    started = time.monotonic()
    received = b""
    while time.monotonic() - started < BOUND:
        if trickle is not None and not trickle.is_closing():
            try:
                trickle.write(line)
                await trickle.drain()
            except OSError:
                trickle = None
        try:
            chunk = await asyncio.wait_for(reader.read(65536), 0.1)
        except TimeoutError:
            continue
        except OSError:
            break
        if not chunk:
            break
        received += chunk
    else:
        raise AssertionError(f"still open after {BOUND} s")
    return time.monotonic() - started, received


def test_connections_that_trickle_their_head_or_send_nothing_are_closed_after_idle_timeout_s() -> (
    None
):
    async def scenario() -> None:
        async with proxy(accounts=1, server=SHORT) as served:
            await post(served)  # the proxy's own connections upstream are open after this
            await asyncio.sleep(0.7)  # and the client's keep-alive connection closed
            before = open_fds()
            async with (
                connection(served) as (r1, w1),
                connection(served) as (r2, w2),
                connection(served) as (r3, _w3),
            ):
                w1.write(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                w2.write(b"GET /health HTTP/1.1\r\n")
                results = await asyncio.gather(
                    closed_by_server(r1, w1, b"X-Slow: 1\r\n"),
                    closed_by_server(r2, w2, b"X-Slow: 1\r\n"),
                    closed_by_server(r3),
                )
                for took, _ in results:
                    assert 0.3 < took < 2.0
            await asyncio.sleep(0.1)
            assert open_fds() <= before and served.runner.server is not None
            assert served.runner.server.connections == []

    run(scenario(), timeout=30)


def test_an_idle_keep_alive_connection_is_closed_after_idle_timeout_s() -> None:
    async def scenario() -> None:
        async with (
            proxy(accounts=1, server=SHORT) as served,
            connection(served) as (reader, writer),
        ):
            writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            took, received = await closed_by_server(reader)
            assert received.startswith(b"HTTP/1.1 200") and 0.3 < took < 2.0

    run(scenario(), timeout=30)


def test_a_client_that_trickles_its_body_gets_408_and_is_closed_after_body_timeout_s() -> None:
    async def scenario() -> None:
        async with (
            proxy(accounts=1, server=SHORT) as served,
            connection(served) as (reader, writer),
        ):
            writer.write(
                b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n{"
            )
            took, received = await closed_by_server(reader, writer, b" ")
            assert received.startswith(b"HTTP/1.1 408"), received[:200]
            assert b"body_timeout_s" in received and took < 2.5

    run(scenario(), timeout=30)


def test_connections_beyond_max_connections_get_a_503_at_once_and_the_rest_are_served() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1, server={"max_connections": 2}) as served:
            async with connection(served) as (_r1, w1), connection(served) as (_r2, _w2):
                w1.write(b"GET /health HTTP/1.1\r\n")  # two held connections: the cap
                await asyncio.sleep(0.1)
                async with connection(served) as (r3, _w3):
                    took, received = await closed_by_server(r3)
                    assert received.startswith(b"HTTP/1.1 503") and took < 1.5
                    answer = json.loads(received.split(b"\r\n\r\n", 1)[1])
                    assert answer["error"]["type"] == "overloaded_error"
            await asyncio.sleep(0.1)
            status, _, _ = await post(served)  # slots freed: served again
            assert status == 200

    run(scenario(), timeout=30)


def test_a_long_streamed_answer_is_never_cut_by_the_client_timeouts() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1, server=SHORT, upstream={"idle_timeout_s": 1.0}) as served:
            assert served.fake is not None
            slow = stream(text("abcdefghij"), chunks=10, delay=0.15)  # 1.5 s, 3x the timeouts
            served.fake.script("account-1", [slow])
            status, _, events = await post(served, {**BODY, "stream": True}, stream=True)
            assert status == 200 and streamed_text(events) == "abcdefghij"
            assert events[-1]["type"] == "message_stop"

    run(scenario(), timeout=30)
