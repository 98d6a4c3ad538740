"""The pool: shared state of every request, owned here and injected into the engine.

Holds accounts (enabled, invalid with reason and verify URL), per account x model cooldowns that
only ever extend, per target (account x model @ endpoint) rests after capacity exhaustion, each
endpoint's health (circuit breaker and retry budget, `engine.health`), the 429 dedup memory
across concurrent requests, quota strikes for the quota backoff tiers, account leases and the
strategy. Every method is synchronous and takes `now` (monotonic seconds): under asyncio no
locks are needed, and under a virtual clock everything is deterministic.

`select` is where work conservation lives: it grants a target usable now that the request has
not failed on (its current account first, then accounts it has not tried, by the strategy),
else says when the earliest one becomes usable and why, else that every target failed.

Each change that must survive a restart goes to the injected store as it happens, as a narrow
write of only what changed (a failing store never fails the call); `reconcile` applies what
another writer (`interlock accounts`) changed in the store meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from engine.events import AllTargetsFailed, NoUsableAccount, PoolCoolingDown, TargetGranted
from engine.health import EndpointHealth
from engine.policy import Policy
from engine.store import AccountRecord, CooldownRecord, InMemoryStore, StateStore
from engine.strategies import AccountState, Strategy, make_strategy

Selection = TargetGranted | PoolCoolingDown | AllTargetsFailed | NoUsableAccount
Target = tuple[str, str]
"""(account, endpoint)"""
ADOPT_MARGIN_S = 0.5
"""A stored cooldown is adopted only when it ends this much later than the pool's own: a
cooldown this pool wrote reads back a few milliseconds off (wall and monotonic clocks drift)."""
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
    change: str  # "added", "removed", "enabled", "disabled", "invalid", "valid", "uncooled",
    # "cooled" (a cooldown another process wrote that ends later than this pool's)
    model: str | None = None  # the model whose cooldown was cleared ("uncooled")


@dataclass(slots=True)
class _Strikes:
    count: int
    last_at: float


class UnknownAccount(KeyError):
    """An account id that the pool does not hold."""


class Seeker(Protocol):
    """What `select` needs to know about the request asking."""

    @property
    def account(self) -> str | None: ...
    @property
    def tried(self) -> set[str]: ...
    @property
    def sent(self) -> set[Target]: ...
    @property
    def avoid(self) -> set[Target]: ...
    @property
    def avoid_accounts(self) -> set[str]: ...


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
        self._rests: dict[tuple[str, str, str], Cooldown] = {}
        self._last_429: dict[tuple[str, str], tuple[float, str]] = {}
        self._strikes: dict[tuple[str, str], _Strikes] = {}
        self.endpoints: dict[str, EndpointHealth] = {
            name: EndpointHealth(name, policy.breaker, policy.endpoint_budget, now)
            for name in policy.endpoints
        }
        self._retired: set[str] = set()  # removed, but a request still holds a lease
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
        for rest in [k for k in self._rests if k[0] == account_id]:
            del self._rests[rest]

    def reconcile(
        self, known: Mapping[str, AccountRecord], stored: Iterable[AccountRecord], now: float
    ) -> list[StoreChange]:
        """Apply what another writer (`interlock accounts`) changed in the store since `known`,
        the store as this pool last knew it; nothing is written back. Accounts added there are
        served, accounts removed there are not (a request holding one finishes first), and an
        enabled flag or invalid mark changed there replaces the pool's. What did not change
        there stays as the pool has it, so a read that predates the pool's own latest writes
        never undoes them. Cooldowns of accounts already served are the pool's own (they only
        ever extend), except that one cleared there (`interlock accounts clear-cooldowns`, a
        person's decision) is cleared here too, and one that ends later there than here
        (another process serving the same database, `serve --workers`, learned it) is adopted;
        an added account comes with its stored cooldowns."""
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
            for model in before.cooldowns.keys() - record.cooldowns.keys():
                if self._cooldowns.pop((account_id, model), None) is not None:
                    changes.append(StoreChange(account_id, "uncooled", model))
            for model, theirs in record.cooldowns.items():
                mine = self._cooldowns.get((account_id, model))
                ends = now if mine is None or mine.until <= now else mine.until
                if theirs.until > ends + ADOPT_MARGIN_S:
                    self._cooldowns[(account_id, model)] = Cooldown(theirs.until, theirs.reason)
                    changes.append(StoreChange(account_id, "cooled", model))
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

    def cooldowns(self, account_id: str, now: float) -> dict[str, Cooldown]:
        """Every account x model cooldown of the account still in force, by model."""
        return {
            model: cd
            for (account, model), cd in self._cooldowns.items()
            if account == account_id and cd.until > now
        }

    def rests(self, account_id: str, now: float) -> dict[tuple[str, str], Cooldown]:
        """Every capacity rest of the account's targets still in force, by (model, endpoint)."""
        return {
            (model, endpoint): rest
            for (account, model, endpoint), rest in self._rests.items()
            if account == account_id and rest.until > now
        }

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

    def lift_cooldown(self, account_id: str, model: str, reason: str, now: float) -> bool:
        """End the account x model cooldown early when `reason` is what put it there (a rest
        ordered by a quota reading ends when a later reading shows quota again; a cooldown a
        429 set, or extended, keeps its reason and is never lifted this way). Returns whether
        one was lifted."""
        key = (account_id, model)
        cd = self._cooldowns.get(key)
        if cd is None or cd.until <= now or cd.reason != reason:
            return False
        del self._cooldowns[key]
        self._write(account_id, self.store.clear_cooldown, account_id, model)
        return True

    def usable(self, account_id: str, model: str, now: float, endpoint: str | None = None) -> bool:
        """May the account (at `endpoint`, if given) serve `model` now?"""
        state = self._get(account_id)
        if account_id in self._retired:
            return False
        if not state.valid or self.cooldown(account_id, model, now) is not None:
            return False
        return endpoint is None or self.rest(account_id, model, endpoint, now) is None

    def rest(self, account_id: str, model: str, endpoint: str, now: float) -> Cooldown | None:
        """The capacity rest still in force for the target, if any."""
        rest = self._rests.get((account_id, model, endpoint))
        if rest is None or rest.until <= now:
            return None
        return rest

    def next_probe_at(self, now: float) -> float | None:
        """When the earliest open endpoint may next be probed, if any is open."""
        probes = [h.probe_at for h in self.endpoints.values() if h.state == "open"]
        return min(probes) if probes else None

    def earliest_rest_end(self, model: str, now: float) -> float | None:
        """When the first target resting for `model` comes back, if any rests."""
        ends = [
            rest.until for (_, m, _), rest in self._rests.items() if m == model and rest.until > now
        ]
        return min(ends) if ends else None

    def rest_target(
        self, account_id: str, model: str, endpoint: str, until: float, reason: str
    ) -> float:
        """Rest account x model @ endpoint until `until` (only ever extends; not persisted:
        capacity hints are short). Returns the end."""
        self._get(account_id)
        key = (account_id, model, endpoint)
        old = self._rests.get(key)
        if old is not None and old.until >= until:
            return old.until
        self._rests[key] = Cooldown(until, reason)
        return until

    # selection ----------------------------------------------------------------------------
    def select(self, model: str, now: float, seeker: Seeker) -> Selection:
        """Grant the best target usable now that `seeker` has not failed on: its current
        account first, then accounts it has not tried (the strategy picks), then the others;
        endpoints in the policy's order. Retrying a target it already sent to costs that
        endpoint a budget token. Else: when the earliest target becomes usable and why, or
        that every target failed for this request, or why no account can serve at all."""
        valid = [a for a in self._order if a.valid]
        if not valid:
            return NoUsableAccount(reasons=self._unusable_reasons())
        usable: dict[str, str] = {}  # account -> its first usable endpoint
        for a in valid:
            if a.id in seeker.avoid_accounts or self.cooldown(a.id, model, now) is not None:
                continue
            for endpoint in self.policy.endpoints:
                if (a.id, endpoint) in seeker.avoid:
                    continue
                until, _ = self._blocked(a.id, model, endpoint, now, seeker)
                if until <= now:
                    usable[a.id] = endpoint
                    break
        if usable:
            return self._grant(model, now, seeker, usable)
        earliest: tuple[float, str] | None = None
        for a in valid:
            if a.id in seeker.avoid_accounts:
                continue
            for endpoint in self.policy.endpoints:
                if (a.id, endpoint) not in seeker.avoid:
                    until, cause = self._blocked(a.id, model, endpoint, now, seeker)
                    if earliest is None or until < earliest[0]:
                        earliest = (until, cause)
        if earliest is not None:
            return PoolCoolingDown(until=earliest[0], cause=earliest[1])
        return AllTargetsFailed()

    def _blocked(
        self, account_id: str, model: str, endpoint: str, now: float, seeker: Seeker
    ) -> tuple[float, str]:
        """Until when the target is blocked (<= now: usable now), and by what."""
        until, cause = now, ""
        cd = self.cooldown(account_id, model, now)
        if cd is not None:
            until, cause = cd.until, "rate_limit"
        rest = self.rest(account_id, model, endpoint, now)
        if rest is not None and rest.until > until:
            until, cause = rest.until, "capacity"
        health = self.endpoints[endpoint]
        blocked = health.blocked_until(now)
        if blocked > until:
            until, cause = blocked, "endpoint"
        if (account_id, endpoint) in seeker.sent:
            paid = health.retry_at(now)
            if paid > until:
                until, cause = paid, "budget"
        return until, cause

    def _grant(
        self, model: str, now: float, seeker: Seeker, usable: dict[str, str]
    ) -> TargetGranted:
        throttle_ms = 0
        if seeker.account in usable:
            chosen = self._accounts[seeker.account]
        else:
            candidates = [a for a in self._order if a.id in usable]
            fresh = [a for a in candidates if a.id not in seeker.tried] or candidates
            chosen, throttle_ms = self.strategy.choose(self._order, fresh, model, now)
        endpoint = usable[chosen.id]
        chosen.leases += 1
        health = self.endpoints[endpoint]
        probe = health.granted(now)
        if (chosen.id, endpoint) in seeker.sent:
            health.spend(now)
        return TargetGranted(
            account=chosen.id, endpoint=endpoint, throttle_ms=throttle_ms, probe=probe
        )

    def other_account_usable(self, model: str, now: float, seeker: Seeker) -> bool:
        """Is some account other than the seeker's current one usable for `model` now?"""
        return any(
            a.valid
            and a.id != seeker.account
            and a.id not in seeker.avoid_accounts
            and self.cooldown(a.id, model, now) is None
            for a in self._order
        )

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
        self, account_id: str, model: str, request_id: str, now: float, *, elsewhere: bool = False
    ) -> tuple[bool, int]:
        """Record a 429 on account x model. Returns (duplicate, strikes).

        A 429 is a duplicate when another request saw one on the same account x model inside
        the dedup window: here, or `elsewhere` (the shared window another instance claimed);
        duplicates do not escalate. Otherwise the strike count (which indexes
        the quota backoff tiers: 60 s, 5 min, 30 min, 2 h) grows until a success clears it, as
        the JS proxy's consecutive-failure index does.
        """
        state = self._get(account_id)  # an unknown id raises before any state changes
        key = (account_id, model)
        window = self.policy.rate_limit_dedup_window_ms / 1000.0
        last = self._last_429.get(key)
        strikes = self._strikes.get(key)
        here = last is not None and last[1] != request_id and now - last[0] < window
        if here or elsewhere:
            return True, strikes.count if strikes else 1
        if strikes is None:
            strikes = _Strikes(0, now)
        strikes.count += 1
        strikes.last_at = now
        self._strikes[key] = strikes
        self._last_429[key] = (now, request_id)
        self.strategy.on_rate_limit(state, now)
        return False, strikes.count

    def record_target_failure(self, account_id: str, now: float) -> None:
        """A target-scope failure (403, 404, an empty answer): the strategy hears of it."""
        self.strategy.on_failure(self._get(account_id), now)

    def record_success(self, account_id: str, model: str, now: float) -> None:
        state = self._get(account_id)
        self._strikes.pop((account_id, model), None)
        self._last_429.pop((account_id, model), None)
        self.strategy.on_success(state, now)

    def mark_invalid(
        self, account_id: str, reason: str, verify_url: str | None, now: float
    ) -> None:
        state = self._get(account_id)
        state.invalid_reason = reason
        state.verify_url = verify_url
        self._write(account_id, self.store.save_invalid, account_id, reason, verify_url)

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
