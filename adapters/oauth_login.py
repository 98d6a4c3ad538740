"""Adding a Google account by signing in: OAuth authorization code with PKCE (S256).

`login` checks that the OAuth client is configured, binds a callback server on 127.0.0.1 (the
first free port of 51121-51126), shows the authorization URL (and opens a browser if asked),
then waits for whichever comes first: the browser coming back to `/oauth-callback`, or the user
pasting the callback URL or the bare code (for machines without a browser). The `state` must
match; a callback with another state is refused and the wait goes on. The code is exchanged at
the token endpoint, the account's email read from userinfo, and the account added to the store
with its refresh token; an existing account is never overwritten. (Project discovery happens
later, when the proxy first uses the account.)

Every failure is a `LoginError` with one line that never contains a code, a token or the client
secret. reference/seed-behaviour.md §4.8 has the wire format.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import html
import os
import re
import secrets
import sys
import threading
import webbrowser
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, quote, unquote, urlencode

import aiohttp
from aiohttp import web

from adapters.config import Settings
from adapters.store_sqlite import Credentials

AUTH_URL = "https://accounts.google.com/o/oauth2/v2/auth"
USERINFO_URL = "https://www.googleapis.com/oauth2/v1/userinfo"
SCOPES = (
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
    "https://www.googleapis.com/auth/cclog",
    "https://www.googleapis.com/auth/experimentsandconfigs",
)
PORTS = (51121, 51122, 51123, 51124, 51125, 51126)
CALLBACK_PATH = "/oauth-callback"
TIMEOUT_S = 120.0
HTTP_TIMEOUT_S = 30.0
MIN_CODE_LENGTH = 10
LOOPBACK = "127.0.0.1"
#: How long the browser's callback request waits for the end of the sign-in to show it.
PAGE_WAIT_S = 60.0

Via = Literal["browser", "paste"]
Say = Callable[[str], None]


class LoginError(Exception):
    """The sign-in failed; the message is one line for the user and holds no secret."""


class AccountAdder(Protocol):
    """What `login` needs of the store (`SQLiteStore` is one)."""

    def add_account(self, email: str, credentials: Credentials) -> str | None: ...


@dataclass(frozen=True)
class LoginResult:
    """The account added: its store id, its email, and how the code arrived."""

    account_id: str
    email: str
    via: Via


# the authorization request ----------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_pkce() -> tuple[str, str]:
    """A PKCE pair: (verifier = 32 random bytes base64url, challenge = its S256 digest)."""
    verifier = _b64url(secrets.token_bytes(32))
    return verifier, _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def new_state() -> str:
    """An unguessable `state` (32 hex digits) tying the callback to this sign-in."""
    return secrets.token_hex(16)


def build_authorization_url(
    client_id: str,
    redirect_uri: str,
    code_challenge: str,
    state: str,
    *,
    auth_url: str = AUTH_URL,
) -> str:
    """Google's consent URL: offline access (a refresh token), consent asked every time (so the
    refresh token is always returned), the five scopes, the S256 challenge and the state."""
    query = urlencode(
        {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": " ".join(SCOPES),
            "access_type": "offline",
            "prompt": "consent",
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            "state": state,
        },
        quote_via=quote,
    )
    return f"{auth_url}?{query}"


def _client(settings: Settings) -> tuple[str, str]:
    client_id = (settings.oauth.client_id or "").strip()
    secret = settings.oauth.client_secret
    client_secret = secret.get_secret_value().strip() if secret is not None else ""
    missing = [name for name, value in (("id", client_id), ("secret", client_secret)) if not value]
    if missing:
        keys = " and ".join(f"client_{m}" for m in missing)
        envs = " and ".join(f"INTERLOCK_OAUTH_CLIENT_{m.upper()}" for m in missing)
        raise LoginError(
            f"the Google OAuth {keys} {'is' if len(missing) == 1 else 'are'} not configured: "
            f"set [oauth] {keys} in the config file, or {envs} in the environment"
        )
    return client_id, client_secret


# the answer: a callback or a paste ---------------------------------------------------------


class _Rejected(Exception):
    """An answer that does not belong to this sign-in: refused, and the wait goes on."""


def _sanitised(value: str) -> str:
    """An OAuth error code from outside, safe to show: [A-Za-z0-9_.-], at most 64 chars."""
    return re.sub(r"[^A-Za-z0-9_.-]", "", value)[:64] or "unknown"


def _code_from(params: Mapping[str, str], state: str) -> str:
    """The code of a callback's parameters. `_Rejected` when the state is not ours or no code
    came; `LoginError` when Google reports an error (the user refused, ...)."""
    got = params.get("state")
    if not got:
        raise _Rejected("the answer carries no state, so it cannot be matched to this sign-in")
    if not secrets.compare_digest(got.encode(), state.encode()):
        raise _Rejected("the answer belongs to another sign-in (its state does not match)")
    error = params.get("error")
    if error:
        if error == "access_denied":
            raise LoginError("sign-in was cancelled in the browser (access_denied)")
        raise LoginError(f"Google refused the sign-in ({_sanitised(error)})")
    code = params.get("code", "").strip()
    if not code:
        raise _Rejected("the answer carries no authorization code")
    return code


def _code_from_paste(text: str, state: str) -> str:
    """A pasted callback URL (or its query) is checked like a callback; anything else must be
    a bare authorization code of at least 10 characters."""
    text = text.strip()
    if "?" in text:
        query = text.split("?", 1)[1].split("#", 1)[0]
    elif "=" in text:
        query = text
    elif "://" in text:
        raise _Rejected("that URL has no code; paste the whole address the browser ended on")
    else:
        if len(text) < MIN_CODE_LENGTH or any(c.isspace() for c in text):
            raise _Rejected("that is neither a callback URL nor an authorization code")
        return unquote(text)
    return _code_from(dict(parse_qsl(query, keep_blank_values=True)), state)


class _Waiter:
    """Where the answer arrives (`code`) and where the end of the sign-in is told (`outcome`,
    for the browser's page). Both futures are set at most once."""

    def __init__(self, state: str) -> None:
        loop = asyncio.get_running_loop()
        self.state = state
        self.code: asyncio.Future[tuple[str, Via]] = loop.create_future()
        self.outcome: asyncio.Future[tuple[bool, str]] = loop.create_future()

    def offer(self, code: str, via: Via) -> bool:
        if self.code.done():
            return False
        self.code.set_result((code, via))
        return True

    def fail(self, err: LoginError) -> None:
        if not self.code.done():
            self.code.set_exception(err)

    def finish(self, ok: bool, message: str) -> None:
        if not self.outcome.done():
            self.outcome.set_result((ok, message))


def _page(status: int, title: str, message: str) -> web.Response:
    body = (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f"<title>interlock: {html.escape(title)}</title></head>\n"
        f"<body><h1>{html.escape(title)}</h1>\n<p>{html.escape(message)}</p></body></html>\n"
    )
    return web.Response(
        status=status,
        text=body,
        content_type="text/html",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _callback_app(waiter: _Waiter) -> web.Application:
    async def callback(request: web.Request) -> web.Response:
        try:
            code = _code_from(request.query, waiter.state)
        except _Rejected as why:
            return _page(
                400,
                "Sign-in not accepted",
                f"{why}. interlock is still waiting: finish the sign-in that was started from "
                "the URL interlock showed (or start it again).",
            )
        except LoginError as err:  # the login ends; its outcome says why
            waiter.fail(err)
        else:
            waiter.offer(code, "browser")
        try:
            ok, message = await asyncio.wait_for(asyncio.shield(waiter.outcome), PAGE_WAIT_S)
        except TimeoutError:
            ok, message = False, "interlock did not finish in time; see the terminal."
        if ok:
            return _page(200, "Signed in", f"{message} You can close this tab.")
        return _page(400, "Sign-in failed", message)

    app = web.Application()
    app.router.add_get(CALLBACK_PATH, callback)
    return app


def _describe(ports: Sequence[int]) -> str:
    if len(ports) > 1 and list(ports) == list(range(ports[0], ports[0] + len(ports))):
        return f"{ports[0]}-{ports[-1]}"
    return ", ".join(str(p) for p in ports)


async def _serve_callback(app: web.Application, ports: Sequence[int]) -> tuple[web.AppRunner, int]:
    """Bind the callback server on 127.0.0.1, on the first port of `ports` that is free (0: any
    free port)."""
    if not ports:
        raise LoginError("no port given for the sign-in callback")
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    for port in ports:
        site = web.TCPSite(runner, LOOPBACK, port)
        try:
            await site.start()
        except OSError:
            await site.stop()
            continue
        return runner, site.port
    await runner.cleanup()
    raise LoginError(
        f"no free port for the sign-in callback on {LOOPBACK} (tried {_describe(ports)}); "
        "stop what uses them and try again"
    )


async def _read_pastes(paste: Callable[[], Awaitable[str]], waiter: _Waiter, say: Say) -> None:
    """Offer each pasted line until one is accepted; EOFError from `paste` ends the input."""
    while not waiter.code.done():
        try:
            text = await paste()
        except EOFError:
            say("(no more input: still waiting for the browser)")
            return
        except Exception as err:
            waiter.fail(LoginError(f"cannot read the pasted answer ({type(err).__name__})"))
            return
        if not text.strip():
            continue
        try:
            code = _code_from_paste(text, waiter.state)
        except _Rejected as why:
            say(f"not accepted: {why}; paste the callback URL (or the code) again")
            continue
        except LoginError as err:
            waiter.fail(err)
            return
        waiter.offer(code, "paste")


# the exchange ------------------------------------------------------------------------------


async def _json(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except ValueError:
        return None


async def _exchange(
    session: aiohttp.ClientSession, token_url: str, form: Mapping[str, str]
) -> tuple[str, str]:
    """(access token, refresh token) for the authorization code in `form`."""
    try:
        async with session.post(
            token_url,
            data=dict(form),
            headers={"Accept": "application/json"},
            timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S),
        ) as response:
            status, body = response.status, await _json(response)
    except (aiohttp.ClientError, TimeoutError) as err:
        raise LoginError(
            f"cannot reach Google's token endpoint ({type(err).__name__}); try again"
        ) from None
    fields = body if isinstance(body, dict) else {}
    if status != 200:
        error = _sanitised(str(fields.get("error") or f"HTTP {status}"))
        if error in ("invalid_client", "unauthorized_client"):
            raise LoginError(
                f"Google rejected the OAuth client ({error}): check [oauth] client_id and "
                "client_secret (INTERLOCK_OAUTH_CLIENT_ID / INTERLOCK_OAUTH_CLIENT_SECRET)"
            )
        if error == "invalid_grant":
            raise LoginError(
                "Google did not accept the authorization code (invalid_grant): it expired, was "
                "used already or belongs to another sign-in; run the login again"
            )
        raise LoginError(f"the token endpoint refused the code (HTTP {status}, {error})")
    access, refresh = fields.get("access_token"), fields.get("refresh_token")
    if not isinstance(access, str) or not access:
        raise LoginError("the token endpoint answered without an access token")
    if not isinstance(refresh, str) or not refresh:
        raise LoginError(
            "Google returned no refresh token; remove interlock's access at "
            "https://myaccount.google.com/permissions and sign in again"
        )
    return access, refresh


async def _email(session: aiohttp.ClientSession, userinfo_url: str, access: str) -> str:
    try:
        async with session.get(
            userinfo_url,
            headers={"Authorization": f"Bearer {access}", "Accept": "application/json"},
            timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S),
        ) as response:
            status, body = response.status, await _json(response)
    except (aiohttp.ClientError, TimeoutError) as err:
        raise LoginError(
            f"cannot reach Google's userinfo endpoint ({type(err).__name__}); try again"
        ) from None
    if status != 200:
        raise LoginError(f"cannot read the account's email from Google (HTTP {status})")
    email = body.get("email") if isinstance(body, dict) else None
    if not isinstance(email, str) or "@" not in email:
        raise LoginError("Google's userinfo answer has no email address")
    return email.strip()


# the sign-in -------------------------------------------------------------------------------


def _ignore(line: str) -> None:
    """The default `say`: show nothing."""


async def login(
    settings: Settings,
    store: AccountAdder,
    *,
    open_browser: Callable[[str], bool] | None,
    paste: Callable[[], Awaitable[str]] | None,
    ports: Sequence[int] = PORTS,
    timeout_s: float = TIMEOUT_S,
    auth_url: str = AUTH_URL,
    userinfo_url: str = USERINFO_URL,
    session: aiohttp.ClientSession | None = None,
    say: Say = _ignore,
) -> LoginResult:
    """Sign a Google account in and add it to `store`.

    `open_browser(url)` opens the consent page and returns whether it could (None: do not try);
    `paste()` returns one line the user pasted (None: the browser only), raising EOFError when
    there is no more input; `say(line)` shows progress (the URL among it). Ports: the callback
    server takes the first free one (0: any). Raises `LoginError`."""
    client_id, client_secret = _client(settings)
    verifier, challenge = new_pkce()
    waiter = _Waiter(new_state())
    runner, port = await _serve_callback(_callback_app(waiter), ports)
    paster: asyncio.Task[None] | None = None
    try:
        redirect_uri = f"http://localhost:{port}{CALLBACK_PATH}"
        url = build_authorization_url(
            client_id, redirect_uri, challenge, waiter.state, auth_url=auth_url
        )
        say("Sign in with Google at:")
        say(url)
        if open_browser is None:
            say(
                "Open that URL in a browser on any machine. After signing in, the browser goes "
                f"to {redirect_uri}?... (it may show an error page): copy that whole address."
            )
        else:
            try:
                opened = open_browser(url)
            except Exception:
                opened = False
            if not opened:
                say("(could not open a browser: open the URL above yourself)")
        waiting = f"waiting for the browser (up to {timeout_s:g} s)"
        say(f"{waiting} ... or paste the callback URL here" if paste is not None else waiting)
        if paste is not None:
            paster = asyncio.create_task(_read_pastes(paste, waiter, say))
        try:
            async with asyncio.timeout(timeout_s):
                code, via = await waiter.code
        except TimeoutError:
            waiter.code.cancel()
            raise LoginError(
                f"no sign-in arrived within {timeout_s:g} s; run the login again"
            ) from None
        finally:
            if paster is not None:
                paster.cancel()
        form = {
            "client_id": client_id,
            "client_secret": client_secret,
            "code": code,
            "code_verifier": verifier,
            "grant_type": "authorization_code",
            "redirect_uri": redirect_uri,
        }
        own = session is None
        http = aiohttp.ClientSession() if session is None else session
        try:
            access, refresh = await _exchange(http, settings.upstream.token_url, form)
            email = await _email(http, userinfo_url, access)
        finally:
            if own:
                await http.close()
        account_id = store.add_account(email, Credentials(refresh_token=refresh))
        if account_id is None:
            raise LoginError(
                f"an account for {email} exists already (left unchanged; remove it first "
                "to sign it in again)"
            )
        waiter.finish(True, f"Added {email} to interlock as {account_id}.")
        return LoginResult(account_id, email, via)
    except LoginError as err:
        waiter.finish(False, f"{err}.")
        raise
    finally:
        waiter.finish(False, "The sign-in ended without adding an account; see the terminal.")
        if paster is not None:
            await asyncio.gather(paster, return_exceptions=True)
        await runner.cleanup()


# the command line --------------------------------------------------------------------------


def _timeout(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not 0 < seconds <= 3600:
        raise argparse.ArgumentTypeError("the timeout must be between 0 and 3600 seconds")
    return seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `interlock accounts login`."""
    parser.add_argument(
        "--no-browser",
        action="store_true",
        help="do not open a browser: open the printed URL on any machine, then paste the "
        "address the browser ends on (or the code) here",
    )
    parser.add_argument(
        "--timeout",
        type=_timeout,
        default=TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long to wait for the sign-in (default {TIMEOUT_S:g})",
    )


def open_system_browser(url: str) -> bool:
    """`webbrowser.open`, except where only a text-mode browser could answer (no display on
    Linux and the BSDs), which would take over the terminal."""
    if sys.platform not in ("darwin", "win32") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return False
    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


def _stdin_lines() -> Callable[[], Awaitable[str]]:
    """`paste` reading standard input: each call reads one line in a daemon thread (a line
    never typed cannot keep the process alive); EOFError at the end of input."""

    async def paste() -> str:
        loop = asyncio.get_running_loop()
        line: asyncio.Future[str] = loop.create_future()
        stream = sys.stdin

        def deliver(text: str) -> None:
            if not line.done():
                line.set_result(text)

        def read() -> None:
            try:
                text = stream.readline() if stream is not None else ""
            except (OSError, ValueError):
                text = ""
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(deliver, text)

        threading.Thread(target=read, name="interlock-paste", daemon=True).start()
        text = await line
        if not text:
            raise EOFError
        return text

    return paste


def run_login(
    args: argparse.Namespace,
    settings: Settings,
    store: AccountAdder,
    *,
    ports: Sequence[int] = PORTS,
    auth_url: str = AUTH_URL,
    userinfo_url: str = USERINFO_URL,
    open_browser: Callable[[str], bool] = open_system_browser,
) -> int:
    """`interlock accounts login`: progress on stdout, "added <id>  <email>" and 0 on success,
    "interlock: <why>" on stderr and 2 on a LoginError."""

    def say(line: str) -> None:
        print(line, flush=True)

    try:
        result = asyncio.run(
            login(
                settings,
                store,
                open_browser=None if getattr(args, "no_browser", False) else open_browser,
                paste=_stdin_lines(),
                ports=ports,
                timeout_s=float(getattr(args, "timeout", None) or TIMEOUT_S),
                auth_url=auth_url,
                userinfo_url=userinfo_url,
                say=say,
            )
        )
    except LoginError as err:
        print(f"interlock: {err}", file=sys.stderr)
        return 2
    print(f"added {result.account_id}  {result.email}")
    return 0
