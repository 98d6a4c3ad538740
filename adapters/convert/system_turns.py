"""Mid-conversation ``system`` messages -> text in the user turns around them.

Claude Code 2.1.x sends a ``role: "system"`` message inside ``messages`` (beta
``mid-conversation-system-2026-04-07``) for its default model and for Gemini models. Cloud Code
knows two roles (``user``, ``model``) and requires every function call to be answered by the very
next turn, so a system message cannot stay a turn of its own. It is folded, in place, into the
nearest user turn, as one text block per system message, wrapped so the model can tell it from
what the user wrote:

    <system_message>
    ...the system text...
    </system_message>

- into the **next** user message, after that message's leading ``tool_result`` blocks (a tool
  result must directly answer its call) and before the rest of its content;
- when no user message follows directly (the next turn is the assistant's, or the system message
  is last), at the end of the **previous** user message;
- when neither neighbour is a user message, it becomes a user turn of its own.

Several system messages in a row fold into the same user turn, in order. The request's top-level
``system`` stays the system instruction; only mid-conversation ones move.
"""

from __future__ import annotations

from adapters.convert.messages import ContentBlock, Message, TextBlock, ToolResultBlock

OPEN_TAG = "<system_message>"
CLOSE_TAG = "</system_message>"


def system_text_block(message: Message) -> TextBlock:
    """The wrapped text of one system message (its text blocks joined by blank lines)."""
    text = "\n\n".join(block.text for block in message.blocks() if isinstance(block, TextBlock))
    return TextBlock(type="text", text=f"{OPEN_TAG}\n{text}\n{CLOSE_TAG}")


def _prepend(message: Message, blocks: list[TextBlock]) -> Message:
    """`blocks` after the message's leading tool results, before everything else."""
    content = message.blocks()
    split = 0
    while split < len(content) and isinstance(content[split], ToolResultBlock):
        split += 1
    merged: list[ContentBlock] = [*content[:split], *blocks, *content[split:]]
    return Message(role=message.role, content=merged)


def _append(message: Message, blocks: list[TextBlock]) -> Message:
    merged: list[ContentBlock] = [*message.blocks(), *blocks]
    return Message(role=message.role, content=merged)


def fold_system_messages(messages: list[Message]) -> list[Message]:
    """The conversation with only user and assistant turns (unchanged when it has no system
    message, so the common case allocates nothing)."""
    if all(message.role != "system" for message in messages):
        return messages
    out: list[Message] = []
    waiting: list[TextBlock] = []  # system texts looking for a user turn
    for message in messages:
        if message.role == "system":
            waiting.append(system_text_block(message))
            continue
        if waiting and message.role == "user":
            out.append(_prepend(message, waiting))
            waiting = []
            continue
        if waiting:
            _flush_backwards(out, waiting)
            waiting = []
        out.append(message)
    if waiting:
        _flush_backwards(out, waiting)
    return out


def _flush_backwards(out: list[Message], waiting: list[TextBlock]) -> None:
    """No user turn follows: the previous user turn takes the texts, else a turn of their own."""
    if out and out[-1].role == "user":
        out[-1] = _append(out[-1], waiting)
    else:
        content: list[ContentBlock] = list(waiting)
        out.append(Message(role="user", content=content))
