"""The runner: performs a request's effects through the ports and feeds results back as events.

One loop per request: perform the effects, wait for the next event (from the attempt in flight
or the client) or until the engine's timer (`Engine.timer`), and hand it to the engine; a timer
expiring goes to `Engine.handle_timer`, which decides whether it is the wait's end or the
deadline. Events from an attempt the machine has moved past are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

from engine.effects import (
    CancelAttempt,
    Commit,
    Effect,
    Finish,
    Outcome,
    RelayContent,
    SendAttempt,
)
from engine.events import (
    ClientDisconnected,
    Event,
    StreamBroken,
    StreamEnded,
    UpstreamFailed,
    UpstreamUnreachable,
)
from engine.machine import Engine
from engine.request import Request
from engine.runner.ports import ClientStream, Clock, DedupWindow, TraceSink, Transport
from engine.spec import RATE_LIMIT_KINDS

_FINAL = (StreamEnded, StreamBroken, UpstreamFailed, UpstreamUnreachable)
_CLIENT = -1  # inbox tag for events that do not belong to an attempt
_INBOX_SIZE = 64  # backpressure: an upstream cannot run ahead of a slow client without bound


class Runner:
    def __init__(
        self,
        engine: Engine,
        transport: Transport,
        clock: Clock,
        sink: TraceSink | None = None,
        window: DedupWindow | None = None,
    ) -> None:
        self.engine = engine
        self.transport = transport
        self.clock = clock
        self.sink = sink
        self.window = window

    async def run(
        self,
        request_id: str,
        model: str,
        stream: bool,
        client: ClientStream,
        payload: Any = None,
        *,
        client_model: str | None = None,
    ) -> Outcome:
        """Serve one request to its outcome (for upstream `model`; `client_model` is the name
        the client asked for, for the trace). Never raises for upstream or client behaviour."""
        now = self.clock.now()
        request = self.engine.open(request_id, model, stream, now)
        if self.sink is not None:
            self.sink.arrived(request_id, now, model, stream, client_model)
        inbox: asyncio.Queue[tuple[int, Event]] = asyncio.Queue(_INBOX_SIZE)
        state = _AttemptState(request_id)
        watcher = asyncio.ensure_future(self._watch_client(client, inbox))
        try:
            effects = self.engine.start(request, now)
            while True:
                self._emitted(request, effects)
                outcome = await self._perform(effects, state, client, inbox, payload)
                if outcome is not None:
                    return outcome
                event, now = await self._next_event(request, inbox, state, client)
                if self.sink is not None:
                    self.sink.received(request_id, now, event)
                effects = self.engine.handle(request, event, now)
        finally:
            watcher.cancel()
            await state.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _perform(
        self,
        effects: Iterable[Effect],
        state: _AttemptState,
        client: ClientStream,
        inbox: asyncio.Queue[tuple[int, Event]],
        payload: Any,
    ) -> Outcome | None:
        for effect in effects:
            if isinstance(effect, SendAttempt):
                await state.cancel()
                state.generation += 1
                state.task = asyncio.ensure_future(
                    self._attempt(state.generation, effect, payload, inbox, state.request)
                )
            elif isinstance(effect, CancelAttempt):
                await state.cancel()
            elif isinstance(effect, Commit):
                await client.commit()
            elif isinstance(effect, RelayContent):
                await client.send(effect.content)
            elif isinstance(effect, Finish):
                await state.cancel()
                await client.finish(effect.outcome)
                return effect.outcome
        return None

    async def _attempt(
        self,
        generation: int,
        send: SendAttempt,
        payload: Any,
        inbox: asyncio.Queue[tuple[int, Event]],
        request_id: str,
    ) -> None:
        final_seen = False
        try:
            async for received in self.transport.attempt(send, payload):
                event = received
                if isinstance(event, UpstreamFailed) and event.facts.kind in RATE_LIMIT_KINDS:
                    event = await self._claim(event, send, request_id)
                await inbox.put((generation, event))
                if isinstance(event, _FINAL):
                    final_seen = True
                    return
            if not final_seen:
                await inbox.put((generation, StreamBroken(reason="the attempt ended early")))
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a transport defect must not kill the request
            await inbox.put((generation, UpstreamUnreachable(reason=type(err).__name__)))

    async def _claim(self, event: UpstreamFailed, send: SendAttempt, request_id: str) -> Event:
        """A 429 of the account x model scope: claim the shared dedup window; held by another
        request, the 429 is a duplicate (`UpstreamFailed.shared_duplicate`, so the trace
        holds the fact and a replay decides the same without the shared store)."""
        if self.window is None:
            return event
        ttl_ms = self.engine.policy.rate_limit_dedup_window_ms
        if await self.window.claim(send.account, send.model, request_id, ttl_ms) is False:
            return event.model_copy(update={"shared_duplicate": True})
        return event

    async def _watch_client(
        self, client: ClientStream, inbox: asyncio.Queue[tuple[int, Event]]
    ) -> None:
        await client.wait_disconnected()
        await inbox.put((_CLIENT, ClientDisconnected()))

    async def _next_event(
        self,
        request: Request,
        inbox: asyncio.Queue[tuple[int, Event]],
        state: _AttemptState,
        client: ClientStream,
    ) -> tuple[Event, float]:
        """The next event of this request and its time: from the attempt in flight or the
        client, or the engine's timer event (`Engine.timer_event`) when its timer is due. A
        client already seen gone (`ClientStream.disconnected`) turns an attempt's event or a
        due timer into `ClientDisconnected`: the client left, whatever the upstream said."""
        while True:
            wake = self.engine.timer(request)
            timeout = None if wake is None else max(0.0, wake - self.clock.now())
            try:
                if timeout == 0.0:
                    raise TimeoutError
                async with asyncio.timeout(timeout):  # no task per event, unlike wait_for
                    tag, event = await inbox.get()
            except TimeoutError:
                timed = self.engine.timer_event(request, self.clock.now())
                if timed is not None:
                    if client.disconnected():  # gone between two polls: nothing more is sent
                        return ClientDisconnected(), self.clock.now()
                    return timed, self.engine.timer_time(request, timed)
                continue
            if tag == state.generation and client.disconnected():
                return ClientDisconnected(), self.clock.now()
            if tag in (_CLIENT, state.generation):
                return event, self.clock.now()

    def _emitted(self, request: Request, effects: list[Effect]) -> None:
        if self.sink is not None:
            self.sink.emitted(request.id, request.now, request.state, effects)  # the step's time


class _AttemptState:
    __slots__ = ("generation", "request", "task")

    def __init__(self, request: str) -> None:
        self.request = request
        self.generation = 0
        self.task: asyncio.Future[None] | None = None

    async def cancel(self) -> None:
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
