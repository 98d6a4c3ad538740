"""The request machine's transition table: everything that affects transitions lives here.

Read it top to bottom. Rows are grouped by source state; several guarded rows for one trigger
form a decision list tried in order, the unguarded fall-through last. All `guards` must hold.
Row actions run before the state changes. The same table drives the machine (`engine.machine`)
and the generated diagrams (`engine.diagram`), so the picture cannot lie. The rows implement
DESIGN.md §2 (v2); [letters] name the JS proxy's rows (reference/seed-behaviour.md §1.3).

Work conservation is the shape of the table: every failure before commit records what its scope
says (`engine.spec`) and leaves its target through Switching; only Selecting waits, and only when
the pool has no target usable now (`pool_cooling_down`, until the earliest usable moment) or
every target has failed for this request (`all_targets_failed`, a retry round after a pause).

Triggers are the events' names, except for the end of an upstream attempt before commit: an
error answer, an unreachable upstream, a broken or empty stream fire the *failure class* of its
kind (`engine.spec.FAILURE_TRIGGERS`), so each decision list is about one kind of trouble.
After commit, any failure fires `stream_broken`.
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
    action: str | None = None
    note: str = ""


#: The trigger of any failure once the request has committed.
AFTER_COMMIT = "stream_broken"

STATES: tuple[StateSpec, ...] = (
    StateSpec(
        SELECTING, "asking the pool for a target (account, endpoint)", on_enter=("ask_pool",)
    ),
    StateSpec(
        FETCHING,
        "waiting for the upstream's answer to one attempt (account, endpoint)",
        on_enter=("send_attempt",),
    ),
    StateSpec(
        CAPACITY_WAIT,
        "every target rests after capacity exhaustion: waiting for the earliest hint",
        on_enter=("arm_timer",),
        on_exit=("disarm_timer",),
    ),
    StateSpec(
        RATE_LIMIT_WAIT,
        "every account cools down for its model: waiting for the earliest reset",
        on_enter=("arm_timer",),
        on_exit=("disarm_timer",),
    ),
    StateSpec(
        BACKOFF,
        "pausing: a retry round, an endpoint's probe or budget, a throttle, a switch delay",
        on_enter=("arm_timer",),
        on_exit=("disarm_timer",),
    ),
    StateSpec(
        SWITCHING,
        "leaving its target after a failure: attempt counted, lease returned",
        on_enter=("leave_target",),
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
    """What an upstream attempt's failure before commit leads to, by failure class: record what
    its scope says, then leave the target (only Selecting waits: work conservation)."""
    return [
        Row(s, "client_error", FAILED, (), "fail_with_upstream_error",
            "400 and other client errors: never retried [I, K2]"),
        Row(s, "capacity_exhausted", SWITCHING, (), "rest_target",
            "the target rests for the server's hint (a tier without one) [G1, G2, H1, H2]"),
        Row(s, "rate_limited", SWITCHING, (), "rest_account_model",
            "the account rests for the model until the stated reset (a tier without one) "
            "[G3-G7]"),
        Row(s, "auth_expired", FETCHING, ("not_refreshed_yet",), "refresh_and_retry",
            "401: a fresh token, the same target [F2]"),
        Row(s, "auth_expired", SWITCHING, (), "invalidate_account",
            "401 after a refresh: the account is invalid"),
        Row(s, "account_unusable", SWITCHING, (), "invalidate_account",
            "revoked, verification required, banned: invalid with reason [F1, J1, J2]"),
        Row(s, "target_failed", SWITCHING, (), "avoid_target",
            "403, 404: this request avoids the target [J3, K1]"),
        Row(s, "endpoint_failed", SWITCHING, (), "count_endpoint_failure",
            "5xx, unreachable, broken before commit: the endpoint's health, never the account "
            "[L, P, Q]"),
        Row(s, "token_unavailable", SWITCHING, (), "avoid_account",
            "the token endpoint is down: nothing persistent, another account"),
        Row(s, "misconfigured", FAILED, (), "fail_with_upstream_error",
            "the proxy's own configuration is refused (its OAuth client): nothing changes, "
            "never retried"),
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
    Row(SELECTING, "target_granted", BACKOFF, ("throttle_fits",), "take_target_then_throttle",
        "hybrid emergency throttle [C]"),
    Row(SELECTING, "target_granted", FETCHING, (), "take_target",
        "its account first, then untried accounts; endpoints in order, open breakers skipped "
        "[B-D]"),
    Row(SELECTING, "pool_cooling_down", CAPACITY_WAIT, ("cause_is_capacity", "wait_allowed"),
        "wait_for_pool", "every target rests: wait for the earliest hint"),
    Row(SELECTING, "pool_cooling_down", RATE_LIMIT_WAIT, ("cause_is_rate_limit", "wait_allowed"),
        "wait_for_pool", "every account cools down: wait for the earliest reset [A3]"),
    Row(SELECTING, "pool_cooling_down", BACKOFF, ("cause_is_budget", "wait_allowed"),
        "wait_for_pool", "the failing endpoints' budget is spent: wait for the next token"),
    Row(SELECTING, "pool_cooling_down", FALLBACK, ("fallback_available",), None,
        "nothing usable soon enough [A2]"),
    Row(SELECTING, "pool_cooling_down", FAILED, (), "fail_cooling_down",
        "429 (or 529) with retry-after: the earliest usable moment [A2]"),
    Row(SELECTING, "all_targets_failed", BACKOFF, ("round_left", "round_pause_allowed"),
        "pause_before_round", "every target failed: pause, then retry them [L, N]"),
    Row(SELECTING, "all_targets_failed", FALLBACK, ("fallback_available",), None, "[R]"),
    Row(SELECTING, "all_targets_failed", DONE, ("placeholder_due",), "finish_with_placeholder",
        "only empty answers: a placeholder answer, only if configured [N]"),
    Row(SELECTING, "all_targets_failed", FAILED, (), "fail_attempts_exhausted",
        "the last failure mapped to a client error"),
    Row(SELECTING, "no_usable_account", FAILED, (), "fail_no_account",
        "no enabled, valid account: fail at once [A1, fixes A3']"),

    # Fetching: the upstream answers ----------------------------------------------------------
    Row(FETCHING, "stream_opened", STREAMING, (), "open_stream", "2xx"),
    Row(FETCHING, "account_withdrawn", SWITCHING, (), "leave_withdrawn_account",
        "another request rested or invalidated the target meanwhile: nothing sent"),
    *_failure_rows(FETCHING),

    # Streaming: relay, commit on the first content, never re-send after commit ---------------
    Row(STREAMING, "content_received", None, (), "relay_content",
        "relayed; the first content commits"),
    Row(STREAMING, "stream_ended", DONE, (), "record_success",
        "success: strikes and dedup state cleared [M]"),
    Row(STREAMING, "stream_empty", SWITCHING, (), "avoid_empty_target",
        "no content: other targets first, then a retry round [N]"),
    Row(STREAMING, AFTER_COMMIT, FAILED, (), "fail_after_commit",
        "any failure after commit: one SSE error event, never re-sent [P]"),
    *_failure_rows(STREAMING),

    # Waiting ---------------------------------------------------------------------------------
    Row(CAPACITY_WAIT, "timer_fired", SELECTING, (), "resume_after_wait",
        "the earliest rest has ended"),
    Row(RATE_LIMIT_WAIT, "timer_fired", SELECTING, (), "resume_after_wait",
        "the earliest reset has passed"),
    Row(BACKOFF, "timer_fired", FETCHING, ("throttled",), "resume_after_wait",
        "after a hybrid throttle: the granted target"),
    Row(BACKOFF, "timer_fired", SELECTING, (), "resume_after_wait",
        "after a pause: select again"),

    # Switching: the target is left, the attempt counted --------------------------------------
    Row(SWITCHING, "target_released", BACKOFF, ("attempt_left", "switch_pause_wanted"),
        "pause_before_switch", "the JS proxy's switch delay (0 by default; never when no other "
        "account is usable) [G6]"),
    Row(SWITCHING, "target_released", SELECTING, ("attempt_left",), "select_again",
        "attempts: max(max_retries, accounts + 1) on each endpoint [R]"),
    Row(SWITCHING, "target_released", FALLBACK, ("fallback_available",), None, "[R]"),
    Row(SWITCHING, "target_released", DONE, ("placeholder_due",), "finish_with_placeholder",
        "only empty answers: a placeholder answer, only if configured [N]"),
    Row(SWITCHING, "target_released", FAILED, (), "fail_attempts_exhausted",
        "the last failure mapped to a client error"),

    # Fallback --------------------------------------------------------------------------------
    Row(FALLBACK, "fallback_model_chosen", SELECTING, (), "start_fallback_model",
        "the next model of an acyclic chain, depth bounded [1.6]"),

    # Any non-terminal state ------------------------------------------------------------------
    *_any_state_rows(),
)
# fmt: on

TRIGGERS: tuple[str, ...] = tuple(dict.fromkeys(row.trigger for row in TRANSITIONS))
