"""One upstream error answer in, `engine.failures.UpstreamFacts` out: parsed once, here.

`google_error_from_response` / `google_error_from_stream_error` read the answer into a
`GoogleError` (Google's vocabulary, `adapters/cloudcode/errors.py`); `facts_from_response` /
`facts_from_stream_error` hand the engine its provider-neutral facts (`errors.to_facts`).


This module owns reading Cloud Code and Google OAuth error answers (reference/seed-behaviour.md
§3.1-§3.4, §4.6). Google JSON bodies (`{"error": {"code", "message", "status", "details"}}`) are
read as JSON: the first google.rpc ErrorInfo `reason`, its `quotaResetDelay`,
`quotaResetTimeStamp` and `validation_url`, RetryInfo `retryDelay`. The headers `retry-after`,
`x-ratelimit-reset` and `x-ratelimit-reset-after` add reset hints. Text patterns are a fallback
for bodies that are not Google JSON or carry no details (UPSTREAM.md). Every hint found is
returned with its `ResetSource`; choosing among them and flooring is the engine's job
(`resolve_reset_ms`). Pure functions: no I/O, no clock (the caller passes `now_wall`).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from adapters.cloudcode.errors import (
    REASON_CAPACITY,
    REASON_RATE_LIMIT,
    REASON_VERSION_REJECTED,
    GoogleError,
    GoogleReset,
    ResetSource,
    to_facts,
)
from engine.failures import UpstreamFacts

MAX_MESSAGE_CHARS = 2000
MAX_HTML_MESSAGE_CHARS = 200
#: An `x-ratelimit-reset` below this is too small to be a Unix time: it is read as seconds from now.
_MIN_EPOCH_S = 1_000_000_000

_PERMANENT_AUTH = (
    "invalid_grant",
    "token revoked",
    "token has been expired or revoked",
    "token_revoked",
    "invalid_client",
    "credentials are invalid",
)
_CAPACITY = (
    "model_capacity_exhausted",
    "capacity_exhausted",
    "model is currently overloaded",
    "service temporarily unavailable",
)
_VERIFICATION = ("validation_required", "account_disabled", "user_disabled")
_RATE_LIMIT = ("rate limit exceeded", "too many requests")
_VERSION_GATE = re.compile(
    r"this\s+version\s+of\s+antigravity\s+is\s+no\s+longer\s+supported", re.IGNORECASE
)
_VERIFY_URL = re.compile(r"https://accounts\.google\.com/signin/continue\?[^\s\"\\]+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_MS = {
    "ns": 1e-6,
    "us": 1e-3,
    "µs": 1e-3,
    "μs": 1e-3,
    "ms": 1.0,
    "s": 1e3,
    "m": 6e4,
    "h": 3.6e6,
}
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
# §3.1 rows 8-10, for bodies that are not Google JSON.
_PROSE_RETRY = re.compile(r"retry\s+(?:after\s+)?(\d+)\s*(?:sec|s\b)", re.IGNORECASE)
_PROSE_DURATION = re.compile(
    r"(?<![\w.])(?:(\d+)h(\d+)m(\d+)s|(\d+)m(\d+)s|(\d+)s)\b", re.IGNORECASE
)
_PROSE_RESET_AT = re.compile(r"reset[:\s\"]+(\d{4}-\d{2}-\d{2}T[\d:.]+Z?)", re.IGNORECASE)
_HTML = re.compile(r"^\s*<(?:!doctype\s+html|html|head|body|title)\b", re.IGNORECASE)
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HTML_HIDDEN = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"\s+")
_SECRETS = (
    (re.compile(r"ya29\.[\w.\-]+"), "ya29.[redacted]"),
    (re.compile(r"1//[\w.\-]{10,}"), "1//[redacted]"),
    (re.compile(r"(?i)\bbearer\s+[\w.~+/\-]+=*"), "Bearer [redacted]"),
)


def is_version_gate_text(text: str) -> bool:
    """True for "This version of Antigravity is no longer supported" (any case or spacing)."""
    return _VERSION_GATE.search(text) is not None


def facts_from_response(
    status: int, headers: Mapping[str, str], body: bytes | str, *, now_wall: float
) -> UpstreamFacts:
    """The engine's facts of one non-2xx HTTP answer (its status, headers and body)."""
    return to_facts(google_error_from_response(status, headers, body, now_wall=now_wall))


def facts_from_stream_error(obj: Mapping[str, Any], *, now_wall: float) -> UpstreamFacts:
    """The engine's facts of an `{"error": {...}}` object found inside a 200 SSE stream."""
    return to_facts(google_error_from_stream_error(obj, now_wall=now_wall))


