"""The state-store port: where the account pool persists what must survive a restart.

The pool calls `save_account` after every change that matters (cooldowns, invalid marks,
enable/disable), passing its monotonic `now` so that a durable store can turn monotonic times
into wall-clock times; `load` gets the `now` of the loading process to turn them back.
`InMemoryStore` is the embedded default for tests and replay; the SQLite store is an adapter.
"""

from __future__ import annotations

from typing import Protocol

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
    def load(self, now: float) -> list[AccountRecord]:
        """Every stored account, cooldowns expressed in the caller's monotonic time."""
        ...

    def save_account(self, record: AccountRecord, now: float) -> None:
        """Replace the stored record of `record.id` atomically."""
        ...

    def remove_account(self, account_id: str) -> None: ...


class InMemoryStore:
    """A `StateStore` in a dict: for tests, replay and single-process use without persistence."""

    def __init__(self, records: list[AccountRecord] | None = None) -> None:
        self._records: dict[str, AccountRecord] = {r.id: r for r in records or []}
        self.writes = 0

    def load(self, now: float) -> list[AccountRecord]:
        return list(self._records.values())

    def save_account(self, record: AccountRecord, now: float) -> None:
        self._records[record.id] = record
        self.writes += 1

    def remove_account(self, account_id: str) -> None:
        self._records.pop(account_id, None)
