"""The invariants of DESIGN §2, checked from what a run recorded (tests/world.py `Observed`).

Each `check_*` returns the violations it found (empty: the invariant held). Steps are counted from
`Engine.on_step`, attempts from the scripted upstream, outcomes and content from the recording
client, timers and engine calls from the trace sink, shared state from the pool's public queries;
never from the engine's own counters (the engine's step counter is only compared with ours).

Work conservation (6) needs the pool as it is at the moment a request starts waiting or gives
up, so it is checked during the run by `Conservation`, an `on_step` hook with its own model of
what each request has failed on (DESIGN-v2 notes: which failures make a request avoid a target
or an account, which rest, which clear with a retry round).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.bounds import step_bound
from engine.effects import CancelTimer, Finish, StartTimer
from engine.events import (
    DeadlineExpired,
    StreamBroken,
    StreamEnded,
    StreamOpened,
    TimerFired,
    UpstreamFailed,
    UpstreamUnreachable,
)
from engine.health import CLOSED, HALF_OPEN, OPEN
from engine.policy import Policy
from engine.pool import AccountPool
from engine.request import Request
from engine.table import BACKOFF, CAPACITY_WAIT, FAILED, FALLBACK, RATE_LIMIT_WAIT
from tests.world import (
    ACCOUNT,
    AUTH,
    CAPACITY,
    ENDPOINT,
    EPS,
    OK,
    RATE,
    TARGET,
    TOKEN,
    Bracket,
    Observed,
    Step,
    probe_interval_s,
)

WAITS = (CAPACITY_WAIT, RATE_LIMIT_WAIT, BACKOFF)
_FINAL = (UpstreamFailed, UpstreamUnreachable, StreamBroken, StreamEnded)
Target = tuple[str, str]


def _ends_attempt(b: Bracket) -> bool:
    return b.attempt is not None and isinstance(b.event, _FINAL)


def _scope(b: Bracket) -> str:
    """The scope of what the bracket's event says, by the script (OK: nothing failed)."""
    if not _ends_attempt(b):
        return OK
    assert b.attempt is not None
    if isinstance(b.event, StreamEnded) and b.attempt.reply.kind != "empty":
        return OK
    return b.attempt.reply.scope


def _model_at(seen: Observed, rid: str, hops: int) -> str:
    model = seen.clients[rid].model
    chain = seen.scenario.policy.fallback_chain(model)
    return model if hops == 0 else chain[hops - 1]


# 1. termination -----------------------------------------------------------------------------------
def steps_of(seen: Observed, rid: str) -> list[Step]:
    """The request's steps as `Engine.on_step` saw them, content relays excluded."""
    return [s for s in seen.steps if s.rid == rid and s.trigger != "content_received"]


def tight_step_bound(policy: Policy, accounts: int, model: str | None = None) -> int:
    """A tighter step bound than `engine.bounds.step_bound`, proposed for it:

        steps <= (F + 1) * (6N + 2 * accounts) + 2W + 2R

    One failed attempt costs at most 6 steps (grant, throttle timer, stream opened, failure,
    release, switch-pause timer); a token refresh adds at most 2 per account and model (the
    stream opened before the 401, and the 401 itself: `refreshed` holds it once per model).
    The last attempt of a model has no pause (`attempt_left` guards it), which pays for the
    fallback choice (1 step per hop); a model left through Selecting (its pool answer, 1 step)
    had at most N - 1 attempts. Pool waits and retry rounds cost 2 each, per request. An
    external end (disconnect, deadline) replaces a step the request was waiting for."""
    hops = policy.max_fallback_depth if model is None else len(policy.fallback_chain(model))
    if not policy.fallback_enabled:
        hops = 0
    per_model = 6 * policy.max_failed_sends(accounts) + 2 * accounts
    return (hops + 1) * per_model + 2 * policy.max_pool_waits + 2 * policy.max_retry_rounds


