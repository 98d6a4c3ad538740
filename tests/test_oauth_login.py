"""Signing a Google account in: PKCE consent URL, loopback callback or pasted answer, code
exchange at the fake upstream's token endpoint, email from its userinfo, account stored."""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import io
import queue
import socket
import sys
import threading
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import pytest

from adapters.config import Settings, load_settings
from adapters.fake_upstream import FakeUpstream
from adapters.oauth_login import (
    PORTS,
    SCOPES,
    LoginError,
    LoginResult,
    add_arguments,
    build_authorization_url,
    login,
    new_pkce,
    new_state,
    run_login,
)
from adapters.store_sqlite import Credentials, SQLiteStore

BOUND = 20.0
AUTH = "https://accounts.example.test/o/oauth2/v2/auth"
CLIENT_ID = "1234-test.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-SECRET-client-secret"
REFRESH = "1//0gSECRET-alice-refresh-token"
EMAIL = "alice@example.com"


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def port_of(url: str) -> int:
    port = urlsplit(query_of(url)["redirect_uri"]).port
    assert port is not None
    return port


@contextmanager
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def assert_no_secret(text: str, *extra: str) -> None:
    for secret in (CLIENT_SECRET, REFRESH, "ya29.", "4/fake-", *extra):
        assert secret not in text


@dataclass
class Harness:
    fake: FakeUpstream
    store: SQLiteStore
    settings: Settings
    session: aiohttp.ClientSession
    said: list[str] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)

    def open_browser(self, url: str) -> bool:
        self.opened.append(url)
        return True

    def start(
        self,
        *,
        browser: bool = True,
        paste: Callable[[], Awaitable[str]] | None = None,
        ports: tuple[int, ...] = (0,),
        timeout_s: float = BOUND / 2,
        settings: Settings | None = None,
        own_session: bool = False,
    ) -> asyncio.Task[LoginResult]:
        return asyncio.create_task(
            login(
                settings or self.settings,
                self.store,
                open_browser=self.open_browser if browser else None,
                paste=paste,
                ports=ports,
                timeout_s=timeout_s,
                auth_url=AUTH,
                userinfo_url=self.fake.userinfo_url,
                session=None if own_session else self.session,
                say=self.said.append,
            )
        )

    async def url(self, task: asyncio.Task[LoginResult]) -> str:
        """The consent URL the login showed (waits for it)."""
        async with asyncio.timeout(BOUND):
            while True:
                for line in self.said:
                    if line.startswith(AUTH + "?"):
                        return line
                if task.done():
                    task.result()
                    raise AssertionError("the login ended without showing a URL")
                await asyncio.sleep(0.005)

    def code_for(self, url: str, account: str = "alice") -> str:
        """What Google does after the user consents: a code bound to the URL's challenge."""
        return self.fake.authorization_code(account, code_challenge=query_of(url)["code_challenge"])

    def callback_url(self, url: str, **params: str) -> str:
        return query_of(url)["redirect_uri"] + "?" + urlencode(params)

    async def visit(self, url: str, **params: str) -> tuple[int, str]:
        """The browser following Google's redirect to the callback."""
        async with self.session.get(self.callback_url(url, **params)) as response:
            page = await response.text()
        self.pages.append(page)
        return response.status, page

    def everything_shown(self) -> str:
        return "\n".join([*self.said, *self.pages])


