"""Why an upstream attempt failed: one closed enumeration, in provider-neutral facts.

The adapter that speaks to the upstream reads each error answer once and hands the engine
`UpstreamFacts`: the failure's kind (its own vocabulary, such as Google's ErrorInfo reasons and
reset headers, stays in the adapter: `adapters/cloudcode/errors.py`), the HTTP status, the reset
hints it found in priority order, a verify URL, and the message to pass on. Everything here is a
pure function of those facts: nothing reads error prose to decide anything.
"""

from __future__ import annotations

import math
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class FailureKind(StrEnum):
    """Why one attempt (account, endpoint) did not answer. Closed: every failure has one."""

    CAPACITY_EXHAUSTED = "capacity_exhausted"  # the model has no capacity right now (any account)
    RATE_LIMITED = "rate_limited"  # short, per-account request-rate limit
    QUOTA_EXHAUSTED = "quota_exhausted"  # the account's quota for this model is used up
    AUTH_EXPIRED = "auth_expired"  # 401 that a fresh access token may cure
    AUTH_REVOKED = "auth_revoked"  # refresh token revoked or invalid: the account is unusable
    VERIFICATION_REQUIRED = "verification_required"  # 403: the user must verify the account
    ACCOUNT_BANNED = "account_banned"  # 403: disabled for a terms-of-service violation
    FORBIDDEN = "forbidden"  # any other 403
    NOT_FOUND = "not_found"  # 404
    VERSION_REJECTED = "version_rejected"  # "This version of Antigravity is no longer supported"
    SERVER_ERROR = "server_error"  # 5xx that is not capacity
    INVALID_REQUEST = "invalid_request"  # 400: the request itself is wrong, never retried
    CLIENT_ERROR = "client_error"  # other 4xx (402, 409, 413, 422...), never retried
    UNREACHABLE = "unreachable"  # connection refused or reset, attempt timed out
    CREDENTIALS_UNAVAILABLE = "credentials_unavailable"  # the token endpoint is down or slow
    CONFIGURATION = "configuration"  # the proxy's own configuration is refused (OAuth client)
    EMPTY_RESPONSE = "empty_response"  # a 2xx stream that ended without any content
    STREAM_BROKEN = "stream_broken"  # a 2xx stream that broke off


class ResetHint(BaseModel):
    """One reset hint: a relative delay or an absolute wall-clock time (epoch seconds).
    `discard_if_past`: an absolute time already past means nothing (else it means "now")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    delay_ms: float | None = None
    at_epoch_s: float | None = None
    discard_if_past: bool = False


class UpstreamFacts(BaseModel):
    """Everything the engine may know about one failed upstream answer, classified once by the
    adapter. `resets` are in the order the adapter trusts them. `message` is kept only to tell
    the client what the upstream said; no decision reads it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: FailureKind
    status: int
    resets: tuple[ResetHint, ...] = ()
    verify_url: str | None = None
    message: str = ""


class Failure(BaseModel):
    """A classified failure: its kind and the server's reset delay (ms), if it stated one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: FailureKind
    reset_ms: int | None = None
    status: int | None = None
    message: str = ""
    verify_url: str | None = None


def resolve_reset_ms(hints: tuple[ResetHint, ...], wall_now: float) -> int | None:
    """The server's reset delay in ms, by the JavaScript proxy's rules (§3.1).

    Hints are consulted in the order given; the first non-zero value wins (a zero is remembered
    and used only if nothing else is found); past absolute times marked `discard_if_past` are
    dropped. The result is floored: <= 0 becomes 500 ms and < 500 ms gets 200 ms added.
    """
    found: float | None = None
    zero_seen = False
    for hint in hints:
        if hint.delay_ms is not None:
            value = hint.delay_ms
        elif hint.at_epoch_s is not None:
            value = (hint.at_epoch_s - wall_now) * 1000.0
            if value <= 0 and hint.discard_if_past:
                continue
        else:
            continue
        if value == 0:
            zero_seen = True
            continue
        found = value
        break
    if found is None:
        if not zero_seen:
            return None
        found = 0.0
    ms = math.ceil(found)
    if ms <= 0:
        return 500
    if ms < 500:
        return ms + 200
    return ms


def classify(facts: UpstreamFacts, wall_now: float) -> Failure:
    """The `Failure` the facts describe: their kind and the server's reset, resolved."""
    return Failure(
        kind=facts.kind,
        reset_ms=resolve_reset_ms(facts.resets, wall_now),
        status=facts.status,
        message=facts.message,
        verify_url=facts.verify_url,
    )
