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
    OAuthClientRejected,
)
from adapters.config import load_settings
from adapters.fake_upstream import FakeUpstream, drop_before, error, hang
from adapters.store_sqlite import Credentials, SQLiteStore
from tests.e2e import run


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def _setup(  # type: ignore[no-untyped-def]
    fake: FakeUpstream,
    tmp_path: Path,
    upstream: dict[str, object] | None = None,
    oauth: dict[str, object] | None = None,
    **account: object,
):
    info = fake.add_account("a", **account)  # type: ignore[arg-type]
    store = SQLiteStore(tmp_path / "state.db")
    account_id = store.add_account("a@example.com", Credentials(refresh_token=info.refresh_token))
    assert account_id
    settings = load_settings(
        env={},
        overrides={
            "upstream": {"endpoints": fake.urls, "token_url": fake.token_url, **(upstream or {})},
            "oauth": oauth or {},
        },
    )
    return info, store, account_id, settings


def _add(fake: FakeUpstream, store: SQLiteStore, name: str) -> str:
    info = fake.add_account(name)
    account_id = store.add_account(f"{name}@example.com", Credentials(info.refresh_token))
    assert account_id
    return account_id


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


def test_a_refused_oauth_client_is_a_configuration_error_not_a_revoked_account(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with (
            FakeUpstream(client_id="right-id", client_secret="right-secret") as fake,
            aiohttp.ClientSession() as session,
        ):
            _, store, account_id, settings = await _setup(
                fake, tmp_path, oauth={"client_id": "wrong-id", "client_secret": "wrong"}
            )
            creds = CredentialManager(session, store, settings)
            with pytest.raises(OAuthClientRejected) as caught:
                await creds.access_token(account_id)
            assert "[oauth]" in str(caught.value) and "invalid_client" in str(caught.value)
            assert not isinstance(caught.value, AccountRevoked)
            assert "wrong" not in str(caught.value).replace("wrong-", "")  # no secret

    run(scenario())


@pytest.mark.parametrize(
    "answer",
    [
        '{"access_token": "ya29.x", "expires_in": "soon"}',
        '{"access_token": "ya29.x", "expires_in": true}',
        '{"access_token": "ya29.x", "expires_in": -5}',
        '{"access_token": "ya29.x", "expires_in": Infinity}',
        '{"access_token": "", "expires_in": 3599}',
        '{"expires_in": 3599}',
        '["ya29.x"]',
        "not json ya29.x",
    ],
)
def test_a_malformed_token_answer_is_a_transient_token_endpoint_failure(
    tmp_path: Path, answer: str
) -> None:
    async def scenario() -> None:
        async with FakeUpstream() as fake, aiohttp.ClientSession() as session:
            _, store, account_id, settings = await _setup(fake, tmp_path)
            creds = CredentialManager(session, store, settings)
            fake.script_token("a", [error(200, answer)])
            with pytest.raises(CredentialsUnavailable) as caught:
                await creds.access_token(account_id)
            assert "malformed" in str(caught.value) and "ya29.x" not in str(caught.value)
            assert await creds.access_token(account_id)  # the next answer is fine

    run(scenario())


def test_a_token_answer_with_a_numeric_string_expires_in_is_accepted(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeUpstream() as fake, aiohttp.ClientSession() as session:
            _, store, account_id, settings = await _setup(fake, tmp_path)
            clock = Clock()
            creds = CredentialManager(session, store, settings, monotonic=clock)
            fake.script_token("a", [error(200, '{"access_token": "ya29.x", "expires_in": "120"}')])
            assert await creds.access_token(account_id) == "ya29.x"
            clock.t += 59
            assert await creds.access_token(account_id) == "ya29.x"
            clock.t += 2
            assert await creds.access_token(account_id) != "ya29.x"

    run(scenario())


def test_after_a_token_endpoint_timeout_other_refreshes_fail_at_once_for_a_while(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with FakeUpstream() as fake, aiohttp.ClientSession() as session:
            _, store, first, settings = await _setup(
                fake, tmp_path, upstream={"token_timeout_s": 0.2, "token_down_s": 30}
            )
            second = _add(fake, store, "b")
            clock = Clock()
            creds = CredentialManager(session, store, settings, monotonic=clock)
            fake.script_token(None, [hang()])
            started = asyncio.get_running_loop().time()
            with pytest.raises(CredentialsUnavailable) as caught:
                await creds.access_token(first)
            assert asyncio.get_running_loop().time() - started < 1.0
            assert "did not answer within 0.2 s" in str(caught.value)
            with pytest.raises(CredentialsUnavailable) as fast:
                await creds.access_token(second)
            assert "no new token refresh is tried for 30 s" in str(fast.value)
            assert len(fake.requests(path="/token")) == 1  # failed at once, nothing sent
            clock.t += 31
            assert await creds.access_token(second)  # tried again after the pause

    run(scenario())


def test_a_token_endpoint_that_answers_ends_the_pause_for_everyone(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeUpstream() as fake, aiohttp.ClientSession() as session:
            _, store, first, settings = await _setup(
                fake, tmp_path, upstream={"token_timeout_s": 0.5, "token_down_s": 30}
            )
            second = _add(fake, store, "b")
            creds = CredentialManager(session, store, settings)
            fake.script_token("a", [hang()])
            late = error(200, '{"access_token": "ya29.b", "expires_in": 1e9}', latency=0.25)
            fake.script_token("b", [late])
            hanging = asyncio.ensure_future(creds.access_token(first))
            await asyncio.sleep(0.4)
            # b's refresh started before a's timed out (0.5 s) and is answered after it
            assert await creds.access_token(second) == "ya29.b"
            with pytest.raises(CredentialsUnavailable):
                await hanging
            assert await creds.access_token(first)  # the endpoint answers: no pause

    run(scenario())