def google_error_from_response(
    status: int, headers: Mapping[str, str], body: bytes | str, *, now_wall: float
) -> GoogleError:
    """One non-2xx HTTP answer as read (its status, headers and body)."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    resets = _header_resets(headers, now_wall)
    return _facts(status, _load_json(text), text, resets)


def google_error_from_stream_error(obj: Mapping[str, Any], *, now_wall: float) -> GoogleError:
    """An `{"error": {...}}` object found inside a 200 SSE stream, as read.

    The status is `error.code` when it is an HTTP error status, else 500. `now_wall` is accepted
    for symmetry with `google_error_from_response`; a stream error carries no headers.
    """
    del now_wall
    error = obj.get("error")
    code = error.get("code") if isinstance(error, Mapping) else None
    status = code if isinstance(code, int) and 400 <= code <= 599 else 500
    text = json.dumps(obj, ensure_ascii=False, default=str)
    return _facts(status, dict(obj), text, [])


@dataclass
class _Found:
    """What the body said, accumulated while reading it."""

    reason: str | None = None
    resets: list[GoogleReset] = field(default_factory=list)
    verify_url: str | None = None


def _facts(status: int, parsed: Any, text: str, resets: list[GoogleReset]) -> GoogleError:
    google = _google_error(parsed)
    if google is not None:
        return _from_google(status, google, text, resets)
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        # The OAuth token endpoint: {"error": "invalid_grant", "error_description": "..."}.
        description = parsed.get("error_description")
        message = parsed["error"]
        if isinstance(description, str) and description:
            message = f"{message}: {description}"
        return _from_text(status, text, message, resets)
    if not text.strip():
        return GoogleError(
            status=status, resets=tuple(resets), message=f"HTTP {status} with an empty body"
        )
    if _HTML.match(text):
        page = _html_text(text)
        title = _html_title(text)
        return _from_text(status, page, title or page, resets, limit=MAX_HTML_MESSAGE_CHARS)
    return _from_text(status, text, text, resets)


def _from_google(
    status: int, error: Mapping[str, Any], text: str, resets: list[GoogleReset]
) -> GoogleError:
    raw_message = error.get("message")
    message = raw_message if isinstance(raw_message, str) else ""
    status_field = error.get("status")
    google_status = status_field if isinstance(status_field, str) else None
    details = error.get("details")
    found = _read_details(details if isinstance(details, list) else [])
    reason = found.reason
    if reason is None and not details:
        reason = _infer_reason(message)
    haystack = f"{text}\n{message}"
    return GoogleError(
        status=status,
        google_status=google_status,
        reason=reason,
        resets=(*resets, *found.resets),
        # A Cloud Code 400 is about the request (and may echo it): never an auth verdict.
        permanent_auth=status == 401 and _has_any(haystack, _PERMANENT_AUTH),
        banned=_is_banned(haystack),
        verify_url=found.verify_url or _find_verify_url(message) or _find_verify_url(text),
        message=_clean_message(_inner_anthropic_message(message))
        or google_status
        or f"HTTP {status}",
    )


def _from_text(
    status: int,
    text: str,
    message: str,
    resets: list[GoogleReset],
    *,
    limit: int = MAX_MESSAGE_CHARS,
) -> GoogleError:
    prose = _prose_reset(text)
    return GoogleError(
        status=status,
        reason=_infer_reason(text),
        resets=(*resets, *([prose] if prose else [])),
        permanent_auth=status in (400, 401) and _has_any(text, _PERMANENT_AUTH),
        banned=_is_banned(text),
        verify_url=_find_verify_url(text),
        message=_clean_message(message, limit=limit),
    )


def _load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _google_error(parsed: Any) -> Mapping[str, Any] | None:
    """The `error` object of a Google JSON error (also inside a one-element JSON array)."""
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict):
            return error
    return None


def _read_details(details: list[Any]) -> _Found:
    found = _Found()
    delay: GoogleReset | None = None
    stamp: GoogleReset | None = None
    retry: GoogleReset | None = None
    for detail in details:
        if not isinstance(detail, dict):
            continue
        kind = detail.get("@type")
        kind = kind if isinstance(kind, str) else ""
        if kind.endswith("google.rpc.ErrorInfo"):
            reason = detail.get("reason")
            if found.reason is None and isinstance(reason, str) and reason:
                found.reason = reason
            meta = detail.get("metadata")
            meta = meta if isinstance(meta, dict) else {}
            delay = delay or _delay_hint(ResetSource.QUOTA_RESET_DELAY, meta.get("quotaResetDelay"))
            stamp = stamp or _at_hint(
                ResetSource.QUOTA_RESET_TIMESTAMP, meta.get("quotaResetTimeStamp")
            )
            url = meta.get("validation_url")
            if found.verify_url is None and isinstance(url, str) and url.startswith("https://"):
                found.verify_url = url
        elif kind.endswith("google.rpc.RetryInfo"):
            retry = retry or _delay_hint(ResetSource.RETRY_DELAY, detail.get("retryDelay"))
    found.resets = [hint for hint in (delay, stamp, retry) if hint is not None]
    return found


def _delay_hint(source: ResetSource, value: Any) -> GoogleReset | None:
    ms = _duration_ms(value)
    return None if ms is None else GoogleReset(source=source, delay_ms=ms)


def _at_hint(source: ResetSource, value: Any) -> GoogleReset | None:
    epoch = _iso_epoch(value) if isinstance(value, str) else None
    return None if epoch is None else GoogleReset(source=source, at_epoch_s=epoch)


def _duration_ms(value: Any) -> float | None:
    """A Go or protobuf-JSON duration ("754.431528ms", "1.5s", "1h2m3s", {"seconds": 39})."""
    if isinstance(value, dict):
        seconds, nanos = value.get("seconds", 0), value.get("nanos", 0)
        try:
            return float(seconds) * 1e3 + float(nanos) / 1e6
        except (TypeError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    parts = list(_DURATION_PART.finditer(text))
    if not parts or "".join(p.group(0) for p in parts) != text:
        return None
    return sum(float(p.group(1)) * _UNIT_MS[p.group(2)] for p in parts)


def _iso_epoch(text: str) -> float | None:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _header_resets(headers: Mapping[str, str], now_wall: float) -> list[GoogleReset]:
    lower: dict[str, str] = {}
    for name, value in headers.items():
        lower.setdefault(name.lower(), value.strip())
    hints: list[GoogleReset] = []
    retry_after = lower.get("retry-after")
    if retry_after:
        if _NUMBER.fullmatch(retry_after):
            hints.append(_seconds(ResetSource.RETRY_AFTER_HEADER, retry_after))
        else:
            epoch = _http_date_epoch(retry_after)
            if epoch is not None:
                hints.append(GoogleReset(source=ResetSource.RETRY_AFTER_HEADER, at_epoch_s=epoch))
    reset = lower.get("x-ratelimit-reset")
    if reset and _NUMBER.fullmatch(reset):
        stamp = float(reset)
        at_s = stamp if stamp >= _MIN_EPOCH_S else now_wall + stamp
        hints.append(GoogleReset(source=ResetSource.RATELIMIT_RESET_HEADER, at_epoch_s=at_s))
    reset_after = lower.get("x-ratelimit-reset-after")
    if reset_after and _NUMBER.fullmatch(reset_after) and float(reset_after) > 0:
        hints.append(_seconds(ResetSource.RATELIMIT_RESET_AFTER_HEADER, reset_after))
    return hints


def _seconds(source: ResetSource, text: str) -> GoogleReset:
    return GoogleReset(source=source, delay_ms=float(text) * 1000.0)


def _http_date_epoch(text: str) -> float | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _prose_reset(text: str) -> GoogleReset | None:
    """§3.1 rows 8-10: the first of "retry after N seconds", a duration token, "reset: <ISO>"."""
    if match := _PROSE_RETRY.search(text):
        return GoogleReset(source=ResetSource.TEXT, delay_ms=int(match.group(1)) * 1000.0)
    if match := _PROSE_DURATION.search(text):
        h, m, s = (match.group(1), match.group(2), match.group(3))
        if h is None:
            h, m, s = "0", match.group(4) or "0", match.group(5) or match.group(6)
        seconds = int(h) * 3600 + int(m) * 60 + int(s)
        return GoogleReset(source=ResetSource.TEXT, delay_ms=seconds * 1000.0)
    if match := _PROSE_RESET_AT.search(text):
        return _at_hint(ResetSource.TEXT, match.group(1))
    return None


def _infer_reason(text: str) -> str | None:
    """A reason from text, for bodies without an ErrorInfo (not Google JSON, or no details)."""
    lowered = text.lower()
    if is_version_gate_text(text):
        return REASON_VERSION_REJECTED
    if _has_any(lowered, _CAPACITY):
        return REASON_CAPACITY
    for marker in _VERIFICATION:
        if marker in lowered:
            return marker.upper()
    if _has_any(lowered, _RATE_LIMIT):
        return REASON_RATE_LIMIT
    return None


def _has_any(text: str, needles: tuple[str, ...]) -> bool:
    lowered = text.lower()
    return any(needle in lowered for needle in needles)


def _is_banned(text: str) -> bool:
    lowered = text.lower()
    return "has been disabled" in lowered and "violation of terms of service" in lowered


def _find_verify_url(text: str) -> str | None:
    match = _VERIFY_URL.search(text)
    return match.group(0).rstrip(",.)}>]") if match else None


def _inner_anthropic_message(message: str) -> str:
    """The Anthropic `error.message` when a Google message is itself Anthropic error JSON."""
    if not message.lstrip().startswith("{"):
        return message
    inner = _load_json(message)
    if isinstance(inner, dict):
        error = inner.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return message


def _html_title(page: str) -> str:
    title = _HTML_TITLE.search(page)
    return _SPACES.sub(" ", html.unescape(title.group(1))).strip() if title else ""


def _html_text(page: str) -> str:
    """An HTML page's text, without markup, scripts or styles."""
    shown = _HTML_TAG.sub(" ", _HTML_HIDDEN.sub(" ", page))
    return _SPACES.sub(" ", html.unescape(shown)).strip()


def _clean_message(message: str, *, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Credentials redacted, whitespace trimmed, at most `limit` characters."""
    for pattern, replacement in _SECRETS:
        message = pattern.sub(replacement, message)
    message = message.strip()
    return message if len(message) <= limit else message[: limit - 1] + "…"
