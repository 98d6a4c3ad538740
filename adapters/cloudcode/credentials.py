"""Access tokens and projects for Cloud Code accounts.

One token refresh at a time per account (concurrent requests share the flight); the cache
honours `expires_in` (refreshing a minute early). `invalid_grant` (or `invalid_client`) from
the token endpoint means the refresh token is revoked: `AccountRevoked`. A token-endpoint 5xx,
timeout or network error is transient (`CredentialsUnavailable`) and never invalidates an
account. Projects come from the stored managed project, else loadCodeAssist (and the
onboarding long-running operation when the account has none), else the default project.
Secrets never appear in exception messages or logs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from adapters.config import Settings
from adapters.store_sqlite import Credentials

log = logging.getLogger("interlock.credentials")

DEFAULT_PROJECT = "rising-fact-p41fc"
EARLY_REFRESH_S = 60.0
CLIENT_METADATA = {"ideType": 9, "platform": 3, "pluginType": 2}
ONBOARD_POLLS = 10
ONBOARD_POLL_S = 5.0


class CredentialError(Exception):
    """Getting an access token or project failed."""


class AccountRevoked(CredentialError):
    """The refresh token is revoked or invalid: a person must sign in again."""


class CredentialsUnavailable(CredentialError):
    """The token endpoint could not be reached or failed transiently."""


class CredentialSource(Protocol):
    def credentials(self, account_id: str) -> Credentials: ...
    def set_managed_project(self, account_id: str, project: str) -> None: ...


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
            flight = asyncio.ensure_future(self._refresh(account_id, creds.refresh_token))
            self._flights[account_id] = flight
            flight.add_done_callback(lambda _: self._flights.pop(account_id, None))
            # a failure nobody awaits any more (waiters cancelled at shutdown) is not logged
            flight.add_done_callback(lambda done: done.cancelled() or done.exception())
        return await asyncio.shield(flight)

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
        timeout = aiohttp.ClientTimeout(total=30, connect=self._settings.upstream.connect_timeout_s)
        try:
            async with self._session.post(
                self._settings.upstream.token_url, data=form, timeout=timeout
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as err:
            log.warning(
                "token refresh for %s failed transiently: %s", account_id, type(err).__name__
            )
            raise CredentialsUnavailable(
                f"token endpoint unreachable ({type(err).__name__})"
            ) from None
        body = _json(text)
        error = str(body.get("error", "")) if isinstance(body, dict) else ""
        if status == 200 and isinstance(body, dict) and isinstance(body.get("access_token"), str):
            expires_in = float(body.get("expires_in") or 3600)
            token = _Token(body["access_token"], self._now() + expires_in)
            self._tokens[account_id] = token
            return token.value
        if error in ("invalid_grant", "invalid_client", "unauthorized_client"):
            log.warning("refresh token of %s is revoked (%s)", account_id, error)
            raise AccountRevoked(f"token refresh failed: {error}")
        log.warning("token refresh for %s failed with HTTP %s", account_id, status)
        raise CredentialsUnavailable(f"token endpoint answered HTTP {status}")

    # projects -----------------------------------------------------------------------------
    async def project(self, account_id: str, token: str) -> str:
        known = self._projects.get(account_id)
        if known:
            return known
        creds = self._source.credentials(account_id)
        project = creds.managed_project_id or await self._discover(account_id, token, creds)
        self._projects[account_id] = project
        return project

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
