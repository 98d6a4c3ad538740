"""The incoming Anthropic ``POST /v1/messages`` body: validation with Anthropic-style error
messages (``messages.0.content.1.type: unknown block type 'foo'``) and the count_tokens estimate.
The request models live in ``messages`` and are re-exported here.

``max_tokens`` must be a positive integer; ``POST /v1/messages`` requires it, as Anthropic's API
does (``max_tokens_required``), while count_tokens bodies have none.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from adapters.convert.messages import (
    BLOCK_TYPES,
    Base64Source,
    ContentBlock,
    DocumentBlock,
    DocumentSource,
    ImageBlock,
    ImageSource,
    Message,
    MessagesRequest,
    PlainTextSource,
    PositiveInt,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingAdaptive,
    ThinkingBlock,
    ThinkingConfig,
    ThinkingDisabled,
    ThinkingEnabled,
    Tool,
    ToolChoice,
    ToolChoiceAny,
    ToolChoiceAuto,
    ToolChoiceNone,
    ToolChoiceTool,
    ToolResultBlock,
    ToolResultItem,
    ToolUseBlock,
    UrlSource,
)

__all__ = [
    "BLOCK_TYPES",
    "CHARS_PER_TOKEN",
    "DOCUMENT_TOKENS",
    "IMAGE_TOKENS",
    "MESSAGE_CHARS",
    "MESSAGE_OVERHEAD_TOKENS",
    "QUOTE_CHARS",
    "Base64Source",
    "ContentBlock",
    "DocumentBlock",
    "DocumentSource",
    "ImageBlock",
    "ImageSource",
    "Message",
    "MessagesRequest",
    "PlainTextSource",
    "PositiveInt",
    "RedactedThinkingBlock",
    "RequestError",
    "TextBlock",
    "ThinkingAdaptive",
    "ThinkingBlock",
    "ThinkingConfig",
    "ThinkingDisabled",
    "ThinkingEnabled",
    "Tool",
    "ToolChoice",
    "ToolChoiceAny",
    "ToolChoiceAuto",
    "ToolChoiceNone",
    "ToolChoiceTool",
    "ToolResultBlock",
    "ToolResultItem",
    "ToolUseBlock",
    "UrlSource",
    "bounded",
    "estimate_input_tokens",
    "parse_messages_request",
    "quote",
]


QUOTE_CHARS = 80
"""How much of one client-supplied value an error message quotes."""
MESSAGE_CHARS = 400
"""The longest error message: whatever a message quotes, the answer stays small."""


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """``repr`` of a client-supplied value, cut to ``limit`` characters with the length said."""
    text = str(value)
    if len(text) <= limit:
        return repr(text) if isinstance(value, str) else text
    return f"{text[:limit]!r}... ({len(text)} characters)"


def bounded(message: str, limit: int = MESSAGE_CHARS) -> str:
    """``message`` cut to ``limit`` characters (a net under `quote`)."""
    return message if len(message) <= limit else message[: limit - 3] + "..."


class RequestError(ValueError):
    """The client's request is malformed: HTTP 400 ``invalid_request_error`` with ``message``
    (at most ``MESSAGE_CHARS`` long)."""

    status = 400
    error_type = "invalid_request_error"

    def __init__(self, message: str) -> None:
        message = bounded(message)
        super().__init__(message)
        self.message = message


# --- parsing ----------------------------------------------------------------------------------

_TYPE_MESSAGES = {
    "missing": "field required",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be a boolean",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
}
_UNION_NAMES = {
    "_block_kind()": "block",
    "_source_kind()": "source",
    "_tool_choice_kind()": "tool_choice",
    "_thinking_kind()": "thinking",
    "_edit_kind()": "edit",
}


def _location(loc: Iterable[int | str]) -> list[str]:
    return [str(part) for part in loc if not (isinstance(part, str) and ":" in part)]


def _describe(error: ErrorDetails) -> tuple[list[str], str]:
    """The location (tags removed) and an Anthropic-style message for one pydantic error."""
    where = _location(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "union_tag_invalid":
        tag = str(ctx.get("tag", ""))
        union, _, value = tag.partition(":")
        if union == "block" and value in BLOCK_TYPES:
            return [*where, "type"], f"block type {quote(value)} is not allowed here"
        return [*where, "type"], f"unknown {union} type {quote(value)}"
    if kind == "union_tag_not_found":
        if str(ctx.get("discriminator", "")) not in _UNION_NAMES:
            return where, "must be a string or a list of content blocks"
        if not isinstance(error["input"], dict):
            return where, "must be an object"
        return [*where, "type"], "field required"
    if kind == "literal_error":
        return where, f"must be {ctx.get('expected', 'one of the allowed values')}"
    if kind == "positive_integer":
        return where, "must be a positive integer"
    if kind == "string_too_long":
        return where, f"must be at most {ctx.get('max_length')} characters"
    return where, _TYPE_MESSAGES.get(kind, error["msg"])


def _format(where: list[str], message: str) -> str:
    return f"{'.'.join(where)}: {message}" if where else message


def parse_messages_request(data: object, *, max_tokens_required: bool = False) -> MessagesRequest:
    """Validate a decoded JSON body; raise ``RequestError`` naming the first problem."""
    if not isinstance(data, dict):
        raise RequestError("request body must be a JSON object")
    try:
        request = MessagesRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestError(_format(*_describe(exc.errors()[0]))) from None
    if max_tokens_required and request.max_tokens is None:
        raise RequestError("max_tokens: field required")
    _check_consistency(request)
    return request


def _check_consistency(request: MessagesRequest) -> None:
    if not request.messages:
        raise RequestError("messages: must not be empty")
    for index, message in enumerate(request.messages):
        if message.role != "system" or isinstance(message.content, str):
            continue
        for position, block in enumerate(message.content):
            if not isinstance(block, TextBlock):
                raise RequestError(
                    f"messages.{index}.content.{position}.type: a system message holds text "
                    f"blocks only (got {quote(block.type)})"
                )
    names = [tool.name for tool in request.tools]
    for index, tool in enumerate(request.tools):
        if tool.type not in (None, "custom"):
            raise RequestError(
                f"tools.{index}.type: server tool {quote(tool.type)} is not supported (interlock's "
                "upstream runs client tools only)"
            )
    for index, name in enumerate(names):
        if not name:
            raise RequestError(f"tools.{index}.name: must not be empty")
        if name in names[:index]:
            raise RequestError(f"tools.{index}.name: tool names must be unique ({quote(name)})")
    choice = request.tool_choice
    if isinstance(choice, ToolChoiceTool) and choice.name not in names:
        raise RequestError(f"tool_choice.name: no tool named {quote(choice.name)} in tools")


# --- count_tokens -----------------------------------------------------------------------------

CHARS_PER_TOKEN = 4
"""The estimate counts about four characters of text (or compact JSON) per token."""
IMAGE_TOKENS = 1_600
"""Fixed cost of one image (Anthropic's documented ceiling for a ~1.15 megapixel image)."""
DOCUMENT_TOKENS = 3_000
"""Fixed cost of one binary or URL document (a few PDF pages); plain-text documents count text."""
MESSAGE_OVERHEAD_TOKENS = 4
"""Per message and per tool definition: role markers and framing."""


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _media_tokens(block: ImageBlock | DocumentBlock) -> tuple[int, str]:
    if isinstance(block, ImageBlock):
        return IMAGE_TOKENS, ""
    if isinstance(block.source, PlainTextSource):
        return 0, block.source.data
    return DOCUMENT_TOKENS, ""


def _block_cost(block: ContentBlock) -> tuple[int, str]:
    """(fixed tokens, text) for one block."""
    if isinstance(block, TextBlock):
        return 0, block.text
    if isinstance(block, ImageBlock | DocumentBlock):
        return _media_tokens(block)
    if isinstance(block, ToolUseBlock):
        return 0, block.name + _json(block.input)
    if isinstance(block, ThinkingBlock):
        return 0, block.thinking
    if isinstance(block, RedactedThinkingBlock):
        return 0, block.data
    if isinstance(block.content, str):
        return 0, block.content
    fixed, texts = 0, []
    for item in block.content:
        cost, text = (0, item.text) if isinstance(item, TextBlock) else _media_tokens(item)
        fixed += cost
        texts.append(text)
    return fixed, "\n".join(texts)


def estimate_input_tokens(req: MessagesRequest) -> int:
    """A heuristic input-token count for ``/v1/messages/count_tokens``: every character of
    system text, message text, thinking, tool calls (name + compact JSON input), tool results and
    tool definitions (name + description + compact JSON schema), divided by ``CHARS_PER_TOKEN``
    and rounded up; plus ``IMAGE_TOKENS`` per image, ``DOCUMENT_TOKENS`` per binary document and
    ``MESSAGE_OVERHEAD_TOKENS`` per message and per tool. Never less than 1."""
    chars = sum(len(text) for text in req.system_texts())
    fixed = 0
    for message in req.messages:
        fixed += MESSAGE_OVERHEAD_TOKENS
        for block in message.blocks():
            cost, text = _block_cost(block)
            fixed += cost
            chars += len(text)
    for tool in req.tools:
        fixed += MESSAGE_OVERHEAD_TOKENS
        chars += len(tool.name) + len(tool.description) + len(_json(tool.input_schema))
    return max(1, fixed + math.ceil(chars / CHARS_PER_TOKEN))
