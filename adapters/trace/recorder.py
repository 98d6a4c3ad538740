"""Recording traces: a `TraceSink` plus the engine's step observer, writing trace records.

Inputs come from the runner (`arrived`, `received`: each upstream event is attributed to the
attempt the engine sent last for that request), outputs from the engine (`on_step`) and the
runner (`emitted`). Timer and deadline events are not inputs: replay derives them from the
clock. `TraceFile` writes to a file with a size bound (recording stops, with a warning, when
the bound is reached; the file stays a valid trace).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import IO

from adapters.trace.format import (
    Answer,
    Arrival,
    Disconnect,
    Effects,
    Header,
    Step,
    _Record,
    dump_effect,
    dump_event,
    dumps,
)
from engine.effects import Effect, SendAttempt
from engine.events import ClientDisconnected, DeadlineExpired, Event, TimerFired
from engine.request import Request

log = logging.getLogger("interlock.trace")


class TraceRecorder:
    """Writes each record as a JSON line with `write`, or, with `keep`, appends the record
    objects to that list (replay compares them without a round trip through JSON)."""

    def __init__(
        self,
        write: Callable[[str], None] | None,
        header: Header,
        *,
        keep: list[_Record] | None = None,
    ) -> None:
        self._write = write
        self._keep = keep
        self._attempt: dict[str, int] = {}
        self._emit(header)

    def _emit(self, record: _Record) -> None:
        if self._keep is not None:
            self._keep.append(record)
        if self._write is not None:
            self._write(dumps(record))

    # the engine's step observer ---------------------------------------------------------------
    def on_step(self, request: Request, source: str, trigger: str, dest: str) -> None:
        self._emit(
            Step(t=request.now, request=request.id, source=source, trigger=trigger, dest=dest)
        )

    # the runner's TraceSink -------------------------------------------------------------------
    def arrived(
        self,
        request_id: str,
        at: float,
        model: str,
        stream: bool,
        client_model: str | None = None,
    ) -> None:
        self._emit(
            Arrival(t=at, request=request_id, model=model, stream=stream, client_model=client_model)
        )

    def received(self, request_id: str, at: float, event: Event) -> None:
        if isinstance(event, TimerFired | DeadlineExpired):
            return  # derived from the clock on replay
        if isinstance(event, ClientDisconnected):
            self._emit(Disconnect(t=at, request=request_id))
            return
        self._emit(
            Answer(
                t=at,
                request=request_id,
                attempt=self._attempt.get(request_id, 0),
                event=dump_event(event),
            )
        )

    def emitted(self, request_id: str, at: float, state: str, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, SendAttempt):
                self._attempt[request_id] = effect.attempt
        self._emit(
            Effects(
                t=at, request=request_id, state=state, effects=[dump_effect(e) for e in effects]
            )
        )


class TraceFile:
    """A size-bounded trace file (a writer for `TraceRecorder`)."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.size = 0
        self.full = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def write(self, line: str) -> None:
        if self.full:
            return
        if self.size + len(line) > self.max_bytes:
            self.full = True
            log.warning(
                "trace %s reached its size bound (%d bytes): recording stopped",
                self.path,
                self.max_bytes,
            )
            return
        self._handle.write(line)
        self._handle.flush()
        self.size += len(line)

    def close(self) -> None:
        self._handle.close()


class FanOut:
    """One `TraceSink` (and step observer) that forwards to several (None entries skipped)."""

    def __init__(self, *targets: object) -> None:
        self.targets = [t for t in targets if t is not None]
        # one call per observer, even when a sink is also given as the step observer
        self._observers = list(
            dict.fromkeys(
                observer
                for t in self.targets
                if (observer := getattr(t, "on_step", None)) is not None
            )
        )

    def on_step(self, request: Request, source: str, trigger: str, dest: str) -> None:
        for observer in self._observers:
            observer(request, source, trigger, dest)

    def arrived(
        self,
        request_id: str,
        at: float,
        model: str,
        stream: bool,
        client_model: str | None = None,
    ) -> None:
        for target in self.targets:
            if hasattr(target, "arrived"):
                target.arrived(request_id, at, model, stream, client_model)

    def received(self, request_id: str, at: float, event: Event) -> None:
        for target in self.targets:
            if hasattr(target, "received"):
                target.received(request_id, at, event)

    def emitted(self, request_id: str, at: float, state: str, effects: list[Effect]) -> None:
        for target in self.targets:
            if hasattr(target, "emitted"):
                target.emitted(request_id, at, state, effects)
