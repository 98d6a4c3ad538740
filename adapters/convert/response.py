"""Cloud Code answer -> Anthropic: the streaming event translator (seed §5.8), the non-streaming
message (§5.7) and the synthetic placeholder answer (§5.9.3).

``StreamTranslator`` is a small state machine fed one upstream chunk at a time. It holds
``message_start`` back until a chunk with non-empty ``parts`` arrives, so an empty stream emits
nothing and stays retryable. Fixes over the seed: ``stop_reason`` is ``tool_use`` whenever the
answer contains a tool call (even with ``finishReason: STOP``, and over ``MAX_TOKENS``: a
complete functionCall must be answered); ``message_delta`` usage carries ``input_tokens``; tool
names are mapped back to the client's; signature-only parts attach to the open thinking block;
thinking blocks always carry a ``signature`` (empty until one arrives), as the SDKs' types
require; ``display: omitted`` keeps thinking blocks and their signatures but not their text.

Stop reasons: ``tool_use`` for any tool call, ``max_tokens`` for ``MAX_TOKENS``, ``refusal`` for
Google's safety and recitation stops, and ``stop_sequence`` (with the sequence) when the answer's
text ends with one of the request's ``stop_sequences``. Google reports a stop sequence only as
``STOP`` and leaves the sequence out of the text, so when the upstream strips it interlock cannot
tell it from a natural end and reports ``end_turn``.
``to_message`` folds the same events into one message, so both paths agree by construction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from adapters.convert.family import model_family
from adapters.convert.ids import IdFactory, random_id
from adapters.convert.signatures import SignatureCache, is_valid_signature
from adapters.convert.toolnames import ToolNameMap

JsonObject = dict[str, Any]

PLACEHOLDER_TEXT = "[No response after retries - please try again]"
REFUSAL_REASONS = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
)
"""Google finish reasons that mean the model declined: Anthropic's ``refusal``."""


