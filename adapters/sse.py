"""Server-Sent Events, sans-IO: an incremental decoder, an encoder, and JSON chunk decoding.

This module owns SSE framing only (WHATWG HTML "server-sent events" parsing rules), for the
upstream's `streamGenerateContent?alt=sse` answers and for what we send to clients:

- `SSEDecoder` takes bytes split anywhere (inside a UTF-8 character, between `\\r` and `\\n`),
  accepts `\\n`, `\\r\\n` and `\\r` line endings, multi-line `data:`, `event:`, `id:`, comments and
  one optional space after the colon, and dispatches an event at each blank line. Unlike the
  JavaScript proxy (reference/seed-behaviour.md §4.4), `end()` delivers a last event that had no
  trailing blank line or newline (UPSTREAM.md). One event larger than `max_event_size` bytes
  raises `SSEError`, so memory stays bounded.
- `encode_sse` writes one event.
- `parse_json_event`, `decode_json_events` and `JsonStreamDecoder` turn events into JSON objects,
  unwrapping Cloud Code's `{"response": {...}}` envelope; data that is not a JSON object comes
  back as `Unparsed` (never silently dropped), and the caller decides what it means.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024
_EOL = re.compile(rb"\r\n|\r|\n")
_TEXT_EOL = re.compile(r"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"


class SSEError(ValueError):
    """The stream cannot be decoded (an event exceeded the size bound)."""


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its `event:` type (None when absent), its data, the last `id:`."""

    event: str | None
    data: str
    id: str | None = None


