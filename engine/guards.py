"""Guards: pure predicates over a request's counters, its classified failure, the policy and the
pool, read by the transition table. None of them changes anything.

Each guard takes the `Request`; `GUARDS` maps the names used in the table to the functions.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.events import AccountGranted, PoolCoolingDown
from engine.failures import OVERLOAD_KINDS, Failure, FailureKind
from engine.request import Request

POOL_WAIT_BUFFER_MS = 500  # the JS proxy sleeps minWait + 500 ms before selecting again


def _failure(r: Request) -> Failure:
    assert r.failure is not None
    return r.failure


# delays the guards and the actions share -----------------------------------------------------
def capacity_delay_ms(r: Request) -> int:
    """max(server retry delay, tier[retry number]) (DESIGN §2; the JS proxy ignored the server)."""
    tiers = r.engine.policy.capacity_backoff_tiers_ms
    tier = tiers[min(r.capacity_retries, len(tiers) - 1)]
    return max(_failure(r).reset_ms or 0, tier)


def smart_backoff_ms(r: Request) -> int:
    """How long a rate-limited account x model rests (JS `calculateSmartBackoff`, fixed):
    the server's reset (floored at `min_backoff_ms`) when it gave one, else by kind: quota tiers
    indexed by strikes (60 s, 5 min, 30 min, 2 h), or the rate-limit backoff (30 s)."""
    p = r.engine.policy
    failure = _failure(r)
    if failure.reset_ms:
        return max(failure.reset_ms, p.min_backoff_ms)
    if failure.kind is FailureKind.QUOTA_EXHAUSTED:
        tiers = p.quota_backoff_tiers_ms
        return tiers[min(max(r.rl_strikes - 1, 0), len(tiers) - 1)]
    return p.rate_limit_backoff_ms


def short_limit_delay_ms(r: Request) -> int:
    """Exponential backoff on the same account: max(base, min(base * 2^n, cap))."""
    p = r.engine.policy
    base = _failure(r).reset_ms or p.first_retry_delay_ms
    return max(base, min(base << r.short_retries, p.max_backoff_ms))


def empty_delay_ms(r: Request) -> int:
    return int(r.engine.policy.empty_retry_base_ms * 2**r.empty_retries)


def pool_wait_ms(r: Request) -> float:
    assert isinstance(r.event, PoolCoolingDown)
    return max(0.0, (r.event.until - r.now) * 1000.0) + POOL_WAIT_BUFFER_MS


# failure kinds ----------------------------------------------------------------------------


def retry_budget_spent(r: Request) -> bool:
    return _failure(r).kind in OVERLOAD_KINDS and not r.engine.pool.retries_allowed()


# bounded retries ----------------------------------------------------------------------------
def capacity_retry_left(r: Request) -> bool:
    return r.capacity_retries < r.engine.policy.max_capacity_retries


def capacity_wait_fits(r: Request) -> bool:
    return r.fits(capacity_delay_ms(r))


def reset_is_subsecond(r: Request) -> bool:
    reset = _failure(r).reset_ms
    return reset is not None and reset < r.engine.policy.subsecond_reset_ms


def subsecond_retry_left(r: Request) -> bool:
    return r.subsecond_retries < r.engine.policy.max_subsecond_retries


def subsecond_wait_fits(r: Request) -> bool:
    return r.fits(_failure(r).reset_ms or 0)


def is_duplicate_429(r: Request) -> bool:
    return r.rl_duplicate


def limit_is_short(r: Request) -> bool:
    return smart_backoff_ms(r) <= r.engine.policy.default_cooldown_ms


def short_retry_left(r: Request) -> bool:
    return r.short_retries < r.engine.policy.max_short_rate_limit_retries


def short_wait_fits(r: Request) -> bool:
    return r.fits(short_limit_delay_ms(r))


def not_refreshed_yet(r: Request) -> bool:
    return not r.refreshed


def next_endpoint_exists(r: Request) -> bool:
    return r.endpoint_index + 1 < len(r.engine.policy.endpoints)


def server_error_pause_fits(r: Request) -> bool:
    p = r.engine.policy
    return (
        _failure(r).kind is FailureKind.SERVER_ERROR
        and p.server_error_pause_ms > 0
        and r.fits(p.server_error_pause_ms)
    )


def empty_retry_left(r: Request) -> bool:
    return r.empty_retries < r.engine.policy.max_empty_retries


def empty_wait_fits(r: Request) -> bool:
    return r.fits(empty_delay_ms(r))


def placeholder_configured(r: Request) -> bool:
    return r.engine.policy.empty_response_placeholder


# selection, switching, fallback -------------------------------------------------------------
def throttle_fits(r: Request) -> bool:
    assert isinstance(r.event, AccountGranted)
    return r.event.throttle_ms > 0 and r.fits(r.event.throttle_ms)


def pool_wait_allowed(r: Request) -> bool:
    """Wait for the pool's earliest reset only if it is soon (`max_wait_before_error_ms`), ends
    by the deadline, and this request has waits left (`max_pool_waits`)."""
    p = r.engine.policy
    wait = pool_wait_ms(r)
    return (
        wait - POOL_WAIT_BUFFER_MS <= p.max_wait_before_error_ms
        and r.fits(wait)
        and r.pool_waits < p.max_pool_waits
    )


def fallback_available(r: Request) -> bool:
    return r.hops < len(r.engine.policy.fallback_chain(r.requested_model))


def attempt_left(r: Request) -> bool:
    return r.attempts < r.engine.policy.max_attempts(len(r.engine.pool))


def switch_pause_wanted(r: Request) -> bool:
    """The JS proxy waits `switch_account_delay_ms` before leaving a quota-exhausted account."""
    p = r.engine.policy
    return r.switch_pause and p.switch_account_delay_ms > 0 and r.fits(p.switch_account_delay_ms)


def waiting_for_pool(r: Request) -> bool:
    return r.resume == "select"


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
