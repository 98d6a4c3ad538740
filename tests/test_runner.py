"""The runner drives the engine through its ports, on a virtual clock with exact times."""

from __future__ import annotations

import asyncio
import random
import time

from engine.effects import Outcome
from engine.events import UpstreamFailed
from engine.machine import Engine
from engine.policy import load_policy
from engine.pool import AccountPool
from engine.runner import Runner, VirtualClock
from engine.runner.ports import DedupWindow
from tests.fakes import Answer, ListSink, RecordingClient, ScriptedTransport, error, ok
from tests.support import ENDPOINTS, MODEL, SERVER_500, capacity, quota_429


def make(
    accounts: list[str],
    scripts: dict[str, list[Answer]],
    window: DedupWindow | None = None,
    **overrides: object,
):
    clock = VirtualClock()
    policy = load_policy(overrides={"endpoints": ENDPOINTS, **overrides})
    pool = AccountPool(policy, accounts)
    engine = Engine(policy, pool, rng=random.Random(0))
    transport = ScriptedTransport(clock, scripts)
    sink = ListSink()
    return clock, pool, Runner(engine, transport, clock, sink, window), transport, sink


def test_a_normal_answer_streams_every_chunk_once_and_succeeds() -> None:
    clock, pool, runner, transport, _ = make(["A"], {"A": [ok(chunks=3)]})
    client = RecordingClient(clock)
    outcome = clock.run(runner.run("r1", MODEL, True, client))
    assert outcome.ok
    assert client.received == ["chunk0", "chunk1", "chunk2"]
    assert client.committed_at == 0.05
    assert transport.log == [(0.0, "A", "daily")]
    assert pool.leases() == 0


def test_a_two_hour_quota_wait_costs_no_real_time_and_happens_at_exact_virtual_times() -> None:
    # A's quota resets in 100 s; B is out for 2 h: the request tries B at once, then waits for
    # A (within the 120 s wait budget) and is served by A at exactly its reset, 100.05 s.
    scripts = {"A": [error(quota_429(100_000)), ok()], "B": [error(quota_429(7_200_000))]}
    clock, pool, runner, transport, _ = make(["A", "B"], scripts, strategy="round-robin")
    client = RecordingClient(clock)
    started = time.monotonic()
    outcome = clock.run(runner.run("r1", MODEL, True, client))
    assert time.monotonic() - started < 1.0
    assert outcome.ok
    assert transport.log == [(0.0, "A", "daily"), (0.05, "B", "daily"), (100.05, "A", "daily")]


def test_a_client_that_leaves_mid_wait_cancels_everything_and_releases_the_account() -> None:
    clock, pool, runner, transport, _ = make(["A"], {"A": [error(capacity(503))]})
    client = RecordingClient(clock, leave_at=7.0)
    outcome = clock.run(runner.run("r1", MODEL, True, client))
    assert outcome.status == 499
    assert clock.now() == 7.0
    # capacity without a hint: each target rests for its tier (5 s), the request waits for the
    # earliest, retries it (then 10 s rests), and is waiting again when the client leaves
    assert transport.log == [
        (0.0, "A", "daily"),
        (0.05, "A", "prod"),
        (5.05, "A", "daily"),
        (5.1, "A", "prod"),
    ]
    assert pool.leases() == 0


def test_a_client_that_leaves_mid_stream_cancels_the_upstream_attempt() -> None:
    clock, pool, runner, transport, _ = make(["A"], {"A": [ok(chunks=100, gap=1.0)]})
    client = RecordingClient(clock, leave_at=3.5)
    outcome = clock.run(runner.run("r1", MODEL, True, client))
    assert outcome.status == 499 and outcome.committed
    assert transport.cancelled == 1
    assert len(client.received) == 4
    assert pool.leases() == 0


def test_a_hanging_upstream_ends_at_the_deadline_with_a_timeout() -> None:
    clock, pool, runner, transport, _ = make(["A"], {"A": [Answer("hang")]}, deadline_ms=30_000)
    client = RecordingClient(clock)
    outcome = clock.run(runner.run("r1", MODEL, True, client))
    assert (outcome.status, outcome.error_type) == (504, "timeout_error")
    assert clock.now() == 30.0
    assert transport.cancelled == 1


def test_a_stream_cut_after_commit_is_one_error_and_never_resent() -> None:
    scripts = {"A": [Answer("drop", chunks=2)], "B": [ok()]}
    clock, pool, runner, transport, _ = make(["A", "B"], scripts)
    client = RecordingClient(clock)
    outcome = clock.run(runner.run("r1", MODEL, True, client))
    assert not outcome.ok and outcome.committed
    assert client.received == ["chunk0", "chunk1"]
    assert len(transport.log) == 1


def test_concurrent_requests_share_one_pool_and_one_virtual_clock_deterministically() -> None:
    def once() -> list[tuple[float, str, str]]:
        scripts = {"A": [error(quota_429()), ok()], "B": [error(SERVER_500), ok()], "C": [ok()]}
        clock, pool, runner, transport, _ = make(["A", "B", "C"], scripts)

        async def main() -> None:
            clients = [RecordingClient(clock) for _ in range(5)]
            await asyncio.gather(
                *(runner.run(f"r{i}", MODEL, True, c) for i, c in enumerate(clients))
            )
            assert all(c.outcome and c.outcome.ok for c in clients)
            assert pool.leases() == 0

        clock.run(main())
        return transport.log

    first = once()
    assert len(first) >= 5
    assert all(once() == first for _ in range(3))