def check_termination(seen: Observed) -> list[str]:
    p = seen.scenario.policy
    out = []
    for rid, c in seen.clients.items():
        if c.returned is None:
            out.append(f"{rid} never ended")
            continue
        n = len(steps_of(seen, rid))
        bound = step_bound(p, len(seen.scenario.accounts), c.model)
        if n > bound:
            out.append(f"{rid}: {n} steps > step_bound {bound}")
        tight = tight_step_bound(p, len(seen.scenario.accounts), c.model)
        if n > tight:
            out.append(f"{rid}: {n} steps > the tighter bound {tight} (tests/invariants.py)")
        if seen.engine_steps.get(rid, 0) != n:
            out.append(f"{rid}: the engine counted {seen.engine_steps.get(rid)} steps, {n} seen")
        deadline = c.arrived + p.deadline_ms / 1000.0
        end = c.finishes[-1][0] if c.finishes else None
        if c.committed is None and end is not None and end > deadline + EPS:
            out.append(f"{rid}: ended at {end}, past its deadline {deadline}")
        waited = 0.0
        for b in seen.brackets:
            if b.rid != rid:
                continue
            for e in b.effects:
                if isinstance(e, StartTimer):
                    committed = c.committed is not None and c.committed[0] < b.seq
                    if not committed and e.at >= deadline - 1e-9:
                        out.append(f"{rid}: a wait until {e.at} not before its deadline {deadline}")
                    if not committed:
                        waited += e.at - b.at
        if waited > p.max_wait_before_error_ms / 1000.0 + EPS:
            out.append(f"{rid}: waited {waited} s > max_wait_before_error_ms")
    return out


# 2. no retry after commit -------------------------------------------------------------------------
def check_commit(seen: Observed) -> list[str]:
    out = []
    for rid, c in seen.clients.items():
        mine = [a for a in seen.attempts if a.rid == rid]
        if c.committed is None:
            if c.received:
                out.append(f"{rid}: content without a commit")
            continue
        late = [a for a in mine if a.seq > c.committed[0]]
        if late:
            out.append(f"{rid}: {len(late)} attempts after commit at {c.committed[1]}")
        got = [content for _, content in c.received]
        sources = {content[0] for content in got}
        if len(sources) != 1:
            out.append(f"{rid}: content from {len(sources)} attempts")
            continue
        (source,) = sources
        attempt = next(a for a in mine if a.seq == source)
        if got != attempt.yielded[: len(got)]:
            out.append(f"{rid}: relayed {got}, the upstream sent {attempt.yielded}")
        if c.returned is not None and c.returned.ok and got != attempt.yielded:
            out.append(f"{rid}: succeeded with {got} of {attempt.yielded}")
    return out


# 3. reset fidelity --------------------------------------------------------------------------------
def _decisions(seen: Observed) -> dict[int, int]:
    """For each attempt (by seq), the engine call that decided it (the one whose effects sent
    it): what the engine knew then is what counts, not when the runner's task started."""
    out = {}
    for a in seen.attempts:
        out[a.seq] = max(
            b.seq
            for b in seen.brackets
            if b.rid == a.rid
            and b.seq < a.seq
            and any(type(e).__name__ == "SendAttempt" for e in b.effects)
        )
    return out


def check_stated_resets(seen: Observed) -> list[str]:
    """No attempt on an account x model (a target, for capacity) before a reset the upstream
    stated, once the engine heard it."""
    resets: list[tuple[int, str, str, str | None, float]] = []
    for b in seen.brackets:
        if not isinstance(b.event, UpstreamFailed) or b.attempt is None:
            continue
        body = b.attempt.reply.body
        if body is None or body.stated_s is None or body.scope not in (RATE, CAPACITY):
            continue
        endpoint = b.attempt.endpoint if body.scope == CAPACITY else None
        resets.append((b.seq, b.attempt.account, b.attempt.model, endpoint, b.at + body.stated_s))
    decided = _decisions(seen)
    out = []
    for a in seen.attempts:
        for seq, account, model, endpoint, until in resets:
            if (
                seq <= decided[a.seq]
                and (account, model) == (a.account, a.model)
                and a.at < until - EPS
                and endpoint in (None, a.endpoint)
            ):
                where = f"@{endpoint}" if endpoint else ""
                out.append(
                    f"{a.rid} sent to {account}x{model}{where} at {a.at}, before the "
                    f"stated reset {until}"
                )
    return out


