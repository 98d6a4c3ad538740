"""The Anthropic ``POST /v1/messages`` request as typed, immutable pydantic models.

Unknown fields are accepted and ignored everywhere (clients send new fields; ``cache_control`` is
dropped this way). Unions use callable discriminators whose tags carry a ``<union>:`` prefix, so
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


class Message(_Model):
    role: Literal["user", "assistant"]
    content: Annotated[
        Annotated[str, Tag("content:str")] | Annotated[list[ContentBlock], Tag("content:list")],
        Discriminator(_content_kind),
    ]

    def blocks(self) -> list[ContentBlock]:
        """The content as blocks (a string becomes one text block)."""
        if isinstance(self.content, str):
            return [TextBlock(type="text", text=self.content)]
        return list(self.content)


# --- tools, tool_choice, thinking -----------------------------------------------------------


class Tool(_Model):
    name: StrictStr
    description: StrictStr = ""
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})


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


class ThinkingEnabled(_Model):
    type: Literal["enabled"]
    budget_tokens: PositiveInt | None = None


class ThinkingAdaptive(_Model):
    """``{"type": "adaptive"}`` (newer clients): thinking on with the default budget."""

    type: Literal["adaptive"]


class ThinkingDisabled(_Model):
    type: Literal["disabled"]


ThinkingConfig = Annotated[
    Annotated[ThinkingEnabled, Tag("thinking:enabled")]
    | Annotated[ThinkingAdaptive, Tag("thinking:adaptive")]
    | Annotated[ThinkingDisabled, Tag("thinking:disabled")],
    Discriminator(_thinking_kind),
]


class MessagesRequest(_Model):
    model: StrictStr
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
