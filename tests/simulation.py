"""A discrete-event simulation of the engine for property tests: several concurrent requests
share one pool and one virtual clock; every account answers from a cyclic script of arbitrary
upstream outcomes; clients may disconnect. It records everything the invariants need.

It is the synchronous twin of `engine.runner`: it performs effects (schedules the scripted
answers of a `SendAttempt`, drops a cancelled attempt's events, arms `StartTimer`s, schedules
deadlines and disconnects) and delivers events in time order.
"""

from __future__ import annotations

import functools
import heapq
import random
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from engine.bounds import step_bound
from engine.effects import (
    CancelAttempt,
    CancelTimer,
    Commit,
    CoolDownAccount,
    Effect,
    Finish,
    RelayContent,
    SendAttempt,
    StartTimer,
)
from engine.events import (
    ClientDisconnected,
    ContentReceived,
    DeadlineExpired,
    Event,
    StreamBroken,
    StreamEnded,
    StreamOpened,
    TimerFired,
    UpstreamFailed,
    UpstreamUnreachable,
)
from engine.failures import (
    RATE_LIMIT_KINDS,
    FailureKind,
    ResetHint,
    ResetSource,
    UpstreamFacts,
    classify,
)
from engine.machine import Engine
from engine.policy import Policy, load_policy
from engine.pool import AccountPool
from engine.request import Request
from engine.store import AccountRecord, CooldownRecord

WALL0 = 1_767_000_000.0
EPS = 1e-6
MODELS = ("m1", "m2", "m3")
CHAINS = {"m1": ("m2", "m3"), "m2": ("m3",)}


# scenario strategies ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """One scripted answer: after `delay` s, `kind`; streams carry `chunks` contents."""

    kind: str  # error | unreachable | ok | empty | drop | hang | late_error
    delay: float
    chunks: int = 0
    facts: UpstreamFacts | None = None


@dataclass(frozen=True)
class Arrival:
    at: float
    model: str
    leave_at: float | None


@dataclass(frozen=True)
class Scenario:
    policy: Policy
    accounts: tuple[AccountRecord, ...]
    scripts: dict[str, tuple[Outcome, ...]]
    arrivals: tuple[Arrival, ...]
    seed: int


def _reset_variants() -> list[tuple[ResetHint, ...]]:
    d = ResetSource.RETRY_DELAY
    return [
        (),
        (ResetHint(source=d, delay_ms=0),),
        (ResetHint(source=d, delay_ms=300),),
        (ResetHint(source=ResetSource.QUOTA_RESET_DELAY, delay_ms=3000),),
        (ResetHint(source=ResetSource.RETRY_AFTER_HEADER, delay_ms=30_000),),
        (ResetHint(source=ResetSource.QUOTA_RESET_DELAY, delay_ms=7_384_500),),
        (ResetHint(source=ResetSource.QUOTA_RESET_TIMESTAMP, at_epoch_s=WALL0 - 50),),
        (ResetHint(source=ResetSource.RATELIMIT_RESET_HEADER, at_epoch_s=WALL0 + 90),),
        (ResetHint(source=d, delay_ms=39_000), ResetHint(source=ResetSource.TEXT, delay_ms=5)),
    ]


#: Every combination of status, reason, reset hints and markers (1,620 facts).
FACTS_POOL = [
    UpstreamFacts(
        status=status,
        reason=reason,
        resets=resets,
        permanent_auth=marker == "revoked",
        banned=marker == "banned",
        message="upstream says no",
    )
    for status in (400, 401, 403, 404, 413, 429, 500, 502, 503, 529)
    for reason in (
        None,
        "MODEL_CAPACITY_EXHAUSTED",
        "RATE_LIMIT_EXCEEDED",
        "QUOTA_EXHAUSTED",
        "VALIDATION_REQUIRED",
        "CLIENT_VERSION_UNSUPPORTED",
    )
    for resets in _reset_variants()
    for marker in (None, "revoked", "banned")
]
facts = st.sampled_from(FACTS_POOL)
_SHAPES = [
    (kind, delay, chunks)
    for kind in ("error", "unreachable", "empty", "hang", "ok", "drop", "late_error")
    for delay in (0.0, 0.01, 0.5, 3.0, 40.0, 400.0)
    for chunks in range(4)
]
outcomes = st.builds(
    lambda shape, fact: Outcome(kind=shape[0], delay=shape[1], chunks=shape[2], facts=fact),
    st.sampled_from(_SHAPES),
    facts,
)


