"""What the dashboard shows of the requests: a `TraceSink` and step observer, bounded.

- **In flight**: each running request's model, the state it is in and since when, and the
  attempts it made (`account@endpoint`, opaque ids).
- **Finished**: the last `keep` requests with their outcome and the timeline `interlock
  replay` prints (`adapters.timeline`).
- **Over time**: per minute of wall-clock time, the count of each outcome (`ok` or the error
  type) and of each attempt result (`ok`, a failure kind, `cancelled`), for the last `minutes`.

Everything kept is bounded: in-flight entries leave with their request (or `forget`), the
finished list and the minutes are ring buffers. No prompt text, secret or email is kept.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.metrics import attempt_result
from adapters.timeline import Timeline
from engine.effects import Effect, Finish, RelayContent, SendAttempt
from engine.events import (
    Event,
    StreamBroken,
    StreamEnded,
    UpstreamFailed,
    UpstreamUnreachable,
)
from engine.request import Request

FINAL_EVENTS = frozenset({StreamEnded, StreamBroken, UpstreamFailed, UpstreamUnreachable})
"""The events that end an attempt (`adapters.metrics.attempt_result` names how)."""
KEEP = 50
MINUTES = 60


@dataclass
class _Running:
    model: str
    client_model: str | None
    stream: bool
    arrived: float  # monotonic
    arrived_wall: float
    state: str = "Selecting"
    since: float = 0.0
    attempts: list[str] = field(default_factory=list)
    calls: list[tuple[Any, ...]] = field(default_factory=list)  # replayed into a Timeline


@dataclass(frozen=True, slots=True)
class _At:
    """What `Timeline.on_step` reads of a request."""

    id: str
    now: float


@dataclass
class _Recorded:
    """A finished request's steps and effects, as recorded; rendered when first shown (cheap
    to record: a tuple per call; the formatting happens at most once, and only if shown)."""

    request_id: str
    running: _Running

    def render(self) -> str:
        timeline, r = Timeline(), self.running
        timeline.arrived(self.request_id, r.arrived, r.model, r.stream, r.client_model)
        for call in r.calls:
            if call[0] == "step":
                timeline.on_step(_At(self.request_id, call[1]), *call[2:])  # type: ignore[arg-type]
            else:
                timeline.emitted(self.request_id, *call[1:])
        return timeline.render(self.request_id)


class LiveView:
    def __init__(
        self,
        *,
        now: Callable[[], float],
        wall: Callable[[], float] = time.time,
        keep: int | None = None,
        minutes: int = MINUTES,
    ) -> None:
        self._now, self._wall = now, wall
        self.running: dict[str, _Running] = {}
        self.finished: deque[dict[str, Any]] = deque(maxlen=KEEP if keep is None else keep)
        self.minutes: deque[tuple[int, Counter[str], Counter[str]]] = deque(maxlen=minutes)

    # the engine's step observer -----------------------------------------------------------
    def on_step(self, request: Request, source: str, trigger: str, dest: str) -> None:
        running = self.running.get(request.id)
        if running is None:
            return
        calls = running.calls
        if trigger == "content_received" and calls and calls[-1][3] == "content_received":
            return  # a run of relayed content is one line
        calls.append(("step", request.now, source, trigger, dest))

    # the runner's TraceSink ---------------------------------------------------------------
    def arrived(
        self,
        request_id: str,
        at: float,
        model: str,
        stream: bool,
        client_model: str | None = None,
    ) -> None:
        self.running[request_id] = _Running(model, client_model, stream, at, self._wall(), since=at)

    def received(self, request_id: str, at: float, event: Event) -> None:
        if type(event) not in FINAL_EVENTS:  # content and timers: nothing to count
            return
        result = attempt_result(event)
        if result is not None and request_id in self.running:
            self._minute()[2][result] += 1

    def emitted(self, request_id: str, at: float, state: str, effects: list[Effect]) -> None:
        running = self.running.get(request_id)
        if running is None:
            return
        if len(effects) == 1 and type(effects[0]) is RelayContent and state == running.state:
            return  # relaying content: nothing the view or the timeline shows
        running.calls.append(("emit", at, state, effects))
        if state != running.state:
            running.state, running.since = state, at
        for effect in effects:
            if isinstance(effect, SendAttempt):
                running.attempts.append(f"{effect.account}@{effect.endpoint}")
            elif isinstance(effect, Finish):
                self._finish(request_id, running, effect, at)

    def forget(self, request_id: str) -> None:
        """Drop a request that ended without a `Finish` (the runner raised)."""
        self.running.pop(request_id, None)

    # reading ------------------------------------------------------------------------------
    def _finish(self, request_id: str, running: _Running, finish: Finish, at: float) -> None:
        outcome = finish.outcome
        result = "ok" if outcome.ok else (outcome.error_type or "error")
        self._minute()[1][result] += 1
        self.finished.appendleft(
            {
                "id": request_id,
                "model": running.model,
                "client_model": running.client_model,
                "stream": running.stream,
                "status": outcome.status,
                "outcome": result,
                "failure": outcome.failure.value if outcome.failure else None,
                "attempts": running.attempts,
                "seconds": round(at - running.arrived, 3),
                "finished_at": self._wall(),
                "timeline": _Recorded(request_id, running),  # rendered when first shown
            }
        )
        del self.running[request_id]

    def _minute(self) -> tuple[int, Counter[str], Counter[str]]:
        minute = int(self._wall() // 60)
        if not self.minutes or self.minutes[-1][0] != minute:
            self.minutes.append((minute, Counter(), Counter()))
        return self.minutes[-1]

    def recent(self) -> list[dict[str, Any]]:
        """The finished requests, newest first, each timeline rendered (once)."""
        for entry in self.finished:
            if not isinstance(entry["timeline"], str):
                entry["timeline"] = entry["timeline"].render()
        return list(self.finished)

    def in_flight(self) -> list[dict[str, Any]]:
        now = self._now()
        return [
            {
                "id": request_id,
                "model": r.model,
                "client_model": r.client_model,
                "stream": r.stream,
                "state": r.state,
                "in_state_s": round(now - r.since, 3),
                "age_s": round(now - r.arrived, 3),
                "attempts": r.attempts,
            }
            for request_id, r in self.running.items()
        ]

    def history(self) -> list[dict[str, Any]]:
        """Per minute (oldest first): `{"minute": epoch minute, "outcomes": {..},
        "attempts": {..}}`."""
        return [
            {"minute": minute, "outcomes": dict(outcomes), "attempts": dict(attempts)}
            for minute, outcomes, attempts in self.minutes
        ]
