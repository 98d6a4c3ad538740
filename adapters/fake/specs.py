"""Answers from JSON descriptions: how the admin route (and the CLI demo) scripts the fake."""

from __future__ import annotations

import textwrap
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
from adapters.fake.presets import PRESET_NAMES, PRESETS

SCRIPT_FORMAT = (
    """\
Scripting faults: POST JSON to the admin site (the "auth" URL printed at start):

  POST /_fake/script   {"account": "account-1" | null, "endpoint": "daily" | null,
                        "call": "generate", "answers": [ANSWER, ...]}
       queues answers; each request takes the first queued answer of, in order: (its account,
       its endpoint), (its account, any endpoint), (any account, its endpoint), (any, any);
       else the default answer. null (or absent) account / endpoint means any.
       "call": "generate" (both generate paths, the default), "loadCodeAssist", "onboardUser",
       "fetchAvailableModels" or "token" (the token endpoint); calls other than generate take
       only normal, error, preset, drop_before and hang (without "after").
       Answers {"queued": n, "pending": m}.
  POST /_fake/default  {"answer": ANSWER}   the answer to unscripted generate requests
  GET  /_fake/log      ?account=&endpoint=&call=&path=   every request seen, as JSON;
  DELETE /_fake/log    clears it
  GET  /_fake/accounts; POST /_fake/accounts {"name", and optionally "refresh_token",
       "project", "tier", "paid_tier", "onboarded", "onboard_polls", "email"}: adds one
  POST /_fake/quota    {"model", "remaining_fraction" (0-1 or null), "reset_time" (RFC 3339),
       "account" (null: every account)}: what fetchAvailableModels reports for the model; an
       account x model at 0 answers unscripted generate requests with preset quota_429

ANSWER is a preset name or an argument-less kind as a string ("quota_429", "hang", "stream"),
or an object with "kind" and that kind's fields (all optional unless marked):
  stream               parts (strings, or {"text"}, {"thinking", "signature", "signed"},
                       {"function_call", "args", "id", "signature"}, {"image", "mime_type"}),
                       chunks (3: pieces per text part), delay (s before each chunk), latency
                       (s before the status line), usage ({"prompt", "cached", "candidates"}
                       or null), finish_reason ("STOP"), crlf, final_newline (true), headers
  final_without_newline  parts, chunks, delay: a stream whose last event lacks its newline
  empty                latency, usage: a 200 without content (usage null: zero bytes)
  error                status (required), body (JSON text or object; default a google.rpc
                       body), headers, latency: any status and body, e.g. an HTML 200: status
                       200, body "<html>...", headers {"Content-Type": "text/html"}
  preset               name (required), headers, latency: a captured Google answer
  drop_before          latency: close the connection without answering
  drop_after           k (1), delay: the status and k events, then the connection is cut
  hang                 after: never answer; with after=k, k events first, then stall
  endless              delay (0.05), text ("x"), latency: one text chunk every delay s, forever
                       (generateContent: no answer at all)
  error_in_stream      after (1), body: after text chunks, an {"error": ...} event in the 200
  sse                  events (payloads, verbatim), unary, delay, crlf, final_newline
  normal               latency: as if unscripted

"""
    + textwrap.fill("Presets: " + ", ".join(PRESET_NAMES) + ".", width=95)
    + """


Example: the first generate request of account-1 on daily gets a quota 429, the next a stream
that stalls after two events:
  curl -s AUTH/_fake/script -d '{"account": "account-1", "endpoint": "daily",
       "answers": ["quota_429", {"kind": "hang", "after": 2}]}'
"""
)
"""The admin routes and the answer format, as `interlock fake-upstream --help` prints them."""


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
