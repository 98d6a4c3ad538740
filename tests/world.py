"""A scripted world around the real runner, for the property tests (DESIGN §2 invariants).

`run(scenario)` drives every request of a `Scenario` through `engine.runner.Runner` on one
`VirtualClock`: concurrent requests are asyncio tasks sharing one `AccountPool` and one clock;
the upstream is `ScriptedUpstream` (per (account, endpoint) scripts of answers over virtual time),
the clients are `RecordingClient`s (some disconnect) and the trace sink records what the runner
hands the engine and what the engine returns. The engine's steps are observed through
`Engine.on_step`, the pool only through its public queries, and nothing here decides anything the
runner would: this module has no runner logic of its own.

The invariants (tests/invariants.py) read only what was recorded here: `Observed`.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
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
from engine.machine import Engine
from engine.policy import Policy
from engine.pool import AccountPool
from engine.request import Request
from engine.runner import Runner, VirtualClock
from engine.store import AccountRecord

CHUNK_GAP = 0.01
EPS = 1e-6

# What a failure's scope is, by the body the script answered (DESIGN §2.1), decided here from
# the script, not from the engine's classification.
RATE = "rate limit"  # quota / rate-limit 429: account x model
CAPACITY = "capacity"  # target
ENDPOINT = "endpoint"  # 5xx, refused connection, stream broken
TOKEN = "token endpoint"  # credentials unavailable
TARGET = "target"  # 403, 404, empty
ACCOUNT = "account"  # revoked, verification, ban
AUTH = "auth"  # 401: a refresh first, then the account
CLIENT = "client"  # 400, 413: the request fails
OK = "ok"


@dataclass(frozen=True)
class Body:
    """An upstream error body from tests/support.py with what the script knows about it."""

    name: str
    facts: UpstreamFacts
    scope: str
    stated_s: float | None = None  # the reset or retry delay the body states, seconds


@dataclass(frozen=True)
class Reply:
    """One scripted answer to an attempt, `delay` s after it was sent.

    kind: ok | error | error_in_stream (2xx, then an error before content) | late_error (after
    content) | unreachable | credentials | empty | drop_before | drop_after | hang | hang_open."""

    kind: str
    body: Body | None = None
    delay: float = 0.05
    chunks: int = 2

    @property
    def scope(self) -> str:
        """The scope of the attempt's final event."""
        if self.kind in ("error", "error_in_stream", "late_error"):
            assert self.body is not None
            return self.body.scope
        return {
            "unreachable": ENDPOINT,
            "credentials": TOKEN,
            "empty": TARGET,
            "drop_before": ENDPOINT,
            "drop_after": ENDPOINT,
        }.get(self.kind, OK)

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.body.name}" if self.body else self.kind


HEALED = Reply("ok")


@dataclass(frozen=True)
class Arrival:
    at: float
    model: str
    leave_after: float | None = None  # the client disconnects this long after arriving


@dataclass(frozen=True)
class Scenario:
    policy: Policy
    accounts: tuple[AccountRecord, ...]
    models: tuple[str, ...]
    scripts: tuple[tuple[tuple[str, str], tuple[Reply, ...]], ...]
    """(account, endpoint) -> replies, in turn (cycling) for attempts sent before `heal_at`."""
    heal_at: float
    """From then on every attempt is answered normally (`HEALED`)."""
    arrivals: tuple[Arrival, ...]
    seed: int = 0
    recovery: bool = True
    """After the traffic, two recovery requests check invariant 8."""
    shared_window: tuple[bool | None, ...] = ()
    """When not empty, the runner has a shared 429 dedup window (`DedupWindow`) standing for
    other instances: its claims answer these in turn (cycling); False is a window another
    instance holds, None a shared store that cannot answer."""

    def script(self, account: str, endpoint: str) -> tuple[Reply, ...]:
        return dict(self.scripts).get((account, endpoint), (HEALED,))


# what is recorded --------------------------------------------------------------------------------
@dataclass
class Attempt:
    seq: int
    at: float
    rid: str
    account: str
    endpoint: str
    model: str
    reply: Reply
    refresh: bool
    yielded: list[Any] = field(default_factory=list)
    final: str | None = None  # the class name of its final event, once yielded
    cancelled: bool = False


