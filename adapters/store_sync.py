"""Keeps a running proxy's account pool and its state database in step, behind the requests.

Writes: `StoreSync` is the pool's `StateStore`. Its narrow writes only queue the change and
return at once; one background task writes the queue on a connection of its own, in a worker
thread, so a slow or locked database never delays a request and a failing one never fails it:
the failure is logged once, the changes stay queued (coalesced: the latest mark and flag per
account, the longest cooldown per account x model) and are written when the database accepts
them again.

Reads: the same task polls `PRAGMA data_version` on that connection every `poll_s` (it changes
when another connection commits: `interlock accounts ...`), reads the accounts when it did and
lets `AccountPool.reconcile` apply what changed there since the last read: added accounts are
served, removed ones are not, enable/disable and cleared invalid marks take effect. A queued
write that such a change contradicts is dropped: the person's change is the newer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adapters.store_sqlite import QuotaRow, SQLiteStore
from engine.pool import AccountPool, StoreChange
from engine.store import AccountRecord

log = logging.getLogger("interlock.state")

POLL_S = 0.5
"""How often the database is checked for changes made by `interlock accounts`."""
BUSY_S = 2.0
"""How long one queued write waits for another connection's write lock before it is retried."""


@dataclass(frozen=True)
class _Cooldown:
    until_wall: float
    reason: str


@dataclass(frozen=True)
class _Invalid:
    reason: str | None
    verify_url: str | None


@dataclass(frozen=True)
class _Enabled:
    enabled: bool


@dataclass(frozen=True)
class _Removed:
    pass


@dataclass(frozen=True)
class _Uncooled:
    pass


@dataclass(frozen=True)
class _Quota:
    rows: dict[str, QuotaRow]
    tier: tuple[str, str | None] | None


_Write = _Cooldown | _Invalid | _Enabled | _Removed | _Uncooled | _Quota
_Key = tuple[str, str, str]  # (account, what, model)


def _apply(db: SQLiteStore, key: _Key, write: _Write) -> None:
    account = key[0]
    if isinstance(write, _Cooldown):
        db.save_cooldown_wall(account, key[2], write.until_wall, write.reason)
    elif isinstance(write, _Invalid):
        db.save_invalid(account, write.reason, write.verify_url)
    elif isinstance(write, _Enabled):
        db.save_enabled(account, write.enabled)
    elif isinstance(write, _Uncooled):
        db.clear_cooldown(account, key[2])
    elif isinstance(write, _Quota):
        db.save_quota(account, write.rows, write.tier)
    else:
        db.remove_account(account)


