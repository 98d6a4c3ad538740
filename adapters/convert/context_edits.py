"""``context_management.edits``: the server-side context edits Claude Code asks for, applied
before conversion (the upstream has no such feature, so interlock performs them itself).

- ``clear_thinking_20251015``: thinking and redacted thinking are dropped from every assistant
  turn but the last ``keep`` turns that have any (``keep: "all"``, Claude Code's default, keeps
  everything).
- ``clear_tool_uses_20250919``: when the request's estimated input passes ``trigger`` tokens, the
  results of all tool uses but the last ``keep`` are replaced by ``CLEARED_RESULT`` (and their
  inputs by ``{}`` with ``clear_tool_inputs``), oldest first; tools named in ``exclude_tools``
  are never cleared. With ``clear_at_least``, nothing is cleared unless that many tokens can be.
"""

from __future__ import annotations

import math

from adapters.convert.anthropic import CHARS_PER_TOKEN, estimate_input_tokens
from adapters.convert.messages import (
    ClearThinkingEdit,
    ClearToolUsesEdit,
    ContentBlock,
    Message,
    MessagesRequest,
    RedactedThinkingBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)

CLEARED_RESULT = "[tool result cleared to save context]"


def apply_context_edits(req: MessagesRequest, messages: list[Message]) -> list[Message]:
    """`messages` after the request's edits, in the order given."""
    if req.context_management is None:
        return messages
    for edit in req.context_management.edits:
        if isinstance(edit, ClearThinkingEdit):
            messages = clear_thinking(messages, edit)
        else:
            messages = clear_tool_uses(req, messages, edit)
    return messages


def _is_thinking(block: ContentBlock) -> bool:
    return isinstance(block, ThinkingBlock | RedactedThinkingBlock)


def clear_thinking(messages: list[Message], edit: ClearThinkingEdit) -> list[Message]:
    if edit.keep == "all":
        return messages
    with_thinking = [
        i
        for i, m in enumerate(messages)
        if m.role == "assistant" and any(_is_thinking(b) for b in m.blocks())
    ]
    cleared = set(with_thinking[: max(0, len(with_thinking) - edit.keep.value)])
    if not cleared:
        return messages
    return [
        m.model_copy(update={"content": [b for b in m.blocks() if not _is_thinking(b)]})
        if i in cleared
        else m
        for i, m in enumerate(messages)
    ]


def _result_tokens(block: ToolResultBlock) -> int:
    if isinstance(block.content, str):
        return math.ceil(len(block.content) / CHARS_PER_TOKEN)
    return sum(
        math.ceil(len(getattr(item, "text", "")) / CHARS_PER_TOKEN) for item in block.content
    )


def clear_tool_uses(
    req: MessagesRequest, messages: list[Message], edit: ClearToolUsesEdit
) -> list[Message]:
    if estimate_input_tokens(req.model_copy(update={"messages": messages})) <= edit.trigger.value:
        return messages
    calls = [b for m in messages for b in m.blocks() if isinstance(b, ToolUseBlock)]
    kept = calls[len(calls) - edit.keep.value :] if edit.keep.value else []
    keep_ids = {b.id for b in kept} | {b.id for b in calls if b.name in edit.exclude_tools}
    clear_ids = {b.id for b in calls} - keep_ids
    results = {
        b.tool_use_id: b
        for m in messages
        for b in m.blocks()
        if isinstance(b, ToolResultBlock) and b.tool_use_id in clear_ids
    }
    freed = sum(_result_tokens(b) for b in results.values())
    if not clear_ids or (edit.clear_at_least and freed < edit.clear_at_least.value):
        return messages

    def edited(block: ContentBlock) -> ContentBlock:
        if isinstance(block, ToolResultBlock) and block.tool_use_id in clear_ids:
            return block.model_copy(update={"content": CLEARED_RESULT})
        if edit.clear_tool_inputs and isinstance(block, ToolUseBlock) and block.id in clear_ids:
            return block.model_copy(update={"input": {}})
        return block

    return [
        m
        if isinstance(m.content, str)
        else m.model_copy(update={"content": [edited(b) for b in m.content]})
        for m in messages
    ]
