"""A validated Anthropic request -> the Cloud Code generation envelope (seed §4.3, §5.2-§5.6).

``to_cloudcode`` runs the seed's pipeline with the UPSTREAM.md fixes: ``stop_sequences`` are
forwarded, ``tool_choice`` is honoured, thinking is off when the client sends
``thinking: {type: disabled}`` (no ``thinkingConfig``, no interleaved hint, no thinking history),
and tool names are sanitised through a ``ToolNameMap`` that is returned for the response side.
``cache_control`` never gets this far: the request models ignore unknown fields.
"""

from __future__ import annotations

from typing import Any

from adapters.convert.contents import PartContext, convert_messages, tool_use_names
from adapters.convert.family import Family, is_gemini_2_5, is_thinking_model, model_family
from adapters.convert.messages import (
    MessagesRequest,
    ToolChoiceAny,
    ToolChoiceNone,
    ToolChoiceTool,
)
from adapters.convert.recovery import recover_tool_loop
from adapters.convert.schema import sanitize_schema
from adapters.convert.signatures import SignatureCache
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
    tool_names = ToolNameMap(tool.name for tool in req.tools)
    ctx = PartContext(
        family=family,
        thinking_on=thinking_on,
        tool_names=tool_names,
        tool_use_names=tool_use_names(req.messages),
        signatures=signatures,
        now=now,
    )
    messages = req.messages
    if thinking_on:
        messages = recover_tool_loop(messages, ctx.keeps_thinking)
    inner: JsonObject = {
        "contents": convert_messages(messages, ctx),
        "systemInstruction": system_instruction_of(
            req, system_instruction, interleaved_hint=thinking_on and family == "claude"
        ),
    }
    if req.tools:
        inner["tools"] = [{"functionDeclarations": _declarations(req, tool_names)}]
        tool_config = _tool_config(req, family, tool_names)
        if tool_config is not None:
            inner["toolConfig"] = tool_config
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
    if interleaved_hint and req.tools:
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
    if thinking_on and family == "claude":
        budget = req.thinking_budget or CLAUDE_DEFAULT_THINKING_BUDGET
        config["thinkingConfig"] = {"include_thoughts": True, "thinking_budget": budget}
        if config["maxOutputTokens"] <= budget:
            config["maxOutputTokens"] = budget + CLAUDE_THINKING_HEADROOM
    elif thinking_on and family == "gemini":
        ceiling = (
            GEMINI_2_5_MAX_THINKING_BUDGET
            if is_gemini_2_5(upstream_model)
            else GEMINI_MAX_THINKING_BUDGET
        )
        budget = min(req.thinking_budget or GEMINI_DEFAULT_THINKING_BUDGET, ceiling)
        config["thinkingConfig"] = {"includeThoughts": True, "thinkingBudget": budget}
    if family == "gemini":
        config["maxOutputTokens"] = min(config["maxOutputTokens"], GEMINI_MAX_OUTPUT_TOKENS)
    return config


def _declarations(req: MessagesRequest, tool_names: ToolNameMap) -> list[JsonObject]:
    return [
        {
            "name": tool_names.to_upstream(tool.name),
            "description": tool.description,
            "parameters": sanitize_schema(tool.input_schema),
        }
        for tool in req.tools
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
    "INTERLEAVED_THINKING_HINT",
    "generation_config",
    "system_instruction_of",
    "thinking_enabled",
    "to_cloudcode",
]