@dataclass
class Step:
    seq: int
    at: float
    rid: str
    source: str
    trigger: str
    dest: str


@dataclass
class Snapshot:
    """The pool's public state at one moment."""

    at: float
    cooldowns: dict[tuple[str, str], float]
    rests: dict[tuple[str, str, str], float]
    invalid: frozenset[str]
    breakers: dict[str, tuple[str, float, int]]  # endpoint -> (state, probe_at, interval_ms)
    leases: dict[str, int]


@dataclass
class Bracket:
    """One call into the engine by the runner: what went in, the pool before and after."""

    seq: int
    at: float
    rid: str
    event: Event | None  # None: the request's arrival (Engine.start)
    attempt: Attempt | None  # the attempt the event belongs to, if any
    before: Snapshot
    after: Snapshot | None = None
    effects: list[Effect] = field(default_factory=list)
    state: str = ""


@dataclass
class Client:
    rid: str
    arrived: float
    model: str
    leave_at: float | None
    recovery: str = ""  # "", "first" or "second"
    committed: tuple[int, float] | None = None
    received: list[tuple[float, Any]] = field(default_factory=list)
    finishes: list[tuple[float, Outcome]] = field(default_factory=list)
    returned: Outcome | None = None
    left_at: float | None = None


@dataclass
class Observed:
    """Everything a run recorded, in order (`seq` orders events at the same virtual time)."""

    scenario: Scenario
    steps: list[Step] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    brackets: list[Bracket] = field(default_factory=list)
    sink: list[tuple[Any, ...]] = field(default_factory=list)
    clients: dict[str, Client] = field(default_factory=dict)
    engine_steps: dict[str, int] = field(default_factory=dict)  # the engine's own counter
    wait_checks: list[tuple[str, str]] = field(default_factory=list)  # (rid, violation)
    final_pool: Snapshot | None = None
    quiet_at: float = 0.0
    seq: int = 0

    def tick(self) -> int:
        self.seq += 1
        return self.seq

    def last_attempt(self, rid: str) -> Attempt | None:
        for attempt in reversed(self.attempts):
            if attempt.rid == rid:
                return attempt
        return None

    def signature(self) -> list[tuple[Any, ...]]:
        """What determinism compares: every step, attempt and sink record with its time."""
        return [
            *((s.seq, round(s.at, 9), s.rid, s.source, s.trigger, s.dest) for s in self.steps),
            *(
                (a.seq, round(a.at, 9), a.rid, a.account, a.endpoint, a.model)
                for a in self.attempts
            ),
            *self.sink,
        ]


def snapshot(pool: AccountPool, models: tuple[str, ...], now: float) -> Snapshot:
    ids = pool.account_ids
    endpoints = tuple(pool.endpoints)
    cooldowns = {(a, m): cd.until for a in ids for m in models if (cd := pool.cooldown(a, m, now))}
    rests = {
        (a, m, e): r.until
        for a in ids
        for m in models
        for e in endpoints
        if (r := pool.rest(a, m, e, now))
    }
    return Snapshot(
        at=now,
        cooldowns=cooldowns,
        rests=rests,
        invalid=frozenset(a for a in ids if not pool.account(a).valid),
        breakers={e: (h.state, h.probe_at, h.interval_ms) for e, h in pool.endpoints.items()},
        leases={a: pool.account(a).leases for a in ids},
    )


