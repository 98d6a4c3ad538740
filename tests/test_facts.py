"""From raw upstream answers to a `GoogleError`, and on through classify() to the engine's
facts and kind (`adapters/cloudcode/errors.py`).

Every error body of reference/seed-behaviour.md §3.4 appears here as the raw text Cloud Code (or
Google's token endpoint) sends, with headers where relevant; each row asserts the facts parsed
from it, the `FailureKind` the engine derives and the reset delay `resolve_reset_ms` resolves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from adapters.cloudcode.errors import (
    REASON_VERSION_REJECTED,
    GoogleError,
    GoogleReset,
    ResetSource,
    classify,
    resolve_reset_ms,
)
from adapters.cloudcode.facts import (
    facts_from_response,
    google_error_from_response,
    google_error_from_stream_error,
    is_version_gate_text,
)
from engine.failures import FailureKind

NOW = 1_767_000_000.0  # 2025-12-29T09:20:00Z, the wall clock at receipt
K = FailureKind
S = ResetSource

VERIFY_URL = (
    "https://accounts.google.com/signin/continue?sarp=1&scc=1&continue=https://developers.google"
    ".com/gemini-code-assist/auth/auth_success_gemini&flowName=GlifWebSignIn&authuser"
)
ANTHROPIC_TOOL_USE_MESSAGE = (
    "messages.14: `tool_use` ids were found without `tool_result` blocks immediately after: "
    "toolu_vrtx_01Lg.... Each `tool_use` block must have a corresponding `tool_result` block in "
    "the next message."
)
VERSION_GATE = (
    "This version of Antigravity is no longer supported. Please update to receive the latest "
    "features!"
)


def iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def delay(source: ResetSource, ms: float) -> GoogleReset:
    return GoogleReset(source=source, delay_ms=ms)


def at(source: ResetSource, epoch_s: float) -> GoogleReset:
    return GoogleReset(source=source, at_epoch_s=epoch_s)


def google(code: int, message: str, status: str | None = None, *details: object) -> str:
    error: dict[str, object] = {"code": code, "message": message}
    if status is not None:
        error["status"] = status
    if details:
        error["details"] = list(details)
    return json.dumps({"error": error})


def error_info(reason: str, **metadata: str) -> dict[str, object]:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "cloudcode-pa.googleapis.com",
        "metadata": metadata,
    }


def retry_info(retry_delay: object) -> dict[str, object]:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}


@dataclass(frozen=True)
class Case:
    """One raw answer and what must come of it."""

    status: int
    body: str
    facts: GoogleError
    kind: FailureKind
    reset_ms: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


def same_facts(actual: GoogleError, expected: GoogleError) -> None:
    """Equal facts, with reset values compared to the float's precision."""
    assert actual.model_dump(exclude={"resets"}) == expected.model_dump(exclude={"resets"})
    assert [h.source for h in actual.resets] == [h.source for h in expected.resets]
    for got, want in zip(actual.resets, expected.resets, strict=True):
        assert got.delay_ms == (None if want.delay_ms is None else pytest.approx(want.delay_ms))
        assert got.at_epoch_s == (
            None if want.at_epoch_s is None else pytest.approx(want.at_epoch_s)
        )


