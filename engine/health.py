"""Endpoint health: each endpoint's circuit breaker and retry budget (DESIGN §2.1).

An endpoint is a pool member of its own. Failures whose scope is the endpoint (refused or reset
connections, timeouts, 5xx, streams broken before commit) count against it, never against an
account; any other answer from it (a 200, a 429, a 403...) proves it is up.

The breaker is a small table, read top to bottom like the request machine's (and drawn from it
in `diagrams/`): closed endpoints are used; after `failures_to_open` consecutive failures an
endpoint opens and is skipped; when its probe is due, the next request that selects it is the
one probe (half-open) and every other request keeps skipping it; the probe's answer closes it,
its failure opens it again for the same interval (`first_probe_ms`) for the first
`steady_probes` failures, then for twice the interval each time (at most `max_probe_ms`).

The retry budget is a token bucket per endpoint that refills with time. Retrying a target a
request already failed on costs a token; a first attempt or a move to another target never does.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.policy import Breaker, EndpointBudget

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerRow:
    source: str
    trigger: str
    dest: str
    guard: str = ""
    note: str = ""


#: The breaker's table (the code below implements exactly these rows; tests check it).
BREAKER_TABLE: tuple[BreakerRow, ...] = (
    BreakerRow(CLOSED, "failure", OPEN, "failures reach failures_to_open",
               "skip it; probe after the interval"),
    BreakerRow(CLOSED, "failure", CLOSED, "", "count it"),
    BreakerRow(CLOSED, "answer", CLOSED, "", "failures back to 0"),
    BreakerRow(OPEN, "probe_granted", HALF_OPEN, "probe is due",
               "one request probes; the others keep skipping it"),
    BreakerRow(OPEN, "answer", CLOSED, "",
               "a request in flight when it opened got an answer: it is up"),
    BreakerRow(OPEN, "failure", OPEN, "", "a request in flight when it opened failed too"),
    BreakerRow(HALF_OPEN, "answer", CLOSED, "", "interval back to first_probe_ms"),
    BreakerRow(HALF_OPEN, "failure", OPEN, "",
               "the same interval steady_probes times, then doubling up to max_probe_ms"),
    BreakerRow(HALF_OPEN, "probe_abandoned", OPEN, "", "the probe may be granted again at once"),
)  # fmt: skip


class EndpointHealth:
    """One endpoint's breaker and budget. Synchronous; every method takes `now`."""

    __slots__ = (
        "breaker",
        "budget",
        "failed_probes",
        "failures",
        "interval_ms",
        "name",
        "probe_at",
        "refilled_at",
        "state",
        "tokens",
    )

    def __init__(self, name: str, breaker: Breaker, budget: EndpointBudget, now: float) -> None:
        self.name = name
        self.breaker = breaker
        self.budget = budget
        self.state = CLOSED
        self.failures = 0
        self.failed_probes = 0
        self.interval_ms = breaker.first_probe_ms
        self.probe_at = 0.0
        self.tokens = budget.max_tokens
        self.refilled_at = now

    # breaker --------------------------------------------------------------------------------
    def blocked_until(self, now: float) -> float:
        """When a request may next be granted this endpoint (<= now: now)."""
        if self.state == CLOSED:
            return now
        if self.state == OPEN:
            return max(now, self.probe_at)
        return max(now, self.probe_at) if self.probe_at > now else now + self.interval_ms / 1000

    def admits(self, now: float) -> bool:
        return self.state == CLOSED or (self.state == OPEN and now >= self.probe_at)

    def granted(self, now: float) -> bool:
        """A request was granted this endpoint; True when it is the half-open probe."""
        if self.state == OPEN and now >= self.probe_at:
            self.state = HALF_OPEN
            self.probe_at = now + self.interval_ms / 1000  # re-checked then, if the probe hangs
            return True
        return False

    def failed(self, now: float) -> None:
        """An endpoint-scope failure."""
        if self.state == HALF_OPEN:
            self.failed_probes += 1
            if self.failed_probes > self.breaker.steady_probes:
                self.interval_ms = min(self.interval_ms * 2, self.breaker.max_probe_ms)
            self._open(now)
            return
        self.failures += 1
        if self.state == CLOSED and self.failures >= self.breaker.failures_to_open:
            self._open(now)

    def answered(self, now: float) -> None:
        """The endpoint answered (any status that is not its own failure)."""
        self.state = CLOSED
        self.failures = 0
        self.failed_probes = 0
        self.interval_ms = self.breaker.first_probe_ms

    def probe_abandoned(self, now: float) -> None:
        """The probe ended without an answer (the client left, the deadline passed)."""
        if self.state == HALF_OPEN:
            self.state = OPEN
            self.probe_at = now

    def _open(self, now: float) -> None:
        self.state = OPEN
        self.probe_at = now + self.interval_ms / 1000

    # retry budget ---------------------------------------------------------------------------
    def _refill(self, now: float) -> None:
        if now > self.refilled_at:
            gained = (now - self.refilled_at) * self.budget.refill_per_s
            self.tokens = min(self.budget.max_tokens, self.tokens + gained)
            self.refilled_at = now

    def retry_at(self, now: float) -> float:
        """When a retry of a failed target on this endpoint can next be paid for."""
        self._refill(now)
        if self.tokens >= 1 - 1e-9:  # a refill computed to a rounding error below one token
            return now
        return now + (1 - self.tokens) / self.budget.refill_per_s

    def spend(self, now: float) -> None:
        self._refill(now)
        self.tokens = max(0.0, self.tokens - 1)
