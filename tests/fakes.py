"""In-memory ports for runner tests: a scripted transport and a recording client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from engine.effects import Effect, Outcome, SendAttempt
from engine.events import (
    ContentReceived,
    Event,
    StreamBroken,
    StreamEnded,
    StreamOpened,
    UpstreamFailed,
    UpstreamUnreachable,
)
from engine.failures import UpstreamFacts


@dataclass
class Answer:
    """One scripted upstream answer: after `delay` s, `kind` ("ok", "empty", "hang", "drop",
    "unreachable") or an error with `facts`; "ok" streams `chunks` pieces `gap` s apart; "drop"
    breaks after `chunks` pieces."""

    kind: str = "ok"
    facts: UpstreamFacts | None = None
    delay: float = 0.05
    chunks: int = 2
    gap: float = 0.01


def ok(**kw: Any) -> Answer:
    return Answer("ok", **kw)


def error(facts: UpstreamFacts, **kw: Any) -> Answer:
    return Answer("error", facts=facts, **kw)


OPENED_ERROR = "opened-error"  # a 2xx stream that carries an error object before any content
OPENED_SILENT = "opened-silent"  # a 2xx stream that never sends anything
TOKEN_DOWN = "token-endpoint-down"  # the token endpoint failed transiently (HTTP 503)


class ScriptedTransport:
    """Answers attempts from per-account scripts (a list consumed in order; the last answer
    repeats). Logs every attempt as (virtual time, request attempt no, account, endpoint)."""

    def __init__(self, clock: Any, scripts: dict[str, list[Answer]]) -> None:
        self.clock = clock
        self.scripts = {k: list(v) for k, v in scripts.items()}
        self.log: list[tuple[float, str, str]] = []
        self.cancelled = 0

    def _next(self, account: str) -> Answer:
        script = self.scripts.setdefault(account, [ok()])
        return script.pop(0) if len(script) > 1 else script[0]

    def _answer(self, send: SendAttempt) -> Answer:
        """The scripted answer for this attempt (per account here; subclasses choose)."""
        return self._next(send.account)

    async def attempt(self, send: SendAttempt, payload: Any) -> AsyncIterator[Event]:
        self.log.append((round(self.clock.now(), 6), send.account, send.endpoint))
        answer = self._answer(send)
        try:
            await asyncio.sleep(answer.delay)
            if answer.kind == "error":
                assert answer.facts is not None
                yield UpstreamFailed(facts=answer.facts, wall=self.clock.wall())
                return
            if answer.kind == "unreachable":
                yield UpstreamUnreachable(reason="connection refused")
                return
            if answer.kind == TOKEN_DOWN:
                yield UpstreamUnreachable(
                    reason="token endpoint answered HTTP 503", credentials=True
                )
                return
            if answer.kind == "hang":
                await asyncio.sleep(10**9)
            yield StreamOpened()
            if answer.kind == OPENED_SILENT:
                await asyncio.Event().wait()  # until cancelled
            if answer.kind == OPENED_ERROR:
                assert answer.facts is not None
                yield UpstreamFailed(facts=answer.facts, wall=self.clock.wall())
                return
            if answer.kind == "empty":
                yield StreamEnded()
                return
            for i in range(answer.chunks):
                yield ContentReceived(content=f"chunk{i}")
                await asyncio.sleep(answer.gap)
            if answer.kind == "drop":
                yield StreamBroken(reason="connection reset")
                return
            yield StreamEnded()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


@dataclass
class RecordingClient:
    """A client that records what it received; disconnects at `leave_at` (virtual s) if set."""

    clock: Any
    leave_at: float | None = None
    committed_at: float | None = None
    received: list[Any] = field(default_factory=list)
    outcome: Outcome | None = None

    async def commit(self) -> None:
        assert self.committed_at is None, "committed twice"
        self.committed_at = self.clock.now()

    async def send(self, content: Any) -> None:
        assert self.committed_at is not None, "content before commit"
        self.received.append(content)

    async def finish(self, outcome: Outcome) -> None:
        assert self.outcome is None, "two outcomes"
        self.outcome = outcome

    def disconnected(self) -> bool:
        return False  # told at once by wait_disconnected, on the virtual clock

    async def wait_disconnected(self) -> None:
        if self.leave_at is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(max(0.0, self.leave_at - self.clock.now()))


@dataclass
class ListSink:
    records: list[tuple[str, str, float, Any]] = field(default_factory=list)

    def arrived(
        self,
        request_id: str,
        at: float,
        model: str,
        stream: bool,
        client_model: str | None = None,
    ) -> None:
        self.records.append(("arrived", request_id, at, (model, stream)))

    def received(self, request_id: str, at: float, event: Event) -> None:
        self.records.append(("received", request_id, at, event))

    def emitted(self, request_id: str, at: float, state: str, effects: list[Effect]) -> None:
        self.records.append(("emitted", request_id, at, (state, effects)))
