"""A web page cannot drive the proxy: browser defences against the real proxy on 127.0.0.1,
with raw HTTP so that every header (`Host` included) is exactly what a browser would send."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e import BODY, calls, proxy, run
from tests.raw_http import Answer, port, request

JSON = {"Content-Type": "application/json"}
API_ROUTES = ["/v1/messages", "/v1/messages/count_tokens"]


def assert_refused(answer: Answer, status: int, error_type: str, mentions: str) -> None:
    assert answer.status == status, answer.body
    body = answer.json()
    assert body["type"] == "error" and body["error"]["type"] == error_type
    assert mentions in body["error"]["message"]
    assert answer.headers["x-should-retry"] == "false"
    assert answer.headers["request-id"]


# --- content type: a browser's "simple request" needs no preflight -------------------------------

SIMPLE_BODIES = [
    ("text/plain (a fetch or a form with enctype text/plain)", {"Content-Type": "text/plain"}),
    ("form-encoded", {"Content-Type": "application/x-www-form-urlencoded"}),
    ("multipart form", {"Content-Type": "multipart/form-data; boundary=x"}),
    ("no content type at all (a fetch with a Blob body)", {}),
]


@pytest.mark.parametrize("path", API_ROUTES)
@pytest.mark.parametrize(
    ("kind", "headers"), SIMPLE_BODIES, ids=[kind.split(" (")[0] for kind, _ in SIMPLE_BODIES]
)
def test_a_json_body_sent_as_a_simple_request_is_refused_with_415_and_never_reaches_upstream(
    path: str, kind: str, headers: dict[str, str]
) -> None:
    async def scenario() -> None:
        async with proxy() as served:
            answer = await request(served, "POST", path, headers, BODY)
            assert_refused(answer, 415, "invalid_request_error", "application/json")
            assert calls(served) == []

    run(scenario())


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"],
)
def test_the_json_content_types_the_sdks_and_claude_code_send_are_served(content_type: str) -> None:
    async def scenario() -> None:
        async with proxy() as served:
            answer = await request(
                served, "POST", "/v1/messages", {"Content-Type": content_type}, BODY
            )
            assert answer.status == 200, answer.body
            answer = await request(
                served, "POST", "/v1/messages/count_tokens", {"Content-Type": content_type}, BODY
            )
            assert answer.status == 200 and answer.json()["input_tokens"] > 0

    run(scenario())


# --- Origin and Sec-Fetch-Site: what the browser says about the page -----------------------------

CROSS_SITE = [
    ("a page on another site", {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}),
    ("Origin alone (an older browser)", {"Origin": "https://evil.example"}),
    ("Sec-Fetch-Site alone", {"Sec-Fetch-Site": "cross-site"}),
    (
        "another port on localhost",
        {"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"},
    ),
    ("a sandboxed frame or a file", {"Origin": "null"}),
]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("POST", "/v1/messages", BODY), ("GET", "/accounts", b""), ("GET", "/health", b"")],
)
@pytest.mark.parametrize(
    ("who", "headers"), CROSS_SITE, ids=[who.split(" (")[0] for who, _ in CROSS_SITE]
)
def test_a_request_a_browser_marks_as_cross_site_is_refused_with_403(
    method: str, path: str, body: Any, who: str, headers: dict[str, str]
) -> None:
    async def scenario() -> None:
        async with proxy() as served:
            answer = await request(served, method, path, {**JSON, **headers}, body)
            assert_refused(answer, 403, "permission_error", "cross-site")
            assert b"sandbox.invalid" not in answer.body  # no account email
            assert calls(served) == []

    run(scenario())


def test_a_request_from_the_proxys_own_origin_or_typed_into_the_address_bar_is_served() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            host = f"127.0.0.1:{port(served)}"  # as a browser sends it
            for headers in (
                {"Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"},
                {"Sec-Fetch-Site": "none"},
            ):
                answer = await request(
                    served, "POST", "/v1/messages", {**JSON, **headers}, BODY, host=host
                )
                assert answer.status == 200, (headers, answer.body)
                answer = await request(served, "GET", "/accounts", headers, host=host)
                assert answer.status == 200

    run(scenario())


# --- Host: DNS rebinding ---------------------------------------------------------------------


def test_a_dns_rebinding_page_cannot_read_the_accounts_or_send_a_request() -> None:
    """After rebinding, the page is same-origin with the proxy as far as the browser knows; only
    the `Host` header still names the attacker's domain."""

    async def scenario() -> None:
        async with proxy() as served:
            evil = f"rebind.evil.example:{port(served)}"
            same = {"Origin": f"http://{evil}", "Sec-Fetch-Site": "same-origin"}
            for method, path, body in (
                ("GET", "/accounts", b""),
                ("GET", "/health", b""),
                ("POST", "/v1/messages", BODY),
            ):
                answer = await request(served, method, path, {**JSON, **same}, body, host=evil)
                assert_refused(answer, 421, "invalid_request_error", "rebind.evil.example")
                assert "allowed_hosts" in answer.json()["error"]["message"]
                assert b"sandbox.invalid" not in answer.body
            assert calls(served) == []

    run(scenario())


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.1:{port}",
        "localhost:{port}",
        "LOCALHOST",
        "[::1]:{port}",
        "[::1]",
        "192.168.1.20:{port}",
    ],
)
def test_loopback_names_and_ip_addresses_are_accepted_as_host_with_any_port(host: str) -> None:
    async def scenario() -> None:
        async with proxy() as served:
            answer = await request(served, "GET", "/health", host=host.format(port=port(served)))
            assert answer.status == 200, answer.body

    run(scenario())


def test_a_name_in_allowed_hosts_is_accepted_and_others_still_refused() -> None:
    async def scenario() -> None:
        async with proxy(server={"allowed_hosts": ["proxy.lan"]}) as served:
            answer = await request(served, "GET", "/health", host="proxy.lan:8080")
            assert answer.status == 200
            answer = await request(served, "GET", "/health", host="other.lan:8080")
            assert answer.status == 421

    run(scenario())


# --- the API key: every route but the liveness probes ------------------------------------------

KEYED_ROUTES = [
    ("GET", "/health"),
    ("GET", "/accounts"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/claude-sonnet-4-6"),
    ("POST", "/v1/messages/count_tokens"),
    ("POST", "/api/event_logging/batch"),
    ("GET", "/no/such/route"),
]


@pytest.mark.parametrize(("method", "path"), KEYED_ROUTES)
def test_with_an_api_key_set_every_route_but_the_liveness_probes_requires_it(
    method: str, path: str
) -> None:
    async def scenario() -> None:
        async with proxy(server={"api_key": "sk-right"}) as served:
            body: Any = BODY if method == "POST" else b""
            answer = await request(served, method, path, JSON, body)
            assert_refused(answer, 401, "authentication_error", "API key")
            assert b"sandbox.invalid" not in answer.body
            answer = await request(served, method, path, {**JSON, "x-api-key": "sk-right"}, body)
            assert answer.status in (200, 404), answer.body

    run(scenario())


@pytest.mark.parametrize("method", ["HEAD", "GET"])
@pytest.mark.parametrize("path", ["/", "/api/hello"])
def test_with_an_api_key_set_the_liveness_probes_claude_code_sends_still_answer_without_it(
    method: str, path: str
) -> None:
    async def scenario() -> None:
        async with proxy(server={"api_key": "sk-right"}) as served:
            answer = await request(served, method, path, {"User-Agent": "Bun/1.4.6"})
            assert answer.status == 200
            if method == "GET":
                assert answer.json() == {"status": "ok", "service": "interlock"}

    run(scenario())
