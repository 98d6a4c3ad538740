"""The termination bound: how many steps a request can take, computed from the configuration.

A step is one event the machine handles (internal ones included), content relays excluded. With

    E = len(endpoints)                 C  = max_capacity_retries
    S1 = max_subsecond_retries         S2 = max_short_rate_limit_retries
    M = max_empty_retries              W  = max_pool_waits
    A = max(max_retries, accounts + 1) F  = len(fallback chain) (<= max_fallback_depth)

one account attempt sends at most U = E + C + S1 + S2 + M + 1 upstream requests (one per
endpoint, each bounded retry once, one token refresh). Each send costs at most 3 steps (its
answer, the stream's end, the timer that resumes it); entering and leaving the account costs at
most 4 (grant, throttle timer, release, switch-pause timer). So one model costs at most
A * (3U + 4) + 2 steps (+2 for the pool answer and the fallback hop), every pool wait 2 steps,
and the outcome 1:

    steps <= (F + 1) * (A * (3U + 4) + 2) + 2W + 1

In time: no wait starts that would end past the deadline, and the deadline fails any request
that has not committed, so an uncommitted request ends by `started + deadline_ms`.
"""

from __future__ import annotations

from engine.policy import Policy


def sends_per_account_attempt(policy: Policy) -> int:
    return (
        len(policy.endpoints)
        + policy.max_capacity_retries
        + policy.max_subsecond_retries
        + policy.max_short_rate_limit_retries
        + policy.max_empty_retries
        + 1
    )


def step_bound(policy: Policy, accounts: int, model: str | None = None) -> int:
    """The most steps a request for `model` can take before its outcome (formula above)."""
    hops = policy.max_fallback_depth if model is None else len(policy.fallback_chain(model))
    if not policy.fallback_enabled:
        hops = 0
    per_model = policy.max_attempts(accounts) * (3 * sends_per_account_attempt(policy) + 4) + 2
    return (hops + 1) * per_model + 2 * policy.max_pool_waits + 1
