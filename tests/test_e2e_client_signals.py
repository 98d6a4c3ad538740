"""What clients need to behave well (issue 7): `x-should-retry: false` where retrying cannot help,
a `request-id` on every answer, `HEAD /`, and answers that the official SDK's own types accept
strictly. Real proxy on 127.0.0.1, fake upstream, the `anthropic` SDK as the client."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import anthropic
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from adapters.fake_upstream import error, function_call, google_error, stream, text, thinking
from adapters.serve import Served
from tests.e2e import BODY, post, proxy, run

A1, A2 = "account-1", "account-2"
STREAM_EVENT: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
TOOLS = [
    {
        "name": "Bash",
        "description": "run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
    }
]


def quota_for(seconds: int) -> Any:
    """A quota 429 whose reset is `seconds` away."""
    return error(
        429,
        google_error(
            429,
            "You have exhausted your capacity on this model.",
            reason="QUOTA_EXHAUSTED",
            metadata={"quotaResetDelay": f"{seconds}s"},
            retry_delay=f"{seconds}s",
        ),
    )


def exhaust(served: Served, seconds: int) -> None:
    assert served.fake is not None
    for account in (A1, A2):
        served.fake.script(account, [quota_for(seconds)] * 20)


# --- x-should-retry ---------------------------------------------------------------------------


def test_a_wrong_api_key_tells_clients_not_to_retry() -> None:
    async def scenario() -> None:
        async with proxy(server={"api_key": "right"}) as served:
            status, headers, body = await post(served, headers={"x-api-key": "wrong"})
            assert (status, body["error"]["type"]) == (401, "authentication_error")
            assert headers["x-should-retry"] == "false"

    run(scenario())


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({**BODY, "model": "gpt-4o"}, 404),
        ({"model": BODY["model"], "messages": BODY["messages"]}, 400),  # no max_tokens
        ({**BODY, "messages": []}, 400),
    ],
)
def test_client_errors_tell_clients_not_to_retry(body: dict[str, Any], status: int) -> None:
    async def scenario() -> None:
        async with proxy() as served:
            got, headers, _ = await post(served, body)
            assert (got, headers["x-should-retry"]) == (status, "false")

    run(scenario())


def test_missing_max_tokens_is_a_400_naming_the_field_like_anthropics_api() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            status, _, body = await post(
                served, {"model": BODY["model"], "messages": BODY["messages"]}
            )
            assert (status, body["error"]["message"]) == (400, "max_tokens: field required")

    run(scenario())


def test_an_exhausted_pool_with_an_hour_long_reset_says_so_and_not_to_retry() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            exhaust(served, 3600)
            status, headers, body = await post(served)
            assert status == 429 and 3590 <= int(headers["retry-after"]) <= 3600
            assert headers["x-should-retry"] == "false"
            assert "Quota will reset after" in body["error"]["message"]

    run(scenario())


def test_a_short_rate_limit_lets_clients_retry_after_it() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            exhaust(served, 30)
            status, headers, _ = await post(served)
            assert status == 429 and int(headers["retry-after"]) <= 30
            assert "x-should-retry" not in headers

    run(scenario())


def test_the_no_retry_threshold_is_configurable() -> None:
    async def scenario() -> None:
        async with proxy(server={"client_retry_limit_s": 10}) as served:
            exhaust(served, 30)
            status, headers, _ = await post(served)
            assert (status, headers["x-should-retry"]) == (429, "false")

    run(scenario())


@pytest.mark.parametrize("stream_it", [False, True])
def test_every_account_revoked_is_not_retryable_and_names_the_accounts_and_the_fix(
    stream_it: bool,
) -> None:
    async def scenario() -> None:
        async with proxy() as served:
            assert served.fake is not None
            for account in (A1, A2):
                served.fake.revoke(account)
            status, headers, body = await post(served, stream=stream_it)
            assert (status, headers["x-should-retry"]) == (500, "false")
            message = body["error"]["message"]
            assert "2 accounts invalid" in message and "interlock accounts login" in message
            status, _, body = await post(served, stream=stream_it)  # now known at once
            assert status == 500 and "acct-" in body["error"]["message"]

    run(scenario())


def test_upstream_401s_on_every_account_are_not_retryable() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            assert served.fake is not None
            served.fake.script(None, [error(401)] * 40)
            status, headers, body = await post(served)
            assert (status, headers["x-should-retry"]) == (500, "false")
            assert "interlock accounts login" in body["error"]["message"]

    run(scenario())


def test_a_server_error_stays_retryable() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            assert served.fake is not None
            served.fake.script(None, [error(503, google_error(503))] * 40)
            status, headers, _ = await post(served)
            assert status >= 500 and "x-should-retry" not in headers

    run(scenario())


# --- request ids, HEAD / ------------------------------------------------------------------------


def test_every_answer_carries_the_request_id_of_its_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with proxy() as served:
            ids = []
            for stream_it in (False, True):
                status, headers, _ = await post(served, stream=stream_it)
                assert status == 200
                ids.append(headers["request-id"])
            status, headers, _ = await post(served, {**BODY, "model": "gpt-4o"})
            ids.append(headers["request-id"])
            assert len(set(ids)) == 3
            logged = " ".join(r.getMessage() for r in caplog.records)
            assert ids[0] in logged and ids[1] in logged

    with caplog.at_level(logging.INFO, logger="interlock.server"):
        run(scenario())


@pytest.mark.parametrize("path", ["/", "/api/hello"])
def test_the_connectivity_probes_answer_200(path: str) -> None:
    async def scenario() -> None:
        async with proxy() as served, aiohttp.ClientSession() as session:
            async with session.head(served.url + path) as response:
                assert response.status == 200 and response.headers["request-id"]
            async with session.get(served.url + path) as response:
                assert response.status == 200

    run(scenario())


def test_a_requested_safeguard_is_served_and_the_log_says_once_it_is_not_screened(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with proxy() as served:
            body = {
                **BODY,
                "safeguards": [{"type": "dangerous_tool_use", "classifier_context": {}}],
            }
            for _ in range(2):
                status, _, _ = await post(served, body)
                assert status == 200

    with caplog.at_level(logging.WARNING, logger="interlock.server"):
        run(scenario())
    said = [r.getMessage() for r in caplog.records if "safeguard" in r.getMessage()]
    assert len(said) == 1 and "'dangerous_tool_use'" in said[0] and "not screened" in said[0]


# --- the SDK, strictly -------------------------------------------------------------------------


def sdk(url: str, **options: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key="test", timeout=30, **options)


ANSWERS = {
    "text": stream(text("Hello there."), chunks=3),
    "tools": stream(text("Let me look."), function_call("Bash", {"command": "ls"})),
    "thinking": stream(thinking("Let me think."), text("42.")),
    "thinking with a short signature": stream(thinking("Hmm.", "short-sig"), text("42.")),
}


@pytest.mark.parametrize("kind", sorted(ANSWERS))
def test_every_streamed_event_and_the_final_message_pass_the_sdks_strict_types(kind: str) -> None:
    async def scenario() -> None:
        async with proxy() as served:
            assert served.fake is not None
            served.fake.script(None, [ANSWERS[kind], ANSWERS[kind]])
            body = {**BODY, "model": "claude-sonnet-4-6-thinking", "tools": TOOLS}
            status, _, events = await post(served, body, stream=True)
            assert status == 200 and events
            for event in events:
                STREAM_EVENT.validate_python(event, strict=True)
            status, _, message = await post(served, body)
            assert status == 200
            Message.model_validate(message, strict=True)
            if kind.startswith("thinking"):
                assert message["content"][0]["type"] == "thinking"
                assert "signature" in message["content"][0]

    run(scenario())


def test_the_sdk_with_default_retries_gets_the_exhausted_pool_error_in_under_20_s() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            exhaust(served, 3585)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(anthropic.RateLimitError) as caught:
                await sdk(served.url).messages.create(**BODY)  # default max_retries=2
            assert loop.time() - started < 20
            assert caught.value.response.headers["x-should-retry"] == "false"
            assert served.fake is not None
            assert len(served.fake.requests(path="streamGenerateContent")) == 2  # one request

    run(scenario(), timeout=60)


def test_the_sdk_retrieves_a_model_and_raises_its_error_classes() -> None:
    async def scenario() -> None:
        async with proxy(server={"api_key": "test"}) as served:
            with pytest.raises(anthropic.NotFoundError):
                await sdk(served.url).messages.create(**{**BODY, "model": "gpt-4o"})
            with pytest.raises(anthropic.AuthenticationError):
                await anthropic.AsyncAnthropic(
                    base_url=served.url, api_key="wrong"
                ).messages.create(**BODY)

    run(scenario())
