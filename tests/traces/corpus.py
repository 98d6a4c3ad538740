"""The trace corpus: hand-written scenarios, one per row of the decision table
(diagrams/transitions.md) and per engine-relevant defect of the JavaScript proxy
(reference/seed-behaviour.md §7), plus the stories engine v2 was built for (serve as soon as
anything can serve: endpoint breakers, retry budgets, capacity per target, no switch pause),
each with the outcome it must have.

A scenario is recorded through the real runner on the virtual clock: an `AccountPool` (with
the scenario's initial account state), a seeded `Engine`, a `Runner`, a scripted upstream
(answers per target "account@endpoint" or per account, consumed in order, the last one
repeating; during an `outage` window every attempt is refused without consuming a script) and
a `TraceRecorder` whose header carries the scenario's note and its expected outcome per request
(`expect`).

`python -m tests.traces.corpus` rewrites every `tests/traces/<name>.jsonl` (and removes traces
no scenario records any more) and fails when a recording contradicts its expectation.
`tests/test_trace_corpus.py` replays every trace with `check` and compares the replayed
outcomes with `expect`.

Expectation keys (each compared for equality, except `message_has`, a substring):
`ok`, `status`, `error_type`, `message`, `retry_after_s`, `model`, `committed`, `failure`,
`placeholder` (the outcome's fields); `sends` (every upstream attempt in order, as
"account@endpoint", "+refresh" when it asked for a fresh token); `relayed` (content pieces
relayed to the client); `ended_at` (virtual time of the outcome, s); `rests` (the rests the
request put on the pool: an account x model cooldown as "account for <s>s: reason", a target
rest after capacity exhaustion as "account@endpoint for <s>s: reason"); `invalidated`
("account: reason", then the verify URL in brackets when there is one).

Each scenario's note ends with what the engine v1 did where v2 (DESIGN §2.1) changed it.

Known defects are marked, not hidden: `known_bug` names an engine defect a scenario shows, with
`as_is` (the values produced today where `expect` holds the right ones); `replay_defect` names
a replay defect (the recording is right, its replay diverges). The tests hold both strictly, so
a fix fails them until the mark is dropped.
"""

from __future__ import annotations

