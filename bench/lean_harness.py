"""A lean load harness for throughput benchmarks on a small machine: an upstream and a load
generator that cost little CPU, so that the proxy under test gets the cores.

On a 2-core machine the aiohttp fake upstream and an aiohttp load generator take about 0.4 ms
of CPU per request between them, nearly half of what the proxy itself takes; a measurement of
how the proxy scales with a second core then mostly measures them. Here both are raw asyncio
protocols on uvloop (when installed) with HTTP/1.1 keep-alive:

- `LeanUpstream` (run as `python bench/lean_harness.py upstream`, a process of its own) replays
  answers captured once from the real fake upstream (`interlock fake-upstream`): the exact
  status, content type and body of its `streamGenerateContent` and `fetchAvailableModels`
  answers, for every request on those paths. The token endpoint stays on the real fake (one
  call per account per hour).
- `load` keeps `concurrency` connections busy, closed loop, with one prepared request.

Neither parses JSON; both read just enough HTTP (the request line, `Content-Length`) to frame
messages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import uvloop
except ImportError:  # the [fast] extra is not installed: the standard loop
    uvloop = None  # type: ignore[assignment]

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

CAPTURED = ("streamGenerateContent", "fetchAvailableModels")


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # loopback, the real fake
        return response.status, response.headers.get("Content-Type", ""), response.read()


def capture(fake: dict[str, Any]) -> dict[str, bytes]:
    """The real fake's answers on the captured paths, as full HTTP/1.1 responses (keep-alive,
    with `Content-Length`)."""
    account = fake["accounts"][0]
    form = (
        "grant_type=refresh_token&client_id=bench&client_secret=bench&refresh_token="
        + account["refresh_token"]
    ).encode()
    _, _, token = _post(
        fake["token_url"], form, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    auth = {
        "Authorization": "Bearer " + json.loads(token)["access_token"],
        "Content-Type": "application/json",
    }
    daily = fake["endpoints"]["daily"]
    generate = json.dumps(
        {
            "project": account["project"],
            "model": "claude-sonnet-4-6",
            "request": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        }
    ).encode()
    answers = {}
    for name, body in (
        ("streamGenerateContent", generate),
        ("fetchAvailableModels", json.dumps({"project": account["project"]}).encode()),
    ):
        query = "?alt=sse" if name == "streamGenerateContent" else ""
        status, kind, payload = _post(f"{daily}/v1internal:{name}{query}", body, auth)
        answers[name] = (
            f"HTTP/1.1 {status} OK\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode() + payload
    return answers


class _Framer:
    """Splits a byte stream into HTTP/1.1 messages with `Content-Length` bodies."""

    def __init__(self, on_message: Callable[[bytes], None]) -> None:
        self.buffer = b""
        self.on_message = on_message

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            at = head.lower().find(b"content-length:")
            length = 0
            if at >= 0:
                stop = head.find(b"\r\n", at)
                length = int(head[at + 15 : stop if stop >= 0 else len(head)])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            self.on_message(head)


class _UpstreamProtocol(asyncio.Protocol):
    answers: dict[str, bytes] = {}
    missing = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.framer = _Framer(self._answer)

    def data_received(self, data: bytes) -> None:
        self.framer.feed(data)

    def _answer(self, head: bytes) -> None:
        line = head[: head.find(b"\r\n")]
        for name, answer in self.answers.items():
            if name.encode() in line:
                self.transport.write(answer)
                return
        self.transport.write(self.missing)


async def serve_upstream(answers: dict[str, bytes]) -> None:
    _UpstreamProtocol.answers = answers
    loop = asyncio.get_running_loop()
    servers = [
        await loop.create_server(_UpstreamProtocol, "127.0.0.1", 0, backlog=1024)
        for _ in ("daily", "prod")
    ]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    print(
        json.dumps(
            {"daily": f"http://127.0.0.1:{ports[0]}", "prod": f"http://127.0.0.1:{ports[1]}"}
        )
    )
    sys.stdout.flush()
    await asyncio.Event().wait()  # until terminated


class _LoadProtocol(asyncio.Protocol):
    def __init__(self, request: bytes, on_done: Callable[[], bool]) -> None:
        self.request = request
        self.on_done = on_done
        self.closed = asyncio.get_running_loop().create_future()
        self.framer = _Framer(self._answered)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.framer.feed(data)

    def _answered(self, head: bytes) -> None:
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"the proxy answered {head[:40]!r}")
        if self.on_done():
            self.transport.write(self.request)
        else:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def load(
    port: int, body: bytes, concurrency: int, warmup: float, seconds: float
) -> tuple[int, float]:
    """Keep `concurrency` keep-alive connections busy with POST /v1/messages `body`; returns
    the requests completed in the `seconds` after `warmup`, and that window's length."""
    request = (
        f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    loop = asyncio.get_running_loop()
    start = time.monotonic() + warmup
    stop = start + seconds
    done = 0

    def on_done() -> bool:
        nonlocal done
        now = time.monotonic()
        if start <= now < stop:
            done += 1
        return now < stop

    protocols = []
    for _ in range(concurrency):
        _, protocol = await loop.create_connection(
            lambda: _LoadProtocol(request, on_done), "127.0.0.1", port
        )
        protocols.append(protocol)
    await asyncio.wait_for(asyncio.gather(*(p.closed for p in protocols)), warmup + seconds + 30)
    return done, seconds


def event_loop_policy() -> None:
    """uvloop for this process's loop, when installed."""
    if uvloop is not None:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=["upstream"])
    parser.add_argument("--fake", required=True, help="the real fake's --json description")
    args = parser.parse_args()
    event_loop_policy()
    asyncio.run(serve_upstream(capture(json.loads(args.fake))))