# §3.4, body by body, as raw text ------------------------------------------------------------------
REFERENCE_BODIES: dict[str, Case] = {
    "1-generic-429-without-reset-is-quota-exhaustion": Case(
        429,
        '{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", '
        '"status": "RESOURCE_EXHAUSTED"}}',
        GoogleError(
            status=429,
            google_status="RESOURCE_EXHAUSTED",
            message="Resource has been exhausted (e.g. check quota).",
        ),
        K.QUOTA_EXHAUSTED,
    ),
    "2-429-quota-exhausted-every-reset-field-quotaResetDelay-wins": Case(
        429,
        """{"error": {"code": 429, "message": "You have exhausted your capacity on this model.",
          "status": "RESOURCE_EXHAUSTED",
          "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "QUOTA_EXHAUSTED",
             "domain": "cloudcode-pa.googleapis.com",
             "metadata": {"model": "claude-opus-4-6-thinking", "quotaResetDelay": "754.431528ms",
                          "quotaResetTimeStamp": "2025-12-31T07:00:47Z"}},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.754431528s"}]}}
        """,
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
    "2b-429-quota-exhausted-7384.5s-is-not-clamped": Case(
        429,
        google(
            429,
            "You have exhausted your capacity on this model.",
            "RESOURCE_EXHAUSTED",
            error_info("QUOTA_EXHAUSTED", quotaResetDelay="7384.5s"),
            retry_info("7384.5s"),
        ),
        GoogleError(
            status=429,
            google_status="RESOURCE_EXHAUSTED",
            reason="QUOTA_EXHAUSTED",
            resets=(delay(S.QUOTA_RESET_DELAY, 7_384_500), delay(S.RETRY_DELAY, 7_384_500)),
            message="You have exhausted your capacity on this model.",
        ),
        K.QUOTA_EXHAUSTED,
        7_384_500,
    ),
    "3-503-model-capacity-exhausted-retryDelay-39s": Case(
        503,
        """{"error": {"code": 503,
          "message": "No capacity available for model gemini-3-pro-low on the server",
          "status": "UNAVAILABLE",
          "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
             "reason": "MODEL_CAPACITY_EXHAUSTED", "domain": "cloudcode-pa.googleapis.com",
             "metadata": {"model": "gemini-3-pro-low"}},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "39s"}]}}""",
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
    "4-403-validation-required-with-validation-url": Case(
        403,
        google(
            403,
            "Verify your account to continue.",
            "PERMISSION_DENIED",
            error_info(
                "VALIDATION_REQUIRED",
                validation_url=VERIFY_URL,
                validation_error_message="Verify your account to continue.",
            ),
        ),
        GoogleError(
            status=403,
            google_status="PERMISSION_DENIED",
            reason="VALIDATION_REQUIRED",
            verify_url=VERIFY_URL,
            message="Verify your account to continue.",
        ),
        K.VERIFICATION_REQUIRED,
    ),
    "4b-403-validation-required-prefix-without-details": Case(
        403,
        '{"error":{"code":403,"message":"VALIDATION_REQUIRED: Please complete account '
        'validation","status":"PERMISSION_DENIED"}}',
        GoogleError(
            status=403,
            google_status="PERMISSION_DENIED",
            reason="VALIDATION_REQUIRED",
            message="VALIDATION_REQUIRED: Please complete account validation",
        ),
        K.VERIFICATION_REQUIRED,
    ),
    "4c-403-account-disabled-prefix": Case(
        403,
        '{"error":{"code":403,"message":"account_disabled: This account has been disabled"}}',
        GoogleError(
            status=403,
            reason="ACCOUNT_DISABLED",
            message="account_disabled: This account has been disabled",
        ),
        K.VERIFICATION_REQUIRED,
    ),
    "4d-403-caller-does-not-have-permission-is-plain-forbidden": Case(
        403,
        '{"error":{"code":403,"message":"The caller does not have permission",'
        '"status":"PERMISSION_DENIED"}}',
        GoogleError(
            status=403,
            google_status="PERMISSION_DENIED",
            message="The caller does not have permission",
        ),
        K.FORBIDDEN,
    ),
    "4e-403-forbidden": Case(
        403,
        '{"error":{"code":403,"message":"Forbidden","status":"FORBIDDEN"}}',
        GoogleError(status=403, google_status="FORBIDDEN", message="Forbidden"),
        K.FORBIDDEN,
    ),
    "5-403-terms-of-service-ban": Case(
        403,
        '{"error": {"code": 403, "message": "Gemini has been disabled for this account due to a '
        'violation of Terms of Service.", "status": "PERMISSION_DENIED"}}',
        GoogleError(
            status=403,
            google_status="PERMISSION_DENIED",
            banned=True,
            message="Gemini has been disabled for this account due to a violation of Terms of "
            "Service.",
        ),
        K.ACCOUNT_BANNED,
    ),
    "6-403-license-as-google-json": Case(
        403,
        google(403, "Permission denied. Check your Antigravity license.", "PERMISSION_DENIED"),
        GoogleError(
            status=403,
            google_status="PERMISSION_DENIED",
            message="Permission denied. Check your Antigravity license.",
        ),
        K.FORBIDDEN,
    ),
    "6b-403-license-as-plain-text": Case(
        403,
        "Permission denied. Check your Antigravity license.",
        GoogleError(status=403, message="Permission denied. Check your Antigravity license."),
        K.FORBIDDEN,
    ),
    "7-401-invalid-grant-is-permanent": Case(
        401,
        '{"error":{"message":"invalid_grant: Token has been expired or revoked"}}',
        GoogleError(
            status=401,
            permanent_auth=True,
            message="invalid_grant: Token has been expired or revoked",
        ),
        K.AUTH_REVOKED,
    ),
    "7b-401-unauthenticated-is-transient": Case(
        401,
        '{"error":{"code":401,"message":"Request had invalid authentication credentials.",'
        '"status":"UNAUTHENTICATED"}}',
        GoogleError(
            status=401,
            google_status="UNAUTHENTICATED",
            message="Request had invalid authentication credentials.",
        ),
        K.AUTH_EXPIRED,
    ),
    "8-500-unknown-error": Case(
        500,
        '{"error": {"code": 500, "message": "Unknown Error.", "status": "UNKNOWN"}}',
        GoogleError(status=500, google_status="UNKNOWN", message="Unknown Error."),
        K.SERVER_ERROR,
    ),
    "9-404-not-found": Case(
        404,
        '{"error": {"code": 404, "message": "Requested entity was not found.", '
        '"status": "NOT_FOUND"}}',
        GoogleError(
            status=404, google_status="NOT_FOUND", message="Requested entity was not found."
        ),
        K.NOT_FOUND,
    ),
    "10-400-anthropic-passthrough-keeps-the-inner-anthropic-message": Case(
        400,
        r"""{"error": {"code": 400, "message": "{\"type\":\"error\",\"error\":{\"type\":"""
        r"""\"invalid_request_error\",\"message\":\"messages.14: `tool_use` ids were found """
        r"""without `tool_result` blocks immediately after: toolu_vrtx_01Lg.... Each """
        r"""`tool_use` block must have a corresponding `tool_result` block in the next """
        r"""message.\"},\"request_id\":\"req_vrtx_...\"}", "status": "INVALID_ARGUMENT"}}""",
        GoogleError(
            status=400, google_status="INVALID_ARGUMENT", message=ANTHROPIC_TOOL_USE_MESSAGE
        ),
        K.INVALID_REQUEST,
    ),
    "10b-400-invalid-thinking-signature": Case(
        400,
        google(
            400, "messages.1.content.0: Invalid `signature` in `thinking` block", "INVALID_ARGUMENT"
        ),
        GoogleError(
            status=400,
            google_status="INVALID_ARGUMENT",
            message="messages.1.content.0: Invalid `signature` in `thinking` block",
        ),
        K.INVALID_REQUEST,
    ),
    "10c-400-proto-field-is-not-repeating": Case(
        400,
        google(400, "Proto field is not repeating, cannot start list", "INVALID_ARGUMENT"),
        GoogleError(
            status=400,
            google_status="INVALID_ARGUMENT",
            message="Proto field is not repeating, cannot start list",
        ),
        K.INVALID_REQUEST,
    ),
    "11-version-gate-as-an-http-error-text": Case(
        400,
        VERSION_GATE,
        GoogleError(status=400, reason=REASON_VERSION_REJECTED, message=VERSION_GATE),
        K.VERSION_REJECTED,
    ),
    "11b-version-gate-as-google-json": Case(
        403,
        google(403, VERSION_GATE, "PERMISSION_DENIED"),
        GoogleError(
            status=403,
            google_status="PERMISSION_DENIED",
            reason=REASON_VERSION_REJECTED,
            message=VERSION_GATE,
        ),
        K.VERSION_REJECTED,
    ),
    "12-oauth-refresh-invalid-grant-http-400": Case(
        400,
        '{"error": "invalid_grant", "error_description": "Token has been expired or revoked."}',
        GoogleError(
            status=400,
            permanent_auth=True,
            message="invalid_grant: Token has been expired or revoked.",
        ),
        K.AUTH_REVOKED,
    ),
    "12b-oauth-invalid-client-http-401": Case(
        401,
        '{"error": "invalid_client", "error_description": "The OAuth client was not found."}',
        GoogleError(
            status=401,
            permanent_auth=True,
            message="invalid_client: The OAuth client was not found.",
        ),
        K.AUTH_REVOKED,
    ),
    "12c-oauth-invalid-request-is-not-permanent": Case(
        400,
        '{"error": "invalid_request", "error_description": "Missing required parameter."}',
        GoogleError(status=400, message="invalid_request: Missing required parameter."),
        K.INVALID_REQUEST,
    ),
}


# Beyond §3.4: headers, prose, non-JSON bodies ----------------------------------------------------
BODY_1 = REFERENCE_BODIES["1-generic-429-without-reset-is-quota-exhaustion"].body
FACTS_1 = REFERENCE_BODIES["1-generic-429-without-reset-is-quota-exhaustion"].facts


def body_1_with(*resets: GoogleReset) -> GoogleError:
    return FACTS_1.model_copy(update={"resets": resets})


OTHER_ANSWERS: dict[str, Case] = {
    "429-rate-limit-exceeded-errorinfo-is-a-short-rate-limit-not-quota": Case(
        429,
        google(
            429,
            "Quota exceeded for quota metric 'Requests per minute'.",
            "RESOURCE_EXHAUSTED",
            error_info("RATE_LIMIT_EXCEEDED"),
            retry_info("2s"),
        ),
        GoogleError(
            status=429,
            google_status="RESOURCE_EXHAUSTED",
            reason="RATE_LIMIT_EXCEEDED",
            resets=(delay(S.RETRY_DELAY, 2_000),),
            message="Quota exceeded for quota metric 'Requests per minute'.",
        ),
        K.RATE_LIMITED,
        2_000,
    ),
    "429-capacity-errorinfo-is-capacity-not-quota": Case(
        429,
        google(
            429,
            "Resource has been exhausted (e.g. check quota).",
            "RESOURCE_EXHAUSTED",
            error_info("MODEL_CAPACITY_EXHAUSTED", model="claude-sonnet-4-5"),
        ),
        GoogleError(
            status=429,
            google_status="RESOURCE_EXHAUSTED",
            reason="MODEL_CAPACITY_EXHAUSTED",
            message="Resource has been exhausted (e.g. check quota).",
        ),
        K.CAPACITY_EXHAUSTED,
    ),
    "the-first-errorinfo-reason-wins": Case(
        429,
        google(
            429,
            "x",
            "RESOURCE_EXHAUSTED",
            {"@type": "type.googleapis.com/google.rpc.Help", "links": []},
            error_info("RATE_LIMIT_EXCEEDED"),
            error_info("QUOTA_EXHAUSTED", quotaResetDelay="1.5s"),
        ),
        GoogleError(
            status=429,
            google_status="RESOURCE_EXHAUSTED",
            reason="RATE_LIMIT_EXCEEDED",
            resets=(delay(S.QUOTA_RESET_DELAY, 1_500),),
            message="x",
        ),
        K.RATE_LIMITED,
        1_500,
    ),
    "details-without-errorinfo-mean-no-reason-is-inferred-from-the-message": Case(
        429,
        google(429, "Rate limit exceeded", "RESOURCE_EXHAUSTED", retry_info("0.3s")),
        GoogleError(
            status=429,
            google_status="RESOURCE_EXHAUSTED",
            resets=(delay(S.RETRY_DELAY, 300),),
            message="Rate limit exceeded",
        ),
        K.QUOTA_EXHAUSTED,
        500,
    ),
    "retry-after-seconds-header": Case(
        429,
        BODY_1,
        body_1_with(delay(S.RETRY_AFTER_HEADER, 12_000)),
        K.QUOTA_EXHAUSTED,
        12_000,
        {"Retry-After": "12"},
    ),
    "retry-after-zero-becomes-500": Case(
        429,
        BODY_1,
        body_1_with(delay(S.RETRY_AFTER_HEADER, 0)),
        K.QUOTA_EXHAUSTED,
        500,
        {"retry-after": "0"},
    ),
    "retry-after-http-date": Case(
        429,
        BODY_1,
        body_1_with(at(S.RETRY_AFTER_HEADER, NOW + 60)),
        K.QUOTA_EXHAUSTED,
        60_000,
        {"retry-after": format_datetime(datetime.fromtimestamp(NOW + 60, UTC), usegmt=True)},
    ),
    "retry-after-http-date-in-the-past-is-dropped-by-the-engine": Case(
        429,
        BODY_1,
        body_1_with(at(S.RETRY_AFTER_HEADER, NOW - 60)),
        K.QUOTA_EXHAUSTED,
        None,
        {"retry-after": format_datetime(datetime.fromtimestamp(NOW - 60, UTC), usegmt=True)},
    ),
    "x-ratelimit-reset-unix-seconds": Case(
        429,
        BODY_1,
        body_1_with(at(S.RATELIMIT_RESET_HEADER, NOW + 90)),
        K.QUOTA_EXHAUSTED,
        90_000,
        {"X-RateLimit-Reset": str(int(NOW + 90))},
    ),
    "x-ratelimit-reset-too-small-for-a-unix-time-is-seconds-from-now": Case(
        429,
        BODY_1,
        body_1_with(at(S.RATELIMIT_RESET_HEADER, NOW + 30)),
        K.QUOTA_EXHAUSTED,
        30_000,
        {"x-ratelimit-reset": "30"},
    ),
    "x-ratelimit-reset-after-seconds": Case(
        429,
        BODY_1,
        body_1_with(delay(S.RATELIMIT_RESET_AFTER_HEADER, 7_000)),
        K.QUOTA_EXHAUSTED,
        7_000,
        {"x-ratelimit-reset-after": "7"},
    ),
    "all-three-headers-with-a-body-reset-retry-after-wins": Case(
        429,
        google(
            429,
            "m",
            "RESOURCE_EXHAUSTED",
            error_info("QUOTA_EXHAUSTED", quotaResetDelay="4s"),
        ),
        GoogleError(
            status=429,
            google_status="RESOURCE_EXHAUSTED",
            reason="QUOTA_EXHAUSTED",
            resets=(
                delay(S.RETRY_AFTER_HEADER, 12_000),
                at(S.RATELIMIT_RESET_HEADER, NOW + 90),
                delay(S.RATELIMIT_RESET_AFTER_HEADER, 7_000),
                delay(S.QUOTA_RESET_DELAY, 4_000),
            ),
            message="m",
        ),
        K.QUOTA_EXHAUSTED,
        12_000,
        {
            "x-ratelimit-reset-after": "7",
            "x-ratelimit-reset": str(int(NOW + 90)),
            "retry-after": "12",
        },
    ),
    "unreadable-reset-headers-are-ignored": Case(
        429,
        BODY_1,
        FACTS_1,
        K.QUOTA_EXHAUSTED,
        None,
        {"retry-after": "soon", "x-ratelimit-reset": "later", "x-ratelimit-reset-after": "-1"},
    ),
    "protobuf-duration-object-as-retry-delay": Case(
        503,
        google(
            503,
            "busy",
            "UNAVAILABLE",
            error_info("MODEL_CAPACITY_EXHAUSTED"),
            retry_info({"seconds": 2, "nanos": 500_000_000}),
        ),
        GoogleError(
            status=503,
            google_status="UNAVAILABLE",
            reason="MODEL_CAPACITY_EXHAUSTED",
            resets=(delay(S.RETRY_DELAY, 2_500),),
            message="busy",
        ),
        K.CAPACITY_EXHAUSTED,
        2_500,
    ),
    "a-google-error-inside-a-one-element-json-array": Case(
        429,
        f"[{BODY_1}]",
        FACTS_1,
        K.QUOTA_EXHAUSTED,
    ),
    "a-non-json-text-body-with-a-prose-retry-after": Case(
        429,
        "Too many requests, please retry after 30 seconds",
        GoogleError(
            status=429,
            reason="RATE_LIMIT_EXCEEDED",
            resets=(delay(S.TEXT, 30_000),),
            message="Too many requests, please retry after 30 seconds",
        ),
        K.RATE_LIMITED,
        30_000,
    ),
    "a-non-json-text-body-with-a-duration-token": Case(
        429,
        "quota will reset after 2h3m4s",
        GoogleError(
            status=429,
            resets=(delay(S.TEXT, 7_384_000),),
            message="quota will reset after 2h3m4s",
        ),
        K.QUOTA_EXHAUSTED,
        7_384_000,
    ),
    "a-non-json-text-body-with-a-reset-timestamp": Case(
        429,
        "quota exhausted, reset: 2025-12-29T09:25:00Z",
        GoogleError(
            status=429,
            resets=(at(S.TEXT, NOW + 300),),
            message="quota exhausted, reset: 2025-12-29T09:25:00Z",
        ),
        K.QUOTA_EXHAUSTED,
        300_000,
    ),
    "a-non-json-capacity-text-on-a-503": Case(
        503,
        "The model is currently overloaded. Please try again later.",
        GoogleError(
            status=503,
            reason="MODEL_CAPACITY_EXHAUSTED",
            message="The model is currently overloaded. Please try again later.",
        ),
        K.CAPACITY_EXHAUSTED,
    ),
    "an-html-502-page-is-a-server-error-with-a-short-message": Case(
        502,
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        "<title>Error 502 (Server Error)!!1</title>"
        "<style>*{margin:0;padding:0;transition:0.3s}</style></head><body><p><b>502.</b> "
        "That’s an error.</p><p>The server encountered a temporary error and could not complete "
        "your request.<p>Please try again in 30s. That’s all we know.</p>"
        + "<!-- padding -->" * 500
        + "</body></html>",
        GoogleError(
            status=502,
            resets=(delay(S.TEXT, 30_000),),
            message="Error 502 (Server Error)!!1",
        ),
        K.SERVER_ERROR,
        30_000,
    ),
    "an-html-page-without-a-title-gives-its-text": Case(
        502,
        "<html><body><h1>Bad Gateway</h1><script>var t = '5s';</script></body></html>",
        GoogleError(status=502, message="Bad Gateway"),
        K.SERVER_ERROR,
    ),
    "an-empty-body": Case(
        500,
        "",
        GoogleError(status=500, message="HTTP 500 with an empty body"),
        K.SERVER_ERROR,
    ),
    "an-empty-429-body-with-a-retry-after-header": Case(
        429,
        " \n",
        GoogleError(
            status=429,
            resets=(delay(S.RETRY_AFTER_HEADER, 5_000),),
            message="HTTP 429 with an empty body",
        ),
        K.QUOTA_EXHAUSTED,
        5_000,
        {"retry-after": "5"},
    ),
    "malformed-json-is-read-as-text": Case(
        429,
        '{"error": {"code": 429, "message": "Resource has been exh',
        GoogleError(
            status=429, message='{"error": {"code": 429, "message": "Resource has been exh'
        ),
        K.QUOTA_EXHAUSTED,
    ),
    "json-that-is-not-a-google-error-is-read-as-text": Case(
        502,
        '{"detail": "upstream connect error"}',
        GoogleError(status=502, message='{"detail": "upstream connect error"}'),
        K.SERVER_ERROR,
    ),
    "a-400-google-error-mentioning-invalid-grant-is-still-an-invalid-request": Case(
        400,
        google(400, "tool input contains 'invalid_grant' literally", "INVALID_ARGUMENT"),
        GoogleError(
            status=400,
            google_status="INVALID_ARGUMENT",
            message="tool input contains 'invalid_grant' literally",
        ),
        K.INVALID_REQUEST,
    ),
    "a-401-text-body-saying-token-revoked-is-permanent": Case(
        401,
        "Token revoked by the user",
        GoogleError(status=401, permanent_auth=True, message="Token revoked by the user"),
        K.AUTH_REVOKED,
    ),
    "a-verification-url-in-prose-is-found-and-trailing-punctuation-stripped": Case(
        403,
        google(
            403,
            "validation_required: verify at (https://accounts.google.com/signin/continue?sarp=1"
            "&scc=1).",
            "PERMISSION_DENIED",
        ),
        GoogleError(
            status=403,
            google_status="PERMISSION_DENIED",
            reason="VALIDATION_REQUIRED",
            verify_url="https://accounts.google.com/signin/continue?sarp=1&scc=1",
            message="validation_required: verify at (https://accounts.google.com/signin/"
            "continue?sarp=1&scc=1).",
        ),
        K.VERIFICATION_REQUIRED,
    ),
    "user-disabled-in-a-non-json-body": Case(
        403,
        "USER_DISABLED",
        GoogleError(status=403, reason="USER_DISABLED", message="USER_DISABLED"),
        K.VERIFICATION_REQUIRED,
    ),
}

ALL_CASES = {**REFERENCE_BODIES, **OTHER_ANSWERS}


@pytest.mark.parametrize("case", [pytest.param(c, id=name) for name, c in ALL_CASES.items()])
def test_each_raw_answer_becomes_its_facts_kind_and_reset(case: Case) -> None:
    facts = google_error_from_response(case.status, case.headers, case.body, now_wall=NOW)
    same_facts(facts, case.facts)
    failure = classify(facts, NOW)
    assert (failure.kind, failure.reset_ms) == (case.kind, case.reset_ms)
    assert resolve_reset_ms(facts.resets, NOW) == case.reset_ms


def test_every_reference_body_from_1_to_12_has_a_row() -> None:
    numbers = {int(name.split("-")[0].rstrip("abcdefg")) for name in REFERENCE_BODIES}
    assert numbers == set(range(1, 13))


@pytest.mark.parametrize("case", [pytest.param(c, id=n) for n, c in REFERENCE_BODIES.items()])
def test_a_body_given_as_bytes_gives_the_same_facts_as_text(case: Case) -> None:
    as_text = google_error_from_response(case.status, case.headers, case.body, now_wall=NOW)
    as_bytes = google_error_from_response(
        case.status, case.headers, case.body.encode(), now_wall=NOW
    )
    assert as_bytes == as_text


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        ("754.431528ms", 754.431528),
        ("1.5s", 1_500),
        ("39s", 39_000),
        ("1m30s", 90_000),
        ("2h3m4.5s", 7_384_500),
        ("500us", 0.5),
    ],
)
def test_quota_reset_delay_reads_go_durations(value: str, ms: float) -> None:
    body = google(
        429, "m", "RESOURCE_EXHAUSTED", error_info("QUOTA_EXHAUSTED", quotaResetDelay=value)
    )
    [hint] = google_error_from_response(429, {}, body, now_wall=NOW).resets
    assert hint.source == S.QUOTA_RESET_DELAY
    assert hint.delay_ms == pytest.approx(ms)


