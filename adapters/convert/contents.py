"""Anthropic messages -> Cloud Code ``contents`` (seed §5.2 step 5 and the §5.3 table).

Per message: assistant blocks are filtered and reordered (thinking first, tool calls last, blank
text dropped), every block becomes zero or more parts, media found inside tool results go after
all other parts of the message, and a message left without parts becomes ``[{"text": "."}]``.
Consecutive messages of one role are not merged (the seed does not either).

Fixes over the seed: ``functionResponse.name`` is the *function* name (looked up from the
``tool_use`` with that id), ``is_error`` is kept as ``response: {"error": ...}`` (Google's
documented key for a failed call) instead of ``{"result": ...}``, and tool names go through the
request's ``ToolNameMap``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.convert.family import Family
from adapters.convert.messages import (
    Base64Source,
    ContentBlock,
    DocumentBlock,
    ImageBlock,
    Message,
    PlainTextSource,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UrlSource,
)
from adapters.convert.signatures import SignatureCache, is_valid_signature
from adapters.convert.toolnames import ToolNameMap, sanitize_tool_name

JsonObject = dict[str, Any]

GEMINI_SKIP_SIGNATURE = "skip_thought_signature_validator"
"""Sentinel ``thoughtSignature`` for Gemini functionCall parts whose real signature is unknown."""
EMPTY_MESSAGE_TEXT = "."


@dataclass(frozen=True)
class PartContext:
    """What block conversion needs to know about the request being built."""

    family: Family
    thinking_on: bool
    tool_names: ToolNameMap
    tool_use_names: dict[str, str]
    """tool_use id -> the client's function name, collected over the whole conversation."""
    signatures: SignatureCache
    now: float

    def keeps_thinking(self, block: ThinkingBlock) -> bool:
        """Replay a thinking block only while thinking is on, when its signature is real and
        was produced by the family we are sending to (cross-model filtering, seed §5.3)."""
        return (
            self.thinking_on
            and is_valid_signature(block.signature)
            and self.signatures.family_of(block.signature, self.now) == self.family
        )


def tool_use_names(messages: list[Message]) -> dict[str, str]:
    return {
        block.id: block.name
        for message in messages
        for block in message.blocks()
        if isinstance(block, ToolUseBlock)
    }


def convert_messages(messages: list[Message], ctx: PartContext) -> list[JsonObject]:
    return [convert_message(message, ctx) for message in messages]


def convert_message(message: Message, ctx: PartContext) -> JsonObject:
    blocks = message.blocks()
    if message.role == "assistant":
        blocks = order_assistant_blocks(blocks, ctx)
    parts: list[JsonObject] = []
    trailing: list[JsonObject] = []
    for block in blocks:
        parts += block_parts(block, ctx, trailing)
    parts += trailing
    return {
        "role": "model" if message.role == "assistant" else "user",
        "parts": parts or [{"text": EMPTY_MESSAGE_TEXT}],
    }


def order_assistant_blocks(blocks: list[ContentBlock], ctx: PartContext) -> list[ContentBlock]:
    """Kept thinking first, then text and other blocks, then tool calls; blank text and
    thinking the target would reject are dropped."""
    thinking: list[ContentBlock] = []
    middle: list[ContentBlock] = []
    calls: list[ContentBlock] = []
    for block in blocks:
        if isinstance(block, ThinkingBlock):
            if ctx.keeps_thinking(block):
                thinking.append(block)
        elif isinstance(block, RedactedThinkingBlock):
            continue
        elif isinstance(block, ToolUseBlock):
            calls.append(block)
        elif not (isinstance(block, TextBlock) and not block.text.strip()):
            middle.append(block)
    return thinking + middle + calls


def block_parts(
    block: ContentBlock, ctx: PartContext, trailing: list[JsonObject]
) -> list[JsonObject]:
    """The parts for one block; media inside tool results are appended to ``trailing``."""
    if isinstance(block, TextBlock):
        return [{"text": block.text}] if block.text.strip() else []
    if isinstance(block, ImageBlock | DocumentBlock):
        return [media_part(block)]
    if isinstance(block, ToolUseBlock):
        return [_function_call(block, ctx)]
    if isinstance(block, ToolResultBlock):
        return [_function_response(block, ctx, trailing)]
    if isinstance(block, ThinkingBlock) and ctx.keeps_thinking(block):
        return [{"text": block.thinking, "thought": True, "thoughtSignature": block.signature}]
    return []


def media_part(block: ImageBlock | DocumentBlock) -> JsonObject:
    source = block.source
    default_type = "image/jpeg" if isinstance(block, ImageBlock) else "application/pdf"
    if isinstance(source, Base64Source):
        return {"inlineData": {"mimeType": source.media_type, "data": source.data}}
    if isinstance(source, UrlSource):
        return {"fileData": {"mimeType": source.media_type or default_type, "fileUri": source.url}}
    return {"text": source.data}


def _function_call(block: ToolUseBlock, ctx: PartContext) -> JsonObject:
    call: JsonObject = {"name": ctx.tool_names.add(block.name), "args": block.input}
    if ctx.family == "claude":
        call["id"] = block.id
    part: JsonObject = {"functionCall": call}
    if ctx.family == "gemini":
        part["thoughtSignature"] = (
            block.thought_signature
            or ctx.signatures.tool_signature(block.id, ctx.now)
            or GEMINI_SKIP_SIGNATURE
        )
    return part


def _function_response(
    block: ToolResultBlock, ctx: PartContext, trailing: list[JsonObject]
) -> JsonObject:
    function = ctx.tool_use_names.get(block.tool_use_id)
    if function is not None:
        name = ctx.tool_names.add(function)
    else:  # unknown id: the seed's behaviour (the id as name), made a legal name
        name = sanitize_tool_name(block.tool_use_id)
    text = _result_text(block, trailing)
    response: JsonObject = {"error": text} if block.is_error else {"result": text}
    payload: JsonObject = {"name": name, "response": response}
    if ctx.family == "claude":
        payload["id"] = block.tool_use_id
    return {"functionResponse": payload}


def _result_text(block: ToolResultBlock, trailing: list[JsonObject]) -> str:
    """Text items joined by newlines; media moved to ``trailing`` (``Image attached`` /
    ``Document attached`` when there is no text at all)."""
    if isinstance(block.content, str):
        return block.content
    texts: list[str] = []
    media: list[str] = []
    for item in block.content:
        if isinstance(item, TextBlock):
            texts.append(item.text)
        elif isinstance(item.source, PlainTextSource):
            texts.append(item.source.data)
        else:
            trailing.append(media_part(item))
            media.append("Image" if isinstance(item, ImageBlock) else "Document")
    if texts:
        return "\n".join(texts)
    if media:
        kinds = sorted(set(media))
        return f"{kinds[0]} attached" if len(kinds) == 1 else "Image and document attached"
    return ""
