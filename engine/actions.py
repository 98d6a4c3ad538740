"""Actions: what a transition does. They update the request's counters, apply bookkeeping to the
shared pool, and append effects; they never perform I/O.

Row actions run before the state changes (so the entered state sees their settings); state entry
and exit actions are named in the state list of `engine.table`. `ACTIONS` maps names to functions.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.effects import (
    CancelAttempt,
    CancelTimer,
    Commit,
    CoolDownAccount,
    Finish,
    InvalidateAccount,
    Outcome,
    RelayContent,
    SendAttempt,
    StartTimer,
)
from engine.events import (
    AccountGranted,
    AccountReleased,
    AccountWithdrawn,
    ContentReceived,
    FallbackModelChosen,
    PoolCoolingDown,
)
from engine.failures import Failure, FailureKind
from engine.guards import (
    capacity_delay_ms,
    empty_delay_ms,
    pool_wait_ms,
    short_limit_delay_ms,
    smart_backoff_ms,
)
from engine.request import Request

INVALID_REASONS = {
    FailureKind.AUTH_REVOKED: "Token revoked - re-authentication required",
    FailureKind.VERIFICATION_REQUIRED: "Account requires verification",
    FailureKind.ACCOUNT_BANNED: "Account banned — Gemini disabled for Terms of Service violation",
}


def format_duration(ms: float) -> str:
    """The JS proxy's compact duration: 1h23m45s, 2m0s, 45s (floored to seconds)."""
    total = int(round(ms) // 1000)  # to the millisecond first (float differences)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


# helpers ------------------------------------------------------------------------------------
def _wait(r: Request, delay_ms: float, purpose: str, resume: str) -> None:
    r.wait_until = r.now + delay_ms / 1000.0
    r.wait_purpose = purpose
    r.resume = resume


def _cool_down(r: Request, delay_ms: float, reason: str) -> None:
    """Rest the account for the model; an effect only if the rest actually got longer."""
    assert r.account is not None
    pool = r.engine.pool
    before = pool.cooldown(r.account, r.model, r.now)
    until = pool.cool_down(r.account, r.model, r.now + delay_ms / 1000.0, reason, r.now)
    if before is None or until > before.until:
        r.effects.append(
            CoolDownAccount(account=r.account, model=r.model, until=until, reason=reason)
        )


def _fail(r: Request, status: int, error_type: str, message: str, **extra: object) -> None:
    r.outcome = Outcome(
        ok=False,
        status=status,
        error_type=error_type,
        message=message,
        model=r.model,
        committed=r.committed,
        failure=r.last_failure.kind if r.last_failure else None,
        **extra,
    )


def _note_failure(r: Request) -> Failure:
    assert r.failure is not None
    r.last_failure = r.failure
    return r.failure


def _earliest_reset(r: Request) -> float | None:
    pool = r.engine.pool
    ends = [cd.until for a in pool.account_ids if (cd := pool.cooldown(a, r.model, r.now))]
    return min(ends) if ends else None


# state entry and exit -------------------------------------------------------------------------
def ask_pool(r: Request) -> None:
    r.pending.append(r.engine.pool.select(r.model, r.now, r.tried))


def send_attempt(r: Request) -> None:
    """Send the next attempt, unless a concurrent request has meanwhile put the account to rest
    for this model or invalidated it: then nothing is sent and the account is withdrawn."""
    assert r.account is not None
    if not r.engine.pool.usable(r.account, r.model, r.now):
        r.pending.append(AccountWithdrawn())
        return
    r.sends += 1
    r.in_flight = True
    r.effects.append(
        SendAttempt(
            account=r.account,
            endpoint=r.endpoint,
            model=r.model,
            attempt=r.sends,
            refresh_credentials=r.refresh_next,
        )
    )
    r.refresh_next = False


def arm_timer(r: Request) -> None:
    assert r.wait_until is not None
    r.timer_armed = True
    r.effects.append(StartTimer(at=r.wait_until, purpose=r.wait_purpose))


def disarm_timer(r: Request) -> None:
    if r.timer_armed and (r.event is None or r.event.trigger != "timer_fired"):
        r.effects.append(CancelTimer())
    r.timer_armed = False
    r.wait_until = None


def release_account(r: Request) -> None:
    if r.account is not None:
        r.engine.pool.release(r.account)
        r.account = None
    r.attempts += 1
    r.pending.append(AccountReleased())


def choose_fallback_model(r: Request) -> None:
    chain = r.engine.policy.fallback_chain(r.requested_model)
    r.pending.append(FallbackModelChosen(model=chain[r.hops]))


def finish(r: Request) -> None:
    if r.account is not None:
        r.engine.pool.release(r.account)
        r.account = None
    assert r.outcome is not None
    r.effects.append(Finish(outcome=r.outcome))


# Selecting ------------------------------------------------------------------------------------
def take_account(r: Request) -> None:
    assert isinstance(r.event, AccountGranted)
    r.account = r.event.account
    r.tried.add(r.account)
    r.reset_account_counters()


def take_account_then_throttle(r: Request) -> None:
    take_account(r)
    assert isinstance(r.event, AccountGranted)
    _wait(r, r.event.throttle_ms, "hybrid throttle", "fetch")


def wait_for_pool(r: Request) -> None:
    assert isinstance(r.event, PoolCoolingDown)
    r.pool_waits += 1
    _wait(r, pool_wait_ms(r), "every account cooling down", "select")


def fail_rate_limited(r: Request) -> None:
    assert isinstance(r.event, PoolCoolingDown)
    wait_ms = (r.event.until - r.now) * 1000.0
    _fail(
        r,
        429,
        "rate_limit_error",
        f"Rate limited on {r.model}: every account is cooling down. "
        f"Quota will reset after {format_duration(wait_ms)}.",
        retry_after_s=r.retry_after_s(r.event.until),
    )


def fail_no_account(r: Request) -> None:
    reasons = getattr(r.event, "reasons", ())
    _fail(r, 500, "api_error", "No usable account: " + "; ".join(reasons) + ".", retryable=False)


# Fetching and Streaming -----------------------------------------------------------------------
def open_stream(r: Request) -> None:
    return None


def relay_content(r: Request) -> None:
    assert isinstance(r.event, ContentReceived)
    if not r.committed:
        r.committed = True
        r.effects.append(Commit())
    r.effects.append(RelayContent(content=r.event.content))


def record_success(r: Request) -> None:
    assert r.account is not None
    r.in_flight = False
    r.engine.pool.record_success(r.account, r.model, r.now)
    r.outcome = Outcome(ok=True, model=r.model, committed=True)


def fail_after_commit(r: Request) -> None:
    failure = _note_failure(r)
    _fail(r, 500, "api_error", f"The upstream stream failed after it began: {failure.message}")


def fail_with_upstream_error(r: Request) -> None:
    failure = _note_failure(r)
    status, error_type = (
        (413, "request_too_large") if failure.status == 413 else (400, "invalid_request_error")
    )
    _fail(
        r,
        status,
        error_type,
        failure.message or f"The upstream rejected the request ({failure.status}).",
        retryable=False,
    )


def fail_retry_budget(r: Request) -> None:
    _note_failure(r)
    _fail(
        r,
        529,
        "overloaded_error",
        "The upstream is failing for many requests; retry budget exhausted, not retrying.",
    )


def wait_for_capacity(r: Request) -> None:
    _note_failure(r)
    delay = capacity_delay_ms(r)
    r.capacity_retries += 1
    _wait(r, delay, "model capacity", "fetch")


def rest_after_capacity(r: Request) -> None:
    failure = _note_failure(r)
    p = r.engine.policy
    jitter = (r.engine.rng.random() - 0.5) * p.capacity_jitter_ms
    _cool_down(r, max(failure.reset_ms or 0, p.capacity_cooldown_ms + jitter), "capacity exhausted")


def wait_subsecond_reset(r: Request) -> None:
    failure = _note_failure(r)
    r.subsecond_retries += 1
    _wait(r, failure.reset_ms or 0, "sub-second rate limit", "fetch")


def rest_after_duplicate_429(r: Request) -> None:
    _note_failure(r)
    _cool_down(r, smart_backoff_ms(r), "rate limited (concurrent 429)")


def wait_short_rate_limit(r: Request) -> None:
    _note_failure(r)
    delay = short_limit_delay_ms(r)
    r.short_retries += 1
    _cool_down(r, delay, "rate limited")
    _wait(r, delay, "short rate limit", "fetch")


def rest_after_rate_limit(r: Request) -> None:
    failure = _note_failure(r)
    reason = "quota exhausted" if failure.kind is FailureKind.QUOTA_EXHAUSTED else "rate limited"
    _cool_down(r, smart_backoff_ms(r), reason)
    r.switch_pause = True


def refresh_and_retry(r: Request) -> None:
    _note_failure(r)
    r.refreshed = True
    r.refresh_next = True


def leave_withdrawn_account(r: Request) -> None:
    return None


def give_up_account(r: Request) -> None:
    if _note_failure(r).kind is FailureKind.AUTH_EXPIRED:
        r.auth_failures += 1


def invalidate_account(r: Request) -> None:
    failure = _note_failure(r)
    r.auth_failures += 1
    assert r.account is not None
    reason = INVALID_REASONS[failure.kind]
    r.engine.pool.mark_invalid(r.account, reason, failure.verify_url, r.now)
    r.effects.append(
        InvalidateAccount(account=r.account, reason=reason, verify_url=failure.verify_url)
    )


def pause_then_next_endpoint(r: Request) -> None:
    _note_failure(r)
    r.endpoint_index += 1
    _wait(r, r.engine.policy.server_error_pause_ms, "pause after server error", "fetch")


def try_next_endpoint(r: Request) -> None:
    _note_failure(r)
    r.endpoint_index += 1


def count_account_failure(r: Request) -> None:
    _note_failure(r)
    assert r.account is not None
    until = r.engine.pool.record_failure(r.account, r.model, r.now)
    if until is not None:
        r.effects.append(
            CoolDownAccount(
                account=r.account, model=r.model, until=until, reason="consecutive failures"
            )
        )


def wait_before_empty_retry(r: Request) -> None:
    _note_failure(r)
    delay = empty_delay_ms(r)
    r.empty_retries += 1
    _wait(r, delay, "empty response", "fetch")


def finish_with_placeholder(r: Request) -> None:
    _note_failure(r)
    r.outcome = Outcome(
        ok=True, model=r.model, placeholder=True, failure=FailureKind.EMPTY_RESPONSE
    )


def fail_empty(r: Request) -> None:
    _note_failure(r)
    _fail(
        r,
        529,
        "overloaded_error",
        f"The upstream returned an empty response {r.empty_retries + 1} times.",
    )


# waits, switching, fallback --------------------------------------------------------------------
def resume_after_wait(r: Request) -> None:
    return None


def pause_before_switch(r: Request) -> None:
    _wait(r, r.engine.policy.switch_account_delay_ms, "pause before switching account", "select")


def select_again(r: Request) -> None:
    return None


_FAILURE_ANSWERS: dict[FailureKind, tuple[int, str]] = {
    FailureKind.CAPACITY_EXHAUSTED: (529, "overloaded_error"),
    FailureKind.EMPTY_RESPONSE: (529, "overloaded_error"),
    FailureKind.FORBIDDEN: (403, "permission_error"),
    FailureKind.NOT_FOUND: (404, "not_found_error"),
}


def fail_attempts_exhausted(r: Request) -> None:
    f = r.last_failure
    tried = len(r.tried) if r.tried else r.attempts
    detail = (
        f" Last upstream error ({f.kind.value}): {f.message}"
        if f and f.message
        else (f" Last failure: {f.kind.value}." if f else "")
    )
    if f is not None and f.kind in (FailureKind.RATE_LIMITED, FailureKind.QUOTA_EXHAUSTED):
        until = _earliest_reset(r)
        wait_ms = ((until - r.now) * 1000.0) if until else 0.0
        _fail(
            r,
            429,
            "rate_limit_error",
            f"Rate limited on {r.model} after {r.attempts} attempts on {tried} accounts. "
            f"Quota will reset after {format_duration(wait_ms)}.",
            retry_after_s=r.retry_after_s(until) if until else None,
        )
        return
    if r.auth_failures >= r.attempts:  # every account's credentials were refused
        _fail(
            r,
            500,
            "api_error",
            f"No usable account: the upstream refused the credentials of every account tried "
            f"({tried}) for {r.model}.{detail}",
            retryable=False,
        )
        return
    status, error_type = (
        _FAILURE_ANSWERS.get(f.kind, (500, "api_error")) if f else (500, "api_error")
    )
    _fail(
        r,
        status,
        error_type,
        f"All {r.attempts} attempts on {tried} accounts failed for {r.model}.{detail}",
    )


def start_fallback_model(r: Request) -> None:
    assert isinstance(r.event, FallbackModelChosen)
    r.model = r.event.model
    r.hops += 1
    r.attempts = 0
    r.auth_failures = 0
    r.tried = set()


# any state --------------------------------------------------------------------------------------
def _cancel_in_flight(r: Request) -> None:
    if r.in_flight:
        r.in_flight = False
        r.effects.append(CancelAttempt())


def abandon(r: Request) -> None:
    _cancel_in_flight(r)
    _fail(r, 499, "client_disconnected", "The client disconnected.")


def time_out(r: Request) -> None:
    _cancel_in_flight(r)
    waited = format_duration((r.now - r.started) * 1000.0)
    _fail(r, 504, "timeout_error", f"No answer from the upstream within the deadline ({waited}).")


#: Every public function of this module is an action the table may name (`format_duration`
#: aside); tests/test_table.py checks that the table and this registry agree exactly.
ACTIONS: dict[str, Callable[[Request], None]] = {
    name: fn
    for name, fn in list(globals().items())
    if callable(fn)
    and getattr(fn, "__module__", None) == __name__
    and not name.startswith("_")
    and name != "format_duration"
}
