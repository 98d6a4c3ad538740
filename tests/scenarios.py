"""Hypothesis strategies for whole scenarios (tests/world.py), weighted toward meaningful facts.

A scenario has 1-4 accounts (the first one usable, most of the others), 1-3 endpoints, 1-4
concurrent requests (often arriving together, so that they meet on one account x model), clients
that sometimes leave, and a policy from the presets with overrides that make waits, rounds,
breakers and budgets matter (short tiers, small budgets, breakers that open after one or two
failures). Each scenario has a *theme* (quota, late 429s, shrinking resets, capacity, limits,
outage, accounts, empty, streams, mixed): most of its scripted answers come from the theme, and
the theme tunes the policy and the arrivals, so that repeated 429s on one account x model,
capacity waits on every target, open breakers, probes and spent budgets are common, not rare.
The upstream heals at a drawn moment; from then on it answers normally (invariant 8).
"""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import strategies as st

from engine.failures import FailureKind, UpstreamFacts
from engine.policy import Policy, load_policy
from engine.store import AccountRecord, CooldownRecord
from tests import support as s
from tests.world import (
    ACCOUNT,
    AUTH,
    CAPACITY,
    CLIENT,
    ENDPOINT,
    RATE,
    TARGET,
    Arrival,
    Body,
    Reply,
    Scenario,
)

MODELS = ("m1", "m2", "m3")
CHAINS = {"m1": ("m2", "m3"), "m2": ("m3",)}
ENDPOINTS = ("daily", "prod", "sandbox")


def _body(name: str, facts: Any, scope: str) -> Body:
    delays = [h.delay_ms for h in facts.resets if h.delay_ms is not None]
    return Body(name, facts, scope, max(delays) / 1000.0 if delays else None)


# The reference bodies of tests/support.py (seed-behaviour §3.4), with their scopes.
BODIES: dict[str, Body] = {
    b.name: b
    for b in (
        _body("quota", s.quota_429(), RATE),
        _body("quota 3 s", s.quota_429(3000), RATE),
        _body("quota 754 ms", s.quota_429(754), RATE),
        _body("quota 2 h", s.quota_429(7_384_500), RATE),
        _body("rate limit", s.rate_limit_429(), RATE),
        _body("rate limit 300 ms", s.rate_limit_429(300), RATE),
        _body("rate limit 3 s", s.rate_limit_429(3000), RATE),
        _body("rate limit 40 s", s.rate_limit_429(40_000), RATE),
        _body("capacity 503", s.capacity(503), CAPACITY),
        _body("capacity 529", s.capacity(529), CAPACITY),
        _body("capacity 429 2 s", s.capacity(429, 2000), CAPACITY),
        _body("capacity 503 39 s", s.capacity(503, 39_000), CAPACITY),
        _body("capacity 503 400 ms", s.capacity(503, 400), CAPACITY),
        _body("500", s.SERVER_500, ENDPOINT),
        _body("502", s.google(status=502), ENDPOINT),
        _body("401", s.AUTH_401, AUTH),
        _body("revoked", s.REVOKED_401, ACCOUNT),
        _body("verify", s.VALIDATION_403, ACCOUNT),
        _body("banned", s.BANNED_403, ACCOUNT),
        _body("403", s.FORBIDDEN_403, TARGET),
        _body("404", s.NOT_FOUND_404, TARGET),
        _body("400", s.BAD_400, CLIENT),
        _body("413", s.google(status=413, message="too large"), CLIENT),
        _body(
            "oauth client",  # the token endpoint refuses the proxy's OAuth client
            UpstreamFacts(kind=FailureKind.CONFIGURATION, status=401, message="invalid_client"),
            CLIENT,
        ),
    )
}

_LIMITS = [n for n in BODIES if BODIES[n].scope == RATE]
_CAPACITY = [n for n in BODIES if BODIES[n].scope == CAPACITY]
THEMES: dict[str, list[str]] = {
    # error bodies (and other kinds) a theme's answers mostly come from
    "quota": ["quota", "quota", "quota", "quota 3 s", "rate limit", "ok"],
    "late": ["late 429", "late 429", "late 429", "quota 3 s", "ok"],
    "capacity": [*_CAPACITY, *_CAPACITY, "ok"],
    "limits": [*_LIMITS, "quota", "quota", "quota", "quota 2 h", "late 429", "late 429", "ok"],
    "outage": ["500", "502", "unreachable", "unreachable", "drop_before", "hang", "hang", "ok"],
    "accounts": [
        "401",
        "401",
        "401 stream",
        "401 stream",
        "revoked",
        "verify",
        "banned",
        "credentials",
        "oauth client",
        "403",
        "404",
        "ok",
    ],
    "empty": ["empty", "empty", "empty", "500"],
    "streams": ["empty", "drop_before", "drop_after", "late", "hang_open", "hang_open", "ok"],
    "mixed": [
        *BODIES,
        "unreachable",
        "credentials",
        "empty",
        "drop_before",
        "drop_after",
        "hang",
        "hang_open",
        "late",
        "ok",
    ],
}
_KINDS = (
    *("ok", "unreachable", "credentials", "empty", "drop_before", "drop_after", "hang"),
    "hang_open",
)
_STATED = [n for n in _LIMITS if BODIES[n].stated_s is not None]
_SHRINKING = ("quota 2 h", "rate limit 40 s", "quota 3 s", "capacity 503 39 s", "rate limit 300 ms")
_LATE = [*_LIMITS, *_CAPACITY, "500", "401"]  # errors that can come inside a 2xx stream


