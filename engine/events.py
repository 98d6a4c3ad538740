"""What happened: the typed events that drive a request machine, named in the past tense.

External events come from the runner (upstream answers, the client) and from the engine's own
timer protocol (`TimerFired`, `DeadlineExpired`). Internal events are produced by the engine
itself when a state asks the pool or finishes its bookkeeping (`TargetGranted`,
`PoolCoolingDown`, `AllTargetsFailed`, `NoUsableAccount`, `TargetReleased`,
`FallbackModelChosen`), so every decision is a row of the one transition table and shows up in
traces.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from engine.failures import UpstreamFacts


class Event(BaseModel):
    """Base of all events. `trigger` is the name of the transition-table trigger it fires."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    trigger: ClassVar[str]


class TargetGranted(Event):
    """The pool leased `account` for an attempt at `endpoint`; `throttle_ms` > 0 asks for a pause
    first (hybrid fallback); `probe` says the attempt is the endpoint's half-open probe."""

    trigger: ClassVar[str] = "target_granted"
    account: str
    endpoint: str
    throttle_ms: int = 0
    probe: bool = False


class PoolCoolingDown(Event):
    """No target is usable now; the earliest becomes usable at `until`. `cause` says what blocks
    it: `rate_limit` (an account x model cooldown), `capacity` (a target's rest), `endpoint`
    (an open circuit breaker) or `budget` (the endpoint's retry budget is spent)."""

    trigger: ClassVar[str] = "pool_cooling_down"
    until: float
    cause: str = "rate_limit"


class AllTargetsFailed(Event):
    """Every target this request could use has failed for it (none is merely resting)."""

    trigger: ClassVar[str] = "all_targets_failed"


class NoUsableAccount(Event):
    """No enabled, valid account exists at all; `reasons` says why (no secrets)."""

    trigger: ClassVar[str] = "no_usable_account"
    reasons: tuple[str, ...] = ()


class AccountWithdrawn(Event):
    """Since the request leased its target, another request put it to rest for this model or
    invalidated it: nothing is sent (reset fidelity)."""

    trigger: ClassVar[str] = "account_withdrawn"


class TargetReleased(Event):
    """The request left its target after failing on it (attempt counted, lease returned)."""

    trigger: ClassVar[str] = "target_released"


class FallbackModelChosen(Event):
    """The request moved to the next model of its fallback chain."""

    trigger: ClassVar[str] = "fallback_model_chosen"
    model: str


class UpstreamFailed(Event):
    """The upstream answered an error (status, or an error object inside a 2xx stream).

    Like every end of an attempt, it fires the failure class the engine classifies it into
    (`engine.table.FAILURE_TRIGGERS`), not `trigger`.

    `wall` is the wall-clock time (epoch s) of receipt, for absolute reset timestamps.
    `shared_duplicate`: for a 429 of the account x model scope, another request (on this or
    another instance sharing the pool) had already claimed the account x model's shared dedup
    window, so this 429 does not escalate (set by the runner from its `DedupWindow`)."""

    trigger: ClassVar[str] = "upstream_failed"
    facts: UpstreamFacts
    wall: float = 0.0
    shared_duplicate: bool = False


class UpstreamUnreachable(Event):
    """No answer: connection refused or reset, an attempt timeout; or (`credentials`) no access
    token, because the token endpoint is down (nothing was sent to the upstream)."""

    trigger: ClassVar[str] = "upstream_unreachable"
    reason: str = "connection failed"
    credentials: bool = False


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
    TargetGranted,
    PoolCoolingDown,
    AllTargetsFailed,
    NoUsableAccount,
    AccountWithdrawn,
    TargetReleased,
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
