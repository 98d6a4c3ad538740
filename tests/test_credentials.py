"""Access tokens and projects, against the fake Google token endpoint and Cloud Code API."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from adapters.cloudcode.credentials import (
    AccountRevoked,
    CredentialManager,
    CredentialsUnavailable,
)
from adapters.config import load_settings
from adapters.fake_upstream import FakeUpstream, drop_before, error
from adapters.store_sqlite import Credentials, SQLiteStore
from tests.e2e import run


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def _setup(fake: FakeUpstream, tmp_path: Path, **account: object):  # type: ignore[no-untyped-def]

    info = fake.add_account("a", **account)  # type: ignore[arg-type]
    store = SQLiteStore(tmp_path / "state.db")
    account_id = store.add_account("a@example.com", Credentials(refresh_token=info.refresh_token))
    assert account_id
    settings = load_settings(
        env={},
        overrides={
            "upstream": {"endpoints": fake.urls, "token_url": fake.token_url},
        },
    )
    return info, store, account_id, settings


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def test_concurrent_requests_share_one_token_refresh(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeUpstream() as fake, aiohttp.ClientSession() as session:
            _, store, account_id, settings = await _setup(fake, tmp_path)
            creds = CredentialManager(session, store, settings)
            tokens = await asyncio.gather(*(creds.access_token(account_id) for _ in range(10)))
            assert len(set(tokens)) == 1 and creds.refreshes == 1
            assert len(fake.requests(path="/token")) == 1

    run(scenario())


def test_the_token_cache_honours_expires_in_and_refreshes_a_minute_early(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeUpstream() as fake, aiohttp.ClientSession() as session:
            _, store, account_id, settings = await _setup(fake, tmp_path)
            clock = Clock()
            creds = CredentialManager(session, store, settings, monotonic=clock)
            first = await creds.access_token(account_id)
            clock.t += 3599 - 61  # the fake's tokens last 3599 s
            assert await creds.access_token(account_id) == first
            clock.t += 2
            assert await creds.access_token(account_id) != first and creds.refreshes == 2

    run(scenario())


def test_invalid_grant_means_revoked_and_a_token_endpoint_outage_is_transient(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with FakeUpstream() as fake, aiohttp.ClientSession() as session:
            _, store, account_id, settings = await _setup(fake, tmp_path)
            creds = CredentialManager(session, store, settings)
            fake.script_token("a", [error(503, '{"error": "backend_error"}'), drop_before()])
            for _ in range(2):
                with pytest.raises(CredentialsUnavailable):
                    await creds.access_token(account_id)
            fake.revoke("a")
            with pytest.raises(AccountRevoked) as caught:
                await creds.access_token(account_id)
            assert "invalid_grant" in str(caught.value)
            assert fake.account("a").refresh_token not in str(caught.value)

    run(scenario())


def test_a_project_is_discovered_once_and_remembered(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeUpstream() as fake, aiohttp.ClientSession() as session:
            info, store, account_id, settings = await _setup(fake, tmp_path)
            creds = CredentialManager(session, store, settings)
            token = await creds.access_token(account_id)
            assert await creds.project(account_id, token) == info.project
            assert await creds.project(account_id, token) == info.project
            assert len(fake.requests(path="loadCodeAssist")) == 1
            assert store.credentials(account_id).managed_project_id == info.project

    run(scenario())


def test_an_account_without_a_project_is_onboarded_through_the_long_running_operation(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with FakeUpstream() as fake, aiohttp.ClientSession() as session:
            info, store, account_id, settings = await _setup(
                fake, tmp_path, onboarded=False, onboard_polls=2
            )
            creds = CredentialManager(session, store, settings, sleep=_no_sleep)
            token = await creds.access_token(account_id)
            assert await creds.project(account_id, token) == info.project
            assert len(fake.requests(path="onboardUser")) == 3  # done: false, false, true

    run(scenario())
