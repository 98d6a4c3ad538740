"""Answers from JSON descriptions: how the admin route (and the CLI demo) scripts the fake."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from adapters.fake.answers import (
    DEFAULT_USAGE,
    TINY_PNG,
    Answer,
    Part,
    Usage,
    drop_after,
    drop_before,
    empty,
    endless,
    error,
    error_in_stream,
    final_without_newline,
    function_call,
    hang,
    image,
    normal,
    preset,
    sse,
    stream,
    text,
    thinking,
)
from adapters.fake.presets import PRESETS


def _spec_part(spec: str | Mapping[str, Any]) -> Part:
    if isinstance(spec, str):
        return text(spec)
    if "text" in spec:
        return text(str(spec["text"]))
    if "thinking" in spec:
        return thinking(
            str(spec["thinking"]), spec.get("signature"), signed=bool(spec.get("signed", True))
        )
    if "function_call" in spec:
        return function_call(
            str(spec["function_call"]),
            spec.get("args") or {},
            call_id=spec.get("id"),
            signature=spec.get("signature"),
        )
    if "image" in spec:
        return image(str(spec["image"] or TINY_PNG), str(spec.get("mime_type", "image/png")))
    raise ValueError(f"unknown part spec {dict(spec)!r}")


def _spec_usage(spec: Mapping[str, Any]) -> Usage | None:
    if "usage" not in spec:
        return DEFAULT_USAGE
    raw = spec["usage"]
    if raw is None or raw is False:
        return None
    if raw is True:
        return DEFAULT_USAGE
    fields = cast(Mapping[str, int], raw)
    return Usage(**{k: int(v) for k, v in fields.items()})


def from_spec(spec: str | Mapping[str, Any]) -> Answer:
    """An answer from its JSON description (used by the admin route). A string is a preset name
    or an argument-less kind ("stream", "empty", "hang", "drop_before", "normal"); a mapping has
    "kind" (a constructor name, or "preset" with "name") and that constructor's arguments:
    stream/final_without_newline: parts (strings or {"text"}, {"thinking", "signature"},
    {"function_call", "args", "id", "signature"}, {"image", "mime_type"}), chunks, delay,
    latency, usage ({"prompt", "cached", "candidates"} or null), finish_reason, crlf, headers;
    error: status, body, headers; drop_after: k; hang: after; error_in_stream: after, body;
    sse: events, unary."""
    if isinstance(spec, str):
        if spec in PRESETS:
            return preset(spec)
        return from_spec({"kind": spec})
    kind = spec.get("kind")
    parts = [_spec_part(p) for p in spec.get("parts", [])]
    if kind == "stream":
        return stream(
            *parts,
            chunks=int(spec.get("chunks", 3)),
            delay=float(spec.get("delay", 0.0)),
            latency=float(spec.get("latency", 0.0)),
            usage=_spec_usage(spec),
            finish_reason=spec.get("finish_reason", "STOP"),
            crlf=bool(spec.get("crlf", False)),
            final_newline=bool(spec.get("final_newline", True)),
            headers=spec.get("headers"),
        )
    if kind == "final_without_newline":
        return final_without_newline(
            *parts, chunks=int(spec.get("chunks", 3)), delay=float(spec.get("delay", 0.0))
        )
    if kind == "empty":
        return empty(usage=_spec_usage(spec), latency=float(spec.get("latency", 0.0)))
    if kind == "error":
        return error(
            int(spec["status"]),
            spec.get("body"),
            spec.get("headers"),
            latency=float(spec.get("latency", 0.0)),
        )
    if kind == "preset":
        return preset(
            str(spec["name"]),
            headers=spec.get("headers"),
            latency=float(spec.get("latency", 0.0)),
        )
    if kind == "drop_before":
        return drop_before(latency=float(spec.get("latency", 0.0)))
    if kind == "drop_after":
        return drop_after(int(spec.get("k", 1)), delay=float(spec.get("delay", 0.0)))
    if kind == "hang":
        after = spec.get("after")
        return hang(None if after is None else int(after))
    if kind == "endless":
        return endless(
            delay=float(spec.get("delay", 0.05)),
            text_value=str(spec.get("text", "x")),
            latency=float(spec.get("latency", 0.0)),
        )
    if kind == "error_in_stream":
        return error_in_stream(int(spec.get("after", 1)), spec.get("body"))
    if kind == "sse":
        return sse(
            *spec.get("events", []),
            unary=spec.get("unary"),
            delay=float(spec.get("delay", 0.0)),
            crlf=bool(spec.get("crlf", False)),
            final_newline=bool(spec.get("final_newline", True)),
        )
    if kind == "normal":
        return normal(latency=float(spec.get("latency", 0.0)))
    raise ValueError(f"unknown answer kind {kind!r}")