class StreamTranslator:
    """Upstream chunks in (already unwrapped from ``{"response": ...}``; a wrapped chunk is
    unwrapped too), Anthropic SSE event payloads out.

    ``model`` is the name reported to the client; ``upstream_model`` (default: ``model``) decides
    the family recorded for the signatures this answer produces."""

    def __init__(
        self,
        model: str,
        tool_names: ToolNameMap,
        signatures: SignatureCache,
        now: float,
        *,
        ids: IdFactory = random_id,
        upstream_model: str | None = None,
        stop_sequences: Sequence[str] = (),
        omit_thinking: bool = False,
    ) -> None:
        self.model = model
        self._stop_sequences = tuple(s for s in stop_sequences if s)
        self._tail_chars = max((len(s) for s in self._stop_sequences), default=0)
        self._tail = ""  # the answer's last text, as long as the longest stop sequence
        self._omit_thinking = omit_thinking
        self._names = tool_names
        self._signatures = signatures
        self._now = now
        self._ids = ids
        self._family = model_family(upstream_model or model)
        self.started = False
        self.finished = False
        self.message_id: str | None = None
        self._index = 0
        self._block: str | None = None
        self._pending_signature: str | None = None
        self._saw_tool_use = False
        self._finish_reason: str | None = None
        self._prompt = 0
        self._output = 0
        self._cached = 0

    # --- public API -----------------------------------------------------------------------

    def feed(self, chunk: JsonObject) -> list[JsonObject]:
        """Events for one upstream chunk (none until the first chunk with parts)."""
        if self.finished or not isinstance(chunk, dict):
            return []
        inner = chunk.get("response")
        if isinstance(inner, dict):
            chunk = inner
        self._read_usage(chunk.get("usageMetadata"))
        candidates = chunk.get("candidates")
        candidate = candidates[0] if isinstance(candidates, list) and candidates else {}
        candidate = candidate if isinstance(candidate, dict) else {}
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        events: list[JsonObject] = []
        if isinstance(parts, list) and parts:
            if not self.started:
                events.append(self._message_start())
            for part in parts:
                if isinstance(part, dict):
                    events += self._part(part)
        reason = candidate.get("finishReason")
        if isinstance(reason, str) and reason and self._finish_reason is None:
            self._finish_reason = reason
        return events

    def finish(self) -> list[JsonObject]:
        """Closing events; empty if nothing was ever started (or already finished)."""
        if self.finished:
            return []
        self.finished = True
        if not self.started:
            return []
        events = self._close_block()
        events.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence},
                "usage": self.usage(),
            }
        )
        events.append({"type": "message_stop"})
        return events

    @property
    def stop_reason(self) -> str:
        if self._saw_tool_use:
            return "tool_use"
        if self._finish_reason == "MAX_TOKENS":
            return "max_tokens"
        if self._finish_reason in REFUSAL_REASONS:
            return "refusal"
        return "stop_sequence" if self.stop_sequence is not None else "end_turn"

    @property
    def stop_sequence(self) -> str | None:
        """The request's stop sequence the answer ended with, when the text shows it."""
        if self._saw_tool_use or self._finish_reason not in (None, "STOP"):
            return None
        return next((s for s in self._stop_sequences if self._tail.endswith(s)), None)

    def usage(self) -> JsonObject:
        """Usage known so far: input excludes the cached prompt tokens, reported separately."""
        return {
            "input_tokens": max(0, self._prompt - self._cached),
            "output_tokens": self._output,
            "cache_read_input_tokens": self._cached,
            "cache_creation_input_tokens": 0,
        }

    # --- chunk parts ----------------------------------------------------------------------

    def _read_usage(self, usage: object) -> None:
        if not isinstance(usage, dict):
            return
        prompt, output, cached = (
            usage.get(key)
            for key in ("promptTokenCount", "candidatesTokenCount", "cachedContentTokenCount")
        )
        self._prompt = prompt if isinstance(prompt, int) and prompt else self._prompt
        self._output = output if isinstance(output, int) and output else self._output
        self._cached = cached if isinstance(cached, int) and cached else self._cached

    def _message_start(self) -> JsonObject:
        self.started = True
        self.message_id = self._ids("msg")
        usage = self.usage()
        message: JsonObject = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self.model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        return {"type": "message_start", "message": message}

    def _part(self, part: JsonObject) -> list[JsonObject]:
        signature = part.get("thoughtSignature")
        signature = signature if isinstance(signature, str) and signature else None
        call = part.get("functionCall")
        if isinstance(call, dict):
            return self._tool_use(call, signature)
        data = part.get("inlineData")
        if isinstance(data, dict):
            return self._image(data)
        text = part.get("text")
        text = text if isinstance(text, str) else ""
        if part.get("thought") is True:
            return self._thinking(text, signature)
        # A signature-only part, or text carrying the signature of the thought before it,
        # belongs to the open thinking block (elsewhere there is no block to carry it).
        if (
            signature is not None
            and self._block == "thinking"
            and (not text or self._pending_signature is None)
        ):
            self._remember_signature(signature)
        return self._text(text) if text else []

    def _remember_signature(self, signature: str) -> None:
        if is_valid_signature(signature):
            self._pending_signature = signature
            self._signatures.remember_family(signature, self._family, self._now)

    def _thinking(self, text: str, signature: str | None) -> list[JsonObject]:
        events: list[JsonObject] = []
        if self._block != "thinking":
            events += self._close_block()
            block = {"type": "thinking", "thinking": "", "signature": ""}
            events.append(self._start(block, "thinking"))
        if signature is not None:
            self._remember_signature(signature)
        if not self._omit_thinking:
            events.append(self._delta({"type": "thinking_delta", "thinking": text}))
        return events

    def _text(self, text: str) -> list[JsonObject]:
        if self._tail_chars:
            self._tail = (self._tail + text)[-self._tail_chars :]
        events: list[JsonObject] = []
        if self._block != "text":
            events += self._close_block()
            events.append(self._start({"type": "text", "text": ""}, "text"))
        events.append(self._delta({"type": "text_delta", "text": text}))
        return events

    def _tool_use(self, call: JsonObject, signature: str | None) -> list[JsonObject]:
        name = call.get("name")
        args = call.get("args")
        if name is not None and name == self._names.answer_tool:  # structured output: the answer
            answer = args if isinstance(args, dict) else {}
            return self._text(json.dumps(answer, separators=(",", ":"), ensure_ascii=False))
        events = self._close_block()
        call_id = call.get("id")
        tool_id = call_id if isinstance(call_id, str) and call_id else self._ids("toolu")
        block: JsonObject = {
            "type": "tool_use",
            "id": tool_id,
            "name": self._names.to_client(name if isinstance(name, str) else ""),
            "input": {},
        }
        if signature is not None:
            block["thoughtSignature"] = signature
            if is_valid_signature(signature):
                self._signatures.remember_tool_signature(tool_id, signature, self._now)
                self._signatures.remember_family(signature, self._family, self._now)
        events.append(self._start(block, "tool_use"))
        partial = json.dumps(
            args if isinstance(args, dict) else {}, separators=(",", ":"), ensure_ascii=False
        )
        events.append(self._delta({"type": "input_json_delta", "partial_json": partial}))
        self._saw_tool_use = True
        return events

    def _image(self, data: JsonObject) -> list[JsonObject]:
        events = self._close_block()
        source = {
            "type": "base64",
            "media_type": data.get("mimeType", "image/png"),
            "data": data.get("data", ""),
        }
        events.append(self._start({"type": "image", "source": source}, "image"))
        events += self._close_block()
        return events

    # --- blocks ---------------------------------------------------------------------------

    def _start(self, block: JsonObject, kind: str) -> JsonObject:
        self._block = kind
        return {"type": "content_block_start", "index": self._index, "content_block": block}

    def _delta(self, delta: JsonObject) -> JsonObject:
        return {"type": "content_block_delta", "index": self._index, "delta": delta}

    def _close_block(self) -> list[JsonObject]:
        """Flush a pending thinking signature, then stop the open block (if any)."""
        if self._block is None:
            return []
        events: list[JsonObject] = []
        if self._block == "thinking" and self._pending_signature is not None:
            events.append(
                self._delta({"type": "signature_delta", "signature": self._pending_signature})
            )
            self._pending_signature = None
        events.append({"type": "content_block_stop", "index": self._index})
        self._index += 1
        self._block = None
        return events


