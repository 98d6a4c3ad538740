"""Account selection strategies: sticky, round-robin and hybrid (reference §2.3).

A strategy picks one account among `candidates` (already usable for the model, untried ones
preferred by the pool) and may ask for a throttle pause. Hybrid keeps health scores and token
buckets per account, recovers them lazily from `now`, and reads reported quota fractions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from engine.policy import Policy

LRU_CAP_S = 3600.0


@dataclass(slots=True, eq=False)
class AccountState:
    """The pool's live view of one account."""

    id: str
    enabled: bool = True
    invalid_reason: str | None = None
    verify_url: str | None = None
    leases: int = 0
    last_used: float | None = None
    quota_threshold: float | None = None
    model_quota_thresholds: dict[str, float] = field(default_factory=dict)
    quota: dict[str, tuple[float, float]] = field(default_factory=dict)  # model -> (fraction, at)
    health: float = 0.0
    health_at: float | None = None
    tokens: float = 0.0
    tokens_at: float | None = None

    @property
    def valid(self) -> bool:
        return self.enabled and self.invalid_reason is None


class Strategy(Protocol):
    name: str

    def choose(
        self, order: list[AccountState], candidates: list[AccountState], model: str, now: float
    ) -> tuple[AccountState, int]:
        """Pick one of `candidates` (non-empty); return it and a throttle pause in ms."""
        ...

    def on_success(self, account: AccountState, now: float) -> None: ...
    def on_rate_limit(self, account: AccountState, now: float) -> None: ...
    def on_failure(self, account: AccountState, now: float) -> None: ...


class _Plain:
    """Strategies without trackers ignore outcomes."""

    def on_success(self, account: AccountState, now: float) -> None:
        return None

    def on_rate_limit(self, account: AccountState, now: float) -> None:
        return None

    def on_failure(self, account: AccountState, now: float) -> None:
        return None


class Sticky(_Plain):
    """Keep using the current account while it is usable (best for prompt caching); otherwise
    the first usable account after it, wrapping around."""

    name = "sticky"

    def __init__(self) -> None:
        self.current = 0

    def choose(
        self, order: list[AccountState], candidates: list[AccountState], model: str, now: float
    ) -> tuple[AccountState, int]:
        ids = {a.id for a in candidates}
        n = len(order)
        for step in range(n):
            idx = (self.current + step) % n
            if order[idx].id in ids:
                self.current = idx
                order[idx].last_used = now
                return order[idx], 0
        raise AssertionError("choose() needs a candidate")


class RoundRobin(_Plain):
    """Each selection takes the next usable account after the previous one."""

    name = "round-robin"

    def __init__(self) -> None:
        self.cursor = -1

    def choose(
        self, order: list[AccountState], candidates: list[AccountState], model: str, now: float
    ) -> tuple[AccountState, int]:
        ids = {a.id for a in candidates}
        n = len(order)
        for step in range(1, n + 1):
            idx = (self.cursor + step) % n
            if order[idx].id in ids:
                self.cursor = idx
                order[idx].last_used = now
                return order[idx], 0
        raise AssertionError("choose() needs a candidate")


