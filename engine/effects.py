"""What to do: effects the engine returns, named in the imperative, and the request's outcome.

The runner performs I/O effects (`SendAttempt`, `CancelAttempt`, `Commit`, `RelayContent`,
`Finish`). Timers are the engine's own (`Engine.timer` / `Engine.handle_timer`): `StartTimer` and
`CancelTimer` say what it armed, for logs and traces. Bookkeeping effects (`CoolDownAccount`,
`RestTarget`, `InvalidateAccount`) have already been applied to the shared pool in the same step;
they are returned so that logs and traces show every decision.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.failures import FailureKind


class Effect(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SendAttempt(Effect):
    """Send the request to `endpoint` as `account` (refreshing its access token first if asked)."""

    account: str
    endpoint: str
    model: str
    attempt: int
    refresh_credentials: bool = False


class CancelAttempt(Effect):
    """Abort the attempt in flight (the client left, or the deadline passed)."""


class StartTimer(Effect):
    """The engine armed its timer for monotonic time `at` (`purpose` is for humans)."""

    at: float
    purpose: str


class CancelTimer(Effect):
    """The armed timer is no longer wanted."""


class Commit(Effect):
    """The first content is about to reach the client: send the response headers now."""


class RelayContent(Effect):
    """Pass one piece of content to the client."""

    content: Any = None


class CoolDownAccount(Effect):
    """(Applied) `account` rests for `model` until monotonic time `until`."""

    account: str
    model: str
    until: float
    reason: str


class RestTarget(Effect):
    """(Applied) `account` rests for `model` at `endpoint` until monotonic time `until`."""

    account: str
    model: str
    endpoint: str
    until: float
    reason: str


class InvalidateAccount(Effect):
    """(Applied) `account` is unusable until a person acts; `verify_url` says where."""

    account: str
    reason: str
    verify_url: str | None = None


class Outcome(BaseModel):
    """How a request ended: what the client is told. Exactly one per request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ok: bool
    status: int = 200
    error_type: str | None = None
    message: str = ""
    retry_after_s: int | None = None
    model: str = ""
    committed: bool = False
    failure: FailureKind | None = None
    placeholder: bool = False
    retryable: bool = True
    """False when sending the same request again cannot help until a person acts (a client
    error, or no account the upstream accepts): adapters tell clients not to retry."""


class Finish(Effect):
    """The request is over: tell the client `outcome` (an HTTP error, or an SSE error frame
    if the response already committed, or the end of a successful stream)."""

    outcome: Outcome
