"""The trace corpus: hand-written scenarios, one per row of the decision table
(diagrams/transitions.md) and per engine-relevant defect of the JavaScript proxy
(reference/seed-behaviour.md §7), each with the outcome it must have.

A scenario is recorded through the real runner on the virtual clock: an `AccountPool` (with
the scenario's initial account state), a seeded `Engine`, a `Runner`, a scripted upstream
(per-account answers, consumed in order, the last one repeating) and a `TraceRecorder` whose
header carries the scenario's note and its expected outcome per request (`expect`).

`python -m tests.traces.corpus` rewrites every `tests/traces/<name>.jsonl` and fails when a
recording contradicts its expectation. `tests/test_trace_corpus.py` replays every trace with
`check` and compares the replayed outcomes with `expect`.

Expectation keys (each compared for equality, except `message_has`, a substring):
`ok`, `status`, `error_type`, `message`, `retry_after_s`, `model`, `committed`, `failure`,
`placeholder` (the outcome's fields); `sends` (every upstream attempt in order, as
"account@endpoint", "+refresh" when it asked for a fresh token); `relayed` (content pieces
relayed to the client); `ended_at` (virtual time of the outcome, s); `rests` (the cooldowns
the request put on accounts, as "account for <s>s: reason"); `invalidated` ("account: reason",
then the verify URL in brackets when there is one).

Known defects are marked, not hidden: `known_bug` names an engine defect a scenario shows, with
`as_is` (the values produced today where `expect` holds the right ones); `replay_defect` names
a replay defect (the recording is right, its replay diverges). The tests hold both strictly, so
a fix fails them until the mark is dropped.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.trace.format import Header, Trace, parse_lines
from adapters.trace.recorder import TraceRecorder
from engine.effects import SendAttempt
from engine.events import (
    Event,
    StreamOpened,
    UpstreamFailed,
    UpstreamUnreachable,
)
from engine.failures import UpstreamFacts
from engine.machine import Engine
from engine.policy import load_policy
from engine.pool import AccountPool
from engine.runner import Runner, VirtualClock
from engine.store import AccountRecord, CooldownRecord
from tests.fakes import Answer, RecordingClient, ScriptedTransport, error, ok
from tests.support import (
    AUTH_401,
    BAD_400,
    BANNED_403,
    FORBIDDEN_403,
    MODEL,
    NOT_FOUND_404,
    REVOKED_401,
    SERVER_500,
    TOO_LONG_400,
    VALIDATION_403,
    VERIFY_URL,
    capacity,
    quota_429,
    rate_limit_429,
)

DIRECTORY = Path(__file__).resolve().parent
SEED = 1
START = 0.0
WALL_START = 1_767_000_000.0
FLASH = "gemini-3-flash"
DOTTED = "gemini-3.1-pro-high"
REVOKED = "Token revoked - re-authentication required"
VERIFY = "Account requires verification"
BANNED = "Account banned — Gemini disabled for Terms of Service violation"
OUTCOME_KEYS = frozenset(
    {
        "ok",
        "status",
        "error_type",
        "message",
        "retry_after_s",
        "model",
        "committed",
        "failure",
        "placeholder",
    }
)
TRACE_KEYS = frozenset({"sends", "relayed", "ended_at", "rests", "invalidated"})
REQUIRED_KEYS = frozenset({"ok", "status", "error_type", "sends"})


# the scenario model ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Incoming:
    """One client request: its id, arrival time (virtual s), model, and when it leaves."""

    id: str = "r1"
    at: float = 0.0
    model: str = MODEL
    stream: bool = True
    leave_at: float | None = None


@dataclass(frozen=True)
class Scenario:
    name: str  # the behaviour, as a file name
    note: str  # one line
    expect: dict[str, dict[str, Any]]  # by request id
    requests: tuple[Incoming, ...] = (Incoming(),)
    accounts: tuple[str | AccountRecord, ...] = ("A", "B")
    scripts: dict[str, list[Answer]] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    #: A known engine defect this scenario shows: `expect` holds the right values, `as_is`
    #: what the engine produces today instead (by request and key).
    known_bug: str = ""
    as_is: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: A known replay defect: the recording is right, its replay diverges.
    replay_defect: str = ""

    @property
    def path(self) -> Path:
        return DIRECTORY / f"{self.name}.jsonl"


# initial account state ----------------------------------------------------------------------------
def resting(
    account: str, until: float, reason: str = "quota exhausted", model: str = MODEL
) -> AccountRecord:
    return AccountRecord(id=account, cooldowns={model: CooldownRecord(until=until, reason=reason)})


def invalid(account: str, reason: str = REVOKED, verify_url: str | None = None) -> AccountRecord:
    return AccountRecord(id=account, invalid_reason=reason, verify_url=verify_url)


def disabled(account: str) -> AccountRecord:
    return AccountRecord(id=account, enabled=False)


# upstream answers (tests.fakes.Answer, plus two kinds of our own) ---------------------------------
OPENED_ERROR = "opened-error"  # a 2xx stream that carries an error object before any content
OPENED_SILENT = "opened-silent"  # a 2xx stream that never sends anything
TOKEN_DOWN = "token-endpoint-down"  # the token endpoint failed transiently (HTTP 503)


def in_stream(facts: UpstreamFacts, **kw: Any) -> Answer:
    return Answer(OPENED_ERROR, facts=facts, **kw)


def opened_silent() -> Answer:
    return Answer(OPENED_SILENT)


def unreachable(**kw: Any) -> Answer:
    return Answer("unreachable", **kw)


def empty(**kw: Any) -> Answer:
    return Answer("empty", **kw)


def hang() -> Answer:
    return Answer("hang")


def drop(chunks: int) -> Answer:
    return Answer("drop", chunks=chunks)


class CorpusTransport(ScriptedTransport):
    """`ScriptedTransport` plus an error inside an opened stream, an opened stream that stays
    silent, and a token endpoint outage."""

    async def attempt(self, send: SendAttempt, payload: Any) -> AsyncIterator[Event]:
        answer = self.scripts.setdefault(send.account, [ok()])[0]
        if answer.kind not in (OPENED_ERROR, OPENED_SILENT, TOKEN_DOWN):
            async for event in super().attempt(send, payload):
                yield event
            return
        self.log.append((round(self.clock.now(), 6), send.account, send.endpoint))
        self._next(send.account)
        await asyncio.sleep(answer.delay)
        if answer.kind == TOKEN_DOWN:
            yield UpstreamUnreachable(reason="token endpoint answered HTTP 503")
            return
        yield StreamOpened()
        if answer.kind == OPENED_SILENT:
            await asyncio.Event().wait()  # until cancelled
        assert answer.facts is not None
        yield UpstreamFailed(facts=answer.facts, wall=self.clock.wall())


# expectations -------------------------------------------------------------------------------------
def served(*sends: str, **more: Any) -> dict[str, Any]:
    """A request that succeeded after exactly these upstream attempts."""
    return {"ok": True, "status": 200, "error_type": None, "sends": list(sends), **more}


def refused(status: int, error_type: str, *sends: str, **more: Any) -> dict[str, Any]:
    """A request that failed with `status` and `error_type` after these upstream attempts."""
    return {"ok": False, "status": status, "error_type": error_type, "sends": list(sends), **more}


def _seconds(value: float) -> str:
    return f"{round(value, 3):.3f}".rstrip("0").rstrip(".")


def observe(trace: Trace) -> dict[str, dict[str, Any]]:
    """What each request of `trace` did, under the expectation keys (see the module doc)."""
    seen: dict[str, dict[str, Any]] = {}
    for arrival in trace.of("arrival"):
        seen[arrival.request] = {"sends": [], "relayed": 0, "rests": [], "invalidated": []}
    for record in trace.of("effects"):
        mine = seen.setdefault(
            record.request, {"sends": [], "relayed": 0, "rests": [], "invalidated": []}
        )
        for effect in record.effects:
            kind = effect["type"]
            if kind == "SendAttempt":
                fresh = "+refresh" if effect["refresh_credentials"] else ""
                mine["sends"].append(f"{effect['account']}@{effect['endpoint']}{fresh}")
            elif kind == "RelayContent":
                mine["relayed"] += 1
            elif kind == "CoolDownAccount":
                rest = _seconds(effect["until"] - record.t)
                mine["rests"].append(f"{effect['account']} for {rest}s: {effect['reason']}")
            elif kind == "InvalidateAccount":
                url = f" ({effect['verify_url']})" if effect["verify_url"] else ""
                mine["invalidated"].append(f"{effect['account']}: {effect['reason']}{url}")
            elif kind == "Finish":
                mine.update(effect["outcome"])
                mine["ended_at"] = round(record.t, 3)
    return seen


def mismatches(
    expect: dict[str, dict[str, Any]],
    trace: Trace,
    as_is: dict[str, dict[str, Any]] | None = None,
) -> list[str]:
    """Where the requests of `trace` differ from `expect` (empty: as expected). A value listed
    in `as_is` (a known defect) is accepted instead of the expected one, and reported when the
    expected value appears: the defect is fixed, `as_is` must go."""
    seen = observe(trace)
    known = as_is or {}
    problems = [f"{rid}: no expectation" for rid in seen if rid not in expect]
    for rid, wanted in expect.items():
        got = seen.get(rid)
        if got is None or "ended_at" not in got:
            problems.append(f"{rid}: no outcome")
            continue
        problems += [f"{rid}: expect lacks {k!r}" for k in sorted(REQUIRED_KEYS - set(wanted))]
        for key, value in wanted.items():
            if key == "message_has":
                if value not in got["message"]:
                    problems.append(f"{rid}: message {got['message']!r} lacks {value!r}")
            elif key not in OUTCOME_KEYS | TRACE_KEYS:
                problems.append(f"{rid}: unknown expectation key {key!r}")
            elif key in known.get(rid, {}):
                if got[key] == value:
                    problems.append(f"{rid}: {key} is right now: the known bug is fixed")
                elif got[key] != known[rid][key]:
                    problems.append(f"{rid}: {key} is {got[key]!r}, expected {value!r}")
            elif got[key] != value:
                problems.append(f"{rid}: {key} is {got[key]!r}, expected {value!r}")
    return problems


# recording ----------------------------------------------------------------------------------------
def record(scenario: Scenario) -> list[str]:
    """Run `scenario` through the runner on the virtual clock; return its trace's lines."""
    policy = load_policy(overrides=dict(scenario.policy))
    clock = VirtualClock(start=START, wall_start=WALL_START)
    pool = AccountPool(policy, scenario.accounts, now=START)
    header = Header(
        policy=policy.model_dump(mode="json"),
        seed=SEED,
        start=START,
        wall_start=WALL_START,
        accounts=[pool.record(account) for account in pool.account_ids],
        note=scenario.note,
        expect=scenario.expect,
    )
    lines: list[str] = []
    recorder = TraceRecorder(lines.append, header)
    engine = Engine(policy, pool, rng=random.Random(SEED))
    engine.on_step = recorder.on_step
    transport = CorpusTransport(clock, scenario.scripts)
    runner = Runner(engine, transport, clock, recorder)

    async def one(incoming: Incoming) -> None:
        await asyncio.sleep(max(0.0, incoming.at - clock.now()))
        client = RecordingClient(clock, leave_at=incoming.leave_at)
        await runner.run(incoming.id, incoming.model, incoming.stream, client, incoming.id)

    async def main() -> None:
        await asyncio.gather(*(one(incoming) for incoming in scenario.requests))

    clock.run(main())
    return lines