class Hybrid:
    """Score = health*w.health + tokens%*w.tokens + quota*w.quota + idle_s*w.lru, highest wins;
    candidates are filtered by level (normal, quota, emergency, lastResort), first non-empty
    level wins; emergency and lastResort picks ask for a 250 / 500 ms throttle."""

    name = "hybrid"

    def __init__(self, policy: Policy) -> None:
        self.p = policy

    # trackers -----------------------------------------------------------------------------
    def health(self, a: AccountState, now: float) -> float:
        h = self.p.health
        if a.health_at is None:
            return h.initial
        hours = max(0.0, now - a.health_at) / 3600.0
        return min(h.max_score, a.health + hours * h.recovery_per_hour)

    def tokens(self, a: AccountState, now: float) -> float:
        t = self.p.token_bucket
        if a.tokens_at is None:
            return t.initial_tokens
        minutes = max(0.0, now - a.tokens_at) / 60.0
        return min(t.max_tokens, a.tokens + minutes * t.tokens_per_minute)

    def _set_health(self, a: AccountState, now: float, delta: float) -> None:
        a.health = max(0.0, min(self.p.health.max_score, self.health(a, now) + delta))
        a.health_at = now

    def _set_tokens(self, a: AccountState, now: float, delta: float) -> None:
        a.tokens = max(0.0, min(self.p.token_bucket.max_tokens, self.tokens(a, now) + delta))
        a.tokens_at = now

    def quota_critical(self, a: AccountState, model: str, now: float) -> bool:
        info = a.quota.get(model)
        if info is None:
            return False
        fraction, at = info
        if (now - at) * 1000.0 >= self.p.quota.stale_ms:
            return False
        override = a.model_quota_thresholds.get(model, a.quota_threshold)
        if override is None and self.p.global_quota_threshold > 0:
            override = self.p.global_quota_threshold
        limit = (
            override if override is not None and override > 0 else self.p.quota.critical_threshold
        )
        return fraction <= limit

    def quota_score(self, a: AccountState, model: str, now: float) -> float:
        info = a.quota.get(model)
        if info is None:
            return 50.0
        fraction, at = info
        score = fraction * 100.0
        if (now - at) * 1000.0 >= self.p.quota.stale_ms:
            score *= 0.9
        return score

    def score(self, a: AccountState, model: str, now: float) -> float:
        return self._score(a, self.health(a, now), self.tokens(a, now), model, now)

    def _score(
        self, a: AccountState, health: float, tokens: float, model: str, now: float
    ) -> float:
        w = self.p.weights
        idle = LRU_CAP_S if a.last_used is None else min(max(0.0, now - a.last_used), LRU_CAP_S)
        return (
            health * w.health
            + tokens / self.p.token_bucket.max_tokens * 100.0 * w.tokens
            + self.quota_score(a, model, now) * w.quota
            + idle * w.lru
        )

    # selection ----------------------------------------------------------------------------
    def choose(
        self, order: list[AccountState], candidates: list[AccountState], model: str, now: float
    ) -> tuple[AccountState, int]:
        min_usable = self.p.health.min_usable
        # (account, health, tokens) once per candidate, in candidate order (ties: earliest)
        rated = [(a, self.health(a, now), self.tokens(a, now)) for a in candidates]
        with_tokens = [x for x in rated if x[2] >= 1.0]
        quota = [x for x in with_tokens if x[1] >= min_usable]  # healthy, with tokens
        normal = [x for x in quota if not self.quota_critical(x[0], model, now)]
        levels: list[tuple[list[tuple[AccountState, float, float]], int, bool]] = [
            (normal, 0, True),
            (quota, 0, True),
            (with_tokens, self.p.hybrid_emergency_throttle_ms, True),
            (rated, self.p.hybrid_last_resort_throttle_ms, False),
        ]
        for level, throttle, consume in levels:
            if level:
                best = max(level, key=lambda x: self._score(x[0], x[1], x[2], model, now))[0]
                best.last_used = now
                if consume:
                    self._set_tokens(best, now, -1.0)
                return best, throttle
        raise AssertionError("choose() needs a candidate")

    def on_success(self, account: AccountState, now: float) -> None:
        self._set_health(account, now, self.p.health.success_reward)

    def on_rate_limit(self, account: AccountState, now: float) -> None:
        self._set_health(account, now, self.p.health.rate_limit_penalty)

    def on_failure(self, account: AccountState, now: float) -> None:
        self._set_health(account, now, self.p.health.failure_penalty)
        self._set_tokens(account, now, 1.0)


def make_strategy(policy: Policy) -> Strategy:
    if policy.strategy == "sticky":
        return Sticky()
    if policy.strategy == "round-robin":
        return RoundRobin()
    return Hybrid(policy)
