"""The retry policy: one validated configuration model, its defaults and its named presets.

Defaults are the JavaScript proxy's constants (reference/seed-behaviour.md §1.1, §2.3, §6.3);
fields marked *new* are bounds it lacks. Invalid configuration fails at load with the field and
the reason (`PolicyError`), never later inside a request.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Ms = Annotated[int, Field(ge=0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HealthScore(_Frozen):
    """Hybrid strategy: per-account health score (seed-behaviour §2.3)."""

    initial: float = Field(70, ge=0, le=100)
    success_reward: float = Field(1, ge=0, le=20)
    rate_limit_penalty: float = Field(-10, ge=-100, le=0)
    failure_penalty: float = Field(-20, ge=-100, le=0)
    recovery_per_hour: float = Field(10, ge=0, le=100)
    min_usable: float = Field(50, ge=0, le=100)
    max_score: float = Field(100, gt=0, le=100)


class TokenBucket(_Frozen):
    """Hybrid strategy: per-account token bucket (client-side request smoothing)."""

    max_tokens: float = Field(50, ge=1, le=1000)
    tokens_per_minute: float = Field(6, ge=0, le=1000)
    initial_tokens: float = Field(50, ge=0, le=1000)


class QuotaAwareness(_Frozen):
    """Hybrid strategy: how reported quota fractions steer selection."""

    low_threshold: float = Field(0.10, ge=0, lt=1)
    critical_threshold: float = Field(0.05, ge=0, lt=1)
    stale_ms: Ms = 300_000


class Weights(_Frozen):
    """Hybrid strategy: score = health*w.health + tokens%*w.tokens + quota*w.quota + lru_s*w.lru."""

    health: float = Field(2, ge=0, le=20)
    tokens: float = Field(5, ge=0, le=20)
    quota: float = Field(3, ge=0, le=20)
    lru: float = Field(0.1, ge=0, le=5)


class Breaker(_Frozen):
    """*new* Each endpoint's circuit breaker (DESIGN §2.1): after `failures_to_open` consecutive
    endpoint failures (refused or reset connections, timeouts, 5xx, streams broken before
    commit) the endpoint is skipped; one probe request may try it every `first_probe_ms` for
    `steady_probes` failed probes (a short outage costs at most one interval), then after an
    interval that doubles on every failed probe up to `max_probe_ms`; a probe that gets any
    answer closes it."""

    failures_to_open: int = Field(3, ge=1, le=100)
    first_probe_ms: int = Field(1000, ge=1, le=600_000)
    steady_probes: int = Field(3, ge=0, le=100)
    max_probe_ms: int = Field(30_000, ge=1, le=3_600_000)

    @model_validator(mode="after")
    def _probe_intervals_grow(self) -> Breaker:
        if self.first_probe_ms > self.max_probe_ms:
            raise ValueError(
                f"breaker.first_probe_ms: {self.first_probe_ms} is more than "
                f"breaker.max_probe_ms ({self.max_probe_ms})"
            )
        return self


class EndpointBudget(_Frozen):
    """*new* Each endpoint's retry budget: retrying a target this request already failed on
    costs a token; tokens refill with time. First attempts and moves to another target never
    cost one, so an outage cannot turn into a retry storm, and a healthy endpoint is never
    starved by a sick one."""

    max_tokens: float = Field(20, gt=0, le=10_000)
    refill_per_s: float = Field(1, gt=0, le=1000)


DEFAULT_FALLBACK_CHAINS: dict[str, tuple[str, ...]] = {
    "gemini-3.1-pro-high": ("claude-opus-4-6-thinking",),
    "gemini-3.1-pro-low": ("claude-sonnet-4-6",),
    "gemini-3-flash": ("claude-sonnet-4-6",),
    "claude-opus-4-6-thinking": ("gemini-3.1-pro-high",),
    "claude-sonnet-4-6": ("gemini-3-flash",),
}


class Policy(_Frozen):
    """Every knob of the retry engine. All durations are milliseconds."""

    strategy: Literal["sticky", "round-robin", "hybrid"] = "hybrid"
    endpoints: tuple[str, ...] = Field(("primary",), min_length=1, max_length=8)
    """The upstream's endpoints, tried in this order. Their names are the adapter's (the proxy's
    configuration derives them from `[upstream] endpoints`, Cloud Code's `daily` then `prod`);
    the engine only tells them apart."""

    # Attempts and waits (seed §1.1, with DESIGN §2's v2 changes)
    max_retries: int = Field(5, ge=1, le=20)
    """Account attempts per model: `max(max_retries, accounts + 1)`, each on every endpoint."""
    max_wait_before_error_ms: Ms = Field(120_000, le=600_000)
    """All waiting before the first byte (pool, capacity, rate limit, backoff) together stays
    within this; past it the request answers 429/529 with `retry-after`."""
    rate_limit_dedup_window_ms: Ms = Field(2000, le=30_000)
    switch_account_delay_ms: Ms = Field(0, le=60_000)
    """The JS proxy's pause before leaving a rate-limited account (5 s there); 0 by default,
    and never taken when no other account is usable."""
    capacity_backoff_tiers_ms: tuple[Annotated[int, Field(ge=1, le=300_000)], ...] = Field(
        (5000, 10_000, 20_000, 30_000, 60_000), min_length=1, max_length=10
    )
    """How long a target rests after capacity exhaustion when the server states no delay."""
    max_capacity_retries: int = Field(5, ge=0, le=10)
    """Capacity retries of one target per request (then the request avoids it)."""
    rate_limit_backoff_ms: Ms = 30_000
    """How long an account x model rests after a rate limit without a stated reset."""
    quota_backoff_tiers_ms: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        (60_000, 300_000, 1_800_000, 7_200_000), min_length=1, max_length=10
    )
    """How long an account x model rests after quota exhaustion without a stated reset, by
    strike (a success clears the strikes)."""
    max_rate_limit_retries: int = Field(3, ge=0, le=20)
    """*new* Rate-limit retries of one account per request (then the request avoids it)."""
    server_error_pause_ms: Ms = 1000
    """The pause before retrying targets this request already failed on (doubling per round)."""
    empty_retry_base_ms: Ms = 500
    """The same pause after empty answers (500 ms, then 1 s: the JS proxy's empty retries)."""
    max_retry_rounds: int = Field(2, ge=0, le=10)
    """*new* Rounds of retrying failed targets once every target failed (JS: 2 empty retries)."""
    empty_response_placeholder: bool = False
    hybrid_emergency_throttle_ms: Ms = 0
    """The JS hybrid strategy paused 250 ms before using an unhealthy account; 0 by default,
    since a pause while a target is usable breaks work conservation."""
    hybrid_last_resort_throttle_ms: Ms = 0
    """The same for an account without tokens (500 ms in JS); 0 by default."""
    global_quota_threshold: float = Field(0, ge=0, lt=1)

    # New bounds the JavaScript proxy lacks
    deadline_ms: int = Field(600_000, ge=1000, le=86_400_000)
    """*new* A request that has not committed (no content reached the client) by then fails."""
    max_pool_waits: int = Field(10, ge=0, le=100)
    """*new* Waits for the pool's earliest usable moment per request (unbounded in JS)."""
    breaker: Breaker = Breaker()
    endpoint_budget: EndpointBudget = EndpointBudget()

    # Model fallback (seed §1.6): off unless enabled; chains are checked for cycles.
    fallback_enabled: bool = False
    fallback_chains: dict[str, tuple[str, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_FALLBACK_CHAINS)
    )
    max_fallback_depth: int = Field(1, ge=0, le=5)

    # Hybrid strategy parameters (seed §2.3)
    health: HealthScore = HealthScore()
    token_bucket: TokenBucket = TokenBucket()
    quota: QuotaAwareness = QuotaAwareness()
    weights: Weights = Weights()

    @field_validator("endpoints")
    @classmethod
    def _endpoints_unique(cls, endpoints: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({e for e in endpoints if endpoints.count(e) > 1})
        if repeated:
            raise ValueError(f"each endpoint may appear once; repeated: {', '.join(repeated)}")
        return endpoints

    @field_validator("fallback_chains")
    @classmethod
    def _chains_acyclic(cls, chains: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for model, chain in chains.items():
            seen = {model}
            for step in chain:
                if step in seen:
                    raise ValueError(
                        f"fallback_chains.{model}: {step!r} appears twice in "
                        f"{' -> '.join((model, *chain))} (a cycle)"
                    )
                seen.add(step)
        return chains

    def fallback_chain(self, model: str) -> tuple[str, ...]:
        """The models a request for `model` may fall back to, in order, within the depth bound."""
        if not self.fallback_enabled:
            return ()
        return self.fallback_chains.get(model, ())[: self.max_fallback_depth]

    def max_attempts(self, accounts: int) -> int:
        """Account attempts per model: `max(max_retries, accounts + 1)` as in the JS proxy."""
        return max(self.max_retries, accounts + 1)

    def max_failed_sends(self, accounts: int) -> int:
        """Failed attempts per model: every account attempt on every endpoint."""
        return self.max_attempts(accounts) * len(self.endpoints)


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "many-accounts": {
        "max_retries": 3,
        "max_wait_before_error_ms": 60_000,
        "global_quota_threshold": 0.10,
        "rate_limit_dedup_window_ms": 1000,
        "breaker": {"failures_to_open": 2},
        "max_capacity_retries": 3,
        "capacity_backoff_tiers_ms": (3000, 6000, 12_000, 20_000, 40_000),
        "health": {
            "initial": 70,
            "success_reward": 1,
            "rate_limit_penalty": -15,
            "failure_penalty": -25,
            "recovery_per_hour": 5,
            "min_usable": 40,
            "max_score": 100,
        },
        "token_bucket": {"max_tokens": 30, "tokens_per_minute": 8, "initial_tokens": 30},
        "quota": {"low_threshold": 0.15, "critical_threshold": 0.05, "stale_ms": 180_000},
        "weights": {"health": 5, "tokens": 2, "quota": 3, "lru": 0.01},
    },
    "conservative": {
        "strategy": "sticky",
        "max_retries": 8,
        "max_wait_before_error_ms": 240_000,
        "global_quota_threshold": 0.20,
        "rate_limit_dedup_window_ms": 3000,
        "breaker": {"failures_to_open": 5, "max_probe_ms": 60_000},
        "max_capacity_retries": 8,
        "capacity_backoff_tiers_ms": (8000, 15_000, 30_000, 45_000, 90_000),
        "health": {
            "initial": 80,
            "success_reward": 2,
            "rate_limit_penalty": -5,
            "failure_penalty": -10,
            "recovery_per_hour": 3,
            "min_usable": 50,
            "max_score": 100,
        },
        "token_bucket": {"max_tokens": 80, "tokens_per_minute": 4, "initial_tokens": 80},
        "quota": {"low_threshold": 0.20, "critical_threshold": 0.10, "stale_ms": 300_000},
        "weights": {"health": 3, "tokens": 4, "quota": 2, "lru": 0.05},
    },
}


class PolicyError(ValueError):
    """Invalid configuration: says which field is wrong and why."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = "; ".join(f"{field}: {reason}" for field, reason in problems)
        super().__init__(f"invalid policy: {lines}")


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_policy(preset: str = "default", overrides: dict[str, Any] | None = None) -> Policy:
    """Build a policy from a named preset plus overrides (nested dicts merge), or fail clearly."""
    if preset not in PRESETS:
        raise PolicyError([("preset", f"unknown preset {preset!r}; one of {sorted(PRESETS)}")])
    data = _merge(PRESETS[preset], overrides or {})
    try:
        return Policy.model_validate(data)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            field = ".".join(str(p) for p in e["loc"]) or "policy"
            message = e["msg"].removeprefix("Value error, ")
            head, sep, rest = message.partition(": ")
            if sep and head.startswith(f"{field}."):  # a validator named the exact key
                field, message = head, rest
            given = e.get("input")
            got = "" if given is None or isinstance(given, dict) else f" (got {given!r})"
            problems.append((field, f"{message}{got}"))
        raise PolicyError(problems) from None
