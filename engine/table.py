"""The request machine's transition table: everything that affects transitions lives here.

Read it top to bottom. Rows are grouped by source state; several guarded rows for one trigger
form a decision list tried in order, the unguarded fall-through last. All `guards` must hold.
Row actions run before the state changes. The same table drives the machine (`engine.machine`)
and the generated diagrams (`engine.diagram`), so the picture cannot lie. The rows implement
DESIGN.md §2; [letters] name the JS proxy's rows (reference/seed-behaviour.md §1.3).

Triggers are the events' names, except for the end of an upstream attempt before commit: an
error answer, an unreachable upstream, a broken or empty stream fire the *failure class* the
engine classified (`FAILURE_TRIGGERS`), so each decision list is about one kind of trouble.
After commit, any failure fires `stream_broken`.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.failures import FailureKind

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
    action: str | None = None
    note: str = ""


#: The failure class each kind fires as a trigger (before commit).
FAILURE_TRIGGERS: dict[FailureKind, str] = {
    FailureKind.INVALID_REQUEST: "client_error",
    FailureKind.CLIENT_ERROR: "client_error",
    FailureKind.CAPACITY_EXHAUSTED: "capacity_exhausted",
    FailureKind.RATE_LIMITED: "rate_limited",
    FailureKind.QUOTA_EXHAUSTED: "rate_limited",
    FailureKind.AUTH_EXPIRED: "auth_expired",
    FailureKind.AUTH_REVOKED: "account_unusable",
    FailureKind.VERIFICATION_REQUIRED: "account_unusable",
    FailureKind.ACCOUNT_BANNED: "account_unusable",
    FailureKind.FORBIDDEN: "endpoint_failed",
    FailureKind.NOT_FOUND: "endpoint_failed",
    FailureKind.VERSION_REJECTED: "endpoint_failed",
    FailureKind.SERVER_ERROR: "endpoint_failed",
    FailureKind.UNREACHABLE: "endpoint_failed",
    FailureKind.STREAM_BROKEN: "endpoint_failed",
    FailureKind.EMPTY_RESPONSE: "stream_empty",
}
#: The trigger of any failure once the request has committed.
AFTER_COMMIT = "stream_broken"

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


# fmt: off
def _failure_rows(s: str) -> list[Row]:
    """What an upstream attempt's failure before commit leads to, by failure class."""
    return [
        Row(s, "client_error", FAILED, (), "fail_with_upstream_error",
            "400 and other client errors: never retried [I, K2]"),

        Row(s, "capacity_exhausted", FAILED, ("retry_budget_spent",), "fail_retry_budget",
            "overload failures spent the pool-wide retry budget"),
        Row(s, "capacity_exhausted", CAPACITY_WAIT, ("capacity_retry_left", "capacity_wait_fits"),
            "wait_for_capacity", "max(server delay, tier), same endpoint [G1, H1]"),
        Row(s, "capacity_exhausted", SWITCHING, (), "rest_after_capacity",
            "short capacity cooldown, never a quota lock [G2, H2]"),

        Row(s, "rate_limited", RATE_LIMIT_WAIT,
            ("reset_is_subsecond", "subsecond_retry_left", "subsecond_wait_fits"),
            "wait_subsecond_reset", "reset under 1 s: same endpoint, bounded [G3]"),
        Row(s, "rate_limited", SWITCHING, ("is_duplicate_429",), "rest_after_duplicate_429",
            "a concurrent 429 in the dedup window: the longer cooldown [G4]"),
        Row(s, "rate_limited", RATE_LIMIT_WAIT,
            ("limit_is_short", "short_retry_left", "short_wait_fits"),
            "wait_short_rate_limit", "short limit: exponential backoff, bounded [G5, G7]"),
        Row(s, "rate_limited", SWITCHING, (), "rest_after_rate_limit",
            "quota or long limit: rest until the reset or the quota tier [G6]"),

        Row(s, "auth_expired", FETCHING, ("not_refreshed_yet",), "refresh_and_retry",
            "401: a fresh token, the same endpoint [F2]"),
        Row(s, "auth_expired", SWITCHING, (), "give_up_account", "401 again"),

        Row(s, "account_unusable", SWITCHING, (), "invalidate_account",
            "revoked, verification required, banned: invalid with reason [F1, J1, J2]"),

        Row(s, "endpoint_failed", FAILED, ("retry_budget_spent",), "fail_retry_budget",
            "overload failures spent the pool-wide retry budget"),
        Row(s, "endpoint_failed", BACKOFF, ("next_endpoint_exists", "server_error_pause_fits"),
            "pause_then_next_endpoint", "5xx: pause, then the next endpoint [L]"),
        Row(s, "endpoint_failed", FETCHING, ("next_endpoint_exists",), "try_next_endpoint",
            "403, 404, 5xx, unreachable, broken before commit: next endpoint [J3, K1, P, Q]"),
        Row(s, "endpoint_failed", SWITCHING, (), "count_account_failure",
            "no endpoint left: consecutive failures, extended cooldown"),
    ]