# the ports ----------------------------------------------------------------------------------------
class ScriptedUpstream:
    """The `Transport`: answers each attempt from its target's script (cycling) until the
    scenario heals, normally after. `payload` is the request id."""

    def __init__(self, clock: VirtualClock, scenario: Scenario, seen: Observed) -> None:
        self.clock = clock
        self.scenario = scenario
        self.seen = seen
        self.turn: dict[tuple[str, str], int] = {}

    def reply_for(self, account: str, endpoint: str, now: float) -> Reply:
        if now + EPS >= self.scenario.heal_at:
            return HEALED
        script = self.scenario.script(account, endpoint)
        i = self.turn.get((account, endpoint), 0)
        self.turn[(account, endpoint)] = i + 1
        return script[i % len(script)]

    async def attempt(self, send: SendAttempt, payload: Any) -> AsyncIterator[Event]:
        now = self.clock.now()
        reply = self.reply_for(send.account, send.endpoint, now)
        attempt = Attempt(
            self.seen.tick(),
            now,
            str(payload),
            send.account,
            send.endpoint,
            send.model,
            reply,
            send.refresh_credentials,
        )
        self.seen.attempts.append(attempt)
        try:
            async for event in self._answer(attempt, reply):
                attempt.final = type(event).__name__
                yield event
        except asyncio.CancelledError:
            attempt.cancelled = True
            raise

    async def _answer(self, attempt: Attempt, reply: Reply) -> AsyncIterator[Event]:
        kind = reply.kind
        await asyncio.sleep(reply.delay)
        if kind == "error":
            yield self._failed(reply)
            return
        if kind in ("unreachable", "credentials"):
            yield UpstreamUnreachable(
                reason="connection refused", credentials=kind == "credentials"
            )
            return
        if kind == "hang":
            await asyncio.Event().wait()
        yield StreamOpened()
        if kind == "hang_open":
            await asyncio.Event().wait()
        if kind == "error_in_stream":
            yield self._failed(reply)
            return
        if kind == "empty":
            yield StreamEnded()
            return
        if kind == "drop_before":
            yield StreamBroken(reason="connection reset")
            return
        for k in range(reply.chunks):
            content = (attempt.seq, k)
            attempt.yielded.append(content)
            yield ContentReceived(content=content)
            await asyncio.sleep(CHUNK_GAP)
        if kind == "drop_after":
            yield StreamBroken(reason="connection reset")
        elif kind == "late_error":
            yield self._failed(reply)
        else:
            yield StreamEnded()

    def _failed(self, reply: Reply) -> UpstreamFailed:
        assert reply.body is not None
        return UpstreamFailed(facts=reply.body.facts, wall=self.clock.wall())


class RecordingClient:
    """The `ClientStream`: records the commit, every content, the outcome; leaves at
    `leave_at` (virtual s) if set."""

    def __init__(self, clock: VirtualClock, seen: Observed, record: Client) -> None:
        self.clock = clock
        self.seen = seen
        self.record = record

    async def commit(self) -> None:
        assert self.record.committed is None, "committed twice"
        self.record.committed = (self.seen.tick(), self.clock.now())

    async def send(self, content: Any) -> None:
        self.record.received.append((self.clock.now(), content))

    async def finish(self, outcome: Outcome) -> None:
        self.record.finishes.append((self.clock.now(), outcome))

    def disconnected(self) -> bool:
        return False  # told at once by wait_disconnected, on the virtual clock

    async def wait_disconnected(self) -> None:
        leave_at = self.record.leave_at
        if leave_at is None:
            await asyncio.Event().wait()  # it stays
            return
        await asyncio.sleep(max(0.0, leave_at - self.clock.now()))
        self.record.left_at = self.clock.now()


class RecordingSink:
    """The `TraceSink`: records every arrival, event and emission, brackets each engine call
    with a snapshot of the pool before and after."""

    def __init__(self, clock: VirtualClock, seen: Observed, pool: AccountPool) -> None:
        self.clock = clock
        self.seen = seen
        self.pool = pool
        self.open: dict[str, Bracket] = {}

    def _bracket(self, rid: str, event: Event | None) -> None:
        now = self.clock.now()
        attempt = None
        if event is not None and isinstance(
            event, (UpstreamFailed, UpstreamUnreachable, StreamBroken, StreamEnded, StreamOpened)
        ):
            attempt = self.seen.last_attempt(rid)
        self.open[rid] = Bracket(
            self.seen.tick(),
            now,
            rid,
            event,
            attempt,
            snapshot(self.pool, self.seen.scenario.models, now),
        )

    def arrived(
        self,
        request_id: str,
        at: float,
        model: str,
        stream: bool,
        client_model: str | None = None,
    ) -> None:
        self.seen.sink.append(("arrived", request_id, round(at, 9), model, stream))
        self._bracket(request_id, None)

    def received(self, request_id: str, at: float, event: Event) -> None:
        self.seen.sink.append(
            ("received", request_id, round(at, 9), round(self.clock.now(), 9), repr(event))
        )
        self._bracket(request_id, event)

    def emitted(self, request_id: str, at: float, state: str, effects: list[Effect]) -> None:
        self.seen.sink.append(("emitted", request_id, round(at, 9), state, repr(effects)))
        bracket = self.open.pop(request_id)
        bracket.after = snapshot(self.pool, self.seen.scenario.models, self.clock.now())
        bracket.effects = list(effects)
        bracket.state = state
        self.seen.brackets.append(bracket)


