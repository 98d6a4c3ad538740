"""One client request's state: its counters, its current attempt, its wait, its outcome.

A plain slotted object (cheap to create: per-request setup is one allocation, no `Machine`);
the engine's shared `transitions.Machine` moves its `state` attribute.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from engine.bounds import step_bound
from engine.effects import Effect, Outcome
from engine.events import Event
from engine.failures import Failure

if TYPE_CHECKING:
    from engine.machine import Engine


class Request:
    __slots__ = (
        "account",
        "attempts",
        "avoid",
        "avoid_accounts",
        "capacity_hits",
        "committed",
        "deadline",
        "effects",
        "endpoint",
        "engine",
        "event",
        "failure",
        "hops",
        "id",
        "in_flight",
        "last_failure",
        "leased",
        "limit_hits",
        "max_steps",
        "model",
        "now",
        "outcome",
        "pending",
        "pool_waits",
        "probing",
        "refresh_next",
        "refreshed",
        "requested_model",
        "resume",
        "rl_duplicate",
        "rl_strikes",
        "rounds",
        "sends",
        "sent",
        "started",
        "state",
        "steps",
        "stream",
        "timer_armed",
        "tried",
        "wait_purpose",
        "wait_until",
        "waited",
    )

    def __init__(self, engine: Engine, request_id: str, model: str, stream: bool, now: float):
        self.engine = engine
        self.id = request_id
        self.model = model
        self.requested_model = model
        self.stream = stream
        self.state = "Selecting"
        self.started = now
        self.now = now
        self.deadline = now + engine.policy.deadline_ms / 1000.0
        self.effects: list[Effect] = []
        self.pending: list[Event] = []
        self.event: Event | None = None
        self.account: str | None = None  # its current (or last) account: preferred next time
        self.leased = False  # it holds a lease on `account`
        self.endpoint = ""
        self.probing = False  # the attempt in flight is its endpoint's half-open probe
        self.steps = 0
        self.max_steps = step_bound(engine.policy, len(engine.pool), model)  # enforced
        self.hops = 0
        self.pool_waits = 0
        self.rounds = 0
        self.waited = 0.0  # seconds spent waiting before the first byte
        self.committed = False
        self.in_flight = False
        self.failure: Failure | None = None
        self.last_failure: Failure | None = None
        self.rl_duplicate = False
        self.rl_strikes = 0
        self.wait_until: float | None = None
        self.wait_purpose = ""
        self.resume = ""
        self.timer_armed = False
        self.outcome: Outcome | None = None
        self.refresh_next = False
        self.sends = 0  # upstream attempts of the whole request (fallback models included)
        self.reset_model_counters()

    def reset_model_counters(self) -> None:
        """What bounds the work done for one model (a fallback starts afresh)."""
        self.tried: set[str] = set()  # accounts leased
        self.sent: set[tuple[str, str]] = set()  # targets sent to
        self.avoid: set[tuple[str, str]] = set()  # targets failed in this round
        self.avoid_accounts: set[str] = set()  # accounts this request gave up
        self.refreshed: set[str] = set()  # accounts whose token was refreshed once
        self.capacity_hits: dict[tuple[str, str], int] = {}
        self.limit_hits: dict[str, int] = {}
        self.attempts = 0

    @property
    def done(self) -> bool:
        return self.outcome is not None

    @property
    def target(self) -> tuple[str, str]:
        assert self.account is not None
        return (self.account, self.endpoint)

    def timer(self) -> float | None:
        """When the engine must next be woken for this request (`Engine.handle_timer`): its
        wait's end, or its deadline before commit; None when nothing is due."""
        if self.outcome is not None:
            return None
        if self.committed:
            return self.wait_until
        if self.wait_until is None:
            return self.deadline
        return min(self.wait_until, self.deadline)

    def fits(self, delay_ms: float) -> bool:
        """Would a wait of `delay_ms` starting now end before the deadline? (One ending exactly
        at the deadline would be pre-empted by it: starting it would only delay the answer.)"""
        return self.now + delay_ms / 1000.0 < self.deadline

    def retry_after_s(self, until: float) -> int:
        # to the millisecond first: 91.15 - 61.15 is 30.000000000000007, not "31 s"
        return max(1, math.ceil(round(until - self.now, 3)))

    def __repr__(self) -> str:
        return f"<Request {self.id} {self.model} {self.state}>"
