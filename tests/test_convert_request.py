"""Anthropic requests become the exact Cloud Code envelope (seed §4.3, §5.2-§5.6, with fixes)."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.convert.anthropic import parse_messages_request
from adapters.convert.request import INTERLEAVED_THINKING_HINT, to_cloudcode
from adapters.convert.signatures import SignatureCache
from adapters.convert.toolnames import ToolNameMap

IDENTITY = "<ANTIGRAVITY_SYSTEM_INSTRUCTION>"
IGNORED = f"Please ignore the following [ignore]{IDENTITY}[/ignore]"
CLAUDE_SIG = "C" * 60
GEMINI_SIG = "G" * 60
NOW = 1_000.0
BASH = {
    "name": "Bash",
    "description": "run",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}},
        "required": ["command"],
    },
}
BASH_DECLARATION = {
    "name": "Bash",
    "description": "run",
    "parameters": {
        "type": "OBJECT",
        "properties": {"command": {"type": "STRING"}},
        "required": ["command"],
    },
}


def convert(
    data: dict[str, Any], model: str, cache: SignatureCache | None = None
) -> tuple[dict[str, Any], ToolNameMap]:
    return to_cloudcode(
        parse_messages_request({"model": model, **data}),
        upstream_model=model,
        project="proj-A",
        session_id="session-1",
        request_id="agent-681cbc62",
        signatures=cache or SignatureCache(),
        system_instruction=IDENTITY,
        now=NOW,
    )


def inner(data: dict[str, Any], model: str, cache: SignatureCache | None = None) -> dict[str, Any]:
    request: dict[str, Any] = convert(data, model, cache)[0]["request"]
    return request


def test_claude_thinking_request_produces_the_seed_envelope_exactly() -> None:
    envelope, names = convert(
        {"messages": [{"role": "user", "content": "hi"}], "tools": [BASH]},
        "claude-opus-4-6-thinking",
    )
    assert envelope == {
        "project": "proj-A",
        "model": "claude-opus-4-6-thinking",
        "request": {
            "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "systemInstruction": {
                "role": "user",
                "parts": [
                    {"text": IDENTITY},
                    {"text": IGNORED},
                    {"text": INTERLEAVED_THINKING_HINT},
                ],
            },
            "tools": [{"functionDeclarations": [BASH_DECLARATION]}],
            "toolConfig": {"functionCallingConfig": {"mode": "VALIDATED"}},
            "generationConfig": {
                "maxOutputTokens": 40192,
                "thinkingConfig": {"include_thoughts": True, "thinking_budget": 32000},
            },
            "sessionId": "session-1",
        },
        "userAgent": "antigravity",
        "requestType": "agent",
        "requestId": "agent-681cbc62",
    }
    assert list(names.items()) == [("Bash", "Bash")]


def test_gemini_thinking_request_uses_camel_case_config_and_no_tool_config_or_hint() -> None:
    request = inner(
        {"messages": [{"role": "user", "content": "hi"}], "tools": [BASH], "max_tokens": 100},
        "gemini-3-flash",
    )
    assert request["generationConfig"] == {
        "maxOutputTokens": 100,
        "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 16000},
    }
    assert "toolConfig" not in request
    assert request["systemInstruction"]["parts"] == [{"text": IDENTITY}, {"text": IGNORED}]


def test_seed_conversion_example_keeps_is_error_and_names_the_function() -> None:
    envelope, names = convert(
        {
            "max_tokens": 1000,
            "stop_sequences": ["X"],
            "system": "S1",
            "tools": [
                {
                    "name": "mcp.server/tool",
                    "description": "d",
                    "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}},
                }
            ],
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "q", "cache_control": {"type": "ephemeral"}},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "AAA"},
                        },
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"p": 1}},
                        {"type": "text", "text": "calling"},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "is_error": True,
                            "content": [
                                {"type": "text", "text": "r1"},
                                {
                                    "type": "image",
                                    "source": {
                                        "type": "base64",
                                        "media_type": "image/png",
                                        "data": "BBB",
                                    },
                                },
                            ],
                        },
                        {"type": "text", "text": "and?"},
                    ],
                },
            ],
        },
        "claude-sonnet-4-6",
    )
    request = envelope["request"]
    assert request["contents"] == [
        {
            "role": "user",
            "parts": [{"text": "q"}, {"inlineData": {"mimeType": "image/png", "data": "AAA"}}],
        },
        {
            "role": "model",
            "parts": [
                {"text": "calling"},
                {"functionCall": {"name": "Read", "args": {"p": 1}, "id": "toolu_1"}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "Read",
                        "response": {"error": "r1"},
                        "id": "toolu_1",
                    }
                },
                {"text": "and?"},
                {"inlineData": {"mimeType": "image/png", "data": "BBB"}},
            ],
        },
    ]
    assert request["generationConfig"] == {"maxOutputTokens": 1000, "stopSequences": ["X"]}
    assert request["systemInstruction"]["parts"][2:] == [{"text": "S1"}]
    assert request["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "mcp_server_tool",
                    "description": "d",
                    "parameters": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}},
                }
            ]
        }
    ]
    assert request["toolConfig"] == {"functionCallingConfig": {"mode": "VALIDATED"}}
    assert names.to_client("mcp_server_tool") == "mcp.server/tool"
    assert names.to_client("Read") == "Read"


def test_successful_tool_result_is_sent_as_result_with_the_sanitised_function_name() -> None:
    request = inner(
        {
            "tools": [{"name": "mcp.server/tool"}],
            "messages": [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "mcp.server/tool"}],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "fine"}],
                },
            ],
        },
        "claude-sonnet-4-6",
    )
    assert request["contents"][1]["parts"] == [
        {"functionCall": {"name": "mcp_server_tool", "args": {}, "id": "t1"}}
    ]
    assert request["contents"][2]["parts"] == [
        {
            "functionResponse": {
                "name": "mcp_server_tool",
                "response": {"result": "fine"},
                "id": "t1",
            }
        }
    ]


def test_tool_result_for_an_unknown_call_falls_back_to_the_id_as_name() -> None:
    request = inner(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": []}],
                }
            ]
        },
        "gemini-3-flash",
    )
    assert request["contents"][0]["parts"] == [
        {"functionResponse": {"name": "toolu_9", "response": {"result": ""}}}
    ]


def test_thinking_disabled_by_the_client_turns_thinking_off() -> None:
    request = inner(
        {
            "thinking": {"type": "disabled"},
            "tools": [BASH],
            "messages": [
                {"role": "user", "content": "a"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": CLAUDE_SIG},
                        {"type": "text", "text": "b"},
                    ],
                },
                {"role": "user", "content": "c"},
            ],
        },
        "claude-opus-4-6-thinking",
    )
    assert request["generationConfig"] == {"maxOutputTokens": 4096}
    assert request["systemInstruction"]["parts"] == [{"text": IDENTITY}, {"text": IGNORED}]
    assert request["contents"][1] == {"role": "model", "parts": [{"text": "b"}]}


def test_client_thinking_budget_is_used_and_max_tokens_raised_above_it() -> None:
    config = inner(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 5000,
            "thinking": {"type": "enabled", "budget_tokens": 10000},
        },
        "claude-sonnet-4-6-thinking",
    )["generationConfig"]
    assert config == {
        "maxOutputTokens": 18192,
        "thinkingConfig": {"include_thoughts": True, "thinking_budget": 10000},
    }
    roomy = inner(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 20000,
            "thinking": {"type": "enabled", "budget_tokens": 10000},
        },
        "claude-sonnet-4-6-thinking",
    )["generationConfig"]
    assert roomy["maxOutputTokens"] == 20000


@pytest.mark.parametrize(
    ("model", "budget", "expected_budget"),
    [
        ("gemini-3.1-pro-high", 200_000, 128_000),
        ("gemini-2.5-flash-thinking", 50_000, 24_576),
        ("gemini-3-flash", 2_000, 2_000),
    ],
)
def test_gemini_budget_is_clamped_and_max_output_capped_at_16384(
    model: str, budget: int, expected_budget: int
) -> None:
    config = inner(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 64000,
            "thinking": {"type": "enabled", "budget_tokens": budget},
        },
        model,
    )["generationConfig"]
    assert config == {
        "maxOutputTokens": 16384,
        "thinkingConfig": {"includeThoughts": True, "thinkingBudget": expected_budget},
    }


def test_non_thinking_model_gets_no_thinking_config_even_when_asked() -> None:
    config = inner(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "temperature": 0.5,
            "top_p": 0.9,
            "top_k": 40,
        },
        "claude-sonnet-4-6",
    )["generationConfig"]
    assert config == {"maxOutputTokens": 4096, "temperature": 0.5, "topP": 0.9, "topK": 40}


CHOICES = [
    (None, "claude-sonnet-4-6", {"mode": "VALIDATED"}),
    ({"type": "auto"}, "claude-sonnet-4-6", {"mode": "VALIDATED"}),
    ({"type": "any"}, "claude-sonnet-4-6", {"mode": "ANY"}),
    (
        {"type": "tool", "name": "mcp.server/tool"},
        "claude-sonnet-4-6",
        {"mode": "ANY", "allowedFunctionNames": ["mcp_server_tool"]},
    ),
    ({"type": "none"}, "claude-sonnet-4-6", {"mode": "NONE"}),
    (None, "gemini-3-flash", None),
    ({"type": "auto"}, "gemini-3-flash", {"mode": "AUTO"}),
    ({"type": "any"}, "gemini-3-flash", {"mode": "ANY"}),
    (
        {"type": "tool", "name": "Bash"},
        "gemini-3-flash",
        {"mode": "ANY", "allowedFunctionNames": ["Bash"]},
    ),
    ({"type": "none"}, "gemini-3-flash", {"mode": "NONE"}),
]


@pytest.mark.parametrize(("choice", "model", "expected"), CHOICES)
def test_tool_choice_is_honoured(
    choice: dict[str, str] | None, model: str, expected: dict[str, Any] | None
) -> None:
    data: dict[str, Any] = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [BASH, {"name": "mcp.server/tool"}],
    }
    if choice is not None:
        data["tool_choice"] = choice
    request = inner(data, model)
    if expected is None:
        assert "toolConfig" not in request
    else:
        assert request["toolConfig"] == {"functionCallingConfig": expected}


def test_tool_choice_without_tools_sends_no_tool_config() -> None:
    request = inner(
        {"messages": [{"role": "user", "content": "hi"}], "tool_choice": {"type": "any"}},
        "claude-sonnet-4-6",
    )
    assert "tools" not in request
    assert "toolConfig" not in request


def test_client_system_text_gets_the_interleaved_hint_appended() -> None:
    parts = inner(
        {
            "system": [{"type": "text", "text": "S1"}, {"type": "text", "text": "S2"}],
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [BASH],
        },
        "claude-opus-4-6-thinking",
    )["systemInstruction"]["parts"]
    assert parts == [
        {"text": IDENTITY},
        {"text": IGNORED},
        {"text": "S1"},
        {"text": f"S2\n\n{INTERLEAVED_THINKING_HINT}"},
    ]


def test_assistant_blocks_are_reordered_and_blank_or_unsigned_blocks_dropped() -> None:
    cache = SignatureCache()
    cache.remember_family(CLAUDE_SIG, "claude", now=NOW)
    request = inner(
        {
            "messages": [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "t1", "name": "Bash", "input": {}},
                        {"type": "text", "text": "  "},
                        {"type": "text", "text": "doing it"},
                        {"type": "redacted_thinking", "data": "xx"},
                        {"type": "thinking", "thinking": "unsigned", "signature": "short"},
                        {"type": "thinking", "thinking": "plan", "signature": CLAUDE_SIG},
                    ],
                },
                {"role": "user", "content": "wait"},
            ]
        },
        "claude-opus-4-6-thinking",
        cache,
    )
    assert request["contents"][1]["parts"] == [
        {"text": "plan", "thought": True, "thoughtSignature": CLAUDE_SIG},
        {"text": "doing it"},
        {"functionCall": {"name": "Bash", "args": {}, "id": "t1"}},
    ]


def test_message_without_any_part_becomes_a_dot() -> None:
    request = inner(
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "text", "text": " "}]},
                {"role": "user", "content": ""},
            ]
        },
        "claude-sonnet-4-6",
    )
    assert request["contents"][1:] == [
        {"role": "model", "parts": [{"text": "."}]},
        {"role": "user", "parts": [{"text": "."}]},
    ]


def test_thinking_signed_by_the_other_family_or_an_unknown_one_is_not_replayed() -> None:
    cache = SignatureCache()
    cache.remember_family(CLAUDE_SIG, "claude", now=NOW)
    cache.remember_family(GEMINI_SIG, "gemini", now=NOW)
    unknown = "U" * 60
    history = {
        "messages": [
            {"role": "user", "content": "a"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "c", "signature": CLAUDE_SIG},
                    {"type": "thinking", "thinking": "g", "signature": GEMINI_SIG},
                    {"type": "thinking", "thinking": "u", "signature": unknown},
                    {"type": "text", "text": "answer"},
                ],
            },
            {"role": "user", "content": "b"},
        ]
    }
    claude = inner(history, "claude-opus-4-6-thinking", cache)["contents"][1]["parts"]
    gemini = inner(history, "gemini-3-flash", cache)["contents"][1]["parts"]
    assert claude == [
        {"text": "c", "thought": True, "thoughtSignature": CLAUDE_SIG},
        {"text": "answer"},
    ]
    assert gemini == [
        {"text": "g", "thought": True, "thoughtSignature": GEMINI_SIG},
        {"text": "answer"},
    ]


def gemini_call(**extra: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": "toolu_7", "name": "Bash", "input": {"c": 1}, **extra}


@pytest.mark.parametrize(
    ("block", "cached", "expected"),
    [
        (gemini_call(thoughtSignature=GEMINI_SIG), "X" * 60, GEMINI_SIG),
        (gemini_call(), "X" * 60, "X" * 60),
        (gemini_call(), None, "skip_thought_signature_validator"),
    ],
    ids=["echoed", "cached", "sentinel"],
)
def test_gemini_function_calls_carry_the_best_known_signature(
    block: dict[str, Any], cached: str | None, expected: str
) -> None:
    cache = SignatureCache()
    if cached is not None:
        cache.remember_tool_signature("toolu_7", cached, now=NOW)
    request = inner(
        {
            "thinking": {"type": "disabled"},
            "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [block]},
                {"role": "user", "content": "next"},
            ],
        },
        "gemini-3-flash",
        cache,
    )
    assert request["contents"][1]["parts"] == [
        {"functionCall": {"name": "Bash", "args": {"c": 1}}, "thoughtSignature": expected}
    ]


TOOL_LOOP: list[dict[str, Any]] = [
    {"role": "user", "content": "list files"},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "running"},
            {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}},
        ],
    },
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "a b"}]},
]


def test_open_tool_loop_without_replayable_thinking_is_closed_for_a_thinking_model() -> None:
    contents = inner({"messages": TOOL_LOOP, "tools": [BASH]}, "claude-opus-4-6-thinking")[
        "contents"
    ]
    assert contents[3:] == [
        {"role": "model", "parts": [{"text": "[Tool execution completed.]"}]},
        {"role": "user", "parts": [{"text": "[Continue]"}]},
    ]


def test_tool_loop_with_replayable_thinking_is_left_open() -> None:
    cache = SignatureCache()
    cache.remember_family(CLAUDE_SIG, "claude", now=NOW)
    signed = [
        TOOL_LOOP[0],
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "ls", "signature": CLAUDE_SIG},
                *TOOL_LOOP[1]["content"],
            ],
        },
        TOOL_LOOP[2],
    ]
    contents = inner({"messages": signed, "tools": [BASH]}, "claude-opus-4-6-thinking", cache)[
        "contents"
    ]
    assert len(contents) == 3


def test_interrupted_tool_call_gets_an_assistant_note_after_it() -> None:
    messages = [*TOOL_LOOP[:2], {"role": "user", "content": "never mind"}]
    contents = inner({"messages": messages, "tools": [BASH]}, "gemini-3-flash")["contents"]
    assert [c["parts"][0].get("text") for c in contents] == [
        "list files",
        "running",
        "[Tool call was interrupted.]",
        "never mind",
    ]


def test_tool_loop_is_not_touched_when_thinking_is_off() -> None:
    contents = inner({"messages": TOOL_LOOP, "tools": [BASH]}, "claude-sonnet-4-6")["contents"]
    assert len(contents) == 3


def test_urls_and_documents_become_file_data_or_inline_data() -> None:
    request = inner(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "url", "url": "https://x/i.png"}},
                        {"type": "document", "source": {"type": "url", "url": "https://x/d.pdf"}},
                        {
                            "type": "document",
                            "source": {
                                "type": "base64",
                                "media_type": "application/pdf",
                                "data": "PDF",
                            },
                        },
                        {"type": "document", "source": {"type": "text", "data": "plain words"}},
                    ],
                }
            ]
        },
        "claude-sonnet-4-6",
    )
    assert request["contents"][0]["parts"] == [
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x/i.png"}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://x/d.pdf"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "PDF"}},
        {"text": "plain words"},
    ]


def test_tool_result_with_only_an_image_says_so_and_moves_the_image_last() -> None:
    request = inner(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": [
                                {
                                    "type": "image",
                                    "source": {
                                        "type": "base64",
                                        "media_type": "image/png",
                                        "data": "I",
                                    },
                                }
                            ],
                        },
                        {"type": "text", "text": "see?"},
                    ],
                }
            ]
        },
        "gemini-3-flash",
    )
    assert request["contents"][0]["parts"] == [
        {"functionResponse": {"name": "t1", "response": {"result": "Image attached"}}},
        {"text": "see?"},
        {"inlineData": {"mimeType": "image/png", "data": "I"}},
    ]


def test_tool_loop_signed_by_the_other_family_drops_that_thinking_and_is_closed() -> None:
    cache = SignatureCache()
    cache.remember_family(GEMINI_SIG, "gemini", now=NOW)
    history = [
        TOOL_LOOP[0],
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "gemini plan", "signature": GEMINI_SIG},
                {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}},
            ],
        },
        TOOL_LOOP[2],
    ]
    contents = inner({"messages": history, "tools": [BASH]}, "claude-opus-4-6-thinking", cache)[
        "contents"
    ]
    assert contents[1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "Bash", "args": {"command": "ls"}, "id": "t1"}}],
    }
    assert [c["parts"][0].get("text") for c in contents[3:]] == [
        "[Tool execution completed.]",
        "[Continue]",
    ]


def test_several_tool_results_are_counted_in_the_completion_note() -> None:
    history = [
        TOOL_LOOP[0],
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t1", "name": "Bash", "input": {}},
                {"type": "tool_use", "id": "t2", "name": "Bash", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "a"},
                {"type": "tool_result", "tool_use_id": "t2", "content": "b"},
            ],
        },
    ]
    contents = inner({"messages": history, "tools": [BASH]}, "gemini-3.1-pro-high")["contents"]
    assert contents[3] == {"role": "model", "parts": [{"text": "[2 tool executions completed.]"}]}
