"""The retry-quality scoreboard's harness: scripted upstreams, clients, lower bounds, verdicts.

A `Scenario` is a script of what every target (account x endpoint) answers over virtual time
(`Rule`s, first match wins, anything unmatched answers OK) and the clients that send requests
into it (`Clients`). `run_scenario` drives the scenario through the real `Runner` on a
`VirtualClock` with a scripted `Transport` and a recording `ClientStream`, and scores every
client session against the lower bound computed from the script.

Only the engine's public API is used (`Engine`, `AccountPool`, `load_policy`, `Runner`,
`VirtualClock`, the ports and the events), so the scoreboard keeps measuring the same thing
whatever the engine does inside.

Definitions
-----------
- An upstream call made at `s` whose reply is OK yields its first content at `s + delay`
  (`RTT`, 50 ms) and ends `CHUNK_GAP` later; an error or a refused connection arrives at
  `s + delay`.
- A **session** is what one client experiences: it sends a request; when the request fails and
  the client retries (`Clients.retry_every`), it sends a new request that many seconds after the
  failure, until one succeeds or `max_tries` requests were sent. Latencies are measured from
  the session's first arrival: **ttfb** to the first byte of the final request (streaming: the
  commit, i.e. the first content; non-streaming, or an error: the outcome), **done** to the
  final outcome.
- The **lower bound** of a session is the earliest virtual moment any target could have given
  its first byte, computed from the script at the first arrival: for each target, the first
  call at or after the arrival whose reply is OK (a rule limited to `times` calls costs one
  round trip per remaining use), plus the reply's delay. It is what an omniscient engine that
  made no wasted waits would achieve; it ignores what other requests consume.
- The **wait limit** W of a request is `min(max_wait_before_error_ms, deadline_ms)` of the
  policy: how long the engine may keep a client waiting before it must answer.

The verdict rule
----------------
Target latency for a bound B: `max(B + 0.5 s, 1.1 x B)`.

- *Servable* session (lower bound <= W): it must succeed, with ttfb <= target(lower bound).
  An error (even a fast one) is a MISS: a target could have served within the wait limit.
- *Unservable* session (no target can serve before W): the right answer is an error, and the
  sooner the better, but an engine can only answer early what it can know. When every
  target's reply at the arrival states a reset (quota, retry delay) at least W away, the
  engine can know at once, so B = 0: the error must come within 0.5 s (a few probes). When
  some target gives no such hint (capacity without `retryDelay`, a 5xx), the engine cannot
  know the trouble outlasts W, so B = W: the answer must come by target(W). Either way the
  session passes when its final outcome arrives by the target (an error, as nothing can
  serve; a success that late would have waited past the wait limit and misses).

A scenario passes when every scored session is within its target. The scoreboard also counts
every upstream call, and the calls made for a request after its client left (the outcome was
delivered, or the client disconnected): those must be 0.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from engine import AccountPool, Engine, FailureKind, ResetHint, UpstreamFacts, load_policy
from engine.effects import Outcome, SendAttempt
from engine.events import (
    ContentReceived,
    Event,
    StreamEnded,
    StreamOpened,
    UpstreamFailed,
    UpstreamUnreachable,
)
from engine.runner import Runner, VirtualClock

MODEL = "claude-sonnet-4-6"
ENDPOINTS = ("daily", "prod")  # Cloud Code's endpoint names (the engine's default is neutral)
RTT = 0.05  # seconds from an upstream call to its answer (first content, error, refusal)
CHUNK_GAP = 0.01  # seconds from the first content of an OK answer to its end
SLACK_S = 0.5
SLACK_RATIO = 1.1
EPS = 1e-9


def target_for(bound: float) -> float:
    """The latency a session with this bound should achieve: max(B + 0.5 s, 1.1 x B)."""
    return max(bound + SLACK_S, SLACK_RATIO * bound)


# upstream facts (the shapes of tests/support.py, built from the public fact types) -----------
def _hint(ms: float) -> tuple[ResetHint, ...]:
    return (ResetHint(delay_ms=ms),)


def quota_429(reset_ms: float) -> UpstreamFacts:
    """429 QUOTA_EXHAUSTED with quotaResetDelay, as the Cloud Code adapter hands it over."""
    return UpstreamFacts(
        kind=FailureKind.QUOTA_EXHAUSTED,
        status=429,
        resets=_hint(reset_ms),
        message="You have exhausted your capacity on this model.",
    )


def rate_limit_429(reset_ms: float | None) -> UpstreamFacts:
    """429 RATE_LIMIT_EXCEEDED with retryDelay (if given)."""
    return UpstreamFacts(
        kind=FailureKind.RATE_LIMITED,
        status=429,
        resets=() if reset_ms is None else _hint(reset_ms),
        message="Rate limited.",
    )


def capacity_503(retry_ms: float | None = None) -> UpstreamFacts:
    """503 MODEL_CAPACITY_EXHAUSTED with retryDelay (if given)."""
    return UpstreamFacts(
        kind=FailureKind.CAPACITY_EXHAUSTED,
        status=503,
        resets=() if retry_ms is None else _hint(retry_ms),
        message="No capacity available for model on the server",
    )


SERVER_500 = UpstreamFacts(kind=FailureKind.SERVER_ERROR, status=500, message="Unknown Error.")
SERVER_503 = UpstreamFacts(
    kind=FailureKind.SERVER_ERROR, status=503, message="The service is currently unavailable."
)


def stated_reset_s(facts: UpstreamFacts | None) -> float | None:
    """The longest relative reset the facts state, in seconds (None when they state none)."""
    if facts is None:
        return None
    delays = [h.delay_ms for h in facts.resets if h.delay_ms is not None]
    return max(delays) / 1000.0 if delays else None


# the script ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    """What one upstream call answers, `delay` seconds after it was made."""

    kind: Literal["ok", "error", "unreachable"]
    facts: UpstreamFacts | None = None
    delay: float = RTT


OK = Reply("ok")
UNREACHABLE = Reply("unreachable")


def fail(facts: UpstreamFacts) -> Reply:
    return Reply("error", facts)


@dataclass(frozen=True)
class Rule:
    """Calls to the matching targets made in [start, end) answer `reply`; with `times`, only
    that many calls (across all requests) do, after which the rule no longer applies.
    `accounts` / `endpoints` None match every account / endpoint."""

    reply: Reply
    accounts: frozenset[str] | None = None
    endpoints: frozenset[str] | None = None
    start: float = 0.0
    end: float = math.inf
    times: int | None = None

    def matches(self, account: str, endpoint: str, t: float) -> bool:
        return (
            (self.accounts is None or account in self.accounts)
            and (self.endpoints is None or endpoint in self.endpoints)
            and self.start <= t + EPS
            and t + EPS < self.end
        )


def rule(
    reply: Reply,
    *,
    accounts: Iterable[str] | None = None,
    endpoints: Iterable[str] | None = None,
    start: float = 0.0,
    end: float = math.inf,
    times: int | None = None,
) -> Rule:
    return Rule(
        reply,
        None if accounts is None else frozenset(accounts),
        None if endpoints is None else frozenset(endpoints),
        start,
        end,
        times,
    )


class Script:
    """The rules of one scenario with their use counts: answers calls, and computes bounds."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self.used = [0] * len(self.rules)
        self._edges = sorted({r.start for r in rules} | {r.end for r in rules} - {math.inf})

    def _match(self, account: str, endpoint: str, t: float, used: list[int]) -> int | None:
        for i, r in enumerate(self.rules):
            if r.matches(account, endpoint, t) and (r.times is None or used[i] < r.times):
                return i
        return None

    def answer(self, account: str, endpoint: str, t: float) -> Reply:
        """The reply to a call made at `t` (consumes one use of a counted rule)."""
        i = self._match(account, endpoint, t, self.used)
        if i is None:
            return OK
        self.used[i] += 1
        return self.rules[i].reply

    def peek(self, account: str, endpoint: str, t: float) -> Reply:
        i = self._match(account, endpoint, t, self.used)
        return OK if i is None else self.rules[i].reply

    def earliest_ok(self, account: str, endpoint: str, t: float) -> float:
        """When the first byte of an OK answer could arrive from this target at the earliest,
        calling it from `t` on (inf: never)."""
        used = list(self.used)
        s = t
        while True:
            i = self._match(account, endpoint, s, used)
            if i is None:
                return s + OK.delay
            r = self.rules[i]
            if r.reply.kind == "ok":
                return s + r.reply.delay
            if r.times is not None:  # burn one use, call again when it answered
                used[i] += 1
                s += r.reply.delay
                continue
            later = [e for e in self._edges if e > s + EPS]
            if not later:
                return math.inf
            s = later[0]


