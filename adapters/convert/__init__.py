"""Anthropic Messages API <-> Cloud Code conversion: pure functions and translators, no I/O.

Modules, one concept each:

- ``anthropic``: validate an incoming ``/v1/messages`` body (``parse_messages_request``) and the
  count_tokens estimate (``estimate_input_tokens``); ``messages``: the request models.
- ``request``: ``to_cloudcode`` builds the upstream envelope; ``contents`` converts messages and
  blocks to parts; ``recovery`` closes tool loops for thinking models.
- ``schema``: tool input schemas to Google schemas; ``toolnames``: ``ToolNameMap``.
- ``signatures``: ``SignatureCache`` (bounded, TTL, time passed in).
- ``response``: ``StreamTranslator``, ``to_message``, ``placeholder_events``.
- ``family``: model family and thinking-model detection; ``ids``: id factories.
"""

from adapters.convert.anthropic import (
    MessagesRequest,
    RequestError,
    estimate_input_tokens,
    parse_messages_request,
)
from adapters.convert.family import is_thinking_model, model_family
from adapters.convert.ids import IdFactory, SequentialIds, random_id
from adapters.convert.request import to_cloudcode
from adapters.convert.response import StreamTranslator, placeholder_events, to_message
from adapters.convert.schema import sanitize_schema
from adapters.convert.signatures import SignatureCache
from adapters.convert.toolnames import ToolNameMap, sanitize_tool_name

__all__ = [
    "IdFactory",
    "MessagesRequest",
    "RequestError",
    "SequentialIds",
    "SignatureCache",
    "StreamTranslator",
    "ToolNameMap",
    "estimate_input_tokens",
    "is_thinking_model",
    "model_family",
    "parse_messages_request",
    "placeholder_events",
    "random_id",
    "sanitize_schema",
    "sanitize_tool_name",
    "to_cloudcode",
    "to_message",
]
