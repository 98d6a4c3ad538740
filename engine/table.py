"""The request machine's transition table: everything that affects transitions lives here.

Read it top to bottom. Rows are grouped by source state; several guarded rows for one trigger form
a decision list tried in order, the unguarded fall-through last. `guards` must all hold, `unless`
must all fail. Row actions run before the state changes. The same table drives the machine
(`engine.machine`) and the generated diagrams (`engine.diagram`), so the picture cannot lie.
The rows implement DESIGN.md §2; the [letters] name the JS proxy's rows (seed-behaviour.md §1.3).
"""

from __future__ import annotations

from dataclasses import dataclass

SELECTING = "Selecting"
FETCHING = "Fetching"
CAPACITY_WAIT = "CapacityWait"
RATE_LIMIT_WAIT = "RateLimitWait"
BACKOFF = "Backoff"
SWITCHING = "Switching"
STREAMING = "Streaming"
FALLBACK = "Fallback"
DONE = "Done"
FAILED = "Failed"


@dataclass(frozen=True, slots=True)
class StateSpec:
    name: str
    doc: str
    on_enter: tuple[str, ...] = ()
    on_exit: tuple[str, ...] = ()
    terminal: bool = False


@dataclass(frozen=True, slots=True)
class Row:
    source: str
    trigger: str
    dest: str | None  # None: internal transition (no exit, no entry)
    guards: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    action: str | None = None
    note: str = ""


STATES: tuple[StateSpec, ...] = (
    StateSpec(SELECTING, "asking the pool for an account for its model", on_enter=("ask_pool",)),
    StateSpec(
        FETCHING,
        "waiting for the upstream's answer to one attempt (account, endpoint)",
        on_enter=("send_attempt",),
    ),
    StateSpec(
        CAPACITY_WAIT,
        "waiting before retrying the same account and endpoint after capacity exhaustion",
        on_enter=("arm_timer",),
        on_exit=("disarm_timer",),
    ),
    StateSpec(
        RATE_LIMIT_WAIT,
        "waiting for a short rate limit on its account, or for the pool's earliest reset",
        on_enter=("arm_timer",),
        on_exit=("disarm_timer",),
    ),
    StateSpec(
        BACKOFF,
        "pausing briefly: 5xx pause, empty-stream retry, throttle, switch delay",
        on_enter=("arm_timer",),
        on_exit=("disarm_timer",),
    ),
    StateSpec(
        SWITCHING,
        "giving up on its account for this request: attempt counted",
        on_enter=("release_account",),
    ),
    StateSpec(
        STREAMING, "relaying the upstream's answer; committed once content reached the client"
    ),
    StateSpec(
        FALLBACK,
        "moving to the next model of its fallback chain",
        on_enter=("choose_fallback_model",),
    ),
    StateSpec(DONE, "terminal: succeeded", on_enter=("finish",), terminal=True),
    StateSpec(
        FAILED, "terminal: failed, the client is told why", on_enter=("finish",), terminal=True
    ),
)
NON_TERMINAL = tuple(s.name for s in STATES if not s.terminal)


def _budget_row(source: str, trigger: str) -> Row:
    return Row(
        source,
        trigger,
        FAILED,
        ("retry_budget_spent",),
        action="fail_retry_budget",
        note="overload failures spent the pool-wide retry budget: no retry storm",
    )


def _endpoint_failure_rows(source: str, trigger: str, *, upstream_status: bool) -> list[Row]:
    """Failures the next endpoint, then another account, may cure [J3, K1, L, P, Q]."""
    rows = [] if upstream_status else [_budget_row(source, trigger)]
    if upstream_status:
        rows.append(
            Row(
                source,
                trigger,
                BACKOFF,
                ("next_endpoint_exists", "server_error_pause_fits"),
                action="pause_then_next_endpoint",
                note="5xx: pause, then the next endpoint [L]",
            )
        )
    return [
        *rows,
        Row(
            source,
            trigger,
            FETCHING,
            ("next_endpoint_exists",),
            action="try_next_endpoint",
            note="next endpoint",
        ),
        Row(
            source,
            trigger,
            SWITCHING,
            action="count_account_failure",
            note="no endpoint left: consecutive failures, extended cooldown",
        ),
    ]


