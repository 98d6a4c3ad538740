"""Client connections: how long a slow client may hold one, and how many there may be.

Only the *request* side is bounded; an answer (a long stream) is never cut by these:

- `[server] idle_timeout_s`: a connection that has not delivered a complete request head this
  long after it opened, or after its previous answer ended, is closed. This is aiohttp's
  keep-alive timer, which covers both idle keep-alive connections and clients that trickle
  their headers (aiohttp has no separate header-read timeout); it never runs while a request
  is being answered.
- `[server] body_timeout_s`: a request body must arrive within this of its head; else the
  answer is 408 and the connection is closed. The rest of a body the proxy did not read (an
  early 401, 404, 408) is drained for at most `min(10 s, body_timeout_s)`, then it closes.
- `[server] max_connections`: connections beyond this many are answered `503` (Anthropic's
  `overloaded_error`, which the SDKs retry) and closed, without reading their request.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from adapters.client_stream import error_body, error_response
from adapters.config import ServerSettings

log = logging.getLogger("interlock.connections")

LINGER_MAX_S = 10.0  # aiohttp's own default
REFUSED_GRACE_S = 1.0  # how long a refused client has to read its 503 before the close


def handler_args(server: ServerSettings) -> dict[str, Any]:
    """Keyword arguments of `web.AppRunner` for these settings."""
    return {
        "keepalive_timeout": server.idle_timeout_s,
        "lingering_time": min(LINGER_MAX_S, server.body_timeout_s),
    }


def body_deadline(seconds: float) -> Any:
    """A middleware that reads a request's body within `seconds` (later reads get it from
    aiohttp's cache), or answers 408 and closes the connection."""

    @web.middleware
    async def read_body_in_time(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.body_exists:
            try:
                async with asyncio.timeout(seconds):
                    await request.read()
            except TimeoutError:
                log.info(
                    "closed a connection from %s: its request body did not arrive within "
                    "body_timeout_s (%g s)",
                    request.remote,
                    seconds,
                )
                response = error_response(
                    408,
                    "invalid_request_error",
                    f"the request body did not arrive within {seconds:g} s "
                    "([server] body_timeout_s)",
                )
                response.force_close()
                return response
        return await handler(request)

    return read_body_in_time


def _refusal() -> bytes:
    body = json.dumps(
        error_body("overloaded_error", "interlock has too many open connections; retry shortly")
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class _Refused(asyncio.Protocol):
    """A connection over the cap: a 503, then closed (when the client closes its side, or
    after `REFUSED_GRACE_S`)."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(_refusal())
        if transport.can_write_eof():
            transport.write_eof()
        self._timer = asyncio.get_running_loop().call_later(REFUSED_GRACE_S, transport.close)

    def data_received(self, data: bytes) -> None:
        pass  # never read: the answer is the same whatever was asked

    def eof_received(self) -> bool:
        if self._transport is not None:
            self._transport.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._transport = None


class CappedSite(web.TCPSite):
    """A `web.TCPSite` that serves at most `max_connections` connections at once."""

    __slots__ = ("_max_connections", "_told")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        max_connections: int,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner, host, port, reuse_port=reuse_port)
        self._max_connections = max_connections
        self._told = False

    def _protocol(self) -> asyncio.Protocol:
        server = self._runner.server
        assert server is not None
        if len(server.connections) < self._max_connections:
            self._told = False
            return server()
        if not self._told:  # once per episode, not per refused connection
            log.warning(
                "%d connections are open (max_connections): refusing new ones with 503",
                self._max_connections,
            )
            self._told = True
        return _Refused()

    async def start(self) -> None:
        # TCPSite.start with a protocol factory that counts; aiohttp has no connection cap
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol,
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