class StoreSync:
    """The pool's write-behind store and the watcher of the state database."""

    def __init__(
        self,
        path: Path | str,
        *,
        now: Callable[[], float],
        wall: Callable[[], float] = time.time,
        busy_s: float = BUSY_S,
    ) -> None:
        self._db = SQLiteStore(path, wall=wall, busy_s=busy_s, any_thread=True)
        self._now = now
        self._wall = wall
        self.pool: AccountPool | None = None
        self.known: dict[str, AccountRecord] = {}  # the database as this process last knew it
        self._version: int | None = None
        self._pending: dict[_Key, _Write] = {}
        self._writing = 0
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.failing: str | None = None  # the error while writes fail, said once

    # the engine's StateStore port: called by the pool on the event loop; only queues ----------
    def load(self, now: float) -> list[AccountRecord]:
        self._version = self._db.data_version()
        records = self._db.load(now)
        self.known = {record.id: record for record in records}
        return records

    def save_cooldown(
        self, account_id: str, model: str, until: float, reason: str, now: float
    ) -> None:
        key = (account_id, "cooldown", model)
        write = _Cooldown(self._wall() + (until - now), reason)
        old = self._pending.get(key)
        if not isinstance(old, _Cooldown) or write.until_wall > old.until_wall:
            self._queue(key, write)

    def clear_cooldown(self, account_id: str, model: str) -> None:
        self._queue((account_id, "cooldown", model), _Uncooled())

    def save_quota(
        self, account_id: str, rows: dict[str, QuotaRow], tier: tuple[str, str | None] | None
    ) -> None:
        """The account's latest quota reading (for `interlock accounts list`), written behind."""
        self._queue((account_id, "quota", ""), _Quota(rows, tier))

    def save_invalid(self, account_id: str, reason: str | None, verify_url: str | None) -> None:
        self._queue((account_id, "invalid", ""), _Invalid(reason, verify_url))

    def save_enabled(self, account_id: str, enabled: bool) -> None:
        self._queue((account_id, "enabled", ""), _Enabled(enabled))

    def remove_account(self, account_id: str) -> None:
        self._discard(account_id)
        self._queue((account_id, "removed", ""), _Removed())

    def _queue(self, key: _Key, write: _Write) -> None:
        self._pending[key] = write
        self._wake.set()

    def _discard(self, account_id: str, what: str | None = None) -> None:
        for key in [k for k in self._pending if k[0] == account_id and what in (None, k[1])]:
            del self._pending[key]

    @property
    def pending(self) -> int:
        """Changes queued or being written, not yet in the database."""
        return len(self._pending) + self._writing

    # the background task ----------------------------------------------------------------------
    def start(self, pool: AccountPool, poll_s: float = POLL_S) -> None:
        self.pool = pool
        self._task = asyncio.create_task(self._run(poll_s), name="interlock-state-sync")

    async def close(self) -> None:
        """Stop the task after it wrote what is queued; close the connection."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self._db.close()

    async def _run(self, poll_s: float) -> None:
        said = None
        while True:  # one pass per write burst or per `poll_s`, until `close`
            self._wake.clear()
            try:
                await self.tick()
                said = None
            except Exception as err:  # never let the watcher die: the next pass tries again
                if repr(err) != said:
                    log.exception("cannot read the state database %s (said once)", self._db.path)
                    said = repr(err)
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), poll_s)

    async def tick(self) -> None:
        """One pass: apply what another writer changed in the database, then write the queue."""
        async with self._lock:
            await self._read_changes()
            await self._flush()

    async def _read_changes(self) -> None:
        stored = await asyncio.to_thread(self._read_if_changed, self._now())
        if stored is None or self.pool is None:
            return
        changes = self.pool.reconcile(self.known, stored, self._now())
        self.known = {record.id: record for record in stored}
        for change in changes:
            self._forget_contradicted(change)
        if changes:
            log.info(
                "accounts changed in the state database: %s",
                ", ".join(
                    f"{c.account} {c.change}" + (f" ({c.model})" if c.model else "")
                    for c in changes
                ),
            )

    def _read_if_changed(self, now: float) -> list[AccountRecord] | None:
        version = self._db.data_version()
        if version == self._version:
            return None
        self._version = version  # read before the accounts: a commit in between reads again
        return self._db.load(now)

    def _forget_contradicted(self, change: StoreChange) -> None:
        if change.change == "removed":
            self._discard(change.account)
        elif change.change in ("enabled", "disabled"):
            self._discard(change.account, "enabled")
        elif change.change in ("invalid", "valid"):
            self._discard(change.account, "invalid")
        elif change.change == "uncooled":  # a queued extension must not undo a person's clear
            self._pending.pop((change.account, "cooldown", change.model or ""), None)

    async def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        self._writing = len(batch)
        try:
            written, error = await asyncio.to_thread(self._write_batch, batch)
        finally:
            self._writing = 0
        for key in written:
            self._note_written(key, batch[key])
        unwritten = {key: write for key, write in batch.items() if key not in written}
        for key, write in unwritten.items():
            newer = self._pending.get(key)
            if newer is None or (
                isinstance(newer, _Cooldown)
                and isinstance(write, _Cooldown)
                and write.until_wall > newer.until_wall
            ):
                self._pending[key] = write
        if error is not None:
            if self.failing is None:
                log.warning(
                    "cannot write the state database %s (%s); %d change(s) kept in memory and "
                    "retried (said once until writes succeed again)",
                    self._db.path,
                    error,
                    len(self._pending),
                )
            self.failing = error
        elif self.failing is not None:
            log.info("the state database %s is writable again", self._db.path)
            self.failing = None

    def _write_batch(self, batch: dict[_Key, _Write]) -> tuple[set[_Key], str | None]:
        """In the worker thread: write each change in its own transaction; stop at a failure."""
        written: set[_Key] = set()
        for key, write in batch.items():
            try:
                _apply(self._db, key, write)
            except Exception as err:
                return written, f"{type(err).__name__}: {err}"
            written.add(key)
        return written, None

    def _note_written(self, key: _Key, write: _Write) -> None:
        """Our own write is now what the database holds: not a change made by someone else."""
        account = key[0]
        if isinstance(write, _Removed):
            self.known.pop(account, None)
        elif account in self.known and isinstance(write, _Invalid):
            self.known[account] = self.known[account].model_copy(
                update={
                    "invalid_reason": write.reason,
                    "verify_url": None if write.reason is None else write.verify_url,
                }
            )
        elif account in self.known and isinstance(write, _Uncooled):
            cooldowns = {m: c for m, c in self.known[account].cooldowns.items() if m != key[2]}
            self.known[account] = self.known[account].model_copy(update={"cooldowns": cooldowns})
        elif account in self.known and isinstance(write, _Enabled):
            self.known[account] = self.known[account].model_copy(update={"enabled": write.enabled})