@pytest.mark.parametrize("value", ["soon", "39", "1.5 s", "", "-1s"])
def test_unreadable_reset_durations_are_ignored(value: str) -> None:
    body = google(429, "m", None, error_info("QUOTA_EXHAUSTED", quotaResetDelay=value))
    assert google_error_from_response(429, {}, body, now_wall=NOW).resets == ()


def test_an_unreadable_quota_reset_timestamp_is_ignored() -> None:
    body = google(429, "m", None, error_info("QUOTA_EXHAUSTED", quotaResetTimeStamp="tomorrow"))
    assert google_error_from_response(429, {}, body, now_wall=NOW).resets == ()


# Messages -----------------------------------------------------------------------------------------
def test_a_long_message_is_truncated_to_about_two_thousand_characters() -> None:
    facts = google_error_from_response(500, {}, google(500, "x" * 10_000, "INTERNAL"), now_wall=NOW)
    assert 1_900 <= len(facts.message) <= 2_000


def test_a_long_text_body_is_truncated_too() -> None:
    facts = google_error_from_response(502, {}, "y" * 10_000, now_wall=NOW)
    assert len(facts.message) <= 2_000


def test_header_values_never_reach_the_message() -> None:
    headers = {"Authorization": "Bearer ya29.secret-token", "Retry-After": "1"}
    for body in ("", "oops", BODY_1, "<html><title>t</title></html>"):
        facts = google_error_from_response(429, headers, body, now_wall=NOW)
        assert "secret" not in facts.message
        assert "ya29" not in facts.message


