"""One spec row per failure kind (engine/spec.py), and the endpoint breaker's table
(engine/health.py) is what the code does."""

from __future__ import annotations

import pytest

from engine.failures import FailureKind
from engine.health import BREAKER_TABLE, CLOSED, HALF_OPEN, OPEN, EndpointHealth
from engine.policy import Breaker, EndpointBudget
from engine.spec import (
    ENDPOINT_KINDS,
    FAILURE_TRIGGERS,
    INVALID_REASONS,
    OVERLOAD_KINDS,
    RATE_LIMIT_KINDS,
    REST_REASONS,
    SPECS,
    Scope,
    answer,
)
from engine.table import TRANSITIONS


def test_every_failure_kind_has_exactly_one_spec_row() -> None:
    kinds = [row.kind for row in SPECS]
    assert sorted(kinds) == sorted(FailureKind) and len(kinds) == len(set(kinds))


def test_every_spec_trigger_is_handled_before_commit_by_the_table() -> None:
    streaming = {r.trigger for r in TRANSITIONS if r.source == "Streaming"}
    fetching = {r.trigger for r in TRANSITIONS if r.source == "Fetching"}
    for kind, trigger in FAILURE_TRIGGERS.items():
        assert trigger in streaming, kind
        if kind is not FailureKind.EMPTY_RESPONSE:  # only an opened stream can be empty
            assert trigger in fetching, kind


def test_only_quota_and_rate_limits_rest_an_account_for_a_model() -> None:
    assert {FailureKind.RATE_LIMITED, FailureKind.QUOTA_EXHAUSTED} == RATE_LIMIT_KINDS


def test_connection_failures_and_5xx_belong_to_the_endpoint_never_an_account() -> None:
    for kind in (FailureKind.UNREACHABLE, FailureKind.SERVER_ERROR, FailureKind.STREAM_BROKEN):
        assert kind in ENDPOINT_KINDS and kind not in INVALID_REASONS
        assert kind not in REST_REASONS
    assert SPECS[[r.kind for r in SPECS].index(FailureKind.CREDENTIALS_UNAVAILABLE)].scope is (
        Scope.TOKEN_ENDPOINT
    )


def test_capacity_rests_only_its_target_and_is_an_overload() -> None:
    row = SPECS[[r.kind for r in SPECS].index(FailureKind.CAPACITY_EXHAUSTED)]
    assert row.scope is Scope.TARGET and FailureKind.CAPACITY_EXHAUSTED in OVERLOAD_KINDS


def test_every_account_scope_kind_names_why_the_account_is_invalid() -> None:
    account = {row.kind for row in SPECS if row.scope is Scope.ACCOUNT}
    assert account == set(INVALID_REASONS)


@pytest.mark.parametrize(
    ("kind", "status", "expected"),
    [
        (FailureKind.INVALID_REQUEST, 400, (400, "invalid_request_error")),
        (FailureKind.CLIENT_ERROR, 413, (413, "request_too_large")),
        (FailureKind.CLIENT_ERROR, 409, (400, "invalid_request_error")),
        (FailureKind.RATE_LIMITED, 429, (429, "rate_limit_error")),
        (FailureKind.CAPACITY_EXHAUSTED, 503, (529, "overloaded_error")),
        (FailureKind.NOT_FOUND, 404, (404, "not_found_error")),
        (FailureKind.FORBIDDEN, 403, (403, "permission_error")),
    ],
)
def test_the_client_answer_of_a_kind(kind: FailureKind, status: int, expected: object) -> None:
    assert answer(kind, status) == expected


# the breaker ------------------------------------------------------------------------------------
def health(**breaker: int) -> EndpointHealth:
    return EndpointHealth("daily", Breaker(**breaker), EndpointBudget(), 0.0)


def test_the_breaker_table_names_only_its_three_states() -> None:
    states = {r.source for r in BREAKER_TABLE} | {r.dest for r in BREAKER_TABLE}
    assert states == {CLOSED, OPEN, HALF_OPEN}


def test_closed_counts_failures_and_opens_at_the_threshold_and_an_answer_resets_the_count() -> None:
    h = health(failures_to_open=3)
    h.failed(0.0)
    h.failed(0.0)
    h.answered(0.0)
    h.failed(0.0)
    h.failed(0.0)
    assert h.state == CLOSED and h.admits(0.0)
    h.failed(0.0)
    assert h.state == OPEN and not h.admits(0.5) and h.blocked_until(0.5) == 1.0


def test_one_probe_at_a_time_then_steady_intervals_then_doubling_up_to_the_cap() -> None:
    h = health(failures_to_open=1, first_probe_ms=1000, steady_probes=2, max_probe_ms=3000)
    h.failed(0.0)
    probes = []
    now = 1.0
    for _ in range(5):
        assert h.granted(now) and h.state == HALF_OPEN
        assert not h.admits(now)  # the others keep skipping it
        h.failed(now)
        probes.append(round(h.probe_at - now, 3))
        now = h.probe_at
    assert probes == [1.0, 1.0, 2.0, 3.0, 3.0]


def test_an_abandoned_probe_lets_the_next_request_probe_at_once() -> None:
    h = health(failures_to_open=1)
    h.failed(0.0)
    assert h.granted(1.0)
    h.probe_abandoned(1.5)
    assert h.state == OPEN and h.admits(1.5)


def test_a_failure_kind_without_a_trigger_fails_the_request_and_releases_its_lease(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from engine import machine
    from tests.support import SERVER_500, World

    triggers = dict(machine.FAILURE_TRIGGERS)
    del triggers[FailureKind.SERVER_ERROR]
    monkeypatch.setattr(machine, "FAILURE_TRIGGERS", triggers)
    world = World(["A"])
    request = world.open()
    assert world.pool.leases() == 1
    world.answer(request, SERVER_500)  # no exception escapes handle()
    assert request.outcome is not None and request.outcome.status == 500
    assert "internal error" in request.outcome.message
    assert world.pool.leases() == 0 and len(world.finishes(request)) == 1


def test_a_request_past_its_step_bound_fails_with_an_internal_error_and_releases_its_lease(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from engine import machine
    from tests.support import SERVER_500, World

    world = World(["A", "B"])
    request = world.open()
    monkeypatch.setattr(machine, "step_bound", lambda *args: 2)
    request.max_steps = 2
    world.answer(request, SERVER_500)  # steps 2, 3...: past the bound
    assert request.outcome is not None and request.outcome.status == 500
    assert "step_bound" in request.outcome.message
    assert world.pool.leases() == 0
