"""Test harness: a synchronous world around the engine on a virtual float clock, plus builders
for the upstream facts of reference/seed-behaviour.md §3.4."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from adapters.cloudcode.errors import GoogleError, GoogleReset, ResetSource, to_facts
from engine.bounds import step_bound
from engine.effects import (
    CancelAttempt,
    CancelTimer,
    Effect,
    Finish,
    SendAttempt,
    StartTimer,
)
from engine.events import (
    ContentReceived,
    Event,
    FallbackModelChosen,
    NoUsableAccount,
    PoolCoolingDown,
    StreamBroken,
    StreamEnded,
    StreamOpened,
    TargetGranted,
    UpstreamFailed,
    UpstreamUnreachable,
)
from engine.failures import UpstreamFacts
from engine.machine import Engine
from engine.policy import Policy, load_policy
from engine.pool import AccountPool
from engine.request import Request

MODEL = "claude-sonnet-4-6"
ENDPOINTS = ("daily", "prod")
"""Cloud Code's endpoint names, which engine tests use (the engine's own default is neutral)."""


# upstream facts (§3.4): Google's bodies, as the Cloud Code adapter hands them to the engine ------
def google(**fields: object) -> UpstreamFacts:
    """The engine's facts for a Google error answer with these fields (`GoogleError`)."""
    return to_facts(GoogleError.model_validate(fields))


def delay(ms: float, source: ResetSource = ResetSource.RETRY_DELAY) -> GoogleReset:
    return GoogleReset(source=source, delay_ms=ms)


def quota_429(reset_ms: float | None = None) -> UpstreamFacts:
    """Body 1 (generic, no reset) or body 2 (QUOTA_EXHAUSTED with quotaResetDelay)."""
    if reset_ms is None:
        return google(
            status=429,
            google_status="RESOURCE_EXHAUSTED",
            message="Resource has been exhausted (e.g. check quota).",
        )
    return google(
        status=429,
        google_status="RESOURCE_EXHAUSTED",
        reason="QUOTA_EXHAUSTED",
        resets=(delay(reset_ms, ResetSource.QUOTA_RESET_DELAY),),
        message="You have exhausted your capacity on this model.",
    )


def rate_limit_429(reset_ms: float | None = None) -> UpstreamFacts:
    resets = (delay(reset_ms),) if reset_ms is not None else ()
    return google(
        status=429,
        google_status="RESOURCE_EXHAUSTED",
        reason="RATE_LIMIT_EXCEEDED",
        resets=resets,
        message="Rate limited.",
    )


def capacity(status: int = 503, retry_ms: float | None = None) -> UpstreamFacts:
    """Body 3 (503 MODEL_CAPACITY_EXHAUSTED), or its 429 and 529 twins."""
    resets = (delay(retry_ms),) if retry_ms is not None else ()
    gstatus = "RESOURCE_EXHAUSTED" if status == 429 else "UNAVAILABLE"
    return google(
        status=status,
        google_status=gstatus,
        reason="MODEL_CAPACITY_EXHAUSTED",
        resets=resets,
        message="No capacity available for model gemini-3-pro-low on the server",
    )


SERVER_500 = google(status=500, google_status="UNKNOWN", message="Unknown Error.")
NOT_FOUND_404 = google(
    status=404, google_status="NOT_FOUND", message="Requested entity was not found."
)
FORBIDDEN_403 = google(
    status=403,
    google_status="PERMISSION_DENIED",
    message="Permission denied. Check your Antigravity license.",
)
VERIFY_URL = "https://accounts.google.com/signin/continue?sarp=1&scc=1"
VALIDATION_403 = google(
    status=403,
    google_status="PERMISSION_DENIED",
    reason="VALIDATION_REQUIRED",
    verify_url=VERIFY_URL,
    message="Verify your account to continue.",
)
BANNED_403 = google(
    status=403,
    google_status="PERMISSION_DENIED",
    banned=True,
    message="Gemini has been disabled for this account due to a violation of Terms of Service.",
)
AUTH_401 = google(
    status=401,
    google_status="UNAUTHENTICATED",
    message="Request had invalid authentication credentials.",
)
REVOKED_401 = google(
    status=401, permanent_auth=True, message="invalid_grant: Token has been expired or revoked"
)
BAD_400 = google(
    status=400,
    google_status="INVALID_ARGUMENT",
    message="messages.1.content.0: Invalid `signature` in `thinking` block",
)
TOO_LONG_400 = google(
    status=400,
    google_status="INVALID_ARGUMENT",
    message="prompt is too long: 250000 tokens > 200000 maximum",
)


