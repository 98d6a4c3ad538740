"""Failure classification and reset parsing, table by table.

Every error body of reference/seed-behaviour.md §3.4 appears here as the `GoogleError` the adapter
would parse it into (status, `error.status`, the ErrorInfo reason, reset hints with their source,
markers), with the kind and reset the engine must derive. The reset rules and EMPIRICAL results
are §3.1's; the fixes (a capacity or rate-limit 429 is not quota exhaustion) are UPSTREAM.md's.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.cloudcode.errors import (
    CLASSIFICATION,
    GoogleError,
    GoogleReset,
    ResetSource,
    classify,
    resolve_reset_ms,
)
from engine.failures import FailureKind

NOW = 1_767_000_000.0  # 2025-12-29T09:20:00Z, the wall clock at receipt
K = FailureKind
S = ResetSource


def delay(source: ResetSource, ms: float) -> GoogleReset:
    return GoogleReset(source=source, delay_ms=ms)


def at(source: ResetSource, epoch_s: float) -> GoogleReset:
    return GoogleReset(source=source, at_epoch_s=epoch_s)


def iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def first_row(facts: GoogleError) -> int:
    """Index of the CLASSIFICATION row that decides `facts`."""
    return next(i for i, (_, matches, _) in enumerate(CLASSIFICATION) if matches(facts))


VERIFY_URL = (
    "https://accounts.google.com/signin/continue?sarp=1&scc=1&continue=https://developers.google"
    ".com/gemini-code-assist/auth/auth_success_gemini&flowName=GlifWebSignIn&authuser"
)

# §3.4, body by body: (id, facts as the adapter produces them, kind, reset_ms) ---------------------
BODIES: list[tuple[str, GoogleError, FailureKind, int | None]] = [
    (
        "1-generic-429-resource-exhausted-no-reset",
        GoogleError(
            status=429,
            google_status="RESOURCE_EXHAUSTED",
            message="Resource has been exhausted (e.g. check quota).",
        ),
        K.QUOTA_EXHAUSTED,
        None,
    ),
    (
        "2-429-quota-exhausted-with-every-reset-field-quotaResetDelay-wins",
        GoogleError(
            status=429,
            google_status="RESOURCE_EXHAUSTED",
            reason="QUOTA_EXHAUSTED",
            resets=(
                delay(S.QUOTA_RESET_DELAY, 754.431528),
                at(S.QUOTA_RESET_TIMESTAMP, iso("2025-12-31T07:00:47Z")),
                delay(S.RETRY_DELAY, 754.431528),
            ),
            message="You have exhausted your capacity on this model.",
        ),
        K.QUOTA_EXHAUSTED,
        755,
    ),
    (
        "2b-429-quota-exhausted-quotaResetDelay-7384.5s-and-retryDelay-7384.5s",
        GoogleError(
            status=429,
            google_status="RESOURCE_EXHAUSTED",
            reason="QUOTA_EXHAUSTED",
            resets=(delay(S.QUOTA_RESET_DELAY, 7_384_500), delay(S.RETRY_DELAY, 7_384_500)),
        ),
        K.QUOTA_EXHAUSTED,
        7_384_500,
    ),
    (
        "3-503-model-capacity-exhausted-retryDelay-39s",
        GoogleError(
            status=503,
            google_status="UNAVAILABLE",
            reason="MODEL_CAPACITY_EXHAUSTED",
            resets=(delay(S.RETRY_DELAY, 39_000),),
            message="No capacity available for model gemini-3-pro-low on the server",
        ),
        K.CAPACITY_EXHAUSTED,
        39_000,
    ),
    (
        "4-403-validation-required-with-validation-url",
        GoogleError(
            status=403,
            google_status="PERMISSION_DENIED",
            reason="VALIDATION_REQUIRED",
            verify_url=VERIFY_URL,
            message="Verify your account to continue.",
        ),
        K.VERIFICATION_REQUIRED,
        None,
    ),
    (
        "4b-403-validation-required-prefix-without-errorinfo",
        GoogleError(
            status=403,
            google_status="PERMISSION_DENIED",
            reason="VALIDATION_REQUIRED",
            message="VALIDATION_REQUIRED: Please complete account validation",
        ),
        K.VERIFICATION_REQUIRED,
        None,
    ),
    (
        "4c-403-account-disabled-prefix",
        GoogleError(
            status=403,
            reason="ACCOUNT_DISABLED",
            message="account_disabled: This account has been disabled",
        ),
        K.VERIFICATION_REQUIRED,
        None,
    ),
    (
        "4d-403-caller-does-not-have-permission",
        GoogleError(
            status=403,
            google_status="PERMISSION_DENIED",
            message="The caller does not have permission",
        ),
        K.FORBIDDEN,
        None,
    ),
    (
        "4e-403-forbidden",
        GoogleError(status=403, google_status="FORBIDDEN", message="Forbidden"),
        K.FORBIDDEN,
        None,
    ),
    (
        "5-403-tos-ban",
        GoogleError(
            status=403,
            google_status="PERMISSION_DENIED",
            banned=True,
            message="Gemini has been disabled for this account due to a violation of Terms of "
            "Service.",
        ),
        K.ACCOUNT_BANNED,
        None,
    ),
    (
        "6-403-license",
        GoogleError(
            status=403,
            google_status="PERMISSION_DENIED",
            message="Permission denied. Check your Antigravity license.",
        ),
        K.FORBIDDEN,
        None,
    ),
    (
        "7-401-invalid-grant-is-permanent",
        GoogleError(
            status=401,
            permanent_auth=True,
            message="invalid_grant: Token has been expired or revoked",
        ),
        K.AUTH_REVOKED,
        None,
    ),
    (
        "7b-401-unauthenticated-is-transient",
        GoogleError(
            status=401,
            google_status="UNAUTHENTICATED",
            message="Request had invalid authentication credentials.",
        ),
        K.AUTH_EXPIRED,
        None,
    ),
    (
        "8-500-unknown-error",
        GoogleError(status=500, google_status="UNKNOWN", message="Unknown Error."),
        K.SERVER_ERROR,
        None,
    ),
    (
        "9-404-not-found",
        GoogleError(
            status=404, google_status="NOT_FOUND", message="Requested entity was not found."
        ),
        K.NOT_FOUND,
        None,
    ),
    (
        "10-400-anthropic-passthrough-tool-use-without-tool-result",
        GoogleError(
            status=400,
            google_status="INVALID_ARGUMENT",
            message='{"type":"error","error":{"type":"invalid_request_error","message":'
            '"messages.14: `tool_use` ids were found without `tool_result` blocks immediately '
            'after: toolu_vrtx_01Lg...."},"request_id":"req_vrtx_..."}',
        ),
        K.INVALID_REQUEST,
        None,
    ),
    (
        "10b-400-invalid-thinking-signature",
        GoogleError(
            status=400,
            google_status="INVALID_ARGUMENT",
            message="messages.1.content.0: Invalid `signature` in `thinking` block",
        ),
        K.INVALID_REQUEST,
        None,
    ),
    (
        "10c-400-proto-field-is-not-repeating",
        GoogleError(
            status=400,
            google_status="INVALID_ARGUMENT",
            message="Proto field is not repeating, cannot start list",
        ),
        K.INVALID_REQUEST,
        None,
    ),
    (
        "11-version-gate-inside-a-200-stream",
        GoogleError(
            status=200,
            reason="CLIENT_VERSION_UNSUPPORTED",
            message="This version of Antigravity is no longer supported. Please update to "
            "receive the latest features!",
        ),
        K.VERSION_REJECTED,
        None,
    ),
    (
        "12-oauth-refresh-invalid-grant-http-400",
        GoogleError(
            status=400,
            permanent_auth=True,
            message='{"error": "invalid_grant", "error_description": "Token has been expired or '
            'revoked."}',
        ),
        K.AUTH_REVOKED,
        None,
    ),
]


@pytest.mark.parametrize(
    ("facts", "kind", "reset_ms"),
    [pytest.param(facts, kind, reset, id=name) for name, facts, kind, reset in BODIES],
)
def test_every_reference_error_body_is_classified_with_its_kind_and_reset(
    facts: GoogleError, kind: FailureKind, reset_ms: int | None
) -> None:
    failure = classify(facts, NOW)
    assert (failure.kind, failure.reset_ms) == (kind, reset_ms)


def test_a_classified_failure_carries_the_status_message_and_verification_url() -> None:
    facts = next(f for name, f, _, _ in BODIES if name.startswith("4-"))
    failure = classify(facts, NOW)
    assert failure.status == 403
    assert failure.message == "Verify your account to continue."
    assert failure.verify_url == VERIFY_URL


# Every row of CLASSIFICATION, with one example it decides ----------------------------------------
ROW_EXAMPLES: list[tuple[str, GoogleError, FailureKind]] = [
    (
        "version-rejected-even-on-a-429",
        GoogleError(status=429, reason="CLIENT_VERSION_UNSUPPORTED"),
        K.VERSION_REJECTED,
    ),
    (
        "429-capacity",
        GoogleError(
            status=429, google_status="RESOURCE_EXHAUSTED", reason="MODEL_CAPACITY_EXHAUSTED"
        ),
        K.CAPACITY_EXHAUSTED,
    ),
    (
        "503-capacity",
        GoogleError(status=503, google_status="UNAVAILABLE", reason="MODEL_CAPACITY_EXHAUSTED"),
        K.CAPACITY_EXHAUSTED,
    ),
    (
        "529-capacity",
        GoogleError(status=529, reason="MODEL_CAPACITY_EXHAUSTED"),
        K.CAPACITY_EXHAUSTED,
    ),
    (
        "429-rate-limit-exceeded",
        GoogleError(status=429, google_status="RESOURCE_EXHAUSTED", reason="RATE_LIMIT_EXCEEDED"),
        K.RATE_LIMITED,
    ),
    (
        "429-quota-exhausted-reason",
        GoogleError(status=429, google_status="RESOURCE_EXHAUSTED", reason="QUOTA_EXHAUSTED"),
        K.QUOTA_EXHAUSTED,
    ),
    (
        "429-resource-exhausted-without-reason",
        GoogleError(status=429, google_status="RESOURCE_EXHAUSTED"),
        K.QUOTA_EXHAUSTED,
    ),
    (
        "401-permanent",
        GoogleError(status=401, permanent_auth=True),
        K.AUTH_REVOKED,
    ),
    (
        "400-permanent-from-the-token-endpoint",
        GoogleError(status=400, permanent_auth=True),
        K.AUTH_REVOKED,
    ),
    ("401-transient", GoogleError(status=401, google_status="UNAUTHENTICATED"), K.AUTH_EXPIRED),
    (
        "403-banned-wins-over-a-verification-reason",
        GoogleError(status=403, banned=True, reason="VALIDATION_REQUIRED"),
        K.ACCOUNT_BANNED,
    ),
    (
        "403-validation-required",
        GoogleError(status=403, reason="VALIDATION_REQUIRED"),
        K.VERIFICATION_REQUIRED,
    ),
    (
        "403-account-disabled",
        GoogleError(status=403, reason="ACCOUNT_DISABLED"),
        K.VERIFICATION_REQUIRED,
    ),
    (
        "403-user-disabled",
        GoogleError(status=403, reason="USER_DISABLED"),
        K.VERIFICATION_REQUIRED,
    ),
    (
        "403-other-reason",
        GoogleError(status=403, google_status="PERMISSION_DENIED", reason="SOMETHING_ELSE"),
        K.FORBIDDEN,
    ),
    ("404", GoogleError(status=404), K.NOT_FOUND),
    ("400", GoogleError(status=400, google_status="INVALID_ARGUMENT"), K.INVALID_REQUEST),
    ("402", GoogleError(status=402), K.CLIENT_ERROR),
    ("409", GoogleError(status=409), K.CLIENT_ERROR),
    ("413", GoogleError(status=413), K.CLIENT_ERROR),
    ("422", GoogleError(status=422), K.CLIENT_ERROR),
    ("499", GoogleError(status=499), K.CLIENT_ERROR),
    ("500", GoogleError(status=500), K.SERVER_ERROR),
    ("502", GoogleError(status=502), K.SERVER_ERROR),
    ("504", GoogleError(status=504), K.SERVER_ERROR),
    ("error-object-inside-a-200-stream", GoogleError(status=200), K.SERVER_ERROR),
]


@pytest.mark.parametrize(
    ("facts", "kind"),
    [pytest.param(facts, kind, id=name) for name, facts, kind in ROW_EXAMPLES],
)
def test_each_classification_row_decides_its_kind(facts: GoogleError, kind: FailureKind) -> None:
    _, _, row_kind = CLASSIFICATION[first_row(facts)]
    assert row_kind == kind
    assert classify(facts, NOW).kind == kind


def test_every_classification_row_is_reached_by_an_example() -> None:
    reached = {first_row(facts) for _, facts, _ in ROW_EXAMPLES}
    assert reached == set(range(len(CLASSIFICATION)))


def test_every_failure_kind_from_an_upstream_answer_has_a_row() -> None:
    not_from_an_answer = {
        K.UNREACHABLE,
        K.EMPTY_RESPONSE,
        K.STREAM_BROKEN,
        K.CREDENTIALS_UNAVAILABLE,
        K.CONFIGURATION,
    }
    assert {kind for _, _, kind in CLASSIFICATION} == set(FailureKind) - not_from_an_answer


# The fixes to the JavaScript proxy (UPSTREAM.md) and "no decision reads text" --------------------
def test_a_429_whose_reason_is_capacity_is_not_quota_exhaustion() -> None:
    facts = GoogleError(
        status=429,
        google_status="RESOURCE_EXHAUSTED",
        reason="MODEL_CAPACITY_EXHAUSTED",
        message="Resource has been exhausted (e.g. check quota).",
    )
    assert classify(facts, NOW).kind == K.CAPACITY_EXHAUSTED


def test_a_429_whose_reason_is_rate_limit_exceeded_is_a_short_rate_limit() -> None:
    facts = GoogleError(
        status=429,
        google_status="RESOURCE_EXHAUSTED",
        reason="RATE_LIMIT_EXCEEDED",
        message="Quota exceeded for quota metric 'Requests per minute'.",
    )
    assert classify(facts, NOW).kind == K.RATE_LIMITED


def test_a_generic_resource_exhausted_429_is_quota_exhaustion() -> None:
    facts = GoogleError(status=429, google_status="RESOURCE_EXHAUSTED")
    assert classify(facts, NOW).kind == K.QUOTA_EXHAUSTED


def test_a_529_whose_reason_is_capacity_is_capacity_exhaustion() -> None:
    facts = GoogleError(status=529, reason="MODEL_CAPACITY_EXHAUSTED")
    assert classify(facts, NOW).kind == K.CAPACITY_EXHAUSTED


@pytest.mark.parametrize(
    "facts",
    [
        pytest.param(GoogleError(status=503, google_status="UNAVAILABLE"), id="no-reason"),
        pytest.param(
            GoogleError(status=503, google_status="UNAVAILABLE", reason="RATE_LIMIT_EXCEEDED"),
            id="rate-limit-reason",
        ),
        pytest.param(
            GoogleError(
                status=503,
                google_status="UNAVAILABLE",
                message="The model is currently overloaded. Service temporarily unavailable.",
            ),
            id="capacity-words-only-in-the-message",
        ),
        pytest.param(GoogleError(status=529), id="529-no-reason"),
    ],
)
def test_a_503_or_529_without_the_capacity_reason_is_a_server_error(facts: GoogleError) -> None:
    assert classify(facts, NOW).kind == K.SERVER_ERROR


@pytest.mark.parametrize(
    ("facts", "kind"),
    [
        pytest.param(
            GoogleError(
                status=400,
                google_status="INVALID_ARGUMENT",
                message="prompt is too long: 250000 tokens > 200000 maximum",
            ),
            K.INVALID_REQUEST,
            id="400-mentioning-250000-tokens-stays-invalid-request",
        ),
        pytest.param(
            GoogleError(status=400, message="API error 503: Rate limit exceeded, quota_exhausted"),
            K.INVALID_REQUEST,
            id="400-mentioning-503-and-rate-limits",
        ),
        pytest.param(
            GoogleError(
                status=429,
                google_status="RESOURCE_EXHAUSTED",
                message="model_capacity_exhausted: the model is currently overloaded",
            ),
            K.QUOTA_EXHAUSTED,
            id="429-with-capacity-words-but-no-reason",
        ),
        pytest.param(
            GoogleError(status=401, message="invalid_grant: Token has been expired or revoked"),
            K.AUTH_EXPIRED,
            id="401-with-invalid-grant-words-but-no-marker",
        ),
        pytest.param(
            GoogleError(
                status=403,
                message="Gemini has been disabled for this account due to a violation of Terms "
                "of Service. validation_required",
            ),
            K.FORBIDDEN,
            id="403-with-ban-and-validation-words-but-no-marker-or-reason",
        ),
        pytest.param(
            GoogleError(
                status=500,
                message="This version of Antigravity is no longer supported. Rate limit.",
            ),
            K.SERVER_ERROR,
            id="500-with-version-gate-words-but-no-reason",
        ),
    ],
)
def test_no_decision_reads_the_message_text(facts: GoogleError, kind: FailureKind) -> None:
    failure = classify(facts, NOW)
    assert failure.kind == kind
    assert failure.message == facts.message


def test_a_reset_stated_only_in_prose_is_not_parsed_by_the_engine() -> None:
    facts = GoogleError(
        status=429, message="Too many requests, please retry after 30 seconds (reset: 2h3m4s)"
    )
    assert classify(facts, NOW).reset_ms is None


# resolve_reset_ms: §3.1 ----------------------------------------------------------------------
EMPIRICAL: list[tuple[str, tuple[GoogleReset, ...], int]] = [
    ("retry-after-12", (delay(S.RETRY_AFTER_HEADER, 12_000),), 12_000),
    ("retry-after-0-alone-becomes-500", (delay(S.RETRY_AFTER_HEADER, 0),), 500),
    ("x-ratelimit-reset-after-7", (delay(S.RATELIMIT_RESET_AFTER_HEADER, 7_000),), 7_000),
    ("x-ratelimit-reset-now-plus-90s", (at(S.RATELIMIT_RESET_HEADER, NOW + 90),), 90_000),
    ("retryDelay-0.3s-is-300-plus-200", (delay(S.RETRY_DELAY, 300),), 500),
    ("retry-after-ms-1500", (delay(S.RETRY_DELAY, 1_500),), 1_500),
    ("quotaResetDelay-754.431528ms-rounds-up", (delay(S.QUOTA_RESET_DELAY, 754.431528),), 755),
    ("quotaResetDelay-7384.5s-is-not-clamped", (delay(S.QUOTA_RESET_DELAY, 7_384_500),), 7_384_500),
    ("retryDelay-39s", (delay(S.RETRY_DELAY, 39_000),), 39_000),
    ("text-retry-after-30-seconds", (delay(S.TEXT, 30_000),), 30_000),
    ("text-45s-remaining", (delay(S.TEXT, 45_000),), 45_000),
    ("retry-after-http-date-in-60s", (at(S.RETRY_AFTER_HEADER, NOW + 60),), 60_000),
    (
        "quotaResetTimeStamp-in-the-future",
        (at(S.QUOTA_RESET_TIMESTAMP, iso("2025-12-31T07:00:47Z")),),
        164_447_000,
    ),
]


@pytest.mark.parametrize(
    ("hints", "expected"),
    [pytest.param(hints, ms, id=name) for name, hints, ms in EMPIRICAL],
)
def test_the_reset_delay_matches_the_javascript_empirical_results(
    hints: tuple[GoogleReset, ...], expected: int
) -> None:
    assert resolve_reset_ms(hints, NOW) == expected


# (higher-priority hint, lower-priority hint): the higher one wins whatever the order given.
PRIORITY = [
    (delay(S.RETRY_AFTER_HEADER, 12_000), at(S.RATELIMIT_RESET_HEADER, NOW + 90)),
    (at(S.RATELIMIT_RESET_HEADER, NOW + 90), delay(S.RATELIMIT_RESET_AFTER_HEADER, 7_000)),
    (delay(S.RATELIMIT_RESET_AFTER_HEADER, 7_000), delay(S.QUOTA_RESET_DELAY, 4_000)),
    (delay(S.RETRY_AFTER_HEADER, 12_000), delay(S.QUOTA_RESET_DELAY, 4_000)),
    (delay(S.QUOTA_RESET_DELAY, 4_000), at(S.QUOTA_RESET_TIMESTAMP, NOW + 3_600)),
    (at(S.QUOTA_RESET_TIMESTAMP, NOW + 3_600), delay(S.RETRY_DELAY, 39_000)),
    (delay(S.QUOTA_RESET_DELAY, 4_000), delay(S.RETRY_DELAY, 39_000)),
    (delay(S.RETRY_DELAY, 39_000), delay(S.TEXT, 30_000)),
]


@pytest.mark.parametrize(
    ("first", "second"),
    [pytest.param(a, b, id=f"{a.source.value}-before-{b.source.value}") for a, b in PRIORITY],
)
def test_reset_sources_are_consulted_in_the_javascript_priority_order(
    first: GoogleReset, second: GoogleReset
) -> None:
    expected = resolve_reset_ms((first,), NOW)
    assert expected != resolve_reset_ms((second,), NOW)
    assert resolve_reset_ms((first, second), NOW) == expected
    assert resolve_reset_ms((second, first), NOW) == expected


def test_a_body_with_both_quota_reset_delay_and_retry_delay_uses_quota_reset_delay() -> None:
    hints = (delay(S.RETRY_DELAY, 39_000), delay(S.QUOTA_RESET_DELAY, 754.431528))
    assert resolve_reset_ms(hints, NOW) == 755


@pytest.mark.parametrize(
    ("hints", "expected"),
    [
        pytest.param(
            (at(S.RETRY_AFTER_HEADER, NOW - 10), delay(S.RETRY_DELAY, 39_000)),
            39_000,
            id="past-retry-after-date",
        ),
        pytest.param(
            (at(S.RATELIMIT_RESET_HEADER, NOW - 10), delay(S.QUOTA_RESET_DELAY, 4_000)),
            4_000,
            id="past-x-ratelimit-reset",
        ),
        pytest.param(
            (at(S.RATELIMIT_RESET_HEADER, NOW), delay(S.RETRY_DELAY, 2_000)),
            2_000,
            id="x-ratelimit-reset-exactly-now",
        ),
        pytest.param((at(S.RETRY_AFTER_HEADER, NOW - 10),), None, id="past-date-alone-is-none"),
        pytest.param(
            (at(S.TEXT, NOW - 10), delay(S.TEXT, 30_000)), 30_000, id="past-text-reset-iso"
        ),
    ],
)
def test_past_absolute_header_times_are_discarded(
    hints: tuple[GoogleReset, ...], expected: int | None
) -> None:
    assert resolve_reset_ms(hints, NOW) == expected


def test_a_past_quota_reset_timestamp_is_kept_and_floored_to_500_ms() -> None:
    past = at(S.QUOTA_RESET_TIMESTAMP, iso("2025-12-31T07:00:47Z"))
    later = iso("2026-01-01T00:00:00Z")
    assert resolve_reset_ms((past,), later) == 500
    assert resolve_reset_ms((past, delay(S.RETRY_DELAY, 39_000)), later) == 500


def test_a_zero_is_remembered_but_a_later_non_zero_source_wins() -> None:
    hints = (delay(S.RETRY_AFTER_HEADER, 0), delay(S.RETRY_DELAY, 39_000))
    assert resolve_reset_ms(hints, NOW) == 39_000


@pytest.mark.parametrize(
    ("ms", "expected"),
    [
        pytest.param(-5_000, 500, id="negative-becomes-500"),
        pytest.param(-0.5, 500, id="rounds-to-zero-becomes-500"),
        pytest.param(0, 500, id="zero-becomes-500"),
        pytest.param(0.4, 201, id="fraction-rounds-up-to-1-then-plus-200"),
        pytest.param(1, 201, id="1-plus-200"),
        pytest.param(299, 499, id="299-plus-200"),
        pytest.param(499, 699, id="499-plus-200"),
        pytest.param(499.2, 500, id="499.2-rounds-to-500-no-addition"),
        pytest.param(500, 500, id="500-unchanged"),
        pytest.param(501, 501, id="501-unchanged"),
    ],
)
def test_resets_under_500_ms_get_200_ms_added_and_non_positive_ones_become_500(
    ms: float, expected: int
) -> None:
    assert resolve_reset_ms((delay(S.RETRY_DELAY, ms),), NOW) == expected


def test_no_reset_hint_means_no_server_reset() -> None:
    assert resolve_reset_ms((), NOW) is None
    assert classify(GoogleError(status=429), NOW).reset_ms is None


def test_a_hint_with_neither_a_delay_nor_a_time_is_ignored() -> None:
    assert resolve_reset_ms((GoogleReset(source=S.RETRY_AFTER_HEADER),), NOW) is None
    hints = (GoogleReset(source=S.RETRY_AFTER_HEADER), delay(S.RETRY_DELAY, 2_000))
    assert resolve_reset_ms(hints, NOW) == 2_000
