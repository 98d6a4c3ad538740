"""Hostile or broken input is a clear 4xx and one log line, never a 500 or a traceback: deep
nesting, numbers JSON does not have, huge names, non-UTF-8 headers, malformed HTTP, a client
that hangs up mid-upload."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from adapters.json_body import MAX_DEPTH
from tests.e2e import BODY, calls, post, proxy, run
from tests.raw_http import port, request, request_bytes, send

JSON = {"Content-Type": "application/json"}
API_ROUTES = ["/v1/messages", "/v1/messages/count_tokens"]


def nested(depth: int) -> Any:
    """A value `depth` containers deep (the outermost counts as 1)."""
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"x": value}
    return value


def tool_schema(depth: int) -> dict[str, Any]:
    """A request whose one tool's schema makes the whole body exactly `depth` levels deep:
    objects nested in `properties` (two levels each), the innermost a string or an enum."""
    leaf: dict[str, Any] = {"type": "string"}
    body: dict[str, Any] = {}
    while depth_of(body) < depth:
        leaf = {"type": "object", "properties": {"f": leaf}}
        tool = {"name": "deep", "description": "d", "input_schema": leaf}
        body = {**BODY, "tools": [tool]}
        if depth_of(body) == depth - 1:  # one level short: an enum adds one
            tool["input_schema"] = _innermost_enum(leaf)
            body = {**BODY, "tools": [tool]}
    return body


def _innermost_enum(schema: dict[str, Any]) -> dict[str, Any]:
    inner = schema["properties"]["f"]
    if inner.get("type") == "object":
        return {**schema, "properties": {"f": _innermost_enum(inner)}}
    return {**schema, "properties": {"f": {"type": "string", "enum": ["a"]}}}


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


def assert_400(status: int, body: Any, mentions: str) -> None:
    assert status == 400, body
    assert body["error"]["type"] == "invalid_request_error"
    assert mentions in body["error"]["message"], body["error"]["message"]


# --- JSON ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", API_ROUTES)
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 100_000])
def test_json_nested_deeper_than_the_limit_is_a_400_that_names_the_limit(
    path: str, depth: int
) -> None:
    async def scenario() -> None:
        async with proxy() as served:
            raw = (
                json.dumps({**BODY, "metadata": nested(depth - 1)}).encode()
                if depth < 1_000
                else b'{"x": ' + b"[" * depth + b"]" * depth + b"}"
            )
            status, _, body = await post(served, raw=raw, path=path)
            assert_400(status, body, f"nested more than {MAX_DEPTH} levels")
            assert calls(served) == []

    run(scenario())


def test_a_tool_schema_nested_right_up_to_the_limit_is_served() -> None:
    """Real Claude Code requests are at most 12 levels deep (tests/fixtures/claude_code/); MCP
    tool schemas can be deeper. The limit leaves room, and the whole pipeline handles it."""

    async def scenario() -> None:
        async with proxy() as served:
            body = tool_schema(MAX_DEPTH)
            assert depth_of(body) == MAX_DEPTH
            status, _, answer = await post(served, body)
            assert status == 200, answer
            status, _, answer = await post(served, body, path="/v1/messages/count_tokens")
            assert status == 200, answer

    run(scenario())


@pytest.mark.parametrize("path", API_ROUTES)
@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
def test_a_number_json_does_not_have_is_a_400_and_never_reaches_upstream(
    path: str, number: str
) -> None:
    async def scenario() -> None:
        async with proxy() as served:
            raw = json.dumps(BODY).encode()[:-1] + b', "temperature": ' + number.encode() + b"}"
            status, _, body = await post(served, raw=raw, path=path)
            assert_400(status, body, number)
            assert "finite" in body["error"]["message"]
            assert calls(served) == []

    run(scenario())


def test_count_tokens_with_a_body_that_is_not_an_object_says_so() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            for raw in (b"[1, 2]", b'"text"', b"42", b"null"):
                status, _, body = await post(served, raw=raw, path="/v1/messages/count_tokens")
                assert_400(status, body, "request body must be a JSON object")
                assert "mapping" not in body["error"]["message"]

    run(scenario())


# --- echoes of client text are bounded ----------------------------------------------------------

MEGABYTE = "m" * 1_000_000


@pytest.mark.parametrize("path", API_ROUTES)
def test_a_megabyte_model_name_is_refused_without_being_echoed(path: str) -> None:
    async def scenario() -> None:
        async with proxy() as served:
            status, _, body = await post(served, {**BODY, "model": MEGABYTE}, path=path)
            assert_400(status, body, "model: must be at most 256 characters")
            assert len(json.dumps(body)) < 1_000

    run(scenario())


ECHOED = [
    ("a block type", {"messages": [{"role": "user", "content": [{"type": MEGABYTE}]}]}),
    (
        "a tool name",
        {"tools": [{"name": MEGABYTE, "input_schema": {}}, {"name": MEGABYTE, "input_schema": {}}]},
    ),
    ("a tool choice", {"tool_choice": {"type": "tool", "name": MEGABYTE}}),
    ("a tool type", {"tools": [{"type": MEGABYTE, "name": "t"}]}),
]


@pytest.mark.parametrize(("what", "fields"), ECHOED, ids=[e[0] for e in ECHOED])
def test_an_error_quotes_at_most_a_few_hundred_characters_of_the_clients_text(
    what: str, fields: dict[str, Any]
) -> None:
    async def scenario() -> None:
        async with proxy() as served:
            status, _, body = await post(served, {**BODY, **fields})
            assert status == 400, body
            assert "mmmm" in body["error"]["message"]  # still says what it was
            assert len(body["error"]["message"]) < 500

    run(scenario())


def test_an_unknown_model_or_page_id_is_quoted_briefly() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            long = "x" * 250  # under the 256 limit, still too long to quote in full
            status, _, body = await post(served, {**BODY, "model": long})
            assert status == 404 and long not in body["error"]["message"]
            answer = await request(served, "GET", "/v1/models/" + "y" * 5_000)
            assert answer.status == 404 and len(answer.body) < 1_000
            answer = await request(served, "GET", "/v1/models?after_id=" + "z" * 5_000)
            assert answer.status == 400 and len(answer.body) < 1_000
            answer = await request(served, "GET", "/" + "p" * 5_000)
            assert answer.status == 404 and len(answer.body) < 1_000

    run(scenario())


# --- headers ------------------------------------------------------------------------------------


def test_a_non_utf8_api_key_is_a_401_not_a_500() -> None:
    async def scenario() -> None:
        async with proxy(server={"api_key": "sk-right"}) as served:
            for key in (b"\xff\xfe", b"sk-right\xff", "sk-rïght".encode("latin-1")):
                answer = await request(
                    served, "POST", "/v1/messages", {**JSON, "x-api-key": key}, BODY
                )
                assert answer.status == 401, answer.body
                answer = await request(
                    served, "GET", "/v1/models", {"Authorization": b"Bearer \xff\xfe"}
                )
                assert answer.status == 401

    run(scenario())


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": b"http://\xff\xfe"},
        {"Sec-Fetch-Site": b"\xff"},
        {"Content-Type": b"application/json\xff"},
        {"anthropic-version": b"\xff\xfe"},
    ],
    ids=["Origin", "Sec-Fetch-Site", "Content-Type", "anthropic-version"],
)
def test_non_utf8_bytes_in_other_headers_are_a_4xx_or_ignored_never_a_500(
    headers: dict[str, bytes],
) -> None:
    async def scenario() -> None:
        async with proxy() as served:
            answer = await request(served, "POST", "/v1/messages", {**JSON, **headers}, BODY)
            assert answer.status in (200, 400, 403, 415), answer.body
            answer = await request(served, "GET", "/health", host=b"127.0.0.1\xff")
            assert 400 <= answer.status < 500

    run(scenario())


# --- malformed HTTP and hang-ups: one log line, no traceback ------------------------------------

MALFORMED = [
    ("bare LF line endings", b"GET /health HTTP/1.1\nHost: 127.0.0.1\n\n"),
    (
        "a 100 KB header",
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
    ),
    (
        "Content-Length with Transfer-Encoding",
        b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    ("no Host", b"GET /health HTTP/1.1\r\n\r\n"),
    ("not HTTP at all", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64),
]


def logged_tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info or r.exc_text or r.stack_info]


@pytest.mark.parametrize(("what", "data"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_http_request_is_a_400_and_one_log_line_without_a_traceback(
    what: str, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with proxy() as served:
            answer = await send(served, data)
            assert answer.status == 400
            status, _, _ = await post(served)  # and the proxy carries on
            assert status == 200

    with caplog.at_level(logging.DEBUG):
        run(scenario())
    assert logged_tracebacks(caplog) == []
    said = [r for r in caplog.records if r.name.startswith("interlock.http")]
    assert len(said) == 1 and "\n" not in said[0].getMessage()
    assert "127.0.0.1" in said[0].getMessage()


def test_a_client_that_hangs_up_mid_upload_is_one_log_line_and_never_reaches_upstream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with proxy() as served:
            body = json.dumps(BODY).encode()
            head = request_bytes("POST", "/v1/messages", JSON, body)
            head = head.replace(b"Content-Length: %d" % len(body), b"Content-Length: 100000")
            _, writer = await asyncio.open_connection("127.0.0.1", port(served))
            writer.write(head[: -len(body) // 2])  # half the body, then gone
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.close()
            await asyncio.sleep(0.2)
            assert calls(served) == []
            status, _, _ = await post(served)
            assert status == 200

    with caplog.at_level(logging.DEBUG):
        run(scenario())
    assert logged_tracebacks(caplog) == []
    said = [r.getMessage() for r in caplog.records if "hung up" in r.getMessage()]
    assert len(said) == 1 and "POST /v1/messages" in said[0]
