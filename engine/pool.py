"""The account pool: shared state of every request, owned here and injected into the engine.

Holds accounts (enabled, invalid with reason and verify URL), per account x model cooldowns that
only ever extend, consecutive failures with the extended cooldown, the 429 dedup memory across
concurrent requests, quota strikes for the quota backoff tiers, account leases, the strategy,
and the pool-wide retry budget. Every method is synchronous and takes `now` (monotonic seconds):
under asyncio no locks are needed, and under a virtual clock everything is deterministic.

Each change that must survive a restart goes to the injected store as it happens, as a narrow
write of only what changed (a failing store never fails the call); `reconcile` applies what
another writer (`interlock accounts`) changed in the store meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.events import AccountGranted, NoUsableAccount, PoolCoolingDown
from engine.policy import Policy
from engine.store import AccountRecord, CooldownRecord, InMemoryStore, StateStore
from engine.strategies import AccountState, Strategy, make_strategy

Selection = AccountGranted | PoolCoolingDown | NoUsableAccount
REASON_IDS_SHOWN = 10
"""Accounts named per reason when none is usable (the rest are counted)."""


@dataclass(slots=True)
class Cooldown:
    until: float
    reason: str


@dataclass(frozen=True, slots=True)
class StoreChange:
    """One change another writer made in the store, applied by `AccountPool.reconcile`."""

    account: str
    change: str  # "added", "removed", "enabled", "disabled", "invalid", "valid"


@dataclass(slots=True)
class _Strikes:
    count: int
    last_at: float


class UnknownAccount(KeyError):
    """An account id that the pool does not hold."""


class AccountPool:
    def __init__(
        self,
        policy: Policy,
        accounts: Iterable[str | AccountRecord] = (),
        *,
        store: StateStore | None = None,
        now: float = 0.0,
    ) -> None:
        self.policy = policy
        self.store: StateStore = store if store is not None else InMemoryStore()
        self.strategy: Strategy = make_strategy(policy)
        self._accounts: dict[str, AccountState] = {}
        self._order: list[AccountState] = []
        self._cooldowns: dict[tuple[str, str], Cooldown] = {}
        self._last_429: dict[tuple[str, str], tuple[float, str]] = {}
        self._strikes: dict[tuple[str, str], _Strikes] = {}
        self._retired: set[str] = set()  # removed, but a request still holds a lease
        self.budget_tokens = policy.retry_budget.max_tokens if policy.retry_budget else 0.0
        self.store_failures = 0
        self.last_store_error: str | None = None
        for item in [*self.store.load(now), *accounts]:
            record = AccountRecord(id=item) if isinstance(item, str) else item
            if record.id not in self._accounts:
                self._adopt(record)

    # membership ---------------------------------------------------------------------------
    def _adopt(self, record: AccountRecord) -> None:
        if record.id in self._retired:  # removed and added again while a request held it
            self._retired.discard(record.id)
            state = self._accounts[record.id]
            state.enabled, state.invalid_reason = record.enabled, record.invalid_reason
            state.verify_url = record.verify_url
            self._order.append(state)
            return
        state = AccountState(
            id=record.id,
            enabled=record.enabled,
            invalid_reason=record.invalid_reason,
            verify_url=record.verify_url,
            quota_threshold=record.quota_threshold,
            model_quota_thresholds=dict(record.model_quota_thresholds),
        )
        self._accounts[record.id] = state
        self._order.append(state)
        for model, cd in record.cooldowns.items():
            self._cooldowns[(record.id, model)] = Cooldown(cd.until, cd.reason)

    def add_account(self, account_id: str, now: float) -> None:
        """Serve a new account (nothing to persist until something about it changes)."""
        if account_id not in self._accounts or account_id in self._retired:
            self._adopt(AccountRecord(id=account_id))

    def remove_account(self, account_id: str) -> None:
        self._get(account_id)
        self._write(account_id, self.store.remove_account, account_id)
        self._forget(account_id)

    def _forget(self, account_id: str) -> None:
        """Stop serving the account. A request holding a lease on it finishes safely: the
        account stays known to it (never selected, never usable, never written) until its
        last lease is released."""
        state = self._accounts[account_id]
        if state in self._order:
            self._order.remove(state)
        if state.leases > 0:
            self._retired.add(account_id)
        else:
            self._drop(account_id)

    def _drop(self, account_id: str) -> None:
        del self._accounts[account_id]
        self._retired.discard(account_id)
        for table in (self._cooldowns, self._strikes, self._last_429):
            for key in [k for k in table if k[0] == account_id]:
                del table[key]

    def reconcile(
        self, known: Mapping[str, AccountRecord], stored: Iterable[AccountRecord], now: float
    ) -> list[StoreChange]:
        """Apply what another writer (`interlock accounts`) changed in the store since `known`,
        the store as this pool last knew it; nothing is written back. Accounts added there are
        served, accounts removed there are not (a request holding one finishes first), and an
        enabled flag or invalid mark changed there replaces the pool's. What did not change
        there stays as the pool has it, so a read that predates the pool's own latest writes
        never undoes them. Cooldowns of accounts already served are the pool's own (they only
        ever extend); an added account comes with its stored cooldowns."""
        current = {record.id: record for record in stored}
        changes = []
        for account_id in known:
            if account_id not in current and self._served(account_id):
                self._forget(account_id)
                changes.append(StoreChange(account_id, "removed"))
        for account_id, record in current.items():
            before = known.get(account_id)
            if before is None:
                if account_id not in self._accounts or account_id in self._retired:
                    self._adopt(record)
                    changes.append(StoreChange(account_id, "added"))
                continue
            if not self._served(account_id):
                continue  # removed by this process; the store will follow
            state = self._accounts[account_id]
            if record.enabled != before.enabled:
                state.enabled = record.enabled
                changes.append(StoreChange(account_id, "enabled" if record.enabled else "disabled"))
            if (record.invalid_reason, record.verify_url) != (
                before.invalid_reason,
                before.verify_url,
            ):
                state.invalid_reason, state.verify_url = record.invalid_reason, record.verify_url
                changes.append(
                    StoreChange(account_id, "invalid" if record.invalid_reason else "valid")
                )
        return changes

    def _served(self, account_id: str) -> bool:
        return account_id in self._accounts and account_id not in self._retired

    def _get(self, account_id: str) -> AccountState:
        try:
            return self._accounts[account_id]
        except KeyError:
            raise UnknownAccount(account_id) from None

    def account(self, account_id: str) -> AccountState:
        return self._get(account_id)

    @property
    def account_ids(self) -> list[str]:
        return [a.id for a in self._order]

    def __len__(self) -> int:
        return len(self._order)

    def set_enabled(self, account_id: str, enabled: bool, now: float) -> None:
        self._get(account_id).enabled = enabled
        self._write(account_id, self.store.save_enabled, account_id, enabled)

    def clear_invalid(self, account_id: str, now: float) -> None:
        state = self._get(account_id)
        state.invalid_reason = None
        state.verify_url = None
        self._write(account_id, self.store.save_invalid, account_id, None, None)

    def update_quota(self, account_id: str, model: str, fraction: float, now: float) -> None:
        """Record a reported remaining-quota fraction (hybrid's quota awareness)."""
        self._get(account_id).quota[model] = (fraction, now)

    # cooldowns ----------------------------------------------------------------------------
    def cooldown(self, account_id: str, model: str, now: float) -> Cooldown | None:
        """The cooldown still in force for account x model, if any."""
        cd = self._cooldowns.get((account_id, model))
        if cd is None or cd.until <= now:
            return None
        return cd

    def cool_down(
        self, account_id: str, model: str, until: float, reason: str, now: float
    ) -> float:
        """Rest account x model until `until`; a cooldown only ever extends. Returns the end."""
        self._get(account_id)  # an unknown id raises before any state changes
        key = (account_id, model)
        old = self._cooldowns.get(key)
        if old is not None and old.until >= until:
            return old.until
        self._cooldowns[key] = Cooldown(until, reason)
        self._write(account_id, self.store.save_cooldown, account_id, model, until, reason, now)
        return until

    def usable(self, account_id: str, model: str, now: float) -> bool:
        state = self._get(account_id)
        if account_id in self._retired:
            return False
        return state.valid and self.cooldown(account_id, model, now) is None

    # selection ----------------------------------------------------------------------------
    def select(self, model: str, now: float, tried: Iterable[str] = ()) -> Selection:
        """Lease an account for `model`, preferring ones this request has not tried yet."""
        valid = [a for a in self._order if a.valid]
        if not valid:
            return NoUsableAccount(reasons=self._unusable_reasons())
        usable = [a for a in valid if self.cooldown(a.id, model, now) is None]
        if not usable:
            until = min(self._cooldowns[(a.id, model)].until for a in valid)
            return PoolCoolingDown(until=until)
        tried_set = set(tried)
        candidates = [a for a in usable if a.id not in tried_set] or usable
        chosen, throttle_ms = self.strategy.choose(self._order, candidates, model, now)
        chosen.leases += 1
        return AccountGranted(account=chosen.id, throttle_ms=throttle_ms)

    def release(self, account_id: str) -> None:
        state = self._accounts.get(account_id)
        if state is not None:
            state.leases -= 1
            if state.leases <= 0 and account_id in self._retired:
                self._drop(account_id)

    def leases(self) -> int:
        return sum(a.leases for a in self._accounts.values())

    def _unusable_reasons(self) -> tuple[str, ...]:
        """Why no account can serve, grouped by reason, naming the accounts (at most
        `REASON_IDS_SHOWN` per reason)."""
        if not self._order:
            return ("no accounts are configured",)
        groups: dict[str, list[str]] = {}
        for a in self._order:
            reason = "disabled" if not a.enabled else f"invalid: {a.invalid_reason}"
            groups.setdefault(reason, []).append(a.id)
        reasons = []
        for reason, ids in groups.items():
            shown = ", ".join(ids[:REASON_IDS_SHOWN])
            more = f" and {len(ids) - REASON_IDS_SHOWN} more" if len(ids) > REASON_IDS_SHOWN else ""
            plural = "s" if len(ids) > 1 else ""
            reasons.append(f"{len(ids)} account{plural} {reason} ({shown}{more})")
        return tuple(reasons)

    # outcomes -----------------------------------------------------------------------------
    def note_rate_limit(
        self, account_id: str, model: str, request_id: str, now: float
    ) -> tuple[bool, int]:
        """Record a 429 on account x model. Returns (duplicate, strikes).

        A 429 is a duplicate when another request saw one on the same account x model inside
        the dedup window; duplicates do not escalate. Otherwise the strike count (which indexes
        the quota backoff tiers: 60 s, 5 min, 30 min, 2 h) grows until a success clears it, as
        the JS proxy's consecutive-failure index does.
        """
        state = self._get(account_id)  # an unknown id raises before any state changes
        key = (account_id, model)
        window = self.policy.rate_limit_dedup_window_ms / 1000.0
        last = self._last_429.get(key)
        strikes = self._strikes.get(key)
        if last is not None and last[1] != request_id and now - last[0] < window:
            return True, strikes.count if strikes else 1
        if strikes is None:
            strikes = _Strikes(0, now)
        strikes.count += 1
        strikes.last_at = now
        self._strikes[key] = strikes
        self._last_429[key] = (now, request_id)
        self.strategy.on_rate_limit(state, now)
        return False, strikes.count

    def record_failure(self, account_id: str, model: str, now: float) -> float | None:
        """An attempt on this account failed for upstream reasons (5xx, network, 403, 404...).

        Returns the end of the extended cooldown when the account reached
        `max_consecutive_failures`, else None."""
        state = self._get(account_id)
        state.consecutive_failures += 1
        self.strategy.on_failure(state, now)
        if state.consecutive_failures >= self.policy.max_consecutive_failures:
            until = now + self.policy.extended_cooldown_ms / 1000.0
            return self.cool_down(account_id, model, until, "consecutive failures", now)
        return None

    def record_success(self, account_id: str, model: str, now: float) -> None:
        state = self._get(account_id)
        state.consecutive_failures = 0
        self._strikes.pop((account_id, model), None)
        self._last_429.pop((account_id, model), None)
        self.strategy.on_success(state, now)
        budget = self.policy.retry_budget
        if budget is not None:
            self.budget_tokens = min(budget.max_tokens, self.budget_tokens + budget.token_ratio)

    def mark_invalid(
        self, account_id: str, reason: str, verify_url: str | None, now: float
    ) -> None:
        state = self._get(account_id)
        state.invalid_reason = reason
        state.verify_url = verify_url
        self._write(account_id, self.store.save_invalid, account_id, reason, verify_url)

    # retry budget -------------------------------------------------------------------------
    def spend_retry_token(self) -> None:
        """An overload failure happened: it costs one token of the pool-wide budget."""
        if self.policy.retry_budget is not None:
            self.budget_tokens = max(0.0, self.budget_tokens - 1.0)

    def retries_allowed(self) -> bool:
        budget = self.policy.retry_budget
        return budget is None or self.budget_tokens > budget.max_tokens / 2

    # persistence --------------------------------------------------------------------------
    def record(self, account_id: str) -> AccountRecord:
        state = self._get(account_id)
        return AccountRecord(
            id=state.id,
            enabled=state.enabled,
            invalid_reason=state.invalid_reason,
            verify_url=state.verify_url,
            cooldowns={
                model: CooldownRecord(until=cd.until, reason=cd.reason)
                for (acct, model), cd in self._cooldowns.items()
                if acct == account_id
            },
            quota_threshold=state.quota_threshold,
            model_quota_thresholds=dict(state.model_quota_thresholds),
        )

    def _write(self, account_id: str, write: Callable[..., None], *args: Any) -> None:
        """Persist one change. The change is already in force in memory; a store that fails
        never fails the request that made it: the failure is counted for the adapters to
        report (`store_failures`, `last_store_error`). A removed account is never written."""
        if account_id in self._retired:
            return
        try:
            write(*args)
        except Exception as err:
            self.store_failures += 1
            self.last_store_error = f"{type(err).__name__}: {err}"