def test_access_tokens_echoed_in_a_body_are_redacted_from_the_message() -> None:
    body = google(
        401,
        "Invalid header Authorization: Bearer ya29.a0AfH6SMBabc-def_123 for 1//0gAbCdEfGhIjKlMn",
        "UNAUTHENTICATED",
    )
    message = google_error_from_response(401, {}, body, now_wall=NOW).message
    assert "a0AfH6SMB" not in message
    assert "0gAbCdEfGhIjKlMn" not in message
    assert "[redacted]" in message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"error": {"code": 500, "status": "INTERNAL"}}', "INTERNAL"),
        ('{"error": {"code": 500, "message": ""}}', "HTTP 500"),
    ],
)
def test_a_google_error_without_a_message_is_named_by_its_status(body: str, message: str) -> None:
    assert google_error_from_response(500, {}, body, now_wall=NOW).message == message


def test_a_google_message_that_is_not_anthropic_json_is_kept_verbatim() -> None:
    body = google(400, '{"unexpected": "json"}', "INVALID_ARGUMENT")
    assert (
        google_error_from_response(400, {}, body, now_wall=NOW).message == '{"unexpected": "json"}'
    )


# Errors inside a 200 stream -----------------------------------------------------------------------
def test_a_stream_error_object_takes_its_status_from_error_code() -> None:
    obj = json.loads(
        google(429, "slow down", "RESOURCE_EXHAUSTED", error_info("RATE_LIMIT_EXCEEDED"))
    )
    facts = google_error_from_stream_error(obj, now_wall=NOW)
    assert facts == GoogleError(
        status=429,
        google_status="RESOURCE_EXHAUSTED",
        reason="RATE_LIMIT_EXCEEDED",
        message="slow down",
    )
    assert classify(facts, NOW).kind == K.RATE_LIMITED


