"""Account changes made with `interlock accounts` while the proxy runs take effect within 2 s
and are never overwritten; the proxy's own state writes happen behind the requests.

The real proxy (sandbox mode: the fake upstream, a real state database in a tmp dir) and the
CLI on a connection of its own. Most tests drive the proxy's sync pass directly (`written`)
instead of waiting for its timer; one measures the real latency of the 2 s promise."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from adapters.cli import main as cli_main
from adapters.fake_upstream import preset, stream, text
from adapters.serve import Served
from adapters.server import PROXY
from adapters.store_sqlite import AccountInfo, Credentials, SQLiteStore
from adapters.store_sync import StoreSync
from engine.policy import Policy
from engine.pool import AccountPool
from tests.e2e import MODEL, calls, post, proxy, run, written

A1, A2, A3 = "account-1", "account-2", "account-3"


def email(account: str) -> str:
    return f"{account}@sandbox.invalid"


def cli(served: Served, *args: str) -> None:
    """`interlock accounts ...` on its own connection to the proxy's database."""
    assert cli_main(["accounts", "--state", str(served.store.path), *args]) == 0


def database(served: Served) -> dict[str, AccountInfo]:
    reader = SQLiteStore(served.store.path, readonly=True)
    try:
        return {info.email: info for info in reader.accounts()}
    finally:
        reader.close()


def account_id(served: Served, account: str) -> str:
    return database(served)[email(account)].id


def pool(served: Served) -> AccountPool:
    return served.runner.app[PROXY].engine.pool


async def used_by(served: Served, requests: int) -> set[str | None]:
    """The accounts that served `requests` requests (round-robin: each account in turn)."""
    assert served.fake is not None
    served.fake.clear_log()
    for _ in range(requests):
        status, _, body = await post(served)
        assert status == 200, body
    return {account for _, account in calls(served)}


def test_an_account_disabled_with_the_cli_while_the_proxy_runs_is_no_longer_served_within_2_s() -> (
    None
):
    async def scenario() -> None:
        async with proxy(2) as served:
            assert await used_by(served, 2) == {A1, A2}
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "adapters.cli",
                "accounts",
                "--state",
                str(served.store.path),
                "disable",
                email(A1),
            )
            assert await asyncio.wait_for(process.wait(), 60) == 0
            # real time: the promise is about wall-clock latency; bounded at 2 s
            done, deadline = time.monotonic(), time.monotonic() + 2.0
            async with aiohttp.ClientSession() as session:
                while time.monotonic() < deadline:
                    async with session.get(served.url + "/accounts") as response:
                        rows = {r["email"]: r for r in (await response.json())["accounts"]}
                    if rows[email(A1)]["enabled"] is False:
                        break
                    await asyncio.sleep(0.05)
            assert rows[email(A1)]["enabled"] is False, "not picked up within 2 s"
            assert time.monotonic() - done < 2.0
            assert await used_by(served, 3) == {A2}

    run(scenario())


def test_a_cooldown_the_running_proxy_records_keeps_an_account_the_cli_disabled_disabled() -> None:
    async def scenario() -> None:
        async with proxy(2) as served:
            cli(served, "disable", email(A1))
            pool(served).cool_down(account_id(served, A1), MODEL, 1e9, "quota exhausted", 0.0)
            await written(served)
            after = database(served)[email(A1)]
            assert after.enabled is False and MODEL in after.cooldowns

    run(scenario())


def test_accounts_added_with_the_cli_while_the_proxy_runs_are_served() -> None:
    async def scenario() -> None:
        async with proxy(2) as served:
            assert served.fake is not None
            fake_account = served.fake.add_account(A3)
            other = SQLiteStore(served.store.path)  # `accounts add`, `login` and `import` do this
            other.add_account(
                email(A3),
                Credentials(
                    refresh_token=fake_account.refresh_token,
                    managed_project_id=fake_account.project,
                ),
            )
            other.close()
            await written(served)
            assert await used_by(served, 3) == {A1, A2, A3}

    run(scenario())


def test_an_account_removed_with_the_cli_is_no_longer_served_and_never_comes_back() -> None:
    async def scenario() -> None:
        async with proxy(2) as served:
            gone = account_id(served, A1)
            # a cooldown the proxy queued for it before the removal was read
            pool(served).cool_down(gone, MODEL, 1e9, "quota exhausted", 0.0)
            cli(served, "remove", email(A1))
            await written(served)
            assert gone not in pool(served).account_ids
            assert await used_by(served, 3) == {A2}
            await written(served)
            assert list(database(served)) == [email(A2)]

    run(scenario())


def test_enabling_with_the_cli_clears_an_invalid_mark_in_the_running_proxy() -> None:
    async def scenario() -> None:
        async with proxy(2) as served:
            assert served.fake is not None
            served.fake.revoke(A1)
            assert await used_by(served, 1) == {A2}  # A1's token is refused: marked invalid
            await written(served)
            assert database(served)[email(A1)].invalid_reason is not None
            served.fake.revoke(A1, revoked=False)  # the person signs in again
            cli(served, "enable", email(A1))
            await written(served)
            assert pool(served).account(account_id(served, A1)).valid
            assert await used_by(served, 2) == {A1, A2}
            await written(served)
            assert database(served)[email(A1)].invalid_reason is None

    run(scenario())