def check_rests_only_extend(seen: Observed) -> list[str]:
    """A cooldown (a capacity rest) in force never gets shorter, seen over time."""
    out = []
    known: dict[tuple[str, ...], float] = {}
    snaps = [snap for b in seen.brackets for snap in (b.before, b.after) if snap is not None]
    for snap in snaps:
        current: dict[tuple[str, ...], float] = dict(snap.cooldowns.items())
        current.update(snap.rests.items())
        for key, until in list(known.items()):
            if until <= snap.at + EPS:
                del known[key]
                continue
            now = current.get(key)
            if now is None or now < until - EPS:
                out.append(f"{key}: a rest until {until} became {now} at {snap.at}")
        for key, until in current.items():
            known[key] = max(until, known.get(key, 0.0))
    return out


def check_dedup(seen: Observed) -> list[str]:
    """429s on one account x model from other requests inside the dedup window (this
    instance's, or the shared one another instance holds: `shared_duplicate`) escalate once: a
    quota 429 without a reset rests for the tier of the strikes counted the DESIGN's way (a
    success clears them), no longer."""
    p = seen.scenario.policy
    window = p.rate_limit_dedup_window_ms / 1000.0
    tiers = p.quota_backoff_tiers_ms
    last: dict[tuple[str, str], tuple[float, str]] = {}
    strikes: dict[tuple[str, str], int] = {}
    out = []
    for b in seen.brackets:
        a = b.attempt
        if a is None or b.after is None:
            continue
        key = (a.account, a.model)
        if isinstance(b.event, StreamEnded) and b.state == "Done":
            last.pop(key, None)
            strikes.pop(key, None)
            continue
        if not isinstance(b.event, UpstreamFailed) or _scope(b) != RATE:
            continue
        seen_before = last.get(key)
        duplicate = b.event.shared_duplicate or (  # another instance's window, or this one's
            seen_before is not None and seen_before[1] != b.rid and b.at - seen_before[0] < window
        )
        if not duplicate:
            strikes[key] = strikes.get(key, 0) + 1
            last[key] = (b.at, b.rid)
        assert a.reply.body is not None
        if a.reply.body.name != "quota":
            continue
        tier = tiers[min(strikes.get(key, 1) - 1, len(tiers) - 1)] / 1000.0
        before = b.before.cooldowns.get(key, 0.0)
        after = b.after.cooldowns.get(key, 0.0)
        if after > max(before, b.at + tier) + EPS:
            what = "a duplicate inside the window" if duplicate else f"strike {strikes[key]}"
            out.append(
                f"{b.rid}: quota 429 on {key} at {b.at} ({what}) rests until {after}, "
                f"past the tier {b.at + tier}"
            )
    return out


# 4. exactly one outcome, leases, timers -----------------------------------------------------------
def check_one_outcome(seen: Observed) -> list[str]:
    out = []
    for rid, c in seen.clients.items():
        if len(c.finishes) != 1:
            out.append(f"{rid}: {len(c.finishes)} outcomes")
        elif c.returned != c.finishes[0][1]:
            out.append(f"{rid}: the runner returned another outcome than the client got")
    assert seen.final_pool is not None
    held = {a: n for a, n in seen.final_pool.leases.items() if n != 0}
    if held:
        out.append(f"leases held at the end: {held}")
    for b in seen.brackets:
        assert b.after is not None
        negative = {a: n for a, n in b.after.leases.items() if n < 0}
        if negative:
            out.append(f"negative leases {negative} at {b.at}")
    return out


def check_timers(seen: Observed) -> list[str]:
    """Every timer armed (`StartTimer`) is fired by the real runner at its time, or cancelled
    (`CancelTimer`), before the request's outcome; at most one is armed at a time."""
    out = []
    armed: dict[str, float | None] = {}
    p = seen.scenario.policy
    for b in seen.brackets:
        rid = b.rid
        if isinstance(b.event, TimerFired):
            at = armed.get(rid)
            if at is None:
                out.append(f"{rid}: a timer fired at {b.at} that was not armed")
            elif abs(b.at - at) > EPS:
                out.append(f"{rid}: the timer for {at} fired at {b.at}")
            armed[rid] = None
        if isinstance(b.event, DeadlineExpired):
            deadline = seen.clients[rid].arrived + p.deadline_ms / 1000.0
            if abs(b.at - deadline) > EPS:
                out.append(f"{rid}: the deadline {deadline} fired at {b.at}")
        for e in b.effects:
            if isinstance(e, StartTimer):
                if armed.get(rid) is not None:
                    out.append(f"{rid}: a second timer armed at {b.at}")
                armed[rid] = e.at
            elif isinstance(e, CancelTimer):
                if armed.get(rid) is None:
                    out.append(f"{rid}: a timer cancelled at {b.at} that was not armed")
                armed[rid] = None
            elif isinstance(e, Finish) and armed.get(rid) is not None:
                out.append(f"{rid}: finished at {b.at} with its timer for {armed[rid]} armed")
                armed[rid] = None
    return out