@functools.lru_cache(maxsize=4096)
def _policy(preset: str, overrides: tuple[tuple[str, Any], ...]) -> Policy:
    return load_policy(
        preset,
        {k: dict(v) if isinstance(v, tuple) and k == "retry_budget" else v for k, v in overrides},
    )


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    preset = draw(st.sampled_from(["default", "many-accounts", "conservative"]))
    overrides: dict[str, Any] = {
        "strategy": draw(st.sampled_from(["sticky", "round-robin", "hybrid"])),
        "endpoints": tuple(f"e{i}" for i in range(draw(st.integers(1, 3)))),
        "max_retries": draw(st.integers(1, 4)),
        "max_capacity_retries": draw(st.integers(0, 3)),
        "max_subsecond_retries": draw(st.integers(0, 3)),
        "max_short_rate_limit_retries": draw(st.integers(0, 3)),
        "max_empty_retries": draw(st.integers(0, 2)),
        "max_pool_waits": draw(st.integers(0, 3)),
        "deadline_ms": draw(st.sampled_from([1000, 8000, 60_000, 600_000, 7_200_000])),
        "switch_account_delay_ms": draw(st.sampled_from([0, 5000])),
        "server_error_pause_ms": draw(st.sampled_from([0, 1000])),
        "rate_limit_dedup_window_ms": draw(st.sampled_from([0, 2000, 5000])),
        "max_wait_before_error_ms": draw(st.sampled_from([0, 30_000, 120_000, 600_000])),
        "empty_response_placeholder": draw(st.booleans()),
        "fallback_enabled": draw(st.booleans()),
        "max_fallback_depth": draw(st.integers(0, 2)),
        "retry_budget": draw(st.sampled_from([None, (("max_tokens", 4), ("token_ratio", 0.5))])),
    }
    policy = _policy(preset, tuple(overrides.items()))
    return policy.model_copy(update={"fallback_chains": CHAINS})


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    policy = draw(policies())
    n = draw(st.integers(0, 4))
    accounts = []
    for i in range(n):
        kind = draw(st.sampled_from(["ok", "ok", "ok", "invalid", "disabled", "cooling"]))
        cooldowns = {}
        if kind == "cooling":
            model = draw(st.sampled_from(MODELS))
            cooldowns[model] = CooldownRecord(until=draw(st.floats(0.1, 10_000.0)), reason="old")
        accounts.append(
            AccountRecord(
                id=f"acct{i}",
                enabled=kind != "disabled",
                invalid_reason="Token revoked - re-authentication required"
                if kind == "invalid"
                else None,
                cooldowns=cooldowns,
            )
        )
    scripts = {a.id: tuple(draw(st.lists(outcomes, min_size=1, max_size=5))) for a in accounts}
    arrivals = tuple(
        draw(
            st.lists(
                st.builds(
                    Arrival,
                    at=st.sampled_from([0.0, 0.0, 0.3, 1.0, 30.0]),
                    model=st.sampled_from(MODELS),
                    leave_at=st.one_of(st.none(), st.none(), st.floats(0.0, 500.0)),
                ),
                min_size=1,
                max_size=4,
            )
        )
    )
    return Scenario(policy, tuple(accounts), scripts, arrivals, draw(st.integers(0, 2**16)))