@functools.cache
def _among(*values: Any) -> st.SearchStrategy[Any]:
    """`sampled_from(values)`, built once (building strategies per draw dominated the run
    time); a value repeated is drawn more often."""
    return st.sampled_from(values)


def pick(draw: st.DrawFn, *values: Any) -> Any:
    return draw(_among(*values))


@functools.cache
def replies(theme: str) -> st.SearchStrategy[Reply]:
    return _replies(theme)


@st.composite
def _replies(draw: st.DrawFn, theme: str) -> Reply:
    themed = pick(draw, 0, 1, 2, 3) > 0
    answer = pick(draw, *(THEMES[theme] if themed else THEMES["mixed"]))
    delay = pick(draw, 0.05, 0.05, 0.05, 0.0, 0.4, 2.0)
    chunks = pick(draw, 1, 2, 3)
    if answer == "late 429":  # a stated reset after content: recorded, though nothing is retried
        return Reply("late_error", BODIES[pick(draw, *_STATED)], delay, chunks)
    if answer == "401 stream":  # inside a 2xx stream, before any content
        return Reply("error_in_stream", BODIES["401"], delay, chunks)
    if answer == "late":
        return Reply("late_error", BODIES[pick(draw, *_LATE)], delay, chunks)
    if answer in _KINDS:
        return Reply(answer, None, delay, chunks)
    kind = pick(draw, "error", "error", "error", "error_in_stream", "late_error")
    if kind == "late_error" and answer not in _LATE:
        kind = "error_in_stream"
    return Reply(kind, BODIES[answer], delay, chunks)


@functools.lru_cache(maxsize=2048)
def _policy(preset: str, overrides: tuple[tuple[str, Any], ...]) -> Policy:
    data = {k: dict(v) if isinstance(v, tuple) and k in ("breaker", "endpoint_budget", "health")
            else v for k, v in overrides}  # fmt: skip
    policy = load_policy(preset, data)
    return policy.model_copy(update={"fallback_chains": CHAINS})


WEIGHTED_THEMES = (
    "shrinking",
    "quota",
    "late",
    "capacity",
    "limits",
    "accounts",
    "empty",
    "outage",
    *THEMES,
)
#: Themes whose facts need concurrent requests on one account x model: mostly sticky, and for
#: all but `late` (whose 429s must come before the next request) every request at once.
MEETING = ("quota", "shrinking", "late")


