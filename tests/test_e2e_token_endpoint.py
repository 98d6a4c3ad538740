"""The OAuth token endpoint through the real proxy: a refused OAuth client is the proxy's
configuration (no account changes), a hanging or malformed token endpoint is a transient
token-endpoint failure (no account changes, the client hears soon), and nothing is left behind
at shutdown.

Unlike `tests.e2e.proxy` (sandbox mode) the proxy here runs on a fake upstream the test owns,
so that the token endpoint can be scripted (or made to check the OAuth client) before the
proxy's first refresh."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from adapters import serve
from adapters.config import load_settings
from adapters.fake_upstream import Answer, FakeUpstream, error, hang, normal, preset
from adapters.serve import Served
from adapters.server import PROXY
from adapters.store_sqlite import Credentials, SQLiteStore
from tests.e2e import FAST_POLICY, FAST_UPSTREAM, post, proxy, run, written

INVALID_CLIENT = (
    '{"error": "invalid_client", "error_description": "The OAuth client was not found."}'
)
CLIENT = {"client_id": "id", "client_secret": "secret"}
UNAUTHORIZED_CLIENT = (
    '{"error": "unauthorized_client", "error_description": "Unauthorized client or scope."}'
)


@asynccontextmanager
async def proxy_on_fake(
    tmp_path: Path,
    *,
    accounts: int = 2,
    token: list[Answer] | None = None,
    fake_client: tuple[str, str] | None = None,
    oauth: dict[str, Any] | None = None,
    upstream: dict[str, Any] | None = None,
    quota: dict[str, Any] | None = None,
) -> AsyncIterator[tuple[Served, FakeUpstream]]:
    """The proxy (not in sandbox mode) on a fake upstream with `accounts` accounts whose token
    endpoint answers `token` first (to any account) and checks `fake_client` if given."""
    client_id, client_secret = fake_client or (None, None)
    fake = FakeUpstream(client_id=client_id, client_secret=client_secret)
    urls = await fake.start()
    state = tmp_path / "state.db"
    store = SQLiteStore(state)
    for i in range(1, accounts + 1):
        account = fake.add_account(f"account-{i}")
        store.add_account(
            f"account-{i}@example.com",
            Credentials(refresh_token=account.refresh_token, managed_project_id=account.project),
        )
    store.close()
    if token:
        fake.script_token(None, token)
    settings = load_settings(
        env={},
        overrides={
            "server": {"port": 0, "state": str(state)},
            "policy": FAST_POLICY,
            "quota": quota or {},
            "upstream": {
                **FAST_UPSTREAM,
                "endpoints": urls,
                "token_url": fake.token_url,
                **(upstream or {}),
            },
            "oauth": oauth or {},
            "models": {"startup_wait_s": 0},
        },
    )
    served = await serve.start(settings, seed=0)
    try:
        yield served, fake
    finally:
        await served.stop()
        await fake.stop()


def _generates(fake: FakeUpstream) -> int:
    return len(fake.requests(path="streamGenerateContent"))


async def _states(served: Served) -> list[str | None]:
    """Every account's invalid reason, in memory and as persisted (None: valid)."""
    await written(served)
    pool = served.runner.app[PROXY].engine.pool
    in_memory = [pool.account(a).invalid_reason for a in pool.account_ids]
    persisted = [a.invalid_reason for a in served.store.accounts()]
    return in_memory + persisted


