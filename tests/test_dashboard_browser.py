"""The dashboard in a real browser (headless Chromium via Playwright) against the proxy on the
fake upstream: the accounts are there, a request is seen moving through the states and then
in the finished list with its timeline, and clicking Disable changes the pool."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.fake_upstream import stream
from adapters.server import PROXY
from tests.browser import browser_page, need_browser
from tests.e2e import calls, post, proxy, run

A1, A2 = "account-1", "account-2"
KEY = "sk-dashboard-test"


@pytest.fixture(autouse=True)
def _browser() -> None:
    need_browser()


def test_the_dashboard_shows_the_pool_a_request_moving_through_states_and_disables_an_account() -> (
    None
):
    from playwright.async_api import expect

    async def scenario() -> None:
        slow = {"first_byte_timeout_s": 30}  # the slow answer is waited for, not cut off
        async with proxy(2, upstream=slow) as served, browser_page() as page_:
            page: Any = page_
            assert served.fake is not None
            served.fake.script(A1, [stream("slow answer", latency=1.5)])
            served.fake.script(A2, [stream("slow answer", latency=1.5)])
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.goto(served.url + "/dashboard")
            rows = page.locator("#accounts tbody tr")
            await expect(rows).to_have_count(2)
            await expect(page.locator("#endpoints tbody tr")).to_have_count(2)
            await expect(page.locator("#status")).to_contain_text("2 of 2 accounts usable")

            request = asyncio.ensure_future(post(served, stream=True))
            fetching = page.locator('#chart .state.busy[data-state="Fetching"]')
            await expect(fetching).to_have_count(1)
            await expect(fetching.locator(".count")).to_have_text("1 request")
            await expect(page.locator('#in-flight li[data-state="Fetching"]')).to_have_count(1)
            status, _, _ = await request
            assert status == 200

            await expect(page.locator("#chart .state.busy")).to_have_count(0)
            finished = page.locator("#finished li[data-outcome=ok]")
            await expect(finished).to_have_count(1)
            await finished.locator("summary").click()
            await expect(finished.locator("pre")).to_contain_text(
                "Selecting --target_granted--> Fetching"
            )
            await expect(page.locator('#history tr[data-series="outcome: ok"]')).to_have_count(1)

            row = rows.filter(has_text=f"{A1}@")
            await row.get_by_role("button", name="Disable").click()
            await expect(row.locator(".badge")).to_have_text("disabled")
            await expect(row.get_by_role("button", name="Enable")).to_have_count(1)
            pool = served.runner.app[PROXY].engine.pool
            assert [pool.account(a).enabled for a in pool.account_ids].count(False) == 1
            served.fake.clear_log()
            for _ in range(3):
                status, _, _ = await post(served)
                assert status == 200
            assert {account for _, account in calls(served)} == {A2}
            bars = page.locator('#history tr[data-series="outcome: ok"] rect')
            await expect(bars).to_have_count(1)  # one minute so far
            assert errors == []

    run(scenario())


def test_with_an_api_key_the_dashboard_asks_for_it_once_and_keeps_a_session() -> None:
    from playwright.async_api import expect

    async def scenario() -> None:
        async with proxy(2, server={"api_key": KEY}) as served, browser_page() as page_:
            page: Any = page_
            await page.goto(served.url + "/dashboard")
            assert page.url.endswith("/dashboard/login")
            await page.get_by_label("API key").fill("wrong")
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.locator(".error")).to_have_text("That is not the API key.")

            await page.get_by_label("API key").fill(KEY)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.locator("#accounts tbody tr")).to_have_count(2)
            cookies = await page.context.cookies()
            assert [(c["name"], c["httpOnly"], c["sameSite"], c["path"]) for c in cookies] == [
                ("interlock_dashboard", True, "Strict", "/dashboard")
            ]
            # the session opens the dashboard only: the API still needs the key
            status = await page.evaluate("fetch('/v1/models').then(r => r.status)")
            assert status == 401

    run(scenario())