@st.composite
def policies(draw: st.DrawFn, theme: str = "mixed") -> Policy:
    preset = pick(draw, "default", "many-accounts", "conservative")
    strategies = ["sticky"] * 6 if theme in MEETING else ["sticky", "sticky"]
    o: dict[str, Any] = {
        "strategy": pick(draw, *strategies, "round-robin", "hybrid"),
        "endpoints": ENDPOINTS[: pick(draw, 1, 1, 2, 3)],
        "max_retries": pick(draw, 1, 1, 2, 3, 4),
        "max_capacity_retries": pick(draw, 0, 1, 2, 3),
        "max_rate_limit_retries": pick(draw, 0, 1, 2, 3),
        "max_retry_rounds": pick(draw, 0, 1, 2),
        "max_pool_waits": pick(draw, 0, 1, 2, 3, 4),
        "deadline_ms": pick(draw, 3000, 20_000, 120_000, 600_000, 7_200_000),
        "switch_account_delay_ms": pick(draw, 0, 0, 0, 700),
        "server_error_pause_ms": pick(draw, 0, 250, 1000),
        "empty_retry_base_ms": pick(draw, 0, 500),
        "rate_limit_dedup_window_ms": pick(draw, 0, 1000, 2000, 5000),
        "max_wait_before_error_ms": pick(draw, 0, 5000, 120_000, 600_000),
        "empty_response_placeholder": pick(draw, False, True),
        "fallback_enabled": pick(draw, False, True),
        "max_fallback_depth": pick(draw, 1, 2),
        "rate_limit_backoff_ms": pick(draw, 2000, 30_000),
        "breaker": (
            ("failures_to_open", pick(draw, 1, 2, 3)),
            ("first_probe_ms", first_probe := pick(draw, 100, 1000, 5000)),
            ("max_probe_ms", max(first_probe, pick(draw, 2000, 30_000))),  # never below
        ),
        "endpoint_budget": (
            ("max_tokens", pick(draw, 1, 2, 20)),
            ("refill_per_s", pick(draw, 0.2, 1.0)),
        ),
    }
    if pick(draw, False, True):
        o["capacity_backoff_tiers_ms"] = (500, 1000, 2000)
        o["quota_backoff_tiers_ms"] = (2000, 10_000, 60_000)
    if theme == "empty":  # placeholders after the last empty answer, also after the last round
        o["empty_response_placeholder"] = pick(draw, True, True, True, False)
        o["max_retry_rounds"] = pick(draw, 0, 1, 2)
        o["fallback_enabled"] = pick(draw, True, False, False)
    if theme in ("limits", "capacity") and pick(draw, False, True):
        o["strategy"] = "hybrid"  # unhealthy accounts: a throttle at every switch
        o["health"] = (("initial", 0),)
        o["hybrid_emergency_throttle_ms"] = 250  # the JS proxy's throttles (0 by default)
        o["hybrid_last_resort_throttle_ms"] = 500
    if theme == "capacity":  # every target resting: the request waits (and clients leave)
        o["max_pool_waits"] = max(2, o["max_pool_waits"])
        o["max_wait_before_error_ms"] = max(120_000, o["max_wait_before_error_ms"])
        o["deadline_ms"] = max(120_000, o["deadline_ms"])
    if theme == "outage":  # breakers that open at once and are probed while it lasts
        o["breaker"] = (("failures_to_open", 1), *o["breaker"][1:])
        o["max_pool_waits"] = max(1, o["max_pool_waits"])
        o["max_wait_before_error_ms"] = max(120_000, o["max_wait_before_error_ms"])
    if o["strategy"] == "hybrid" and pick(draw, False, True):
        o["health"] = (("initial", pick(draw, 0, 55)),)  # throttles sooner
    return _policy(preset, tuple(o.items()))


@st.composite
def accounts(draw: st.DrawFn) -> tuple[AccountRecord, ...]:
    n = pick(draw, 1, 1, 2, 3, 4)
    out = []
    for i in range(n):
        kind = "ok" if i == 0 else pick(draw, *["ok"] * 6, "invalid", "disabled", "cooling")
        cooldowns = {}
        if kind == "cooling":
            cooldowns[pick(draw, *MODELS)] = CooldownRecord(
                until=pick(draw, 0.5, 4.0, 90.0), reason="rate limited"
            )
        out.append(
            AccountRecord(
                id=f"a{i}",
                enabled=kind != "disabled",
                invalid_reason="Token revoked - re-authentication required"
                if kind == "invalid"
                else None,
                cooldowns=cooldowns,
            )
        )
    return tuple(out)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    theme = pick(draw, *WEIGHTED_THEMES)
    policy = draw(policies(theme))
    accts = draw(accounts())
    scripts = []
    if theme == "shrinking":  # each answer states a shorter reset than the one before
        shrinking = tuple(Reply("error", BODIES[n]) for n in _SHRINKING)
        scripts = [((a.id, e), shrinking) for a in accts for e in policy.endpoints]
    for a in accts if theme != "shrinking" else ():
        shared = pick(draw, False, True)  # account-level trouble answers alike on every endpoint
        script: tuple[Reply, ...] = ()
        for i, e in enumerate(policy.endpoints):
            if not shared or i == 0:  # half of them answer alike every time: a condition
                size = pick(draw, 1, 1, 1, 2, 3, 4)
                script = tuple(draw(replies(theme)) for _ in range(size))
            scripts.append(((a.id, e), script))
    n = pick(draw, *((2, 3, 4) if theme in MEETING else (1, 2, 2, 3, 3, 4)))
    # an outage's requests come one after another, so some arrive when a breaker's probe is due
    burst = theme not in ("late", "outage") and (theme in MEETING or pick(draw, False, True))
    arrivals = tuple(
        Arrival(
            at=0.0 if i == 0 or burst else pick(draw, 0.0, 0.01, 0.2, 1.0, 5.0, 40.0),
            model=pick(draw, "m1", "m1", "m1", "m1", "m1", "m1", "m2", "m3"),
            leave_after=pick(draw, None, None, None, 0.02, 0.2, 1.0, 6.0, 60.0),
        )
        for i in range(n)
    )
    return Scenario(
        policy=policy,
        accounts=accts,
        models=MODELS,
        scripts=tuple(scripts),
        heal_at=pick(draw, 1.0, 5.0, 30.0, 120.0, 1000.0),
        arrivals=arrivals,
        seed=pick(draw, 0, 1, 2, 3),
        shared_window=(
            pick(draw, (), (False,), (True, False), (None, False, True)) if theme in MEETING else ()
        ),
    )
