"""What interlock sends upstream: the exact headers and envelope, aliases, timeouts."""

from __future__ import annotations

import re

from adapters.fake_upstream import hang, stream, text
from tests.e2e import BODY, calls, post, proxy, run, streamed_text


def test_generation_requests_carry_the_antigravity_headers_and_envelope() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1) as served:
            assert served.fake is not None
            await post(served, {**BODY, "model": "claude-opus-4-6-thinking"}, stream=True)
            await post(served)
            first, second = served.fake.requests(path="streamGenerateContent")
            headers = first.headers
            assert re.fullmatch(
                r"antigravity/2\.0\.3 (linux|darwin|win32)/(x64|arm64)", headers["user-agent"]
            )
            assert headers["x-client-name"] == "antigravity"
            assert headers["x-client-version"] == "1.110.0"
            assert headers["x-goog-api-client"] == "gl-node/18.18.2 fire/0.8.6 grpc/1.10.x"
            assert headers["accept"] == "text/event-stream"
            assert headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
            assert "anthropic-beta" not in second.headers  # only Claude thinking models
            session = headers["x-machine-session-id"]
            assert session == second.headers["x-machine-session-id"]  # per account, per process
            body = first.body
            assert body["model"] == "claude-opus-4-6-thinking"
            assert (body["userAgent"], body["requestType"]) == ("antigravity", "agent")
            assert body["requestId"].startswith("agent-") and body["project"]
            # per conversation (tests/test_session_ids.py), not the machine session
            assert re.fullmatch(r"[0-9a-f-]{36}", body["request"]["sessionId"])
            assert body["request"]["sessionId"] != session
            system = body["request"]["systemInstruction"]
            assert system["role"] == "user"
            assert system["parts"][0]["text"].startswith("You are Antigravity")
            assert "[ignore]" in system["parts"][1]["text"]

    run(scenario())


def test_a_configured_alias_sends_the_mapped_model_and_answers_with_the_clients_name() -> None:
    async def scenario() -> None:
        aliases = {"claude-3-5-sonnet-20241022": "claude-sonnet-4-6"}
        async with proxy(accounts=1, models={"aliases": aliases}) as served:
            status, _, body = await post(served, {**BODY, "model": "claude-3-5-sonnet-20241022"})
            assert status == 200 and body["model"] == "claude-3-5-sonnet-20241022"
            assert served.fake is not None
            sent = served.fake.requests(path="streamGenerateContent")[0].body
            assert sent["model"] == "claude-sonnet-4-6"

    run(scenario())


STALL = hang(after=2, answer=stream(text("abcdefgh"), chunks=4))


def test_a_stream_that_stalls_after_content_hits_the_idle_timeout_and_ends_with_one_error() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1) as served:
            assert served.fake is not None
            served.fake.script("account-1", [STALL])
            status, _, events = await post(served, stream=True)
            assert status == 200 and events[-1]["type"] == "error"
            assert streamed_text(events) and calls(served) == [("daily", "account-1")]

    run(scenario())


def test_a_unary_answer_that_stalls_is_retried_because_nothing_reached_the_client() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1) as served:
            assert served.fake is not None
            served.fake.script("account-1", [STALL])
            status, _, body = await post(served)
            assert status == 200 and body["content"][0]["text"] == "Hello from the fake upstream."
            assert calls(served) == [("daily", "account-1"), ("prod", "account-1")]

    run(scenario())
