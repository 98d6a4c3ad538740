"""Google's error vocabulary, and the one place it becomes the engine's provider-neutral facts.

`facts.py` reads a Cloud Code or Google OAuth error answer into a `GoogleError`: the HTTP status,
Google's `error.status`, the ErrorInfo reason, every reset hint with the header or field it came
from (`ResetSource`), and markers (a revoked token, a terms-of-service ban, a verify URL). The
classification table below turns it into the engine's `FailureKind`, first matching row wins,
and `to_facts` hands the engine `UpstreamFacts`: the kind and the reset hints in the order the
JavaScript proxy trusted them (reference/seed-behaviour.md §3.1), with no Google word left.

Rules come from the JavaScript proxy (§3) with UPSTREAM.md's fixes: a 429 whose ErrorInfo says
RATE_LIMIT_EXCEEDED or MODEL_CAPACITY_EXHAUSTED is not quota exhaustion.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from engine.failures import Failure, FailureKind, ResetHint, UpstreamFacts
from engine.failures import classify as classify_facts
from engine.failures import resolve_reset_ms as resolve_ordered

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


_RESET_PRIORITY = {source: rank for rank, source in enumerate(ResetSource)}
#: Absolute hints from these sources are dropped when already past (the JS proxy does so);
#: a past quotaResetTimeStamp is kept and becomes the 500 ms floor.
_DISCARD_PAST = frozenset(
    {ResetSource.RETRY_AFTER_HEADER, ResetSource.RATELIMIT_RESET_HEADER, ResetSource.TEXT}
)


class GoogleReset(BaseModel):
    """One reset hint and where it was found: a relative delay or an absolute time (epoch s)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: ResetSource
    delay_ms: float | None = None
    at_epoch_s: float | None = None


class GoogleError(BaseModel):
    """One Cloud Code or Google OAuth error answer, as read (nothing decided yet)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: int
    google_status: str | None = None
    reason: str | None = None
    resets: tuple[GoogleReset, ...] = ()
    permanent_auth: bool = False
    banned: bool = False
    verify_url: str | None = None
    message: str = ""


def _is_capacity(f: GoogleError) -> bool:
    return f.reason == REASON_CAPACITY


#: The classification table, read top to bottom; the first matching row decides the kind.
CLASSIFICATION: tuple[tuple[str, Callable[[GoogleError], bool], FailureKind], ...] = (
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


def kind_of(error: GoogleError) -> FailureKind:
    """The engine's kind for `error`, by the table above."""
    return next(kind for _, matches, kind in CLASSIFICATION if matches(error))


def neutral_resets(resets: tuple[GoogleReset, ...]) -> tuple[ResetHint, ...]:
    """The hints in the JavaScript proxy's order of trust, their sources dropped."""
    ordered = sorted(resets, key=lambda h: _RESET_PRIORITY[h.source])
    return tuple(
        ResetHint(
            delay_ms=h.delay_ms,
            at_epoch_s=h.at_epoch_s,
            discard_if_past=h.source in _DISCARD_PAST,
        )
        for h in ordered
    )


def to_facts(error: GoogleError) -> UpstreamFacts:
    """What the engine gets: the kind, the status, the ordered hints, the verify URL, the
    message (to pass on, never to decide on)."""
    return UpstreamFacts(
        kind=kind_of(error),
        status=error.status,
        resets=neutral_resets(error.resets),
        verify_url=error.verify_url,
        message=error.message,
    )


def resolve_reset_ms(resets: tuple[GoogleReset, ...], wall_now: float) -> int | None:
    """The reset delay the engine derives from these hints (§3.1's rules)."""
    return resolve_ordered(neutral_resets(resets), wall_now)


def classify(error: GoogleError, wall_now: float) -> Failure:
    """The engine's `Failure` for `error`, end to end."""
    return classify_facts(to_facts(error), wall_now)


def clamp_resets(
    facts: UpstreamFacts, max_ms: float, wall_now: float
) -> tuple[UpstreamFacts, float | None]:
    """`facts` with every reset hint capped at `max_ms` from now, and the longest stated one
    (ms) when a hint was capped: one `retryDelay: "999999999s"` must not rest an account for
    31 years."""
    longest: float | None = None
    hints = []
    for hint in facts.resets:
        stated = hint.delay_ms
        if stated is None and hint.at_epoch_s is not None:
            stated = (hint.at_epoch_s - wall_now) * 1000.0
        if stated is not None and stated > max_ms:
            longest = max(longest or 0.0, stated)
            hints.append(ResetHint(delay_ms=max_ms, discard_if_past=hint.discard_if_past))
        else:
            hints.append(hint)
    if longest is None:
        return facts, None
    return facts.model_copy(update={"resets": tuple(hints)}), longest
