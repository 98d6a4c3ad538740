"""The engine's `ClientStream` port for aiohttp: how a request's outcome reaches the client.

Streaming: headers are held until the request commits (its first content), so any failure before
that is a real HTTP status with Anthropic's error JSON. If a streaming request waits longer than
`ping_after_s` before committing, the headers are sent with a `ping` event and pings follow every
`ping_after_s`, keeping clients (and proxies) from timing out; from then on a failure is one SSE
`error` frame. Non-streaming: the Anthropic events are folded into one message JSON.
A client that goes away is noticed by watching its transport.

Retry signalling: the SDKs retry 408/409/429/5xx unless the answer says `x-should-retry:
false`, and sleep for whatever `retry-after` says. Answers that retrying cannot fix say so
(`no_retry_headers`): client errors, a failure the engine marks not retryable (no account the
upstream accepts; the message then says how to fix it), and a 429 whose reset is further away
than `retry_limit_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import orjson
from aiohttp import web

from adapters.convert.response import placeholder_events
from engine.effects import Outcome
from engine.failures import FailureKind

DISCONNECT_POLL_S = 0.5
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",
}


def error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


NO_RETRY_STATUSES = frozenset({400, 401, 403, 404, 405, 413, 422})
"""Statuses whose answer is the same however often the request is sent again."""
ACCOUNTS_FIX = (
    " To fix it: `interlock accounts list` shows the accounts, `interlock accounts login` "
    "re-authenticates or adds one, `interlock accounts enable ID` enables a disabled one."
)


def error_response(status: int, error_type: str, message: str, **headers: str) -> web.Response:
    return web.json_response(error_body(error_type, message), status=status, headers=headers)


def no_retry_headers(
    status: int, *, retryable: bool = True, retry_after_s: int | None = None, limit_s: float = 60
) -> dict[str, str]:
    """`{"x-should-retry": "false"}` when sending the request again cannot help soon."""
    long_wait = status == 429 and retry_after_s is not None and retry_after_s > limit_s
    if not retryable or status in NO_RETRY_STATUSES or long_wait:
        return {"x-should-retry": "false"}
    return {}


def outcome_message(outcome: Outcome) -> str:
    """The outcome's message, with how to fix it when no account can serve (a refused
    configuration names its own fix)."""
    if (
        not outcome.retryable
        and outcome.status >= 500
        and outcome.failure is not FailureKind.CONFIGURATION
    ):
        return outcome.message + ACCOUNTS_FIX
    return outcome.message


def sse_frame(event: dict[str, Any]) -> bytes:
    """One Anthropic stream event as SSE bytes (compact JSON, UTF-8)."""
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\ndata: " + dumps(event) + b"\n\n"


def dumps(value: Any) -> bytes:
    """Compact JSON with orjson (several times faster than the standard library on stream
    events); what orjson refuses (an integer past 64 bits, a key that is not a string) gets
    the standard library's encoding, so nothing is lost."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class _SSEResponse(web.StreamResponse):
    """An SSE response whose status line and headers leave with its first bytes (the first
    content, or a ping) instead of in a send of their own, as aiohttp's `Response` does."""

    _send_headers_immediately = False


def _dumps_text(value: Any) -> str:
    return dumps(value).decode()


class MessageAccumulator:
    """Folds Anthropic stream events into the non-streaming message object. Deltas are kept
    as pieces and joined once at the end (adding each to a growing string would copy the
    answer once per delta)."""

    def __init__(self) -> None:
        self.message: dict[str, Any] | None = None
        self.blocks: dict[int, dict[str, Any]] = {}
        self.pieces: dict[tuple[int, str], list[str]] = {}  # (block, field) -> the deltas

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_start":
            self.message = dict(event["message"])
        elif kind == "content_block_start":
            self.blocks[event["index"]] = dict(event["content_block"])
        elif kind == "content_block_delta":
            index, delta = event["index"], event["delta"]
            if delta["type"] == "text_delta":
                self.pieces.setdefault((index, "text"), []).append(delta["text"])
            elif delta["type"] == "thinking_delta":
                self.pieces.setdefault((index, "thinking"), []).append(delta["thinking"])
            elif delta["type"] == "signature_delta":
                self.blocks[index]["signature"] = delta["signature"]
            elif delta["type"] == "input_json_delta":
                self.pieces.setdefault((index, "input"), []).append(delta["partial_json"])
        elif kind == "message_delta" and self.message is not None:
            self.message.update(event.get("delta", {}))
            self.message["usage"] = {**self.message.get("usage", {}), **event.get("usage", {})}

    def result(self) -> dict[str, Any]:
        assert self.message is not None
        for (index, field), pieces in self.pieces.items():
            text = "".join(pieces)
            block = self.blocks[index]
            if field == "input":
                block["input"] = json.loads(text) if text else {}
            else:
                block[field] = block.get(field, "") + text
        self.pieces.clear()  # folded in: a second call gives the same message
        return {**self.message, "content": [self.blocks[i] for i in sorted(self.blocks)]}


