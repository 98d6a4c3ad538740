"""The dashboard over raw HTTP (the browser tests are in test_dashboard_browser.py): what its
API says, who may change the pool through it, and that what it keeps stays bounded."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from adapters.dashboard.auth import CSRF_HEADER, SESSION_COOKIE
from adapters.dashboard.chart import LAYOUT, svg
from adapters.dashboard.live import LiveView
from adapters.serve import Served
from adapters.server import PROXY
from adapters.timeline import Timeline
from engine.effects import Finish, Outcome, RelayContent, SendAttempt
from engine.events import StreamEnded
from engine.table import STATES
from tests.e2e import BODY, post, proxy, run, written

KEY = "sk-dashboard-test"
A1 = "account-1"


async def fetch(
    served: Served,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    data: Any = None,
    cookies: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    async with (
        aiohttp.ClientSession(cookies=cookies) as session,
        session.request(
            method,
            served.url + path,
            headers=headers or {},
            data=data,
            allow_redirects=False,
        ) as response,
    ):
        return response.status, dict(response.headers), await response.text()


def csrf_of(page: str) -> str:
    found = re.search(r'<meta name="csrf" content="([^"]+)">', page)
    assert found is not None
    return found.group(1)


def pool_id(served: Served, account: str) -> str:
    store = served.runner.app[PROXY].store
    return next(info.id for info in store.accounts() if info.email.startswith(account + "@"))


def test_the_chart_has_a_box_for_every_state_of_the_table_and_a_cell_for_each() -> None:
    chart = svg()
    for state in STATES:
        assert f'data-state="{state.name}"' in chart
    assert set(LAYOUT) == {state.name for state in STATES}
    assert len(set(LAYOUT.values())) == len(LAYOUT)  # no two states share a cell


def test_the_page_is_served_with_a_strict_content_security_policy_and_no_inline_script() -> None:
    async def scenario() -> None:
        async with proxy(1) as served:
            status, headers, page = await fetch(served, "/dashboard")
            assert status == 200
            assert "script-src 'self'" in headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
            assert headers["X-Frame-Options"] == "DENY"
            assert re.search(r"<script>|<script [^s]", page) is None  # only <script src=...>
            assert "cdn" not in page.lower() and "https://" not in page
            for asset in ("/dashboard/app.js", "/dashboard/app.css", "/dashboard/favicon.svg"):
                status, _, _ = await fetch(served, asset)
                assert status == 200, asset

    run(scenario())


def test_the_state_api_shows_accounts_endpoints_and_finished_requests_without_secrets() -> None:
    async def scenario() -> None:
        async with proxy(2) as served:
            prompt = "the words of a private prompt"
            status, _, _ = await post(
                served, {**BODY, "messages": [{"role": "user", "content": prompt}]}
            )
            assert status == 200
            status, _, text = await fetch(served, "/dashboard/api/state")
            assert status == 200
            state = json.loads(text)
            assert [a["state"] for a in state["accounts"]] == ["usable", "usable"]
            assert set(state["endpoints"]) == {"daily", "prod"}
            assert state["in_flight"] == []
            [finished] = state["finished"]
            assert finished["outcome"] == "ok" and finished["status"] == 200
            assert "Selecting --target_granted--> Fetching" in finished["timeline"]
            assert state["history"][-1]["outcomes"] == {"ok": 1}
            assert state["history"][-1]["attempts"] == {"ok": 1}
            assert served.fake is not None
            for account in served.fake.accounts:
                assert account.refresh_token not in text
            assert "private prompt" not in text

    run(scenario())


def test_disable_and_enable_need_the_pages_csrf_token_and_change_the_pool_and_the_database() -> (
    None
):
    async def scenario() -> None:
        async with proxy(2) as served:
            _, _, page = await fetch(served, "/dashboard")
            account = pool_id(served, A1)
            path = f"/dashboard/api/accounts/{account}/disable"
            status, _, body = await fetch(served, path, method="POST")
            assert status == 403 and "X-Interlock-CSRF" in body
            status, _, _ = await fetch(
                served, path, method="POST", headers={CSRF_HEADER: "guessed"}
            )
            assert status == 403
            pool = served.runner.app[PROXY].engine.pool
            assert pool.account(account).enabled

            good = {CSRF_HEADER: csrf_of(page)}
            status, _, _ = await fetch(served, path, method="POST", headers=good)
            assert status == 200
            assert not pool.account(account).enabled
            await written(served)
            stored = {i.id: i.enabled for i in served.runner.app[PROXY].store.accounts()}
            assert stored[account] is False

            enable = f"/dashboard/api/accounts/{account}/enable"
            status, _, _ = await fetch(served, enable, method="POST", headers=good)
            assert status == 200 and pool.account(account).enabled

            status, _, body = await fetch(
                served, "/dashboard/api/accounts/acct-nope/disable", method="POST", headers=good
            )
            assert status == 404 and "acct-nope" in body

    run(scenario())


def test_a_cross_site_page_cannot_disable_an_account_even_with_the_token() -> None:
    async def scenario() -> None:
        async with proxy(2) as served:
            _, _, page = await fetch(served, "/dashboard")
            account = pool_id(served, A1)
            for hostile in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
                status, _, _ = await fetch(
                    served,
                    f"/dashboard/api/accounts/{account}/disable",
                    method="POST",
                    headers={CSRF_HEADER: csrf_of(page), **hostile},
                )
                assert status == 403
            assert served.runner.app[PROXY].engine.pool.account(account).enabled

    run(scenario())


def test_with_an_api_key_the_dashboard_needs_the_key_or_the_session_the_login_sets() -> None:
    async def scenario() -> None:
        async with proxy(1, server={"api_key": KEY}) as served:
            status, headers, _ = await fetch(served, "/dashboard")
            assert (status, headers["Location"]) == (303, "/dashboard/login")
            status, _, _ = await fetch(served, "/dashboard/api/state")
            assert status == 401
            status, _, _ = await fetch(served, "/dashboard/api/state", headers={"x-api-key": KEY})
            assert status == 200

            status, _, page = await fetch(served, "/dashboard/login")
            assert status == 200 and 'name="key"' in page
            status, _, page = await fetch(
                served, "/dashboard/login", method="POST", data={"key": "wrong"}
            )
            assert status == 401 and "That is not the API key." in page
            status, headers, _ = await fetch(
                served, "/dashboard/login", method="POST", data={"key": KEY}
            )
            assert (status, headers["Location"]) == (303, "/dashboard")
            cookie = headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert "Path=/dashboard" in cookie and KEY not in cookie

            session = {SESSION_COOKIE: cookie.split(";")[0].split("=", 1)[1]}
            status, _, _ = await fetch(served, "/dashboard/api/state", cookies=session)
            assert status == 200
            status, _, _ = await fetch(served, "/v1/models", cookies=session)
            assert status == 401  # the session opens the dashboard, nothing else
            forged = {SESSION_COOKIE: "forged"}
            status, _, _ = await fetch(served, "/dashboard/api/state", cookies=forged)
            assert status == 401

    run(scenario())


def test_without_an_api_key_the_login_form_sends_you_to_the_dashboard() -> None:
    async def scenario() -> None:
        async with proxy(1) as served:
            status, headers, _ = await fetch(served, "/dashboard/login")
            assert (status, headers["Location"]) == (303, "/dashboard")

    run(scenario())


@pytest.mark.parametrize("keep", [1, 3])
def test_the_live_view_keeps_a_bounded_list_and_forgets_requests_that_left(keep: int) -> None:
    clock = [0.0]
    live = LiveView(now=lambda: clock[0], wall=lambda: 1_800_000_000.0 + clock[0], keep=keep)
    send = SendAttempt(account="acct-1", endpoint="daily", model="m", attempt=1)
    for i in range(10):
        live.arrived(f"r{i}", clock[0], "m", True)
        live.emitted(f"r{i}", clock[0], "Fetching", [send])
        live.received(f"r{i}", clock[0], StreamEnded())
        clock[0] += 1.0
        live.emitted(f"r{i}", clock[0], "Done", [Finish(outcome=Outcome(ok=True))])
    live.arrived("gone", 0.0, "m", False)
    live.forget("gone")

    assert [r["id"] for r in live.finished] == [f"r{9 - i}" for i in range(keep)]
    assert live.running == {}
    assert live.in_flight() == []
    assert sum(m["outcomes"]["ok"] for m in live.history()) == 10


def test_a_finished_timeline_is_the_text_the_timeline_renders_for_the_same_steps() -> None:
    live = LiveView(now=lambda: 0.0, wall=lambda: 1_800_000_000.0)
    timeline = Timeline()
    send = [SendAttempt(account="acct-1", endpoint="daily", model="m", attempt=1)]
    request = SimpleNamespace(id="r1", now=0.0)
    for sink in (live, timeline):
        sink.arrived("r1", 0.0, "m", True, "claude-x")
        sink.emitted("r1", 0.0, "Fetching", send)
        sink.on_step(request, "Selecting", "target_granted", "Fetching")  # type: ignore[arg-type]
        for _ in range(3):
            sink.on_step(request, "Streaming", "content_received", "Streaming")  # type: ignore[arg-type]
            sink.emitted("r1", 0.1, "Streaming", [RelayContent(content="x")])
        sink.on_step(request, "Streaming", "stream_ended", "Done")  # type: ignore[arg-type]
        sink.emitted("r1", 0.2, "Done", [Finish(outcome=Outcome(ok=True))])

    [finished] = live.recent()
    assert finished["timeline"] == timeline.render("r1")
    assert finished["timeline"].count("content_received") == 1


def test_with_the_dashboard_off_its_routes_are_gone() -> None:
    async def scenario() -> None:
        async with proxy(1, server={"dashboard": False}) as served:
            status, _, _ = await post(served)
            assert status == 200
            for path in ("/dashboard", "/dashboard/api/state", "/dashboard/login"):
                status, _, _ = await fetch(served, path)
                assert status == 404, path

    run(scenario())