def test_the_trace_sink_sees_arrival_inputs_and_outputs_in_time_order() -> None:
    clock, pool, runner, transport, sink = make(["A"], {"A": [ok(chunks=1)]})
    clock.run(runner.run("r1", MODEL, True, RecordingClient(clock)))
    kinds = [r[0] for r in sink.records]
    assert kinds[0] == "arrived" and kinds[-1] == "emitted"
    times = [r[2] for r in sink.records]
    assert times == sorted(times)


class PollingClient(RecordingClient):
    """A client whose disconnect `wait_disconnected` learns only at its next poll (every 0.5 s,
    as `AiohttpClientStream` polls the transport), while `disconnected()` already knows."""

    async def wait_disconnected(self) -> None:
        assert self.leave_at is not None
        while self.clock.now() < self.leave_at:
            await asyncio.sleep(0.5)

    def disconnected(self) -> bool:
        return self.leave_at is not None and self.clock.now() >= self.leave_at


def test_a_client_gone_between_two_polls_gets_no_further_upstream_attempt() -> None:
    # A fails at 0.3 s with a 500 (the request would move to the next target at once); the
    # client left at 0.2 s, but the disconnect poll only notices it at 0.5 s
    clock, pool, runner, transport, _ = make(
        ["A", "B"], {"A": [error(SERVER_500, delay=0.3)]}, strategy="round-robin"
    )
    client = PollingClient(clock, leave_at=0.2)
    outcome = clock.run(runner.run("r1", MODEL, True, client))
    assert outcome.status == 499
    assert transport.log == [(0.0, "A", "daily")]
    assert clock.now() == 0.3
    assert pool.leases() == 0


def test_a_client_gone_between_two_polls_ends_a_wait_without_the_retry_it_waited_for() -> None:
    clock, pool, runner, transport, _ = make(["A"], {"A": [error(capacity(503))]})
    client = PollingClient(clock, leave_at=5.01)  # the wait ends at 5.05, the poll at 5.5
    outcome = clock.run(runner.run("r1", MODEL, True, client))
    assert outcome.status == 499
    assert transport.log == [(0.0, "A", "daily"), (0.05, "A", "prod")]
    assert clock.now() == 5.05


# the shared 429 dedup window ---------------------------------------------------------------------
class Window:
    """A shared dedup window that answers every claim with `answer` and logs the claims."""

    def __init__(self, answer: bool | None) -> None:
        self.answer = answer
        self.claims: list[tuple[str, str, str, int]] = []

    async def claim(self, account: str, model: str, holder: str, ttl_ms: int) -> bool | None:
        self.claims.append((account, model, holder, ttl_ms))
        return self.answer


def quota_run(window: Window | None) -> tuple[Outcome, list[tuple[float, str, str]], ListSink]:
    """Account A already has one quota strike (an earlier 429, outside the window); then a
    quota 429 without a reset, then ok. Strike 1 rests A for the 60 s tier, which the request
    waits out; strike 2 rests it 5 min, past the 120 s wait budget."""
    clock, pool, runner, transport, sink = make(["A"], {"A": [error(quota_429()), ok()]}, window)
    pool.note_rate_limit("A", MODEL, "earlier", -100.0)
    outcome = clock.run(runner.run("r1", MODEL, True, RecordingClient(clock)))
    return outcome, transport.log, sink


def _failed(sink: ListSink) -> list[UpstreamFailed]:
    return [e for kind, _, _, e in sink.records if isinstance(e, UpstreamFailed)]


def test_a_quota_429_inside_a_window_another_instance_holds_does_not_escalate() -> None:
    window = Window(False)
    outcome, log, sink = quota_run(window)
    assert window.claims == [("A", MODEL, "r1", 2000)]
    assert [e.shared_duplicate for e in _failed(sink)] == [True]  # the trace holds the fact
    assert outcome.ok  # still strike 1: A rested the 60 s tier and served
    assert log == [(0.0, "A", "daily"), (60.05, "A", "daily")]


def test_a_quota_429_whose_window_is_its_own_or_unknown_escalates_as_on_one_instance() -> None:
    for window in (Window(True), Window(None), None):
        outcome, log, sink = quota_run(window)
        assert [e.shared_duplicate for e in _failed(sink)] == [False]
        assert outcome.status == 429  # strike 2: a 5 min rest, past the wait budget
        assert log == [(0.0, "A", "daily")]


def test_the_shared_window_is_asked_only_about_429s_of_the_account_x_model_scope() -> None:
    window = Window(False)
    clock, _, runner, _, _ = make(
        ["A"], {"A": [error(capacity(429)), error(SERVER_500), ok()]}, window
    )
    assert clock.run(runner.run("r1", MODEL, True, RecordingClient(clock))).ok
    assert window.claims == []