def _any_state_rows() -> list[Row]:
    rows = []
    for state in NON_TERMINAL:
        rows.append(Row(state, "client_disconnected", FAILED, (), "abandon",
                        "the upstream attempt is cancelled"))
        rows.append(Row(state, "deadline_expired", FAILED, (), "time_out", "504 timeout_error"))
    return rows


TRANSITIONS: tuple[Row, ...] = (
    # Selecting: the pool answers with an internal event --------------------------------------
    Row(SELECTING, "account_granted", BACKOFF, ("throttle_fits",), "take_account_then_throttle",
        "hybrid emergency throttle [C]"),
    Row(SELECTING, "account_granted", FETCHING, (), "take_account",
        "the first endpoint; untried accounts preferred [B-D]"),
    Row(SELECTING, "pool_cooling_down", RATE_LIMIT_WAIT, ("pool_wait_allowed",), "wait_for_pool",
        "the earliest reset is soon: wait for it, counted [A3]"),
    Row(SELECTING, "pool_cooling_down", FALLBACK, ("fallback_available",), None,
        "every account rests too long [A2]"),
    Row(SELECTING, "pool_cooling_down", FAILED, (), "fail_rate_limited",
        "429 with retry-after [A2]"),
    Row(SELECTING, "no_usable_account", FAILED, (), "fail_no_account",
        "no enabled, valid account: fail at once [A1, fixes A3']"),

    # Fetching: the upstream answers ----------------------------------------------------------
    Row(FETCHING, "stream_opened", STREAMING, (), "open_stream", "2xx"),
    Row(FETCHING, "account_withdrawn", SWITCHING, (), "leave_withdrawn_account",
        "another request rested or invalidated the account meanwhile: nothing sent"),
    *_failure_rows(FETCHING),

    # Streaming: relay, commit on the first content, never re-send after commit ---------------
    Row(STREAMING, "content_received", None, (), "relay_content",
        "relayed; the first content commits"),
    Row(STREAMING, "stream_ended", DONE, (), "record_success",
        "success: failures reset, dedup state cleared, health up [M]"),
    Row(STREAMING, "stream_empty", FAILED, ("retry_budget_spent",), "fail_retry_budget",
        "overload failures spent the pool-wide retry budget"),
    Row(STREAMING, "stream_empty", BACKOFF, ("empty_retry_left", "empty_wait_fits"),
        "wait_before_empty_retry", "500 ms * 2^n, then the same endpoint [N]"),
    Row(STREAMING, "stream_empty", DONE, ("placeholder_configured",), "finish_with_placeholder",
        "a placeholder answer, only if configured [N]"),
    Row(STREAMING, "stream_empty", FAILED, (), "fail_empty", "529 overloaded_error"),
    Row(STREAMING, AFTER_COMMIT, FAILED, (), "fail_after_commit",
        "any failure after commit: one SSE error event, never re-sent [P]"),
    *_failure_rows(STREAMING),

    # Waiting ---------------------------------------------------------------------------------
    Row(CAPACITY_WAIT, "timer_fired", FETCHING, (), "resume_after_wait",
        "the same account and endpoint"),
    Row(RATE_LIMIT_WAIT, "timer_fired", SELECTING, ("waiting_for_pool",), "resume_after_wait",
        "the pool's earliest reset has passed"),
    Row(RATE_LIMIT_WAIT, "timer_fired", FETCHING, (), "resume_after_wait",
        "the same account and endpoint"),
    Row(BACKOFF, "timer_fired", SELECTING, ("waiting_for_pool",), "resume_after_wait",
        "after the switch delay"),
    Row(BACKOFF, "timer_fired", FETCHING, (), "resume_after_wait",
        "after a throttle, a 5xx pause or an empty stream"),

    # Switching: the account is released, the attempt counted ---------------------------------
    Row(SWITCHING, "account_released", BACKOFF, ("attempt_left", "switch_pause_wanted"),
        "pause_before_switch", "the JS proxy's 5 s switch delay after a quota limit [G6]"),
    Row(SWITCHING, "account_released", SELECTING, ("attempt_left",), "select_again",
        "attempts: max(max_retries, accounts + 1) [R]"),
    Row(SWITCHING, "account_released", FALLBACK, ("fallback_available",), None, "[R]"),
    Row(SWITCHING, "account_released", FAILED, (), "fail_attempts_exhausted",
        "the last failure mapped to a client error"),

    # Fallback --------------------------------------------------------------------------------
    Row(FALLBACK, "fallback_model_chosen", SELECTING, (), "start_fallback_model",
        "the next model of an acyclic chain, depth bounded [1.6]"),

    # Any non-terminal state ------------------------------------------------------------------
    *_any_state_rows(),
)
# fmt: on

TRIGGERS: tuple[str, ...] = tuple(dict.fromkeys(row.trigger for row in TRANSITIONS))
