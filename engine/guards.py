"""Guards: pure predicates over a request's counters, its classified failure, the policy and the
pool, read by the transition table. None of them changes anything.

Each guard takes the `Request`; `GUARDS` maps the names used in the table to the functions. The
`*_ms` helpers compute the delays that guards and actions share.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from engine.events import PoolCoolingDown, TargetGranted
from engine.failures import Failure, FailureKind
from engine.request import Request


def _failure(r: Request) -> Failure:
    assert r.failure is not None
    return r.failure


# delays the guards and the actions share -----------------------------------------------------
def capacity_rest_ms(r: Request) -> int:
    """How long a target rests after capacity exhaustion: the server's delay as stated; the
    tier for this request's n-th capacity failure on the target only when it states none."""
    failure = _failure(r)
    if failure.reset_ms is not None:
        return failure.reset_ms
    tiers = r.engine.policy.capacity_backoff_tiers_ms
    hits = r.capacity_hits.get(r.target, 1)
    return tiers[min(hits - 1, len(tiers) - 1)]


def rate_limit_rest_ms(r: Request) -> int:
    """How long an account x model rests after a 429: the server's reset as stated; without
    one, the quota tiers by strike (60 s, 5 min, 30 min, 2 h) or the rate-limit backoff."""
    p = r.engine.policy
    failure = _failure(r)
    if failure.reset_ms is not None:
        return failure.reset_ms
    if failure.kind is FailureKind.QUOTA_EXHAUSTED:
        tiers = p.quota_backoff_tiers_ms
        return tiers[min(max(r.rl_strikes - 1, 0), len(tiers) - 1)]
    return p.rate_limit_backoff_ms


def round_pause_ms(r: Request) -> int:
    """The pause before retrying failed targets: doubling per round, from the empty-answer
    base after empty answers, else from the server-error pause; but no longer than until an
    open endpoint's next probe, since that is when a target can next answer."""
    p = r.engine.policy
    last = r.last_failure
    empty = last is not None and last.kind is FailureKind.EMPTY_RESPONSE
    base = p.empty_retry_base_ms if empty else p.server_error_pause_ms
    pause = int(base * 2**r.rounds)
    probe = r.engine.pool.next_probe_at(r.now)
    if probe is not None:
        pause = min(pause, max(0, math.ceil((probe - r.now) * 1000)))
    return pause


def pool_wait_ms(r: Request) -> float:
    assert isinstance(r.event, PoolCoolingDown)
    return max(0.0, (r.event.until - r.now) * 1000.0)


def _wait_fits(r: Request, delay_ms: float) -> bool:
    """A wait before the first byte fits the request's wait budget and ends before its
    deadline."""
    p = r.engine.policy
    return r.waited * 1000.0 + delay_ms <= p.max_wait_before_error_ms and r.fits(delay_ms)


# Selecting ------------------------------------------------------------------------------------
def throttle_fits(r: Request) -> bool:
    assert isinstance(r.event, TargetGranted)
    return r.event.throttle_ms > 0 and _wait_fits(r, r.event.throttle_ms)


def cause_is_capacity(r: Request) -> bool:
    assert isinstance(r.event, PoolCoolingDown)
    return r.event.cause == "capacity"


def cause_is_rate_limit(r: Request) -> bool:
    assert isinstance(r.event, PoolCoolingDown)
    return r.event.cause == "rate_limit"


def cause_is_budget(r: Request) -> bool:
    assert isinstance(r.event, PoolCoolingDown)
    return r.event.cause == "budget"


def wait_allowed(r: Request) -> bool:
    """Wait for the pool's earliest usable moment only within the request's wait budget
    (`max_wait_before_error_ms` of waiting before the first byte), before its deadline, and
    while it has pool waits left (`max_pool_waits`)."""
    return r.pool_waits < r.engine.policy.max_pool_waits and _wait_fits(r, pool_wait_ms(r))


def round_left(r: Request) -> bool:
    return r.rounds < r.engine.policy.max_retry_rounds


def round_pause_allowed(r: Request) -> bool:
    return _wait_fits(r, round_pause_ms(r))


def placeholder_due(r: Request) -> bool:
    last = r.last_failure
    return (
        r.engine.policy.empty_response_placeholder
        and last is not None
        and last.kind is FailureKind.EMPTY_RESPONSE
    )


def fallback_available(r: Request) -> bool:
    return r.hops < len(r.engine.policy.fallback_chain(r.requested_model))


# Fetching and Streaming -----------------------------------------------------------------------
def not_refreshed_yet(r: Request) -> bool:
    return r.account not in r.refreshed


# waits and switching ----------------------------------------------------------------------------
def throttled(r: Request) -> bool:
    return r.resume == "fetch"


def attempt_left(r: Request) -> bool:
    return r.attempts < r.engine.policy.max_failed_sends(len(r.engine.pool))


def switch_pause_wanted(r: Request) -> bool:
    """The JS proxy paused `switch_account_delay_ms` before leaving a rate-limited account;
    interlock only if configured, and never when no other account could serve now."""
    p = r.engine.policy
    last = r.last_failure
    return (
        p.switch_account_delay_ms > 0
        and last is not None
        and last.kind in (FailureKind.RATE_LIMITED, FailureKind.QUOTA_EXHAUSTED)
        and r.engine.pool.other_account_usable(r.model, r.now, r)
        and _wait_fits(r, p.switch_account_delay_ms)
    )


#: Every public function of this module is a guard the table may name, except the `*_ms` delay
#: helpers (shared with the actions). tests/test_table.py checks that the table and this
#: registry name exactly the same guards.
GUARDS: dict[str, Callable[[Request], bool]] = {
    name: fn
    for name, fn in list(globals().items())
    if callable(fn)
    and getattr(fn, "__module__", None) == __name__
    and not name.startswith("_")
    and not name.endswith("_ms")
}
