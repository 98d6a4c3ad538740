"""Bounds on what the upstream sends: a committed stream ends after `[upstream] max_stream_s`
(one SSE error event), and a 200 that is not an event stream is a failure of that endpoint,
reported as what it is (not as an empty response)."""

from __future__ import annotations

import time

from adapters.fake_upstream import endless, error
from tests.e2e import calls, post, proxy, run, streamed_text

HTML = "<!DOCTYPE html><html><head><title>Sign in</title></head><body>login</body></html>"


def test_an_endless_upstream_stream_ends_after_max_stream_s_with_one_error_event() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1, upstream={"max_stream_s": 0.5}) as served:
            assert served.fake is not None
            served.fake.script("account-1", [endless(delay=0.02)])
            started = time.monotonic()
            status, _, events = await post(served, stream=True)
            assert time.monotonic() - started < 10
            assert status == 200 and streamed_text(events)
            errors = [e for e in events if e["type"] == "error"]
            assert errors == [events[-1]]
            assert "max_stream_s" in errors[0]["error"]["message"]
            assert calls(served) == [("daily", "account-1")]  # never re-sent after commit

    run(scenario(), timeout=30)


def test_an_endless_answer_to_a_non_streaming_client_is_retried_because_nothing_was_sent() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1, upstream={"max_stream_s": 0.3}) as served:
            assert served.fake is not None
            served.fake.script("account-1", [endless(delay=0.02)])
            status, _, body = await post(served)
            assert status == 200 and body["content"][0]["text"] == "Hello from the fake upstream."
            assert calls(served) == [("daily", "account-1"), ("prod", "account-1")]

    run(scenario(), timeout=30)


def test_an_html_200_fails_that_endpoint_and_the_next_one_answers() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1) as served:
            assert served.fake is not None
            page = error(200, HTML, {"Content-Type": "text/html; charset=utf-8"})
            served.fake.script("account-1", [page], endpoint="daily")
            status, _, body = await post(served, stream=True)
            assert status == 200 and body[-1]["type"] == "message_stop"
            assert calls(served) == [("daily", "account-1"), ("prod", "account-1")]

    run(scenario(), timeout=30)


def test_an_html_or_json_200_everywhere_is_reported_with_its_content_type_not_as_empty() -> None:
    async def scenario() -> None:
        for content_type, body in (
            ("text/html; charset=utf-8", HTML),
            ("application/json", '{"candidates": []}'),
        ):
            async with proxy(accounts=1) as served:
                assert served.fake is not None
                served.fake.script(
                    "account-1", [error(200, body, {"Content-Type": content_type})] * 20
                )
                status, _, answer = await post(served)
                message = answer["error"]["message"]
                assert status == 500 and answer["error"]["type"] == "api_error", answer
                assert content_type.split(";")[0] in message and "empty" not in message

    run(scenario(), timeout=30)