def failed(facts: UpstreamFacts) -> UpstreamFailed:
    return UpstreamFailed(facts=facts, wall=1_767_000_000.0)


# the world --------------------------------
@dataclass
class Sent:
    """One upstream attempt as the tests read it: (time, account, endpoint)."""

    at: float
    account: str
    endpoint: str
    request: str

    def key(self) -> tuple[float, str, str]:
        return (round(self.at, 3), self.account, self.endpoint)


class World:
    """One pool, one engine, one virtual clock; requests driven synchronously by the test."""

    def __init__(
        self,
        accounts: list[str],
        policy: Policy | None = None,
        seed: int = 0,
        preset: str = "default",
        **overrides: Any,
    ) -> None:
        self.policy = policy or load_policy(preset, {"endpoints": ENDPOINTS, **overrides})
        self.pool = AccountPool(self.policy, accounts)
        self.engine = Engine(self.policy, self.pool, rng=random.Random(seed))
        self.now = 0.0
        self.sent: list[Sent] = []
        self.effects: list[tuple[float, str, Effect]] = []
        self._count = 0

    # driving ------------------------------
    def open(self, model: str = MODEL, stream: bool = True, start: bool = True) -> Request:
        self._count += 1
        request = self.engine.open(f"r{self._count}", model, stream, self.now)
        if start:
            self._record(request, self.engine.start(request, self.now))
        return request

    def handle(self, request: Request, event: Event) -> list[Effect]:
        effects = self.engine.handle(request, event, self.now)
        self._record(request, effects)
        return effects

    def at(self, t: float) -> World:
        assert t >= self.now, f"time runs forward: {t} < {self.now}"
        self.now = t
        return self

    def fire_timer(self, request: Request) -> list[Effect]:
        """Advance to the request's wait end and let the engine handle its timer."""
        assert request.wait_until is not None, f"{request} is not waiting"
        self.now = max(self.now, request.wait_until)
        effects = self.engine.handle_timer(request, self.now)
        self._record(request, effects)
        return effects

    def rest_everything(self, cause: str, until: float = 5.0) -> None:
        """Block every target for the model until `until` by `cause` (rate_limit, capacity,
        endpoint)."""
        for account in self.pool.account_ids:
            for endpoint in self.policy.endpoints:
                if cause == "rate_limit":
                    self.pool.cool_down(account, MODEL, until, "rate limited", self.now)
                elif cause == "capacity":
                    self.pool.rest_target(account, MODEL, endpoint, until, "capacity exhausted")
        if cause == "endpoint":
            for health in self.pool.endpoints.values():
                for _ in range(self.policy.breaker.failures_to_open):
                    health.failed(self.now)

    def answer(self, request: Request, outcome: Event | UpstreamFacts | str) -> list[Effect]:
        """Deliver one upstream outcome for the attempt in flight: facts (error), "ok" (a stream
        with content that ends), "empty", "unreachable", or any event."""
        if isinstance(outcome, UpstreamFacts):
            return self.handle(request, failed(outcome))
        if outcome == "ok":
            self.handle(request, StreamOpened())
            self.handle(request, ContentReceived(content="Hello"))
            return self.handle(request, StreamEnded())
        if outcome == "empty":
            self.handle(request, StreamOpened())
            return self.handle(request, StreamEnded())
        if outcome == "unreachable":
            return self.handle(request, UpstreamUnreachable(reason="connection refused"))
        assert isinstance(outcome, Event)
        return self.handle(request, outcome)

    def drive(self, request: Request, outcome: Event | UpstreamFacts | str) -> None:
        """Answer every attempt with `outcome` and fire every timer until the request ends
        (bounded: a request that does not end within its step bound fails the test)."""
        for _ in range(step_bound(self.policy, len(self.pool)) + 1):
            if request.outcome is not None:
                return
            if request.wait_until is not None:
                self.fire_timer(request)
            else:
                self.answer(request, outcome)
        raise AssertionError("the request did not end within its step bound")

    def finish_stream(self, request: Request) -> None:
        self.handle(request, StreamEnded())

    def _record(self, request: Request, effects: list[Effect]) -> None:
        for effect in effects:
            self.effects.append((self.now, request.id, effect))
            if isinstance(effect, SendAttempt):
                self.sent.append(Sent(self.now, effect.account, effect.endpoint, request.id))

    # reading ------------------------------
    def attempts(self, request: Request | None = None) -> list[tuple[float, str, str]]:
        return [s.key() for s in self.sent if request is None or s.request == request.id]

    def timers(self, request: Request) -> list[tuple[float, str]]:
        return [
            (round(e.at, 3), e.purpose)
            for _, rid, e in self.effects
            if rid == request.id and isinstance(e, StartTimer)
        ]

    def of_type(self, request: Request, kind: type[Effect]) -> list[Effect]:
        return [e for _, rid, e in self.effects if rid == request.id and isinstance(e, kind)]

    def finishes(self, request: Request) -> list[Finish]:
        return [e for e in self.of_type(request, Finish) if isinstance(e, Finish)]

    def cancels(self, request: Request) -> int:
        return len(self.of_type(request, CancelAttempt)) + len(self.of_type(request, CancelTimer))

    # reaching a state (for the exhaustive table test) ------------------------------
    def request_in_state(self, state: str) -> Request:
        if state == "Selecting":
            return self.open(start=False)
        request = self.open()
        if state == "Fetching":
            return request
        if state == "Streaming":
            self.handle(request, StreamOpened())
        elif state in ("CapacityWait", "RateLimitWait"):
            cause = {"CapacityWait": "capacity", "RateLimitWait": "rate_limit"}[state]
            self.rest_everything(cause)
            request = self.open()
        elif state == "Backoff":  # every target failed once: a retry round's pause
            while request.state == "Fetching":
                self.answer(request, "unreachable")
        elif state in ("Switching", "Fallback"):
            request.state = state  # transient states: placed directly, as the table test needs
        elif state == "Done":
            self.answer(request, "ok")
        elif state == "Failed":
            self.answer(request, BAD_400)
        assert request.state == state, (request.state, state)
        return request


