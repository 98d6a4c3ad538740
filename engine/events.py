"""What happened: the typed events that drive a request machine, named in the past tense.

External events come from the runner (upstream answers, timers, the client). Internal events are
produced by the engine itself when a state asks the pool or finishes its bookkeeping
(`AccountGranted`, `PoolCoolingDown`, `NoUsableAccount`, `AccountReleased`, `FallbackModelChosen`),
so every decision is a row of the one transition table and shows up in traces.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from engine.failures import UpstreamFacts


class Event(BaseModel):
    """Base of all events. `trigger` is the name of the transition-table trigger it fires."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    trigger: ClassVar[str]


class AccountGranted(Event):
    """The pool leased `account`; `throttle_ms` > 0 asks for a pause first (hybrid fallback)."""

    trigger: ClassVar[str] = "account_granted"
    account: str
    throttle_ms: int = 0


class PoolCoolingDown(Event):
    """Every usable account cools down for this model; the earliest is free at `until`."""

    trigger: ClassVar[str] = "pool_cooling_down"
    until: float


class NoUsableAccount(Event):
    """No enabled, valid account exists at all; `reasons` says why (no secrets)."""

    trigger: ClassVar[str] = "no_usable_account"
    reasons: tuple[str, ...] = ()


class AccountWithdrawn(Event):
    """Since the request leased its account, another request put it to rest for this model or
    invalidated it: the request must not use it again (reset fidelity)."""

    trigger: ClassVar[str] = "account_withdrawn"


class AccountReleased(Event):
    """The request gave its account back after failing on it (attempt counted)."""

    trigger: ClassVar[str] = "account_released"


class FallbackModelChosen(Event):
    """The request moved to the next model of its fallback chain."""

    trigger: ClassVar[str] = "fallback_model_chosen"
    model: str


class UpstreamFailed(Event):
    """The upstream answered an error (status, or an error object inside a 2xx stream).

    Like every end of an attempt, it fires the failure class the engine classifies it into
    (`engine.table.FAILURE_TRIGGERS`), not `trigger`.

    `wall` is the wall-clock time (epoch s) of receipt, for absolute reset timestamps."""

    trigger: ClassVar[str] = "upstream_failed"
    facts: UpstreamFacts
    wall: float = 0.0


class UpstreamUnreachable(Event):
    """No answer: connection refused or reset, an attempt timeout, the token endpoint down."""

    trigger: ClassVar[str] = "upstream_unreachable"
    reason: str = "connection failed"


class StreamOpened(Event):
    """The upstream answered 2xx and its body is about to stream."""

    trigger: ClassVar[str] = "stream_opened"


class ContentReceived(Event):
    """One piece of content (opaque to the engine) arrived on the open stream."""

    trigger: ClassVar[str] = "content_received"
    content: Any = None


class StreamEnded(Event):
    """The stream ended normally (the machine knows whether any content came)."""

    trigger: ClassVar[str] = "stream_ended"


class StreamBroken(Event):
    """The stream broke off (connection reset, idle timeout) before its normal end."""

    trigger: ClassVar[str] = "stream_broken"
    reason: str = "stream broken"


class TimerFired(Event):
    """The wait the machine asked for is over."""

    trigger: ClassVar[str] = "timer_fired"


class ClientDisconnected(Event):
    """The client went away."""

    trigger: ClassVar[str] = "client_disconnected"


class DeadlineExpired(Event):
    """The request's deadline passed before it committed."""

    trigger: ClassVar[str] = "deadline_expired"


INTERNAL_EVENTS: tuple[type[Event], ...] = (
    AccountGranted,
    PoolCoolingDown,
    NoUsableAccount,
    AccountWithdrawn,
    AccountReleased,
    FallbackModelChosen,
)
EXTERNAL_EVENTS: tuple[type[Event], ...] = (
    UpstreamFailed,
    UpstreamUnreachable,
    StreamOpened,
    ContentReceived,
    StreamEnded,
    StreamBroken,
    TimerFired,
    ClientDisconnected,
    DeadlineExpired,
)
ALL_EVENTS: tuple[type[Event], ...] = INTERNAL_EVENTS + EXTERNAL_EVENTS