def test_a_stream_error_object_without_a_code_is_a_500() -> None:
    facts = google_error_from_stream_error({"error": {"message": "Internal error"}}, now_wall=NOW)
    assert (facts.status, facts.message) == (500, "Internal error")
    assert classify(facts, NOW).kind == K.SERVER_ERROR


@pytest.mark.parametrize("code", [200, "429", None, 99])
def test_a_stream_error_code_that_is_not_an_error_status_becomes_500(code: object) -> None:
    facts = google_error_from_stream_error({"error": {"code": code, "message": "m"}}, now_wall=NOW)
    assert facts.status == 500


def test_a_stream_error_with_capacity_details_and_retry_delay_is_capacity() -> None:
    obj = json.loads(REFERENCE_BODIES["3-503-model-capacity-exhausted-retryDelay-39s"].body)
    failure = classify(google_error_from_stream_error(obj, now_wall=NOW), NOW)
    assert (failure.kind, failure.reset_ms) == (K.CAPACITY_EXHAUSTED, 39_000)


def test_a_stream_error_carrying_the_version_gate_is_version_rejected() -> None:
    facts = google_error_from_stream_error(
        {"error": {"code": 400, "message": VERSION_GATE}}, now_wall=NOW
    )
    assert facts.reason == REASON_VERSION_REJECTED
    assert classify(facts, NOW).kind == K.VERSION_REJECTED