# a refused OAuth client -------------------------------------------------------------------------
@pytest.mark.parametrize("stream_mode", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize(
    ("oauth", "answers"),
    [
        ({"client_id": "wrong-id", "client_secret": "wrong-secret"}, None),  # the fake checks
        ({}, None),  # no [oauth] at all: the fake (like Google) finds no client
        ({"client_id": "id", "client_secret": "s"}, [error(401, INVALID_CLIENT)] * 20),
        ({"client_id": "id", "client_secret": "s"}, [error(400, UNAUTHORIZED_CLIENT)] * 20),
    ],
    ids=["wrong-client", "no-client", "invalid_client", "unauthorized_client"],
)
def test_a_refused_oauth_client_leaves_every_account_valid_and_names_oauth_to_the_client(
    tmp_path: Path, oauth: dict[str, Any], answers: list[Answer] | None, stream_mode: bool
) -> None:
    async def scenario() -> None:
        checked = None if answers else ("right-id", "right-secret")
        async with proxy_on_fake(
            tmp_path, accounts=3, token=answers, fake_client=checked, oauth=oauth
        ) as (served, fake):
            status, headers, body = await post(served, stream=stream_mode)
            assert status == 500, body
            assert body["type"] == "error" and body["error"]["type"] == "api_error"
            message = body["error"]["message"]
            assert "[oauth]" in message and "client_id" in message, message
            assert "interlock accounts" not in message  # no account is at fault
            assert headers.get("x-should-retry") == "false"
            assert _generates(fake) == 0  # nothing was sent to Cloud Code
            assert await _states(served) == [None] * 6
            assert "right-secret" not in message

    run(scenario())


def test_a_refused_oauth_client_ends_the_request_at_the_first_refusal(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with proxy_on_fake(
            tmp_path, accounts=3, fake_client=("right-id", "right-secret")
        ) as (served, fake):
            await served.runner.app[PROXY].models.refresh()  # the catalog's refreshes first
            before = len(fake.requests(path="/token"))
            await post(served)
            assert len(fake.requests(path="/token")) == before + 1

    run(scenario())


# a hanging token endpoint -----------------------------------------------------------------------
@pytest.mark.parametrize("accounts", [1, 4])
def test_a_hanging_token_endpoint_answers_within_the_token_timeout_and_changes_no_account(
    tmp_path: Path, accounts: int
) -> None:
    timeout = 0.5

    async def scenario() -> None:
        async with proxy_on_fake(
            tmp_path,
            accounts=accounts,
            token=[hang()] * 100,
            upstream={"token_timeout_s": timeout},
        ) as (served, fake):
            started = time.monotonic()
            status, _, body = await post(served)
            elapsed = time.monotonic() - started
            assert status == 500 and body["error"]["type"] == "api_error", body
            assert elapsed < timeout + 1.0, elapsed
            message = body["error"]["message"]
            assert "token endpoint" in message and f"{timeout:g} s" in message, message
            assert _generates(fake) == 0
            assert await _states(served) == [None] * (2 * accounts)
            # after the first timeout the other accounts' refreshes failed at once
            assert len(fake.requests(path="/token")) <= accounts

    run(scenario())


def test_a_token_endpoint_that_answers_again_is_used_again_after_the_pause(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with proxy_on_fake(
            tmp_path,
            accounts=2,
            token=[hang()],
            upstream={"token_timeout_s": 0.3, "token_down_s": 0.5},
            quota={"enabled": False},  # one token call at start: the catalog's
        ) as (served, fake):
            while not fake.requests(path="/token"):  # the catalog's refresh hangs; joined
                await asyncio.sleep(0.01)
            status, _, _ = await post(served)
            assert status == 500
            await asyncio.sleep(0.6)
            status, _, _ = await post(served)
            assert status == 200

    run(scenario())


# malformed token answers ------------------------------------------------------------------------
MALFORMED = [
    ("expires_in not a number", '{"access_token": "ya29.secret", "expires_in": "soon"}'),
    ("no access_token", '{"expires_in": 3599, "token_type": "Bearer"}'),
    ("not JSON", "<html>ya29.secret</html>"),
]


@pytest.mark.parametrize(("name", "body"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_token_answer_is_logged_in_one_line_and_is_a_token_endpoint_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str, body: str
) -> None:
    caplog.set_level(logging.WARNING, logger="interlock")

    async def scenario() -> None:
        async with proxy_on_fake(
            tmp_path, accounts=1, token=[error(200, body)] * 20, oauth=CLIENT
        ) as (served, _):
            status, _, answer = await post(served)
            assert status == 500, answer
            message = answer["error"]["message"]
            assert "credentials_unavailable" in message and "token endpoint" in message, message
            assert "internal error" not in message
            assert await _states(served) == [None] * 2

    run(scenario())
    lines = [r.getMessage() for r in caplog.records if r.name == "interlock.credentials"]
    assert lines and all("malformed" in line and "\n" not in line for line in lines), lines
    assert all("ya29.secret" not in r.getMessage() for r in caplog.records)


# a refresh outliving its callers -----------------------------------------------------------------
@pytest.mark.parametrize("ending", ["the refresh times out", "the proxy stops"])
def test_a_refresh_whose_callers_left_leaves_no_task_exception_unretrieved(
    tmp_path: Path, ending: str
) -> None:
    problems: list[dict[str, Any]] = []

    async def scenario() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: problems.append(ctx))
        async with proxy_on_fake(
            tmp_path,
            accounts=1,
            token=[normal(), hang()],  # the catalog's token, then the request's refresh hangs
            upstream={"token_timeout_s": 0.5 if ending == "the refresh times out" else 30},
        ) as (served, fake):
            await served.runner.app[PROXY].models.refresh()
            fake.script("account-1", [preset("auth_401")])  # a 401 asks for a fresh token
            request = asyncio.ensure_future(post(served))
            while len(fake.requests(path="/token")) < 2:
                await asyncio.sleep(0.01)
            request.cancel()  # the client leaves: nobody awaits the refresh any more
            with suppress(asyncio.CancelledError):
                await request
            if ending == "the refresh times out":
                await asyncio.sleep(0.8)
        for _ in range(3):  # the refresh's task is collected: unretrieved exceptions are told
            gc.collect()
            await asyncio.sleep(0.01)

    gc.collect()  # earlier tests' garbage first (an httpx client collected inside this loop
    # schedules its own close here, which fails: not this test's business)
    run(scenario())
    gc.collect()
    told = [
        (p.get("message"), repr(p.get("exception")), repr(p.get("task") or p.get("future")))
        for p in problems
        if "site-packages" not in repr(p.get("task") or p.get("future"))
    ]
    assert told == []


# the startup warning ----------------------------------------------------------------------------
def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and "[oauth]" in r.getMessage()
    ]


@pytest.mark.parametrize(
    ("oauth", "named"),
    [
        ({}, "[oauth] client_id and client_secret are not set"),
        ({"client_id": "id"}, "[oauth] client_secret is not set"),
    ],
)
def test_serve_warns_at_start_when_accounts_need_an_oauth_client_that_is_not_set(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, oauth: dict[str, Any], named: str
) -> None:
    caplog.set_level(logging.WARNING)

    async def scenario() -> None:
        async with proxy_on_fake(tmp_path, accounts=2, oauth=oauth):
            pass

    run(scenario())
    warned = _warnings(caplog)
    assert len(warned) == 1 and named in warned[0] and "2 account(s)" in warned[0], warned


@pytest.mark.parametrize("case", ["oauth set", "no accounts", "sandbox"])
def test_serve_says_nothing_about_oauth_when_no_client_is_needed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    caplog.set_level(logging.WARNING)

    async def scenario() -> None:
        if case == "sandbox":  # the fake token endpoint needs no client
            async with proxy():
                return
        oauth = {"client_id": "id", "client_secret": "s"} if case == "oauth set" else {}
        async with proxy_on_fake(tmp_path, accounts=0 if case == "no accounts" else 2, oauth=oauth):
            pass

    run(scenario())
    assert _warnings(caplog) == []
