"""Thinking recovery for tool loops (seed §5.4): when thinking is on and the last assistant turn
is part of an open tool loop (or an interrupted tool call) but carries no thinking block the
target model will accept, close the loop with synthetic messages so the model starts a fresh,
thinking turn instead of rejecting the history.

Unlike the seed, "will accept" is decided with the same rule the converter uses to keep thinking
blocks (valid signature *and* produced by the target family), for both families, so a history
whose signatures this process no longer knows (e.g. after a restart) is recovered instead of
failing upstream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from adapters.convert.messages import (
    ContentBlock,
    Message,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)

INTERRUPTED_TEXT = "[Tool call was interrupted.]"
CONTINUE_TEXT = "[Continue]"


def completed_text(count: int) -> str:
    if count == 1:
        return "[Tool execution completed.]"
    return f"[{count} tool executions completed.]"


@dataclass(frozen=True)
class LoopState:
    """Where the conversation stands relative to its last assistant turn."""

    last_assistant: int | None
    in_tool_loop: bool
    interrupted_tool: bool
    tool_results: int


def analyse(messages: list[Message]) -> LoopState:
    last = next(
        (i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "assistant"), None
    )
    if last is None:
        return LoopState(None, False, False, 0)
    has_tool_use = any(isinstance(b, ToolUseBlock) for b in messages[last].blocks())
    later = [block for message in messages[last + 1 :] for block in message.blocks()]
    results = sum(isinstance(block, ToolResultBlock) for block in later)
    plain_user = any(
        message.role == "user"
        and any(not isinstance(block, ToolResultBlock) for block in message.blocks())
        for message in messages[last + 1 :]
    )
    return LoopState(
        last_assistant=last,
        in_tool_loop=has_tool_use and results > 0,
        interrupted_tool=has_tool_use and results == 0 and plain_user,
        tool_results=results,
    )


def recover_tool_loop(
    messages: list[Message], keeps_thinking: Callable[[ThinkingBlock], bool]
) -> list[Message]:
    """The messages, with the tool loop closed if the last assistant turn needs it."""
    state = analyse(messages)
    if state.last_assistant is None or not (state.in_tool_loop or state.interrupted_tool):
        return messages
    last = messages[state.last_assistant]
    if any(isinstance(b, ThinkingBlock) and keeps_thinking(b) for b in last.blocks()):
        return messages
    cleaned = [_strip_thinking(message, keeps_thinking) for message in messages]
    if state.interrupted_tool:
        insert_at = state.last_assistant + 1
        return [*cleaned[:insert_at], _assistant(INTERRUPTED_TEXT), *cleaned[insert_at:]]
    return [
        *cleaned,
        _assistant(completed_text(state.tool_results)),
        Message(role="user", content=[TextBlock(type="text", text=CONTINUE_TEXT)]),
    ]


def _assistant(text: str) -> Message:
    return Message(role="assistant", content=[TextBlock(type="text", text=text)])


def _strip_thinking(message: Message, keeps: Callable[[ThinkingBlock], bool]) -> Message:
    if message.role != "assistant" or isinstance(message.content, str):
        return message
    kept: list[ContentBlock] = [
        b for b in message.content if not isinstance(b, ThinkingBlock) or keeps(b)
    ]
    if len(kept) == len(message.content):
        return message
    return Message(role="assistant", content=kept or [TextBlock(type="text", text=".")])
