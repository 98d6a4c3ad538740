"""The engine: events in, effects out, time passed in.

`Engine` owns one synchronous `transitions.Machine` built from `engine.table` and shared by every
request (a request is a slotted object whose `state` the machine moves; nothing is registered
per request, so setup costs one allocation). `Engine.handle(request, event, now)` classifies
upstream facts, fires the event's trigger, runs the internal events that states produce, and
returns the effects for the runner. An event the table does not declare for the current state
raises `UnexpectedEvent` and changes nothing; an unexpected exception inside an action (or a
failure kind without a trigger) fails the request with an internal error, releasing what it
holds, instead of leaving it half-moved.

Timers are the engine's (as aioquic's `get_timer`/`handle_timer`): `Engine.timer(request)` says
when the request must next be woken, `Engine.handle_timer(request, now)` decides what that
moment is (the end of its wait, or its deadline) and handles it. The runner only sleeps.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import Any

from transitions import Machine, MachineError

from engine.actions import ACTIONS, cool_down_account, rest_current_target
from engine.bounds import step_bound
from engine.effects import CancelAttempt, CancelTimer, Effect, Finish, Outcome
from engine.events import (
    DeadlineExpired,
    Event,
    StreamBroken,
    StreamEnded,
    StreamOpened,
    TimerFired,
    UpstreamFailed,
    UpstreamUnreachable,
)
from engine.failures import Failure, FailureKind, classify
from engine.guards import GUARDS
from engine.policy import Policy
from engine.pool import AccountPool
from engine.request import Request
from engine.spec import (
    FAILURE_TRIGGERS,
    RATE_LIMIT_KINDS,
    REST_REASONS,
    SPEC,
    UNSENT_SCOPES,
    Scope,
)
from engine.table import AFTER_COMMIT, FAILED, STATES, TRANSITIONS

_ATTEMPT_ENDS = (UpstreamFailed, UpstreamUnreachable, StreamEnded, StreamBroken)
_EPS = 1e-9


class UnexpectedEvent(Exception):
    """The event is not declared for the request's current state. Nothing changed.

    This is the caller's (the runner's or a trace's) mistake, not the upstream's."""

    def __init__(self, state: str, event: Event) -> None:
        self.state = state
        self.event = event
        super().__init__(f"{type(event).__name__} is not expected in state {state}")


class StepBoundExceeded(RuntimeError):
    """A request took more steps than `engine.bounds.step_bound` allows (an engine defect)."""


class UnknownCallback(Exception):
    """The table names a guard or action that does not exist."""


def _on_request(fn: Callable[[Request], Any]) -> Callable[[Any], Any]:
    def call(event_data: Any) -> Any:
        return fn(event_data.model)

    call.__name__ = fn.__name__
    return call


def _resolve(names: tuple[str, ...], registry: dict[str, Any], kind: str) -> list[Any]:
    missing = [n for n in names if n not in registry]
    if missing:
        raise UnknownCallback(f"unknown {kind}: {', '.join(missing)}")
    return [_on_request(registry[n]) for n in names]


class _TableMachine(Machine):
    """A `transitions.Machine` whose callbacks are all callables resolved from the table when
    it is built: dispatch calls them directly, without string resolution or a log line per
    callback (the library's documented extension points)."""

    def callbacks(self, funcs: Any, event_data: Any) -> None:
        for func in funcs:
            func(event_data)

    @staticmethod
    def resolve_callable(func: Any, event_data: Any) -> Any:
        return func


@functools.cache
def build_machine() -> Machine:
    """The machine: states and transitions from the table, callbacks resolved by name.

    Built once per process and shared by every engine: it holds no request state (each request
    carries its own `state`, and nothing is ever registered with or changed on the machine)."""
    states = [
        {
            "name": s.name,
            "on_enter": _resolve(s.on_enter, ACTIONS, "action"),
            "on_exit": _resolve(s.on_exit, ACTIONS, "action"),
        }
        for s in STATES
    ]
    transitions = [
        {
            "trigger": row.trigger,
            "source": row.source,
            "dest": row.dest,
            "conditions": _resolve(row.guards, GUARDS, "guard"),
            "before": _resolve((row.action,) if row.action else (), ACTIONS, "action"),
        }
        for row in TRANSITIONS
    ]
    return _TableMachine(
        model=None,
        states=states,
        transitions=transitions,
        initial=STATES[0].name,
        send_event=True,
        auto_transitions=False,
        ignore_invalid_triggers=False,
        model_attribute="state",
    )


class Engine:
    """The request engine over one account pool: sans-IO, synchronous, deterministic.

    `rng` supplies jitter; seed it (and write the seed into traces) for reproducible runs."""

    def __init__(self, policy: Policy, pool: AccountPool, rng: random.Random | None = None):
        self.policy = policy
        self.pool = pool
        self.rng = rng if rng is not None else random.Random(0)
        self._machine = build_machine()
        self._events = self._machine.events
        #: Called after every step with (request, from state, trigger, to state), if set:
        #: how timelines and traces see internal steps too. Costs nothing when None.
        self.on_step: Callable[[Request, str, str, str], None] | None = None

    def open(self, request_id: str, model: str, stream: bool, now: float) -> Request:
        """A new request in state Selecting; `start` it to get its first effects."""
        return Request(self, request_id, model, stream, now)

    def start(self, request: Request, now: float) -> list[Effect]:
        """Enter Selecting (ask the pool) and run until the request waits for the outside."""
        request.now = now
        request.effects = []
        try:
            ACTIONS["ask_pool"](request)
            self._drain(request)
        except Exception as err:
            self._crash(request, err)
        return request.effects

    def handle(self, request: Request, event: Event, now: float) -> list[Effect]:
        """Feed one external event at monotonic time `now`; return the effects to perform."""
        if request.outcome is not None:
            raise UnexpectedEvent(request.state, event)
        request.now = now
        request.effects = []
        try:
            trigger, failure = self.trigger_of(request, event)
        except KeyError as err:  # a failure kind without a trigger: the engine's own defect
            self._crash(request, err)
            return request.effects
        machine_event = self._events.get(trigger)
        if machine_event is None or request.state not in machine_event.transitions:
            raise UnexpectedEvent(request.state, event)
        try:
            self._fire(request, event, trigger, failure)
            self._drain(request)
        except Exception as err:
            self._crash(request, err)
        return request.effects

    # the timer protocol ---------------------------------------------------------------------
    def timer(self, request: Request) -> float | None:
        """When `request` must next be woken (monotonic s), or None."""
        return request.timer()

    def timer_event(self, request: Request, now: float) -> Event | None:
        """What being woken at `now` means: the deadline (before commit) wins over the wait;
        None when nothing is due yet (woken early)."""
        if request.outcome is not None:
            return None
        if not request.committed and now + _EPS >= request.deadline:
            return DeadlineExpired()
        if request.wait_until is not None and now + _EPS >= request.wait_until:
            return TimerFired()
        return None

    def timer_time(self, request: Request, event: Event) -> float:
        """The time a timer event happened at for the machine: its scheduled moment (a wake-up
        a few microseconds late is the runner's, not the request's, so live runs and their
        replays see identical times)."""
        if isinstance(event, TimerFired) and request.wait_until is not None:
            return max(request.now, request.wait_until)
        return max(request.now, request.deadline)

    def handle_timer(self, request: Request, now: float) -> list[Effect]:
        """Handle being woken at `now` (`timer` said when); [] when nothing is due yet."""
        event = self.timer_event(request, now)
        if event is None:
            return []
        return self.handle(request, event, self.timer_time(request, event))

    def trigger_of(self, request: Request, event: Event) -> tuple[str, Failure | None]:
        """The table trigger `event` fires for `request`, and the failure it reports (pure).

        The end of an attempt before commit fires its failure class (`FAILURE_TRIGGERS`);
        after commit a clean end is `stream_ended` and anything else `stream_broken`."""
        if not isinstance(event, _ATTEMPT_ENDS):
            return event.trigger, None
        if isinstance(event, UpstreamFailed):
            failure = classify(event.facts, event.wall)
        elif isinstance(event, UpstreamUnreachable):
            kind = FailureKind.CREDENTIALS_UNAVAILABLE if event.credentials else None
            failure = Failure(kind=kind or FailureKind.UNREACHABLE, message=event.reason)
        elif isinstance(event, StreamBroken):
            failure = Failure(kind=FailureKind.STREAM_BROKEN, message=event.reason)
        elif request.committed:
            return "stream_ended", None
        else:
            failure = Failure(kind=FailureKind.EMPTY_RESPONSE, message="empty response")
        if request.committed:
            return AFTER_COMMIT, failure
        return FAILURE_TRIGGERS[failure.kind], failure

    # internals ----------------------------------------------------------------------------
    def _drain(self, request: Request) -> None:
        while request.pending:
            event = request.pending.pop(0)
            self._fire(request, event, event.trigger, None)

    def _fire(self, request: Request, event: Event, trigger: str, failure: Failure | None) -> None:
        request.event = event
        if trigger != "content_received":
            request.steps += 1
            if request.steps > request.max_steps:
                self._check_step_bound(request)
        if isinstance(event, _ATTEMPT_ENDS):
            request.in_flight = False
            request.failure = failure
            if failure is not None:
                self._record(request, failure)
            elif request.probing:
                self._answered(request)
        elif isinstance(event, StreamOpened):
            self._answered(request)
        source = request.state
        try:
            moved = self._events[trigger].trigger(request)
        except MachineError as err:
            raise UnexpectedEvent(request.state, event) from err
        if not moved:
            raise RuntimeError(f"no row of the table matched {trigger} in {request.state}")
        if self.on_step is not None:
            self.on_step(request, source, trigger, request.state)

    def _check_step_bound(self, request: Request) -> None:
        """The termination bound, enforced: a request past `step_bound` (recomputed, since
        accounts may have been added meanwhile) fails with an internal error instead of going
        on. Only an engine defect can get here; the property tests show it does not."""
        request.max_steps = step_bound(self.policy, len(self.pool), request.requested_model)
        if request.steps > request.max_steps:
            raise StepBoundExceeded(f"{request.steps} steps > step_bound {request.max_steps}")

    def _answered(self, request: Request) -> None:
        """The endpoint answered (the probe, if this was one, succeeded)."""
        self.pool.endpoints[request.endpoint].answered(request.now)
        request.probing = False

    def _record(self, request: Request, failure: Failure) -> None:
        """Record in the shared pool what the failure says, before any guard reads it and
        whichever row is taken (also after commit): the endpoint's health, a stated reset on
        the scope it belongs to, a 429's dedup and strikes."""
        spec = SPEC[failure.kind]
        if spec.scope is Scope.ENDPOINT:
            self.pool.endpoints[request.endpoint].failed(request.now)
            request.probing = False
        elif spec.scope not in UNSENT_SCOPES:
            self._answered(request)
        if request.account is None:
            return
        if failure.kind in RATE_LIMIT_KINDS:
            elsewhere = isinstance(request.event, UpstreamFailed) and request.event.shared_duplicate
            request.rl_duplicate, request.rl_strikes = self.pool.note_rate_limit(
                request.account, request.model, request.id, request.now, elsewhere=elsewhere
            )
        if failure.reset_ms is None:
            return
        if failure.kind in RATE_LIMIT_KINDS:
            cool_down_account(request, failure.reset_ms, REST_REASONS[failure.kind])
        elif failure.kind is FailureKind.CAPACITY_EXHAUSTED:
            rest_current_target(request, failure.reset_ms, REST_REASONS[failure.kind])

    def _crash(self, request: Request, err: Exception) -> None:
        """An action raised: fail the request (recorded), release what it holds."""
        if request.outcome is not None and request.state == FAILED:
            return
        if request.in_flight:
            request.effects.append(CancelAttempt())
            request.in_flight = False
        if request.timer_armed:
            request.effects.append(CancelTimer())
            request.timer_armed = False
        request.wait_until = None
        if request.leased and request.account is not None:
            self.pool.release(request.account)
            request.leased = False
        if request.probing:
            self.pool.endpoints[request.endpoint].probe_abandoned(request.now)
            request.probing = False
        request.pending.clear()
        request.state = FAILED
        request.outcome = Outcome(
            ok=False,
            status=500,
            error_type="api_error",
            message=f"internal error in the retry engine: {type(err).__name__}: {err}",
            model=request.model,
            committed=request.committed,
        )
        request.effects.append(Finish(outcome=request.outcome))
