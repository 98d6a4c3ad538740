"""Properties of the conversion layer over generated inputs: the schema sanitiser always yields a
Google schema, and the stream translator always yields a well-formed Anthropic event sequence."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.convert.anthropic import RequestError, estimate_input_tokens, parse_messages_request
from adapters.convert.ids import SequentialIds
from adapters.convert.response import StreamTranslator
from adapters.convert.schema import sanitize_schema
from adapters.convert.signatures import SignatureCache
from adapters.convert.toolnames import ToolNameMap

GOOGLE_KEYS = {"type", "description", "nullable", "enum", "properties", "required", "items"}
GOOGLE_TYPES = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT"}

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))
type_names = st.sampled_from(["string", "number", "integer", "boolean", "array", "object", "null"])
refs = st.sampled_from(["#/$defs/A", "#/definitions/B", "#/nope", "http://x/C", "#"])


def schemas() -> st.SearchStrategy[Any]:
    leaf = st.one_of(
        st.fixed_dictionaries({"type": type_names}),
        st.fixed_dictionaries({"const": scalars}),
        st.fixed_dictionaries({"enum": st.lists(scalars, max_size=4)}),
        st.fixed_dictionaries({"$ref": refs}),
        st.booleans(),
        st.just({}),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.fixed_dictionaries(
                {
                    "type": st.just("object"),
                    "properties": st.dictionaries(st.text(max_size=3), inner, max_size=3),
                },
                optional={
                    "required": st.lists(st.text(max_size=3), max_size=3),
                    "additionalProperties": st.one_of(st.booleans(), inner),
                },
            ),
            st.fixed_dictionaries({"type": st.just("array"), "items": inner}),
            st.fixed_dictionaries({"anyOf": st.lists(inner, max_size=3)}),
            st.fixed_dictionaries({"oneOf": st.lists(inner, max_size=3)}),
            st.fixed_dictionaries({"allOf": st.lists(inner, max_size=3)}),
            st.fixed_dictionaries({"type": st.lists(type_names, max_size=3)}),
        ),
        max_leaves=12,
    )


def assert_google_schema(node: Any) -> None:
    assert isinstance(node, dict)
    assert set(node) <= GOOGLE_KEYS
    assert node["type"] in GOOGLE_TYPES
    if "enum" in node:
        assert node["type"] == "STRING"
        assert all(isinstance(v, str) for v in node["enum"])
    for child in node.get("properties", {}).values():
        assert_google_schema(child)
    if "required" in node:
        assert set(node["required"]) <= set(node["properties"])
    if "items" in node:
        assert_google_schema(node["items"])


@settings(max_examples=300)
@given(schema=schemas(), defs=st.dictionaries(st.sampled_from(["A", "B"]), schemas(), max_size=2))
def test_any_schema_becomes_a_google_schema(schema: Any, defs: dict[str, Any]) -> None:
    root = {"$defs": defs, "definitions": defs, **schema} if isinstance(schema, dict) else schema
    assert_google_schema(sanitize_schema(root))


parts = st.one_of(
    st.fixed_dictionaries({"text": st.sampled_from(["", " ", "hi"])}),
    st.fixed_dictionaries(
        {"thought": st.just(True), "text": st.sampled_from(["", "t"])},
        optional={"thoughtSignature": st.sampled_from(["s", "S" * 60])},
    ),
    st.fixed_dictionaries({"thoughtSignature": st.sampled_from(["s", "S" * 60])}),
    st.fixed_dictionaries(
        {"functionCall": st.fixed_dictionaries({"name": st.just("Bash"), "args": st.just({})})}
    ),
    st.fixed_dictionaries({"inlineData": st.just({"mimeType": "image/png", "data": "A"})}),
)
chunks: st.SearchStrategy[list[dict[str, Any]]] = st.lists(
    st.just({"candidates": [{}]})
    | st.lists(parts, max_size=3).map(
        lambda ps: {"candidates": [{"content": {"role": "model", "parts": ps}}]}
    ),
    max_size=6,
)


@settings(max_examples=300)
@given(stream=chunks)
def test_any_stream_gives_a_well_formed_event_sequence(stream: list[dict[str, Any]]) -> None:
    t = StreamTranslator("m", ToolNameMap(), SignatureCache(), 0.0, ids=SequentialIds())
    events = [e for c in stream for e in t.feed(c)] + t.finish()
    has_parts = any(c["candidates"][0].get("content", {}).get("parts") for c in stream)
    if not has_parts:
        assert events == []
        assert not t.started
        return
    assert events[0]["type"] == "message_start"
    assert [e["type"] for e in events[-2:]] == ["message_delta", "message_stop"]
    open_index: int | None = None
    next_index = 0
    for event in events[1:-2]:
        if event["type"] == "content_block_start":
            assert open_index is None and event["index"] == next_index
            open_index = event["index"]
        elif event["type"] == "content_block_delta":
            assert event["index"] == open_index
        else:
            assert event == {"type": "content_block_stop", "index": open_index}
            open_index, next_index = None, next_index + 1
    assert open_index is None


json_values = st.recursive(
    scalars | st.floats(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=10,
)
field_names = st.sampled_from(
    ["model", "messages", "max_tokens", "system", "tools", "tool_choice", "thinking", "stream"]
)


@settings(max_examples=300)
@given(
    overrides=st.dictionaries(field_names, json_values, max_size=3),
    content=json_values,
)
def test_any_malformed_body_raises_request_error_and_nothing_else(
    overrides: dict[str, Any], content: Any
) -> None:
    data = {
        "model": "m",
        "messages": [{"role": "user", "content": content}],
        **overrides,
    }
    try:
        request = parse_messages_request(data)
    except RequestError as exc:
        assert exc.message and "Traceback" not in exc.message
        assert ": " in exc.message
    else:
        assert estimate_input_tokens(request) >= 1
