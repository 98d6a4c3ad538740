"""The model catalog: the upstream's live model list, cached, shared, and failing open.

- **Live**: a refresh asks one account for its list (`fetchAvailableModels`, through an injected
  `fetch`); when that account fails it asks the next. The next refresh starts at the account
  after the last one that answered, so every account's quota is read in turn. The catalog
  serves the union of the latest list of every account still in the pool.
- **Cached**: a list is fresh for `[models] ttl_s`. Reading a stale catalog starts a refresh
  in the background and answers from the cache (stale-while-revalidate): no request waits for
  a refresh, except that until the first refresh has ended (at startup) requests wait for it,
  until at most `[models] startup_wait_s` after it started.
- **Single flight**: at most one refresh runs at any time; concurrent callers share it.
- **Fail-open**: until some account has answered, the built-in list is served. A failed refresh
  keeps the last list; the next attempt comes after `min(ttl_s, RETRY_AFTER_FAILURE_S)`.

Per-account quota (`remaining_fraction`, `reset_time` per model) is kept for `quotas()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from adapters.cloudcode.models import ModelInfo
from adapters.config import ModelSettings
from adapters.models.resolve import BUILTIN_MODELS, Resolution, resolve_model

log = logging.getLogger("interlock.models")

Fetch = Callable[[str], Awaitable[Mapping[str, ModelInfo]]]
RETRY_AFTER_FAILURE_S = 30.0
BUILTIN: dict[str, ModelInfo] = {
    model: ModelInfo(id=model, display_name=name) for model, name in BUILTIN_MODELS
}


@dataclass(frozen=True)
class _Snapshot:
    models: dict[str, ModelInfo]
    at: float


class ModelCatalog:
    """`fetch(account_id)` returns that account's models or raises; `accounts()` the ids to
    ask, in order; `monotonic()` the clock for the TTL. Without `fetch` the catalog serves the
    built-in list."""

    def __init__(
        self,
        settings: ModelSettings,
        fetch: Fetch | None,
        accounts: Callable[[], Sequence[str]],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._fetch = fetch
        self._accounts = accounts
        self._now = monotonic
        self._lists: dict[str, _Snapshot] = {}
        self._union: dict[str, ModelInfo] | None = None  # models() of the current lists
        self._flight: asyncio.Future[bool] | None = None
        self._fetched_at: float | None = None  # the last refresh that got a list
        self._failed_at: float | None = None  # the last refresh that got none
        self._next = 0  # where the next refresh starts in accounts()
        self._first_started: float | None = None  # when the first refresh started
        self.refreshes = 0  # refreshes started (each is one flight)

    # reading ------------------------------------------------------------------------------
    @property
    def live(self) -> bool:
        """Whether the models come from the upstream (else: the built-in list)."""
        return bool(self._lists)

    def models(self) -> dict[str, ModelInfo]:
        """The available models (union over accounts), or the built-in list (a copy)."""
        return dict(self._current())

    def _current(self) -> dict[str, ModelInfo]:
        if self._union is None:  # rebuilt only after the lists changed
            union: dict[str, ModelInfo] = {}
            for snapshot in self._lists.values():
                for model, info in snapshot.models.items():
                    union.setdefault(model, info)
            self._union = union or dict(BUILTIN)
        return self._union

    def names(self) -> list[str]:
        return list(self._current())

    def quotas(self, account_id: str) -> dict[str, ModelInfo]:
        """The account's models with their quota as last fetched (empty: never fetched)."""
        snapshot = self._lists.get(account_id)
        return dict(snapshot.models) if snapshot else {}

    def offer(self, account_id: str, models: Mapping[str, ModelInfo]) -> None:
        """A list fetched for this account by someone else (the quota reader), kept as if
        fetched here: it counts as a refresh that got a list."""
        if models:
            now = self._now()
            self._lists[account_id] = _Snapshot(dict(models), now)
            self._union = None
            self._fetched_at = now

    def resolve(self, name: str, *, thinking: bool = False) -> Resolution | None:
        """`resolve_model` over the current list with the configured aliases and families."""
        s = self.settings
        return resolve_model(
            name,
            self._current(),
            aliases=s.aliases,
            families={"opus": s.opus, "sonnet": s.sonnet, "haiku": s.haiku},
            thinking=thinking,
        )

    @property
    def stale(self) -> bool:
        now = self._now()
        if self._failed_at is not None and (
            self._fetched_at is None or self._failed_at > self._fetched_at
        ):
            return now - self._failed_at >= min(self.settings.ttl_s, RETRY_AFTER_FAILURE_S)
        return self._fetched_at is None or now - self._fetched_at >= self.settings.ttl_s

    @property
    def settled(self) -> bool:
        """Whether a refresh has ended (with or without a list)."""
        return self._fetched_at is not None or self._failed_at is not None

    async def current(self) -> dict[str, ModelInfo]:
        """The models to serve a request with: refreshes in the background when stale; until
        the first refresh has ended, waits for it, until `startup_wait_s` after it started."""
        if self.stale:
            self.start()
        flight = self._flight
        if flight is not None and not self.settled and self._first_started is not None:
            left = self._first_started + self.settings.startup_wait_s - self._now()
            if left > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(flight), left)
        return self.models()

    # refreshing ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start a refresh in the background unless one is running."""
        self._join()

    async def refresh(self) -> bool:
        """Refresh now (or join the refresh in flight); True if some account answered."""
        return await asyncio.shield(self._join())

    def _join(self) -> asyncio.Future[bool]:
        if self._flight is None:
            if self._first_started is None:
                self._first_started = self._now()
            flight = asyncio.ensure_future(self._refresh())
            self._flight = flight
            flight.add_done_callback(self._landed)
        return self._flight

    def _landed(self, flight: asyncio.Future[bool]) -> None:
        if self._flight is flight:
            self._flight = None

    async def close(self) -> None:
        """Cancel a refresh in flight (the app is stopping)."""
        flight, self._flight = self._flight, None
        if flight is not None and not flight.done():
            flight.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flight

    async def _refresh(self) -> bool:
        self.refreshes += 1
        accounts = list(self._accounts())
        for gone in set(self._lists) - set(accounts):
            del self._lists[gone]
            self._union = None
        if self._fetch is None or not accounts:
            self._failed_at = self._now()
            return False
        problems: list[str] = []
        for step in range(len(accounts)):
            index = (self._next + step) % len(accounts)
            account = accounts[index]
            try:
                models = dict(await self._fetch(account))
            except asyncio.CancelledError:
                raise
            except Exception as err:  # fail open: any failure tries the next account
                problems.append(f"{account}: {err or type(err).__name__}")
                continue
            if not models:
                problems.append(f"{account}: no Claude or Gemini models listed")
                continue
            now, before = self._now(), self.names() if self.live else None
            self._lists[account] = _Snapshot(models, now)
            self._union = None
            self._fetched_at = now
            self._next = index + 1
            level = logging.DEBUG if self.names() == before else logging.INFO
            log.log(level, "model list from %s: %s", account, ", ".join(self.names()))
            return True
        self._failed_at = self._now()
        log.warning(
            "no model list from any account (%s); serving %s",
            "; ".join(problems),
            "the last list" if self.live else "the built-in list",
        )
        return False
