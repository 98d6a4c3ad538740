"""Tool input schemas (JSON Schema) turned into the Google ``Schema`` subset the upstream accepts:
``type`` (uppercase), ``description``, ``nullable``, ``enum`` (strings), ``properties``,
``required``, ``items``.

Unlike the seed (§5.5), meaning is kept rather than collapsed into ``OBJECT{reason}``:

- ``anyOf``/``oneOf``/``type: [...]`` with ``null`` -> the other member, ``nullable: true`` and a
  ``(nullable)`` hint; several string enums/consts merge into one enum; several objects merge
  (properties united, ``required`` intersected); otherwise the richest member (object > array >
  string > number/integer/boolean) with an ``(Accepts: a | b)`` hint.
- ``$ref`` is resolved against the root document (``#/$defs/X``, ``#/definitions/X``, any local
  JSON pointer); an unresolvable or recursive reference becomes ``OBJECT`` with ``(See: X)``.
- ``allOf`` members are merged; ``const`` becomes a one-value ``enum`` (non-string consts a hint).
- Free-form objects stay ``OBJECT`` with no invented property; no ``required`` is invented.
- Constraints (``minLength``, ``pattern``, ``format``, ``minimum``, ``default``, …) and enums
  become description hints, each exactly once on the node that declares it.

Tool names live in ``toolnames`` and are re-exported here.

Converted schemas are cached by content (the schema's exact JSON, key order included): Claude
Code sends the same tools with every turn. A cached result is shared by every request that
sends that schema, so callers never mutate what ``sanitize_schema`` returns.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import orjson

from adapters.convert.toolnames import MAX_TOOL_NAME_LENGTH, ToolNameMap, sanitize_tool_name

__all__ = [
    "MAX_TOOL_NAME_LENGTH",
    "ToolNameMap",
    "sanitize_schema",
    "sanitize_tool_name",
]

JsonObject = dict[str, Any]

GOOGLE_TYPES = {
    "string": "STRING",
    "number": "NUMBER",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "array": "ARRAY",
    "object": "OBJECT",
}
_CONSTRAINTS = (
    "format",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "default",
)
_SCORES = {"object": 4, "array": 3, "string": 2, "number": 1, "integer": 1, "boolean": 1}
_KEY_ORDER = ("type", "description", "nullable", "enum", "properties", "required", "items")
MAX_DEPTH = 32
MAX_ENUM_HINT = 10


CACHE_ENTRIES = 512
"""Converted schemas kept (least recently used first out)."""
CACHE_MAX_KEY = 64 * 1024
"""A schema whose JSON is longer than this is converted every time (bounds the cache's size)."""
_cache: OrderedDict[bytes, JsonObject] = OrderedDict()


def sanitize_schema(schema: object) -> JsonObject:
    """Convert one tool's ``input_schema``; anything that is not an object gives ``OBJECT``.
    The result may be shared (cached): never mutate it."""
    if not isinstance(schema, dict):
        return {"type": "OBJECT"}
    try:
        key = orjson.dumps(schema)
    except TypeError:  # a value orjson cannot encode: no caching
        return _Converter(schema).convert(schema, (), 0)
    hit = _cache.get(key)
    if hit is not None:
        _cache.move_to_end(key)
        return hit
    result = _Converter(schema).convert(schema, (), 0)
    if len(key) <= CACHE_MAX_KEY:
        _cache[key] = result
        if len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)
    return result


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _json_type(node: JsonObject) -> str | None:
    """The JSON type a (non-union) schema declares or implies; ``None`` for "any"."""
    declared = node.get("type")
    if isinstance(declared, str):
        return declared
    if "properties" in node or "additionalProperties" in node:
        return "object"
    if "items" in node or "prefixItems" in node:
        return "array"
    values = node.get("enum") if isinstance(node.get("enum"), list) else None
    if "const" in node:
        values = [node["const"]]
    kinds = {_value_type(value) for value in values or [] if value is not None}
    return kinds.pop() if len(kinds) == 1 else None


def _value_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_null(node: JsonObject) -> bool:
    return (
        node.get("type") == "null"
        or ("const" in node and node["const"] is None)
        or node.get("enum") == [None]
    )


def _string_values(node: JsonObject) -> list[str] | None:
    """The values of a string enum / string const, else ``None``."""
    if node.get("type") not in (None, "string"):
        return None
    values = [node["const"]] if "const" in node else node.get("enum")
    if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
        return list(values)
    return None


def _label(node: JsonObject) -> str:
    if isinstance(node.get("title"), str):
        return str(node["title"])
    if "const" in node:
        return _json(node["const"])
    kind = _json_type(node) or "any"
    properties = node.get("properties")
    if kind == "object" and isinstance(properties, dict) and properties:
        return "{" + ", ".join(properties) + "}"
    return kind


