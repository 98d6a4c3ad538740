"""Replaying traces offline: the engine on the virtual clock, fed the trace's inputs.

Each request arrives at its recorded time; its n-th upstream attempt is answered with the
trace's n-th recorded attempt for that request (its events at their recorded delays after the
send); a recorded disconnect is delivered at its time. Timers come from the clock. Replay
never crashes on a trace that no longer fits the engine's choices: an attempt to another account
or endpoint than recorded, or more attempts than recorded, is reported as a `problem`.
`check()` compares the replayed outputs with the recorded ones and names the first difference.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from adapters.trace.format import (
    Answer,
    Effects,
    Header,
    Step,
    Trace,
    dumps,
    load_event,
)
from adapters.trace.recorder import FanOut, TraceRecorder
from engine.effects import Outcome, SendAttempt
from engine.events import (
    Event,
    StreamBroken,
    StreamEnded,
    UpstreamFailed,
    UpstreamUnreachable,
)
from engine.machine import Engine
from engine.policy import Policy, load_policy
from engine.pool import AccountPool
from engine.runner import Runner, VirtualClock

TIME_DIGITS = 6  # times compare to the microsecond
FINAL_EVENTS = (StreamEnded, StreamBroken, UpstreamFailed, UpstreamUnreachable)


@dataclass
class _Attempt:
    sent_at: float | None
    account: str | None
    endpoint: str | None
    answers: list[Answer]


@dataclass
class Replay:
    """The outcome of one replay: what the engine did, and where the trace no longer fit."""

    records: list[Any] = field(default_factory=list)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def replayed(self) -> Trace:
        header, *rest = self.records
        return Trace("<replay>", header, rest)

    @property
    def lines(self) -> list[str]:
        return [dumps(record) for record in self.records]


class _Transport:
    def __init__(self, trace: Trace, clock: VirtualClock, problems: list[str]) -> None:
        self.clock = clock
        self.problems = problems
        sends: dict[tuple[str, int], tuple[float, SendAttempt]] = {}
        for record in trace.of("effects"):
            for effect in record.effects:
                if effect.get("type") == "SendAttempt":
                    send = SendAttempt.model_validate(
                        {k: v for k, v in effect.items() if k != "type"}
                    )
                    sends[(record.request, send.attempt)] = (record.t, send)
        attempts: dict[str, dict[int, _Attempt]] = {}
        for (request, number), (at, send) in sends.items():  # every send, answered or not
            attempts.setdefault(request, {})[number] = _Attempt(at, send.account, send.endpoint, [])
        for answer in trace.of("answer"):
            slot = attempts.setdefault(answer.request, {}).setdefault(
                answer.attempt, _Attempt(None, None, None, [])
            )
            slot.answers.append(answer)
        self.queues = {rid: [a for _, a in sorted(by.items())] for rid, by in attempts.items()}

    async def attempt(self, send: SendAttempt, payload: Any) -> AsyncIterator[Event]:
        request_id: str = payload
        queue = self.queues.get(request_id, [])
        now = self.clock.now()
        if not queue:
            self.problems.append(
                f"{request_id}: attempt {send.attempt} ({send.account} @ {send.endpoint}, "
                f"t={now:.3f}) has no recorded answer: the trace ends earlier"
            )
            yield UpstreamUnreachable(reason="replay: no recorded answer")
            return
        recorded = queue.pop(0)
        if (recorded.account, recorded.endpoint) != (send.account, send.endpoint):
            self.problems.append(
                f"{request_id}: attempt {send.attempt} went to {send.account} @ {send.endpoint}; "
                f"the trace's answer came from {recorded.account} @ {recorded.endpoint}"
            )
        base = recorded.sent_at if recorded.sent_at is not None else now
        final = False
        for answer in recorded.answers:
            delay = answer.t - base
            target = now + delay
            if target > self.clock.now():
                await asyncio.sleep(target - self.clock.now())
            event = load_event(answer.event)
            final = isinstance(event, FINAL_EVENTS)
            yield event
        if not final:  # the recording ends mid-attempt (a hang, a client that left): so do we
            await asyncio.Event().wait()


class _Client:
    def __init__(self, clock: VirtualClock, leave_at: float | None) -> None:
        self.clock = clock
        self.leave_at = leave_at

    async def commit(self) -> None:
        return None

    async def send(self, content: Any) -> None:
        return None

    async def finish(self, outcome: Outcome) -> None:
        return None

    def disconnected(self) -> bool:
        return False  # told at once by wait_disconnected, on the virtual clock

    async def wait_disconnected(self) -> None:
        if self.leave_at is None:
            await asyncio.Event().wait()
            return
        await asyncio.sleep(max(0.0, self.leave_at - self.clock.now()))


def policy_of(header: Header, overrides: dict[str, Any] | None = None) -> Policy:
    data = dict(header.policy)
    data.update(overrides or {})
    return load_policy("default", data)


def replay(trace: Trace, *, policy: Policy | None = None, observer: Any = None) -> Replay:
    """Run the trace's inputs through the engine on a virtual clock. `observer` (a TraceSink
    and/or step observer, like `adapters.timeline.Timeline`) sees the replay as it happens."""
    header = trace.header
    result = Replay()
    clock = VirtualClock(start=header.start, wall_start=header.wall_start)
    the_policy = policy or policy_of(header)

    async def main() -> None:
        pool = AccountPool(the_policy, header.accounts, now=header.start)
        engine = Engine(the_policy, pool, rng=random.Random(header.seed))
        recorder = TraceRecorder(None, header, keep=result.records)
        observers = FanOut(recorder, observer)
        engine.on_step = observers.on_step
        runner = Runner(engine, _Transport(trace, clock, result.problems), clock, observers)
        leaves = {d.request: d.t for d in trace.of("disconnect")}

        async def one(arrival: Any) -> None:
            await asyncio.sleep(max(0.0, arrival.t - clock.now()))
            client = _Client(clock, leaves.get(arrival.request))
            result.outcomes[arrival.request] = await runner.run(
                arrival.request,
                arrival.model,
                arrival.stream,
                client,
                arrival.request,
                client_model=arrival.client_model,
            )

        await asyncio.gather(*(one(a) for a in trace.of("arrival")))

    clock.run(main())
    return result


def _key(record: Step | Effects) -> tuple[Any, ...]:
    if isinstance(record, Step):
        return (
            "step",
            round(record.t, TIME_DIGITS),
            record.request,
            record.source,
            record.trigger,
            record.dest,
        )
    effects = [_rounded(e) for e in record.effects]
    return ("effects", round(record.t, TIME_DIGITS), record.request, record.state, effects)


def _rounded(effect: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, TIME_DIGITS) if isinstance(v, float) else v for k, v in effect.items()}


@dataclass
class Divergence:
    index: int
    recorded: Step | Effects | None
    replayed: Step | Effects | None

    def describe(self) -> str:
        def show(record: Step | Effects | None) -> str:
            return "(nothing)" if record is None else record.model_dump_json()

        return (
            f"first difference at output {self.index + 1}:\n"
            f"  recorded: {show(self.recorded)}\n  replayed: {show(self.replayed)}"
        )


def check(trace: Trace, result: Replay) -> Divergence | None:
    """The first output (in recording order) where the replay differs from the recording.

    Each request's outputs are compared in order, times to the microsecond. Requests are
    compared separately: two concurrent requests a few microseconds apart may interleave
    differently live and on the virtual clock without either behaving differently."""
    recorded, replayed = trace.outputs(), result.replayed.outputs()
    mine: dict[str, list[tuple[int, Step | Effects]]] = {}
    for index, record in enumerate(recorded):
        mine.setdefault(record.request, []).append((index, record))
    theirs: dict[str, list[Step | Effects]] = {}
    for record in replayed:
        theirs.setdefault(record.request, []).append(record)
    first: Divergence | None = None
    for request in dict.fromkeys([*mine, *theirs]):
        ours, other = mine.get(request, []), theirs.get(request, [])
        for n in range(max(len(ours), len(other))):
            a = ours[n] if n < len(ours) else None
            b = other[n] if n < len(other) else None
            if a is None or b is None or _key(a[1]) != _key(b):
                index = a[0] if a is not None else len(recorded)
                if first is None or index < first.index:
                    first = Divergence(index, a[1] if a else None, b)
                break
    return first