import asyncio
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.trace.format import Header, Trace, parse_lines
from adapters.trace.recorder import TraceRecorder
from engine.effects import SendAttempt
from engine.failures import FailureKind, UpstreamFacts
from engine.machine import Engine
from engine.policy import load_policy
from engine.pool import AccountPool
from engine.runner import Runner, VirtualClock
from engine.store import AccountRecord, CooldownRecord
from tests.fakes import (
    OPENED_ERROR,
    OPENED_SILENT,
    TOKEN_DOWN,
    Answer,
    RecordingClient,
    ScriptedTransport,
    error,
    ok,
)
from tests.support import (
    AUTH_401,
    BAD_400,
    BANNED_403,
    ENDPOINTS,
    FORBIDDEN_403,
    MODEL,
    NOT_FOUND_404,
    REVOKED_401,
    SERVER_500,
    TOO_LONG_400,
    VALIDATION_403,
    VERIFY_URL,
    capacity,
    google,
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
#: The token endpoint refused the proxy's OAuth client (invalid_client): its configuration.
OAUTH_REFUSED = UpstreamFacts(
    kind=FailureKind.CONFIGURATION,
    status=401,
    message="interlock's OAuth client cannot refresh access tokens: Google refused the OAuth "
    "client (invalid_client); check [oauth] client_id and client_secret",
)
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
    #: [start, end) in virtual s: every attempt sent then is refused (a network outage).
    outage: tuple[float, float] | None = None

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
    """`ScriptedTransport` with scripts per target ("A@daily", else per account "A") and an
    outage window (every attempt refused meanwhile)."""

    def __init__(
        self,
        clock: Any,
        scripts: dict[str, list[Answer]],
        outage: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(clock, scripts)
        self.outage = outage

    def _answer(self, send: SendAttempt) -> Answer:
        now = self.clock.now()
        if self.outage is not None and self.outage[0] <= now < self.outage[1]:
            return unreachable()
        target = f"{send.account}@{send.endpoint}"
        return self._next(target if target in self.scripts else send.account)


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
            elif kind == "RestTarget":
                rest = _seconds(effect["until"] - record.t)
                target = f"{effect['account']}@{effect['endpoint']}"
                mine["rests"].append(f"{target} for {rest}s: {effect['reason']}")
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
    policy = load_policy(overrides={"endpoints": ENDPOINTS, **scenario.policy})
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
    transport = CorpusTransport(clock, scenario.scripts, scenario.outage)
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
def _pair(first: float = 0.0, second: float = 1.0) -> tuple[Incoming, ...]:
    return (Incoming("r1", at=first), Incoming("r2", at=second))


CAPACITY = "capacity exhausted"
QUOTA = "quota exhausted"
RATE = "rate limited"
AUTH_AFTER_REFRESH = "Authentication failed after a token refresh"
BUDGET_SPENT = "retry budget spent"

#: An outage that spends the endpoints' retry budgets: one account, every attempt refused;
#: a retry of a target already sent to costs its endpoint one of its (here: 1) token, and a
#: token takes 100 s to refill. r1 (at 0): daily, prod, a 1 s pause, daily and prod again
#: (both tokens spent), a 2 s pause; then the next retry is ~98 s away, past the 60 s wait
#: budget: 529 with retry-after at 3.2 s.
SPENT_BUDGET = {
    "endpoint_budget": {"max_tokens": 1, "refill_per_s": 0.01},
    "max_wait_before_error_ms": 60_000,
}
OUTAGE_SENDS = ("A@daily", "A@prod") * 2
OUTAGE_R1 = refused(
    529,
    "overloaded_error",
    *OUTAGE_SENDS,
    failure="unreachable",
    retry_after_s=98,
    message_has=BUDGET_SPENT,
    rests=[],
    ended_at=3.2,
)


def _after_outage(answer: Answer) -> dict[str, list[Answer]]:
    """A's four outage answers (r1's), then `answer` for ever (r2's)."""
    return {"A": [*[unreachable()] * 4, answer]}


def _after_spent_budget(
    name: str, note: str, answer: Answer, *, failure: str, retry_after_s: int, ended_at: float
) -> Scenario:
    """r1 (at 0) is the outage that spends both endpoints' budgets (`OUTAGE_R1`); r2 (at 4 s)
    gets `answer` on its first attempt on each endpoint, which cost no token, and is refused
    with 529 once a retry would need a token (`failure`, `retry_after_s`, `ended_at`)."""
    r2 = refused(
        529,
        "overloaded_error",
        "A@daily",
        "A@prod",
        failure=failure,
        retry_after_s=retry_after_s,
        message_has=BUDGET_SPENT,
        ended_at=ended_at,
    )
    return Scenario(
        name,
        note,
        {"r1": OUTAGE_R1, "r2": r2},
        requests=_pair(0.0, 4.0),
        accounts=("A",),
        scripts=_after_outage(answer),
        policy=SPENT_BUDGET,
    )


def _daily_refusing() -> tuple[dict[str, dict[str, Any]], tuple[Incoming, ...]]:
    """100 sequential requests, one a second, `daily` refusing, `prod` healthy (sticky: A).

    By hand from the breaker (failures_to_open 3, first_probe_ms 1000, steady_probes 3, then
    doubling to 30 s): r001-r003 (t = 0, 1, 2) try daily first, each refusal counted; the third
    (at 2.05) opens it, probe due at 3.05. Requests before a due probe skip daily (prod at
    once, served at t + 0.07); the first request at or after it is the probe (daily refused,
    then prod, served at t + 0.12) and the probe's failure reopens daily for the same second
    three times, then for twice the interval: probes at 4 (next due 5.05), 6 (7.05), 8 (9.05),
    10 (12.05), 13 (17.05), 18 (26.05), 27 (43.05), 44 (74.05), 75 (105.05, after r100).
    """
    probes = {4.0, 6.0, 8.0, 10.0, 13.0, 18.0, 27.0, 44.0, 75.0}
    expect: dict[str, dict[str, Any]] = {}
    requests = []
    for i in range(100):
        t = float(i)
        rid = f"r{i + 1:03d}"
        requests.append(Incoming(rid, at=t))
        if t < 3.0 or t in probes:
            expect[rid] = served("A@daily", "A@prod", rests=[], ended_at=round(t + 0.12, 3))
        else:
            expect[rid] = served("A@prod", rests=[], ended_at=round(t + 0.07, 3))
    return expect, tuple(requests)


DAILY_REFUSING_EXPECT, DAILY_REFUSING_REQUESTS = _daily_refusing()

SCENARIOS: list[Scenario] = [
    # Selecting ---------------------------------------------------------------------------------
    Scenario(
        "a-granted-account-streams-every-chunk-once-and-succeeds",
        "Selecting/target_granted -> Fetching -> Streaming -> Done: the first content commits",
        {"r1": served("A@daily", relayed=3, committed=True, ended_at=0.08)},
        scripts={"A": [ok(chunks=3)]},
    ),
    Scenario(
        "an-unhealthy-pool-is-served-after-a-configured-hybrid-emergency-throttle",
        "Selecting/target_granted, throttle_fits -> Backoff -> Fetching (throttled): every "
        "account is below the usable health, so hybrid's emergency level grants one after the "
        "JS proxy's 250 ms, configured here (0 by default: no pause while a target is usable)",
        {"r1": served("A@daily", ended_at=0.32)},
        policy={"health": {"initial": 40}, "hybrid_emergency_throttle_ms": 250},
    ),
    Scenario(
        "when-every-account-rests-briefly-the-request-waits-for-the-earliest-reset",
        "Selecting/pool_cooling_down, cause_is_rate_limit, wait_allowed -> RateLimitWait -> "
        "Selecting: A is free at 30 s, B at 60 s; the request waits exactly until A's reset "
        "and is served (v1 added 500 ms to every pool wait)",
        {"r1": served("A@daily", ended_at=30.07)},
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
        "Fetching/account_withdrawn -> Switching: every account is unhealthy, so each grant "
        "comes after a configured 250 ms hybrid throttle; r1 (at 0) is granted A and its "
        "quota 429 at 0.30 rests A for 2 h; r2 (at 0.1, granted A too) leaves A at 0.35 "
        "without sending and is served by B (v1: r1 waited 5 s on a capacity retry of A "
        "meanwhile)",
        {
            "r1": served("A@daily", "B@daily", rests=[f"A for 7384.5s: {QUOTA}"], ended_at=0.62),
            "r2": served("B@daily", rests=[], ended_at=0.67),
        },
        requests=_pair(0.0, 0.1),
        scripts={"A": [error(quota_429(7_384_500))]},
        policy={
            "health": {"initial": 40},
            "weights": {"tokens": 0, "lru": 0},
            "hybrid_emergency_throttle_ms": 250,  # the JS proxy's; 0 by default
        },
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
        scripts={"A": [error(google(status=413, message="Request payload too large"))]},
    ),
    Scenario(
        "capacity-exhaustion-rests-the-target-for-the-first-tier-and-the-next-target-serves-at-once",
        "Fetching/capacity_exhausted -> Switching: without a server hint A@daily rests 5 s "
        "(the first tier), A@prod too, and B serves at once; never a quota lock (v1 retried "
        "A@daily on the 5, 10, 20, 30, 60 s tiers, then B at 125 s)",
        {
            "r1": served(
                "A@daily",
                "A@prod",
                "B@daily",
                rests=[f"A@daily for 5s: {CAPACITY}", f"A@prod for 5s: {CAPACITY}"],
                ended_at=0.17,
            )
        },
        scripts={"A": [error(capacity(503))]},
    ),
    Scenario(
        "a-capacity-wait-that-would-pass-the-deadline-answers-529-at-once",
        "Selecting/pool_cooling_down (capacity, wait not allowed) -> Failed: the only account's "
        "targets rest 10 s (retryDelay), past the 8 s deadline: 529 with retry-after now "
        "(v1 switched accounts instead of a capacity wait past the deadline)",
        {
            "r1": refused(
                529,
                "overloaded_error",
                "A@daily",
                "A@prod",
                retry_after_s=10,
                message=f"No capacity for {MODEL} on any account; the earliest is back in 9s.",
                rests=[f"A@daily for 10s: {CAPACITY}", f"A@prod for 10s: {CAPACITY}"],
                ended_at=0.1,
            )
        },
        accounts=("A",),
        scripts={"A": [error(capacity(503, retry_ms=10_000))]},
        policy={"deadline_ms": 8000},
    ),
    Scenario(
        "a-subsecond-reset-is-retried-on-the-same-endpoint",
        "Fetching/rate_limited -> Switching -> Selecting -> RateLimitWait: the only account "
        "rests 500 ms (300 ms + the 200 ms floor), then the same account and endpoint serve",
        {"r1": served("A@daily", "A@daily", rests=[f"A for 0.5s: {RATE}"], ended_at=0.62)},
        accounts=("A",),
        scripts={"A": [error(rate_limit_429(300)), ok()]},
    ),
    Scenario(
        "a-concurrent-429-inside-the-dedup-window-switches-and-escalates-once",
        "Fetching/rate_limited: r1 and r2 share A; r2's 429 comes 0.95 s after r1's, inside "
        "the dedup window: no second strike (60 s again, not the 5 min tier), the cooldown "
        "only extends (v1 named it 'rate limited (concurrent 429)')",
        {
            "r1": served("A@daily", "B@daily", rests=[f"A for 60s: {QUOTA}"], ended_at=0.12),
            "r2": served("A@daily", "B@daily", rests=[f"A for 60s: {QUOTA}"], ended_at=1.07),
        },
        requests=_pair(0.0, 0.0),
        scripts={"A": [error(quota_429()), error(quota_429(), delay=1.0)]},
        policy={"strategy": "sticky"},
    ),
    Scenario(
        "a-short-rate-limit-on-the-only-account-waits-its-stated-reset-each-time-without-doubling",
        "Fetching/rate_limited -> RateLimitWait: retryDelay 3 s twice, then served: each wait "
        "is the stated 3 s (v1 backed off exponentially on the same account, 3, 6, 12 s, then "
        "switched after a 5 s pause)",
        {"r1": served(*["A@daily"] * 3, rests=[f"A for 3s: {RATE}"] * 2, ended_at=6.17)},
        accounts=("A",),
        scripts={"A": [error(rate_limit_429(3000)), error(rate_limit_429(3000)), ok()]},
    ),
    Scenario(
        "quota-exhaustion-rests-the-account-until-its-reset-and-switches-at-once",
        "Fetching/rate_limited -> Switching -> Selecting: A rests until its stated reset "
        "(2 h 3 min) and B serves at once (v1 paused 5 s before switching)",
        {"r1": served("A@daily", "B@daily", rests=[f"A for 7384.5s: {QUOTA}"], ended_at=0.12)},
        scripts={"A": [error(quota_429(7_384_500))]},
    ),
    Scenario(
        "a-quota-reset-is-honoured-to-the-millisecond",
        "Fetching/rate_limited -> Switching -> Selecting -> RateLimitWait: the only account "
        "is served again exactly at its reset, not before (v1 added 500 ms)",
        {"r1": served("A@daily", "A@daily", rests=[f"A for 90s: {QUOTA}"], ended_at=90.12)},
        accounts=("A",),
        scripts={"A": [error(quota_429(90_000)), ok()]},
        policy={"strategy": "sticky"},
    ),
    Scenario(
        "a-transient-401-refreshes-the-token-once-then-invalidates-the-account",
        "Fetching/auth_expired, not_refreshed_yet -> Fetching with a fresh token; a 401 again "
        "-> Switching: A is invalid (a 401 after a refresh is the account's), never rested; "
        "B serves (v1 only gave A up for the request)",
        {
            "r1": served(
                "A@daily",
                "A@daily+refresh",
                "B@daily",
                rests=[],
                invalidated=[f"A: {AUTH_AFTER_REFRESH}"],
                ended_at=0.17,
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
        "a-server-error-moves-to-the-next-endpoint-then-another-account-without-pausing",
        "Fetching/endpoint_failed -> Switching: a 500 counts against the endpoint, not the "
        "account; prod at once, then B (v1 paused 1 s before the next endpoint)",
        {"r1": served("A@daily", "A@prod", "B@daily", rests=[], ended_at=0.17)},
        scripts={"A": [error(SERVER_500)]},
    ),
    Scenario(
        "an-unreachable-endpoint-moves-to-the-next-one-without-pausing",
        "Fetching/endpoint_failed -> Switching: no pause for a connection failure, nothing rests",
        {"r1": served("A@daily", "A@prod", "B@daily", rests=[], ended_at=0.17)},
        scripts={"A": [unreachable()]},
    ),
    Scenario(
        "consecutive-connection-failures-open-the-endpoints-breakers-and-never-rest-the-account",
        "Selecting/all_targets_failed: r1's only account is refused everywhere: two retry "
        "rounds (1 s, 2 s pauses), the third failure on each endpoint opens its breaker, then "
        "500; nothing rests; r2 at 5 s is daily's probe and is served (v1 rested A 60 s after "
        "3 consecutive failures and made the request wait for it)",
        {
            "r1": refused(
                500,
                "api_error",
                *["A@daily", "A@prod"] * 3,
                failure="unreachable",
                rests=[],
                ended_at=3.3,
            ),
            "r2": served("A@daily", rests=[], ended_at=5.07),
        },
        requests=_pair(0.0, 5.0),
        accounts=("A",),
        scripts={"A": [*[unreachable()] * 6, ok()]},
        policy={"strategy": "sticky"},
    ),
    Scenario(
        "an-outage-spends-the-endpoints-retry-budgets-and-the-request-answers-529-with-retry-after",
        "Selecting/pool_cooling_down (budget, wait not allowed) -> Failed: retrying the failed "
        "targets spent each endpoint's token (1, refilling in 100 s); the next retry is ~98 s "
        "away, past the 60 s wait budget (v1: a pool-wide budget ended it at 0.1 s)",
        {"r1": OUTAGE_R1},
        accounts=("A",),
        scripts={"A": [unreachable()]},
        policy=SPENT_BUDGET,
    ),
    _after_spent_budget(
        "capacity-exhaustion-is-not-retried-on-endpoints-whose-retry-budget-an-outage-spent",
        "r1 spends both endpoints' budgets; r2 (at 4 s) may still make its first attempts (a "
        "first attempt never costs a token): capacity on both; a retry would cost a token ~97 s "
        "away: 529 at once (v1: Fetching/capacity_exhausted, retry_budget_spent)",
        error(capacity(503)),
        failure="capacity_exhausted",
        retry_after_s=97,
        ended_at=4.1,
    ),
    # Streaming ---------------------------------------------------------------------------------
    Scenario(
        "an-empty-stream-on-the-only-target-is-retried-after-500-ms",
        "Streaming/stream_empty -> Switching -> Selecting/all_targets_failed -> Backoff: with "
        "one account and one endpoint, a retry round after 500 ms on the same target",
        {"r1": served("A@daily", "A@daily", ended_at=0.62)},
        accounts=("A",),
        scripts={"A": [empty(), ok()]},
        policy={"endpoints": ["daily"]},
    ),
    Scenario(
        "empty-streams-on-every-target-are-retried-in-two-rounds-after-500-and-1000-ms-then-fail-overloaded",
        "Selecting/all_targets_failed (no round left) -> Failed: 529 overloaded_error after "
        "every target (daily, prod) was tried in three rounds (v1: 2 retries on A@daily only)",
        {
            "r1": refused(
                529,
                "overloaded_error",
                *["A@daily", "A@prod"] * 3,
                failure="empty_response",
                message="The upstream returned an empty response 6 times.",
                ended_at=1.8,
            )
        },
        accounts=("A",),
        scripts={"A": [empty()]},
    ),
    Scenario(
        "an-empty-stream-ends-with-a-placeholder-only-if-configured",
        "Selecting/all_targets_failed, placeholder_due -> Done: no retry round configured; a "
        "placeholder answer that still names the failure",
        {
            "r1": served(
                "A@daily", "A@prod", placeholder=True, failure="empty_response", ended_at=0.1
            )
        },
        accounts=("A",),
        scripts={"A": [empty()]},
        policy={"empty_response_placeholder": True, "max_retry_rounds": 0},
    ),
    _after_spent_budget(
        "an-empty-stream-is-not-retried-on-endpoints-whose-retry-budget-an-outage-spent",
        "r1 spends both endpoints' budgets; r2's first attempts end empty, a 500 ms round "
        "pause, then a retry would cost a token ~96.5 s away: 529 (v1: "
        "Streaming/stream_empty, retry_budget_spent)",
        empty(),
        failure="empty_response",
        retry_after_s=97,
        ended_at=4.6,
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
        "Streaming/endpoint_failed -> Switching -> Selecting: nothing was relayed, so the "
        "next endpoint is tried at once",
        {"r1": served("A@daily", "A@prod", relayed=2, ended_at=0.12)},
        scripts={"A": [drop(0), ok()]},
    ),
    Scenario(
        "a-server-error-inside-an-opened-stream-moves-to-the-next-endpoint-at-once",
        "Streaming/endpoint_failed -> Switching: a 500 inside the stream, then prod breaks "
        "before content: B, no pause (v1 paused 1 s after the 500)",
        {"r1": served("A@daily", "A@prod", "B@daily", ended_at=0.17)},
        scripts={"A": [in_stream(SERVER_500), drop(0)]},
    ),
    _after_spent_budget(
        "a-stream-broken-before-content-is-not-retried-on-endpoints-whose-retry-budget-an-outage-spent",
        "r1 spends both endpoints' budgets; r2's streams break before content on both, a 1 s "
        "round pause, then a retry would cost a token ~96 s away: 529 (v1: "
        "Streaming/endpoint_failed, retry_budget_spent)",
        drop(0),
        failure="stream_broken",
        retry_after_s=96,
        ended_at=5.1,
    ),
    Scenario(
        "a-400-inside-an-opened-stream-fails-at-once",
        "Streaming/client_error -> Failed: an error object before content is an error answer",
        {"r1": refused(400, "invalid_request_error", "A@daily", committed=False)},
        scripts={"A": [in_stream(BAD_400)]},
    ),
    Scenario(
        "capacity-exhaustion-inside-an-opened-stream-rests-the-target-and-the-next-target-serves",
        "Streaming/capacity_exhausted -> Switching: as for capacity answers, each target rests "
        "5 s and B serves at once (v1 waited 5 s, retried A@daily, then switched)",
        {
            "r1": served(
                "A@daily",
                "A@prod",
                "B@daily",
                rests=[f"A@daily for 5s: {CAPACITY}", f"A@prod for 5s: {CAPACITY}"],
                ended_at=0.17,
            )
        },
        scripts={"A": [in_stream(capacity(503))]},
    ),
    _after_spent_budget(
        "capacity-inside-a-stream-is-not-retried-on-endpoints-whose-retry-budget-an-outage-spent",
        "r1 spends both endpoints' budgets; r2's capacity errors inside opened streams: a "
        "retry would cost a token ~97 s away: 529 at once (v1: Streaming/capacity_exhausted, "
        "retry_budget_spent)",
        in_stream(capacity(503)),
        failure="capacity_exhausted",
        retry_after_s=97,
        ended_at=4.1,
    ),
    Scenario(
        "a-rate-limit-inside-an-opened-stream-rests-the-account-like-a-429-answer",
        "Streaming/rate_limited -> Switching: A rests 500 ms and B serves at once (v1 waited "
        "on A: 500 ms, 3 s, 3 s, then a 5 s switch pause)",
        {"r1": served("A@daily", "B@daily", rests=[f"A for 0.5s: {RATE}"], ended_at=0.12)},
        scripts={"A": [in_stream(rate_limit_429(300))]},
    ),
    Scenario(
        "a-concurrent-429-inside-an-opened-stream-is-deduplicated",
        "Streaming/rate_limited: as for 429 answers, r2's 429 inside the dedup window adds no "
        "strike (v1 named it 'rate limited (concurrent 429)')",
        {
            "r1": served("A@daily", "B@daily", rests=[f"A for 60s: {QUOTA}"]),
            "r2": served("A@daily", "B@daily", rests=[f"A for 60s: {QUOTA}"]),
        },
        requests=_pair(0.0, 0.0),
        scripts={"A": [in_stream(quota_429()), in_stream(quota_429(), delay=1.0)]},
        policy={"strategy": "sticky"},
    ),
    Scenario(
        "a-401-inside-an-opened-stream-refreshes-once-then-invalidates-the-account",
        "Streaming/auth_expired, not_refreshed_yet -> Fetching (fresh token); again -> "
        "Switching: A invalid (v1 only gave A up for the request)",
        {
            "r1": served(
                "A@daily",
                "A@daily+refresh",
                "B@daily",
                invalidated=[f"A: {AUTH_AFTER_REFRESH}"],
            )
        },
        scripts={"A": [in_stream(AUTH_401)]},
    ),
    Scenario(
        "a-verification-403-inside-an-opened-stream-invalidates-the-account",
        "Streaming/account_unusable -> Switching: A invalid, B serves",
        {"r1": served("A@daily", "B@daily", invalidated=[f"A: {VERIFY} ({VERIFY_URL})"])},
        scripts={"A": [in_stream(VALIDATION_403)]},
    ),
    Scenario(
        "a-404-inside-an-opened-stream-avoids-the-target-like-a-404-answer",
        "Streaming/target_failed -> Switching: the request avoids A@daily, then A@prod, and B "
        "serves; nothing rests (new row in v2)",
        {"r1": served("A@daily", "A@prod", "B@daily", rests=[], invalidated=[], ended_at=0.17)},
        scripts={"A": [in_stream(NOT_FOUND_404)]},
    ),
    # Switching and Fallback -------------------------------------------------------------------
    Scenario(
        "attempts-are-bounded-by-max-retries-or-accounts-plus-one",
        "Switching/target_released (otherwise) -> Failed: max(5, 2 + 1) account attempts on "
        "each of 2 endpoints = 10 failed attempts (breakers kept closed), in three rounds; the "
        "last failure mapped to the client's error (v1: 10 attempts without pauses)",
        {
            "r1": refused(
                500,
                "api_error",
                "A@daily",
                "A@prod",
                "B@daily",
                "B@prod",
                "B@daily",
                "B@prod",
                "A@daily",
                "A@prod",
                "A@daily",
                "A@prod",
                failure="unreachable",
                message_has="All 10 attempts on 2 accounts failed",
                rests=[],
                ended_at=3.5,
            )
        },
        scripts={"A": [unreachable()], "B": [unreachable()]},
        policy={"breaker": {"failures_to_open": 100}},
    ),
    Scenario(
        "when-attempts-run-out-a-configured-fallback-model-takes-over-once",
        "Switching/target_released, fallback_available -> Fallback -> Selecting: the 4 "
        "attempts on the model (max(1, 1 + 1) x 2 endpoints) fail, its fallback model is served",
        {"r1": served(*["A@daily", "A@prod"] * 2, "A@daily", model=FLASH, ended_at=1.27)},
        accounts=("A",),
        scripts={"A": [*[error(SERVER_500)] * 4, ok()]},
        policy={"strategy": "sticky", "fallback_enabled": True, "max_retries": 1},
    ),
    Scenario(
        "when-every-target-failed-and-no-round-is-left-a-configured-fallback-model-serves",
        "Selecting/all_targets_failed, fallback_available -> Fallback: 500 on daily and prod, "
        "no retry round configured: the fallback model is served at once (new row in v2)",
        {"r1": served("A@daily", "A@prod", "A@daily", model=FLASH, ended_at=0.17)},
        accounts=("A",),
        scripts={"A": [error(SERVER_500), error(SERVER_500), ok()]},
        policy={"fallback_enabled": True, "max_retry_rounds": 0},
    ),
    Scenario(
        "when-attempts-run-out-on-empty-answers-a-configured-placeholder-ends-the-request",
        "Switching/target_released, placeholder_due -> Done: 4 empty answers (max(1, 1 + 1) x 2 "
        "endpoints, a 500 ms round between) and a placeholder answer (new row in v2)",
        {
            "r1": served(
                *["A@daily", "A@prod"] * 2,
                placeholder=True,
                failure="empty_response",
                ended_at=0.7,
            )
        },
        accounts=("A",),
        scripts={"A": [empty()]},
        policy={"empty_response_placeholder": True, "max_retries": 1},
    ),
    # Any state ---------------------------------------------------------------------------------
    Scenario(
        "a-client-that-leaves-during-a-wait-fails-499-and-cancels-the-timer",
        "CapacityWait/client_disconnected -> Failed: both of the only account's targets rest "
        "5 s; the client leaves during the wait: 499, the timer cancelled",
        {
            "r1": refused(
                499,
                "client_disconnected",
                "A@daily",
                "A@prod",
                failure="capacity_exhausted",
                ended_at=2.0,
            )
        },
        requests=(Incoming(leave_at=2.0),),
        accounts=("A",),
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
        "Switching/target_released, switch_pause_wanted -> Backoff/client_disconnected -> "
        "Failed: a 5 s switch pause configured (0 by default), B usable; the client leaves "
        "during it: 499",
        {
            "r1": refused(
                499,
                "client_disconnected",
                "A@daily",
                failure="quota_exhausted",
                rests=[f"A for 60s: {QUOTA}"],
                ended_at=2.0,
            )
        },
        requests=(Incoming(leave_at=2.0),),
        scripts={"A": [error(quota_429())]},
        policy={"switch_account_delay_ms": 5000},
    ),
    Scenario(
        "a-capacity-wait-ending-exactly-at-the-deadline-is-not-started",
        "Selecting/pool_cooling_down (capacity) -> Failed: the only account's targets rest "
        "5 s (first tier); a wait ending at the 5 s deadline would be pre-empted by it, so "
        "529 with retry-after at once, not 504 later (v1 switched to B)",
        {
            "r1": refused(
                529,
                "overloaded_error",
                "A@daily",
                "A@prod",
                retry_after_s=5,
                rests=[f"A@daily for 5s: {CAPACITY}", f"A@prod for 5s: {CAPACITY}"],
                ended_at=0.0,
            )
        },
        accounts=("A",),
        scripts={"A": [error(capacity(503), delay=0.0)]},
        policy={"deadline_ms": 5000},
    ),
    Scenario(
        "a-retry-round-pause-ending-exactly-at-the-deadline-is-skipped",
        "Selecting/all_targets_failed -> Failed: 500 on both targets; the 1 s round pause would "
        "end at the 1 s deadline, so the request fails at once (v1 skipped the 1 s pause after "
        "a 500 and tried the next endpoint)",
        {
            "r1": refused(
                500,
                "api_error",
                "A@daily",
                "A@prod",
                failure="server_error",
                ended_at=0.0,
            )
        },
        accounts=("A",),
        scripts={"A": [error(SERVER_500, delay=0.0)]},
        policy={"deadline_ms": 1000},
    ),
    Scenario(
        "a-pool-wait-ending-exactly-at-the-deadline-answers-429-at-once",
        "Selecting/pool_cooling_down -> Failed: A is free at 1 s, and the wait would end at "
        "the 1 s deadline: 429 with retry-after now, not 504 a second later",
        {"r1": refused(429, "rate_limit_error", retry_after_s=1, ended_at=0.0)},
        accounts=(resting("A", 1.0),),
        policy={"deadline_ms": 1000},
    ),
    # Several requests, hours of cooldowns -----------------------------------------------------
    Scenario(
        "concurrent-requests-share-one-pool-and-avoid-accounts-others-put-to-rest",
        "Five requests at once on A, B, C: A's quota 429 sends r1 to C at once, B's 500 sends "
        "r2 to B's next endpoint; all are served, none is sent to A after it rests (r4's "
        "attempt on A was already in flight) (v1 paused r1 5 s)",
        {
            "r1": served("A@daily", "C@daily", rests=[f"A for 60s: {QUOTA}"], ended_at=0.12),
            "r2": served("B@daily", "B@prod", rests=[], ended_at=0.12),
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
        "Quota 429s without a reset rest A 60 s, 5 min, 30 min, 2 h (one strike each); r1 "
        "waits out the 60 s and fails at the 5 min; a success clears the strikes and the next "
        "429 rests 60 s again (2.7 h in all; v1 retry-afters were 5 s shorter)",
        {
            "r1": refused(
                429,
                "rate_limit_error",
                "A@daily",
                "A@daily",
                retry_after_s=300,
                rests=[f"A for 60s: {QUOTA}", f"A for 300s: {QUOTA}"],
                ended_at=60.1,
            ),
            "r2": refused(
                429,
                "rate_limit_error",
                "A@daily",
                retry_after_s=1800,
                rests=[f"A for 1800s: {QUOTA}"],
                ended_at=400.05,
            ),
            "r3": refused(
                429,
                "rate_limit_error",
                "A@daily",
                retry_after_s=7200,
                message=f"Rate limited on {MODEL}: every account is cooling down. "
                "Quota will reset after 2h0m0s.",
                rests=[f"A for 7200s: {QUOTA}"],
                ended_at=2300.05,
            ),
            "r4": served("A@daily", ended_at=9600.07),
            "r5": served("A@daily", "A@daily", rests=[f"A for 60s: {QUOTA}"], ended_at=9760.12),
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
    # Issue 8: serve as soon as anything can serve (v2) -----------------------------------------
    Scenario(
        "one-endpoint-refusing-connections-is-skipped-once-its-breaker-opens-and-probed-after-the-interval",
        "100 sequential requests, daily refusing every connection, prod healthy: all served; "
        "daily's breaker opens after 3 refusals and is probed after 1, 2, 4, 8, 16, 30 s "
        "(v1 tried daily first on every request: 100 refused connections)",
        DAILY_REFUSING_EXPECT,
        requests=DAILY_REFUSING_REQUESTS,
        scripts={"A@daily": [unreachable()], "B@daily": [unreachable()]},
        policy={"strategy": "sticky"},
    ),
    Scenario(
        "a-3-second-network-blip-is-served-within-a-probe-interval-of-the-upstreams-return",
        "Every target refuses connections from 0 to 3 s; a client gives up after 0.9 s and "
        "retries every second: r1 tries all four targets; r2's refusals open both breakers and "
        "it answers 529 at once with retry-after until the next probe (every endpoint open: "
        "fail fast); r3 arrives just before the probes are due and gets 529 too; r4, at the "
        "upstream's return, is daily's probe and is served at 3.07 s; no account ever rests "
        "(v1 rested A and B for 60 s after 3 consecutive connection failures each: the "
        "client's retries got 429s for a minute)",
        {
            "r1": refused(
                499,
                "client_disconnected",
                "A@daily",
                "A@prod",
                "B@daily",
                "B@prod",
                rests=[],
                ended_at=0.9,
            ),
            "r2": refused(529, "overloaded_error", "B@daily", "B@prod", rests=[], ended_at=1.1),
            "r3": refused(529, "overloaded_error", rests=[], ended_at=2.0),
            "r4": served("B@daily", rests=[], ended_at=3.07),
            "r5": served("B@daily", rests=[], ended_at=4.07),
        },
        requests=tuple(Incoming(f"r{i + 1}", at=float(i), leave_at=i + 0.9) for i in range(5)),
        outage=(0.0, 3.0),
        policy={"strategy": "sticky"},
    ),
    Scenario(
        "capacity-with-a-long-hint-on-one-account-is-served-at-once-by-another-account",
        "A answers capacity with retryDelay 40 s on both endpoints while B and C are free: "
        "A's targets rest 40 s and B serves at once (v1 waited the 40 s on A@daily)",
        {
            "r1": served(
                "A@daily",
                "A@prod",
                "B@daily",
                rests=[f"A@daily for 40s: {CAPACITY}", f"A@prod for 40s: {CAPACITY}"],
                ended_at=0.17,
            )
        },
        accounts=("A", "B", "C"),
        scripts={"A": [error(capacity(503, retry_ms=40_000))]},
    ),
    Scenario(
        "capacity-with-a-3-s-hint-on-the-only-target-is-served-after-3-s",
        "Selecting/pool_cooling_down, cause_is_capacity -> CapacityWait: the only target "
        "rests for the stated 3 s and is served then (v1 waited max(3 s, the 5 s tier))",
        {
            "r1": served(
                "A@daily",
                "A@daily",
                rests=[f"A@daily for 3s: {CAPACITY}"],
                ended_at=3.12,
            )
        },
        accounts=("A",),
        scripts={"A": [error(capacity(503, retry_ms=3000)), ok()]},
        policy={"endpoints": ["daily"]},
    ),
    Scenario(
        "endless-short-rate-limits-on-one-account-are-served-at-once-by-another",
        "A answers 429 retryDelay 2 s for ever, B is healthy: A rests 2 s and B serves at once "
        "(v1 retried A 3 times backing off 2, 4, 8 s, then paused 5 s before B: 19 s)",
        {"r1": served("A@daily", "B@daily", rests=[f"A for 2s: {RATE}"], ended_at=0.12)},
        scripts={"A": [error(rate_limit_429(2000))]},
    ),
    Scenario(
        "quota-exhaustion-on-two-accounts-fails-over-to-the-third-without-pausing",
        "A and B are quota-exhausted for an hour: each rests until its reset and C serves at "
        "0.17 s (v1 paused 5 s before each switch: 10.17 s)",
        {
            "r1": served(
                "A@daily",
                "B@daily",
                "C@daily",
                rests=[f"A for 3600s: {QUOTA}", f"B for 3600s: {QUOTA}"],
                ended_at=0.17,
            )
        },
        accounts=("A", "B", "C"),
        scripts={"A": [error(quota_429(3_600_000))], "B": [error(quota_429(3_600_000))]},
    ),
    Scenario(
        "when-every-account-is-quota-exhausted-for-an-hour-streaming-and-not-get-429-with-retry-after-at-once",
        "A and B quota-exhausted (1 h): r1 (streaming) tries both and gets 429 with retry-after "
        "at 0.1 s; r2 (non-streaming) at 1 s gets it without sending (v1 paused 5 s before "
        "switching to B, then answered)",
        {
            "r1": refused(
                429,
                "rate_limit_error",
                "A@daily",
                "B@daily",
                retry_after_s=3600,
                message=f"Rate limited on {MODEL}: every account is cooling down. "
                "Quota will reset after 59m59s.",
                rests=[f"A for 3600s: {QUOTA}", f"B for 3600s: {QUOTA}"],
                ended_at=0.1,
            ),
            "r2": refused(429, "rate_limit_error", retry_after_s=3600, rests=[], ended_at=1.0),
        },
        requests=(Incoming("r1", at=0.0), Incoming("r2", at=1.0, stream=False)),
        scripts={"A": [error(quota_429(3_600_000))], "B": [error(quota_429(3_600_000))]},
    ),
    Scenario(
        "capacity-on-every-account-without-a-hint-ends-within-the-wait-budget-with-529-and-retry-after",
        "A and B answer capacity without a hint everywhere: each target rests on the tiers "
        "(5 s, then 10 s, ...), the request waits for the earliest one each time and stops at "
        "its 10 attempts (max(5, 2 + 1) x 2 endpoints): 529 with retry-after at 15.2 s "
        "(v1 retried A@daily on the tiers, then B: over 250 s)",
        {
            "r1": refused(
                529,
                "overloaded_error",
                *["A@daily", "A@prod", "B@daily", "B@prod"] * 2,
                "A@daily",
                "A@prod",
                failure="capacity_exhausted",
                retry_after_s=1,
                ended_at=15.2,
            )
        },
        scripts={"A": [error(capacity(503))], "B": [error(capacity(503))]},
        policy={"strategy": "sticky"},
    ),
    Scenario(
        "a-single-500-after-an-outage-is-served-by-the-next-endpoint-at-once",
        "r1 rides out a 3 s outage (retry rounds) and is served on its return; r2's daily "
        "answers one 500: prod serves at once (v1 paused 1 s, or answered 529 once the outage "
        "had spent its pool-wide retry budget)",
        {
            "r1": served(*["A@daily", "A@prod"] * 2, "A@daily", rests=[], ended_at=3.27),
            "r2": served("A@daily", "A@prod", rests=[], ended_at=5.12),
        },
        requests=_pair(0.0, 5.0),
        accounts=("A",),
        scripts={"A@daily": [ok(), error(SERVER_500), ok()]},
        outage=(0.0, 3.0),
    ),
    Scenario(
        "an-unreachable-token-endpoint-changes-nothing-persistent",
        "A's token endpoint is down for r1's three tries (retry rounds after 1 s and 2 s): 500; "
        "A is neither invalid nor rested and daily's breaker did not count it, so r2 is served "
        "by A@daily (v1 counted the token failures as connection failures and rested A 60 s "
        "after the third)",
        {
            "r1": refused(
                500,
                "api_error",
                *["A@daily"] * 3,
                failure="credentials_unavailable",
                rests=[],
                invalidated=[],
                ended_at=3.15,
            ),
            "r2": served("A@daily", rests=[], invalidated=[], ended_at=4.07),
        },
        requests=_pair(0.0, 4.0),
        accounts=("A",),
        scripts={"A": [*[Answer(TOKEN_DOWN)] * 3, ok()]},
    ),
    Scenario(
        "a-refused-oauth-client-fails-at-once-and-changes-nothing",
        "the token endpoint refuses the proxy's OAuth client (invalid_client): the proxy's "
        "configuration, not A's fault: r1 fails at once (no retry round, no other endpoint), "
        "A is neither invalid nor rested and daily's breaker did not count it; r2 (the client "
        "fixed) is served by A@daily (v1 marked every account revoked)",
        {
            "r1": refused(
                500,
                "api_error",
                "A@daily",
                failure="configuration",
                rests=[],
                invalidated=[],
                ended_at=0.05,
            ),
            "r2": served("A@daily", rests=[], invalidated=[], ended_at=1.07),
        },
        requests=_pair(0.0, 1.0),
        accounts=("A",),
        scripts={"A": [error(OAUTH_REFUSED), ok()]},
    ),
    Scenario(
        "a-probe-whose-client-leaves-reopens-the-endpoint-for-the-next-request",
        "daily refuses r1 three times (opens at 3.15 s); r2 at 5 s is the probe, hangs, and "
        "its client leaves at 6 s: the probe is abandoned, daily open again with its probe due "
        "at once; r3 at 6.5 s probes and is served",
        {
            "r1": refused(500, "api_error", *["A@daily"] * 3, failure="unreachable", ended_at=3.15),
            "r2": refused(499, "client_disconnected", "A@daily", ended_at=6.0),
            "r3": served("A@daily", ended_at=6.57),
        },
        requests=(
            Incoming("r1", at=0.0),
            Incoming("r2", at=5.0, leave_at=6.0),
            Incoming("r3", at=6.5),
        ),
        accounts=("A",),
        scripts={"A": [*[unreachable()] * 3, hang(), ok()]},
        policy={"endpoints": ["daily"]},
    ),
    Scenario(
        "a-spent-endpoint-budget-makes-a-retry-wait-for-the-next-token",
        "Selecting/pool_cooling_down, cause_is_budget, wait_allowed -> Backoff: the only "
        "target answers 500 twice; round 1 (after 1 s) pays daily's only token, round 2 "
        "(after 2 s) finds the budget empty (0.1 token/s) and waits until 11.05 s for the "
        "next token, then is served (v1 had one pool-wide budget that never refilled)",
        {"r1": served(*["A@daily"] * 3, ended_at=11.12)},
        accounts=("A",),
        scripts={"A": [error(SERVER_500), error(SERVER_500), ok()]},
        policy={"endpoints": ["daily"], "endpoint_budget": {"max_tokens": 1, "refill_per_s": 0.1}},
    ),
    Scenario(
        "answers-from-requests-in-flight-when-the-breaker-opened-count-too",
        "Breaker open/failure -> open and open/answer -> closed: r1 waits on daily; r2's "
        "refusal opens it (failures_to_open 1) and prod serves r2; r3, sent to daily before it "
        "opened, is refused too (it stays open) and prod serves it; r1's answer at 0.5 s shows "
        "daily is up and closes it",
        {
            "r1": served("A@daily", ended_at=0.52),
            "r2": served("A@daily", "A@prod", ended_at=0.22),
            "r3": served("A@daily", "A@prod", ended_at=0.29),
        },
        requests=(Incoming("r1", at=0.0), Incoming("r2", at=0.1), Incoming("r3", at=0.12)),
        accounts=("A",),
        scripts={
            "A@daily": [ok(delay=0.5), unreachable(), unreachable(delay=0.1)],
            "A@prod": [ok()],
        },
        policy={"strategy": "sticky", "breaker": {"failures_to_open": 1}},
    ),
    # The JavaScript proxy's defects (reference/seed-behaviour.md §7) ---------------------------
    Scenario(
        "js-defect-1-subsecond-resets-no-longer-spin-on-one-account-forever",
        "JS: 429 retryDelay 0.5 s forever kept one request on A (24 calls in 12 s), B never "
        "tried; here A rests 500 ms and B serves at once (v1: 6 retries on A, then B)",
        {"r1": served("A@daily", "B@daily", rests=[f"A for 0.5s: {RATE}"], ended_at=0.12)},
        scripts={"A": [error(rate_limit_429(500))]},
    ),
    Scenario(
        "js-defect-2-short-rate-limits-on-every-account-end-in-a-bounded-429",
        "JS: 429 retryDelay 3 s doubled forever on A (3, 6, 12, 24 s...); here every account "
        "answers it: the request waits each stated 3 s for the earliest account, gives an "
        "account up after 3 retries, and ends after its 10 attempts with a 429; from the 7th "
        "attempt both accounts' health is below hybrid's usable level, and hybrid's emergency "
        "level grants them without a pause (0 by default; v1: 126.75 s)",
        {
            "r1": refused(
                429,
                "rate_limit_error",
                *["A@daily", "B@daily"] * 5,
                retry_after_s=3,
                message=f"Rate limited on {MODEL} after 10 attempts on 2 accounts. "
                "Quota will reset after 2s.",
                ended_at=12.3,
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
        "waits allowed (max_pool_waits=2), then 429 with retry-after (v1 ended 1 s later)",
        {
            "r1": refused(
                429,
                "rate_limit_error",
                *["A@daily"] * 3,
                retry_after_s=30,
                message=f"Rate limited on {MODEL}: every account is cooling down. "
                "Quota will reset after 30s.",
                ended_at=60.15,
            )
        },
        accounts=("A",),
        scripts={"A": [error(rate_limit_429(30_000))]},
        policy={"strategy": "sticky", "max_pool_waits": 2},
    ),
    Scenario(
        "js-defect-5-capacity-429s-never-escalate-into-a-two-hour-quota-lock",
        "JS: 429 MODEL_CAPACITY_EXHAUSTED x6 locked A for 2 h (read as quota); here each of A's "
        "targets rests 5 s for capacity, A itself never, and B serves (v1: 6 tries on A@daily, "
        "then an 11 s rest of A)",
        {
            "r1": served(
                "A@daily",
                "A@prod",
                "B@daily",
                rests=[f"A@daily for 5s: {CAPACITY}", f"A@prod for 5s: {CAPACITY}"],
            )
        },
        scripts={"A": [error(capacity(429))]},
    ),
    Scenario(
        "js-defect-5-a-503-capacity-retry-waits-for-the-servers-retry-delay",
        "JS: 503 with RetryInfo 39 s waited the 5 s tier and retried into the same wall; here "
        "the only account's targets rest the stated 39 s and the request waits exactly that",
        {
            "r1": served(
                "A@daily",
                "A@prod",
                "A@daily",
                rests=[f"A@daily for 39s: {CAPACITY}", f"A@prod for 39s: {CAPACITY}"],
                ended_at=39.12,
            )
        },
        accounts=("A",),
        scripts={
            "A": [
                error(capacity(503, retry_ms=39_000)),
                error(capacity(503, retry_ms=39_000)),
                ok(),
            ]
        },
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
        "JS: a 529 body without '500'/'503' escaped to the client; here capacity: A@daily "
        "rests 5 s and A@prod serves at once (v1 waited 5 s and retried A@daily)",
        {"r1": served("A@daily", "A@prod", rests=[f"A@daily for 5s: {CAPACITY}"], ended_at=0.12)},
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
        scripts={"A": [error(google(status=400, message="max_tokens: 401 is too small"))]},
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
        "js-defect-13-a-token-endpoint-outage-does-not-invalidate-the-account-another-serves",
        "JS: a token-endpoint 5xx marked the account invalid; here it is the token endpoint's "
        "failure: A stays valid and unrested, the request moves to B (v1 tried A@prod)",
        {"r1": served("A@daily", "B@daily", invalidated=[], rests=[], ended_at=0.12)},
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
        "(non-streaming too) 529 overloaded_error once every target answered empty in three "
        "rounds (v1: 2 retries on A@daily)",
        {
            "r1": refused(
                529,
                "overloaded_error",
                *["A@daily", "A@prod"] * 3,
                placeholder=False,
                failure="empty_response",
            )
        },
        requests=(Incoming(stream=False),),
        accounts=("A",),
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
    for stale in sorted(set(DIRECTORY.glob("*.jsonl")) - {s.path for s in SCENARIOS}):
        stale.unlink()
        print(f"removed {stale.relative_to(DIRECTORY.parent.parent)} (no scenario)")
    print(f"{len(SCENARIOS)} traces" + (f", {failures} unexpected outcome(s)" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