# the ports ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    """One upstream call: when, for which request, to which target, and what it answered."""

    at: float
    request: str
    account: str
    endpoint: str
    reply: str


class ScriptedTransport:
    """A `Transport` answering each call from the script by (account, endpoint, call time)."""

    def __init__(self, clock: VirtualClock, script: Script) -> None:
        self.clock = clock
        self.script = script
        self.calls: list[Call] = []

    async def attempt(self, send: SendAttempt, payload: Any) -> AsyncIterator[Event]:
        now = self.clock.now()
        reply = self.script.answer(send.account, send.endpoint, now)
        label = reply.kind if reply.facts is None else f"{reply.facts.status}"
        self.calls.append(Call(now, str(payload), send.account, send.endpoint, label))
        await asyncio.sleep(reply.delay)
        if reply.kind == "error":
            assert reply.facts is not None
            yield UpstreamFailed(facts=reply.facts, wall=self.clock.wall())
            return
        if reply.kind == "unreachable":
            yield UpstreamUnreachable(reason="connection refused")
            return
        yield StreamOpened()
        yield ContentReceived(content="Hello")
        await asyncio.sleep(CHUNK_GAP)
        yield StreamEnded()


@dataclass
class RecordingClient:
    """A `ClientStream` that records when it was committed and finished; it disconnects at
    `leave_at` (virtual s) if set."""

    clock: VirtualClock
    leave_at: float | None = None
    committed_at: float | None = None
    finished_at: float | None = None
    outcome: Outcome | None = None
    received: int = 0

    async def commit(self) -> None:
        assert self.committed_at is None, "committed twice"
        self.committed_at = self.clock.now()

    async def send(self, content: Any) -> None:
        assert self.committed_at is not None, "content before commit"
        self.received += 1

    async def finish(self, outcome: Outcome) -> None:
        assert self.outcome is None, "two outcomes"
        self.finished_at = self.clock.now()
        self.outcome = outcome

    def disconnected(self) -> bool:
        return False  # told at once by wait_disconnected, on the virtual clock

    async def wait_disconnected(self) -> None:
        if self.leave_at is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(max(0.0, self.leave_at - self.clock.now()))

    def left_at(self) -> float:
        """When the client stopped listening: its outcome, or its disconnect if earlier."""
        ends = [t for t in (self.finished_at, self.leave_at) if t is not None]
        return min(ends) if ends else math.inf