FACTS = st.sampled_from(
    [
        quota_429(),
        quota_429(7_384_500),
        quota_429(754),
        rate_limit_429(3000),
        rate_limit_429(300),
        rate_limit_429(),
        capacity(503, 39_000),
        capacity(429),
        capacity(529),
        SERVER_500,
        NOT_FOUND_404,
        FORBIDDEN_403,
        VALIDATION_403,
        BANNED_403,
        AUTH_401,
        REVOKED_401,
        BAD_400,
        google(status=413, message="too large"),
        google(status=502),
    ]
)


def sample_event(cls: type[Event], data: st.DataObject) -> Event:
    """An instance of `cls` with drawn fields (for the exhaustive (state, event) test)."""
    if cls is TargetGranted:
        return TargetGranted(
            account=data.draw(st.sampled_from(["A", "B"])),
            endpoint=data.draw(st.sampled_from(["daily", "prod"])),
            throttle_ms=data.draw(st.sampled_from([0, 250, 500])),
            probe=data.draw(st.booleans()),
        )
    if cls is PoolCoolingDown:
        return PoolCoolingDown(
            until=data.draw(st.floats(0.0, 10_000.0)),
            cause=data.draw(st.sampled_from(["rate_limit", "capacity", "endpoint", "budget"])),
        )
    if cls is NoUsableAccount:
        return NoUsableAccount(reasons=("1 account disabled",))
    if cls is FallbackModelChosen:
        return FallbackModelChosen(model="gemini-3-flash")
    if cls is UpstreamFailed:
        return failed(data.draw(FACTS))
    if cls is ContentReceived:
        return ContentReceived(content="x")
    if cls is StreamBroken:
        return StreamBroken(reason="reset by peer")
    return cls()
