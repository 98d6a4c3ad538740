"""Access tokens and projects for Cloud Code accounts.

One token refresh at a time per account (concurrent requests share the flight); the cache
honours `expires_in` (refreshing a minute early). What the token endpoint says decides whose
fault a failed refresh is:

- `invalid_grant`: this account's refresh token is revoked (`AccountRevoked`).
- `invalid_client` or `unauthorized_client` (or `invalid_request` with no OAuth client
  configured): the proxy's [oauth] client is wrong, no account is at fault
  (`OAuthClientRejected`, a configuration error).
- a 5xx, a network error, a timeout (`[upstream] token_timeout_s`) or a malformed 200 answer:
  the token endpoint is failing, transiently (`CredentialsUnavailable`), never an account's
  fault. After a timeout the endpoint counts as down for `[upstream] token_down_s`: refreshes
  fail at once meanwhile (cached tokens still serve), so that a request does not wait one
  timeout per account.

Projects come from the stored managed project, else loadCodeAssist (and the onboarding
long-running operation when the account has none), else the default project. Secrets never
appear in exception messages or logs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from adapters.config import Settings
from adapters.store_sqlite import Credentials, SQLiteStore

log = logging.getLogger("interlock.credentials")

DEFAULT_PROJECT = "rising-fact-p41fc"
EARLY_REFRESH_S = 60.0
DEFAULT_EXPIRES_S = 3600.0  # a token answer without expires_in
CLIENT_METADATA = {"ideType": 9, "platform": 3, "pluginType": 2}
ONBOARD_POLLS = 10
ONBOARD_POLL_S = 5.0


class CredentialError(Exception):
    """Getting an access token or project failed."""


class AccountRevoked(CredentialError):
    """The refresh token is revoked or invalid: a person must sign in again."""


class CredentialsUnavailable(CredentialError):
    """The token endpoint could not be reached or failed transiently."""


class OAuthClientRejected(CredentialError):
    """The token endpoint refuses the proxy's OAuth client ([oauth] client_id, client_secret):
    a configuration error that no account and no retry can fix."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


OAUTH_FIX = (
    "check [oauth] client_id and client_secret in the configuration file "
    "(or INTERLOCK_OAUTH_CLIENT_ID / INTERLOCK_OAUTH_CLIENT_SECRET) and restart interlock"
)


class CredentialSource(Protocol):
    def credentials(self, account_id: str) -> Credentials: ...
    def set_managed_project(self, account_id: str, project: str) -> None: ...


def oauth_client_missing(settings: Settings, store: SQLiteStore) -> str | None:
    """What to warn about at start when accounts sign in with refresh tokens but [oauth] lacks
    the client id or secret that refreshing them needs (None: nothing to say)."""
    oauth = settings.oauth
    missing = [
        key
        for key, value in (
            ("client_id", oauth.client_id),
            ("client_secret", oauth.client_secret and oauth.client_secret.get_secret_value()),
        )
        if not value
    ]
    if not missing:
        return None
    needing = [
        a.id for a in store.accounts() if a.enabled and store.credentials(a.id).refresh_token
    ]
    if not needing:
        return None
    envs = " and ".join(f"INTERLOCK_OAUTH_{key.upper()}" for key in missing)
    return (
        f"[oauth] {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set, but "
        f"{len(needing)} account(s) need it to refresh their access tokens: requests will fail "
        f"with an error naming [oauth] (set it in the configuration file, or {envs})"
    )


def warn_if_oauth_client_missing(settings: Settings, store: SQLiteStore, *, sandbox: bool) -> None:
    """Log `oauth_client_missing` at start; sandbox mode's fake token endpoint needs no client."""
    problem = None if sandbox else oauth_client_missing(settings, store)
    if problem:
        log.warning("%s", problem)


@dataclass
class _Token:
    value: str
    expires: float


