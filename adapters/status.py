"""The pool as operators see it, shared by `/health`, `/accounts`, `/metrics` and the
dashboard: an account's state in one word, and each endpoint's health."""

from __future__ import annotations

from typing import Any

from engine.pool import AccountPool

ACCOUNT_STATES = ("usable", "resting", "invalid", "disabled")


def account_state(pool: AccountPool, account_id: str, now: float) -> str:
    """`disabled`, `invalid`, `resting` (some model cools down) or `usable`."""
    state = pool.account(account_id)
    if not state.enabled:
        return "disabled"
    if state.invalid_reason is not None:
        return "invalid"
    if pool.cooldowns(account_id, now):
        return "resting"
    return "usable"


def endpoint_rows(pool: AccountPool, now: float) -> dict[str, dict[str, Any]]:
    """Each endpoint's breaker state, consecutive failures and retry budget (tokens left)."""
    rows = {}
    for name, health in pool.endpoints.items():
        health.retry_at(now)  # refill first
        rows[name] = {
            "state": health.state,
            "consecutive_failures": health.failures,
            "retry_budget": round(health.tokens, 2),
        }
    return rows
