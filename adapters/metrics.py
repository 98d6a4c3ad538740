"""`GET /metrics`: the proxy's counters in Prometheus text format (`prometheus-client`).

One `Metrics` per application, with its own `CollectorRegistry` (several apps in one process
never share a series). It is a `TraceSink` and the engine's step observer, so the runner and
the engine feed it as they feed a trace recorder; the pool's gauges (accounts, endpoints) are
computed at scrape time. Every label value comes from a bounded set: upstream models of the
catalog, error types, the transition table, endpoint names, failure kinds. No request id,
email or account id is ever a label value (request ids are only keys of in-flight state).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from adapters.status import ACCOUNT_STATES, account_state
from engine.effects import CancelAttempt, Commit, Effect, Finish, Outcome, SendAttempt
from engine.events import Event, StreamBroken, StreamEnded, UpstreamFailed, UpstreamUnreachable
from engine.health import CLOSED, HALF_OPEN, OPEN
from engine.pool import AccountPool
from engine.request import Request

QUOTA_LEVELS = ("exhausted", "low", "ok")
BREAKER_STATES = (CLOSED, OPEN, HALF_OPEN)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


def attempt_result(event: Event) -> str | None:
    """How an attempt ended, by its final event (None: not a final event)."""
    if isinstance(event, StreamEnded):
        return "ok"
    if isinstance(event, StreamBroken):
        return "stream_broken"
    if isinstance(event, UpstreamFailed):
        return event.facts.kind.value
    if isinstance(event, UpstreamUnreachable):
        return "credentials_unavailable" if event.credentials else "unreachable"
    return None


@dataclass
class _InFlight:
    model: str
    arrived: float
    endpoint: str | None = None  # of the attempt in flight
    state: str | None = None  # where the request rests between steps
    since: float = 0.0  # when it got there


class PoolCollector(Collector):
    """Account and endpoint gauges, read from the pool at scrape time."""

    def __init__(self, pool: AccountPool, now: Callable[[], float]) -> None:
        self.pool, self.now = pool, now

    def collect(self) -> Iterator[Metric]:
        now = self.now()
        counts = dict.fromkeys(ACCOUNT_STATES, 0)
        for account_id in self.pool.account_ids:
            counts[account_state(self.pool, account_id, now)] += 1
        accounts = GaugeMetricFamily(
            "interlock_accounts", "Accounts in the pool by state", labels=["state"]
        )
        for name, count in counts.items():
            accounts.add_metric([name], count)
        yield accounts
        breaker = GaugeMetricFamily(
            "interlock_endpoint_breaker_state",
            "Circuit breaker state of each upstream endpoint (1 for the current state)",
            labels=["endpoint", "state"],
        )
        budget = GaugeMetricFamily(
            "interlock_endpoint_retry_budget_tokens",
            "Retry budget tokens left for each upstream endpoint",
            labels=["endpoint"],
        )
        failures = GaugeMetricFamily(
            "interlock_endpoint_consecutive_failures",
            "Consecutive failures counted by each endpoint's breaker",
            labels=["endpoint"],
        )
        for name, health in self.pool.endpoints.items():
            health.retry_at(now)  # refill first
            for state in BREAKER_STATES:
                breaker.add_metric([name, state], 1.0 if health.state == state else 0.0)
            budget.add_metric([name], health.tokens)
            failures.add_metric([name], health.failures)
        yield breaker
        yield budget
        yield failures
        yield from self._quota(now)

    def _quota(self, now: float) -> Iterator[Metric]:
        """Reported quota per model (`adapters.quota`): how many accounts are at each level,
        and the sum of their remaining fractions (the model's quota left, in accounts)."""
        low = self.pool.policy.quota.low_threshold
        levels: dict[str, dict[str, int]] = {}
        left: dict[str, float] = {}
        for account_id in self.pool.account_ids:
            for model, (fraction, _) in self.pool.account(account_id).quota.items():
                level = "exhausted" if fraction <= 0 else "low" if fraction < low else "ok"
                counts = levels.setdefault(model, dict.fromkeys(QUOTA_LEVELS, 0))
                counts[level] += 1
                left[model] = left.get(model, 0.0) + fraction
        accounts = GaugeMetricFamily(
            "interlock_quota_accounts",
            "Accounts by reported quota level per model (exhausted, low: under "
            "policy.quota.low_threshold, ok)",
            labels=["model", "level"],
        )
        remaining = GaugeMetricFamily(
            "interlock_quota_remaining",
            "Sum over accounts of the reported remaining quota fraction per model",
            labels=["model"],
        )
        for model, counts in sorted(levels.items()):
            for level, count in counts.items():
                accounts.add_metric([model, level], count)
            remaining.add_metric([model], left[model])
        yield accounts
        yield remaining


class Metrics:
    """The per-app registry, fed as a `TraceSink` and a step observer."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "interlock_requests",
            "Requests served, by upstream model, HTTP status and outcome (ok or error type)",
            ["model", "status", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "interlock_request_duration_seconds",
            "Time from a request's arrival to its end",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.first_byte = Histogram(
            "interlock_time_to_first_byte_seconds",
            "Time from a request's arrival to the first content committed to the client",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.transitions = Counter(
            "interlock_transitions",
            "Engine transitions, by source state, trigger and destination state",
            ["source", "trigger", "dest"],
            registry=self.registry,
        )
        self.attempts = Counter(
            "interlock_upstream_attempts",
            "Upstream attempts, by endpoint and how they ended (ok, a failure kind, cancelled)",
            ["endpoint", "result"],
            registry=self.registry,
        )
        self.state_seconds = Counter(
            "interlock_state_seconds",
            "Time requests spent in each state of the request machine (summed over requests)",
            ["state"],
            registry=self.registry,
        )
        self._in_flight: dict[str, _InFlight] = {}

    def watch_pool(self, pool: AccountPool, now: Callable[[], float]) -> None:
        self.registry.register(PoolCollector(pool, now))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def forget(self, request_id: str) -> None:
        """Drop what is kept for a request that ended without a `Finish` (the runner raised)."""
        flight = self._in_flight.pop(request_id, None)
        if flight is not None:
            self._cancelled(flight)

    # the engine's step observer ---------------------------------------------------------------
    def on_step(self, request: Request, source: str, trigger: str, dest: str) -> None:
        self.transitions.labels(source, trigger, dest).inc()

    # the runner's TraceSink -------------------------------------------------------------------
    def arrived(
        self,
        request_id: str,
        at: float,
        model: str,
        stream: bool,
        client_model: str | None = None,
    ) -> None:
        self._in_flight[request_id] = _InFlight(model, at)

    def received(self, request_id: str, at: float, event: Event) -> None:
        result = attempt_result(event)
        flight = self._in_flight.get(request_id)
        if result is not None and flight is not None and flight.endpoint is not None:
            self.attempts.labels(flight.endpoint, result).inc()
            flight.endpoint = None

    def emitted(self, request_id: str, at: float, state: str, effects: list[Effect]) -> None:
        flight = self._in_flight.get(request_id)
        if flight is None:
            return
        if state != flight.state:
            self._left_state(flight, at)
            flight.state, flight.since = state, at
        for effect in effects:
            if isinstance(effect, SendAttempt):
                self._cancelled(flight)
                flight.endpoint = effect.endpoint
            elif isinstance(effect, CancelAttempt):
                self._cancelled(flight)
            elif isinstance(effect, Commit):
                self.first_byte.labels(flight.model).observe(at - flight.arrived)
            elif isinstance(effect, Finish):
                self._cancelled(flight)
                self._left_state(flight, at)
                self._finished(flight, effect.outcome, at)
                del self._in_flight[request_id]

    def _left_state(self, flight: _InFlight, at: float) -> None:
        if flight.state is not None and at > flight.since:
            self.state_seconds.labels(flight.state).inc(at - flight.since)
        flight.state = None

    def _cancelled(self, flight: _InFlight) -> None:
        if flight.endpoint is not None:
            self.attempts.labels(flight.endpoint, "cancelled").inc()
            flight.endpoint = None

    def _finished(self, flight: _InFlight, outcome: Outcome, at: float) -> None:
        result = "ok" if outcome.ok else (outcome.error_type or "error")
        self.requests.labels(flight.model, str(outcome.status), result).inc()
        self.latency.labels(flight.model).observe(at - flight.arrived)