def _with_hints(result: JsonObject, hints: list[str]) -> JsonObject:
    """Append ``(hint)`` texts to the description, each at most once."""
    description = str(result.get("description") or "")
    for hint in hints:
        text = f"({hint})"
        if text not in description:
            description = f"{description} {text}" if description else text
    if description:
        result["description"] = description
    return result


def _ordered(result: JsonObject) -> JsonObject:
    return {key: result[key] for key in _KEY_ORDER if key in result}


def _overlay(base: JsonObject, member: JsonObject) -> JsonObject:
    """A union member seen with its parent's annotations; the parent's description wins."""
    parent = {k: v for k, v in base.items() if k not in ("anyOf", "oneOf", "type")}
    merged = {**parent, **member}
    if isinstance(base.get("description"), str):
        merged["description"] = base["description"]
    return merged


class _Converter:
    """One conversion over one root document (the root is where ``$ref`` pointers resolve)."""

    def __init__(self, root: JsonObject) -> None:
        self._root = root

    def convert(self, node: object, refs: tuple[str, ...], depth: int) -> JsonObject:
        if not isinstance(node, dict) or depth > MAX_DEPTH:
            return {"type": "OBJECT"}
        ref = node.get("$ref")
        if isinstance(ref, str):
            return self._convert_ref(node, ref, refs, depth)
        if isinstance(node.get("allOf"), list):
            return self.convert(self._merge_all_of(node, refs), refs, depth + 1)
        for key in ("anyOf", "oneOf"):
            members = node.get(key)
            if isinstance(members, list) and members:
                return self._convert_union(node, members, refs, depth)
        types = node.get("type")
        if isinstance(types, list):
            base = {k: v for k, v in node.items() if k != "type"}
            members = [{"type": t} for t in types if isinstance(t, str)] or [{}]
            return self._convert_union(base, members, refs, depth)
        return self._convert_plain(node, refs, depth)

    # --- references ---------------------------------------------------------------------

    def _resolve(self, ref: str) -> JsonObject | None:
        if not ref.startswith("#"):
            return None
        target: object = self._root
        for raw in ref[1:].split("/")[1:] if ref != "#" else []:
            key = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and key in target:
                target = target[key]
            elif isinstance(target, list) and key.isdigit() and int(key) < len(target):
                target = target[int(key)]
            else:
                return None
        return target if isinstance(target, dict) else None

    def _peek(self, node: object, refs: tuple[str, ...]) -> tuple[JsonObject, tuple[str, ...]]:
        """Follow ``$ref`` chains for inspection (siblings override the target)."""
        if not isinstance(node, dict):
            return {}, refs
        seen = refs
        while isinstance(node.get("$ref"), str) and node["$ref"] not in seen:
            ref = node["$ref"]
            target = self._resolve(ref)
            if target is None:
                break
            seen = (*seen, ref)
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return node, seen

    def _convert_ref(
        self, node: JsonObject, ref: str, refs: tuple[str, ...], depth: int
    ) -> JsonObject:
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        target = self._resolve(ref)
        if target is None or ref in refs:
            result: JsonObject = {"type": "OBJECT"}
            if isinstance(siblings.get("description"), str):
                result["description"] = siblings["description"]
            name = ref.rstrip("/").rsplit("/", 1)[-1] or ref
            return _with_hints(result, [f"See: {name}"])
        return self.convert({**target, **siblings}, (*refs, ref), depth + 1)

    def _merge_all_of(self, node: JsonObject, refs: tuple[str, ...]) -> JsonObject:
        merged = {k: v for k, v in node.items() if k != "allOf"}
        properties = dict(merged.get("properties") or {})
        required = [r for r in merged.get("required") or [] if isinstance(r, str)]
        for member in node["allOf"]:
            resolved, _ = self._peek(member, refs)
            for key, value in resolved.items():
                if key == "properties" and isinstance(value, dict):
                    for name, schema in value.items():
                        properties.setdefault(name, schema)
                elif key == "required" and isinstance(value, list):
                    required += [r for r in value if isinstance(r, str) and r not in required]
                elif key not in ("$defs", "definitions", "$schema", "$id"):
                    merged.setdefault(key, value)
        if properties:
            merged["properties"] = properties
            merged.setdefault("type", "object")
        if required:
            merged["required"] = required
        return merged

    # --- unions ---------------------------------------------------------------------------

    def _convert_union(
        self, base: JsonObject, members: list[Any], refs: tuple[str, ...], depth: int
    ) -> JsonObject:
        members = [member if isinstance(member, dict) else {} for member in members]
        peeked = [self._peek(member, refs) for member in members]
        options = [(node, seen) for node, seen in peeked if not _is_null(node)]
        nullable = len(options) < len(peeked)
        hints: list[str] = []
        if not options:
            result = self.convert(_overlay(base, {"type": "string"}), refs, depth + 1)
        elif len(options) == 1:
            member = members[peeked.index(options[0])]
            result = self.convert(_overlay(base, member), refs, depth + 1)
        else:
            nodes = [node for node, _ in options]
            seen = tuple(dict.fromkeys(ref for _, refs_seen in options for ref in refs_seen))
            strings = [_string_values(node) for node in nodes]
            if all(values is not None for values in strings):
                values = list(dict.fromkeys(v for vs in strings for v in vs or []))
                merged: JsonObject = {"type": "string", "enum": values}
            elif all(_json_type(node) == "object" for node in nodes):
                merged = self._merge_objects(nodes)
                hints.append("Accepts one of: " + " | ".join(_label(node) for node in nodes))
            else:
                merged = max(nodes, key=lambda node: _SCORES.get(_json_type(node) or "", 0))
                labels = dict.fromkeys(_label(node) for node in nodes)
                hints.append("Accepts: " + " | ".join(labels))
            result = self.convert(_overlay(base, merged), seen, depth + 1)
        if nullable:
            result["nullable"] = True
            hints.append("nullable")
        return _ordered(_with_hints(result, hints))

    @staticmethod
    def _merge_objects(nodes: list[JsonObject]) -> JsonObject:
        properties: JsonObject = {}
        required: set[str] | None = None
        for node in nodes:
            for name, schema in (node.get("properties") or {}).items():
                properties.setdefault(name, schema)
            own = {r for r in node.get("required") or [] if isinstance(r, str)}
            required = own if required is None else required & own
        merged: JsonObject = {"type": "object", "properties": properties}
        if required:
            merged["required"] = [name for name in properties if name in required]
        return merged

    # --- plain schemas --------------------------------------------------------------------

    def _convert_plain(self, node: JsonObject, refs: tuple[str, ...], depth: int) -> JsonObject:
        kind = _json_type(node)
        nullable = kind == "null"
        result: JsonObject = {
            "type": "STRING" if nullable else GOOGLE_TYPES.get(kind or "", "OBJECT")
        }
        if isinstance(node.get("description"), str) and node["description"]:
            result["description"] = node["description"]
        hints: list[str] = []
        if result["type"] == "OBJECT":
            hints += self._object_fields(node, result, refs, depth)
        elif result["type"] == "ARRAY":
            hints += self._array_fields(node, result, refs, depth)
        values = [node["const"]] if "const" in node else node.get("enum")
        if isinstance(values, list) and values:
            nullable = nullable or None in values
            present = [value for value in values if value is not None]
            if result["type"] == "STRING" and all(isinstance(v, str) for v in present):
                result["enum"] = present
                if 2 <= len(present) <= MAX_ENUM_HINT:
                    hints.append("Allowed: " + ", ".join(present))
            elif present:
                label = "Must be" if len(present) == 1 else "Allowed"
                hints.append(f"{label}: " + ", ".join(_json(v) for v in present))
        constraints = [f"{key}: {_constraint(node[key])}" for key in _CONSTRAINTS if key in node]
        if constraints:
            hints.append(", ".join(constraints))
        if nullable:
            result["nullable"] = True
            hints.append("nullable")
        return _ordered(_with_hints(result, hints))

    def _object_fields(
        self, node: JsonObject, result: JsonObject, refs: tuple[str, ...], depth: int
    ) -> list[str]:
        properties = node.get("properties")
        converted: JsonObject = {}
        if isinstance(properties, dict):
            for name, schema in properties.items():
                converted[str(name)] = self.convert(schema, refs, depth + 1)
        if converted:
            result["properties"] = converted
        required = node.get("required")
        if isinstance(required, list):
            kept = list(dict.fromkeys(r for r in required if isinstance(r, str) and r in converted))
            if kept:
                result["required"] = kept
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            values = self.convert(extra, refs, depth + 1)
            label = str(values["type"]).lower()
            if converted:
                return [f"additional properties: {label}"]
            return [f"free-form object; values: {label}"]
        if extra is True and not converted:
            return ["free-form object"]
        return []

    def _array_fields(
        self, node: JsonObject, result: JsonObject, refs: tuple[str, ...], depth: int
    ) -> list[str]:
        items = node.get("items")
        if isinstance(node.get("prefixItems"), list):
            items = node["prefixItems"]
        if isinstance(items, list):
            if not items:
                return []
            result["items"] = self.convert(items[0], refs, depth + 1)
            labels = [_label(self._peek(item, refs)[0]) for item in items]
            return ["tuple: " + ", ".join(labels)]
        if isinstance(items, dict):
            result["items"] = self.convert(items, refs, depth + 1)
        return []


def _constraint(value: object) -> str:
    return value if isinstance(value, str) else _json(value)
