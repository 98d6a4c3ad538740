"""Actions: what a transition does. They update the request's counters, apply bookkeeping to the
shared pool, and append effects; they never perform I/O.

Row actions run before the state changes (so the entered state sees their settings); state entry
and exit actions are named in the state list of `engine.table`. `ACTIONS` maps names to functions.
What a failure records in the shared pool before any guard reads it (stated resets, 429 dedup,
endpoint health) is `Engine._record`'s; the actions here apply what the chosen row adds.
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
    RestTarget,
    SendAttempt,
    StartTimer,
)
from engine.events import (
    AccountWithdrawn,
    ContentReceived,
    FallbackModelChosen,
    NoUsableAccount,
    PoolCoolingDown,
    TargetGranted,
    TargetReleased,
)
from engine.failures import Failure, FailureKind
from engine.guards import capacity_rest_ms, rate_limit_rest_ms, round_pause_ms
from engine.request import Request
from engine.spec import INVALID_REASONS, RATE_LIMIT_KINDS, REST_REASONS, answer


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
    _wait_until(r, r.now + delay_ms / 1000.0, purpose, resume)


def _wait_until(r: Request, until: float, purpose: str, resume: str) -> None:
    """Wait until the absolute moment `until` (a pool wait ends exactly when the earliest
    target becomes usable, not a float rounding before it)."""
    r.wait_until = until
    r.wait_purpose = purpose
    r.resume = resume
    r.waited += until - r.now


def cool_down_account(r: Request, delay_ms: float, reason: str) -> None:
    """Rest the request's account for its model; an effect only if the rest got longer."""
    assert r.account is not None
    pool = r.engine.pool
    before = pool.cooldown(r.account, r.model, r.now)
    until = pool.cool_down(r.account, r.model, r.now + delay_ms / 1000.0, reason, r.now)
    if before is None or until > before.until:
        r.effects.append(
            CoolDownAccount(account=r.account, model=r.model, until=until, reason=reason)
        )