# 6. work conservation -----------------------------------------------------------------------------
@dataclass
class _Seeker:
    """What one request has failed on, by the script and DESIGN-v2's rules."""

    hops: int = 0
    model_seq: int = 0
    attempts: int = 0
    avoid: set[Target] = field(default_factory=set)
    avoid_accounts: set[str] = field(default_factory=set)
    capacity_hits: dict[Target, int] = field(default_factory=dict)
    limit_hits: dict[str, int] = field(default_factory=dict)
    refreshed: set[str] = field(default_factory=set)


class Conservation:
    """An `on_step` hook checking invariant 6 against the live pool: a request never waits,
    falls back or fails with a retryable failure while a target usable now, not failed in
    this request, within its attempt limit exists; a pool wait ends at the earliest moment
    such a target becomes usable. A switch pause is taken only when configured and another
    account is usable (never with nothing to switch to); a hybrid throttle holds a granted
    target and is not a wait for work. Violations go to `seen.wait_checks`."""

    def __init__(self) -> None:
        self.seekers: dict[str, _Seeker] = {}

    def __call__(self, seen: Observed, request: Request, step: Step, pool: AccountPool) -> None:
        me = self.seekers.setdefault(step.rid, _Seeker())
        policy = seen.scenario.policy
        model = _model_at(seen, step.rid, me.hops)
        now = step.at
        src, trig, dest = step.source, step.trigger, step.dest
        attempt = seen.last_attempt(step.rid)
        ends_attempt = src in ("Fetching", "Streaming") and dest in ("Switching", "Fetching")
        if ends_attempt and trig != "account_withdrawn":
            assert attempt is not None
            self._failed(me, attempt.account, attempt.endpoint, attempt.reply.scope, policy)
        if dest == "Switching":
            me.attempts += 1
        limit = policy.max_failed_sends(len(pool))
        within = me.attempts < limit
        if src == "Selecting" and trig == "pool_cooling_down" and dest in WAITS:
            usable, earliest = self._targets(seen, step.rid, me, pool, model=model, now=now)
            if usable:
                self._bad(seen, step, f"waits ({dest}) while {usable} is usable")
            elif request.wait_until is not None and (
                earliest is None or abs(request.wait_until - earliest) > EPS
            ):
                self._bad(
                    seen, step, f"waits until {request.wait_until}; earliest usable: {earliest}"
                )
        elif src == "Selecting" and trig == "all_targets_failed" and dest == BACKOFF:
            usable, _ = self._targets(seen, step.rid, me, pool, model=model, now=now)
            if usable:
                self._bad(seen, step, f"pauses for a retry round while {usable} is usable")
            me.avoid.clear()
            me.avoid_accounts.clear()
        elif src == "Switching" and dest == BACKOFF:
            assert attempt is not None
            others = [
                a
                for a in pool.account_ids
                if a != attempt.account
                and a not in me.avoid_accounts
                and pool.account(a).valid
                and pool.cooldown(a, model, now) is None
            ]
            if policy.switch_account_delay_ms <= 0 or not others:
                self._bad(seen, step, "pauses before switching with nothing configured or usable")
        elif dest in (FAILED, FALLBACK) and src in ("Selecting", "Switching") and within:
            usable, _ = self._targets(seen, step.rid, me, pool, model=model, now=now)
            if usable:
                self._bad(seen, step, f"gives up ({trig} -> {dest}) while {usable} is usable")
        if src == FALLBACK:
            self.seekers[step.rid] = _Seeker(hops=me.hops + 1, model_seq=step.seq)

    @staticmethod
    def _bad(seen: Observed, step: Step, what: str) -> None:
        seen.wait_checks.append((step.rid, f"{step.rid} at {step.at}: {what}"))

    @staticmethod
    def _failed(me: _Seeker, account: str, endpoint: str, scope: str, policy: Policy) -> None:
        target = (account, endpoint)
        if scope in (TARGET, ENDPOINT):
            me.avoid.add(target)
        elif scope == TOKEN:
            me.avoid_accounts.add(account)
        elif scope == CAPACITY:
            me.capacity_hits[target] = me.capacity_hits.get(target, 0) + 1
            if me.capacity_hits[target] > policy.max_capacity_retries:
                me.avoid.add(target)
        elif scope == RATE:
            me.limit_hits[account] = me.limit_hits.get(account, 0) + 1
            if me.limit_hits[account] > policy.max_rate_limit_retries:
                me.avoid_accounts.add(account)
        elif scope == AUTH:
            me.refreshed.add(account)  # the second 401 invalidates it (the pool shows that)

    @staticmethod
    def _targets(
        seen: Observed, rid: str, me: _Seeker, pool: AccountPool, *, model: str, now: float
    ) -> tuple[list[Target], float | None]:
        """The targets usable now that the request has not failed on, and when the earliest
        not usable now becomes usable."""
        sent = {
            (a.account, a.endpoint)
            for a in seen.attempts
            if a.rid == rid and a.seq > me.model_seq and a.model == model
        }
        usable: list[Target] = []
        earliest: float | None = None
        for account in pool.account_ids:
            if not pool.account(account).valid or account in me.avoid_accounts:
                continue
            for endpoint, health in pool.endpoints.items():
                target = (account, endpoint)
                if target in me.avoid:
                    continue
                until = now
                cd = pool.cooldown(account, model, now)
                rest = pool.rest(account, model, endpoint, now)
                until = max(until, cd.until if cd else now, rest.until if rest else now)
                until = max(until, health.blocked_until(now))
                if target in sent:
                    b = health.budget
                    tokens = min(
                        b.max_tokens,
                        health.tokens + max(0.0, now - health.refilled_at) * b.refill_per_s,
                    )
                    if tokens < 1:
                        until = max(until, now + (1 - tokens) / b.refill_per_s)
                if until <= now:
                    usable.append(target)
                elif earliest is None or until < earliest:
                    earliest = until
        return usable, earliest