# the scenarios ------------------------------------------------------------------------------------
def _budget(**more: Any) -> dict[str, Any]:
    """A small retry budget: 4 tokens, retries allowed while more than 2 remain."""
    return {"retry_budget": {"max_tokens": 4, "token_ratio": 0.5}, **more}


def _pair(first: float = 0.0, second: float = 1.0) -> tuple[Incoming, ...]:
    return (Incoming("r1", at=first), Incoming("r2", at=second))


SCENARIOS: list[Scenario] = [
    # Selecting ---------------------------------------------------------------------------------
    Scenario(
        "a-granted-account-streams-every-chunk-once-and-succeeds",
        "Selecting/account_granted -> Fetching -> Streaming -> Done: the first content commits",
        {"r1": served("A@daily", relayed=3, committed=True, ended_at=0.08)},
        scripts={"A": [ok(chunks=3)]},
    ),
    Scenario(
        "an-unhealthy-pool-is-served-after-the-hybrid-emergency-throttle",
        "Selecting/account_granted, throttle_fits -> Backoff: every account is below the "
        "usable health, so hybrid's emergency level grants one after 250 ms",
        {"r1": served("A@daily", ended_at=0.32)},
        policy={"health": {"initial": 40}},
    ),
    Scenario(
        "when-every-account-rests-briefly-the-request-waits-for-the-earliest-reset",
        "Selecting/pool_cooling_down, pool_wait_allowed -> RateLimitWait -> Selecting: A is "
        "free at 30 s, B at 60 s; the request waits for A (+500 ms) and is served",
        {"r1": served("A@daily", ended_at=30.57)},
        accounts=(resting("A", 30.0), resting("B", 60.0)),
    ),
    Scenario(
        "when-every-account-rests-too-long-a-configured-fallback-model-serves-the-request",
        "Selecting/pool_cooling_down, fallback_available -> Fallback -> Selecting: A rests an "
        "hour for the model; the request moves to its fallback model",
        {"r1": served("A@daily", model=FLASH, ended_at=0.07)},
        accounts=(resting("A", 3600.0),),
        policy={"fallback_enabled": True},
    ),
    Scenario(
        "when-every-account-rests-too-long-the-request-fails-429-with-retry-after",
        "Selecting/pool_cooling_down (otherwise) -> Failed: 429 rate_limit_error with the "
        "reset as retry-after, nothing sent",
        {
            "r1": refused(
                429,
                "rate_limit_error",
                retry_after_s=3600,
                message=f"Rate limited on {MODEL}: every account is cooling down. "
                "Quota will reset after 1h0m0s.",
                ended_at=0.0,
            )
        },
        accounts=(resting("A", 3600.0),),
    ),
    Scenario(
        "with-no-enabled-valid-account-the-request-fails-at-once-with-the-reasons",
        "Selecting/no_usable_account -> Failed: 500 naming why each account is unusable",
        {
            "r1": refused(
                500,
                "api_error",
                message=(
                    f"No usable account: 1 account invalid: {REVOKED} (A); 1 account disabled (B)."
                ),
                ended_at=0.0,
            )
        },
        accounts=(invalid("A"), disabled("B")),
    ),
    # Fetching ----------------------------------------------------------------------------------
    Scenario(
        "a-request-does-not-reuse-an-account-another-request-put-to-rest-meanwhile",
        "Fetching/account_withdrawn -> Switching: r1 waits 5 s to retry A's capacity; r2 puts "
        "A to rest for two hours meanwhile; r1 leaves A without sending and is served by B",
        {
            "r1": served("A@daily", "B@daily", rests=[], ended_at=5.12),
            "r2": served(
                "A@daily",
                "B@daily",
                rests=["A for 7384.5s: quota exhausted"],
                ended_at=6.12,
            ),
        },
        requests=_pair(0.0, 1.0),
        scripts={"A": [error(capacity(503)), error(quota_429(7_384_500))]},
        policy={"strategy": "sticky"},
    ),
    Scenario(
        "a-400-fails-at-once-with-the-upstreams-message",
        "Fetching/client_error -> Failed: never retried, the upstream's message passed on",
        {
            "r1": refused(
                400,
                "invalid_request_error",
                "A@daily",
                message=BAD_400.message,
                failure="invalid_request",
                ended_at=0.05,
            )
        },
        scripts={"A": [error(BAD_400)]},
    ),
    Scenario(
        "a-413-fails-at-once-as-request-too-large",
        "Fetching/client_error -> Failed: other 4xx are client errors too, 413 keeps its type",
        {"r1": refused(413, "request_too_large", "A@daily", failure="client_error")},
        scripts={"A": [error(UpstreamFacts(status=413, message="Request payload too large"))]},
    ),
    Scenario(
        "capacity-exhaustion-retries-the-same-endpoint-on-the-tiers-then-switches-briefly",
        "Fetching/capacity_exhausted -> CapacityWait (5, 10, 20, 30, 60 s) -> Fetching, then "
        "(retries spent) -> Switching with a 15 s +- 5 s capacity rest, never a quota lock",
        {
            "r1": served(
                *["A@daily"] * 6,
                "B@daily",
                rests=["A for 11.344s: capacity exhausted"],
                ended_at=125.37,
            )
        },
        scripts={"A": [error(capacity(503))]},
    ),
    Scenario(
        "a-capacity-wait-that-would-pass-the-deadline-switches-instead",
        "Fetching/capacity_exhausted, capacity_wait_fits fails -> Switching: with an 8 s "
        "deadline the 5 s tier fits, the 10 s tier does not",
        {
            "r1": served(
                "A@daily",
                "A@daily",
                "B@daily",
                rests=["A for 11.344s: capacity exhausted"],
                ended_at=5.17,
            )
        },
        scripts={"A": [error(capacity(503))]},
        policy={"deadline_ms": 8000},
    ),
    Scenario(
        "a-subsecond-reset-is-retried-on-the-same-endpoint",
        "Fetching/rate_limited, reset_is_subsecond -> RateLimitWait -> Fetching: 300 ms "
        "(+200 ms floor) later, the same account and endpoint",
        {"r1": served("A@daily", "A@daily", ended_at=0.62)},
        scripts={"A": [error(rate_limit_429(300)), ok()]},
    ),
    Scenario(
        "a-concurrent-429-inside-the-dedup-window-switches-and-escalates-once",
        "Fetching/rate_limited, is_duplicate_429 -> Switching: r1 and r2 share A; r2's 429 "
        "comes 0.95 s after r1's: no second strike, A rests the longer of the two",
        {
            "r1": served("A@daily", "B@daily", rests=["A for 60s: quota exhausted"]),
            "r2": served("A@daily", "B@daily", rests=["A for 60s: rate limited (concurrent 429)"]),
        },
        requests=_pair(0.0, 0.0),
        scripts={"A": [error(quota_429()), error(quota_429(), delay=1.0)]},
        policy={"strategy": "sticky"},
    ),
    Scenario(
        "a-short-rate-limit-backs-off-exponentially-on-the-same-account-then-switches",
        "Fetching/rate_limited, limit_is_short -> RateLimitWait 3, 6, 12 s on A, then "
        "(retries spent) -> Switching after the 5 s pause",
        {"r1": served(*["A@daily"] * 4, "B@daily", ended_at=26.27)},
        scripts={"A": [error(rate_limit_429(3000))]},
    ),
    Scenario(
        "quota-exhaustion-rests-the-account-until-its-reset-and-switches-after-5-s",
        "Fetching/rate_limited (otherwise) -> Switching -> Backoff (switch pause) -> "
        "Selecting: A rests until its stated reset (2 h 3 min)",
        {
            "r1": served(
                "A@daily",
                "B@daily",
                rests=["A for 7384.5s: quota exhausted"],
                ended_at=5.12,
            )
        },
        scripts={"A": [error(quota_429(7_384_500))]},
    ),
    Scenario(
        "a-quota-reset-is-honoured-to-the-millisecond",
        "Fetching/rate_limited -> Switching -> Selecting -> RateLimitWait: the only account "
        "is served again at its reset + 500 ms, not before",
        {"r1": served("A@daily", "A@daily", ended_at=90.62)},
        accounts=("A",),
        scripts={"A": [error(quota_429(90_000)), ok()]},
        policy={"strategy": "sticky", "switch_account_delay_ms": 0},
    ),
    Scenario(
        "a-transient-401-refreshes-the-token-once-then-gives-up-the-account",
        "Fetching/auth_expired, not_refreshed_yet -> Fetching with a fresh token; again -> "
        "Switching: B serves, A is neither invalidated nor rested",
        {
            "r1": served(
                "A@daily", "A@daily+refresh", "B@daily", rests=[], invalidated=[], ended_at=0.17
            )
        },
        scripts={"A": [error(AUTH_401)]},
    ),
    Scenario(
        "a-403-asking-for-verification-invalidates-the-account",
        "Fetching/account_unusable -> Switching: A invalid with its reason (and verify URL)",
        {"r1": served("A@daily", "B@daily", invalidated=[f"A: {VERIFY} ({VERIFY_URL})"])},
        scripts={"A": [error(VALIDATION_403)]},
    ),
    Scenario(
        "a-403-terms-of-service-ban-invalidates-the-account",
        "Fetching/account_unusable -> Switching: A invalid as banned, B serves",
        {"r1": served("A@daily", "B@daily", invalidated=[f"A: {BANNED}"])},
        scripts={"A": [error(BANNED_403)]},
    ),
    Scenario(
        "a-server-error-pauses-1-s-then-tries-the-next-endpoint-then-another-account",
        "Fetching/endpoint_failed, server_error_pause_fits -> Backoff -> Fetching (prod); "
        "no endpoint left -> Switching (consecutive failure counted) -> B",
        {"r1": served("A@daily", "A@prod", "B@daily", ended_at=1.17)},
        scripts={"A": [error(SERVER_500)]},
    ),
    Scenario(
        "an-unreachable-endpoint-moves-to-the-next-one-without-pausing",
        "Fetching/endpoint_failed, next_endpoint_exists -> Fetching: no pause for a "
        "connection failure",
        {"r1": served("A@daily", "A@prod", "B@daily", ended_at=0.17)},
        scripts={"A": [unreachable()]},
    ),
    Scenario(
        "three-consecutive-failures-rest-the-account-then-the-request-waits-for-it",
        "Fetching/endpoint_failed (otherwise) -> Switching x3: the third consecutive failure "
        "rests A 60 s; the request waits for it and is served",
        {
            "r1": served(
                *["A@daily", "A@prod"] * 3,
                "A@daily",
                rests=["A for 60s: consecutive failures"],
                ended_at=60.87,
            )
        },
        accounts=("A",),
        scripts={"A": [*[unreachable()] * 6, ok()]},
        policy={"strategy": "sticky"},
    ),
    Scenario(
        "an-outage-spends-the-retry-budget-and-the-request-stops-retrying",
        "Fetching/endpoint_failed, retry_budget_spent -> Failed: 529 once the pool-wide "
        "budget (4 tokens, retries while more than 2) is down to 2",
        {
            "r1": refused(
                529, "overloaded_error", "A@daily", "A@prod", failure="unreachable", ended_at=0.1
            )
        },
        accounts=("A",),
        scripts={"A": [unreachable()]},
        policy=_budget(),
    ),
    Scenario(
        "capacity-exhaustion-fails-at-once-when-an-outage-spent-the-retry-budget",
        "Fetching/capacity_exhausted, retry_budget_spent -> Failed: r1 spends the budget; "
        "r2's capacity error is not retried",
        {
            "r1": refused(529, "overloaded_error", "A@daily", "A@prod"),
            "r2": refused(
                529, "overloaded_error", "A@daily", failure="capacity_exhausted", ended_at=1.05
            ),
        },
        requests=_pair(),
        accounts=("A",),
        scripts={"A": [unreachable(), unreachable(), error(capacity(503))]},
        policy=_budget(),
    ),
    # Streaming ---------------------------------------------------------------------------------
    Scenario(
        "an-empty-stream-is-retried-after-500-ms-on-the-same-endpoint",
        "Streaming/stream_empty, empty_retry_left -> Backoff -> Fetching: same endpoint",
        {"r1": served("A@daily", "A@daily", ended_at=0.62)},
        scripts={"A": [empty(), ok()]},
    ),
    Scenario(
        "an-empty-stream-is-retried-twice-after-500-and-1000-ms-then-fails-overloaded",
        "Streaming/stream_empty (otherwise) -> Failed: 529 overloaded_error after 2 retries",
        {
            "r1": refused(
                529,
                "overloaded_error",
                *["A@daily"] * 3,
                failure="empty_response",
                ended_at=1.65,
            )
        },
        scripts={"A": [empty()]},
    ),
    Scenario(
        "an-empty-stream-ends-with-a-placeholder-only-if-configured",
        "Streaming/stream_empty, placeholder_configured -> Done: a placeholder answer that "
        "still names the failure",
        {"r1": served("A@daily", placeholder=True, failure="empty_response", ended_at=0.05)},
        scripts={"A": [empty()]},
        policy={"empty_response_placeholder": True, "max_empty_retries": 0},
    ),
    Scenario(
        "an-empty-stream-fails-at-once-when-an-outage-spent-the-retry-budget",
        "Streaming/stream_empty, retry_budget_spent -> Failed: r1 spends the budget; r2's "
        "empty stream is not retried",
        {
            "r1": refused(529, "overloaded_error", "A@daily", "A@prod"),
            "r2": refused(
                529, "overloaded_error", "A@daily", failure="empty_response", ended_at=1.05
            ),
        },
        requests=_pair(),
        accounts=("A",),
        scripts={"A": [unreachable(), unreachable(), empty()]},
        policy=_budget(),
    ),
    Scenario(
        "a-stream-cut-after-commit-fails-once-and-is-never-resent",
        "Streaming/stream_broken -> Failed: after commit, one error, nothing re-sent",
        {
            "r1": refused(
                500,
                "api_error",
                "A@daily",
                relayed=2,
                committed=True,
                failure="stream_broken",
                ended_at=0.07,
            )
        },
        scripts={"A": [drop(2)]},
    ),
    Scenario(
        "a-stream-broken-before-any-content-is-retried-on-the-next-endpoint",
        "Streaming/endpoint_failed, next_endpoint_exists -> Fetching: nothing was relayed, "
        "so the next endpoint is tried at once",
        {"r1": served("A@daily", "A@prod", relayed=2, ended_at=0.12)},
        scripts={"A": [drop(0), ok()]},
    ),
    Scenario(
        "a-server-error-inside-an-opened-stream-pauses-then-tries-the-next-endpoint",
        "Streaming/endpoint_failed, server_error_pause_fits -> Backoff -> Fetching (prod), "
        "which breaks before content: (otherwise) -> Switching -> B",
        {"r1": served("A@daily", "A@prod", "B@daily", ended_at=1.17)},
        scripts={"A": [in_stream(SERVER_500), drop(0)]},
    ),
    Scenario(
        "a-stream-broken-before-content-fails-at-once-when-an-outage-spent-the-retry-budget",
        "Streaming/endpoint_failed, retry_budget_spent -> Failed: r1 spends the budget; r2's "
        "stream breaks before content and is not retried",
        {
            "r1": refused(529, "overloaded_error", "A@daily", "A@prod"),
            "r2": refused(
                529, "overloaded_error", "A@daily", failure="stream_broken", ended_at=1.05
            ),
        },
        requests=_pair(),
        accounts=("A",),
        scripts={"A": [unreachable(), unreachable(), drop(0)]},
        policy=_budget(),
    ),
    Scenario(
        "a-400-inside-an-opened-stream-fails-at-once",
        "Streaming/client_error -> Failed: an error object before content is an error answer",
        {"r1": refused(400, "invalid_request_error", "A@daily", committed=False)},
        scripts={"A": [in_stream(BAD_400)]},
    ),
    Scenario(
        "capacity-exhaustion-inside-an-opened-stream-waits-then-switches-briefly",
        "Streaming/capacity_exhausted -> CapacityWait -> Fetching, then (one retry allowed) "
        "-> Switching with a short capacity rest",
        {
            "r1": served(
                "A@daily",
                "A@daily",
                "B@daily",
                rests=["A for 11.344s: capacity exhausted"],
                ended_at=5.17,
            )
        },
        scripts={"A": [in_stream(capacity(503))]},
        policy={"max_capacity_retries": 1},
    ),
    Scenario(
        "capacity-exhaustion-inside-a-stream-fails-at-once-when-an-outage-spent-the-budget",
        "Streaming/capacity_exhausted, retry_budget_spent -> Failed: 529, not retried",
        {
            "r1": refused(529, "overloaded_error", "A@daily", "A@prod"),
            "r2": refused(529, "overloaded_error", "A@daily", failure="capacity_exhausted"),
        },
        requests=_pair(),
        accounts=("A",),
        scripts={"A": [unreachable(), unreachable(), in_stream(capacity(503))]},
        policy=_budget(),
    ),
    Scenario(
        "rate-limits-inside-an-opened-stream-wait-like-rate-limit-answers",
        "Streaming/rate_limited: sub-second -> RateLimitWait, short -> RateLimitWait, short "
        "again (one retry allowed) -> Switching after the 5 s pause",
        {"r1": served("A@daily", "A@daily", "A@daily", "B@daily", ended_at=8.72)},
        scripts={
            "A": [
                in_stream(rate_limit_429(300)),
                in_stream(rate_limit_429(3000)),
                in_stream(rate_limit_429(3000)),
            ]
        },
        policy={"max_short_rate_limit_retries": 1},
    ),
    Scenario(
        "a-concurrent-429-inside-an-opened-stream-is-deduplicated",
        "Streaming/rate_limited, is_duplicate_429 -> Switching: as for 429 answers",
        {
            "r1": served("A@daily", "B@daily", rests=["A for 60s: quota exhausted"]),
            "r2": served("A@daily", "B@daily", rests=["A for 60s: rate limited (concurrent 429)"]),
        },
        requests=_pair(0.0, 0.0),
        scripts={"A": [in_stream(quota_429()), in_stream(quota_429(), delay=1.0)]},
        policy={"strategy": "sticky"},
    ),
    Scenario(
        "a-401-inside-an-opened-stream-refreshes-once-then-gives-up-the-account",
        "Streaming/auth_expired, not_refreshed_yet -> Fetching (fresh token); again -> Switching",
        {"r1": served("A@daily", "A@daily+refresh", "B@daily", invalidated=[])},
        scripts={"A": [in_stream(AUTH_401)]},
    ),
    Scenario(
        "a-verification-403-inside-an-opened-stream-invalidates-the-account",
        "Streaming/account_unusable -> Switching: A invalid, B serves",
        {"r1": served("A@daily", "B@daily", invalidated=[f"A: {VERIFY} ({VERIFY_URL})"])},
        scripts={"A": [in_stream(VALIDATION_403)]},
    ),
    # Switching and Fallback -------------------------------------------------------------------
    Scenario(
        "attempts-are-bounded-by-max-retries-or-accounts-plus-one",
        "Switching/account_released (otherwise) -> Failed: 5 account attempts (max(5, 2 + 1)) "
        "then the last failure mapped to the client's error",
        {
            "r1": refused(
                500,
                "api_error",
                *["A@daily", "A@prod", "B@daily", "B@prod"] * 2,
                "A@daily",
                "A@prod",
                failure="unreachable",
            )
        },
        scripts={"A": [unreachable()], "B": [unreachable()]},
        policy={"max_wait_before_error_ms": 0},
    ),
    Scenario(
        "when-attempts-run-out-a-configured-fallback-model-takes-over-once",
        "Switching/account_released, fallback_available -> Fallback -> Selecting: two "
        "attempts on the model fail, its fallback model is served",
        {"r1": served(*["A@daily", "A@prod"] * 2, "A@daily", model=FLASH)},
        accounts=("A",),
        scripts={"A": [*[error(SERVER_500)] * 4, ok()]},
        policy={
            "strategy": "sticky",
            "fallback_enabled": True,
            "max_retries": 1,
            "max_wait_before_error_ms": 0,
        },
    ),
    # Any state ---------------------------------------------------------------------------------
    Scenario(
        "a-client-that-leaves-during-a-wait-fails-499-and-cancels-the-timer",
        "CapacityWait/client_disconnected -> Failed: 499, the timer cancelled",
        {
            "r1": refused(
                499, "client_disconnected", "A@daily", failure="capacity_exhausted", ended_at=2.0
            )
        },
        requests=(Incoming(leave_at=2.0),),
        scripts={"A": [error(capacity(503))]},
    ),
    Scenario(
        "a-client-that-leaves-during-an-attempt-cancels-it-upstream",
        "Fetching/client_disconnected -> Failed: 499, the attempt in flight cancelled",
        {"r1": refused(499, "client_disconnected", "A@daily", committed=False, ended_at=1.0)},
        requests=(Incoming(leave_at=1.0),),
        scripts={"A": [hang()]},
    ),
    Scenario(
        "a-client-that-leaves-mid-stream-cancels-the-upstream-attempt",
        "Streaming/client_disconnected -> Failed: 499 after 4 relayed pieces, committed",
        {
            "r1": refused(
                499, "client_disconnected", "A@daily", relayed=4, committed=True, ended_at=3.5
            )
        },
        requests=(Incoming(leave_at=3.5),),
        scripts={"A": [Answer("ok", chunks=100, gap=1.0)]},
    ),
    Scenario(
        "a-hanging-upstream-ends-at-the-deadline-with-a-timeout",
        "Fetching/deadline_expired -> Failed: 504 timeout_error at exactly 30 s",
        {
            "r1": refused(
                504,
                "timeout_error",
                "A@daily",
                message="No answer from the upstream within the deadline (30s).",
                ended_at=30.0,
            )
        },
        scripts={"A": [hang()]},
        policy={"deadline_ms": 30_000},
    ),
    Scenario(
        "a-stream-that-opens-but-stays-silent-ends-at-the-deadline",
        "Streaming/deadline_expired -> Failed: 2xx headers, then nothing; uncommitted, so the "
        "deadline still applies: 504 at exactly 30 s",
        {"r1": refused(504, "timeout_error", "A@daily", committed=False, ended_at=30.0)},
        scripts={"A": [opened_silent()]},
        policy={"deadline_ms": 30_000},
    ),
    Scenario(
        "a-client-that-leaves-while-waiting-for-the-pool-fails-499",
        "RateLimitWait/client_disconnected -> Failed: 499 during the wait for A's reset",
        {"r1": refused(499, "client_disconnected", failure=None, ended_at=10.0)},
        requests=(Incoming(leave_at=10.0),),
        accounts=(resting("A", 30.0),),
    ),
    Scenario(
        "a-client-that-leaves-during-the-switch-pause-fails-499",
        "Backoff/client_disconnected -> Failed: 499 during the 5 s pause after a quota 429",
        {
            "r1": refused(
                499,
                "client_disconnected",
                "A@daily",
                failure="quota_exhausted",
                rests=["A for 60s: quota exhausted"],
                ended_at=2.0,
            )
        },
        requests=(Incoming(leave_at=2.0),),
        scripts={"A": [error(quota_429())]},
    ),
    Scenario(
        "a-capacity-wait-ending-exactly-at-the-deadline-is-not-started",
        "Fetching/capacity_exhausted -> Switching: a wait ending at the deadline would be "
        "pre-empted by it, so the request switches to B at once instead of timing out",
        {"r1": served("A@daily", "B@daily", ended_at=0.07)},
        scripts={"A": [error(capacity(503), delay=0.0)]},
        policy={"deadline_ms": 5000},
    ),
    Scenario(
        "a-server-error-pause-ending-exactly-at-the-deadline-is-skipped",
        "Fetching/endpoint_failed -> Fetching: the 1 s pause after a 500 would end at the "
        "deadline, so the next endpoint is tried at once (then B serves)",
        {"r1": served("A@daily", "A@prod", "B@daily", ended_at=0.07)},
        scripts={"A": [error(SERVER_500, delay=0.0)]},
        policy={"deadline_ms": 1000},
    ),
    Scenario(
        "a-pool-wait-ending-exactly-at-the-deadline-answers-429-at-once",
        "Selecting/pool_cooling_down -> Failed: A is free at 0.5 s but the pool wait (+500 ms) "
        "would end at the 1 s deadline: 429 with retry-after now, not 504 a second later",
        {"r1": refused(429, "rate_limit_error", ended_at=0.0)},
        accounts=(resting("A", 0.5),),
        policy={"deadline_ms": 1000},
    ),
    # Several requests, hours of cooldowns -----------------------------------------------------
    Scenario(
        "concurrent-requests-share-one-pool-and-avoid-accounts-others-put-to-rest",
        "Five requests at once on A, B, C: A's quota 429 sends r1 to C after the switch "
        "pause, B's 500 sends r2 to B's next endpoint; all are served, none is sent to A after "
        "it rests (r4's attempt on A was already in flight)",
        {
            "r1": served("A@daily", "C@daily", rests=["A for 60s: quota exhausted"], ended_at=5.12),
            "r2": served("B@daily", "B@prod", rests=[], ended_at=1.12),
            "r3": served("C@daily", ended_at=0.07),
            "r4": served("A@daily", ended_at=0.07),
            "r5": served("B@daily", ended_at=0.07),
        },
        requests=tuple(Incoming(f"r{i}") for i in range(1, 6)),
        accounts=("A", "B", "C"),
        scripts={"A": [error(quota_429()), ok()], "B": [error(SERVER_500), ok()]},
    ),
    Scenario(
        "quota-exhaustion-without-a-reset-climbs-the-quota-tiers-to-two-hours-until-a-success",
        "Quota 429s without a reset rest A 60 s, 5 min, 30 min, 2 h (one strike each); a "
        "success clears the strikes and the next 429 rests 60 s again (2.7 h in all)",
        {
            "r1": refused(
                429,
                "rate_limit_error",
                "A@daily",
                "A@daily",
                retry_after_s=295,
                rests=["A for 60s: quota exhausted", "A for 300s: quota exhausted"],
            ),
            "r2": refused(
                429,
                "rate_limit_error",
                "A@daily",
                retry_after_s=1795,
                rests=["A for 1800s: quota exhausted"],
            ),
            "r3": refused(
                429,
                "rate_limit_error",
                "A@daily",
                retry_after_s=7195,
                message=f"Rate limited on {MODEL}: every account is cooling down. "
                "Quota will reset after 1h59m55s.",
                rests=["A for 7200s: quota exhausted"],
            ),
            "r4": served("A@daily", ended_at=9600.07),
            "r5": served("A@daily", "A@daily", rests=["A for 60s: quota exhausted"]),
        },
        requests=(
            Incoming("r1", at=0.0),
            Incoming("r2", at=400.0),
            Incoming("r3", at=2300.0),
            Incoming("r4", at=9600.0),
            Incoming("r5", at=9700.0),
        ),
        accounts=("A",),
        scripts={"A": [*[error(quota_429())] * 4, ok(), error(quota_429()), ok()]},
        policy={"strategy": "sticky"},
    ),
    # The JavaScript proxy's defects (reference/seed-behaviour.md §7) ---------------------------
    Scenario(
        "js-defect-1-subsecond-resets-no-longer-spin-on-one-account-forever",
        "JS: 429 retryDelay 0.5 s forever kept one request on A (24 calls in 12 s), B never "
        "tried; here: 3 sub-second + 3 short retries, then B",
        {"r1": served(*["A@daily"] * 7, "B@daily")},
        scripts={"A": [error(rate_limit_429(500))]},
    ),
    Scenario(
        "js-defect-2-short-rate-limits-on-every-account-end-in-a-bounded-429",
        "JS: 429 retryDelay 3 s doubled forever on A (3, 6, 12, 24 s...); here every account "
        "answers it and the request ends with a 429 after bounded retries",
        {
            "r1": refused(
                429,
                "rate_limit_error",
                *(["A@daily"] * 4 + ["B@daily"] * 4) * 2,
                *["A@daily"] * 4,
                retry_after_s=3,
                message=f"Rate limited on {MODEL} after 5 attempts on 2 accounts. "
                "Quota will reset after 3s.",
                ended_at=126.75,
            )
        },
        scripts={"A": [error(rate_limit_429(3000))], "B": [error(rate_limit_429(3000))]},
    ),
    Scenario(
        "js-defect-3-zero-accounts-fail-at-once-instead-of-waiting-forever",
        "JS: 'All 0 account(s) rate-limited. Waiting 10s...' forever; here 500 at once",
        {
            "r1": refused(
                500,
                "api_error",
                message="No usable account: no accounts are configured.",
                ended_at=0.0,
            )
        },
        accounts=(),
    ),
    Scenario(
        "js-defect-3-all-accounts-disabled-fail-at-once-instead-of-waiting-forever",
        "JS: every account disabled -> endless 10.5 s wait loop; here 500 at once",
        {
            "r1": refused(
                500,
                "api_error",
                message="No usable account: 2 accounts disabled (A, B).",
                ended_at=0.0,
            )
        },
        accounts=(disabled("A"), disabled("B")),
    ),
    Scenario(
        "js-defect-4-waiting-for-short-pool-resets-is-counted-and-bounded",
        "JS: the all-rate-limited wait is uncounted (no bound on duration); here 2 pool "
        "waits allowed (max_pool_waits=2), then 429 with retry-after",
        {
            "r1": refused(
                429,
                "rate_limit_error",
                *["A@daily"] * 3,
                retry_after_s=30,
                message=f"Rate limited on {MODEL}: every account is cooling down. "
                "Quota will reset after 30s.",
                ended_at=61.15,
            )
        },
        accounts=("A",),
        scripts={"A": [error(rate_limit_429(30_000))]},
        policy={"strategy": "sticky", "switch_account_delay_ms": 0, "max_pool_waits": 2},
    ),
    Scenario(
        "js-defect-5-capacity-429s-never-escalate-into-a-two-hour-quota-lock",
        "JS: 429 MODEL_CAPACITY_EXHAUSTED x6 locked A for 2 h (read as quota); here A rests "
        "15 s +- 5 s for capacity and B serves",
        {"r1": served(*["A@daily"] * 6, "B@daily", rests=["A for 11.344s: capacity exhausted"])},
        scripts={"A": [error(capacity(429))]},
    ),
    Scenario(
        "js-defect-5-a-503-capacity-retry-waits-for-the-servers-retry-delay",
        "JS: 503 with RetryInfo 39 s waited the 5 s tier and retried into the same wall; here "
        "the retry waits max(39 s, tier)",
        {
            "r1": served(
                "A@daily", "A@daily", rests=["A for 39s: capacity exhausted"], ended_at=39.12
            )
        },
        scripts={"A": [error(capacity(503, retry_ms=39_000)), ok()]},
    ),
    Scenario(
        "js-defect-6-new-requests-never-wipe-the-pools-cooldowns",
        "JS: each POST /v1/messages wiped every rate limit when all accounts were limited; "
        "here three requests all see A's hour-long rest",
        {
            "r1": refused(429, "rate_limit_error", retry_after_s=3600),
            "r2": refused(429, "rate_limit_error", retry_after_s=3590),
            "r3": refused(429, "rate_limit_error", retry_after_s=3580),
        },
        requests=(Incoming("r1", at=0.0), Incoming("r2", at=10.0), Incoming("r3", at=20.0)),
        accounts=(resting("A", 3600.0),),
    ),
    Scenario(
        "js-defect-7-a-generic-403-rotates-to-another-account",
        "JS: 'API error 403' went straight to the client, B never tried; here next "
        "endpoint, then B",
        {"r1": served("A@daily", "A@prod", "B@daily")},
        scripts={"A": [error(FORBIDDEN_403)]},
    ),
    Scenario(
        "js-defect-7-a-404-rotates-to-another-account",
        "JS: 'API error 404' went straight to the client, B never tried; here next "
        "endpoint, then B",
        {"r1": served("A@daily", "A@prod", "B@daily")},
        scripts={"A": [error(NOT_FOUND_404)]},
    ),
    Scenario(
        "js-defect-8-a-stream-cut-after-commit-is-never-replayed-to-the-client",
        "JS: a drop after 1 chunk re-streamed from A@prod into the same response (two "
        "message_start, 'Hel' + 'Hello'); here one error, nothing re-sent",
        {
            "r1": refused(
                500,
                "api_error",
                "A@daily",
                relayed=1,
                committed=True,
                failure="stream_broken",
            )
        },
        scripts={"A": [drop(1), ok()]},
    ),
    Scenario(
        "js-defect-10-a-400-mentioning-250000-tokens-is-not-mistaken-for-a-5xx",
        "JS: the substring '500' made it a server error, retried on every account",
        {"r1": refused(400, "invalid_request_error", "A@daily", message=TOO_LONG_400.message)},
        scripts={"A": [error(TOO_LONG_400)]},
    ),
    Scenario(
        "js-defect-10-a-529-capacity-body-without-5xx-digits-is-still-capacity",
        "JS: a 529 body without '500'/'503' escaped to the client; here a capacity wait",
        {"r1": served("A@daily", "A@daily", ended_at=5.12)},
        scripts={"A": [error(capacity(529)), ok()]},
    ),
    Scenario(
        "js-defect-10-dotted-model-names-survive-in-rate-limit-messages",
        "JS: 'Rate limited on ([^.]+)' turned gemini-3.1-pro-high into gemini-3",
        {
            "r1": refused(
                429,
                "rate_limit_error",
                model=DOTTED,
                message_has=f"Rate limited on {DOTTED}:",
            )
        },
        requests=(Incoming(model=DOTTED),),
        accounts=(resting("A", 3600.0, model=DOTTED),),
    ),
    Scenario(
        "js-defect-10-an-error-message-mentioning-401-is-not-an-auth-failure",
        "JS: any message containing '401' became an auth error and a token refresh",
        {"r1": refused(400, "invalid_request_error", "A@daily", invalidated=[])},
        scripts={"A": [error(UpstreamFacts(status=400, message="max_tokens: 401 is too small"))]},
    ),
    Scenario(
        "js-defect-12-a-transient-401-retries-with-a-fresh-token-on-the-same-endpoint",
        "JS: the caches were cleared but the stale token went to the next endpoint",
        {"r1": served("A@daily", "A@daily+refresh", ended_at=0.12)},
        scripts={"A": [error(AUTH_401), ok()]},
    ),
    Scenario(
        "js-defect-12-a-revoked-account-is-not-tried-on-its-second-endpoint",
        "JS: after marking A invalid it still sent A's revoked token to prod",
        {"r1": served("A@daily", "B@daily", invalidated=[f"A: {REVOKED}"], ended_at=0.12)},
        scripts={"A": [error(REVOKED_401)]},
    ),
    Scenario(
        "js-defect-13-a-token-endpoint-outage-does-not-invalidate-the-account",
        "JS: a token-endpoint 5xx marked the account invalid; here it is a transient "
        "failure: the next endpoint, A stays valid",
        {"r1": served("A@daily", "A@prod", invalidated=[], rests=[])},
        scripts={"A": [Answer(TOKEN_DOWN), ok()]},
    ),
    Scenario(
        "js-defect-13-an-account-invalid-before-a-restart-stays-invalid",
        "JS: loadAccounts reset every invalid flag without a verify URL at each restart; "
        "here a revoked account loaded from the store is never tried",
        {"r1": served("B@daily")},
        accounts=(invalid("A"), "B"),
    ),
    Scenario(
        "js-defect-17-an-empty-answer-fails-as-overloaded-not-as-a-placeholder-success",
        "JS: empty answers ended in a 200 with placeholder text, hiding the failure; here "
        "(non-streaming too) 529 overloaded_error after 2 retries",
        {
            "r1": refused(
                529,
                "overloaded_error",
                *["A@daily"] * 3,
                placeholder=False,
                failure="empty_response",
            )
        },
        requests=(Incoming(stream=False),),
        scripts={"A": [empty()]},
    ),
]


def main() -> int:
    names = [scenario.name for scenario in SCENARIOS]
    assert len(set(names)) == len(names), "scenario names must be unique"
    failures = 0
    for scenario in SCENARIOS:
        lines = record(scenario)
        trace = parse_lines(lines, scenario.name)
        problems = mismatches(scenario.expect, trace, scenario.as_is)
        scenario.path.write_text("".join(lines), encoding="utf-8")
        print(f"wrote {scenario.path.relative_to(DIRECTORY.parent.parent)} ({len(lines)} lines)")
        if scenario.known_bug:
            print(f"  known engine bug (see as_is): {scenario.known_bug[:60]}...")
        if scenario.replay_defect:
            print(f"  known replay defect: {scenario.replay_defect[:60]}...")
        for problem in problems:
            failures += 1
            print(f"  UNEXPECTED {problem}")
    print(f"{len(SCENARIOS)} traces" + (f", {failures} unexpected outcome(s)" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