class SSEDecoder:
    """Incremental SSE decoder: `feed` bytes as they arrive, then `end` once at end of stream.

    The common case, a feed that holds whole `data: ...` events framed by `\n\n` (what Cloud
    Code sends), takes a fast path: the feed is split at event boundaries and each one-line
    event becomes an `SSEEvent` without going line by line. Anything else (a `\r`, several
    lines in one event, a field other than `data`, an event split across feeds, the start of
    the stream) goes through the line parser, which the fast path must always agree with
    (`fast=False` turns it off: the reference the tests compare with; `fast_events` counts the
    events it produced).

    After `SSEError` the decoder is unusable (the stream is broken).
    """

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE, fast: bool = True) -> None:
        if max_event_size <= 0:
            raise ValueError("max_event_size must be positive")
        self._fast = fast
        self.fast_events = 0
        self._max = max_event_size
        self._partial = bytearray()  # the current, not yet terminated line
        self._skip_lf = False  # the previous chunk ended in "\r": a leading "\n" belongs to it
        self._first_line = True
        self._size = 0  # bytes of the current event's complete lines
        self._event: str | None = None
        self._data: list[str] = []
        self._has_data = False
        self._last_id: str | None = None

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Decode `data` (any split of the stream) and return the events it completed."""
        if not data:
            return []
        if self._skip_lf and data[:1] == b"\n":
            data = data[1:]
        self._skip_lf = False
        events: list[SSEEvent] = []
        if self._fast:
            if not self._at_boundary():  # finish the event in progress line by line
                cut = data.find(b"\n\n")
                if cut >= 0:
                    self._lines(data[: cut + 2], events)
                    data = data[cut + 2 :]
            if self._at_boundary():
                data = self._whole_events(data, events)
        self._lines(data, events)
        return events

    def _at_boundary(self) -> bool:
        return not (self._partial or self._has_data or self._event is not None)

    def _lines(self, data: bytes, events: list[SSEEvent]) -> None:
        """The line parser (WHATWG's rules): every byte of `data`, line by line."""
        start = 0
        for match in _EOL.finditer(data):
            line = data[start : match.start()]
            if self._partial:
                self._partial += line
                line = bytes(self._partial)
                self._partial.clear()
            self._line(line, events)
            start = match.end()
        self._skip_lf = data.endswith(b"\r")
        self._partial += data[start:]
        self._check_size(len(self._partial))

    def _whole_events(self, data: bytes, events: list[SSEEvent]) -> bytes:
        """The fast path, at an event boundary: decode the leading whole one-line `data:`
        events of `data` and return the rest (from the first event it does not take)."""
        if self._first_line:
            if len(data) < len(_BOM):
                return data  # a byte order mark may still be split: the line parser decides
            data = data.removeprefix(_BOM)
            self._first_line = False
        start = 0
        while True:
            end = data.find(b"\n\n", start)
            if end < 0 or end - start >= self._max or data[start : start + 5] != b"data:":
                return data[start:]
            block = data[start + 5 : end]
            if b"\n" in block or b"\r" in block:
                return data[start:]
            if block[:1] == b" ":
                block = block[1:]
            events.append(SSEEvent(None, block.decode("utf-8", errors="replace"), self._last_id))
            self.fast_events += 1
            start = end + 2

    def end(self) -> list[SSEEvent]:
        """The stream ended: deliver the last event even without a trailing newline."""
        events: list[SSEEvent] = []
        if self._partial:
            line = bytes(self._partial)
            self._partial.clear()
            self._line(line, events)
        self._dispatch(events)
        self._skip_lf = False
        return events

    def _check_size(self, pending: int) -> None:
        if self._size + pending > self._max:
            raise SSEError(f"SSE event exceeds {self._max} bytes (no blank line within the limit)")

    def _line(self, raw: bytes, events: list[SSEEvent]) -> None:
        if self._first_line:
            self._first_line = False
            raw = raw.removeprefix(_BOM)
        if not raw:
            self._dispatch(events)
            return
        self._size += len(raw) + 1
        self._check_size(0)
        if raw[:1] == b":":
            return
        line = raw.decode("utf-8", errors="replace")
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        # "retry" and unknown fields are ignored, as the SSE specification says.

    def _dispatch(self, events: list[SSEEvent]) -> None:
        if self._has_data:
            data = "\n".join(self._data)
            events.append(SSEEvent(event=self._event or None, data=data, id=self._last_id))
        self._event = None
        self._data = []
        self._has_data = False
        self._size = 0


def encode_sse(event: str | None, data: str) -> bytes:
    """One SSE event: `event: X` (when given), one `data:` line per line of data, a blank line."""
    if event is not None and _TEXT_EOL.search(event):
        raise ValueError("an SSE event type cannot contain a line break")
    head = f"event: {event}\n" if event is not None else ""
    body = "".join(f"data: {line}\n" for line in _TEXT_EOL.split(data))
    return f"{head}{body}\n".encode()


@dataclass(frozen=True, slots=True)
class JsonChunk:
    """A JSON object from the stream (the inner object when it was `{"response": {...}}`)."""

    value: dict[str, Any]
    event: str | None = None


@dataclass(frozen=True, slots=True)
class Unparsed:
    """Event data (or one line of it) that is not a JSON object; `why` says what was wrong."""

    text: str
    why: str
    event: str | None = None


JsonResult = JsonChunk | Unparsed


def _unwrap(value: dict[str, Any]) -> dict[str, Any]:
    inner = value.get("response")
    return inner if isinstance(inner, dict) else value


def _parse_one(text: str, event: str | None) -> JsonResult:
    try:
        value = json.loads(text)
    except ValueError as exc:
        return Unparsed(text=text, why=f"not JSON: {exc}", event=event)
    if not isinstance(value, dict):
        return Unparsed(text=text, why=f"JSON {type(value).__name__}, not an object", event=event)
    return JsonChunk(value=_unwrap(value), event=event)


def parse_json_event(event: SSEEvent) -> list[JsonResult]:
    """The JSON objects of one event.

    The data is parsed as one JSON document (so a pretty-printed, multi-line object works); if
    that fails, each non-blank line is parsed on its own, as the JavaScript proxy does, so
    `data:` lines that were not separated by blank lines still yield one chunk each.
    """
    whole = _parse_one(event.data, event.event)
    if isinstance(whole, JsonChunk) or "\n" not in event.data:
        return [whole]
    return [_parse_one(line, event.event) for line in event.data.split("\n") if line.strip()]


def decode_json_events(events: Iterable[SSEEvent]) -> list[JsonResult]:
    """`parse_json_event` over several events, in order."""
    return [result for event in events for result in parse_json_event(event)]


class JsonStreamDecoder:
    """Bytes in, JSON results out: an `SSEDecoder` followed by `parse_json_event`."""

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self._sse = SSEDecoder(max_event_size=max_event_size)

    def feed(self, data: bytes) -> list[JsonResult]:
        return decode_json_events(self._sse.feed(data))

    def end(self) -> list[JsonResult]:
        return decode_json_events(self._sse.end())
