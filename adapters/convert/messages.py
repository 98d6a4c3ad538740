"""The Anthropic ``POST /v1/messages`` request as typed, immutable pydantic models.

Every field Claude Code 2.1.x and the SDKs send is modelled here and used, converted or refused
(the README's "What interlock does with each request field" lists them). Fields that carry
nothing the upstream can act on (``cache_control``, ``metadata``, ``service_tier``) are accepted
and ignored by name; other unknown fields are ignored too, so a newer client still gets served.
Unions use callable discriminators whose tags carry a ``<union>:`` prefix, so
``anthropic.parse_messages_request`` can turn validation errors into Anthropic-style messages.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
)
from pydantic_core import PydanticCustomError

# --- discriminators -------------------------------------------------------------------------
# Tags carry a "<union>:" prefix so error locations can be cleaned without ambiguity.


def _content_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "content:str"
    if isinstance(value, list):
        return "content:list"
    return None


def _type_tag(prefix: str, value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("type")
    elif isinstance(value, BaseModel):  # already-built models (e.g. synthetic messages)
        kind = getattr(value, "type", None)
    else:
        return None
    return f"{prefix}:{kind}" if isinstance(kind, str) else None


def _block_kind(value: Any) -> str | None:
    return _type_tag("block", value)


def _source_kind(value: Any) -> str | None:
    return _type_tag("source", value)


def _tool_choice_kind(value: Any) -> str | None:
    return _type_tag("tool_choice", value)


def _thinking_kind(value: Any) -> str | None:
    return _type_tag("thinking", value)


def _edit_kind(value: Any) -> str | None:
    return _type_tag("edit", value)


def _positive_int(value: Any) -> Any:
    if type(value) is not int or value <= 0:
        raise PydanticCustomError("positive_integer", "must be a positive integer")
    return value


PositiveInt = Annotated[int, BeforeValidator(_positive_int)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- sources ------------------------------------------------------------------------------


class Base64Source(_Model):
    type: Literal["base64"]
    media_type: StrictStr
    data: StrictStr


class UrlSource(_Model):
    type: Literal["url"]
    url: StrictStr
    media_type: StrictStr | None = None


class PlainTextSource(_Model):
    type: Literal["text"]
    data: StrictStr
    media_type: StrictStr = "text/plain"


ImageSource = Annotated[
    Annotated[Base64Source, Tag("source:base64")] | Annotated[UrlSource, Tag("source:url")],
    Discriminator(_source_kind),
]
DocumentSource = Annotated[
    Annotated[Base64Source, Tag("source:base64")]
    | Annotated[UrlSource, Tag("source:url")]
    | Annotated[PlainTextSource, Tag("source:text")],
    Discriminator(_source_kind),
]

# --- content blocks -----------------------------------------------------------------------


class TextBlock(_Model):
    type: Literal["text"]
    text: StrictStr


class ImageBlock(_Model):
    type: Literal["image"]
    source: ImageSource


class DocumentBlock(_Model):
    type: Literal["document"]
    source: DocumentSource


class ToolUseBlock(_Model):
    type: Literal["tool_use"]
    id: StrictStr
    name: StrictStr
    input: dict[str, Any] = Field(default_factory=dict)
    thought_signature: StrictStr | None = Field(default=None, alias="thoughtSignature")
    """Non-standard: the Gemini signature this proxy attached to the block, echoed by clients."""


ToolResultItem = Annotated[
    Annotated[TextBlock, Tag("block:text")]
    | Annotated[ImageBlock, Tag("block:image")]
    | Annotated[DocumentBlock, Tag("block:document")],
    Discriminator(_block_kind),
]


class ToolResultBlock(_Model):
    type: Literal["tool_result"]
    tool_use_id: StrictStr
    content: Annotated[
        Annotated[str, Tag("content:str")] | Annotated[list[ToolResultItem], Tag("content:list")],
        Discriminator(_content_kind),
    ] = ""
    is_error: StrictBool = False


class ThinkingBlock(_Model):
    type: Literal["thinking"]
    thinking: StrictStr
    signature: StrictStr = ""


class RedactedThinkingBlock(_Model):
    type: Literal["redacted_thinking"]
    data: StrictStr = ""


ContentBlock = Annotated[
    Annotated[TextBlock, Tag("block:text")]
    | Annotated[ImageBlock, Tag("block:image")]
    | Annotated[DocumentBlock, Tag("block:document")]
    | Annotated[ToolUseBlock, Tag("block:tool_use")]
    | Annotated[ToolResultBlock, Tag("block:tool_result")]
    | Annotated[ThinkingBlock, Tag("block:thinking")]
    | Annotated[RedactedThinkingBlock, Tag("block:redacted_thinking")],
    Discriminator(_block_kind),
]
BLOCK_TYPES = (
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
)


Effort = Literal["low", "medium", "high", "xhigh", "max"]


class OutputFormat(_Model):
    """Structured outputs: the answer is JSON matching ``schema``."""

    type: Literal["json_schema"]
    json_schema: dict[str, Any] = Field(alias="schema")


class OutputConfig(_Model):
    effort: Effort | None = None
    format: OutputFormat | None = None


class Message(_Model):
    """One turn. ``system`` turns (Claude Code's mid-conversation system messages) hold text
    only and may carry a per-turn ``output_config``; ``system_turns.fold_system_messages``
    folds them into the user turns around them before conversion."""

    role: Literal["user", "assistant", "system"]
    content: Annotated[
        Annotated[str, Tag("content:str")] | Annotated[list[ContentBlock], Tag("content:list")],
        Discriminator(_content_kind),
    ]
    output_config: OutputConfig | None = None

    def blocks(self) -> list[ContentBlock]:
        """The content as blocks (a string becomes one text block)."""
        if isinstance(self.content, str):
            return [TextBlock(type="text", text=self.content)]
        return list(self.content)


# --- tools, tool_choice, thinking -----------------------------------------------------------


class Tool(_Model):
    """A client tool. ``defer_loading`` tools are not in the model's context until the client
    sends them again without it (advanced tool use), so they are not declared upstream.
    ``input_examples`` are appended to the description (the upstream has no such field)."""

    type: StrictStr | None = None
    """Absent or ``custom``; server tools (``web_search_...``) are refused with a 400."""
    name: StrictStr
    description: StrictStr = ""
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    defer_loading: StrictBool = False
    input_examples: list[dict[str, Any]] = Field(default_factory=list)


class ToolChoiceAuto(_Model):
    type: Literal["auto"]
    disable_parallel_tool_use: StrictBool = False


class ToolChoiceAny(_Model):
    type: Literal["any"]
    disable_parallel_tool_use: StrictBool = False


class ToolChoiceTool(_Model):
    type: Literal["tool"]
    name: StrictStr
    disable_parallel_tool_use: StrictBool = False


class ToolChoiceNone(_Model):
    type: Literal["none"]


ToolChoice = Annotated[
    Annotated[ToolChoiceAuto, Tag("tool_choice:auto")]
    | Annotated[ToolChoiceAny, Tag("tool_choice:any")]
    | Annotated[ToolChoiceTool, Tag("tool_choice:tool")]
    | Annotated[ToolChoiceNone, Tag("tool_choice:none")],
    Discriminator(_tool_choice_kind),
]


ThinkingDisplay = StrictStr
"""``omitted`` hides thinking text (signatures stay); ``summarized``, ``updates`` and any newer
value show it."""


class ThinkingEnabled(_Model):
    type: Literal["enabled"]
    budget_tokens: PositiveInt | None = None
    display: ThinkingDisplay | None = None


class ThinkingAdaptive(_Model):
    """``{"type": "adaptive"}`` (newer clients): the model thinks when it can, with the budget
    ``output_config.effort`` asks for (the default budget without one)."""

    type: Literal["adaptive"]
    display: ThinkingDisplay | None = None


class ThinkingDisabled(_Model):
    type: Literal["disabled"]


ThinkingConfig = Annotated[
    Annotated[ThinkingEnabled, Tag("thinking:enabled")]
    | Annotated[ThinkingAdaptive, Tag("thinking:adaptive")]
    | Annotated[ThinkingDisabled, Tag("thinking:disabled")],
    Discriminator(_thinking_kind),
]


class ClearThinkingTurns(_Model):
    type: Literal["thinking_turns"]
    value: PositiveInt


class ClearThinkingEdit(_Model):
    """Drop the thinking of all but the last ``keep`` assistant turns (``"all"`` keeps all)."""

    type: Literal["clear_thinking_20251015"]
    keep: Literal["all"] | ClearThinkingTurns = ClearThinkingTurns(type="thinking_turns", value=1)


class InputTokens(_Model):
    type: Literal["input_tokens"]
    value: PositiveInt


class ToolUses(_Model):
    type: Literal["tool_uses"]
    value: Annotated[int, Field(ge=0)]


class ClearToolUsesEdit(_Model):
    """Past ``trigger`` input tokens, replace the results of all but the last ``keep`` tool uses
    with a placeholder (at least ``clear_at_least`` tokens' worth when given)."""

    type: Literal["clear_tool_uses_20250919"]
    trigger: InputTokens = InputTokens(type="input_tokens", value=100_000)
    keep: ToolUses = ToolUses(type="tool_uses", value=3)
    clear_at_least: InputTokens | None = None
    exclude_tools: list[StrictStr] = Field(default_factory=list)
    clear_tool_inputs: StrictBool = False


ContextEdit = Annotated[
    Annotated[ClearThinkingEdit, Tag("edit:clear_thinking_20251015")]
    | Annotated[ClearToolUsesEdit, Tag("edit:clear_tool_uses_20250919")],
    Discriminator(_edit_kind),
]


class ContextManagement(_Model):
    edits: list[ContextEdit] = Field(default_factory=list)


MODEL_NAME_CHARS = 256
"""The longest model name accepted (real ones are under 64 characters)."""


class MessagesRequest(_Model):
    model: StrictStr = Field(max_length=MODEL_NAME_CHARS)
    messages: list[Message]
    system: (
        Annotated[
            Annotated[str, Tag("content:str")] | Annotated[list[TextBlock], Tag("content:list")],
            Discriminator(_content_kind),
        ]
        | None
    ) = None
    max_tokens: PositiveInt | None = None
    stream: StrictBool = False
    tools: list[Tool] = Field(default_factory=list)
    tool_choice: ToolChoice | None = None
    thinking: ThinkingConfig | None = None
    temperature: StrictFloat | None = None
    top_p: StrictFloat | None = None
    top_k: StrictInt | None = None
    stop_sequences: list[StrictStr] = Field(default_factory=list)
    metadata: dict[str, Any] | None = None
    output_config: OutputConfig | None = None
    output_format: OutputFormat | None = None
    """The older structured-outputs field; ``output_config.format`` wins when both are sent."""
    context_management: ContextManagement | None = None
    safeguards: list[dict[str, Any]] = Field(default_factory=list)
    """Claude Code's ``dangerous_tool_use`` classifier request: the upstream has no such
    classifier, so the server accepts it and says once in its log that tool calls are not
    screened."""

    def system_texts(self) -> list[str]:
        if self.system is None:
            return []
        if isinstance(self.system, str):
            return [self.system]
        return [block.text for block in self.system]

    @property
    def thinking_disabled(self) -> bool:
        return isinstance(self.thinking, ThinkingDisabled)

    @property
    def thinking_budget(self) -> int | None:
        return self.thinking.budget_tokens if isinstance(self.thinking, ThinkingEnabled) else None

    @property
    def thinking_requested(self) -> bool:
        """The client asked for thinking explicitly (``enabled``; ``adaptive`` leaves it to the
        model, so a model that cannot think simply does not)."""
        return isinstance(self.thinking, ThinkingEnabled)

    @property
    def thinking_omitted(self) -> bool:
        """``display: omitted``: thinking blocks keep their signatures but not their text."""
        return (
            isinstance(self.thinking, ThinkingEnabled | ThinkingAdaptive)
            and self.thinking.display == "omitted"
        )

    @property
    def effort(self) -> str | None:
        """The effort in force for the answer: the last turn's ``output_config`` (per-turn
        control) over the request's."""
        for message in reversed(self.messages):
            if message.output_config is not None and message.output_config.effort is not None:
                return message.output_config.effort
        return self.output_config.effort if self.output_config else None

    @property
    def response_format(self) -> OutputFormat | None:
        if self.output_config is not None and self.output_config.format is not None:
            return self.output_config.format
        return self.output_format
