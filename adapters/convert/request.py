"""A validated Anthropic request -> the Cloud Code generation envelope (seed §4.3, §5.2-§5.6).

``to_cloudcode`` runs the seed's pipeline with the UPSTREAM.md fixes: ``stop_sequences`` are
forwarded, ``tool_choice`` is honoured, thinking is off when the client sends
``thinking: {type: disabled}`` (no ``thinkingConfig``, no interleaved hint, no thinking history),
and tool names are sanitised through a ``ToolNameMap`` that is returned for the response side.

Claude Code's newer fields: mid-conversation ``system`` messages are folded into the user turns
around them (``system_turns``), ``context_management`` edits are applied first
(``context_edits``), ``output_config.effort`` sets the thinking budget when the client gives
none (``EFFORT_THINKING_BUDGETS``), and ``defer_loading`` tools are not declared.
``output_config.format`` (structured outputs) becomes Gemini's JSON response schema; Claude
models take no response schema upstream, so they get an *answer tool* instead: a function with
the client's schema that the model must call (forced when the client declares no tools of its
own, asked for in the system instruction otherwise), whose arguments the response side turns
back into the JSON text answer. ``cache_control`` and ``metadata`` carry
nothing the upstream can use and are not sent.
"""

from __future__ import annotations

import json
from typing import Any

from adapters.convert.contents import PartContext, convert_messages, tool_use_names
from adapters.convert.context_edits import apply_context_edits
from adapters.convert.family import Family, is_gemini_2_5, is_thinking_model, model_family
from adapters.convert.messages import (
    MessagesRequest,
    Tool,
    ToolChoiceAny,
    ToolChoiceNone,
    ToolChoiceTool,
)
from adapters.convert.recovery import recover_tool_loop
from adapters.convert.schema import sanitize_schema
from adapters.convert.signatures import SignatureCache
from adapters.convert.system_turns import fold_system_messages
from adapters.convert.toolnames import ToolNameMap

JsonObject = dict[str, Any]

INTERLEAVED_THINKING_HINT = (
    "Interleaved thinking is enabled. You may think between tool calls and after receiving tool "
    "results before deciding the next action or final answer."
)
DEFAULT_MAX_TOKENS = 4096
CLAUDE_DEFAULT_THINKING_BUDGET = 32_000
CLAUDE_THINKING_HEADROOM = 8_192
GEMINI_DEFAULT_THINKING_BUDGET = 16_000
GEMINI_2_5_MAX_THINKING_BUDGET = 24_576
GEMINI_MAX_THINKING_BUDGET = 128_000
GEMINI_MAX_OUTPUT_TOKENS = 16_384
EFFORT_THINKING_BUDGETS = {
    "low": 4_096,
    "medium": 16_000,
    "high": 32_000,
    "xhigh": 48_000,
    "max": 64_000,
}
"""``output_config.effort`` -> thinking budget, used when the client sets no ``budget_tokens``
(Gemini budgets are still capped at the model's ceiling)."""


def to_cloudcode(
    req: MessagesRequest,
    *,
    upstream_model: str,
    project: str,
    session_id: str,
    request_id: str,
    signatures: SignatureCache,
    system_instruction: str,
    now: float,
) -> tuple[JsonObject, ToolNameMap]:
    """The envelope to POST upstream and the tool-name map its answer must be read with.

    ``now`` is the clock reading the signature cache's TTL is checked against."""
    family = model_family(upstream_model)
    thinking_on = thinking_enabled(req, upstream_model)
    tools = declared_tools(req)
    tool_names = ToolNameMap(tool.name for tool in tools)
    ctx = PartContext(
        family=family,
        thinking_on=thinking_on,
        tool_names=tool_names,
        tool_use_names=tool_use_names(req.messages),
        signatures=signatures,
        now=now,
    )
    messages = apply_context_edits(req, fold_system_messages(req.messages))
    if thinking_on:
        messages = recover_tool_loop(messages, ctx.keeps_thinking)
    inner: JsonObject = {
        "contents": convert_messages(messages, ctx),
        "systemInstruction": system_instruction_of(
            req, system_instruction, interleaved_hint=thinking_on and family == "claude"
        ),
    }
    if tools:
        inner["tools"] = [{"functionDeclarations": _declarations(tools, tool_names)}]
        tool_config = _tool_config(req, family, tool_names)
        if tool_config is not None:
            inner["toolConfig"] = tool_config
    answer_schema = req.response_format if family != "gemini" else None
    if answer_schema is not None:
        _add_answer_tool(inner, tool_names, answer_schema.json_schema)
    inner["generationConfig"] = generation_config(req, upstream_model, thinking_on)
    inner["sessionId"] = session_id
    envelope = {
        "project": project,
        "model": upstream_model,
        "request": inner,
        "userAgent": "antigravity",
        "requestType": "agent",
        "requestId": request_id,
    }
    return envelope, tool_names


def declared_tools(req: MessagesRequest) -> list[Tool]:
    """The tools the model sees now: ``defer_loading`` ones stay out of its context."""
    return [tool for tool in req.tools if not tool.defer_loading]


def thinking_enabled(req: MessagesRequest, upstream_model: str) -> bool:
    """Thinking models think unless the client explicitly sends ``{type: disabled}``."""
    return is_thinking_model(upstream_model) and not req.thinking_disabled