def check_conservation(seen: Observed) -> list[str]:
    return [what for _, what in seen.wait_checks]


# 7. scope -----------------------------------------------------------------------------------------
def check_scope(seen: Observed) -> list[str]:
    """A failure changes only the state of its scope: only rate limits and quota rest an
    account x model (theirs), only capacity rests a target (its own), only account failures
    invalidate (their account), only endpoint failures open a breaker (theirs); a refused
    connection, a 5xx, a broken stream, a down token endpoint rest and invalidate nothing."""
    out = []
    for b in seen.brackets:
        assert b.after is not None
        scope = _scope(b)
        a = b.attempt
        cds = {k for k, v in b.after.cooldowns.items() if v > b.before.cooldowns.get(k, 0) + EPS}
        rests = {k for k, v in b.after.rests.items() if v > b.before.rests.get(k, 0) + EPS}
        invalid = set(b.after.invalid - b.before.invalid)
        opened = {
            e
            for e, (state, _, _) in b.after.breakers.items()
            if state == OPEN and b.before.breakers[e][0] == CLOSED
        }
        allowed_cds = {(a.account, a.model)} if a and scope == RATE else set()
        allowed_rests = {(a.account, a.model, a.endpoint)} if a and scope == CAPACITY else set()
        allowed_invalid = {a.account} if a and scope in (ACCOUNT, AUTH) else set()
        allowed_open = {a.endpoint} if a and scope == ENDPOINT else set()
        what = f"{b.rid} at {b.at}: {type(b.event).__name__} ({a.reply.name if a else '-'})"
        if cds - allowed_cds:
            out.append(f"{what} rested account x model {sorted(cds - allowed_cds)}")
        if rests - allowed_rests:
            out.append(f"{what} rested targets {sorted(rests - allowed_rests)}")
        if invalid - allowed_invalid:
            out.append(f"{what} invalidated {sorted(invalid - allowed_invalid)}")
        if opened - allowed_open:
            out.append(f"{what} opened the breaker of {sorted(opened - allowed_open)}")
    return out


