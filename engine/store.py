"""The state-store port: where the account pool persists what must survive a restart.

The pool writes only what changed, one narrow write per change (a cooldown, an invalid mark,
the enabled flag), so that account management done meanwhile by another writer is never
overwritten; a cooldown write passes the pool's monotonic `now` so that a durable store can turn
monotonic times into wall-clock times, and `load` gets the `now` of the loading process to turn
them back.
`InMemoryStore` is the embedded default for tests and replay; the SQLite store is an adapter.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field


class CooldownRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    until: float
    reason: str


class AccountRecord(BaseModel):
    """What is persisted about one account (never credentials: those belong to the adapter)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    enabled: bool = True
    invalid_reason: str | None = None
    verify_url: str | None = None
    cooldowns: dict[str, CooldownRecord] = Field(default_factory=dict)
    quota_threshold: float | None = None
    model_quota_thresholds: dict[str, float] = Field(default_factory=dict)


class StateStore(Protocol):
    """Narrow writes: each says what changed, so that a write never carries a stale copy of
    anything else (another writer, such as `interlock accounts`, may change the same account
    meanwhile). A write for an account the store does not hold never creates it in a store
    shared with account management: the account was removed there and must stay removed."""

    def load(self, now: float) -> list[AccountRecord]:
        """Every stored account, cooldowns expressed in the caller's monotonic time."""
        ...

    def save_cooldown(
        self, account_id: str, model: str, until: float, reason: str, now: float
    ) -> None:
        """Rest account x model until monotonic `until` (the caller's `now` converts it); a
        stored cooldown only ever extends: a later `until` replaces it, an earlier one not."""
        ...

    def clear_cooldown(self, account_id: str, model: str) -> None:
        """Forget the account x model cooldown (its cause is gone: a quota reading shows
        quota again after one showed none)."""
        ...

    def save_invalid(self, account_id: str, reason: str | None, verify_url: str | None) -> None:
        """Mark the account invalid with `reason` (None: clear the mark and the verify URL)."""
        ...

    def save_enabled(self, account_id: str, enabled: bool) -> None: ...

    def remove_account(self, account_id: str) -> None: ...


class InMemoryStore:
    """A `StateStore` in a dict: for tests, replay and single-process use without persistence.

    It has no other writer, so a write for an account it does not hold yet creates the record
    (the pool's own accounts are known to it from their first change on)."""

    def __init__(self, records: list[AccountRecord] | None = None) -> None:
        self._records: dict[str, AccountRecord] = {r.id: r for r in records or []}
        self.writes = 0

    def load(self, now: float) -> list[AccountRecord]:
        return list(self._records.values())

    def _update(self, account_id: str, **changes: Any) -> None:
        record = self._records.get(account_id) or AccountRecord(id=account_id)
        self._records[account_id] = record.model_copy(update=changes)
        self.writes += 1

    def save_cooldown(
        self, account_id: str, model: str, until: float, reason: str, now: float
    ) -> None:
        record = self._records.get(account_id) or AccountRecord(id=account_id)
        old = record.cooldowns.get(model)
        if old is not None and old.until >= until:
            return
        cooldowns = {**record.cooldowns, model: CooldownRecord(until=until, reason=reason)}
        self._update(account_id, cooldowns=cooldowns)

    def clear_cooldown(self, account_id: str, model: str) -> None:
        record = self._records.get(account_id)
        if record is not None and model in record.cooldowns:
            cooldowns = {m: c for m, c in record.cooldowns.items() if m != model}
            self._update(account_id, cooldowns=cooldowns)

    def save_invalid(self, account_id: str, reason: str | None, verify_url: str | None) -> None:
        self._update(account_id, invalid_reason=reason, verify_url=verify_url)

    def save_enabled(self, account_id: str, enabled: bool) -> None:
        self._update(account_id, enabled=enabled)

    def remove_account(self, account_id: str) -> None:
        self._records.pop(account_id, None)
