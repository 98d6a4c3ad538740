"""fetchAvailableModels: one account's live model list with its quota (seed §4.7).

`POST <endpoint>/v1internal:fetchAvailableModels` with `{"project": ...}`, on each endpoint in
order (daily, then prod) until one answers 200, with the account's token and project from the
`CredentialManager` and the Antigravity headers (no session id). The answer's `models` map is
keyed by model id; only ids containing `claude` or `gemini` are kept. A `quotaInfo` without
`remainingFraction` but with a `resetTime` means exhausted (0.0); with neither it is unknown.
Every call is bounded by `[models] fetch_timeout_s`.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from adapters.cloudcode.credentials import CredentialError, CredentialManager
from adapters.cloudcode.transport import antigravity_headers
from adapters.config import Settings

log = logging.getLogger("interlock.models")

FETCH_PATH = "/v1internal:fetchAvailableModels"
_FRACTION = re.compile(r"(\.\d{6})\d+")


class ModelListUnavailable(Exception):
    """No endpoint gave a usable model list for the account (the message says why)."""


@dataclass(frozen=True)
class ModelInfo:
    """One upstream model as one account sees it. `remaining_fraction` None: not reported;
    `reset_time` as the upstream wrote it (RFC 3339), `reset_wall` the same in epoch seconds."""

    id: str
    display_name: str
    remaining_fraction: float | None = None
    reset_time: str | None = None
    reset_wall: float | None = None


def rfc3339_epoch(text: str) -> float | None:
    """Epoch seconds of an RFC 3339 timestamp (`Z` or an offset, up to nanoseconds)."""
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", text.strip()))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_models(answer: Any) -> dict[str, ModelInfo]:
    """The Claude and Gemini models of a fetchAvailableModels answer, in the answer's order."""
    models = answer.get("models") if isinstance(answer, dict) else None
    if not isinstance(models, dict):
        raise ModelListUnavailable("the answer has no models map")
    found: dict[str, ModelInfo] = {}
    for model_id, entry in models.items():
        if not isinstance(model_id, str) or not ("claude" in model_id or "gemini" in model_id):
            continue
        fields = entry if isinstance(entry, dict) else {}
        given = fields.get("quotaInfo")
        quota: dict[str, Any] = given if isinstance(given, dict) else {}
        reset = quota.get("resetTime") if isinstance(quota.get("resetTime"), str) else None
        fraction = quota.get("remainingFraction")
        if isinstance(fraction, int | float) and not isinstance(fraction, bool):
            remaining: float | None = min(1.0, max(0.0, float(fraction)))
        else:
            remaining = 0.0 if reset else None
        name = fields.get("displayName")
        found[model_id] = ModelInfo(
            id=model_id,
            display_name=name if isinstance(name, str) and name else model_id,
            remaining_fraction=remaining,
            reset_time=reset,
            reset_wall=rfc3339_epoch(reset) if reset else None,
        )
    return found


class ModelListFetcher:
    """`await fetcher(account_id)`: that account's models, or `ModelListUnavailable`."""

    def __init__(
        self, session: aiohttp.ClientSession, credentials: CredentialManager, settings: Settings
    ) -> None:
        self._session = session
        self._credentials = credentials
        self._settings = settings
        self._headers = antigravity_headers(settings.upstream)

    async def __call__(self, account_id: str) -> dict[str, ModelInfo]:
        try:
            token = await self._credentials.access_token(account_id)
            project = await self._credentials.project(account_id, token)
        except CredentialError as err:
            raise ModelListUnavailable(f"no credentials ({err})") from None
        headers = {
            **self._headers,
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        }
        timeout = aiohttp.ClientTimeout(
            total=self._settings.models.fetch_timeout_s,
            connect=self._settings.upstream.connect_timeout_s,
        )
        problems: list[str] = []
        for name, base in self._settings.upstream.endpoints.items():
            try:
                async with self._session.post(
                    base + FETCH_PATH, json={"project": project}, headers=headers, timeout=timeout
                ) as response:
                    text = await response.text()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as err:
                problems.append(f"{name}: {type(err).__name__}")
                continue
            if status == 401:
                self._credentials.forget(account_id)
            if status != 200:
                problems.append(f"{name}: HTTP {status}")
                continue
            try:
                return parse_models(_json(text))
            except ModelListUnavailable as err:
                problems.append(f"{name}: {err}")
        raise ModelListUnavailable("; ".join(problems) or "no endpoint configured")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