def to_message(
    chunks: list[JsonObject],
    *,
    model: str,
    tool_names: ToolNameMap,
    signatures: SignatureCache,
    now: float,
    ids: IdFactory = random_id,
    upstream_model: str | None = None,
    stop_sequences: Sequence[str] = (),
    omit_thinking: bool = False,
) -> JsonObject:
    """The non-streaming Anthropic message for a whole upstream answer (SSE chunks or one unary
    response). Consecutive thought parts form one thinking block (last signature wins),
    consecutive text parts one text block; no content at all gives ``[{type: text, text: ""}]``."""
    translator = StreamTranslator(
        model,
        tool_names,
        signatures,
        now,
        ids=ids,
        upstream_model=upstream_model,
        stop_sequences=stop_sequences,
        omit_thinking=omit_thinking,
    )
    events: list[JsonObject] = []
    for chunk in chunks:
        events += translator.feed(chunk)
    events += translator.finish()
    content = _fold_blocks(events)
    return {
        "id": translator.message_id or ids("msg"),
        "type": "message",
        "role": "assistant",
        "content": content or [{"type": "text", "text": ""}],
        "model": model,
        "stop_reason": translator.stop_reason,
        "stop_sequence": translator.stop_sequence,
        "usage": translator.usage(),
    }


def _fold_blocks(events: list[JsonObject]) -> list[JsonObject]:
    blocks: dict[int, JsonObject] = {}
    partial_json: dict[int, str] = {}
    for event in events:
        index = event.get("index")
        if event["type"] == "content_block_start" and isinstance(index, int):
            blocks[index] = dict(event["content_block"])
        elif event["type"] == "content_block_delta" and isinstance(index, int):
            delta = event["delta"]
            block = blocks[index]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            elif delta["type"] == "input_json_delta":
                partial_json[index] = partial_json.get(index, "") + delta["partial_json"]
    for index, text in partial_json.items():
        blocks[index]["input"] = json.loads(text) if text else {}
    return [blocks[index] for index in sorted(blocks)]


def placeholder_events(model: str, *, ids: IdFactory = random_id) -> list[JsonObject]:
    """The synthetic answer of seed §5.9.3 (sent only when configured, after empty streams)."""
    message: JsonObject = {
        "id": ids("msg"),
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": model,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }
    return [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": PLACEHOLDER_TEXT},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 0},
        },
        {"type": "message_stop"},
    ]
