"""Tool schemas become Google schemas that keep their meaning; tool names map both ways."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.convert import schema as schema_module
from adapters.convert.anthropic import parse_messages_request
from adapters.convert.request import to_cloudcode
from adapters.convert.schema import ToolNameMap, sanitize_schema, sanitize_tool_name
from adapters.convert.signatures import SignatureCache


def prop(schema: dict[str, Any], name: str) -> dict[str, Any]:
    result = sanitize_schema({"type": "object", "properties": {name: schema}})
    value: dict[str, Any] = result["properties"][name]
    return value


def test_plain_object_schema_gets_uppercase_types_and_keeps_required() -> None:
    schema = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "what to run"},
            "timeout": {"type": "integer"},
            "ratio": {"type": "number"},
            "dry": {"type": "boolean"},
            "args": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["command", "missing"],
        "additionalProperties": False,
        "$schema": "http://json-schema.org/draft-07/schema#",
    }
    assert sanitize_schema(schema) == {
        "type": "OBJECT",
        "properties": {
            "command": {"type": "STRING", "description": "what to run"},
            "timeout": {"type": "INTEGER"},
            "ratio": {"type": "NUMBER"},
            "dry": {"type": "BOOLEAN"},
            "args": {"type": "ARRAY", "items": {"type": "STRING"}},
        },
        "required": ["command"],
    }


def test_any_of_string_or_null_becomes_nullable_string_with_a_hint_not_an_object() -> None:
    assert prop({"anyOf": [{"type": "string"}, {"type": "null"}], "description": "Path"}, "p") == {
        "type": "STRING",
        "description": "Path (nullable)",
        "nullable": True,
    }


def test_type_list_with_null_becomes_nullable() -> None:
    assert prop({"type": ["integer", "null"]}, "n") == {
        "type": "INTEGER",
        "description": "(nullable)",
        "nullable": True,
    }


def test_union_of_different_types_keeps_the_richest_and_names_the_others() -> None:
    assert prop(
        {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}, "x"
    ) == {
        "type": "ARRAY",
        "description": "(Accepts: string | array)",
        "items": {"type": "STRING"},
    }


def test_union_of_objects_merges_properties_and_keeps_common_required() -> None:
    schema = {
        "oneOf": [
            {
                "type": "object",
                "properties": {"id": {"type": "string"}, "a": {"type": "integer"}},
                "required": ["id", "a"],
            },
            {
                "type": "object",
                "properties": {"id": {"type": "string"}, "b": {"type": "boolean"}},
                "required": ["id"],
            },
        ]
    }
    assert prop(schema, "o") == {
        "type": "OBJECT",
        "description": "(Accepts one of: {id, a} | {id, b})",
        "properties": {
            "id": {"type": "STRING"},
            "a": {"type": "INTEGER"},
            "b": {"type": "BOOLEAN"},
        },
        "required": ["id"],
    }


def test_const_becomes_a_one_value_enum() -> None:
    assert prop({"const": "read"}, "mode") == {"type": "STRING", "enum": ["read"]}


def test_union_of_string_consts_becomes_one_enum() -> None:
    assert prop({"oneOf": [{"const": "a"}, {"const": "b"}, {"type": "null"}]}, "m") == {
        "type": "STRING",
        "description": "(Allowed: a, b) (nullable)",
        "nullable": True,
        "enum": ["a", "b"],
    }


def test_non_string_const_and_enum_become_hints_because_google_enums_are_strings() -> None:
    assert prop({"const": 5}, "n") == {"type": "INTEGER", "description": "(Must be: 5)"}
    assert prop({"type": "integer", "enum": [1, 2]}, "n") == {
        "type": "INTEGER",
        "description": "(Allowed: 1, 2)",
    }


def test_ref_is_resolved_against_defs_and_definitions() -> None:
    schema = {
        "type": "object",
        "properties": {
            "start": {"$ref": "#/$defs/Point", "description": "Where to begin"},
            "end": {"$ref": "#/definitions/Point"},
        },
        "$defs": {
            "Point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}
        },
        "definitions": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}}},
    }
    result = sanitize_schema(schema)
    assert result["properties"]["start"] == {
        "type": "OBJECT",
        "description": "Where to begin",
        "properties": {"x": {"type": "NUMBER"}},
        "required": ["x"],
    }
    assert result["properties"]["end"] == {
        "type": "OBJECT",
        "properties": {"x": {"type": "NUMBER"}},
    }


def test_unresolvable_ref_becomes_object_with_a_see_hint() -> None:
    assert prop({"$ref": "https://example.com/Thing"}, "t") == {
        "type": "OBJECT",
        "description": "(See: Thing)",
    }


def test_recursive_ref_stops_after_one_expansion() -> None:
    schema = {
        "$ref": "#/$defs/Node",
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"value": {"type": "string"}, "next": {"$ref": "#/$defs/Node"}},
            }
        },
    }
    assert sanitize_schema(schema) == {
        "type": "OBJECT",
        "properties": {
            "value": {"type": "STRING"},
            "next": {"type": "OBJECT", "description": "(See: Node)"},
        },
    }


def test_all_of_members_are_merged() -> None:
    schema = {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "integer"}}, "required": ["b"]},
        ]
    }
    assert prop(schema, "m") == {
        "type": "OBJECT",
        "properties": {"a": {"type": "STRING"}, "b": {"type": "INTEGER"}},
        "required": ["a", "b"],
    }


def test_free_form_object_stays_an_object_without_an_invented_reason_property() -> None:
    assert prop({"type": "object", "additionalProperties": {"type": "string"}}, "env") == {
        "type": "OBJECT",
        "description": "(free-form object; values: string)",
    }
    assert sanitize_schema({"type": "object"}) == {"type": "OBJECT"}
    assert sanitize_schema({"type": "object", "properties": {}}) == {"type": "OBJECT"}


def test_nested_enum_hint_appears_exactly_once() -> None:
    schema = {
        "type": "object",
        "properties": {
            "outer": {
                "type": "object",
                "properties": {
                    "inner": {
                        "type": "array",
                        "items": {"type": "string", "enum": ["x", "y"], "description": "Pick"},
                    }
                },
            }
        },
    }
    leaf = sanitize_schema(schema)["properties"]["outer"]["properties"]["inner"]["items"]
    assert leaf == {"type": "STRING", "description": "Pick (Allowed: x, y)", "enum": ["x", "y"]}


def test_constraints_become_one_hint_and_are_removed() -> None:
    schema = {"type": "string", "minLength": 1, "maxLength": 10, "pattern": "^a", "format": "uri"}
    assert prop(schema, "s") == {
        "type": "STRING",
        "description": "(format: uri, pattern: ^a, minLength: 1, maxLength: 10)",
    }


def test_sanitising_twice_does_not_repeat_hints() -> None:
    once = sanitize_schema(
        {"type": "object", "properties": {"m": {"type": "string", "enum": ["a", "b"]}}}
    )
    lowered = {
        "type": "object",
        "properties": {
            "m": {
                "type": "string",
                "enum": ["a", "b"],
                "description": once["properties"]["m"]["description"],
            }
        },
    }
    assert sanitize_schema(lowered) == once


def test_non_object_schema_becomes_an_empty_object() -> None:
    assert sanitize_schema(None) == {"type": "OBJECT"}
    assert sanitize_schema(True) == {"type": "OBJECT"}


def test_tool_names_are_sanitised_and_truncated() -> None:
    assert sanitize_tool_name("mcp.server/tool") == "mcp_server_tool"
    assert sanitize_tool_name("a" * 70) == "a" * 64
    assert sanitize_tool_name("") == "tool"


def test_tool_name_map_maps_sanitised_names_back_to_the_clients_names() -> None:
    names = ToolNameMap(["mcp.server/tool", "Bash"])
    assert names.to_upstream("mcp.server/tool") == "mcp_server_tool"
    assert names.to_client("mcp_server_tool") == "mcp.server/tool"
    assert names.to_client("Bash") == "Bash"
    assert names.to_client("never_declared") == "never_declared"


def test_colliding_sanitised_names_get_suffixes_and_stay_reversible() -> None:
    names = ToolNameMap(["a.b", "a/b", "a b", "x" * 64 + "!", "x" * 64 + "?"])
    assert names.to_upstream("a.b") == "a_b"
    assert names.to_upstream("a/b") == "a_b_2"
    assert names.to_upstream("a b") == "a_b_3"
    assert names.to_upstream("x" * 64 + "?") == "x" * 62 + "_2"
    for client, upstream in names.items():
        assert names.to_client(upstream) == client
        assert len(upstream) <= 64


# the content cache ------------------------------------------------------------------------------
def test_the_same_schema_sent_again_converts_once_and_gives_the_same_result() -> None:
    schema = {"type": "object", "properties": {"path": {"type": "string", "minLength": 1}}}
    first = sanitize_schema(schema)
    again = sanitize_schema(json.loads(json.dumps(schema)))  # an equal copy, as a new request
    assert again is first


def test_schemas_that_differ_only_in_key_order_are_converted_each_in_its_own_order() -> None:
    ab = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}
    ba = {"type": "object", "properties": {"b": {"type": "string"}, "a": {"type": "string"}}}
    assert list(sanitize_schema(ab)["properties"]) == ["a", "b"]
    assert list(sanitize_schema(ba)["properties"]) == ["b", "a"]


def test_the_cache_keeps_at_most_its_bound_and_skips_what_it_cannot_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(schema_module, "CACHE_ENTRIES", 3)
    schema_module._cache.clear()
    for i in range(10):
        sanitize_schema({"type": "object", "description": f"tool {i}"})
    assert len(schema_module._cache) == 3
    huge_int = {"type": "integer", "maximum": 2**70}  # orjson cannot encode it: not cached
    assert sanitize_schema(huge_int)["type"] == "INTEGER"
    assert len(schema_module._cache) == 3


def test_converting_a_request_never_changes_a_cached_schema() -> None:
    tool = {
        "name": "read",
        "input_schema": {"type": "object", "properties": {"p": {"type": "string"}}},
    }
    cached = sanitize_schema(tool["input_schema"])
    before = json.dumps(cached)
    request = parse_messages_request(
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": 10,
            "tools": [tool, {"name": "write", "input_schema": tool["input_schema"]}],
            "messages": [{"role": "user", "content": "hi"}],
        }
    )
    for _ in range(2):
        to_cloudcode(
            request,
            upstream_model="claude-sonnet-4-6",
            project="project",
            session_id="s",
            request_id="r",
            signatures=SignatureCache(),
            system_instruction="",
            now=0.0,
        )
    assert json.dumps(cached) == before