# the simulation --------------------------------------------------------------------------------
@dataclass
class Trace:
    """What the simulation observed, for the invariants."""

    steps: list[tuple[float, str, str, Event, str, list[Effect]]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    finished: dict[str, tuple[float, Any]] = field(default_factory=dict)
    requests: dict[str, Request] = field(default_factory=dict)
    bounds: dict[str, int] = field(default_factory=dict)
    escalations: list[tuple[float, str, tuple[str, str]]] = field(default_factory=list)
    deliveries: int = 0

    def signature(self) -> list[tuple[Any, ...]]:
        return [
            (round(t, 9), rid, state, repr(ev), repr(effs))
            for t, rid, state, ev, _, effs in self.steps
        ]


class Simulation:
    def __init__(self, scenario: Scenario) -> None:
        self.s = scenario
        self.pool = AccountPool(scenario.policy, scenario.accounts)
        self.engine = Engine(scenario.policy, self.pool, rng=random.Random(scenario.seed))
        self.now = 0.0
        self.queue: list[tuple[float, int, str, int, Event]] = []
        self.seq = 0
        self.cursor: dict[str, int] = {}
        self.gen: dict[str, int] = {}  # attempt generation per request
        self.timer_gen: dict[str, int] = {}
        self.armed: dict[str, bool] = {}
        self.committed_at_step: dict[str, int] = {}
        self.contents_delivered: dict[str, int] = {}
        self.contents_relayed: dict[str, int] = {}
        self.known_resets: list[tuple[float, str, str, float]] = []  # (t0, acct, model, until)
        self.trace = Trace()

    # scheduling -------------------------------------------------------------------------------
    def schedule(self, at: float, rid: str, tag: int, event: Event) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, rid, tag, event))

    def run(self) -> Trace:
        for i, arrival in enumerate(self.s.arrivals):
            rid = f"r{i}"
            self.schedule(arrival.at, rid, -2, StreamOpened())  # tag -2: the arrival itself
        limit = 10_000
        while self.queue and limit:
            limit -= 1
            at, _, rid, tag, event = heapq.heappop(self.queue)
            self.now = max(self.now, at)
            if tag == -2:
                self.arrive(rid)
                continue
            request = self.trace.requests[rid]
            if request.outcome is not None:
                continue
            if tag >= 0 and tag != self.gen.get(rid):
                continue  # an event of an attempt the request moved past
            if isinstance(event, TimerFired):
                if tag != -10 - self.timer_gen.get(rid, 0) or not self.armed.get(rid):
                    continue
            elif isinstance(event, DeadlineExpired) and request.committed:
                continue
            self.deliver(request, event)
        if not limit:
            self.trace.violations.append("the simulation did not settle in 10,000 events")
        for rid, request in self.trace.requests.items():
            if request.outcome is None:
                self.trace.violations.append(f"{rid} never ended (state {request.state})")
        return self.trace

    def arrive(self, rid: str) -> None:
        arrival = self.s.arrivals[int(rid[1:])]
        request = self.engine.open(rid, arrival.model, True, self.now)
        self.trace.requests[rid] = request
        self.trace.bounds[rid] = step_bound(self.s.policy, len(self.pool), arrival.model)
        self.schedule(request.deadline, rid, -1, DeadlineExpired())
        if arrival.leave_at is not None:
            self.schedule(max(self.now, arrival.leave_at), rid, -1, ClientDisconnected())
        self.perform(request, self.engine.start(request, self.now), None)

    def deliver(self, request: Request, event: Event) -> None:
        before = dict(self.pool._cooldowns)
        strikes = {k: v.count for k, v in self.pool._strikes.items()}
        now = self.now
        if isinstance(event, ContentReceived):
            self.contents_delivered[request.id] = self.contents_delivered.get(request.id, 0) + 1
        if isinstance(event, TimerFired):
            self.armed[request.id] = False
        if isinstance(event, UpstreamFailed) and request.account is not None:
            failure = classify(event.facts, event.wall)
            if (
                failure.reset_ms
                and (
                    failure.kind in RATE_LIMIT_KINDS
                    or failure.kind is FailureKind.CAPACITY_EXHAUSTED
                )
                and not request.committed
            ):
                self.known_resets.append(
                    (now, request.account, request.model, now + failure.reset_ms / 1000.0)
                )
        state_before = request.state
        effects = self.engine.handle(request, event, now)
        self.trace.deliveries += 1
        self.trace.steps.append((now, request.id, state_before, event, request.state, effects))
        self.check_pool(before, strikes, request)
        self.perform(request, effects, event)

    # effects ----------------------------------------------------------------------------------
    def perform(self, request: Request, effects: list[Effect], cause: Event | None) -> None:
        rid = request.id
        v = self.trace.violations
        for effect in effects:
            if isinstance(effect, SendAttempt):
                if rid in self.committed_at_step:
                    v.append(f"{rid}: an attempt after commit")
                if self.pool.cooldown(effect.account, effect.model, self.now) is not None:
                    v.append(f"{rid}: sent to {effect.account} while it rests")
                for t0, acct, model, until in self.known_resets:
                    if (acct, model) == (effect.account, effect.model) and self.now + EPS < until:
                        v.append(
                            f"{rid}: sent to {acct} at {self.now} before its reset {until}"
                            f" (known since {t0})"
                        )
                self.start_attempt(request, effect)
            elif isinstance(effect, CancelAttempt):
                self.gen[rid] = self.gen.get(rid, 0) + 1
            elif isinstance(effect, StartTimer):
                if self.armed.get(rid):
                    v.append(f"{rid}: a second timer armed")
                if not request.committed and effect.at > request.deadline + EPS:
                    v.append(f"{rid}: a wait ending at {effect.at} past the deadline")
                self.armed[rid] = True
                self.timer_gen[rid] = self.timer_gen.get(rid, 0) + 1
                self.schedule(effect.at, rid, -10 - self.timer_gen[rid], TimerFired())
            elif isinstance(effect, CancelTimer):
                if not self.armed.get(rid):
                    v.append(f"{rid}: a timer cancelled that was not armed")
                self.armed[rid] = False
            elif isinstance(effect, Commit):
                self.committed_at_step[rid] = len(self.trace.steps)
            elif isinstance(effect, RelayContent):
                self.contents_relayed[rid] = self.contents_relayed.get(rid, 0) + 1
            elif isinstance(effect, Finish):
                if rid in self.trace.finished:
                    v.append(f"{rid}: a second outcome")
                if self.armed.get(rid):
                    v.append(f"{rid}: finished with a timer still armed")
                self.trace.finished[rid] = (self.now, effect.outcome)
            elif isinstance(effect, CoolDownAccount) and effect.until < self.now:
                v.append(f"{rid}: a cooldown that ends in the past")

    def start_attempt(self, request: Request, send: SendAttempt) -> None:
        rid = request.id
        self.gen[rid] = self.gen.get(rid, 0) + 1
        tag = self.gen[rid]
        script = self.s.scripts[send.account]
        i = self.cursor.get(send.account, 0)
        self.cursor[send.account] = i + 1
        answer = script[i % len(script)]
        t = self.now + answer.delay
        if answer.kind == "hang":
            return
        if answer.kind == "error":
            assert answer.facts is not None
            self.schedule(t, rid, tag, UpstreamFailed(facts=answer.facts, wall=WALL0 + t))
            return
        if answer.kind == "unreachable":
            self.schedule(t, rid, tag, UpstreamUnreachable(reason="refused"))
            return
        self.schedule(t, rid, tag, StreamOpened())
        for k in range(answer.chunks):
            self.schedule(t + 0.01 * (k + 1), rid, tag, ContentReceived(content=k))
        end = t + 0.01 * (answer.chunks + 1)
        if answer.kind == "drop":
            self.schedule(end, rid, tag, StreamBroken(reason="reset"))
        elif answer.kind == "late_error":
            assert answer.facts is not None
            self.schedule(end, rid, tag, UpstreamFailed(facts=answer.facts, wall=WALL0 + end))
        else:
            self.schedule(end, rid, tag, StreamEnded())

    # pool invariants --------------------------------------------------------------------------
    def check_pool(self, before: dict[Any, Any], strikes: dict[Any, int], request: Request) -> None:
        v = self.trace.violations
        for key, old in before.items():
            new = self.pool._cooldowns.get(key)
            if old.until > self.now and (new is None or new.until < old.until):
                v.append(f"cooldown {key} shortened from {old.until} to {new and new.until}")
        for key, st_ in self.pool._strikes.items():
            if st_.count > strikes.get(key, 0):
                self.trace.escalations.append((self.now, request.id, key))