class CredentialManager:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        source: CredentialSource,
        settings: Settings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._session = session
        self._source = source
        self._settings = settings
        self._now = monotonic
        self._sleep = sleep
        self._tokens: dict[str, _Token] = {}
        self._flights: dict[str, asyncio.Future[str]] = {}
        self._projects: dict[str, str] = {}
        self._down_until: float | None = None  # the token endpoint timed out: fail fast until
        self._client_refused = False  # said once in the log, until a refresh succeeds
        self.refreshes = 0

    # tokens -------------------------------------------------------------------------------
    async def access_token(self, account_id: str, *, refresh: bool = False) -> str:
        creds = self._source.credentials(account_id)
        if creds.api_key:
            return creds.api_key
        if not creds.refresh_token:
            raise AccountRevoked("the account has no refresh token")
        cached = self._tokens.get(account_id)
        if cached and not refresh and cached.expires - EARLY_REFRESH_S > self._now():
            return cached.value
        flight = self._flights.get(account_id)
        if flight is None:
            self._check_down()
            flight = asyncio.ensure_future(self._refresh(account_id, creds.refresh_token))
            self._flights[account_id] = flight
            flight.add_done_callback(lambda done: self._landed(account_id, done))
        return await asyncio.shield(flight)

    def _landed(self, account_id: str, flight: asyncio.Future[str]) -> None:
        """A refresh ended: forget the flight and consume its outcome, so that a refresh whose
        callers have all gone (the client left, the proxy stops) leaves no "exception was never
        retrieved" behind."""
        if self._flights.get(account_id) is flight:
            del self._flights[account_id]
        if not flight.cancelled():
            flight.exception()

    def _check_down(self) -> None:
        """Fail at once while the token endpoint counts as down (it timed out recently)."""
        if self._down_until is None:
            return
        left = self._down_until - self._now()
        if left <= 0:
            self._down_until = None
            return
        timeout = self._settings.upstream.token_timeout_s
        raise CredentialsUnavailable(
            f"the OAuth token endpoint did not answer within {timeout:g} s; "
            f"no new token refresh is tried for {math.ceil(left):d} s"
        )

    def forget(self, account_id: str) -> None:
        """Drop the cached token (after a 401) so the next call refreshes."""
        self._tokens.pop(account_id, None)

    async def _refresh(self, account_id: str, refresh_token: str) -> str:
        oauth = self._settings.oauth
        form = {
            "client_id": oauth.client_id or "",
            "client_secret": oauth.client_secret.get_secret_value() if oauth.client_secret else "",
            "refresh_token": refresh_token,
            "grant_type": "refresh_token",
        }
        self.refreshes += 1
        up = self._settings.upstream
        timeout = aiohttp.ClientTimeout(
            total=up.token_timeout_s, connect=min(up.connect_timeout_s, up.token_timeout_s)
        )
        try:
            async with self._session.post(up.token_url, data=form, timeout=timeout) as response:
                text = await response.text()
                status = response.status
        except TimeoutError:
            if up.token_down_s > 0:
                self._down_until = self._now() + up.token_down_s
            log.warning(
                "the token endpoint did not answer within %g s (refreshing %s); token refreshes "
                "fail at once for %g s",
                up.token_timeout_s,
                account_id,
                up.token_down_s,
            )
            raise CredentialsUnavailable(
                f"the OAuth token endpoint did not answer within {up.token_timeout_s:g} s"
            ) from None
        except aiohttp.ClientError as err:
            log.warning(
                "token refresh for %s failed transiently: %s", account_id, type(err).__name__
            )
            raise CredentialsUnavailable(
                f"the OAuth token endpoint is unreachable ({type(err).__name__})"
            ) from None
        self._down_until = None  # it answers
        body = _json(text)
        if status == 200:
            value, lifetime = _token_of(body)
            if value is None:
                log.warning(
                    "the token endpoint's answer for %s is malformed (%s)", account_id, lifetime
                )
                raise CredentialsUnavailable(
                    f"the OAuth token endpoint's answer is malformed ({lifetime})"
                )
            token = _Token(value, self._now() + float(lifetime))
            self._client_refused = False
            self._tokens[account_id] = token
            return token.value
        error = str(body.get("error", "")) if isinstance(body, dict) else ""
        if error == "invalid_grant":
            log.warning("refresh token of %s is revoked (%s)", account_id, error)
            raise AccountRevoked(f"token refresh failed: {error}")
        missing = [key for key, value in form.items() if key.startswith("client_") and not value]
        if error in ("invalid_client", "unauthorized_client") or (
            error == "invalid_request" and missing
        ):
            what = (
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not configured"
                if missing
                else f"Google refused the OAuth client ({error})"
            )
            level = logging.DEBUG if self._client_refused else logging.ERROR
            self._client_refused = True
            log.log(level, "token refresh for %s: %s; %s", account_id, what, OAUTH_FIX)
            raise OAuthClientRejected(
                f"interlock's OAuth client cannot refresh access tokens: {what}; {OAUTH_FIX}. "
                "No account was changed.",
                status,
            )
        log.warning("token refresh for %s failed with HTTP %s", account_id, status)
        raise CredentialsUnavailable(f"the OAuth token endpoint answered HTTP {status}")

    # projects -----------------------------------------------------------------------------
    async def project(self, account_id: str, token: str) -> str:
        known = self._projects.get(account_id)
        if known:
            return known
        creds = self._source.credentials(account_id)
        project = creds.managed_project_id or await self._discover(account_id, token, creds)
        self._projects[account_id] = project
        return project

    async def load_code_assist(self, account_id: str) -> dict[str, Any] | None:
        """The account's loadCodeAssist answer (prod first), or None when no endpoint gave one
        (`CredentialError` when the account has no usable token)."""
        token = await self.access_token(account_id)
        creds = self._source.credentials(account_id)
        metadata: dict[str, Any] = dict(CLIENT_METADATA)
        if creds.project_id:
            metadata["duetProject"] = creds.project_id
        for base in reversed(list(self._settings.upstream.endpoints.values())):
            answer = await self._post(
                base, "loadCodeAssist", token, {"metadata": metadata, "mode": 1}
            )
            if answer is not None:
                return answer
        return None

    async def _discover(self, account_id: str, token: str, creds: Credentials) -> str:
        metadata: dict[str, Any] = dict(CLIENT_METADATA)
        if creds.project_id:
            metadata["duetProject"] = creds.project_id
        endpoints = list(self._settings.upstream.endpoints.values())
        for base in reversed(endpoints):  # loadCodeAssist: prod first (seed §2.7)
            answer = await self._post(
                base, "loadCodeAssist", token, {"metadata": metadata, "mode": 1}
            )
            if answer is None:
                continue
            project = _project_of(answer.get("cloudaicompanionProject"))
            if project:
                return self._remember(account_id, project)
            tier = _default_tier(answer)
            onboarded = await self._onboard(endpoints, token, tier, metadata)
            if onboarded:
                return self._remember(account_id, onboarded)
            break
        return creds.project_id or DEFAULT_PROJECT

    async def _onboard(
        self, endpoints: list[str], token: str, tier: str, metadata: dict[str, Any]
    ) -> str | None:
        for base in endpoints:
            for _ in range(ONBOARD_POLLS):
                answer = await self._post(
                    base, "onboardUser", token, {"tierId": tier, "metadata": metadata}
                )
                if answer is None:
                    break
                if answer.get("done"):
                    response = answer.get("response") or {}
                    return _project_of(response.get("cloudaicompanionProject"))
                await self._sleep(ONBOARD_POLL_S)
        return None

    def _remember(self, account_id: str, project: str) -> str:
        if project != DEFAULT_PROJECT:
            self._source.set_managed_project(account_id, project)
        return project

    async def _post(
        self, base: str, method: str, token: str, body: dict[str, Any]
    ) -> dict[str, Any] | None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        timeout = aiohttp.ClientTimeout(total=30, connect=self._settings.upstream.connect_timeout_s)
        try:
            async with self._session.post(
                f"{base}/v1internal:{method}", json=body, headers=headers, timeout=timeout
            ) as response:
                if response.status != 200:
                    return None
                answer = _json(await response.text())
                return answer if isinstance(answer, dict) else None
        except (aiohttp.ClientError, TimeoutError):
            return None


def _token_of(body: Any) -> tuple[str, float] | tuple[None, str]:
    """The access token and its lifetime (s) in a 200 answer; else None and what is wrong, in
    words of ours (never the answer's text: it may hold a token)."""
    if not isinstance(body, dict):
        return None, "not a JSON object"
    value = body.get("access_token")
    if not isinstance(value, str) or not value:
        return None, "no access_token"
    expires = body.get("expires_in")
    if expires is None:
        return value, DEFAULT_EXPIRES_S
    if isinstance(expires, bool) or not isinstance(expires, int | float | str):
        return None, "expires_in is not a number"
    try:
        seconds = float(expires)
    except ValueError:
        return None, "expires_in is not a number"
    if not math.isfinite(seconds) or seconds < 0:
        return None, "expires_in is not a number of seconds"
    return value, seconds


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _project_of(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _default_tier(answer: dict[str, Any]) -> str:
    tiers = answer.get("allowedTiers") or []
    for tier in tiers:
        if isinstance(tier, dict) and tier.get("isDefault") and isinstance(tier.get("id"), str):
            return str(tier["id"])
    if tiers and isinstance(tiers[0], dict) and isinstance(tiers[0].get("id"), str):
        return str(tiers[0]["id"])
    return "free-tier"
