"""Upstream `sessionId`s: one per conversation (and account), stable across its turns."""

from __future__ import annotations

import json
from typing import Any

from adapters.cloudcode.session import conversation_key, session_id
from adapters.convert.anthropic import parse_messages_request
from tests.e2e import MODEL, post, proxy, run


def _body(first: str, *turns: str, user_id: str | None = None) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": first}]
    for turn in turns:
        messages += [
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": turn},
        ]
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 50, "messages": messages}
    if user_id is not None:
        body["metadata"] = {"user_id": user_id}
    return body


def _claude_code_user_id(session: str) -> str:
    return json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": session})


def test_two_interleaved_conversations_keep_their_own_stable_session_ids() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1) as served:
            assert served.fake is not None
            cc = _claude_code_user_id("d473a67e-533f-47fe-88bf-e5eef95a357f")
            for body in [
                _body("write a poem"),  # conversation A, no metadata
                _body("fix my bug", user_id=cc),  # conversation B, Claude Code
                _body("write a poem", "shorter"),  # A, next turn
                _body("something else now", "and more", user_id=cc),  # B, next turn
            ]:
                status, _, _ = await post(served, body)
                assert status == 200
            sent = served.fake.requests(path="streamGenerateContent")
            ids = [r.body["request"]["sessionId"] for r in sent]
            assert len(ids) == 4
            assert ids[0] == ids[2]
            assert ids[1] == ids[3]
            assert ids[0] != ids[1]
            machine = {r.headers.get("x-machine-session-id") for r in sent}
            assert len(machine) == 1  # the machine session stays per account
            assert None not in machine and not machine & set(ids)

    run(scenario())


def test_session_ids_are_per_account_and_say_nothing() -> None:
    request = parse_messages_request(_body("a secret prompt"), max_tokens_required=True)
    key = conversation_key(request, MODEL)
    one, two = session_id("acct-1", key), session_id("acct-2", key)
    assert one != two
    assert one == session_id("acct-1", key)
    assert "secret" not in one and "acct" not in one


def test_the_model_family_separates_conversations_without_metadata() -> None:
    request = parse_messages_request(_body("hello"), max_tokens_required=True)
    assert conversation_key(request, "claude-sonnet-4-6") != conversation_key(
        request, "gemini-3-pro-high"
    )


def test_claude_code_metadata_names_the_conversation_whatever_the_first_message() -> None:
    cc = _claude_code_user_id("s-1")
    one = parse_messages_request(_body("a", user_id=cc), max_tokens_required=True)
    two = parse_messages_request(_body("b", user_id=cc), max_tokens_required=True)
    assert conversation_key(one, MODEL) == conversation_key(two, MODEL)
    plain = parse_messages_request(_body("a", user_id="not json"), max_tokens_required=True)
    assert conversation_key(plain, MODEL) != conversation_key(one, MODEL)
