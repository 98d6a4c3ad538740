"""The termination bound: how many steps a request can take, computed from the configuration.

A step is one event the machine handles (internal ones included), content relays excluded. With

    E = len(endpoints)                   N = max(max_retries, accounts + 1) * E
    W = max_pool_waits                   R = max_retry_rounds
    F = len(fallback chain) (<= max_fallback_depth), 0 without fallback

every failed attempt ends in Switching, which counts it, and a model allows N of them. One
attempt costs at most 6 steps (the grant, a throttle's timer, the stream's opening, its end,
the release, a switch pause's timer); a token refresh re-sends once per account, at most 3 more
steps per account; leaving a model for its fallback costs 2 (the row into Fallback and the
choice). Each pool wait costs 2 steps (the pool's answer and the timer), each retry round 2,
and the end 2 (the last answer and the outcome's cause):

    steps <= (F + 1) * (6N + 3 * accounts + 2) + 2W + 2R + 2

In time: no wait starts that would end past the deadline or push the waiting before the first
byte past `max_wait_before_error_ms`, and the deadline fails any request that has not
committed, so an uncommitted request ends by `started + deadline_ms`.
"""

from __future__ import annotations

from engine.policy import Policy


def step_bound(policy: Policy, accounts: int, model: str | None = None) -> int:
    """The most steps a request for `model` can take before its outcome (formula above)."""
    hops = policy.max_fallback_depth if model is None else len(policy.fallback_chain(model))
    if not policy.fallback_enabled:
        hops = 0
    per_model = 6 * policy.max_failed_sends(accounts) + 3 * accounts + 2
    return (hops + 1) * per_model + 2 * policy.max_pool_waits + 2 * policy.max_retry_rounds + 2