def rest_current_target(r: Request, delay_ms: float, reason: str) -> None:
    """Rest the request's target (account x model @ endpoint); an effect only if it got longer."""
    assert r.account is not None
    pool = r.engine.pool
    before = pool.rest(r.account, r.model, r.endpoint, r.now)
    until = pool.rest_target(r.account, r.model, r.endpoint, r.now + delay_ms / 1000.0, reason)
    if before is None or until > before.until:
        r.effects.append(
            RestTarget(
                account=r.account, model=r.model, endpoint=r.endpoint, until=until, reason=reason
            )
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
    r.pending.append(r.engine.pool.select(r.model, r.now, r))


def send_attempt(r: Request) -> None:
    """Send the next attempt, unless a concurrent request has meanwhile put the target to rest
    for this model or invalidated its account: then nothing is sent and it is withdrawn."""
    assert r.account is not None
    if not r.engine.pool.usable(r.account, r.model, r.now, r.endpoint):
        r.pending.append(AccountWithdrawn())
        return
    r.sends += 1
    r.sent.add(r.target)
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


def _release(r: Request) -> None:
    if r.leased and r.account is not None:
        r.engine.pool.release(r.account)
    r.leased = False
    if r.probing:  # a probe that got no answer (the answers were recorded already)
        r.engine.pool.endpoints[r.endpoint].probe_abandoned(r.now)
        r.probing = False


def leave_target(r: Request) -> None:
    _release(r)
    r.attempts += 1
    r.pending.append(TargetReleased())


def choose_fallback_model(r: Request) -> None:
    chain = r.engine.policy.fallback_chain(r.requested_model)
    r.pending.append(FallbackModelChosen(model=chain[r.hops]))


def finish(r: Request) -> None:
    _release(r)
    assert r.outcome is not None
    r.effects.append(Finish(outcome=r.outcome))


# Selecting ------------------------------------------------------------------------------------
def take_target(r: Request) -> None:
    assert isinstance(r.event, TargetGranted)
    r.account = r.event.account
    r.endpoint = r.event.endpoint
    r.leased = True
    r.probing = r.event.probe
    r.tried.add(r.account)


def take_target_then_throttle(r: Request) -> None:
    take_target(r)
    assert isinstance(r.event, TargetGranted)
    _wait(r, r.event.throttle_ms, "hybrid throttle", "fetch")


_WAIT_PURPOSES = {
    "capacity": "every target out of capacity",
    "rate_limit": "every account cooling down",
    "endpoint": "every usable endpoint failing (circuit open)",
    "budget": "the failing endpoints' retry budget spent",
}


def wait_for_pool(r: Request) -> None:
    assert isinstance(r.event, PoolCoolingDown)
    r.pool_waits += 1
    _wait_until(r, r.event.until, _WAIT_PURPOSES.get(r.event.cause, r.event.cause), "select")


def fail_cooling_down(r: Request) -> None:
    """Nothing usable soon enough: say when something will be."""
    event = r.event
    assert isinstance(event, PoolCoolingDown)
    after = format_duration((event.until - r.now) * 1000.0)
    retry_after = r.retry_after_s(event.until)
    if event.cause == "rate_limit":
        _fail(
            r,
            429,
            "rate_limit_error",
            f"Rate limited on {r.model}: every account is cooling down. "
            f"Quota will reset after {after}.",
            retry_after_s=retry_after,
        )
        return
    what = {
        "capacity": f"No capacity for {r.model} on any account; the earliest is back in {after}.",
        "endpoint": f"Every endpoint of the upstream is failing; the next probe is in {after}.",
        "budget": "The upstream is failing for many requests; retry budget spent, next retry "
        f"possible in {after}.",
    }.get(event.cause, f"Nothing can serve {r.model} for {after}.")
    _fail(r, 529, "overloaded_error", what, retry_after_s=retry_after)


def pause_before_round(r: Request) -> None:
    delay = round_pause_ms(r)
    r.rounds += 1
    r.avoid.clear()  # every target may be retried (each retry costs its endpoint a token)
    r.avoid_accounts.clear()
    purpose = "empty response" if _last_was_empty(r) else "every target failed"
    _wait(r, delay, purpose, "select")


def _last_was_empty(r: Request) -> bool:
    return r.last_failure is not None and r.last_failure.kind is FailureKind.EMPTY_RESPONSE


def finish_with_placeholder(r: Request) -> None:
    r.outcome = Outcome(
        ok=True, model=r.model, placeholder=True, failure=FailureKind.EMPTY_RESPONSE
    )


def fail_no_account(r: Request) -> None:
    assert isinstance(r.event, NoUsableAccount)
    reasons = "; ".join(r.event.reasons)
    _fail(r, 500, "api_error", f"No usable account: {reasons}.", retryable=False)


def fail_attempts_exhausted(r: Request) -> None:
    f = r.last_failure
    tried = len(r.tried)
    detail = (
        f" Last upstream error ({f.kind.value}): {f.message}"
        if f and f.message
        else (f" Last failure: {f.kind.value}." if f else "")
    )
    if f is not None and f.kind in RATE_LIMIT_KINDS:
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
    if f is not None and f.kind is FailureKind.EMPTY_RESPONSE:
        message = f"The upstream returned an empty response {r.attempts} times."
    else:
        message = f"All {r.attempts} attempts on {tried} accounts failed for {r.model}.{detail}"
    status, error_type = answer(f.kind, f.status) if f else (500, "api_error")
    extra: dict[str, object] = {}
    if f is not None and f.kind is FailureKind.CAPACITY_EXHAUSTED:
        back = r.engine.pool.earliest_rest_end(r.model, r.now)
        if back is not None:
            extra["retry_after_s"] = r.retry_after_s(back)
    _fail(r, status, error_type, message, **extra)


# Fetching and Streaming -----------------------------------------------------------------------
def open_stream(r: Request) -> None:
    return None


def leave_withdrawn_account(r: Request) -> None:
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
    status, error_type = answer(failure.kind, failure.status)
    _fail(
        r,
        status,
        error_type,
        failure.message or f"The upstream rejected the request ({failure.status}).",
        retryable=False,
    )


def rest_target(r: Request) -> None:
    """Capacity: the target rests for the server's hint (the tier without one); after
    `max_capacity_retries` capacity failures on it this request avoids it."""
    failure = _note_failure(r)
    hits = r.capacity_hits[r.target] = r.capacity_hits.get(r.target, 0) + 1
    rest_current_target(r, capacity_rest_ms(r), REST_REASONS[failure.kind])
    if hits > r.engine.policy.max_capacity_retries:
        r.avoid.add(r.target)


def rest_account_model(r: Request) -> None:
    """Rate limit or quota: the account rests for the model until the stated reset (the tier
    without one; a concurrent 429 in the dedup window does not escalate); after
    `max_rate_limit_retries` limits on it this request gives the account up."""
    failure = _note_failure(r)
    assert r.account is not None
    hits = r.limit_hits[r.account] = r.limit_hits.get(r.account, 0) + 1
    cool_down_account(r, rate_limit_rest_ms(r), REST_REASONS[failure.kind])
    if hits > r.engine.policy.max_rate_limit_retries:
        r.avoid_accounts.add(r.account)


def refresh_and_retry(r: Request) -> None:
    _note_failure(r)
    assert r.account is not None
    r.refreshed.add(r.account)
    r.refresh_next = True


def invalidate_account(r: Request) -> None:
    failure = _note_failure(r)
    assert r.account is not None
    reason = INVALID_REASONS[failure.kind]
    r.engine.pool.mark_invalid(r.account, reason, failure.verify_url, r.now)
    r.effects.append(
        InvalidateAccount(account=r.account, reason=reason, verify_url=failure.verify_url)
    )


def avoid_target(r: Request) -> None:
    _note_failure(r)
    assert r.account is not None
    r.avoid.add(r.target)
    r.engine.pool.record_target_failure(r.account, r.now)


def avoid_empty_target(r: Request) -> None:
    avoid_target(r)


def count_endpoint_failure(r: Request) -> None:
    """The endpoint's health has counted it (`Engine._record`); this request moves on."""
    _note_failure(r)
    r.avoid.add(r.target)


def avoid_account(r: Request) -> None:
    _note_failure(r)
    assert r.account is not None
    r.avoid_accounts.add(r.account)


# waits, switching, fallback --------------------------------------------------------------------
def resume_after_wait(r: Request) -> None:
    return None


def pause_before_switch(r: Request) -> None:
    _wait(r, r.engine.policy.switch_account_delay_ms, "pause before switching account", "select")


def select_again(r: Request) -> None:
    return None


def start_fallback_model(r: Request) -> None:
    assert isinstance(r.event, FallbackModelChosen)
    r.model = r.event.model
    r.hops += 1
    r.reset_model_counters()


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


#: Every public function of this module is an action the table may name (the helpers named in
#: `_HELPERS` aside); tests/test_table.py checks that the table and this registry agree exactly.
_HELPERS = frozenset({"format_duration", "cool_down_account", "rest_current_target"})
ACTIONS: dict[str, Callable[[Request], None]] = {
    name: fn
    for name, fn in list(globals().items())
    if callable(fn)
    and getattr(fn, "__module__", None) == __name__
    and not name.startswith("_")
    and name not in _HELPERS
}
