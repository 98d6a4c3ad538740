"""Quota, read as a user runs interlock: the real proxy on the fake upstream, whose
fetchAvailableModels reports a scriptable quota per account and model (and whose generate
answers a quota 429 for an account x model at 0, as Google does).

Each test scripts the quota, then has the proxy read it (`QuotaMonitor.read_all`, what the
proxy does at start and every `[quota] refresh_s`) before it sends requests."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from adapters.cli import main as cli_main
from adapters.quota import REPORTED_EMPTY, QuotaMonitor
from adapters.serve import Served
from adapters.server import PROXY
from adapters.store_sqlite import SQLiteStore
from tests.e2e import MODEL, calls, post, proxy, run, written

A1, A2 = "account-1", "account-2"
RESET = "2099-01-01T00:00:00Z"


def monitor(served: Served) -> QuotaMonitor:
    quota = served.runner.app[PROXY].quota
    assert quota is not None
    return quota


def set_quota(served: Served, account: str, fraction: float, reset: str | None = None) -> None:
    assert served.fake is not None
    served.fake.set_quota(MODEL, fraction, reset_time=reset, account=account)


async def get_json(served: Served, path: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(served.url + path) as response:
        assert response.status == 200
        return await response.json()


def stored_cooldowns(served: Served) -> dict[str, dict[str, Any]]:
    reader = SQLiteStore(served.store.path, readonly=True)
    try:
        return {info.email.split("@")[0]: info.cooldowns for info in reader.accounts()}
    finally:
        reader.close()


def quota_rows(answer: Any) -> dict[str, Any]:
    return {row["label"].split("@")[0]: row for row in answer["accounts"]}


def test_an_account_at_zero_gets_no_generate_call_for_that_model_and_quota_shows_zero() -> None:
    async def scenario() -> None:
        async with proxy(2) as served:
            set_quota(served, A1, 0.0, RESET)
            set_quota(served, A2, 0.8)
            await monitor(served).read_all()
            assert served.fake is not None
            served.fake.clear_log()

            for stream in (False, True, False, True, False, True):
                status, _, body = await post(served, stream=stream)
                assert status == 200, body

            assert {account for _, account in calls(served)} == {A2}
            rows = quota_rows(await get_json(served, "/quota"))
            assert rows[A1]["models"][MODEL]["remaining_fraction"] == 0.0
            assert rows[A1]["models"][MODEL]["reset_time"] == RESET
            assert rows[A1]["models"][MODEL]["resting_until"] is not None
            assert rows[A1]["models"][MODEL]["rest_reason"] == REPORTED_EMPTY
            assert rows[A2]["models"][MODEL]["remaining_fraction"] == 0.8
            assert rows[A2]["models"][MODEL]["resting_until"] is None
            assert rows[A2]["tier"] in {"free", "pro", "ultra", "unknown"}
            assert rows[A2]["read_at"] is not None and rows[A2]["error"] is None
            assert all(row["id"] and "refresh" not in json.dumps(row) for row in rows.values())

    run(scenario())


def test_quota_is_read_at_start_without_any_request() -> None:
    async def scenario() -> None:
        async with proxy(2) as served:
            deadline = time.monotonic() + 10  # bounded: the first read is at start
            while time.monotonic() < deadline and len(monitor(served).readings) < 2:
                await asyncio.sleep(0.02)
            rows = quota_rows(await get_json(served, "/quota"))
            assert set(rows) == {A1, A2}
            assert rows[A1]["models"][MODEL]["remaining_fraction"] == 1.0
            assert served.fake is not None
            assert not served.fake.requests(path="streamGenerateContent")

    run(scenario())


def test_a_quota_429_has_the_account_read_again_and_the_reading_keeps_it_resting() -> None:
    async def scenario() -> None:
        async with proxy(2) as served:
            quota = monitor(served)
            await quota.read_all()
            assert served.fake is not None
            reads_before = len(served.fake.requests(account=A1, call="fetchAvailableModels"))
            set_quota(served, A1, 0.0, RESET)  # spent meanwhile: the fake answers a quota 429

            for _ in range(4):
                status, _, body = await post(served)
                assert status == 200, body

            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                rows = quota_rows(await get_json(served, "/quota"))
                if rows[A1]["models"][MODEL]["remaining_fraction"] == 0.0:
                    break
                await asyncio.sleep(0.02)
            reads = len(served.fake.requests(account=A1, call="fetchAvailableModels"))
            assert reads == reads_before + 1
            pool = served.runner.app[PROXY].engine.pool
            now = served.runner.app[PROXY].clock.now()
            resting = [a for a in pool.account_ids if pool.cooldown(a, MODEL, now)]
            assert len(resting) == 1

    run(scenario())


def test_an_account_whose_quota_came_back_is_served_again_after_the_next_reading() -> None:
    async def scenario() -> None:
        async with proxy(2) as served:
            set_quota(served, A1, 0.0, RESET)
            await monitor(served).read_all()
            await written(served)
            assert MODEL in stored_cooldowns(served)[A1]
            set_quota(served, A1, 0.6)
            await monitor(served).read_all()
            await written(served)
            assert stored_cooldowns(served)[A1] == {}  # the restart would not bring it back
            assert served.fake is not None
            served.fake.clear_log()

            for _ in range(4):
                status, _, body = await post(served)
                assert status == 200, body

            assert {account for _, account in calls(served)} == {A1, A2}

    run(scenario())


def test_hybrid_keeps_an_account_under_the_floor_for_when_nothing_else_is_left() -> None:
    async def scenario() -> None:
        async with proxy(2, policy={"strategy": "hybrid"}) as served:
            set_quota(served, A1, 0.03)  # under the 5 % critical floor
            set_quota(served, A2, 0.9)
            await monitor(served).read_all()
            assert served.fake is not None
            served.fake.clear_log()
            for _ in range(5):
                status, _, body = await post(served)
                assert status == 200, body
            assert {account for _, account in calls(served)} == {A2}

            set_quota(served, A2, 0.0, RESET)  # now nothing else is left
            await monitor(served).read_all()
            served.fake.clear_log()
            status, _, body = await post(served)
            assert status == 200, body
            assert {account for _, account in calls(served)} == {A1}

    run(scenario())


def test_accounts_list_shows_the_tier_and_a_bar_per_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def scenario() -> None:
        async with proxy(2) as served:
            set_quota(served, A1, 0.25, RESET)
            await monitor(served).read_all()
            await written(served)
            assert cli_main(["accounts", "--state", str(served.store.path), "list"]) == 0
            listing = capsys.readouterr().out
            assert "tier " in listing
            assert f"{MODEL}" in listing
            assert "[#####---------------]  25%" in listing
            assert f"resets {RESET}" in listing
            assert cli_main(["accounts", "--state", str(served.store.path), "list", "--json"]) == 0
            rows = json.loads(capsys.readouterr().out)
            assert {row["quota"][MODEL]["remaining_fraction"] for row in rows} == {0.25, 1.0}

    run(scenario())


def test_quota_answers_with_reading_false_when_nothing_can_read_it() -> None:
    async def scenario() -> None:
        async with proxy(2, quota={"enabled": False}) as served:
            answer = await get_json(served, "/quota")
            assert answer["reading"] is False
            assert all(row["models"] == {} for row in answer["accounts"])

    run(scenario())