# The version gate as model text -----------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        VERSION_GATE,
        "this version of antigravity is no longer supported",
        "Error: This version of\nAntigravity is no longer  supported.",
    ],
)
def test_the_version_gate_text_is_recognised_in_any_case_or_spacing(text: str) -> None:
    assert is_version_gate_text(text)


@pytest.mark.parametrize(
    "text", ["", "This version of Gemini is supported", "Antigravity is no longer supported"]
)
def test_ordinary_text_is_not_the_version_gate(text: str) -> None:
    assert not is_version_gate_text(text)


# absurd resets (issue 11) ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (
            {},
            '{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "x", '
            '"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", '
            '"retryDelay": "999999999s"}]}}',
        ),
        ({"retry-after": "999999999"}, ""),
        ({"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}, ""),
    ],
    ids=["retryDelay", "retry-after-seconds", "retry-after-year-9999"],
)
def test_an_absurd_stated_reset_is_capped_at_a_day(headers: dict[str, str], body: str) -> None:
    from adapters.cloudcode.errors import clamp_resets
    from engine.failures import resolve_reset_ms as engine_reset_ms

    facts = facts_from_response(429, headers, body, now_wall=NOW)
    bounded, longest = clamp_resets(facts, 86_400_000.0, NOW)
    assert longest is not None and longest > 86_400_000.0
    assert engine_reset_ms(bounded.resets, NOW) == 86_400_000


def test_a_reasonable_stated_reset_is_not_touched() -> None:
    from adapters.cloudcode.errors import clamp_resets

    facts = facts_from_response(429, {"retry-after": "30"}, "", now_wall=NOW)
    assert clamp_resets(facts, 86_400_000.0, NOW) == (facts, None)