@asynccontextmanager
async def harness(
    tmp_path: Path, *, client_id: str | None = CLIENT_ID, client_secret: str | None = CLIENT_SECRET
) -> AsyncIterator[Harness]:
    async with (
        FakeUpstream(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as fake,
        aiohttp.ClientSession() as session,
    ):
        fake.add_account("alice", refresh_token=REFRESH, email=EMAIL)
        settings = settings_for(fake, client_id, client_secret)
        store = SQLiteStore(tmp_path / "state.db")
        try:
            yield Harness(fake, store, settings, session)
        finally:
            store.close()


def settings_for(fake: FakeUpstream, client_id: str | None, client_secret: str | None) -> Settings:
    return load_settings(
        env={},
        overrides={
            "upstream": {"token_url": fake.token_url},
            "oauth": {"client_id": client_id, "client_secret": client_secret},
        },
    )


def run(go: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(go(), BOUND)

    asyncio.run(bounded())


def pasted(*lines: str) -> tuple[Callable[[], Awaitable[str]], asyncio.Queue[str]]:
    """A `paste` fed from a queue (the test types lines into it)."""
    typed: asyncio.Queue[str] = asyncio.Queue()
    for line in lines:
        typed.put_nowait(line)
    return typed.get, typed


# the consent URL ------------------------------------------------------------------------------


def test_the_consent_url_carries_the_scopes_the_s256_challenge_the_state_and_offline_consent() -> (
    None
):
    verifier, challenge = new_pkce()
    state = new_state()
    redirect = "http://localhost:51123/oauth-callback"
    url = build_authorization_url(CLIENT_ID, redirect, challenge, state, auth_url=AUTH)
    assert url.startswith(AUTH + "?")
    assert query_of(url) == {
        "client_id": CLIENT_ID,
        "redirect_uri": redirect,
        "response_type": "code",
        "scope": " ".join(SCOPES),
        "access_type": "offline",
        "prompt": "consent",
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
        "state": state,
    }
    assert len(query_of(url)["scope"].split()) == 5
    assert "%20" in url and "+" not in url
    default = build_authorization_url(CLIENT_ID, redirect, challenge, state)
    assert default.startswith("https://accounts.google.com/o/oauth2/v2/auth?")


def test_pkce_verifiers_are_32_random_bytes_and_states_are_32_hex_digits() -> None:
    pairs = [new_pkce() for _ in range(20)]
    for verifier, challenge in pairs:
        assert len(base64.urlsafe_b64decode(verifier + "=")) == 32
        assert challenge == s256(verifier) and "=" not in verifier + challenge
    assert len({v for v, _ in pairs}) == 20
    states = {new_state() for _ in range(20)}
    assert len(states) == 20
    assert all(len(s) == 32 and int(s, 16) >= 0 for s in states)


def test_the_default_ports_are_51121_to_51126() -> None:
    assert PORTS == (51121, 51122, 51123, 51124, 51125, 51126)


# the browser --------------------------------------------------------------------------------


def test_signing_in_in_the_browser_stores_the_account_with_its_refresh_token_and_email(
    tmp_path: Path,
) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            task = h.start(own_session=True)
            url = await h.url(task)
            assert h.opened == [url]
            assert (
                query_of(url)["redirect_uri"] == f"http://localhost:{port_of(url)}/oauth-callback"
            )
            code = h.code_for(url)
            status, page = await h.visit(url, code=code, state=query_of(url)["state"])
            result = await task
            assert (status, result.email, result.via) == (200, EMAIL, "browser")
            assert "Signed in" in page and EMAIL in page and result.account_id in page
            assert h.store.credentials(result.account_id) == Credentials(refresh_token=REFRESH)
            assert [(a.id, a.email, a.source) for a in h.store.accounts()] == [
                (result.account_id, EMAIL, "oauth")
            ]
            (exchange,) = h.fake.requests(path="/token")
            assert exchange.body == {
                "client_id": CLIENT_ID,
                "client_secret": "<redacted>",
                "code": code,
                "code_verifier": exchange.body["code_verifier"],
                "grant_type": "authorization_code",
                "redirect_uri": query_of(url)["redirect_uri"],
            }
            assert s256(exchange.body["code_verifier"]) == query_of(url)["code_challenge"]
            assert [r.outcome for r in h.fake.requests(path="userinfo")] == ["ok"]
            assert any("waiting for the browser" in line for line in h.said)
            assert_no_secret(h.everything_shown(), code, exchange.body["code_verifier"])

    run(go)


def test_a_callback_with_a_wrong_or_missing_state_is_refused_and_the_right_one_still_signs_in(
    tmp_path: Path,
) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            task = h.start()
            url = await h.url(task)
            code = h.code_for(url)
            for params in ({"code": code, "state": new_state()}, {"code": code}):
                status, page = await h.visit(url, **params)
                assert status == 400 and "still waiting" in page
                assert "state" in page and "Signed in" not in page
            assert not task.done() and h.fake.requests(path="/token") == []
            status, page = await h.visit(url, state=query_of(url)["state"])
            assert status == 400 and "no authorization code" in page
            status, page = await h.visit(url, code=code, state=query_of(url)["state"])
            assert status == 200 and (await task).email == EMAIL
            assert_no_secret(h.everything_shown(), code)

    run(go)


def test_refusing_consent_in_the_browser_ends_the_login_and_adds_nothing(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            task = h.start()
            url = await h.url(task)
            status, page = await h.visit(url, error="access_denied", state=query_of(url)["state"])
            with pytest.raises(LoginError, match=r"cancelled in the browser \(access_denied\)"):
                await task
            assert status == 400 and "access_denied" in page and "failed" in page
            assert h.store.accounts() == [] and h.fake.requests(path="/token") == []

    run(go)


def test_another_oauth_error_from_google_ends_the_login_with_only_its_sanitised_code(
    tmp_path: Path,
) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            task = h.start()
            url = await h.url(task)
            state = query_of(url)["state"]
            await h.visit(url, error="server_error<script>", state=state)
            with pytest.raises(LoginError, match=r"Google refused the sign-in \(server_error") as e:
                await task
            assert "<" not in str(e.value)

    run(go)


# pasting ------------------------------------------------------------------------------------


def test_pasting_the_whole_callback_url_signs_in_without_a_browser(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            paste, typed = pasted()
            task = h.start(browser=False, paste=paste)
            url = await h.url(task)
            assert h.opened == []
            assert any("copy that whole address" in line for line in h.said)
            assert any("or paste the callback URL here" in line for line in h.said)
            code = h.code_for(url)
            typed.put_nowait(h.callback_url(url, state=query_of(url)["state"], code=code) + "\n")
            result = await task
            assert (result.email, result.via) == (EMAIL, "paste")
            assert h.store.credentials(result.account_id).refresh_token == REFRESH
            assert_no_secret(h.everything_shown(), code)

    run(go)


def test_pasting_a_bare_code_signs_in_after_a_too_short_one_is_refused(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            paste, typed = pasted("  \n", "4/short\n")
            task = h.start(browser=False, paste=paste)
            url = await h.url(task)
            code = h.code_for(url)
            async with asyncio.timeout(BOUND):
                while not any("not accepted" in line for line in h.said):
                    await asyncio.sleep(0.005)
            assert not task.done()
            typed.put_nowait(f"  {code}  \n")
            result = await task
            assert (result.email, result.via) == (EMAIL, "paste")
            rejections = [line for line in h.said if "not accepted" in line]
            assert len(rejections) == 1 and "neither a callback URL nor" in rejections[0]
            assert_no_secret(h.everything_shown(), code)

    run(go)


def test_a_pasted_url_from_another_sign_in_is_refused_and_reading_goes_on(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            paste, typed = pasted()
            task = h.start(browser=False, paste=paste)
            url = await h.url(task)
            code = h.code_for(url)
            typed.put_nowait(h.callback_url(url, code=code, state=new_state()))
            typed.put_nowait(h.callback_url(url, code=code))
            typed.put_nowait("http://localhost:51121/oauth-callback")
            typed.put_nowait(h.callback_url(url, code=code, state=query_of(url)["state"]))
            result = await task
            assert result.via == "paste"
            rejections = [line for line in h.said if "not accepted" in line]
            assert len(rejections) == 3
            assert "does not match" in rejections[0] and "no state" in rejections[1]
            assert "no code" in rejections[2]
            assert_no_secret(h.everything_shown(), code)

    run(go)


def test_a_pasted_access_denied_ends_the_login(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            paste, typed = pasted()
            task = h.start(browser=False, paste=paste)
            url = await h.url(task)
            typed.put_nowait(
                h.callback_url(url, error="access_denied", state=query_of(url)["state"])
            )
            with pytest.raises(LoginError, match="access_denied"):
                await task
            assert h.store.accounts() == []

    run(go)


def test_the_browser_still_works_when_the_pasted_input_ends(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:

            async def no_input() -> str:
                raise EOFError

            task = h.start(paste=no_input)
            url = await h.url(task)
            await h.visit(url, code=h.code_for(url), state=query_of(url)["state"])
            assert (await task).via == "browser"
            assert any("no more input" in line for line in h.said)

    run(go)


# ports, time, configuration -------------------------------------------------------------------


def test_no_answer_within_the_timeout_ends_the_login_and_frees_the_port(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            task = h.start(timeout_s=0.3)
            url = await h.url(task)
            with pytest.raises(LoginError, match=r"no sign-in arrived within 0.3 s"):
                await task
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port_of(url)))
            assert h.store.accounts() == []

    run(go)


def test_a_busy_first_port_falls_to_the_next_one(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            with busy_port() as taken:
                task = h.start(ports=(taken, 0))
                url = await h.url(task)
                assert port_of(url) != taken
                await h.visit(url, code=h.code_for(url), state=query_of(url)["state"])
                assert (await task).email == EMAIL

    run(go)


def test_no_free_callback_port_is_a_clear_error(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            tried = r"no free port .* \(tried {}, {}\)"
            with (
                busy_port() as one,
                busy_port() as two,
                pytest.raises(LoginError, match=tried.format(one, two)),
            ):
                await h.start(ports=(one, two))
            assert h.opened == [] and h.said == []

    run(go)


def test_the_callback_server_listens_on_127_0_0_1_only_and_cancelling_frees_it(
    tmp_path: Path,
) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            task = h.start()
            port = port_of(await h.url(task))
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            with pytest.raises(OSError):  # any other address, even 127.0.0.2, is not served
                await asyncio.open_connection("127.0.0.2", port)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port))

    run(go)


@pytest.mark.parametrize(
    ("client_id", "client_secret", "named"),
    [
        (None, CLIENT_SECRET, ["client_id", "INTERLOCK_OAUTH_CLIENT_ID"]),
        (CLIENT_ID, None, ["client_secret", "INTERLOCK_OAUTH_CLIENT_SECRET"]),
        (None, None, ["client_id and client_secret", "INTERLOCK_OAUTH_CLIENT_SECRET"]),
    ],
)
def test_a_missing_client_id_or_secret_fails_before_anything_starts(
    tmp_path: Path, client_id: str | None, client_secret: str | None, named: list[str]
) -> None:
    async def go() -> None:
        async with harness(tmp_path, client_id=client_id, client_secret=client_secret) as h:
            with pytest.raises(LoginError, match=r"\[oauth\]") as caught:
                await h.start(ports=())  # no port at all: reaching the server would fail else
            message = str(caught.value)
            assert all(name in message for name in named) and "\n" not in message
            assert h.said == [] and h.opened == []
            assert_no_secret(message)

    run(go)


# the exchange -------------------------------------------------------------------------------


def test_an_existing_email_is_left_unchanged(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            old = h.store.add_account(EMAIL, Credentials(refresh_token="old-token"))
            assert old is not None
            task = h.start()
            url = await h.url(task)
            status, page = await h.visit(url, code=h.code_for(url), state=query_of(url)["state"])
            with pytest.raises(LoginError, match=f"an account for {EMAIL} exists already"):
                await task
            assert status == 400 and "exists already" in page
            assert [a.id for a in h.store.accounts()] == [old]
            assert h.store.credentials(old).refresh_token == "old-token"

    run(go)


def test_a_code_google_does_not_accept_is_a_clear_error_without_secrets(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            task = h.start()
            url = await h.url(task)
            code = h.fake.authorization_code("alice", code_challenge=new_pkce()[1])
            status, page = await h.visit(url, code=code, state=query_of(url)["state"])
            with pytest.raises(LoginError, match=r"invalid_grant") as caught:
                await task
            assert status == 400 and "invalid_grant" in page
            assert h.store.accounts() == []
            assert_no_secret(str(caught.value) + h.everything_shown(), code)

    run(go)


def test_a_wrong_client_secret_is_reported_as_a_rejected_oauth_client(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path, client_secret="GOCSPX-SECRET-wrong") as h:
            task = h.start()
            url = await h.url(task)
            code = h.code_for(url)
            await h.visit(url, code=code, state=query_of(url)["state"])
            with pytest.raises(LoginError, match=r"invalid_client.*\[oauth\] client_id") as caught:
                await task
            assert_no_secret(str(caught.value) + h.everything_shown(), code, "SECRET-wrong")

    run(go)


def test_an_unreachable_token_endpoint_is_a_clear_error(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            with busy_port() as closed:  # a port nobody serves once the socket is closed
                pass
            dead = settings_for(h.fake, CLIENT_ID, CLIENT_SECRET).model_copy(
                update={
                    "upstream": h.settings.upstream.model_copy(
                        update={"token_url": f"http://127.0.0.1:{closed}/token"}
                    )
                }
            )
            task = h.start(settings=dead)
            url = await h.url(task)
            await h.visit(url, code=h.code_for(url), state=query_of(url)["state"])
            with pytest.raises(LoginError, match=r"cannot reach Google's token endpoint"):
                await task

    run(go)


# the command ----------------------------------------------------------------------------------


def test_the_login_flags_are_no_browser_and_a_bounded_timeout() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert vars(parser.parse_args([])) == {"no_browser": False, "timeout": 120.0}
    args = parser.parse_args(["--no-browser", "--timeout", "30"])
    assert (args.no_browser, args.timeout) == (True, 30.0)
    for bad in ("0", "-1", "soon"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--timeout", bad])


class Typing:
    """Standard input a test types into, one line at a time."""

    def __init__(self) -> None:
        self.lines: queue.Queue[str] = queue.Queue()

    def readline(self) -> str:
        return self.lines.get(timeout=BOUND)


class Screen:
    """Standard output a test reads while the command runs."""

    def __init__(self) -> None:
        self.text = ""
        self.lock = threading.Lock()

    def write(self, s: str) -> int:
        with self.lock:
            self.text += s
        return len(s)

    def flush(self) -> None:
        pass

    def wait_for(self, prefix: str) -> str:
        for _ in range(int(BOUND / 0.01)):
            with self.lock:
                for line in self.text.splitlines():
                    if line.startswith(prefix):
                        return line
            threading.Event().wait(0.01)
        raise AssertionError(f"nothing starting with {prefix!r} was printed")


def command(tmp_path: Path, fake: FakeUpstream, **flags: Any) -> Callable[..., int]:
    """`run_login` bound to the fake upstream, to run in a thread."""
    args = argparse.Namespace(**{"no_browser": False, "timeout": BOUND / 2, **flags})
    settings = settings_for(fake, CLIENT_ID, CLIENT_SECRET)

    def go(open_browser: Callable[[str], bool]) -> int:
        store = SQLiteStore(tmp_path / "state.db")
        try:
            return run_login(
                args,
                settings,
                store,
                ports=(0,),
                auth_url=AUTH,
                userinfo_url=fake.userinfo_url,
                open_browser=open_browser,
            )
        finally:
            store.close()

    return go


def follow(fake: FakeUpstream, url: str) -> str:
    """A blocking browser: consent, then follow the redirect to the callback."""
    query = query_of(url)
    code = fake.authorization_code("alice", code_challenge=query["code_challenge"])
    target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]})
    with urllib.request.urlopen(target, timeout=BOUND) as response:
        return str(response.read().decode())


def test_the_login_command_opens_the_browser_and_prints_the_added_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen, pages = Screen(), list[str]()
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.setattr(sys, "stdout", screen)

    async def go() -> None:
        async with FakeUpstream(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as fake:
            fake.add_account("alice", refresh_token=REFRESH, email=EMAIL)

            def browser(url: str) -> bool:
                threading.Thread(target=lambda: pages.append(follow(fake, url))).start()
                return True

            assert await asyncio.to_thread(command(tmp_path, fake), browser) == 0

    run(go)
    assert screen.wait_for(AUTH + "?")
    assert "waiting for the browser" in screen.text
    added = screen.wait_for("added ")
    assert added.split()[1].startswith("acct-") and added.split()[2] == EMAIL
    assert "Signed in" in pages[0]
    assert_no_secret(screen.text + pages[0])


def test_the_login_command_without_a_browser_reads_the_pasted_callback_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen, typing, opened = Screen(), Typing(), list[str]()
    monkeypatch.setattr(sys, "stdin", typing)
    monkeypatch.setattr(sys, "stdout", screen)

    async def go() -> None:
        async with FakeUpstream(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as fake:
            fake.add_account("alice", refresh_token=REFRESH, email=EMAIL)
            running = asyncio.to_thread(command(tmp_path, fake, no_browser=True), opened.append)
            task = asyncio.ensure_future(running)
            url = await asyncio.to_thread(screen.wait_for, AUTH + "?")
            code = fake.authorization_code("alice", code_challenge=query_of(url)["code_challenge"])
            typing.lines.put("oops\n")
            callback = f"{query_of(url)['redirect_uri']}?state={query_of(url)['state']}"
            typing.lines.put(f"{callback}&code={code.replace('/', '%2F')}&scope=email\n")
            assert await task == 0
            assert_no_secret(screen.text, code)

    run(go)
    assert opened == []
    assert "or paste the callback URL here" in screen.text and "not accepted" in screen.text
    assert screen.wait_for("added ").endswith(EMAIL)
    store = SQLiteStore(tmp_path / "state.db", readonly=True)
    (account,) = store.accounts()
    assert store.credentials(account.id).refresh_token == REFRESH
    store.close()


def test_the_login_command_reports_a_failure_on_stderr_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def go() -> None:
        async with FakeUpstream() as fake:
            settings = settings_for(fake, CLIENT_ID, None)
            store = SQLiteStore(tmp_path / "state.db")
            args = argparse.Namespace(no_browser=True, timeout=1.0)
            assert await asyncio.to_thread(run_login, args, settings, store, ports=(0,)) == 2
            store.close()

    run(go)
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("interlock: ") and err.count("\n") == 1
    assert "INTERLOCK_OAUTH_CLIENT_SECRET" in err


def test_the_login_command_fails_clearly_when_nobody_signs_in_in_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))

    async def go() -> None:
        async with FakeUpstream(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as fake:
            go_login = command(tmp_path, fake, timeout=0.3)
            assert await asyncio.to_thread(go_login, lambda url: False) == 2

    run(go)
    out, err = capsys.readouterr()
    assert "could not open a browser" in out and "no more input" in out
    assert err == "interlock: no sign-in arrived within 0.3 s; run the login again\n"