def test_an_invalid_mark_queued_before_a_cli_enable_was_read_does_not_undo_the_enable() -> None:
    async def scenario() -> None:
        async with proxy(2) as served:
            a1 = account_id(served, A1)
            pool(served).mark_invalid(a1, "Account requires verification", None, 0.0)
            await written(served)
            pool(served).mark_invalid(a1, "Token revoked", None, 0.0)  # queued, not yet written
            cli(served, "enable", email(A1))  # the person's change is the newer one
            await written(served)
            assert pool(served).account(a1).valid
            assert database(served)[email(A1)].invalid_reason is None

    run(scenario())


def test_a_request_holding_an_account_removed_with_the_cli_finishes_normally() -> None:
    async def scenario() -> None:
        async with proxy(2) as served:
            assert served.fake is not None
            served.fake.script(A1, [stream(text("slow but sure"), latency=0.3)])
            request = asyncio.ensure_future(post(served))
            for _ in range(200):  # until the attempt on A1 is in flight (bounded: 2 s)
                if calls(served):
                    break
                await asyncio.sleep(0.01)
            assert calls(served) == [("daily", A1)]
            gone = account_id(served, A1)
            cli(served, "remove", email(A1))
            await written(served)
            status, _, body = await request
            assert status == 200 and body["content"][0]["text"] == "slow but sure"
            assert gone not in pool(served).account_ids
            assert pool(served).leases() == 0
            assert await used_by(served, 2) == {A2}

    run(scenario())


def test_a_locked_state_database_neither_delays_nor_fails_a_request() -> None:
    async def scenario() -> None:
        async with proxy(2) as served:
            assert served.fake is not None
            served.fake.script(A1, [preset("quota_429")])  # A1 rests: a cooldown to write
            lock = sqlite3.connect(served.store.path, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            try:
                started = time.monotonic()
                status, _, _ = await post(served)
                elapsed = time.monotonic() - started
            finally:
                lock.execute("ROLLBACK")
                lock.close()
            assert status == 200 and calls(served) == [("daily", A1), ("daily", A2)]
            assert elapsed < 1.0  # the write waited behind the request, not inside it
            await written(served)
            assert MODEL in database(served)[email(A1)].cooldowns

    run(scenario())


def test_a_database_refusing_writes_is_logged_once_and_written_when_it_accepts_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        path = tmp_path / "state.db"
        setup = SQLiteStore(path, wall=lambda: 1_000_000.0)
        a = setup.add_account("a@example.com", Credentials(refresh_token="r"))
        setup.close()
        assert a
        sync = StoreSync(path, now=lambda: 0.0, wall=lambda: 1_000_000.0, busy_s=0.01)
        the_pool = AccountPool(Policy(), store=sync, now=0.0)
        sync.pool = the_pool
        lock = sqlite3.connect(path, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        for until in (60.0, 120.0, 90.0):
            the_pool.cool_down(a, MODEL, until, "rate limited", 0.0)
            await sync.tick()
        assert sync.pending == 1 and sync.failing is not None
        lock.execute("ROLLBACK")
        lock.close()
        await sync.tick()
        assert sync.pending == 0 and sync.failing is None
        await sync.close()
        reader = SQLiteStore(path, wall=lambda: 1_000_000.0)
        assert reader.accounts()[0].cooldowns == {MODEL: (1_000_120.0, "rate limited")}
        reader.close()

    with caplog.at_level(logging.INFO, logger="interlock.state"):
        run(scenario())
    messages = [r.getMessage() for r in caplog.records if r.name == "interlock.state"]
    assert len([m for m in messages if "cannot write the state database" in m]) == 1
    assert len([m for m in messages if "writable again" in m]) == 1


def test_health_says_degraded_while_the_state_database_refuses_writes() -> None:
    # issue 11: a full or read-only state disk failed requests and /health said ok
    async def scenario() -> None:
        async with proxy(2) as served:
            assert served.fake is not None
            served.fake.script(A1, [preset("quota_429")])
            lock = sqlite3.connect(served.store.path, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")
            try:
                status, _, _ = await post(served)
                assert status == 200
                await served.runner.app[PROXY].sync.tick()  # the write is refused meanwhile
                health = await get_json(served, "/health")
                assert health["status"] == "degraded"
                assert health["state_writes"]["failing"]
            finally:
                lock.execute("ROLLBACK")
                lock.close()
            await written(served)
            assert (await get_json(served, "/health"))["status"] == "ok"

    run(scenario())


async def get_json(served: Served, path: str) -> dict[str, object]:
    async with aiohttp.ClientSession() as session, session.get(served.url + path) as response:
        body: dict[str, object] = await response.json()
        return body
