"""Named upstream error bodies: every body of seed-behaviour §3.4, as the exact text served.

Bodies marked "reconstructed" have no verbatim source (see §3.4); their shape is google.rpc's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from types import MappingProxyType
from typing import Any

DOMAIN = "cloudcode-pa.googleapis.com"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"

VERSION_GATE_TEXT = (
    "This version of Antigravity is no longer supported. "
    "Please update to receive the latest features!"
)
VALIDATION_URL = (
    "https://accounts.google.com/signin/continue?sarp=1&scc=1&continue=https://developers.google"
    ".com/gemini-code-assist/auth/auth_success_gemini&flowName=GlifWebSignIn&authuser"
)
INVALID_GRANT_BODY = (
    '{"error": "invalid_grant", "error_description": "Token has been expired or revoked."}'
)

_STATUS_NAMES: Mapping[int, str] = MappingProxyType(
    {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        409: "ABORTED",
        429: "RESOURCE_EXHAUSTED",
        499: "CANCELLED",
        500: "INTERNAL",
        501: "UNIMPLEMENTED",
        503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
    }
)


def google_status(code: int) -> str:
    """The google.rpc status string usually paired with an HTTP status."""
    return _STATUS_NAMES.get(code, "UNKNOWN")


def google_error(
    code: int,
    message: str | None = None,
    status: str | None = None,
    *,
    reason: str | None = None,
    metadata: dict[str, str] | None = None,
    retry_delay: str | None = None,
    domain: str = DOMAIN,
) -> str:
    """A google.rpc error body as JSON text: optional ErrorInfo (`reason`, `metadata`) and
    RetryInfo (`retry_delay`, e.g. "39s") details, in that order."""
    if message is None:
        try:
            message = HTTPStatus(code).phrase
        except ValueError:
            message = "Unknown Error."
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "status": status or google_status(code),
    }
    details: list[dict[str, Any]] = []
    if reason is not None:
        info: dict[str, Any] = {"@type": ERROR_INFO, "reason": reason, "domain": domain}
        if metadata:
            info["metadata"] = dict(metadata)
        details.append(info)
    if retry_delay is not None:
        details.append({"@type": RETRY_INFO, "retryDelay": retry_delay})
    if details:
        error["details"] = details
    return json.dumps({"error": error})


def _anthropic_400(message: str) -> str:
    inner = json.dumps(
        {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": message},
            "request_id": "req_vrtx_...",
        },
        separators=(",", ":"),
    )
    return google_error(400, inner, "INVALID_ARGUMENT")


@dataclass(frozen=True)
class Preset:
    """A named upstream answer: HTTP `status` and exact `body` text; `source` says where in
    seed-behaviour §3.4 it comes from. `version_gate` is served as model text in a 200 stream."""

    name: str
    status: int
    body: str
    source: str


_PRESETS = (
    Preset(
        "quota_429",
        429,
        '{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", '
        '"status": "RESOURCE_EXHAUSTED"}}',
        "§3.4.1 generic 429 without reset information (issue)",
    ),
    Preset(
        "quota_429_reset",
        429,
        google_error(
            429,
            "You have exhausted your capacity on this model.",
            reason="QUOTA_EXHAUSTED",
            metadata={
                "model": "claude-opus-4-6-thinking",
                "quotaResetDelay": "754.431528ms",
                "quotaResetTimeStamp": "2025-12-31T07:00:47Z",
            },
            retry_delay="0.754431528s",
        ),
        "§3.4.2 429 with quotaResetDelay, quotaResetTimeStamp and retryDelay (reconstructed)",
    ),
    Preset(
        "capacity_503",
        503,
        google_error(
            503,
            "No capacity available for model gemini-3-pro-low on the server",
            reason="MODEL_CAPACITY_EXHAUSTED",
            metadata={"model": "gemini-3-pro-low"},
            retry_delay="39s",
        ),
        "§3.4.3 503 capacity (issue #278)",
    ),
    Preset(
        "capacity_429",
        429,
        google_error(
            429,
            "No capacity available for model claude-opus-4-6-thinking on the server",
            reason="MODEL_CAPACITY_EXHAUSTED",
            metadata={"model": "claude-opus-4-6-thinking"},
        ),
        "UPSTREAM.md: a 429 whose ErrorInfo says MODEL_CAPACITY_EXHAUSTED (reconstructed)",
    ),
    Preset(
        "rate_limit_429",
        429,
        google_error(
            429,
            "Rate limit exceeded for model claude-sonnet-4-6. Please retry later.",
            reason="RATE_LIMIT_EXCEEDED",
            metadata={"model": "claude-sonnet-4-6"},
            retry_delay="7s",
        ),
        "UPSTREAM.md: a 429 whose ErrorInfo says RATE_LIMIT_EXCEEDED (reconstructed)",
    ),
    Preset(
        "validation_403",
        403,
        google_error(
            403,
            "Verify your account to continue.",
            reason="VALIDATION_REQUIRED",
            metadata={
                "validation_url": VALIDATION_URL,
                "validation_error_message": "Verify your account to continue.",
            },
        ),
        "§3.4.4 403 validation with validation_url (test, Antigravity-Manager #3007)",
    ),
    Preset(
        "validation_403_message",
        403,
        '{"error":{"code":403,"message":"VALIDATION_REQUIRED: Please complete account '
        'validation","status":"PERMISSION_DENIED"}}',
        "§3.4.4 other test string (matches validation)",
    ),
    Preset(
        "account_disabled_403",
        403,
        '{"error":{"code":403,"message":"account_disabled: This account has been disabled"}}',
        "§3.4.4 other test string (matches validation)",
    ),
    Preset(
        "permission_403",
        403,
        '{"error":{"code":403,"message":"The caller does not have permission",'
        '"status":"PERMISSION_DENIED"}}',
        "§3.4.4 other test string (no match: J3)",
    ),
    Preset(
        "forbidden_403",
        403,
        '{"error":{"code":403,"message":"Forbidden","status":"FORBIDDEN"}}',
        "§3.4.4 other test string (no match)",
    ),
    Preset(
        "banned_403",
        403,
        '{"error": {"code": 403, "message": "Gemini has been disabled for this account due to a '
        'violation of Terms of Service.", "status": "PERMISSION_DENIED"}}',
        "§3.4.5 403 Terms of Service ban (reconstructed from commit 3a851e1)",
    ),
    Preset(
        "license_403",
        403,
        google_error(
            403, "Permission denied. Check your Antigravity license.", "PERMISSION_DENIED"
        ),
        "§3.4.6 403 license (issue #223 title, wrapped as a Google error)",
    ),
    Preset(
        "revoked_401",
        401,
        '{"error":{"message":"invalid_grant: Token has been expired or revoked"}}',
        "§3.4.7 permanent 401 (test)",
    ),
    Preset(
        "auth_401",
        401,
        '{"error":{"code":401,"message":"Request had invalid authentication credentials.",'
        '"status":"UNAUTHENTICATED"}}',
        "§3.4.7 transient 401 (test)",
    ),
    Preset(
        "server_500",
        500,
        '{"error": {"code": 500, "message": "Unknown Error.", "status": "UNKNOWN"}}',
        "§3.4.8 500 (issue #117)",
    ),
    Preset(
        "not_found_404",
        404,
        '{"error": {"code": 404, "message": "Requested entity was not found.", '
        '"status": "NOT_FOUND"}}',
        "§3.4.9 404 (ecosystem)",
    ),
    Preset(
        "invalid_400",
        400,
        _anthropic_400(
            "messages.14: `tool_use` ids were found without `tool_result` blocks immediately "
            "after: toolu_vrtx_01Lg.... Each `tool_use` block must have a corresponding "
            "`tool_result` block in the next message."
        ),
        "§3.4.10 400 passthrough of an Anthropic error (issue #140)",
    ),
    Preset(
        "invalid_signature_400",
        400,
        _anthropic_400("messages.1.content.0: Invalid `signature` in `thinking` block"),
        "§3.4.10 similar known 400",
    ),
    Preset(
        "cache_control_400",
        400,
        _anthropic_400(
            "messages.3.content.0.thinking.cache_control: Extra inputs are not permitted"
        ),
        "§3.4.10 similar known 400",
    ),
    Preset(
        "missing_thought_signature_400",
        400,
        google_error(
            400,
            "Function call is missing a thought_signature in functionCall parts. This is "
            "required for tools to work correctly, and missing thought_signature may lead to "
            "degraded model performance.",
        ),
        "§3.4.10 similar known 400 (Gemini; wording after the first sentence reconstructed)",
    ),
    Preset(
        "proto_400",
        400,
        google_error(400, "Proto field is not repeating, cannot start list."),
        "§3.4.10 similar known 400 (schema, issue #82)",
    ),
    Preset(
        "version_gate",
        200,
        VERSION_GATE_TEXT,
        "§3.4.11 version gate, served as ordinary model text in a 200 stream",
    ),
    Preset(
        "invalid_grant",
        400,
        INVALID_GRANT_BODY,
        "§3.4.12 OAuth refresh failure (Google standard); for the token endpoint",
    ),
)

PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in _PRESETS})
PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)
