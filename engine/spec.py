"""One spec row per `FailureKind`: what it fires, what it changes (its scope), how long that
rests, whether it is an overload, and what the client hears when it ends the request.

Everything else derives from this table: the triggers of the transition table, the reasons
recorded on rests and invalid marks, the overload set, the client answers. A test checks that
every kind has exactly one row (DESIGN §2.1).

Scopes (what a failure may change, and nothing outside it):

| scope | changes |
|---|---|
| request | nothing shared; the request fails |
| target | this request avoids the account x endpoint; capacity rests account x model @ endpoint |
| endpoint | that endpoint's health (its circuit breaker); never an account |
| token endpoint | nothing persistent; this request moves to another account |
| configuration | nothing; the request fails at once, never retried (the proxy's OAuth client) |
| account | the account is invalid until a person acts (reason, verify URL) |
| account x model | a cooldown until the stated reset (or the tier) |
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from engine.failures import FailureKind


class Scope(StrEnum):
    REQUEST = "request"
    TARGET = "target"
    ENDPOINT = "endpoint"
    TOKEN_ENDPOINT = "token endpoint"
    CONFIGURATION = "configuration"
    ACCOUNT = "account"
    ACCOUNT_MODEL = "account x model"


@dataclass(frozen=True, slots=True)
class KindSpec:
    kind: FailureKind
    trigger: str
    """The transition-table trigger the failure fires before commit (after: `stream_broken`)."""
    scope: Scope
    rest: str | None
    """The reason recorded with the rest or invalid mark it causes (None: nothing rests)."""
    overload: bool
    """The upstream (not the account, not the request) is struggling."""
    status: int
    error_type: str
    """The client's answer when this failure ends the request."""


# fmt: off
SPECS: tuple[KindSpec, ...] = (
    KindSpec(FailureKind.INVALID_REQUEST, "client_error", Scope.REQUEST, None, False,
             400, "invalid_request_error"),
    KindSpec(FailureKind.CLIENT_ERROR, "client_error", Scope.REQUEST, None, False,
             400, "invalid_request_error"),
    KindSpec(FailureKind.CAPACITY_EXHAUSTED, "capacity_exhausted", Scope.TARGET,
             "capacity exhausted", True, 529, "overloaded_error"),
    KindSpec(FailureKind.RATE_LIMITED, "rate_limited", Scope.ACCOUNT_MODEL, "rate limited",
             False, 429, "rate_limit_error"),
    KindSpec(FailureKind.QUOTA_EXHAUSTED, "rate_limited", Scope.ACCOUNT_MODEL, "quota exhausted",
             False, 429, "rate_limit_error"),
    KindSpec(FailureKind.AUTH_EXPIRED, "auth_expired", Scope.ACCOUNT,
             "Authentication failed after a token refresh", False, 500, "api_error"),
    KindSpec(FailureKind.AUTH_REVOKED, "account_unusable", Scope.ACCOUNT,
             "Token revoked - re-authentication required", False, 500, "api_error"),
    KindSpec(FailureKind.VERIFICATION_REQUIRED, "account_unusable", Scope.ACCOUNT,
             "Account requires verification", False, 500, "api_error"),
    KindSpec(FailureKind.ACCOUNT_BANNED, "account_unusable", Scope.ACCOUNT,
             "Account banned — Gemini disabled for Terms of Service violation", False,
             500, "api_error"),
    KindSpec(FailureKind.FORBIDDEN, "target_failed", Scope.TARGET, None, False,
             403, "permission_error"),
    KindSpec(FailureKind.NOT_FOUND, "target_failed", Scope.TARGET, None, False,
             404, "not_found_error"),
    KindSpec(FailureKind.VERSION_REJECTED, "endpoint_failed", Scope.ENDPOINT, None, False,
             500, "api_error"),
    KindSpec(FailureKind.SERVER_ERROR, "endpoint_failed", Scope.ENDPOINT, None, True,
             500, "api_error"),
    KindSpec(FailureKind.UNREACHABLE, "endpoint_failed", Scope.ENDPOINT, None, True,
             500, "api_error"),
    KindSpec(FailureKind.STREAM_BROKEN, "endpoint_failed", Scope.ENDPOINT, None, True,
             500, "api_error"),
    KindSpec(FailureKind.CREDENTIALS_UNAVAILABLE, "token_unavailable", Scope.TOKEN_ENDPOINT,
             None, False, 500, "api_error"),
    KindSpec(FailureKind.CONFIGURATION, "misconfigured", Scope.CONFIGURATION, None, False,
             500, "api_error"),
    KindSpec(FailureKind.EMPTY_RESPONSE, "stream_empty", Scope.TARGET, None, True,
             529, "overloaded_error"),
)
# fmt: on

SPEC: dict[FailureKind, KindSpec] = {row.kind: row for row in SPECS}
FAILURE_TRIGGERS: dict[FailureKind, str] = {row.kind: row.trigger for row in SPECS}
OVERLOAD_KINDS = frozenset(row.kind for row in SPECS if row.overload)
RATE_LIMIT_KINDS = frozenset(row.kind for row in SPECS if row.scope is Scope.ACCOUNT_MODEL)
ENDPOINT_KINDS = frozenset(row.kind for row in SPECS if row.scope is Scope.ENDPOINT)
UNSENT_SCOPES = frozenset({Scope.TOKEN_ENDPOINT, Scope.CONFIGURATION})
"""Scopes of failures that happen before anything is sent to the endpoint: it neither failed
nor answered."""
INVALID_REASONS: dict[FailureKind, str] = {
    row.kind: row.rest for row in SPECS if row.scope is Scope.ACCOUNT and row.rest
}
REST_REASONS: dict[FailureKind, str] = {
    row.kind: row.rest
    for row in SPECS
    if row.scope in (Scope.ACCOUNT_MODEL, Scope.TARGET) and row.rest
}


def answer(kind: FailureKind, status: int | None = None) -> tuple[int, str]:
    """The client's status and error type for a request ended by `kind` (a 413 from the
    upstream stays a 413)."""
    if kind is FailureKind.CLIENT_ERROR and status == 413:
        return 413, "request_too_large"
    spec = SPEC[kind]
    return spec.status, spec.error_type
