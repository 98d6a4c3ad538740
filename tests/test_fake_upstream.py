"""The fake upstream serves scripted Cloud Code and OAuth answers on loopback, over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import select
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.fake_upstream import (
    PRESET_NAMES,
    PRESETS,
    VERSION_GATE_TEXT,
    FakeUpstream,
    drop_after,
    drop_before,
    empty,
    error,
    error_in_stream,
    final_without_newline,
    from_spec,
    function_call,
    hang,
    image,
    main,
    normal,
    preset,
    run_fake_upstream,
    sse,
    stream,
    text,
    thinking,
)

ROOT = Path(__file__).resolve().parent.parent
STREAM = "/v1internal:streamGenerateContent?alt=sse"
UNARY = "/v1internal:generateContent"
MODEL = "claude-opus-4-6-thinking"
BOUND = 20.0


@dataclass
class Harness:
    fake: FakeUpstream
    session: aiohttp.ClientSession

    async def refresh(self, refresh_token: str) -> aiohttp.ClientResponse:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "c"}
        return await self.session.post(self.fake.token_url, data=form)

    async def token(self, account: str) -> str:
        async with await self.refresh(self.fake.account(account).refresh_token) as resp:
            assert resp.status == 200
            return str((await resp.json())["access_token"])

    async def call(
        self,
        account: str | None,
        path: str = STREAM,
        *,
        endpoint: str = "daily",
        body: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> aiohttp.ClientResponse:
        headers = {"Content-Type": "application/json", "User-Agent": "antigravity/2.0.3 linux/x64"}
        if account is not None:
            headers["Authorization"] = "Bearer " + await self.token(account)
        payload = body if body is not None else {"project": "p", "model": MODEL, "request": {}}
        kwargs: dict[str, Any] = {}
        if timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout)
        url = self.fake.urls[endpoint] + path
        return await self.session.post(url, json=payload, headers=headers, **kwargs)

    async def events(self, account: str, **kw: Any) -> list[dict[str, Any]]:
        async with await self.call(account, **kw) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            return [json.loads(e) for e in sse_events(await resp.read())]


def sse_events(raw: bytes) -> list[str]:
    """SSE data payloads: events split on blank lines, multi-line data joined, CRLF accepted,
    a final event without terminator kept."""
    out = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        lines = [line[5:].strip() for line in block.split("\n") if line.startswith("data:")]
        if lines:
            out.append("\n".join(lines))
    return out


@asynccontextmanager
async def harness(accounts: tuple[str, ...] = ("a", "b")) -> AsyncIterator[Harness]:
    fake = FakeUpstream()
    for name in accounts:
        fake.add_account(name)
    timeout = aiohttp.ClientTimeout(total=5)
    async with fake, aiohttp.ClientSession(timeout=timeout) as session:
        yield Harness(fake, session)


def run(body: Callable[[Harness], Awaitable[None]]) -> None:
    async def go() -> None:
        async with harness() as h:
            await body(h)

    asyncio.run(asyncio.wait_for(go(), BOUND))


def parts_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for e in events for p in e["response"]["candidates"][0]["content"].get("parts", [])]


# OAuth ------------------------------------------------------------------------------------


def test_a_refresh_token_is_exchanged_for_an_opaque_access_token_of_its_account() -> None:
    async def body(h: Harness) -> None:
        async with await h.refresh(h.fake.account("a").refresh_token) as resp:
            assert resp.status == 200
            answer = await resp.json()
        assert answer["expires_in"] == 3599
        assert answer["token_type"] == "Bearer"
        again = await h.token("a")
        assert again != answer["access_token"] != h.fake.account("a").refresh_token
        assert h.fake.account_for_access(answer["access_token"]) is h.fake.account("a")
        assert h.fake.account_for_access(again) is h.fake.account("a")
        assert h.fake.requests(path="/token")[0].account == "a"
        assert h.fake.requests(path="/token")[0].outcome == "grant"

    run(body)


def test_an_unknown_refresh_token_gets_invalid_grant_with_status_400() -> None:
    async def body(h: Harness) -> None:
        async with await h.refresh("1//not-a-token") as resp:
            assert resp.status == 400
            assert await resp.text() == PRESETS["invalid_grant"].body
        assert h.fake.requests(path="/token")[0].outcome == "invalid_grant"

    run(body)


def test_a_revoked_account_gets_invalid_grant_until_it_is_restored() -> None:
    async def body(h: Harness) -> None:
        h.fake.revoke("a")
        async with await h.refresh(h.fake.account("a").refresh_token) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"] == "invalid_grant"
        h.fake.revoke("a", False)
        assert await h.token("a")

    run(body)


def test_the_token_endpoint_can_fail_transiently_in_scripted_order_then_recover() -> None:
    async def body(h: Harness) -> None:
        h.fake.script_token("a", [error(500), error(503), drop_before(), preset("invalid_grant")])
        refresh = h.fake.account("a").refresh_token
        for status in (500, 503):
            async with await h.refresh(refresh) as resp:
                assert resp.status == status
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await h.refresh(refresh)
        async with await h.refresh(refresh) as resp:
            assert resp.status == 400
            assert (await resp.json())["error_description"] == "Token has been expired or revoked."
        assert await h.token("a")
        outcomes = [r.outcome for r in h.fake.requests(path="/token")]
        assert outcomes == ["error", "error", "drop_before", "preset:invalid_grant", "grant"]

    run(body)


def test_an_authorization_code_with_its_pkce_verifier_yields_tokens_once() -> None:
    async def body(h: Harness) -> None:
        verifier = "v" * 43
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        code = h.fake.authorization_code("b", code_challenge=challenge)
        form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
        async with h.session.post(h.fake.token_url, data=form) as resp:
            assert resp.status == 200
            answer = await resp.json()
        assert answer["refresh_token"] == h.fake.account("b").refresh_token
        assert h.fake.account_for_access(answer["access_token"]) is h.fake.account("b")
        async with h.session.post(h.fake.token_url, data=form) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"] == "invalid_grant"
        wrong = {**form, "code": h.fake.authorization_code("b", code_challenge=challenge)}
        wrong["code_verifier"] = "w" * 43
        async with h.session.post(h.fake.token_url, data=wrong) as resp:
            assert resp.status == 400

    run(body)


def test_a_configured_client_id_and_secret_are_checked() -> None:
    async def go() -> None:
        fake = FakeUpstream(client_id="cid", client_secret="sec")
        fake.add_account("a")
        async with fake, aiohttp.ClientSession() as session:
            form = {"grant_type": "refresh_token", "refresh_token": fake.account("a").refresh_token}
            ok = {**form, "client_id": "cid", "client_secret": "sec"}
            async with session.post(fake.token_url, data={**ok, "client_secret": "x"}) as resp:
                assert resp.status == 401
                assert (await resp.json())["error"] == "invalid_client"
            async with session.post(fake.token_url, data=ok) as resp:
                assert resp.status == 200
            assert fake.requests(path="/token")[1].body["client_secret"] == "<redacted>"

    asyncio.run(asyncio.wait_for(go(), BOUND))


def test_userinfo_answers_the_email_of_the_bearer_and_401_for_strangers() -> None:
    async def body(h: Harness) -> None:
        headers = {"Authorization": "Bearer " + await h.token("a")}
        async with h.session.get(h.fake.userinfo_url, headers=headers) as resp:
            assert (await resp.json())["email"] == "a@example.com"
        async with h.session.get(h.fake.userinfo_url, headers={"Authorization": "Bearer x"}) as r:
            assert r.status == 401

    run(body)


# generation -------------------------------------------------------------------------------


def test_a_request_with_an_unknown_bearer_token_is_401_unauthenticated() -> None:
    async def body(h: Harness) -> None:
        async with await h.call(None) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["status"] == "UNAUTHENTICATED"
        h.fake.expire_access_tokens("a")
        url = h.fake.urls["daily"] + STREAM
        async with h.session.post(url, json={}, headers={"Authorization": "Bearer x"}) as resp:
            assert resp.status == 401
        assert [r.outcome for r in h.fake.requests(path="streamGenerateContent")] == [
            "unauthenticated",
            "unauthenticated",
        ]
        assert h.fake.requests(path="streamGenerateContent")[0].account is None

    run(body)


def test_a_streamed_answer_decodes_to_sse_chunks_of_the_cloud_code_shape() -> None:
    async def body(h: Harness) -> None:
        answer = stream(
            thinking("Let me think."),
            text("Let me run it."),
            function_call("Bash", {"command": "ls"}, call_id="toolu_1", signature="G" * 60),
            image(),
            chunks=2,
        )
        h.fake.script("a", [answer])
        events = await h.events("a")
        for event in events:
            candidate = event["response"]["candidates"][0]
            assert candidate["content"]["role"] == "model"
            assert len(candidate["content"]["parts"]) == 1
        parts = parts_of(events)
        assert [p["text"] for p in parts if p.get("thought")] == ["Let me", " think.", ""]
        assert len(parts[2]["thoughtSignature"]) >= 50
        assert "".join(p["text"] for p in parts[3:5]) == "Let me run it."
        assert parts[5] == {
            "functionCall": {"name": "Bash", "args": {"command": "ls"}, "id": "toolu_1"},
            "thoughtSignature": "G" * 60,
        }
        assert parts[6]["inlineData"]["mimeType"] == "image/png"
        base64.b64decode(parts[6]["inlineData"]["data"], validate=True)
        last = events[-1]["response"]
        assert last["candidates"][0]["finishReason"] == "STOP"
        assert last["usageMetadata"]["promptTokenCount"] == 100
        assert last["usageMetadata"]["cachedContentTokenCount"] == 40
        assert last["usageMetadata"]["candidatesTokenCount"] == 20
        assert all("usageMetadata" not in e["response"] for e in events[:-1])

    run(body)


def test_the_chunk_count_and_the_per_chunk_delay_are_honoured() -> None:
    async def body(h: Harness) -> None:
        h.fake.script("a", [stream("abcdefgh", chunks=4, delay=0.05)])
        started = time.monotonic()
        events = await h.events("a")
        assert len(events) == 4
        assert [p["text"] for p in parts_of(events)] == ["ab", "cd", "ef", "gh"]
        assert time.monotonic() - started >= 0.2

    run(body)


@pytest.mark.parametrize("name", [n for n in PRESET_NAMES if n != "version_gate"])
def test_each_preset_is_served_with_its_status_and_exact_json_body(name: str) -> None:
    async def body(h: Harness) -> None:
        h.fake.script("a", [preset(name)])
        async with await h.call("a") as resp:
            assert resp.status == PRESETS[name].status
            assert resp.headers["Content-Type"].startswith("application/json")
            raw = await resp.text()
        assert raw == PRESETS[name].body
        assert isinstance(json.loads(raw)["error"], dict | str)
        assert h.fake.requests(path="streamGenerateContent")[0].outcome == "preset:" + name

    run(body)


def test_the_presets_carry_the_google_details_the_proxy_parses() -> None:
    def details(name: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for d in json.loads(PRESETS[name].body)["error"].get("details", []):
            found.update(d.get("metadata", {}), **{k: v for k, v in d.items() if k != "metadata"})
        return found

    assert details("quota_429_reset")["quotaResetDelay"] == "754.431528ms"
    assert details("quota_429_reset")["retryDelay"] == "0.754431528s"
    assert details("capacity_503")["reason"] == "MODEL_CAPACITY_EXHAUSTED"
    assert details("capacity_429")["reason"] == "MODEL_CAPACITY_EXHAUSTED"
    assert details("rate_limit_429")["reason"] == "RATE_LIMIT_EXCEEDED"
    assert details("rate_limit_429")["retryDelay"] == "7s"
    assert details("validation_403")["validation_url"].startswith("https://accounts.google.com/")
    assert "violation of Terms of Service" in PRESETS["banned_403"].body
    assert (
        "`tool_use` ids were found" in json.loads(PRESETS["invalid_400"].body)["error"]["message"]
    )


def test_the_version_gate_preset_is_model_text_in_a_200_stream() -> None:
    async def body(h: Harness) -> None:
        h.fake.script("a", [preset("version_gate")])
        assert [p["text"] for p in parts_of(await h.events("a"))] == [VERSION_GATE_TEXT]

    run(body)


def test_an_error_answer_sends_its_reset_headers() -> None:
    async def body(h: Harness) -> None:
        h.fake.script("a", [preset("quota_429", headers={"retry-after": "12"})])
        h.fake.script("a", [error(429, {"error": {"code": 429}}, {"x-ratelimit-reset-after": "7"})])
        async with await h.call("a") as resp:
            assert resp.headers["Retry-After"] == "12"
        async with await h.call("a") as resp:
            assert resp.headers["X-RateLimit-Reset-After"] == "7"
            assert await resp.json() == {"error": {"code": 429}}

    run(body)


def test_drop_before_gives_the_client_a_connection_error() -> None:
    async def body(h: Harness) -> None:
        h.fake.script("a", [drop_before()])
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await h.call("a")
        record = h.fake.requests(path="streamGenerateContent")[0]
        assert (record.outcome, record.status) == ("drop_before", None)

    run(body)


@pytest.mark.parametrize("k", [0, 1, 3])
def test_drop_after_k_gives_exactly_k_events_then_a_connection_error(k: int) -> None:
    async def body(h: Harness) -> None:
        h.fake.script("a", [drop_after(k)])
        received = b""
        async with await h.call("a") as resp:
            assert resp.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                async for line in resp.content:
                    received += line
        assert len(sse_events(received)) == k
        assert received.endswith(b"\n\n") or k == 0

    run(body)


def test_hang_lasts_until_the_client_times_out_and_then_the_handler_ends() -> None:
    async def body(h: Harness) -> None:
        h.fake.script("a", [hang()])
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await h.call("a", timeout=0.3)
        assert time.monotonic() - started >= 0.25
        record = h.fake.requests(path="streamGenerateContent")[0]
        assert record.outcome == "hang"
        async with asyncio.timeout(3):
            while record.finished is None:
                await asyncio.sleep(0.01)

    run(body)


def test_hang_after_k_events_stalls_an_open_stream() -> None:
    async def body(h: Harness) -> None:
        h.fake.script("a", [hang(after=2)])
        received = b""
        async with await h.call("a") as resp:
            with pytest.raises(asyncio.TimeoutError):
                async with asyncio.timeout(0.3):
                    async for line in resp.content:
                        received += line
        assert len(sse_events(received)) == 2

    run(body)


def test_stopping_the_fake_releases_a_hanging_request() -> None:
    async def go() -> None:
        fake = FakeUpstream()
        fake.add_account("a")
        await fake.start()
        fake.script("a", [hang()])
        async with aiohttp.ClientSession() as session:
            h = Harness(fake, session)
            pending = asyncio.ensure_future(h.call("a"))
            await fake.wait_for_requests(1, path="streamGenerateContent", timeout=3)
            started = time.monotonic()
            await fake.stop()
            assert time.monotonic() - started < 2
            with pytest.raises(aiohttp.ClientError):
                await pending

    asyncio.run(asyncio.wait_for(go(), BOUND))


def test_the_final_event_can_lack_its_trailing_newline() -> None:
    async def body(h: Harness) -> None:
        h.fake.script("a", [final_without_newline("hello", chunks=2)])
        async with await h.call("a") as resp:
            raw = await resp.read()
        assert not raw.endswith(b"\n")
        assert raw.endswith(b"}")
        assert raw.count(b"\n\n") == 1
        events = [json.loads(e) for e in sse_events(raw)]
        assert events[-1]["response"]["candidates"][0]["finishReason"] == "STOP"

    run(body)


def test_an_empty_answer_has_no_content_parts_or_no_bytes_at_all() -> None:
    async def body(h: Harness) -> None:
        h.fake.script("a", [empty(), empty(usage=None)])
        events = await h.events("a")
        assert len(events) == 1
        assert parts_of(events) == []
        assert events[0]["response"]["usageMetadata"]["promptTokenCount"] == 100
        async with await h.call("a") as resp:
            assert resp.status == 200
            assert await resp.read() == b""

    run(body)


def test_an_error_object_can_arrive_inside_a_200_stream() -> None:
    async def body(h: Harness) -> None:
        h.fake.script("a", [error_in_stream(after=2, body=PRESETS["capacity_503"].body)])
        events = await h.events("a")
        assert len(events) == 3
        assert events[-1]["error"]["code"] == 503
        assert "response" in events[0]

    run(body)


def test_crlf_framing_and_multi_line_data_events_can_be_scripted() -> None:
    async def body(h: Harness) -> None:
        chunk = {"response": {"candidates": [{"content": {"parts": [{"text": "x"}]}}]}}
        h.fake.script("a", [sse(json.dumps(chunk, indent=1), crlf=True)])
        async with await h.call("a") as resp:
            raw = await resp.read()
        assert raw.endswith(b"\r\n\r\n")
        assert raw.count(b"data: ") > 1
        assert [json.loads(e) for e in sse_events(raw)] == [chunk]

    run(body)


def test_per_account_scripts_are_consumed_in_order_and_logged_with_endpoint_account_model() -> None:
    async def body(h: Harness) -> None:
        h.fake.script("a", [preset("quota_429"), preset("capacity_503")])
        h.fake.script("b", [preset("server_500")])
        statuses = []
        for account, endpoint in (("a", "daily"), ("b", "prod"), ("a", "prod"), ("a", "daily")):
            async with await h.call(account, endpoint=endpoint) as resp:
                statuses.append(resp.status)
        assert statuses == [429, 500, 503, 200]
        log = h.fake.requests(path="streamGenerateContent")
        assert [(r.endpoint, r.account, r.model) for r in log] == [
            ("daily", "a", MODEL),
            ("prod", "b", MODEL),
            ("prod", "a", MODEL),
            ("daily", "a", MODEL),
        ]
        assert [r.scripted for r in log] == [True, True, True, False]
        assert [r.seq for r in log] == sorted(r.seq for r in log)
        assert [r.time for r in log] == sorted(r.time for r in log)
        assert len(h.fake.requests("a", "streamGenerateContent")) == 3
        h.fake.clear_log()
        assert h.fake.log == []

    run(body)


def test_an_endpoint_script_applies_only_to_that_endpoint_and_comes_first() -> None:
    async def body(h: Harness) -> None:
        h.fake.script("a", [preset("capacity_503")], endpoint="daily")
        h.fake.script("a", [preset("quota_429")])
        h.fake.script(None, [preset("server_500")])
        statuses = []
        for endpoint in ("prod", "daily", "prod", "daily"):
            async with await h.call("a", endpoint=endpoint) as resp:
                statuses.append(resp.status)
        assert statuses == [429, 503, 500, 200]
        assert h.fake.pending("a") == h.fake.pending(None) == 0

    run(body)


def test_the_two_endpoints_have_different_base_urls_and_are_logged_as_such() -> None:
    async def body(h: Harness) -> None:
        urls = h.fake.urls
        assert set(urls) == {"daily", "prod"}
        assert urls["daily"] != urls["prod"] != h.fake.auth_url
        assert all(u.startswith("http://127.0.0.1:") for u in (*urls.values(), h.fake.auth_url))
        for endpoint in ("prod", "daily"):
            async with await h.call("a", endpoint=endpoint) as resp:
                await resp.read()
        assert [r.endpoint for r in h.fake.requests(path="streamGenerateContent")] == [
            "prod",
            "daily",
        ]
        assert {r.endpoint for r in h.fake.requests(path="/token")} == {"auth"}

    run(body)


def test_generate_content_answers_the_same_scripts_as_json() -> None:
    async def body(h: Harness) -> None:
        answer = stream(thinking("hmm"), "hello", function_call("Read", {"path": "x"}), chunks=3)
        h.fake.script("a", [answer, preset("rate_limit_429"), error_in_stream()])
        async with await h.call("a", UNARY) as resp:
            assert resp.status == 200
            inner = (await resp.json())["response"]
        parts = inner["candidates"][0]["content"]["parts"]
        assert parts[0]["thought"] is True
        assert len(parts[0]["thoughtSignature"]) >= 50
        assert parts[1] == {"text": "hello"}
        assert parts[2]["functionCall"]["args"] == {"path": "x"}
        assert inner["usageMetadata"]["candidatesTokenCount"] == 20
        async with await h.call("a", UNARY) as resp:
            assert resp.status == 429
        async with await h.call("a", UNARY) as resp:
            assert resp.status == 200
            assert "error" in await resp.json()
        assert [r.call for r in h.fake.requests("a", UNARY)] == ["generateContent"] * 3

    run(body)


def test_generate_content_drop_after_sends_a_truncated_body() -> None:
    async def body(h: Harness) -> None:
        h.fake.script("a", [drop_after(1)])
        async with await h.call("a", UNARY) as resp:
            with pytest.raises(aiohttp.ClientPayloadError):
                await resp.read()

    run(body)


def test_the_request_log_keeps_headers_and_body_but_redacts_the_authorization_value() -> None:
    async def body(h: Harness) -> None:
        payload = {"project": "p", "model": "gemini-3-flash", "request": {"contents": []}}
        async with await h.call("b", body=payload) as resp:
            await resp.read()
        record = h.fake.requests("b", "streamGenerateContent")[0]
        assert record.headers["authorization"] == "<redacted>"
        assert record.headers["user-agent"] == "antigravity/2.0.3 linux/x64"
        assert record.body == payload
        assert record.model == "gemini-3-flash"
        assert record.query == "alt=sse"
        assert record.finished is not None and record.finished >= record.time

    run(body)


def test_unknown_paths_are_404_and_logged() -> None:
    async def body(h: Harness) -> None:
        async with await h.call("a", "/v1internal:somethingElse") as resp:
            assert resp.status == 404
        assert h.fake.requests(path="/v1internal:somethingElse")[0].outcome == "not_found"

    run(body)


def test_check_project_rejects_a_request_for_another_accounts_project() -> None:
    async def go() -> None:
        fake = FakeUpstream(check_project=True)
        fake.add_account("a", project="proj-a")
        async with fake, aiohttp.ClientSession() as session:
            h = Harness(fake, session)
            good = {"project": "proj-a", "model": MODEL}
            async with await h.call("a", body={**good, "project": "proj-b"}) as resp:
                assert resp.status == 403
            async with await h.call("a", body=good) as resp:
                assert resp.status == 200

    asyncio.run(asyncio.wait_for(go(), BOUND))


def test_the_default_answer_serves_unscripted_requests_and_normal_defers_to_it() -> None:
    async def body(h: Harness) -> None:
        h.fake.set_default(preset("capacity_503"))
        h.fake.script("a", [normal(), preset("quota_429")])
        statuses = []
        for _ in range(3):
            async with await h.call("a") as resp:
                statuses.append(resp.status)
        assert statuses == [503, 429, 503]
        assert [r.scripted for r in h.fake.requests("a", "streamGenerateContent")] == [
            True,
            True,
            False,
        ]

    run(body)


# bootstrap calls --------------------------------------------------------------------------


def test_load_code_assist_reports_the_project_and_tiers_of_an_onboarded_account() -> None:
    async def go() -> None:
        fake = FakeUpstream()
        fake.add_account("a", project="managed-project-123", paid_tier="g1-pro-tier")
        async with fake, aiohttp.ClientSession() as session:
            h = Harness(fake, session)
            async with await h.call("a", "/v1internal:loadCodeAssist", body={}) as resp:
                answer = await resp.json()
        assert answer["cloudaicompanionProject"] == "managed-project-123"
        assert answer["currentTier"] == {"id": "standard-tier"}
        assert answer["paidTier"] == {"id": "g1-pro-tier"}
        assert {"id": "free-tier", "name": "Free", "isDefault": True} in answer["allowedTiers"]

    asyncio.run(asyncio.wait_for(go(), BOUND))


def test_onboard_user_is_a_long_running_operation_that_then_sets_the_project() -> None:
    async def go() -> None:
        fake = FakeUpstream()
        fake.add_account("a", project="managed-project-9", onboarded=False, onboard_polls=2)
        async with fake, aiohttp.ClientSession() as session:
            h = Harness(fake, session)
            async with await h.call("a", "/v1internal:loadCodeAssist", body={}) as resp:
                assert "cloudaicompanionProject" not in await resp.json()
            answers = []
            for _ in range(3):
                request = {"tierId": "free-tier", "metadata": {"ideType": 9}}
                async with await h.call("a", "/v1internal:onboardUser", body=request) as resp:
                    answers.append(await resp.json())
            assert [a["done"] for a in answers] == [False, False, True]
            project = answers[-1]["response"]["cloudaicompanionProject"]["id"]
            assert project == "managed-project-9"
            async with await h.call("a", "/v1internal:loadCodeAssist", body={}) as resp:
                loaded = await resp.json()
            assert loaded["cloudaicompanionProject"] == "managed-project-9"
            assert loaded["currentTier"] == {"id": "free-tier"}
            assert len(fake.requests("a", "onboardUser")) == 3

    asyncio.run(asyncio.wait_for(go(), BOUND))


def test_fetch_available_models_lists_models_with_quota_configurable_per_account() -> None:
    async def body(h: Harness) -> None:
        h.fake.set_quota(MODEL, None, reset_time="2026-01-10T15:00:00Z", account="b")
        path = "/v1internal:fetchAvailableModels"
        async with await h.call("a", path, body={"project": "p"}) as resp:
            models_a = (await resp.json())["models"]
        async with await h.call("b", path, body={}) as resp:
            models_b = (await resp.json())["models"]
        assert models_a[MODEL]["quotaInfo"]["remainingFraction"] == 1.0
        assert "gemini-3-flash" in models_a
        assert models_b[MODEL]["quotaInfo"] == {"resetTime": "2026-01-10T15:00:00Z"}
        h.fake.set_models({"claude-sonnet-4-6": {"displayName": "S"}})
        async with await h.call("a", path, body={}) as resp:
            assert list((await resp.json())["models"]) == ["claude-sonnet-4-6"]

    run(body)


def test_bootstrap_calls_can_be_scripted_to_fail_on_one_endpoint() -> None:
    async def body(h: Harness) -> None:
        h.fake.script("a", [preset("server_500")], endpoint="prod", call="loadCodeAssist")
        path = "/v1internal:loadCodeAssist"
        async with await h.call("a", path, endpoint="prod", body={}) as resp:
            assert resp.status == 500
        async with await h.call("a", path, endpoint="daily", body={}) as resp:
            assert resp.status == 200
        assert [r.outcome for r in h.fake.requests("a", "loadCodeAssist")] == [
            "preset:server_500",
            "ok",
        ]
        with pytest.raises(ValueError, match="cannot be scripted"):
            h.fake.script("a", [stream()], call="onboardUser")

    run(body)


# admin, CLI, construction -----------------------------------------------------------------


def test_the_admin_routes_script_answers_and_read_and_clear_the_log() -> None:
    async def body(h: Harness) -> None:
        admin = h.fake.auth_url + "/_fake"
        spec = {
            "account": "a",
            "answers": [
                "quota_429",
                {"kind": "stream", "parts": ["hi ", {"thinking": "t"}], "chunks": 1},
            ],
        }
        async with h.session.post(admin + "/script", json=spec) as resp:
            assert await resp.json() == {"queued": 2, "pending": 2}
        async with await h.call("a") as resp:
            assert resp.status == 429
        events = await h.events("a")
        assert [p.get("thought", False) for p in parts_of(events)] == [False, True, True]
        async with h.session.get(admin + "/log", params={"path": "streamGenerateContent"}) as r:
            logged = (await r.json())["requests"]
        assert [(x["account"], x["outcome"]) for x in logged] == [
            ("a", "preset:quota_429"),
            ("a", "stream"),
        ]
        async with h.session.post(admin + "/default", json={"answer": "hang"}) as resp:
            assert (await resp.json())["default"] == "hang"
        async with h.session.post(admin + "/accounts", json={"name": "c"}) as resp:
            assert "c" in [a["name"] for a in (await resp.json())["accounts"]]
        async with h.session.delete(admin + "/log") as resp:
            assert resp.status == 200
        assert h.fake.log == []

    run(body)


def test_the_admin_quota_route_sets_what_fetch_available_models_reports_and_spends_it() -> None:
    async def body(h: Harness) -> None:
        url = h.fake.auth_url + "/_fake/quota"
        model = MODEL
        spec = {"model": model, "remaining_fraction": 0, "reset_time": "2099-01-01T00:00:00Z"}
        async with h.session.post(url, json={**spec, "account": "a"}) as resp:
            quota = (await resp.json())["models"][model]["quotaInfo"]
            assert quota == {"remainingFraction": 0, "resetTime": "2099-01-01T00:00:00Z"}
        assert h.fake.models_for("b")[model]["quotaInfo"]["remainingFraction"] == 1.0
        async with await h.call("a") as resp:
            assert resp.status == 429
        async with await h.call("b") as resp:
            assert resp.status == 200
        for bad in ({"remaining_fraction": 0.5}, {"model": model, "remaining_fraction": "x"}):
            async with h.session.post(url, json=bad) as resp:
                assert resp.status == 400

    run(body)


def test_the_admin_script_route_rejects_unknown_specs_with_400() -> None:
    async def body(h: Harness) -> None:
        url = h.fake.auth_url + "/_fake/script"
        for spec in (
            {"account": "a", "answers": [{"kind": "nonsense"}]},
            {"account": "zed", "answers": ["hang"]},
            {"account": "a", "call": "nope", "answers": []},
        ):
            async with h.session.post(url, json=spec) as resp:
                assert resp.status == 400
                assert "error" in await resp.json()

    run(body)


def test_from_spec_builds_every_answer_kind() -> None:
    kinds = {
        "empty": "empty",
        "drop_before": "drop_before",
        "hang": "hang",
        "normal": "normal",
        "server_500": "error",
        "version_gate": "stream",
    }
    for spec, kind in kinds.items():
        assert from_spec(spec).kind == kind
    assert len(from_spec({"kind": "drop_after", "k": 2}).events) == 2
    assert from_spec({"kind": "error", "status": 418}).status == 418
    assert from_spec({"kind": "error_in_stream", "after": 0}).events == (
        PRESETS["server_500"].body,
    )
    assert not from_spec({"kind": "final_without_newline"}).final_newline
    assert from_spec({"kind": "sse", "events": [{"x": 1}]}).events == ('{"x": 1}',)
    image_spec = {"kind": "stream", "parts": [{"image": None}, {"function_call": "f"}]}
    assert len(from_spec(image_spec).events) == 2
    with pytest.raises(ValueError, match="unknown preset"):
        preset("nope")


def test_wait_for_requests_is_bounded_by_its_timeout() -> None:
    async def body(h: Harness) -> None:
        with pytest.raises(TimeoutError):
            await h.fake.wait_for_requests(1, path="generateContent", timeout=0.1)

    run(body)


def test_the_fake_refuses_to_listen_anywhere_but_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        asyncio.run(FakeUpstream().start(host="0.0.0.0"))
    with pytest.raises(ValueError, match="loopback"):
        asyncio.run(run_fake_upstream(host="192.168.1.10"))


def test_the_cli_refuses_a_non_loopback_host_with_a_clear_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--host", "0.0.0.0"]) == 2
    assert "only listens on loopback" in capsys.readouterr().err


def test_run_fake_upstream_starts_numbered_accounts_on_the_requested_endpoints() -> None:
    async def go() -> None:
        fake = await run_fake_upstream(accounts=3)
        try:
            assert [a.name for a in fake.accounts] == ["account-1", "account-2", "account-3"]
            assert set(fake.urls) == {"daily", "prod"}
            async with aiohttp.ClientSession() as session:
                h = Harness(fake, session)
                assert await h.token("account-3")
        finally:
            await fake.stop()

    asyncio.run(asyncio.wait_for(go(), BOUND))


def test_the_cli_prints_base_urls_and_refresh_tokens_and_serves_until_terminated() -> None:
    code = "import sys; from adapters.fake_upstream import main; sys.exit(main(sys.argv[1:]))"
    with subprocess.Popen(
        [sys.executable, "-c", code, "--json", "--accounts", "1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 10)
            assert ready, "the CLI printed nothing within 10 s"
            info = json.loads(proc.stdout.readline())
            assert set(info["endpoints"]) == {"daily", "prod"}
            refresh = info["accounts"][0]["refresh_token"]

            async def use() -> int:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
                    form = {"grant_type": "refresh_token", "refresh_token": refresh}
                    async with s.post(info["token_url"], data=form) as resp:
                        return resp.status

            assert asyncio.run(use()) == 200
        finally:
            proc.terminate()
            assert proc.wait(timeout=10) == 0