# 8. recovery --------------------------------------------------------------------------------------
def check_recovery(seen: Observed) -> list[str]:
    """After the upstream healed and every stated reset and rest has passed, a request succeeds
    on its first attempt when some endpoint admits requests (when every endpoint is open it
    fails fast, with a retry-after of at most one probe interval), and the next one, a probe
    interval later, on its first attempt at the first endpoint: no penalty outlives its cause
    by more than one probe interval."""
    p = seen.scenario.policy
    out = []
    assert seen.final_pool is not None
    for rid, c in seen.clients.items():
        if not c.recovery:
            continue
        attempts = [a for a in seen.attempts if a.rid == rid]
        start = next(b for b in seen.brackets if b.rid == rid)
        if len(start.before.invalid) == len(seen.scenario.accounts):
            continue  # no account is valid: nothing can recover without a person
        admitting = [
            e
            for e, (state, probe_at, _) in start.before.breakers.items()
            if state == CLOSED or (state == OPEN and probe_at <= c.arrived)
        ]
        probe_s = probe_interval_s(p)
        if c.recovery == "first" and not admitting:  # every endpoint open: fail fast
            r = c.returned
            if r is None or r.status != 529 or (r.retry_after_s or 0) > math.ceil(probe_s) + 1:
                out.append(f"{rid} (arrived {c.arrived}): not a fast 529 until the probe: {r}")
            continue
        ok = c.returned is not None and c.returned.ok and not c.returned.placeholder
        first = attempts[0] if attempts else None
        if not ok or len(attempts) != 1:
            out.append(f"{rid} (arrived {c.arrived}): {len(attempts)} attempts, {c.returned}")
        elif c.recovery == "first" and c.finishes[0][0] > c.arrived + probe_s + 1.0:
            out.append(f"{rid}: succeeded at {c.finishes[0][0]}, more than a probe interval late")
        elif c.recovery == "second" and first is not None and first.endpoint != p.endpoints[0]:
            out.append(f"{rid}: first attempt at {first.endpoint}, not {p.endpoints[0]}")
    return out


# coverage -----------------------------------------------------------------------------------------
def rows_taken(seen: Observed) -> set[tuple[str, str, str | None]]:
    """(source, trigger, dest) of every step; an internal transition's dest is None."""
    return {
        (s.source, s.trigger, None if s.trigger == "content_received" else s.dest)
        for s in seen.steps
    }


def breaker_rows_taken(seen: Observed) -> set[tuple[str, str, str]]:
    """(source, trigger, dest) of every endpoint breaker transition seen across an engine call,
    the trigger read from the event (its attempt's endpoint and the scope of its answer)."""
    rows = set()
    for b in seen.brackets:
        assert b.after is not None
        a = b.attempt
        scope = _scope(b)
        for e, (before, _, _) in b.before.breakers.items():
            after = b.after.breakers[e][0]
            mine = a is not None and a.endpoint == e
            if before == OPEN and after == HALF_OPEN:
                rows.add((OPEN, "probe_granted", HALF_OPEN))
            elif mine and scope == ENDPOINT and isinstance(b.event, _FINAL):
                rows.add((before, "failure", after))
            elif mine and isinstance(b.event, StreamEnded) and scope == OK:
                continue  # the end of a normal stream: its opening was the answer
            elif mine and scope != TOKEN and isinstance(b.event, (*_FINAL, StreamOpened)):
                rows.add((before, "answer", after))
            elif before == HALF_OPEN and after == OPEN:
                rows.add((HALF_OPEN, "probe_abandoned", OPEN))
            elif before != after:
                rows.add((before, "?", after))
    return rows


ALL_CHECKS: dict[str, Callable[[Observed], list[str]]] = {
    "1 termination": check_termination,
    "2 no retry after commit": check_commit,
    "3 stated resets": check_stated_resets,
    "3 rests only extend": check_rests_only_extend,
    "3 dedup": check_dedup,
    "4 one outcome": check_one_outcome,
    "4 timers": check_timers,
    "6 work conservation": check_conservation,
    "7 scope": check_scope,
    "8 recovery": check_recovery,
}
