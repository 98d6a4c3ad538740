"""The proxy's HTTP surface: bad input, keys, limits, disconnects, routes, and no leaked secrets."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import pytest

from adapters.fake_upstream import empty, hang, preset, stream, text
from adapters.server import PROXY
from tests.e2e import BODY, calls, post, proxy, run, streamed_text

BAD_INPUT = [
    ("malformed JSON", b"{not json", "not valid JSON"),
    (
        "missing messages",
        json.dumps({"model": "claude-sonnet-4-6", "max_tokens": 5}).encode(),
        "messages",
    ),
    ("empty messages", json.dumps({**BODY, "messages": []}).encode(), "messages"),
    ("mistyped max_tokens", json.dumps({**BODY, "max_tokens": "lots"}).encode(), "max_tokens"),
    ("a body that is not an object", b"[1, 2]", ""),
]


@pytest.mark.parametrize(("name", "raw", "mentions"), BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_is_a_400_that_says_what_is_wrong(name: str, raw: bytes, mentions: str) -> None:
    async def scenario() -> None:
        async with proxy() as served:
            status, _, body = await post(served, raw=raw)
            assert status == 400
            assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
            assert mentions in body["error"]["message"]
            assert "Traceback" not in body["error"]["message"]
            assert calls(served) == []

    run(scenario())


def test_an_unknown_model_is_a_404_not_found_error() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            status, _, body = await post(served, {**BODY, "model": "gpt-17"})
            assert (status, body["error"]["type"]) == (404, "not_found_error")
            assert "gpt-17" in body["error"]["message"]

    run(scenario())


def test_an_oversized_body_is_a_413() -> None:
    async def scenario() -> None:
        async with proxy(server={"body_limit_mb": 0.01}) as served:
            big = {**BODY, "messages": [{"role": "user", "content": "x" * 20_000}]}
            status, _, body = await post(served, big)
            assert (status, body["error"]["type"]) == (413, "request_too_large")

    run(scenario())


def test_with_an_api_key_set_a_wrong_or_missing_key_is_a_401() -> None:
    async def scenario() -> None:
        async with proxy(server={"api_key": "sk-right"}) as served:
            for headers in ({}, {"x-api-key": "sk-wrong"}, {"Authorization": "Bearer nope"}):
                status, _, body = await post(served, headers=headers)
                assert (status, body["error"]["type"]) == (401, "authentication_error")
            for headers in ({"x-api-key": "sk-right"}, {"Authorization": "Bearer sk-right"}):
                status, _, _ = await post(served, headers=headers)
                assert status == 200
            assert len(calls(served)) == 2

    run(scenario())


def test_count_tokens_answers_an_estimate() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            status, _, body = await post(
                served,
                {
                    "model": "claude-sonnet-4-6",
                    "messages": [{"role": "user", "content": "hello " * 400}],
                },
                path="/v1/messages/count_tokens",
            )
            assert status == 200 and 400 <= body["input_tokens"] <= 1200

    run(scenario())


def test_models_health_accounts_and_telemetry_routes_answer_without_upstream_calls() -> None:
    """Only the model catalog's startup refresh (a token and one model list) reaches the
    upstream (quota reading, which adds one read per account at start, is off here); these
    routes add nothing."""

    async def scenario() -> None:
        async with proxy(quota={"enabled": False}) as served, aiohttp.ClientSession() as session:
            async with session.get(served.url + "/v1/models") as r:
                models = await r.json()
                assert any(m["id"] == "claude-sonnet-4-6" for m in models["data"])
            assert served.fake is not None
            assert [r.call for r in served.fake.requests()] == ["token", "fetchAvailableModels"]
            served.fake.clear_log()
            async with session.get(served.url + "/health") as r:
                health = await r.json()
                assert health["status"] == "ok" and health["accounts"]["usable"] == 2
                assert health["state_writes"] == {"pending": 0, "failing": None}
            async with session.get(served.url + "/accounts") as r:
                assert len((await r.json())["accounts"]) == 2
            async with session.post(served.url + "/api/event_logging/batch", json={"x": 1}) as r:
                assert r.status == 200
            async with session.get(served.url + "/nope") as r:
                body = await r.json()
                assert (r.status, body["error"]["type"]) == (404, "not_found_error")
            assert served.fake is not None and served.fake.requests() == []

    run(scenario())


def test_a_client_that_leaves_mid_wait_cancels_upstream_and_releases_the_account() -> None:
    async def scenario() -> None:
        async with proxy(upstream={"first_byte_timeout_s": 30}) as served:
            assert served.fake is not None
            served.fake.script("account-1", [hang()])
            async with aiohttp.ClientSession() as session:
                with pytest.raises(asyncio.TimeoutError):
                    async with session.post(
                        served.url + "/v1/messages",
                        json={**BODY, "stream": True},
                        timeout=aiohttp.ClientTimeout(total=0.5),
                    ) as r:
                        await r.read()
            await _until(lambda: _in_flight(served) == 0)
            record = served.fake.requests(path="streamGenerateContent")[0]
            await _until(lambda: record.finished)
            status, _, _ = await post(served)  # and the proxy keeps serving
            assert status == 200

    run(scenario())


def test_a_client_that_leaves_mid_stream_cancels_upstream_and_releases_the_account() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            assert served.fake is not None
            served.fake.script("account-1", [stream(text("x" * 400), chunks=200, delay=0.05)])
            async with (
                aiohttp.ClientSession() as session,
                session.post(served.url + "/v1/messages", json={**BODY, "stream": True}) as r,
            ):
                await r.content.readline()  # the stream has committed
            upstream = served.fake.requests(path="streamGenerateContent")[0]
            # the fake notices the cancelled upstream stream a moment after the lease is back
            await _until(lambda: _in_flight(served) == 0 and upstream.finished is not None)
            status, _, _ = await post(served)
            assert status == 200

    run(scenario())


def _in_flight(served: Any) -> int:
    return int(served.runner.app[PROXY].engine.pool.leases())


async def _until(condition: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def test_no_secret_reaches_logs_errors_or_listings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secrets: list[str] = []

    async def scenario() -> None:
        async with proxy(server={"api_key": "sk-proxy-SECRET"}) as served:
            assert served.fake is not None
            for account in served.fake.accounts:
                secrets.append(account.refresh_token)
                secrets.append(served.fake.access_token(account.name))
            served.fake.script("account-1", [preset("revoked_401"), preset("auth_401")])
            served.fake.script("account-2", [preset("server_500"), preset("quota_429")])
            outputs = [await post(served, headers={"x-api-key": "sk-proxy-SECRET"})]
            outputs.append(await post(served, headers={"x-api-key": "bad"}))
            async with (
                aiohttp.ClientSession() as session,
                session.get(served.url + "/accounts") as r,
            ):
                outputs.append((r.status, None, await r.text()))
            text_out = json.dumps([str(o[2]) for o in outputs])
            for secret in [*secrets, "sk-proxy-SECRET"]:
                assert secret not in text_out
                assert secret not in caplog.text

    run(scenario())
    assert secrets


def test_a_long_wait_keeps_the_stream_alive_with_pings_then_streams_the_answer() -> None:
    async def scenario() -> None:
        policy = {
            "capacity_backoff_tiers_ms": [1200],
            "max_capacity_retries": 1,
            "max_wait_before_error_ms": 5000,
        }
        async with proxy(accounts=1, policy=policy, server={"ping_interval_s": 0.3}) as served:
            assert served.fake is not None
            served.fake.script("account-1", [preset("capacity_429")] * 2)  # both endpoints
            status, headers, events = await post(served, stream=True)
            assert status == 200 and headers["content-type"].startswith("text/event-stream")
            kinds = [e["type"] for e in events]
            first_content = kinds.index("message_start")
            assert kinds[:first_content].count("ping") >= 2
            assert kinds[-1] == "message_stop"

    run(scenario())


def test_an_error_after_pings_arrives_as_one_sse_error_event() -> None:
    async def scenario() -> None:
        policy = {
            "capacity_backoff_tiers_ms": [1200],
            "max_capacity_retries": 1,
            "max_wait_before_error_ms": 5000,
        }
        async with proxy(accounts=1, policy=policy, server={"ping_interval_s": 0.3}) as served:
            assert served.fake is not None
            served.fake.script("account-1", [preset("capacity_429")] * 2 + [preset("invalid_400")])
            status, _, events = await post(served, stream=True)
            assert status == 200
            assert [e["type"] for e in events if e["type"] != "ping"] == ["error"]
            assert events[-1]["error"]["type"] == "invalid_request_error"

    run(scenario())


def test_an_empty_answer_becomes_a_placeholder_message_only_when_configured() -> None:
    async def scenario() -> None:
        policy = {"empty_response_placeholder": True, "max_retry_rounds": 0}
        async with proxy(accounts=1, policy=policy) as served:
            assert served.fake is not None
            served.fake.script("account-1", [empty()] * 4)  # both endpoints, twice
            status, _, body = await post(served)
            assert status == 200 and "No response" in body["content"][0]["text"]
            status, _, events = await post(served, stream=True)
            assert status == 200 and "No response" in streamed_text(events)

    run(scenario())


def test_the_sandbox_serves_the_endpoints_the_policy_names() -> None:
    async def scenario() -> None:
        async with proxy(
            policy={"endpoints": ["edge"]},
            upstream={"endpoints": {"edge": "https://edge.invalid"}},
        ) as served:
            status, _, _ = await post(served)
            assert status == 200
            assert {endpoint for endpoint, _ in calls(served)} == {"edge"}

    run(scenario())