def system_instruction_of(
    req: MessagesRequest, identity: str, *, interleaved_hint: bool
) -> JsonObject:
    """Identity text, the same text inside ``[ignore]`` tags, then the client's system texts;
    the interleaved-thinking hint (Claude thinking with tools) is appended to the last client
    text or becomes its own part. An empty ``identity`` adds no identity parts."""
    parts: list[JsonObject] = []
    if identity:
        parts.append({"text": identity})
        parts.append({"text": f"Please ignore the following [ignore]{identity}[/ignore]"})
    client = [text for text in req.system_texts() if text.strip()]
    if interleaved_hint and declared_tools(req):
        if client:
            client[-1] = f"{client[-1]}\n\n{INTERLEAVED_THINKING_HINT}"
        else:
            client.append(INTERLEAVED_THINKING_HINT)
    parts += [{"text": text} for text in client]
    return {"role": "user", "parts": parts}


def generation_config(req: MessagesRequest, upstream_model: str, thinking_on: bool) -> JsonObject:
    family = model_family(upstream_model)
    config: JsonObject = {"maxOutputTokens": req.max_tokens or DEFAULT_MAX_TOKENS}
    if req.temperature is not None:
        config["temperature"] = req.temperature
    if req.top_p is not None:
        config["topP"] = req.top_p
    if req.top_k is not None:
        config["topK"] = req.top_k
    if req.stop_sequences:
        config["stopSequences"] = list(req.stop_sequences)
    effort_budget = EFFORT_THINKING_BUDGETS.get(req.effort or "")
    if thinking_on and family == "claude":
        budget = req.thinking_budget or effort_budget or CLAUDE_DEFAULT_THINKING_BUDGET
        config["thinkingConfig"] = {"include_thoughts": True, "thinking_budget": budget}
        if config["maxOutputTokens"] <= budget:
            config["maxOutputTokens"] = budget + CLAUDE_THINKING_HEADROOM
    elif thinking_on and family == "gemini":
        ceiling = (
            GEMINI_2_5_MAX_THINKING_BUDGET
            if is_gemini_2_5(upstream_model)
            else GEMINI_MAX_THINKING_BUDGET
        )
        budget = min(
            req.thinking_budget or effort_budget or GEMINI_DEFAULT_THINKING_BUDGET, ceiling
        )
        config["thinkingConfig"] = {"includeThoughts": True, "thinkingBudget": budget}
    if family == "gemini":
        config["maxOutputTokens"] = min(config["maxOutputTokens"], GEMINI_MAX_OUTPUT_TOKENS)
    response_format = req.response_format
    if response_format is not None and family == "gemini":
        config["responseMimeType"] = "application/json"
        config["responseSchema"] = sanitize_schema(response_format.json_schema)
    return config


ANSWER_TOOL = "structured_output"
ANSWER_TOOL_DESCRIPTION = (
    "Give your final answer by calling this function: its arguments are the answer, as JSON "
    "matching the requested schema."
)
ANSWER_TOOL_HINT = (
    "When you give your final answer, call the function `{name}` with it (its arguments are "
    "the answer, as JSON); never give the final answer as plain text."
)


def _add_answer_tool(inner: JsonObject, names: ToolNameMap, schema: JsonObject) -> None:
    """Structured outputs for models without a response schema: one more function, the answer
    tool, forced when it is the only one, else asked for in the system instruction."""
    name = names.reserve_answer_tool(ANSWER_TOOL)
    declaration = {
        "name": name,
        "description": ANSWER_TOOL_DESCRIPTION,
        "parameters": sanitize_schema(schema),
    }
    if "tools" not in inner:
        inner["tools"] = [{"functionDeclarations": [declaration]}]
        inner["toolConfig"] = {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}
        }
        return
    inner["tools"][0]["functionDeclarations"].append(declaration)
    inner["systemInstruction"]["parts"].append({"text": ANSWER_TOOL_HINT.format(name=name)})


def _description(tool: Tool) -> str:
    if not tool.input_examples:
        return tool.description
    examples = "\n".join(
        json.dumps(example, separators=(",", ":"), ensure_ascii=False)
        for example in tool.input_examples
    )
    return f"{tool.description}\n\nExample inputs:\n{examples}".lstrip()


def _declarations(tools: list[Tool], tool_names: ToolNameMap) -> list[JsonObject]:
    return [
        {
            "name": tool_names.to_upstream(tool.name),
            "description": _description(tool),
            "parameters": sanitize_schema(tool.input_schema),
        }
        for tool in tools
    ]


def _tool_config(req: MessagesRequest, family: Family, names: ToolNameMap) -> JsonObject | None:
    """auto (or absent) -> VALIDATED for Claude, AUTO for others (absent: no toolConfig, as in the
    seed); any -> ANY; tool -> ANY restricted to that function; none -> NONE."""
    choice = req.tool_choice
    config: JsonObject
    if isinstance(choice, ToolChoiceAny):
        config = {"mode": "ANY"}
    elif isinstance(choice, ToolChoiceTool):
        config = {"mode": "ANY", "allowedFunctionNames": [names.to_upstream(choice.name)]}
    elif isinstance(choice, ToolChoiceNone):
        config = {"mode": "NONE"}
    elif family == "claude":
        config = {"mode": "VALIDATED"}
    elif choice is None:
        return None
    else:
        config = {"mode": "AUTO"}
    return {"functionCallingConfig": config}


__all__ = [
    "ANSWER_TOOL",
    "EFFORT_THINKING_BUDGETS",
    "INTERLEAVED_THINKING_HINT",
    "declared_tools",
    "generation_config",
    "system_instruction_of",
    "thinking_enabled",
    "to_cloudcode",
]