# scenarios ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Clients:
    """`sessions` client sessions one after another from `start`: the next begins `gap` s after
    the previous one ended. Within a session, a failed request is followed `retry_every` s later
    by a new one (None: the client does not retry), at most `max_tries` requests. `leave_after`
    makes each request's client disconnect that long after it was sent. Unscored sessions are
    load: their calls count, their latencies are not judged."""

    start: float = 0.0
    sessions: int = 1
    gap: float = 0.0
    stream: bool = True
    retry_every: float | None = None
    max_tries: int = 30
    leave_after: float | None = None
    scored: bool = True


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    accounts: tuple[str, ...]
    rules: tuple[Rule, ...]
    clients: tuple[Clients, ...] = (Clients(),)
    policy: str = "default"
    overrides: dict[str, Any] = field(default_factory=dict)
    seed: int = 1


@dataclass
class Session:
    """One client session's experience and its verdict."""

    scored: bool
    stream: bool
    arrived: float
    requests: list[str] = field(default_factory=list)
    ttfb: float = math.inf
    done: float = math.inf
    status: int = 0
    ok: bool = False
    bound: float = math.inf  # the lower bound (seconds after the arrival)
    servable: bool = True
    target: float = math.inf  # the latency the verdict compares with
    within: bool = False

    def judge(self, wait_limit: float, known: bool) -> None:
        """Apply the verdict rule (module docstring); `known`: every target's reply at the
        arrival states a reset at least `wait_limit` away."""
        self.servable = self.bound <= wait_limit + EPS
        if self.servable:
            self.target = target_for(self.bound)
            self.within = self.ok and self.ttfb <= self.target + EPS
        else:
            self.target = target_for(0.0 if known else wait_limit)
            self.within = self.done <= self.target + EPS

    @property
    def excess(self) -> float:
        latency = self.ttfb if self.servable else self.done
        return latency - self.target


