"""Every field Claude Code 2.1.x sends is used, converted or refused (issue 7), never dropped."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.convert.anthropic import RequestError, parse_messages_request
from adapters.convert.context_edits import CLEARED_RESULT, apply_context_edits
from adapters.convert.request import ANSWER_TOOL, EFFORT_THINKING_BUDGETS, to_cloudcode
from adapters.convert.signatures import SignatureCache
from adapters.convert.system_turns import fold_system_messages

SIG = "C" * 60


def inner(data: dict[str, Any], model: str = "claude-sonnet-4-6") -> dict[str, Any]:
    envelope, _ = to_cloudcode(
        parse_messages_request({"model": model, "max_tokens": 1000, **data}),
        upstream_model=model,
        project="p",
        session_id="s",
        request_id="r",
        signatures=SignatureCache(),
        system_instruction="",
        now=0.0,
    )
    request: dict[str, Any] = envelope["request"]
    return request


def texts(content: dict[str, Any]) -> list[str]:
    return [part.get("text", "<non-text>") for part in content["parts"]]


def system(text: str, **extra: Any) -> dict[str, Any]:
    return {"role": "system", "content": [{"type": "text", "text": text}], **extra}


def tool_use(tool_id: str, name: str = "Bash", **args: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": args}


def tool_result(tool_id: str, text: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_id, "content": text}


BASH = {"name": "Bash", "input_schema": {"type": "object", "properties": {}}}

# --- mid-conversation system messages ---------------------------------------------------------


def test_claude_codes_system_message_after_the_user_turn_is_accepted_and_reaches_upstream() -> None:
    contents = inner(
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "say hi"}]},
                system("# Environment\ncwd: /tmp", output_config={"effort": "medium"}),
            ]
        }
    )["contents"]
    assert [c["role"] for c in contents] == ["user"]
    assert texts(contents[0]) == [
        "say hi",
        "<system_message>\n# Environment\ncwd: /tmp\n</system_message>",
    ]


def test_a_system_message_before_a_user_turn_goes_first_in_that_turn() -> None:
    contents = inner(
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                system("S"),
                {"role": "user", "content": "c"},
            ]
        }
    )["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert texts(contents[2]) == ["<system_message>\nS\n</system_message>", "c"]


def test_a_system_message_between_a_tool_call_and_its_result_stays_after_the_result() -> None:
    contents = inner(
        {
            "tools": [BASH],
            "messages": [
                {"role": "user", "content": "run it"},
                {"role": "assistant", "content": [tool_use("t1", command="ls")]},
                system("S"),
                {
                    "role": "user",
                    "content": [tool_result("t1", "files"), {"type": "text", "text": "go"}],
                },
            ],
        }
    )["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    parts = contents[2]["parts"]
    assert "functionResponse" in parts[0]
    assert [p.get("text") for p in parts[1:]] == ["<system_message>\nS\n</system_message>", "go"]


def test_a_system_message_with_no_user_turn_beside_it_becomes_a_user_turn() -> None:
    contents = inner(
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                system("S1"),
                system("S2"),
            ]
        }
    )["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert texts(contents[2]) == [
        "<system_message>\nS1\n</system_message>",
        "<system_message>\nS2\n</system_message>",
    ]


def test_a_conversation_without_system_messages_is_not_copied() -> None:
    request = parse_messages_request({"model": "m", "messages": [{"role": "user", "content": "a"}]})
    assert fold_system_messages(request.messages) is request.messages


def test_a_system_message_with_an_image_is_refused_with_a_clear_400() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "x"}}
    with pytest.raises(RequestError, match=r"messages\.1\.content\.0\.type: a system message"):
        parse_messages_request(
            {
                "model": "m",
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "system", "content": [image]},
                ],
            }
        )


# --- thinking, effort, context management -----------------------------------------------------


@pytest.mark.parametrize(("effort", "budget"), sorted(EFFORT_THINKING_BUDGETS.items()))
def test_effort_sets_the_thinking_budget_when_the_client_gives_none(
    effort: str, budget: int
) -> None:
    config = inner(
        {
            "messages": [{"role": "user", "content": "a"}],
            "thinking": {"type": "adaptive"},
            "output_config": {"effort": effort},
        },
        model="claude-opus-4-6-thinking",
    )["generationConfig"]
    assert config["thinkingConfig"]["thinking_budget"] == budget


def test_the_last_turns_effort_wins_over_the_requests() -> None:
    config = inner(
        {
            "messages": [
                {"role": "user", "content": "a"},
                system("S", output_config={"effort": "low"}),
            ],
            "thinking": {"type": "adaptive", "display": "omitted"},
            "output_config": {"effort": "max"},
        },
        model="claude-opus-4-6-thinking",
    )["generationConfig"]
    assert config["thinkingConfig"]["thinking_budget"] == EFFORT_THINKING_BUDGETS["low"]


def test_an_explicit_budget_wins_over_effort() -> None:
    config = inner(
        {
            "messages": [{"role": "user", "content": "a"}],
            "thinking": {"type": "enabled", "budget_tokens": 1234},
            "output_config": {"effort": "max"},
        },
        model="gemini-3-flash",
    )["generationConfig"]
    assert config["thinkingConfig"]["thinkingBudget"] == 1234


def test_an_unknown_effort_is_refused() -> None:
    with pytest.raises(RequestError, match=r"output_config\.effort"):
        parse_messages_request(
            {
                "model": "m",
                "messages": [{"role": "user", "content": "a"}],
                "output_config": {"effort": "huge"},
            }
        )


def assistant_thinking(text: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": text, "signature": SIG},
            {"type": "text", "text": text},
        ],
    }


def test_clear_thinking_keeps_only_the_last_turns_thinking() -> None:
    request = parse_messages_request(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "1"},
                assistant_thinking("first"),
                {"role": "user", "content": "2"},
                assistant_thinking("second"),
                {"role": "user", "content": "3"},
            ],
            "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
        }
    )
    edited = apply_context_edits(request, request.messages)
    kinds = [[b.type for b in m.blocks()] for m in edited if m.role == "assistant"]
    assert kinds == [["text"], ["thinking", "text"]]


def test_clear_thinking_keep_all_changes_nothing() -> None:
    request = parse_messages_request(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "1"}, assistant_thinking("a")],
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        }
    )
    assert apply_context_edits(request, request.messages) == request.messages


def tool_loop(n: int, size: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
    for i in range(n):
        messages.append({"role": "assistant", "content": [tool_use(f"t{i}", command=str(i))]})
        messages.append({"role": "user", "content": [tool_result(f"t{i}", f"{i}" * size)]})
    return messages


def results(contents: list[dict[str, Any]]) -> list[str]:
    return [
        p["functionResponse"]["response"]["result"]
        for c in contents
        for p in c["parts"]
        if "functionResponse" in p
    ]


def test_clear_tool_uses_past_its_trigger_clears_all_but_the_last_results() -> None:
    edit = {
        "type": "clear_tool_uses_20250919",
        "trigger": {"type": "input_tokens", "value": 1000},
        "keep": {"type": "tool_uses", "value": 2},
    }
    contents = inner(
        {"tools": [BASH], "messages": tool_loop(4, 2000), "context_management": {"edits": [edit]}}
    )["contents"]
    assert results(contents) == [CLEARED_RESULT, CLEARED_RESULT, "2" * 2000, "3" * 2000]


def test_clear_tool_uses_below_its_trigger_changes_nothing() -> None:
    edit = {"type": "clear_tool_uses_20250919"}  # default trigger: 100,000 tokens
    contents = inner(
        {"tools": [BASH], "messages": tool_loop(4, 10), "context_management": {"edits": [edit]}}
    )["contents"]
    assert CLEARED_RESULT not in results(contents)


def test_clear_tool_uses_never_clears_excluded_tools_nor_less_than_clear_at_least() -> None:
    edit: dict[str, Any] = {
        "type": "clear_tool_uses_20250919",
        "trigger": {"type": "input_tokens", "value": 100},
        "keep": {"type": "tool_uses", "value": 0},
        "exclude_tools": ["Bash"],
    }
    contents = inner(
        {"tools": [BASH], "messages": tool_loop(2, 1000), "context_management": {"edits": [edit]}}
    )["contents"]
    assert CLEARED_RESULT not in results(contents)
    edit = {**edit, "exclude_tools": [], "clear_at_least": {"type": "input_tokens", "value": 10**6}}
    contents = inner(
        {"tools": [BASH], "messages": tool_loop(2, 1000), "context_management": {"edits": [edit]}}
    )["contents"]
    assert CLEARED_RESULT not in results(contents)


def test_an_unknown_context_edit_is_refused_with_a_clear_400() -> None:
    with pytest.raises(
        RequestError, match=r"context_management\.edits\.0\.type: unknown edit type 'compact_x'"
    ):
        parse_messages_request(
            {
                "model": "m",
                "messages": [{"role": "user", "content": "a"}],
                "context_management": {"edits": [{"type": "compact_x"}]},
            }
        )


# --- tools, structured outputs, max_tokens ----------------------------------------------------


def test_deferred_tools_are_not_declared_upstream() -> None:
    placeholder = {
        "name": "DeferredToolPlaceholder",
        "input_schema": {"type": "object"},
        "defer_loading": True,
    }
    request = inner({"tools": [BASH, placeholder], "messages": [{"role": "user", "content": "a"}]})
    names = [d["name"] for d in request["tools"][0]["functionDeclarations"]]
    assert names == ["Bash"]


def test_only_deferred_tools_declare_nothing() -> None:
    placeholder = {"name": "P", "input_schema": {"type": "object"}, "defer_loading": True}
    request = inner({"tools": [placeholder], "messages": [{"role": "user", "content": "a"}]})
    assert "tools" not in request and "toolConfig" not in request


def test_tool_input_examples_reach_the_model_in_the_description() -> None:
    tool = {**BASH, "description": "run", "input_examples": [{"command": "ls"}]}
    request = inner({"tools": [tool], "messages": [{"role": "user", "content": "a"}]})
    assert request["tools"][0]["functionDeclarations"][0]["description"] == (
        'run\n\nExample inputs:\n{"command":"ls"}'
    )


def test_a_server_tool_is_refused_with_a_clear_400() -> None:
    with pytest.raises(RequestError, match=r"tools\.0\.type: server tool 'web_search_20250305'"):
        parse_messages_request(
            {
                "model": "m",
                "messages": [{"role": "user", "content": "a"}],
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            }
        )


SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


@pytest.mark.parametrize("field", ["output_config", "output_format"])
def test_structured_outputs_become_geminis_json_response_schema(field: str) -> None:
    fmt = {"type": "json_schema", "schema": SCHEMA}
    body = {field: {"format": fmt} if field == "output_config" else fmt}
    config = inner(
        {"messages": [{"role": "user", "content": "a"}], **body}, model="gemini-3-flash"
    )["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"] == {
        "type": "OBJECT",
        "properties": {"n": {"type": "INTEGER"}},
        "required": ["n"],
    }


TITLE_FORMAT = {
    "type": "json_schema",
    "schema": {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
        "additionalProperties": False,
    },
}


def test_structured_outputs_on_a_claude_model_force_the_answer_tool() -> None:
    # Claude Code's session-title request: no tools, a title schema, on its default model
    request = inner(
        {"messages": [{"role": "user", "content": "a"}], "output_config": {"format": TITLE_FORMAT}},
        model="claude-opus-4-6-thinking",
    )
    (declaration,) = request["tools"][0]["functionDeclarations"]
    assert declaration["name"] == ANSWER_TOOL
    assert declaration["parameters"]["properties"] == {"title": {"type": "STRING"}}
    assert request["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [ANSWER_TOOL]}
    }
    assert "responseSchema" not in request["generationConfig"]


def test_structured_outputs_beside_client_tools_ask_for_the_answer_tool_without_forcing() -> None:
    tool = {**BASH, "name": ANSWER_TOOL}  # a client tool that takes the answer tool's name
    request = inner(
        {
            "tools": [tool],
            "messages": [{"role": "user", "content": "a"}],
            "output_config": {"format": TITLE_FORMAT},
        }
    )
    names = [d["name"] for d in request["tools"][0]["functionDeclarations"]]
    assert names == [ANSWER_TOOL, f"{ANSWER_TOOL}_2"]
    assert request["toolConfig"] == {"functionCallingConfig": {"mode": "VALIDATED"}}
    assert f"`{ANSWER_TOOL}_2`" in request["systemInstruction"]["parts"][-1]["text"]


def test_messages_without_max_tokens_are_refused_like_anthropics_api() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "a"}]}
    with pytest.raises(RequestError, match="max_tokens: field required"):
        parse_messages_request(body, max_tokens_required=True)
    assert parse_messages_request(body).max_tokens is None  # count_tokens bodies have none


@pytest.mark.parametrize(
    ("display", "omitted"), [("omitted", True), ("updates", False), ("summarized", False)]
)
def test_every_thinking_display_claude_code_sends_is_accepted(display: str, omitted: bool) -> None:
    request = parse_messages_request(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "a"}],
            "thinking": {"type": "adaptive", "display": display},
        }
    )
    assert request.thinking_omitted is omitted
