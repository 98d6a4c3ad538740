"""Quota: each account's remaining quota per model and its subscription tier, read from the
upstream and fed to the pool before any request needs it.

- **Read**: `fetchAvailableModels` per account (`remainingFraction` and `resetTime` per model)
  and `loadCodeAssist` (the tier, at most every `[quota] tier_refresh_s`). Every account is read
  at start, then every `refresh_s` (times a random factor in 1 ± `jitter`), at most
  `concurrency` accounts at once; one read per account at a time (single flight: a read asked
  for while one runs joins it); and again after a quota 429 on the account (seen as the
  engine's `CoolDownAccount` effect with the quota reason), at most once per `after_429_s`.
- **Fed to the pool**: each reported fraction goes to `AccountPool.update_quota` (the hybrid
  strategy's quota term and its thresholds: an account x model under the floor is used only
  when nothing else is left). An account x model reported at 0 with a reset ahead rests until
  that reset (reason `REPORTED_EMPTY`) before any request is sent to it; when a later reading
  reports quota again, that rest, and only a rest this module set, is lifted.
- **Kept**: the last reading per account for `GET /quota`, the dashboard and the metrics; it is
  also written to the state database (for `interlock accounts list`) and offered to the model
  catalog (one fetch serves both). A failed read keeps the last reading, records why in `error`
  and is logged once until a read of that account succeeds again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from adapters.cloudcode.models import ModelInfo
from adapters.cloudcode.tier import Tier
from adapters.config import QuotaSettings
from adapters.models.catalog import Fetch
from engine.effects import CoolDownAccount, Effect
from engine.failures import FailureKind
from engine.pool import AccountPool
from engine.runner.ports import Clock
from engine.spec import REST_REASONS

log = logging.getLogger("interlock.quota")

REPORTED_EMPTY = "quota exhausted (reported by fetchAvailableModels)"
QUOTA_REASON = REST_REASONS[FailureKind.QUOTA_EXHAUSTED]
"""The reason the engine rests an account x model with after a quota 429."""
"""The reason of a rest ordered by a reading (the only rests a later reading lifts)."""

ReadTier = Callable[[str], Awaitable[Tier]]


@dataclass(frozen=True)
class Reading:
    """One account's last quota reading. `read_at` (wall clock s) is None until a read
    succeeded; `error` says why the latest read failed (None: it succeeded)."""

    models: dict[str, ModelInfo] = field(default_factory=dict)
    tier: Tier | None = None
    read_at: float | None = None
    error: str | None = None


class QuotaMonitor:
    """Reads quota for the pool's valid accounts (see the module docstring). `on_read` is told
    of every successful reading (the state database, the model catalog)."""

    def __init__(
        self,
        settings: QuotaSettings,
        pool: AccountPool,
        fetch: Fetch,
        read_tier: ReadTier | None,
        *,
        clock: Clock,
        max_reset_s: float,
        rng: random.Random | None = None,
        on_read: Callable[[str, Reading], None] | None = None,
    ) -> None:
        self.settings = settings
        self._pool = pool
        self._fetch = fetch
        self._read_tier = read_tier
        self._clock = clock
        self._max_reset_s = max_reset_s
        self._rng = rng or random.Random()
        self._on_read = on_read
        self.readings: dict[str, Reading] = {}
        self.reads = 0  # reads started (each is one flight)
        self._flights: dict[str, asyncio.Future[Reading]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._tier_at: dict[str, float] = {}  # monotonic time of each account's last tier read
        self._asked_at: dict[str, float] = {}  # monotonic time of the last read after a 429
        self._tasks: set[asyncio.Task[object]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    # reading ------------------------------------------------------------------------------
    def accounts(self) -> list[str]:
        """The accounts read: every valid one (a disabled account's quota is still shown)."""
        return [a for a in self._pool.account_ids if self._pool.account(a).valid]

    async def read(self, account: str) -> Reading:
        """Read the account now, or join its read in flight."""
        flight = self._flights.get(account)
        if flight is None:
            flight = asyncio.ensure_future(self._read(account))
            self._flights[account] = flight
            flight.add_done_callback(lambda done: self._landed(account, done))
        return await asyncio.shield(flight)

    def _landed(self, account: str, flight: asyncio.Future[Reading]) -> None:
        if self._flights.get(account) is flight:
            del self._flights[account]
        if not flight.cancelled():
            flight.exception()  # retrieved: a read never raises, but never leave it unseen

    async def models(self, account: str) -> dict[str, ModelInfo]:
        """The model catalog's fetch: the account's models from a read now (or the read in
        flight), so one call serves both; `LookupError` when the read failed."""
        reading = await self.read(account)
        if reading.error is not None:
            raise LookupError(reading.error)
        return reading.models

    async def read_all(self) -> None:
        """Read every account (at most `concurrency` at once)."""
        await asyncio.gather(*(self.read(account) for account in self.accounts()))

    def read_soon(self, account: str) -> None:
        """Read the account in the background (after a quota 429), at most once per
        `after_429_s` per account."""
        now = self._clock.now()
        last = self._asked_at.get(account)
        if last is not None and now - last < self.settings.after_429_s:
            return
        self._asked_at[account] = now
        task = asyncio.ensure_future(self.read(account))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self, account: str) -> Reading:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.settings.concurrency)
        self.reads += 1
        old = self.readings.get(account, Reading())
        async with self._slots:
            try:
                models = dict(await self._fetch(account))
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the last reading stays; the next read tries again
                why = str(err) or type(err).__name__
                if old.error is None:
                    log.warning("quota of %s not read: %s", account, why)
                reading = Reading(old.models, old.tier, old.read_at, why)
                self.readings[account] = reading
                return reading
            tier = await self._tier(account, old.tier)
        reading = Reading(models, tier, self._clock.wall())
        if not models:
            reading = Reading(old.models, tier, old.read_at, "no Claude or Gemini models listed")
        if account not in self._pool.account_ids:
            return reading  # removed while it was read
        if old.error is not None:
            log.info("quota of %s read again", account)
        self.readings[account] = reading
        self._apply(account, models)
        if self._on_read is not None:
            self._on_read(account, reading)
        return reading

    async def _tier(self, account: str, known: Tier | None) -> Tier | None:
        last = self._tier_at.get(account)
        now = self._clock.now()
        if self._read_tier is None or (
            known is not None and last is not None and now - last < self.settings.tier_refresh_s
        ):
            return known
        try:
            tier = await self._read_tier(account)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the tier is shown, never used: keep the last one
            log.debug("tier of %s not read: %s", account, err)
            return known
        self._tier_at[account] = now
        return tier

    def _apply(self, account: str, models: Mapping[str, ModelInfo]) -> None:
        pool, now, wall = self._pool, self._clock.now(), self._clock.wall()
        for model, info in models.items():
            fraction = info.remaining_fraction
            if fraction is None:
                continue
            pool.update_quota(account, model, fraction, now)
            if fraction <= 0 and info.reset_wall is not None and info.reset_wall > wall:
                until = now + min(info.reset_wall - wall, self._max_reset_s)
                before = pool.cooldown(account, model, now)
                if pool.cool_down(account, model, until, REPORTED_EMPTY, now) == until and (
                    before is None or before.until < until
                ):
                    log.info(
                        "%s has no quota left for %s until %s: it rests until then",
                        account,
                        model,
                        info.reset_time,
                    )
            elif fraction > 0 and pool.lift_cooldown(account, model, REPORTED_EMPTY, now):
                log.info("%s has quota for %s again: its rest is lifted", account, model)

    # running ------------------------------------------------------------------------------
    def start(self) -> None:
        """Read every account now, then every `refresh_s` (jittered), in the background."""
        if self._loop_task is None:
            self._loop_task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        jitter = self.settings.jitter
        while True:
            await self.read_all()
            await asyncio.sleep(self.settings.refresh_s * self._rng.uniform(1 - jitter, 1 + jitter))

    async def close(self) -> None:
        """Stop reading (the app is stopping)."""
        pending = [t for t in (self._loop_task, *self._tasks, *self._flights.values()) if t]
        self._loop_task = None
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # the runner's TraceSink (only what a quota 429 needs) ---------------------------------
    def emitted(self, request_id: str, at: float, state: str, effects: list[Effect]) -> None:
        """A quota 429 rests its account x model (`CoolDownAccount` with the quota reason):
        read that account again. Nothing is kept per request."""
        for effect in effects:
            if type(effect) is CoolDownAccount and effect.reason == QUOTA_REASON:
                self.read_soon(effect.account)
