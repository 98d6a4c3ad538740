"""Validation of incoming /v1/messages bodies and the count_tokens estimate."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.convert.anthropic import (
    CHARS_PER_TOKEN,
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD_TOKENS,
    RequestError,
    ThinkingDisabled,
    ToolUseBlock,
    estimate_input_tokens,
    parse_messages_request,
)

HI = [{"role": "user", "content": "hi"}]


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-6", "messages": HI, **fields}


MALFORMED: list[tuple[object, str]] = [
    ([], "request body must be a JSON object"),
    ({"messages": HI}, "model: field required"),
    ({"model": "m"}, "messages: field required"),
    (body(messages=[]), "messages: must not be empty"),
    (body(messages="hi"), "messages: must be a list"),
    (
        body(
            messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "foo"}]}]
        ),
        "messages.0.content.1.type: unknown block type 'foo'",
    ),
    (
        body(messages=[{"role": "user", "content": [{"text": "a"}]}]),
        "messages.0.content.0.type: field required",
    ),
    (body(messages=[{"role": "user", "content": [7]}]), "messages.0.content.0: must be an object"),
    (
        body(messages=[{"role": "user", "content": [{"type": "text"}]}]),
        "messages.0.content.0.text: field required",
    ),
    (
        body(messages=[{"role": "tool", "content": "x"}]),
        "messages.0.role: must be 'user', 'assistant' or 'system'",
    ),
    (
        body(messages=[{"role": "user", "content": 3}]),
        "messages.0.content: must be a string or a list of content blocks",
    ),
    (body(messages=[{"role": "user"}]), "messages.0.content: field required"),
    (body(max_tokens=0), "max_tokens: must be a positive integer"),
    (body(max_tokens=-5), "max_tokens: must be a positive integer"),
    (body(max_tokens="100"), "max_tokens: must be a positive integer"),
    (body(max_tokens=True), "max_tokens: must be a positive integer"),
    (body(max_tokens=1.5), "max_tokens: must be a positive integer"),
    (body(temperature="warm"), "temperature: must be a number"),
    (body(stream="yes"), "stream: must be a boolean"),
    (body(stop_sequences=["ok", 3]), "stop_sequences.1: must be a string"),
    (
        body(tool_choice={"type": "sometimes"}),
        "tool_choice.type: unknown tool_choice type 'sometimes'",
    ),
    (body(tool_choice={"type": "tool"}), "tool_choice.name: field required"),
    (
        body(tool_choice={"type": "tool", "name": "Bash"}),
        "tool_choice.name: no tool named 'Bash' in tools",
    ),
    (body(thinking={"type": "on"}), "thinking.type: unknown thinking type 'on'"),
    (
        body(thinking={"type": "enabled", "budget_tokens": 0}),
        "thinking.budget_tokens: must be a positive integer",
    ),
    (body(tools=[{"description": "no name"}]), "tools.0.name: field required"),
    (
        body(tools=[{"name": "A"}, {"name": "A"}]),
        "tools.1.name: tool names must be unique ('A')",
    ),
    (body(system=[{"type": "image"}]), "system.0.type: must be 'text'"),
    (
        body(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                }
            ]
        ),
        "messages.0.content.0.source.type: unknown source type 'file'",
    ),
    (
        body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "content": [{"type": "thinking", "thinking": "x"}],
                        }
                    ],
                }
            ]
        ),
        "messages.0.content.0.content.0.type: block type 'thinking' is not allowed here",
    ),
    (
        body(messages=[{"role": "assistant", "content": [{"type": "tool_use", "id": "t"}]}]),
        "messages.0.content.0.name: field required",
    ),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED, ids=[m for _, m in MALFORMED])
def test_malformed_body_is_rejected_with_a_message_naming_the_field(
    data: object, message: str
) -> None:
    with pytest.raises(RequestError) as caught:
        parse_messages_request(data)
    assert caught.value.message == message
    assert caught.value.status == 400
    assert caught.value.error_type == "invalid_request_error"


def test_unknown_fields_are_accepted_and_ignored_at_every_level() -> None:
    req = parse_messages_request(
        body(
            service_tier="auto",
            context_management={"edits": []},
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "q", "cache_control": {"type": "ephemeral"}},
                    ],
                    "future": 1,
                }
            ],
            tools=[{"name": "A", "input_schema": {"type": "object"}, "cache_control": {}}],
        )
    )
    assert req.messages[0].blocks()[0].model_dump() == {"type": "text", "text": "q"}


def test_full_request_parses_into_typed_fields() -> None:
    req = parse_messages_request(
        body(
            max_tokens=1000,
            stream=True,
            system=[{"type": "text", "text": "S1"}, {"type": "text", "text": "S2"}],
            temperature=1,
            top_p=0.9,
            top_k=40,
            stop_sequences=["X"],
            metadata={"user_id": "u"},
            thinking={"type": "disabled"},
            tools=[{"name": "Bash", "input_schema": {"type": "object"}}],
            tool_choice={"type": "tool", "name": "Bash"},
            messages=[
                {"role": "user", "content": "run"},
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "Bash",
                            "input": {"command": "ls"},
                            "thoughtSignature": "sig",
                        }
                    ],
                },
            ],
        )
    )
    assert req.max_tokens == 1000
    assert req.stream is True
    assert req.system_texts() == ["S1", "S2"]
    assert req.temperature == 1.0
    assert isinstance(req.thinking, ThinkingDisabled)
    call = req.messages[1].blocks()[0]
    assert isinstance(call, ToolUseBlock)
    assert call.thought_signature == "sig"


def test_max_tokens_may_be_absent_for_count_tokens_bodies() -> None:
    assert parse_messages_request(body()).max_tokens is None


def test_adaptive_thinking_from_newer_clients_is_accepted() -> None:
    req = parse_messages_request(body(thinking={"type": "adaptive"}))
    assert req.thinking_budget is None
    assert not req.thinking_disabled


def test_token_estimate_counts_four_characters_per_token_plus_fixed_costs() -> None:
    text = "x" * 400
    req = parse_messages_request(
        body(
            system="s" * 40,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": text},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "AA"},
                        },
                    ],
                }
            ],
        )
    )
    expected = (40 + 400) // CHARS_PER_TOKEN + IMAGE_TOKENS + MESSAGE_OVERHEAD_TOKENS
    assert estimate_input_tokens(req) == expected


def test_token_estimate_grows_with_tool_definitions_and_tool_results() -> None:
    plain = parse_messages_request(body())
    with_tools = parse_messages_request(
        body(
            tools=[{"name": "Bash", "description": "run a command" * 10}],
            messages=[
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t", "content": "y" * 800}],
                },
            ],
        )
    )
    assert estimate_input_tokens(plain) >= 1
    assert estimate_input_tokens(with_tools) > estimate_input_tokens(plain) + 200