class AiohttpClientStream:
    def __init__(
        self,
        request: web.Request,
        *,
        stream: bool,
        ping_after_s: float,
        headers: dict[str, str] | None = None,
        retry_limit_s: float = 60,
    ) -> None:
        self.request = request
        self.stream = stream
        self.ping_after_s = ping_after_s
        self.headers = headers or {}  # on every answer (the request id)
        self.retry_limit_s = retry_limit_s
        self.response: web.StreamResponse | None = None  # the answer, once decided
        self._sse: web.StreamResponse | None = None
        self._lock = asyncio.Lock()
        self._accumulator = MessageAccumulator()
        self._pinger = asyncio.ensure_future(self._ping()) if stream else None
        self._gone = asyncio.Event()  # a write found the client gone
        self._tail = b""  # the stream's last frames, held for `finish` to send with the end
        self.outcome: Outcome | None = None

    async def _open_sse(self) -> web.StreamResponse:
        if self._sse is None:
            self._sse = _SSEResponse(status=200, headers={**SSE_HEADERS, **self.headers})
            await self._sse.prepare(self.request)
        return self._sse

    async def _write(self, data: bytes | None) -> None:
        """Write to the SSE response (opening it first); a vanished client is noted, not raised:
        the runner hears of it through `wait_disconnected`."""
        if self._gone.is_set():
            return
        try:
            async with self._lock:
                sse = await self._open_sse()
                if data:
                    await sse.write(data)
        except (ConnectionError, RuntimeError):
            self._gone.set()

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self.ping_after_s)
            await self._write(sse_frame({"type": "ping"}))

    async def commit(self) -> None:
        if self.stream:
            await self._write(None)

    async def send(self, content: Any) -> None:
        events: list[dict[str, Any]] = content
        if not self.stream:
            for event in events:
                self._accumulator.add(event)
            return
        frames = b"".join(sse_frame(e) for e in events)
        if events and events[-1].get("type") == "message_stop" and self._sse is not None:
            self._tail += frames  # the last frames: written with the end of the stream
            return
        await self._write(frames)

    async def finish(self, outcome: Outcome) -> None:
        self.outcome = outcome
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
        if outcome.status == 499:  # the client left: nobody to answer
            return
        if outcome.ok and outcome.placeholder:  # only when configured: a visible stand-in answer
            await self.send(placeholder_events(outcome.model))
        async with self._lock:
            if self._sse is not None:
                tail, self._tail = self._tail, b""
                if not outcome.ok:
                    error_type = outcome.error_type or "api_error"
                    tail += sse_frame(error_body(error_type, outcome_message(outcome)))
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self._sse.write_eof(tail)  # the last frames and the end: one send
                self.response = self._sse
                return
        if outcome.ok:
            self.response = web.json_response(
                self._accumulator.result(), headers=self.headers, dumps=_dumps_text
            )
            return
        headers = dict(self.headers)
        if outcome.retry_after_s:
            headers["retry-after"] = str(outcome.retry_after_s)
        headers |= no_retry_headers(
            outcome.status,
            retryable=outcome.retryable,
            retry_after_s=outcome.retry_after_s,
            limit_s=self.retry_limit_s,
        )
        self.response = error_response(
            outcome.status, outcome.error_type or "api_error", outcome_message(outcome), **headers
        )

    def disconnected(self) -> bool:
        transport = self.request.transport
        return self._gone.is_set() or transport is None or transport.is_closing()

    async def wait_disconnected(self) -> None:
        # a plain sleep per poll: no task is created (wait_for would create one each time)
        while not self._gone.is_set():
            transport = self.request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(DISCONNECT_POLL_S)
