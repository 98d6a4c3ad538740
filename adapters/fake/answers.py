"""Scripted answers of the fake upstream: what one generate (or token) request gets back.

An `Answer` is immutable wire data prepared when it is built: the SSE `data:` payloads for
`streamGenerateContent`, the JSON body for `generateContent`, or an error status, body and headers.
Build answers with the constructors below (`stream`, `empty`, `error`, `preset`, `drop_before`,
`drop_after`, `hang`, `endless`, `final_without_newline`, `error_in_stream`, `sse`, `normal`) and
content parts with `text`, `thinking`, `function_call` and `image`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from adapters.fake.presets import PRESET_NAMES, PRESETS, google_error

AnswerKind = Literal[
    "stream",
    "empty",
    "error",
    "drop_before",
    "drop_after",
    "hang",
    "error_in_stream",
    "normal",
    "endless",
]
PartKind = Literal["text", "thinking", "function_call", "inline_data"]

DEFAULT_TEXT = "Hello from the fake upstream."
TINY_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6"
    "kgAAAABJRU5ErkJggg=="
)
JSON_TYPE = "application/json; charset=UTF-8"


def make_signature(seed: str) -> str:
    """A deterministic base64 thought signature of 88 characters derived from `seed`."""
    first = hashlib.sha256(seed.encode()).digest()
    return base64.b64encode(first + hashlib.sha256(first).digest()).decode()


@dataclass(frozen=True)
class Part:
    """One content part of a streamed answer, before it is cut into chunks."""

    kind: PartKind
    text: str = ""
    signature: str | None = None
    name: str = ""
    args_json: str = "{}"
    call_id: str | None = None
    mime_type: str = ""
    data: str = ""

    def whole(self) -> dict[str, Any]:
        """The part as `generateContent` returns it (not split)."""
        if self.kind == "text":
            return {"text": self.text}
        if self.kind == "thinking":
            out: dict[str, Any] = {"thought": True, "text": self.text}
            if self.signature:
                out["thoughtSignature"] = self.signature
            return out
        if self.kind == "function_call":
            call: dict[str, Any] = {"name": self.name, "args": json.loads(self.args_json)}
            if self.call_id is not None:
                call["id"] = self.call_id
            part: dict[str, Any] = {"functionCall": call}
            if self.signature:
                part["thoughtSignature"] = self.signature
            return part
        return {"inlineData": {"mimeType": self.mime_type, "data": self.data}}


def text(value: str) -> Part:
    """A text part; `stream` splits it into `chunks` pieces."""
    return Part("text", text=value)


def thinking(value: str, signature: str | None = None, *, signed: bool = True) -> Part:
    """A thinking part; `stream` splits its text and sends the signature on a final empty-text
    thought part. Without `signature` one is derived from the text (88 characters, so >= 50);
    `signed=False` sends none."""
    sig = (signature or make_signature(value)) if signed else None
    return Part("thinking", text=value, signature=sig)


def function_call(
    name: str,
    args: Mapping[str, Any] | None = None,
    *,
    call_id: str | None = None,
    signature: str | None = None,
) -> Part:
    """A functionCall part (one chunk), with an optional `id` and `thoughtSignature`."""
    return Part(
        "function_call",
        name=name,
        args_json=json.dumps(dict(args or {})),
        call_id=call_id,
        signature=signature,
    )


def image(data: str = TINY_PNG, mime_type: str = "image/png") -> Part:
    """An inlineData part (one chunk); the default is a 1x1 PNG."""
    return Part("inline_data", mime_type=mime_type, data=data)


@dataclass(frozen=True)
class Usage:
    """usageMetadata of the last chunk; zero counts are omitted, as Google does."""

    prompt: int = 100
    cached: int = 40
    candidates: int = 20
    total: int | None = None

    def to_json(self) -> dict[str, int]:
        out = {
            "promptTokenCount": self.prompt,
            "cachedContentTokenCount": self.cached,
            "candidatesTokenCount": self.candidates,
            "totalTokenCount": self.prompt + self.candidates if self.total is None else self.total,
        }
        return {k: v for k, v in out.items() if v}


DEFAULT_USAGE = Usage()


@dataclass(frozen=True)
class Answer:
    """One scripted answer. `events` are the SSE data payloads (JSON text, sent `delay` s apart
    after `latency` s); `unary` is the generateContent body; `body` an error body. `label` is
    what the request log records as the outcome."""

    kind: AnswerKind
    label: str
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    events: tuple[str, ...] = ()
    unary: str = ""
    delay: float = 0.0
    latency: float = 0.0
    crlf: bool = False
    final_newline: bool = True
    hang_after: int | None = None

    def frame(self, index: int) -> bytes:
        """SSE bytes of event `index`: one `data:` line per line of the payload, then a blank
        line; the last event lacks its terminator when `final_newline` is False."""
        nl = "\r\n" if self.crlf else "\n"
        lines = self.events[index].split("\n")
        out = nl.join(f"data: {line}" for line in lines) + nl + nl
        if not self.final_newline and index == len(self.events) - 1:
            out = out[: -2 * len(nl)]
        return out.encode()


def _split(value: str, pieces: int) -> list[str]:
    n = max(1, min(pieces, len(value)))
    return [value[i * len(value) // n : (i + 1) * len(value) // n] for i in range(n)]


def _content_chunks(parts: Sequence[Part], chunks: int) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = []
    for part in parts:
        if part.kind == "text":
            out.extend([{"text": piece}] for piece in _split(part.text, chunks))
        elif part.kind == "thinking":
            out.extend([{"thought": True, "text": piece}] for piece in _split(part.text, chunks))
            if part.signature:
                out.append([{"thought": True, "text": "", "thoughtSignature": part.signature}])
        else:
            out.append([part.whole()])
    return out


def _response(
    parts: list[dict[str, Any]] | None,
    response_id: str,
    finish_reason: str | None = None,
    usage: Usage | None = None,
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model"}}
    if parts is not None:
        candidate["content"]["parts"] = parts
    if finish_reason is not None:
        candidate["finishReason"] = finish_reason
    inner: dict[str, Any] = {"candidates": [candidate]}
    if usage is not None:
        inner["usageMetadata"] = usage.to_json()
    inner["responseId"] = response_id
    return {"response": inner}


def _headers(headers: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in (headers or {}).items())


def _as_parts(parts: Sequence[Part | str]) -> list[Part]:
    out = [text(p) if isinstance(p, str) else p for p in parts]
    return out or [text(DEFAULT_TEXT)]


def stream(
    *parts: Part | str,
    chunks: int = 3,
    delay: float = 0.0,
    latency: float = 0.0,
    usage: Usage | None = DEFAULT_USAGE,
    finish_reason: str | None = "STOP",
    crlf: bool = False,
    final_newline: bool = True,
    headers: Mapping[str, str] | None = None,
    label: str = "stream",
) -> Answer:
    """A 200 SSE answer. Each text and thinking part is split into `chunks` pieces (at most one
    per character), one chunk per piece; a thinking signature, each functionCall and each image
    take one chunk; the last chunk carries `finish_reason` and `usage`. Strings are text parts;
    no parts means one text part. `delay` is slept before every chunk."""
    content = _as_parts(parts)
    rid = "fake-" + secrets.token_hex(8)
    pieces = _content_chunks(content, chunks)
    events = [_response(p, rid) for p in pieces]
    events[-1] = _response(pieces[-1], rid, finish_reason, usage)
    unary = _response([p.whole() for p in content], rid, finish_reason, usage)
    return Answer(
        "stream",
        label,
        headers=_headers(headers),
        events=tuple(json.dumps(e) for e in events),
        unary=json.dumps(unary),
        delay=delay,
        latency=latency,
        crlf=crlf,
        final_newline=final_newline,
    )


def empty(*, usage: Usage | None = DEFAULT_USAGE, latency: float = 0.0) -> Answer:
    """A 200 answer without content: only a usage/finishReason chunk (no parts), or zero bytes
    when `usage` is None."""
    rid = "fake-" + secrets.token_hex(8)
    events: tuple[str, ...] = ()
    unary = json.dumps({"response": {"candidates": [], "responseId": rid}})
    if usage is not None:
        unary = json.dumps(_response(None, rid, "STOP", usage))
        events = (unary,)
    return Answer("empty", "empty", events=events, unary=unary, latency=latency)


def error(
    status: int,
    body: str | Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    latency: float = 0.0,
    label: str = "error",
) -> Answer:
    """Any status with `body` (JSON text or a mapping; default a google.rpc body for the status)
    and headers such as `retry-after`, `x-ratelimit-reset`, `x-ratelimit-reset-after`."""
    if body is None:
        text_body = google_error(status)
    elif isinstance(body, str):
        text_body = body
    else:
        text_body = json.dumps(dict(body))
    merged = dict(headers or {})
    if not any(k.lower() == "content-type" for k in merged):
        try:
            json.loads(text_body)
            merged["Content-Type"] = JSON_TYPE
        except ValueError:
            merged["Content-Type"] = "text/plain; charset=UTF-8"
    return Answer(
        "error", label, status=status, headers=_headers(merged), body=text_body, latency=latency
    )


def preset(name: str, *, headers: Mapping[str, str] | None = None, latency: float = 0.0) -> Answer:
    """A named body of seed-behaviour §3.4 (see `PRESET_NAMES`) with its status; `version_gate`
    is the version-gate text as ordinary model text in a 200 stream."""
    found = PRESETS.get(name)
    if found is None:
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(PRESET_NAMES)}")
    if name == "version_gate":
        return stream(
            found.body, chunks=1, headers=headers, latency=latency, label="preset:" + name
        )
    return error(found.status, found.body, headers, latency=latency, label="preset:" + name)


def drop_before(*, latency: float = 0.0) -> Answer:
    """Close the connection without sending an HTTP response."""
    return Answer("drop_before", "drop_before", latency=latency)


def drop_after(k: int, answer: Answer | None = None, *, delay: float = 0.0) -> Answer:
    """Send the status and the first `k` SSE events of `answer` (default: a text stream with
    more than `k` chunks), then abort the connection. generateContent sends half its body."""
    if k < 0:
        raise ValueError("drop_after needs k >= 0")
    base = answer or stream(text("x" * (k + 2)), chunks=k + 2, delay=delay)
    if base.kind != "stream" or len(base.events) < k:
        raise ValueError(f"drop_after({k}) needs a stream answer with at least {k} events")
    return Answer(
        "drop_after",
        "drop_after",
        headers=base.headers,
        events=base.events[:k],
        unary=base.unary,
        delay=base.delay,
        latency=base.latency,
        crlf=base.crlf,
    )


def hang(after: int | None = None, answer: Answer | None = None) -> Answer:
    """Never answer (until the client goes away or the fake stops); with `after=k`, send the
    status and `k` events of `answer` (default: a text stream) first, then stall."""
    if after is None:
        return Answer("hang", "hang")
    base = answer or stream(text("x" * (after + 2)), chunks=after + 2)
    if base.kind != "stream" or len(base.events) < after:
        raise ValueError(f"hang(after={after}) needs a stream answer with at least {after} events")
    return Answer(
        "hang",
        "hang",
        headers=base.headers,
        events=base.events[:after],
        delay=base.delay,
        crlf=base.crlf,
        hang_after=after,
    )


def endless(*, delay: float = 0.05, text_value: str = "x", latency: float = 0.0) -> Answer:
    """A 200 stream that never ends: one text chunk (`text_value`) every `delay` s (at least
    1 ms) until the client goes away or the fake stops. generateContent hangs instead."""
    rid = "fake-" + secrets.token_hex(8)
    return Answer(
        "endless",
        "endless",
        events=(json.dumps(_response([{"text": text_value}], rid)),),
        delay=max(delay, 0.001),
        latency=latency,
    )


def final_without_newline(*parts: Part | str, chunks: int = 3, delay: float = 0.0) -> Answer:
    """A normal stream whose last SSE event has no trailing newline."""
    return stream(
        *parts, chunks=chunks, delay=delay, final_newline=False, label="final_without_newline"
    )


def error_in_stream(
    after: int = 1,
    body: str | Mapping[str, Any] | None = None,
    *,
    text_value: str = DEFAULT_TEXT,
    delay: float = 0.0,
) -> Answer:
    """A 200 stream of `after` text chunks, then an `{"error": ...}` event (default: the
    server_500 body), then the end of the stream. generateContent answers 200 with the body."""
    err = PRESETS["server_500"].body if body is None else body
    err_text = err if isinstance(err, str) else json.dumps(dict(err))
    rid = "fake-" + secrets.token_hex(8)
    pieces = _split(text_value, after) if after > 0 else []
    events = [json.dumps(_response([{"text": p}], rid)) for p in pieces]
    return Answer(
        "error_in_stream",
        "error_in_stream",
        events=(*events, err_text),
        unary=err_text,
        delay=delay,
    )


def sse(
    *events: str | Mapping[str, Any],
    unary: str | Mapping[str, Any] | None = None,
    delay: float = 0.0,
    crlf: bool = False,
    final_newline: bool = True,
    label: str = "sse",
) -> Answer:
    """A 200 stream of exactly these payloads (mappings are JSON-encoded; a payload with newlines
    becomes a multi-line `data:` event). `unary` is the generateContent body."""
    texts = tuple(e if isinstance(e, str) else json.dumps(dict(e)) for e in events)
    if unary is None:
        unary_text = json.dumps({"response": {"candidates": []}})
    else:
        unary_text = unary if isinstance(unary, str) else json.dumps(dict(unary))
    return Answer(
        "stream",
        label,
        events=texts,
        unary=unary_text,
        delay=delay,
        crlf=crlf,
        final_newline=final_newline,
    )


def normal(*, latency: float = 0.0) -> Answer:
    """Answer as if unscripted: the default answer for generate calls, the account's data for
    loadCodeAssist/onboardUser/fetchAvailableModels, a token (or invalid_grant) for the token
    endpoint."""
    return Answer("normal", "normal", latency=latency)


SIMPLE_KINDS: frozenset[str] = frozenset({"normal", "error", "drop_before", "hang"})
