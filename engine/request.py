"""One client request's state: its counters, its current attempt, its wait, its outcome.

A plain slotted object (cheap to create: per-request setup is one allocation, no `Machine`);
the engine's shared `transitions.Machine` moves its `state` attribute.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from engine.effects import Effect, Outcome
from engine.events import Event
from engine.failures import Failure

if TYPE_CHECKING:
    from engine.machine import Engine


class Request:
    __slots__ = (
        "account",
        "attempts",
        "auth_failures",
        "capacity_retries",
        "committed",
        "deadline",
        "effects",
        "empty_retries",
        "endpoint_index",
        "engine",
        "event",
        "failure",
        "hops",
        "id",
        "in_flight",
        "last_failure",
        "model",
        "now",
        "outcome",
        "pending",
        "pool_waits",
        "refresh_next",
        "refreshed",
        "requested_model",
        "resume",
        "rl_duplicate",
        "rl_strikes",
        "sends",
        "short_retries",
        "started",
        "state",
        "steps",
        "stream",
        "subsecond_retries",
        "switch_pause",
        "timer_armed",
        "tried",
        "wait_purpose",
        "wait_until",
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
        self.account: str | None = None
        self.tried: set[str] = set()
        self.attempts = 0
        self.auth_failures = 0  # accounts given up because the upstream refused their credentials
        self.sends = 0
        self.steps = 0
        self.hops = 0
        self.pool_waits = 0
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
        self.reset_account_counters()

    def reset_account_counters(self) -> None:
        """Counters that bound the work done on one account attempt."""
        self.endpoint_index = 0
        self.capacity_retries = 0
        self.subsecond_retries = 0
        self.short_retries = 0
        self.empty_retries = 0
        self.refreshed = False
        self.refresh_next = False
        self.switch_pause = False

    @property
    def done(self) -> bool:
        return self.outcome is not None

    @property
    def endpoint(self) -> str:
        return self.engine.policy.endpoints[self.endpoint_index]

    def wake_at(self) -> float | None:
        """When the runner must wake this request: its wait's end, or its deadline."""
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