@dataclass
class Result:
    scenario: Scenario
    sessions: list[Session]
    calls: list[Call]
    calls_after_left: int
    wait_limit: float

    @property
    def scored(self) -> list[Session]:
        return [s for s in self.sessions if s.scored]

    @property
    def requests(self) -> int:
        return sum(len(s.requests) for s in self.sessions)

    @property
    def passed(self) -> bool:
        return all(s.within for s in self.scored) and self.calls_after_left == 0

    @property
    def worst(self) -> Session:
        """The scored session that misses worst (a servable one that failed first, then the
        furthest over its target), or, when all are within, the closest to its target."""
        return max(self.scored, key=lambda s: (not s.within, s.servable and not s.ok, s.excess))

    def statuses(self) -> str:
        """Final statuses of the scored sessions, e.g. `200x99 500x1`."""
        counts: dict[int, int] = {}
        for s in self.scored:
            counts[s.status] = counts.get(s.status, 0) + 1
        return " ".join(f"{k}x{v}" if v > 1 else str(k) for k, v in sorted(counts.items()))


def run_scenario(scenario: Scenario) -> Result:
    """Run `scenario` through the real runner on a virtual clock and judge every session."""
    policy = load_policy(scenario.policy, {"endpoints": ENDPOINTS, **scenario.overrides})
    pool = AccountPool(policy, list(scenario.accounts), now=0.0)
    engine = Engine(policy, pool, rng=random.Random(scenario.seed))
    clock = VirtualClock(start=0.0)
    script = Script(scenario.rules)
    transport = ScriptedTransport(clock, script)
    runner = Runner(engine, transport, clock)
    wait_limit = min(policy.max_wait_before_error_ms, policy.deadline_ms) / 1000.0
    targets = [(a, e) for a in scenario.accounts for e in policy.endpoints]
    sessions: list[Session] = []
    clients: dict[str, RecordingClient] = {}

    def bound_at(t: float) -> tuple[float, bool]:
        earliest = min(script.earliest_ok(a, e, t) for a, e in targets)
        known = True
        for a, e in targets:
            reply = script.peek(a, e, t)
            reset = stated_reset_s(reply.facts) if reply.kind == "error" else None
            known = known and reset is not None and reset >= wait_limit
        return earliest - t, known

    async def one(rid: str, spec: Clients) -> RecordingClient:
        now = clock.now()
        leave = None if spec.leave_after is None else now + spec.leave_after
        client = clients[rid] = RecordingClient(clock, leave_at=leave)
        await runner.run(rid, MODEL, spec.stream, client, rid)
        return client

    async def session(index: str, spec: Clients) -> None:
        arrived = clock.now()
        bound, known = bound_at(arrived)
        s = Session(spec.scored, spec.stream, arrived, bound=bound)
        sessions.append(s)
        for attempt in range(spec.max_tries):
            rid = f"{index}.{attempt + 1}"
            s.requests.append(rid)
            client = await one(rid, spec)
            outcome = client.outcome
            assert outcome is not None and client.finished_at is not None
            first = client.committed_at if spec.stream else None
            s.ttfb = (first if first is not None else client.finished_at) - arrived
            s.done = client.finished_at - arrived
            s.status, s.ok = outcome.status, outcome.ok
            if outcome.ok or spec.retry_every is None:
                break
            await asyncio.sleep(spec.retry_every)
        s.judge(wait_limit, known)

    async def client_loop(ci: int, spec: Clients) -> None:
        await asyncio.sleep(max(0.0, spec.start - clock.now()))
        for si in range(spec.sessions):
            if si:
                await asyncio.sleep(spec.gap)
            await session(f"c{ci}s{si + 1}", spec)

    async def main() -> None:
        await asyncio.gather(*(client_loop(i, c) for i, c in enumerate(scenario.clients)))

    clock.run(main())
    after = sum(1 for c in transport.calls if c.at > clients[c.request].left_at() + EPS)
    sessions.sort(key=lambda s: s.arrived)
    return Result(scenario, sessions, transport.calls, after, wait_limit)
