"""The fault matrix: every fake-upstream fault, streaming and not, through the real proxy.

Account 1 always answers with the fault; account 2 answers normally. Each row asserts what the
client gets (status, error type or text) and the exact upstream calls (endpoint, account)."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.fake_upstream import (
    Answer,
    drop_after,
    drop_before,
    empty,
    error,
    error_in_stream,
    hang,
    preset,
    stream,
    text,
)
from tests.e2e import calls, post, proxy, run, streamed_text, written

A1, A2 = "account-1", "account-2"
SWITCH = [("daily", A1), ("daily", A2)]
NEXT_ENDPOINT_THEN_SWITCH = [("daily", A1), ("prod", A1), ("daily", A2)]
OK = (200, None)

# name, account-1's answer, client outcome (status, error type), upstream calls
MATRIX: list[tuple[str, Any, tuple[int, str | None], list[tuple[str, str]]]] = [
    ("quota_429", preset("quota_429"), OK, SWITCH),
    ("quota_429_with_reset", preset("quota_429_reset"), OK, SWITCH),
    ("capacity_503_retry_delay", preset("capacity_503"), OK, NEXT_ENDPOINT_THEN_SWITCH),
    ("capacity_429", preset("capacity_429"), OK, NEXT_ENDPOINT_THEN_SWITCH),
    ("rate_limit_429", preset("rate_limit_429"), OK, SWITCH),
    ("validation_403", preset("validation_403"), OK, SWITCH),
    ("banned_403", preset("banned_403"), OK, SWITCH),
    ("license_403", preset("license_403"), OK, NEXT_ENDPOINT_THEN_SWITCH),
    ("revoked_401", preset("revoked_401"), OK, SWITCH),
    ("auth_401", preset("auth_401"), OK, [("daily", A1), ("daily", A1), ("daily", A2)]),
    ("server_500", preset("server_500"), OK, NEXT_ENDPOINT_THEN_SWITCH),
    ("not_found_404", preset("not_found_404"), OK, NEXT_ENDPOINT_THEN_SWITCH),
    ("version_gate", preset("version_gate"), OK, NEXT_ENDPOINT_THEN_SWITCH),
    ("drop_before_answer", drop_before(), OK, NEXT_ENDPOINT_THEN_SWITCH),
    ("hang", hang(), OK, NEXT_ENDPOINT_THEN_SWITCH),
    ("error_in_stream_before_content", error_in_stream(after=0), OK, NEXT_ENDPOINT_THEN_SWITCH),
    ("invalid_400", preset("invalid_400"), (400, "invalid_request_error"), [("daily", A1)]),
    ("empty_stream", empty(), OK, NEXT_ENDPOINT_THEN_SWITCH),
]


@pytest.mark.parametrize("stream_mode", [True, False], ids=["stream", "unary"])
@pytest.mark.parametrize(
    ("name", "answer", "outcome", "expected"), MATRIX, ids=[m[0] for m in MATRIX]
)
def test_each_upstream_fault_ends_as_expected_with_the_exact_upstream_calls(
    name: str, answer: Answer, outcome: tuple[int, str | None], expected: Any, stream_mode: bool
) -> None:
    async def scenario() -> None:
        async with proxy() as served:
            assert served.fake is not None
            served.fake.script(A1, [answer] * 10)
            status, headers, body = await post(served, stream=stream_mode)
            assert (status, _error_type(body)) == outcome, body
            if status == 200:
                text_out = streamed_text(body) if stream_mode else body["content"][0]["text"]
                assert text_out == "Hello from the fake upstream."
            assert calls(served) == expected

    run(scenario())


def _error_type(body: Any) -> str | None:
    if isinstance(body, dict) and body.get("type") == "error":
        return str(body["error"]["type"])
    return None


def test_a_stream_cut_after_content_ends_with_one_error_event_and_no_duplicated_text() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            assert served.fake is not None
            served.fake.script(A1, [drop_after(2, stream(text("Hello there, friend"), chunks=4))])
            status, _, events = await post(served, stream=True)
            assert status == 200
            kinds = [e["type"] for e in events]
            assert kinds.count("message_start") == 1 and kinds[-1] == "error"
            assert "message_stop" not in kinds
            assert streamed_text(events) in ("Hello", "Hello the")  # what arrived, once
            assert calls(served) == [("daily", A1)]

    run(scenario())


def test_a_unary_answer_cut_midway_is_retried_because_nothing_reached_the_client() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            assert served.fake is not None
            served.fake.script(A1, [drop_after(2, stream(text("Hello there, friend"), chunks=4))])
            status, _, body = await post(served, stream=False)
            assert status == 200 and body["content"][0]["text"] == "Hello from the fake upstream."
            assert calls(served) == [("daily", A1), ("prod", A1)]

    run(scenario())


def test_a_revoked_refresh_token_invalidates_the_account_and_another_serves() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            assert served.fake is not None
            served.fake.revoke(A1)
            status, _, _ = await post(served)
            assert status == 200
            assert calls(served) == [("daily", A2)]
            await written(served)
            listing = {a.email: a for a in served.store.accounts()}
            assert listing["account-1@sandbox.invalid"].invalid_reason is not None

    run(scenario())


def test_a_token_endpoint_outage_never_invalidates_an_account() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            assert served.fake is not None
            served.fake.script_token(A1, [error(503, '{"error": "backend_error"}')] * 4)
            status, _, _ = await post(served)
            assert status == 200
            assert calls(served) == [("daily", A2)]
            assert all(a.invalid_reason is None for a in served.store.accounts())

    run(scenario())


def test_all_accounts_exhausted_answers_429_with_retry_after() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            assert served.fake is not None
            for account in (A1, A2):
                served.fake.script(account, [preset("quota_429")] * 10)
            status, headers, body = await post(served)
            assert (status, body["error"]["type"]) == (429, "rate_limit_error")
            assert int(headers["retry-after"]) > 0
            assert "Quota will reset after" in body["error"]["message"]

    run(scenario())