def _upstream_failed_rows(source: str) -> list[Row]:
    """The decision list for an error answer before commit, top to bottom."""
    t = "upstream_failed"
    return [
        Row(
            source,
            t,
            FAILED,
            ("is_client_error",),
            action="fail_with_upstream_error",
            note="400 and other client errors: never retried [I, K2]",
        ),
        _budget_row(source, t),
        Row(
            source,
            t,
            CAPACITY_WAIT,
            ("is_capacity", "capacity_retry_left", "capacity_wait_fits"),
            action="wait_for_capacity",
            note="max(server delay, tier) [G1, H1]",
        ),
        Row(
            source,
            t,
            SWITCHING,
            ("is_capacity",),
            action="rest_after_capacity",
            note="short capacity cooldown, never a quota lock [G2, H2]",
        ),
        Row(
            source,
            t,
            RATE_LIMIT_WAIT,
            ("is_rate_limit", "reset_is_subsecond", "subsecond_retry_left", "subsecond_wait_fits"),
            action="wait_subsecond_reset",
            note="reset under 1 s: same endpoint, bounded [G3]",
        ),
        Row(
            source,
            t,
            SWITCHING,
            ("is_rate_limit", "is_duplicate_429"),
            action="rest_after_duplicate_429",
            note="concurrent 429 in the dedup window [G4]",
        ),
        Row(
            source,
            t,
            RATE_LIMIT_WAIT,
            ("is_rate_limit", "limit_is_short", "short_retry_left", "short_wait_fits"),
            action="wait_short_rate_limit",
            note="short limit: exponential backoff, bounded [G5, G7]",
        ),
        Row(
            source,
            t,
            SWITCHING,
            ("is_rate_limit",),
            action="rest_after_rate_limit",
            note="quota or long limit: cool down until reset or quota tier [G6]",
        ),
        Row(
            source,
            t,
            FETCHING,
            ("is_auth_expired", "not_refreshed_yet"),
            action="refresh_and_retry",
            note="401: fresh token, same endpoint [F2]",
        ),
        Row(source, t, SWITCHING, ("is_auth_expired",), action="give_up_account", note="401 again"),
        Row(
            source,
            t,
            SWITCHING,
            ("is_account_unusable",),
            action="invalidate_account",
            note="revoked, verification required, banned [F1, J1, J2]",
        ),
        *_endpoint_failure_rows(source, t, upstream_status=True),
    ]


def _any_state_rows() -> list[Row]:
    rows = []
    for state in NON_TERMINAL:
        rows.append(
            Row(state, "client_disconnected", FAILED, action="abandon", note="upstream cancelled")
        )
        rows.append(Row(state, "deadline_expired", FAILED, action="time_out"))
    return rows