class ScriptedWindow:
    """A shared 429 dedup window whose claims answer a script in turn (other instances)."""

    def __init__(self, answers: tuple[bool | None, ...]) -> None:
        self.answers = itertools.cycle(answers)

    async def claim(self, account: str, model: str, holder: str, ttl_ms: int) -> bool | None:
        return next(self.answers)


def probe_interval_s(policy: Policy) -> float:
    """The longest interval between two probes of an open endpoint (the policy does not
    require first_probe_ms <= max_probe_ms, and the first interval is not capped)."""
    b = policy.breaker
    return max(b.first_probe_ms, b.max_probe_ms) / 1000.0


# running a scenario ------------------------------------------------------------------------------
StepHook = Any  # Callable[[Observed, Request, Step, AccountPool], None]


def run(scenario: Scenario, on_step: StepHook = None) -> Observed:
    """Run the scenario through the real runner; return what was observed. `on_step` is called
    at every engine step with the pool as it is at that moment (for checks that need the live
    pool, like work conservation)."""
    clock = VirtualClock()
    seen = Observed(scenario)
    pool = AccountPool(scenario.policy, scenario.accounts)
    engine = Engine(scenario.policy, pool, rng=random.Random(scenario.seed))
    sink = RecordingSink(clock, seen, pool)
    window = ScriptedWindow(scenario.shared_window) if scenario.shared_window else None
    runner = Runner(engine, ScriptedUpstream(clock, scenario, seen), clock, sink, window)

    def step(request: Request, source: str, trigger: str, dest: str) -> None:
        record = Step(seen.tick(), clock.now(), request.id, source, trigger, dest)
        seen.steps.append(record)
        seen.engine_steps[request.id] = request.steps
        if on_step is not None:
            on_step(seen, request, record, pool)

    engine.on_step = step

    async def serve(rid: str, arrival: Arrival, recovery: str = "") -> None:
        await asyncio.sleep(max(0.0, arrival.at - clock.now()))
        leave = None if arrival.leave_after is None else arrival.at + arrival.leave_after
        record = Client(rid, clock.now(), arrival.model, leave, recovery)
        seen.clients[rid] = record
        client = RecordingClient(clock, seen, record)
        record.returned = await runner.run(rid, arrival.model, True, client, payload=rid)

    async def main() -> None:
        await asyncio.gather(
            *(serve(f"r{i}", arrival) for i, arrival in enumerate(scenario.arrivals))
        )
        seen.quiet_at = clock.now()
        if not scenario.recovery:
            return
        # invariant 8: once the upstream answers normally and every stated reset and every rest
        # has passed, a request succeeds at once (or within one probe interval), and the next
        # one, a probe interval later, on its first attempt at the first endpoint
        calm = snapshot(pool, scenario.models, clock.now())
        stated = [
            b.attempt.at + b.attempt.reply.body.stated_s
            for b in seen.brackets
            if b.attempt is not None
            and b.attempt.reply.body is not None
            and b.attempt.reply.body.stated_s is not None
        ]
        first = max(
            clock.now(), scenario.heal_at, *stated, *calm.cooldowns.values(), *calm.rests.values()
        )
        first = math.ceil(first) + 1.0
        model = scenario.models[0]
        await serve("recovery1", Arrival(first, model), "first")
        probe_s = probe_interval_s(scenario.policy)
        await serve("recovery2", Arrival(clock.now() + probe_s + 1.0, model), "second")

    clock.run(main())
    seen.final_pool = snapshot(pool, scenario.models, clock.now())
    seen.final_pool.leases = {a: pool.account(a).leases for a in pool.account_ids}
    return seen
