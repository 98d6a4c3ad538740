"""Why an upstream attempt failed: one closed enumeration and one table that decides it.

The adapter parses each upstream error response once into `UpstreamFacts` (status, Google
`error.status`, the ErrorInfo reason, every reset hint it found, markers such as a revoked token).
Everything here is a pure function of those facts: nothing reads error prose to decide anything.

Rules come from the JavaScript proxy (reference/seed-behaviour.md §3) with UPSTREAM.md's fixes:
a 429 whose ErrorInfo says RATE_LIMIT_EXCEEDED or MODEL_CAPACITY_EXHAUSTED is not quota exhaustion.
"""

from __future__ import annotations

import math
from collections.abc import Callable
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
    EMPTY_RESPONSE = "empty_response"  # a 2xx stream that ended without any content
    STREAM_BROKEN = "stream_broken"  # a 2xx stream that broke off


#: ErrorInfo reasons (and the adapter's equivalents for non-JSON bodies) the table looks at.
REASON_CAPACITY = "MODEL_CAPACITY_EXHAUSTED"
REASON_RATE_LIMIT = "RATE_LIMIT_EXCEEDED"
REASON_QUOTA = "QUOTA_EXHAUSTED"
REASONS_VERIFICATION = frozenset({"VALIDATION_REQUIRED", "ACCOUNT_DISABLED", "USER_DISABLED"})
REASON_VERSION_REJECTED = "CLIENT_VERSION_UNSUPPORTED"


class ResetSource(StrEnum):
    """Where a reset hint was found, in the order the JavaScript proxy consults them (§3.1)."""

    RETRY_AFTER_HEADER = "retry-after"  # delay, or an HTTP date (absolute)
    RATELIMIT_RESET_HEADER = "x-ratelimit-reset"  # absolute (Unix seconds)
    RATELIMIT_RESET_AFTER_HEADER = "x-ratelimit-reset-after"  # delay
    QUOTA_RESET_DELAY = "quotaResetDelay"  # ErrorInfo metadata, delay
    QUOTA_RESET_TIMESTAMP = "quotaResetTimeStamp"  # ErrorInfo metadata, absolute
    RETRY_DELAY = "retryDelay"  # RetryInfo, delay
    TEXT = "text"  # prose in a body that is not Google JSON ("retry after 30 seconds")


_RESET_PRIORITY = {source: rank for rank, source in enumerate(ResetSource)}
#: Absolute hints from these sources are dropped when already past (the JS proxy does so);
#: a past quotaResetTimeStamp is kept and becomes the 500 ms floor.
_DISCARD_PAST = frozenset(
    {ResetSource.RETRY_AFTER_HEADER, ResetSource.RATELIMIT_RESET_HEADER, ResetSource.TEXT}
)


class ResetHint(BaseModel):
    """One reset hint: either a relative delay or an absolute wall-clock time (epoch seconds)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: ResetSource
    delay_ms: float | None = None
    at_epoch_s: float | None = None


class UpstreamFacts(BaseModel):
    """Everything the engine may know about one failed upstream answer, parsed once by the adapter.

    `message` is kept only to tell the client what the upstream said; no decision reads it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: int
    google_status: str | None = None
    reason: str | None = None
    resets: tuple[ResetHint, ...] = ()
    permanent_auth: bool = False
    banned: bool = False
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

    Sources are consulted in `ResetSource` order; the first non-zero value wins (a zero is
    remembered and used only if nothing else is found); past absolute times from headers are
    dropped. The result is floored: <= 0 becomes 500 ms and < 500 ms gets 200 ms added.
    """
    found: float | None = None
    zero_seen = False
    for hint in sorted(hints, key=lambda h: _RESET_PRIORITY[h.source]):
        if hint.delay_ms is not None:
            value = hint.delay_ms
        elif hint.at_epoch_s is not None:
            value = (hint.at_epoch_s - wall_now) * 1000.0
            if value <= 0 and hint.source in _DISCARD_PAST:
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


def _is_capacity(f: UpstreamFacts) -> bool:
    return f.reason == REASON_CAPACITY


#: The classification table, read top to bottom; the first matching row decides the kind.
CLASSIFICATION: tuple[tuple[str, Callable[[UpstreamFacts], bool], FailureKind], ...] = (
    (
        "the upstream says this client version is no longer supported",
        lambda f: f.reason == REASON_VERSION_REJECTED,
        FailureKind.VERSION_REJECTED,
    ),
    (
        "429, 503 or 529 whose reason is MODEL_CAPACITY_EXHAUSTED",
        lambda f: f.status in (429, 503, 529) and _is_capacity(f),
        FailureKind.CAPACITY_EXHAUSTED,
    ),
    (
        "429 whose reason is RATE_LIMIT_EXCEEDED",
        lambda f: f.status == 429 and f.reason == REASON_RATE_LIMIT,
        FailureKind.RATE_LIMITED,
    ),
    (
        "any other 429 (QUOTA_EXHAUSTED, or RESOURCE_EXHAUSTED with no reason)",
        lambda f: f.status == 429,
        FailureKind.QUOTA_EXHAUSTED,
    ),
    (
        "401, or 400 from the token endpoint, with a permanent-auth marker (invalid_grant...)",
        lambda f: f.status in (400, 401) and f.permanent_auth,
        FailureKind.AUTH_REVOKED,
    ),
    ("any other 401", lambda f: f.status == 401, FailureKind.AUTH_EXPIRED),
    (
        "403 disabled for a terms-of-service violation",
        lambda f: f.status == 403 and f.banned,
        FailureKind.ACCOUNT_BANNED,
    ),
    (
        "403 asking for verification (VALIDATION_REQUIRED, ACCOUNT_DISABLED, USER_DISABLED)",
        lambda f: f.status == 403 and f.reason in REASONS_VERIFICATION,
        FailureKind.VERIFICATION_REQUIRED,
    ),
    ("any other 403", lambda f: f.status == 403, FailureKind.FORBIDDEN),
    ("404", lambda f: f.status == 404, FailureKind.NOT_FOUND),
    ("400", lambda f: f.status == 400, FailureKind.INVALID_REQUEST),
    ("any other 4xx", lambda f: 400 <= f.status < 500, FailureKind.CLIENT_ERROR),
    ("5xx (or anything else that is not a success)", lambda f: True, FailureKind.SERVER_ERROR),
)


def classify(facts: UpstreamFacts, wall_now: float) -> Failure:
    """Classify upstream facts into a `Failure` (kind and server reset) by the table above."""
    kind = next(kind for _, matches, kind in CLASSIFICATION if matches(facts))
    return Failure(
        kind=kind,
        reset_ms=resolve_reset_ms(facts.resets, wall_now),
        status=facts.status,
        message=facts.message,
        verify_url=facts.verify_url,
    )