TRANSITIONS: tuple[Row, ...] = (
    # Selecting: the pool answers with an internal event ---------------------------------------
    Row(
        SELECTING,
        "account_granted",
        BACKOFF,
        ("throttle_fits",),
        action="take_account_then_throttle",
        note="hybrid emergency throttle [C]",
    ),
    Row(
        SELECTING,
        "account_granted",
        FETCHING,
        action="take_account",
        note="first endpoint; untried accounts preferred [B-D]",
    ),
    Row(
        SELECTING,
        "pool_cooling_down",
        RATE_LIMIT_WAIT,
        ("pool_wait_allowed",),
        action="wait_for_pool",
        note="earliest reset is soon: wait, counted [A3]",
    ),
    Row(
        SELECTING,
        "pool_cooling_down",
        FALLBACK,
        ("fallback_available",),
        note="every account cools down too long [A2]",
    ),
    Row(
        SELECTING,
        "pool_cooling_down",
        FAILED,
        action="fail_rate_limited",
        note="429 with retry-after [A2]",
    ),
    Row(
        SELECTING,
        "no_usable_account",
        FAILED,
        action="fail_no_account",
        note="no enabled, valid account: fail at once [A1, fixes A3']",
    ),
    # Fetching: the upstream answers ------------------------------------------------------------
    Row(
        FETCHING,
        "account_withdrawn",
        SWITCHING,
        action="leave_withdrawn_account",
        note="another request rested or invalidated the account: nothing sent",
    ),
    Row(FETCHING, "stream_opened", STREAMING, action="open_stream", note="2xx"),
    *_upstream_failed_rows(FETCHING),
    *_endpoint_failure_rows(FETCHING, "upstream_unreachable", upstream_status=False),
    # Streaming: relay, commit on first content, never re-send after commit ----------------------
    Row(
        STREAMING,
        "content_received",
        None,
        action="relay_content",
        note="relay; the first content commits",
    ),
    Row(STREAMING, "stream_ended", DONE, ("committed",), action="record_success", note="[M]"),
    _budget_row(STREAMING, "stream_ended"),
    Row(
        STREAMING,
        "stream_ended",
        BACKOFF,
        ("empty_retry_left", "empty_wait_fits"),
        action="wait_before_empty_retry",
        note="empty: 500 ms * 2^n, same endpoint [N]",
    ),
    Row(
        STREAMING,
        "stream_ended",
        DONE,
        ("placeholder_configured",),
        action="finish_with_placeholder",
        note="only if configured [N]",
    ),
    Row(STREAMING, "stream_ended", FAILED, action="fail_empty", note="overloaded_error"),
    Row(
        STREAMING,
        "stream_broken",
        FAILED,
        ("committed",),
        action="fail_after_commit",
        note="one SSE error event; never re-sent [P]",
    ),
    *_endpoint_failure_rows(STREAMING, "stream_broken", upstream_status=False),
    Row(
        STREAMING,
        "upstream_failed",
        FAILED,
        ("committed",),
        action="fail_after_commit",
        note="error object after commit",
    ),
    *_upstream_failed_rows(STREAMING),
    # Waiting ---------------------------------------------------------------------------------
    Row(
        CAPACITY_WAIT,
        "timer_fired",
        FETCHING,
        action="resume_after_wait",
        note="same account, same endpoint",
    ),
    Row(
        RATE_LIMIT_WAIT, "timer_fired", SELECTING, ("waiting_for_pool",), action="resume_after_wait"
    ),
    Row(
        RATE_LIMIT_WAIT,
        "timer_fired",
        FETCHING,
        action="resume_after_wait",
        note="same account, same endpoint",
    ),
    Row(BACKOFF, "timer_fired", SELECTING, ("waiting_for_pool",), action="resume_after_wait"),
    Row(BACKOFF, "timer_fired", FETCHING, action="resume_after_wait"),
    # Switching: the account is released, the attempt counted --------------------------------------
    Row(
        SWITCHING,
        "account_released",
        BACKOFF,
        ("attempt_left", "switch_pause_wanted"),
        action="pause_before_switch",
        note="the JS proxy's switch delay after a rate limit",
    ),
    Row(
        SWITCHING,
        "account_released",
        SELECTING,
        ("attempt_left",),
        action="select_again",
        note="attempts: max(max_retries, accounts + 1) [R]",
    ),
    Row(SWITCHING, "account_released", FALLBACK, ("fallback_available",), note="[R]"),
    Row(
        SWITCHING,
        "account_released",
        FAILED,
        action="fail_attempts_exhausted",
        note="the last failure mapped to a client error",
    ),
    # Fallback ----------------------------------------------------------------------------------
    Row(
        FALLBACK,
        "fallback_model_chosen",
        SELECTING,
        action="start_fallback_model",
        note="acyclic chain, depth bounded [1.6]",
    ),
    # Any non-terminal state --------------------------------------------------------------------
    *_any_state_rows(),
)

TRIGGERS: tuple[str, ...] = tuple(dict.fromkeys(row.trigger for row in TRANSITIONS))
