# ruff: noqa: E402  (the repository root goes on sys.path before the project imports)
"""Engine benchmark: what one request costs the retry engine in CPU time and memory.

Run it with `make bench` (`.venv/bin/python bench/engine_bench.py`); it takes about 15 s on an
idle 2-core machine. `--profile` adds a cProfile of both engine paths (where the time goes).

What is measured
----------------
1. Happy path, engine CPU per request: `Engine.open`, `start`, then `StreamOpened`, one
   `ContentReceived`, `StreamEnded`, driven synchronously (no asyncio). Default policy (hybrid
   strategy), 2 accounts; `now` advances 20 s between requests so the hybrid token bucket
   refills and every request takes the same path. A scaling check repeats it with 50 accounts.
2. 429 -> switch -> success, engine CPU per request: the first attempt gets a quota 429
   (Google's generic 429 RESOURCE_EXHAUSTED: quota), the request moves to
   another account at once (v2: no switch pause) and succeeds. Default policy, 4 accounts,
   `now` advances 1 h between requests: each such request costs the hybrid health scores a
   net -9 (-10 for the 429, +1 for the success) and health recovers 10/h per account, so at
   one request every 2 min all four accounts fall below `health.min_usable` within a dozen
   requests and the path changes (the selection adds a hybrid throttle pause). 1 h also
   outlasts every earlier cooldown.
3. Setup with 10,000 requests in flight: `open` + `start` of 10,000 requests that stay in
   Fetching (round-robin strategy: with hybrid, the token bucket of 50 tokens per account would
   send every request after the first 100 simultaneous ones to a throttle Backoff instead).
   Also one more open+start on an engine with 0 and one with 10,000 requests live (medians of
   single timings taken alternately): it must not grow with the number in flight.
4. Memory per in-flight request: tracemalloc around creating 10,000 started requests kept
   alive in a list (request ids are built beforehand; the holding list is included).
5. Replay on the virtual clock: single-request scenarios run through `Runner` on
   `VirtualClock` with the scripted transport of tests/fakes.py (A answers a quota 429 that
   resets in 100 s, B one that resets in 2 h, then A succeeds: 100.1 virtual seconds), against
   the same scenario driven through the bare engine by a minimal synchronous loop.

How to read it
--------------
Each timed line shows the wall-clock (`time.perf_counter_ns`) median and min over REPEATS
repeats after one warm-up, then `cpu`: the median of this thread's CPU time over the same
regions (`time.thread_time_ns`). A repeat times a whole batch and divides by its size, so
per-request figures include the amortised cost of the garbage collector (left enabled, as in
production). On an idle machine wall and cpu agree; when other processes compete for the CPUs
the wall figures inflate and cpu stays near the true cost (the header's load average and the
footer's CPU share say how busy the machine was). Verdicts use the wall median.

Setup (policy, pool, engine, event objects, request ids) is outside the timed regions; effects
and internal events the engine creates are inside. Every path is asserted (final state, number
of SendAttempt effects) so each line measures what it claims. Each line gives its target and
PASS/FAIL, and a ratio to a baseline measured in the same run on the same machine: ratios
travel between machines better than microseconds do.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import platform
import pstats
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from transitions import Machine

from engine.effects import Effect, Finish, SendAttempt
from engine.events import (
    ContentReceived,
    Event,
    StreamEnded,
    StreamOpened,
    TimerFired,
    UpstreamFailed,
)
from engine.machine import Engine
from engine.policy import load_policy
from engine.pool import AccountPool
from engine.request import Request
from engine.runner import Runner, VirtualClock
from tests.fakes import RecordingClient, ScriptedTransport, error, ok
from tests.support import MODEL, quota_429

T = TypeVar("T")

REPEATS = 7
HAPPY_N = 2_000  # requests per repeat, benchmark 1
HAPPY_STEP_S = 20.0
BIG_POOL = 50  # accounts, scaling check of benchmark 1
BIG_POOL_N = 200
SWITCH_N = 1_000  # requests per repeat, benchmark 2
SWITCH_STEP_S = 3600.0  # hybrid health recovers 10/h; see the docstring
SWITCH_ACCOUNTS = 4
LIVE_N = 10_000  # requests in flight, benchmarks 3 and 4
ONE_MORE_SAMPLES = 200  # single open+start timings per repeat, benchmark 3
REPLAY_N = 150  # scenarios per repeat, benchmark 5
BARE_PAIRS = 10_000  # go/back trigger pairs per repeat, baseline
WALL = 1_767_000_000.0

TARGET_STEP_US = 100.0
TARGET_SETUP_US = 20.0
TARGET_GROWTH = 1.5  # one more open+start with 10,000 live vs 0 live
TARGET_BYTES = 8 * 1024

OPENED = StreamOpened()
CONTENT = ContentReceived(content="chunk")
ENDED = StreamEnded()
TIMER = TimerFired()
QUOTA_429 = UpstreamFailed(facts=quota_429(), wall=WALL)


# timing, statistics, report -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Timing:
    """Per-operation cost of one repeat: wall clock and this thread's CPU time."""

    wall_us: float
    cpu_us: float


class Stopwatch:
    """Accumulates wall (`perf_counter_ns`) and thread CPU (`thread_time_ns`) over regions."""

    __slots__ = ("_cpu0", "_wall0", "cpu_ns", "wall_ns")

    def __init__(self) -> None:
        self.wall_ns = 0
        self.cpu_ns = 0
        self._wall0 = 0
        self._cpu0 = 0

    def __enter__(self) -> Stopwatch:
        self._cpu0 = time.thread_time_ns()
        self._wall0 = time.perf_counter_ns()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_ns += time.perf_counter_ns() - self._wall0
        self.cpu_ns += time.thread_time_ns() - self._cpu0

    def per_op(self, ops: int) -> Timing:
        return Timing(self.wall_ns / ops / 1000.0, self.cpu_ns / ops / 1000.0)


@dataclass(frozen=True, slots=True)
class Stat:
    median: float
    min: float
    cpu: float | None = None  # median thread CPU time, same unit

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        return cls(statistics.median(values), min(values))

    @classmethod
    def timed(cls, timings: Sequence[Timing]) -> Stat:
        walls = [t.wall_us for t in timings]
        return cls(
            statistics.median(walls), min(walls), statistics.median(t.cpu_us for t in timings)
        )


@dataclass(slots=True)
class Report:
    passed: int = 0
    failed: int = 0

    def section(self, title: str) -> None:
        print(f"\n{title}")

    def line(
        self,
        label: str,
        value: Stat,
        unit: str,
        *,
        target: float | None = None,
        note: str = "",
        digits: int = 2,
    ) -> None:
        """One measurement: median (min, cpu), then target and verdict (lower is better)."""
        cpu = "" if value.cpu is None else f", cpu {value.cpu:.{digits}f}"
        spread = f"(min {value.min:.{digits}f}{cpu})"
        text = f"  {label:<38} {value.median:>9.{digits}f} {unit:<7} {spread:<23}"
        if target is not None:
            ok_ = value.median <= target
            self.passed += ok_
            self.failed += not ok_
            text += f" target <= {target:g}: {'PASS' if ok_ else 'FAIL'}"
        if note:
            text += f"  | {note}"
        print(text.rstrip())

    def info(self, text: str) -> None:
        print(f"    {text}")


def repeat(run: Callable[[], T], repeats: int = REPEATS) -> list[T]:
    """One warm-up call, then `repeats` calls; each call times only its own measured region."""
    run()
    return [run() for _ in range(repeats)]


def machine_header() -> str:
    cpu = platform.processor()
    if not cpu:
        try:
            for text in Path("/proc/cpuinfo").read_text().splitlines():
                if text.startswith("model name"):
                    cpu = text.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("transitions", "pydantic"))
    return (
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {cpu or 'unknown CPU'}; "
        f"{platform.python_implementation()} {platform.python_version()}; {versions}"
    )


# fixtures -------------------------------------------------------------------------------------
def make_engine(account_ids: Sequence[str], **overrides: Any) -> Engine:
    policy = load_policy(overrides={"endpoints": ("daily", "prod"), **overrides})
    return Engine(policy, AccountPool(policy, account_ids), rng=random.Random(0))


def accounts(n: int) -> list[str]:
    return [f"acct{i}" for i in range(n)]


def request_ids(n: int) -> list[str]:
    return [f"r{i}" for i in range(n)]


class _Model:
    """The model a bare `transitions` machine moves (slotted, as the engine's Request)."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = "a"


class PlainSlotted:
    """Baseline for setup: a plain slotted object with the containers a request needs."""

    __slots__ = ("effects", "id", "model", "now", "pending", "state", "stream", "tried")

    def __init__(self, request_id: str, model: str, stream: bool, now: float) -> None:
        self.id = request_id
        self.model = model
        self.stream = stream
        self.now = now
        self.state = "Selecting"
        self.effects: list[Effect] = []
        self.pending: list[Event] = []
        self.tried: set[str] = set()


# baselines ------------------------------------------------------------------------------------
def bare_trigger() -> Timing:
    """One trigger on a 2-state `transitions` machine configured as the engine's (shared
    machine, model=None, send_event, no auto transitions), fired through its Event object."""
    machine = Machine(
        model=None,
        states=["a", "b"],
        transitions=[
            {"trigger": "go", "source": "a", "dest": "b"},
            {"trigger": "back", "source": "b", "dest": "a"},
        ],
        initial="a",
        send_event=True,
        auto_transitions=False,
        model_attribute="state",
    )
    go, back = machine.events["go"], machine.events["back"]
    model = _Model()
    with Stopwatch() as watch:
        for _ in range(BARE_PAIRS):
            go.trigger(model)
            back.trigger(model)
    assert model.state == "a"
    return watch.per_op(2 * BARE_PAIRS)


def plain_objects() -> Timing:
    ids = request_ids(LIVE_N)
    keep: list[PlainSlotted] = []
    with Stopwatch() as watch:
        for rid in ids:
            keep.append(PlainSlotted(rid, MODEL, True, 0.0))
    return watch.per_op(LIVE_N)


# 1. happy path --------------------------------------------------------------------------------
def happy(pool_size: int = 2, n: int = HAPPY_N) -> Timing:
    engine = make_engine(accounts(pool_size))
    ids = request_ids(n)
    now, good = 0.0, 0
    with Stopwatch() as watch:
        for rid in ids:
            r = engine.open(rid, MODEL, True, now)
            engine.start(r, now)
            engine.handle(r, OPENED, now)
            engine.handle(r, CONTENT, now)
            engine.handle(r, ENDED, now)
            good += r.state == "Done" and r.sends == 1
            now += HAPPY_STEP_S
    assert good == n, f"only {good} of {n} requests took the happy path"
    return watch.per_op(n)


def happy_path_once() -> tuple[list[str], int]:
    """The states the happy path visits, and its machine transitions (internal ones included)."""
    engine = make_engine(accounts(2))
    r = engine.open("r0", MODEL, True, 0.0)
    effects = list(engine.start(r, 0.0))
    states = [r.state]
    for event in (OPENED, CONTENT, ENDED):
        effects += engine.handle(r, event, 0.0)
        states.append(r.state)
    sends = [e for e in effects if isinstance(e, SendAttempt)]
    finish = [e for e in effects if isinstance(e, Finish)]
    assert r.state == "Done" and len(sends) == 1 and finish and finish[0].outcome.ok
    return states, r.steps + 1  # steps counts every fired event except ContentReceived


# 2. 429 -> switch -> success ------------------------------------------------------------------
def switch() -> Timing:
    engine = make_engine(accounts(SWITCH_ACCOUNTS))
    ids = request_ids(SWITCH_N)
    now, good = 0.0, 0
    with Stopwatch() as watch:
        for rid in ids:
            r = engine.open(rid, MODEL, True, now)
            engine.start(r, now)
            engine.handle(r, QUOTA_429, now)
            assert r.state == "Fetching", f"not sent to another account: {r.state}"
            engine.handle(r, OPENED, now)
            engine.handle(r, CONTENT, now)
            engine.handle(r, ENDED, now)
            good += r.state == "Done" and r.sends == 2
            now += SWITCH_STEP_S
    assert good == SWITCH_N, f"only {good} of {SWITCH_N} requests took 429 -> switch -> success"
    return watch.per_op(SWITCH_N)


def switch_path_once() -> tuple[list[str], list[str], int]:
    """States visited, accounts sent to, and machine transitions of the 429 -> switch path."""
    engine = make_engine(accounts(SWITCH_ACCOUNTS))
    r = engine.open("r0", MODEL, True, 0.0)
    effects = list(engine.start(r, 0.0))
    states = [r.state]
    effects += engine.handle(r, QUOTA_429, 0.0)
    states.append(r.state)
    assert r.state == "Fetching"
    for event in (OPENED, CONTENT, ENDED):
        effects += engine.handle(r, event, 0.0)
        states.append(r.state)
    sends = [e.account for e in effects if isinstance(e, SendAttempt)]
    assert r.state == "Done" and len(sends) == 2 and sends[0] != sends[1], (r.state, sends)
    return states, sends, r.steps + 1


# 3. setup with 10,000 in flight ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SetupRun:
    batch: Timing  # open+start per request while opening 10,000 (GC enabled)
    batch_no_gc: Timing  # the same with the cyclic GC disabled (what GC adds)
    open_only: Timing  # Engine.open alone (the Request allocation), 10,000 of them
    one_more_idle_us: float  # one more open+start, 0 live (median of single timings)
    one_more_busy_us: float  # one more open+start, 10,000 live


def one_more_us(idle: Engine, busy: Engine, samples: int) -> tuple[float, float]:
    """Median time of a single open+start on `idle` and on `busy`, sampled alternately so both
    see the same machine load (each request is dropped again, so the live counts hold)."""
    times: tuple[list[int], list[int]] = ([], [])
    for i in range(samples):
        rid = f"extra{i}"
        for engine, sink in zip((idle, busy), times, strict=True):
            start = time.perf_counter_ns()
            r = engine.open(rid, MODEL, True, 0.0)
            engine.start(r, 0.0)
            sink.append(time.perf_counter_ns() - start)
            assert r.state == "Fetching"
    return statistics.median(times[0]) / 1000.0, statistics.median(times[1]) / 1000.0


def open_batch(engine: Engine, ids: Sequence[str], collect: bool) -> tuple[Timing, list[Request]]:
    """Open and start one request per id and keep them all: the cost per request, the requests."""
    live: list[Request] = []
    gc.collect()
    if not collect:
        gc.disable()
    try:
        with Stopwatch() as watch:
            for rid in ids:
                r = engine.open(rid, MODEL, True, 0.0)
                engine.start(r, 0.0)
                live.append(r)
    finally:
        gc.enable()
    assert all(r.state == "Fetching" for r in live)
    return watch.per_op(len(ids)), live


def setup_run() -> SetupRun:
    ids = request_ids(LIVE_N)
    engine = make_engine(accounts(2), strategy="round-robin")
    batch, live = open_batch(engine, ids, collect=True)
    idle_engine = make_engine(accounts(2), strategy="round-robin")
    idle, busy = one_more_us(idle_engine, engine, ONE_MORE_SAMPLES)
    opened: list[Request] = []
    with Stopwatch() as watch:
        for rid in ids:
            opened.append(engine.open(rid, MODEL, True, 0.0))
    del live, opened
    batch_no_gc, _ = open_batch(make_engine(accounts(2), strategy="round-robin"), ids, False)
    return SetupRun(batch, batch_no_gc, watch.per_op(LIVE_N), idle, busy)


# 4. memory per in-flight request --------------------------------------------------------------
def traced_bytes(create: Callable[[str], object], ids: Sequence[str]) -> tuple[float, list[str]]:
    """Bytes per object while `len(ids)` objects made by `create` are alive, and the largest
    allocation sites (file:line, bytes per object)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    keep = [create(rid) for rid in ids]
    after = tracemalloc.get_traced_memory()[0]
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    assert len(keep) == len(ids)
    ours = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    top = []
    for stat in ours.statistics("lineno")[:4]:
        frame = stat.traceback[0]
        name = Path(frame.filename)
        where = name.relative_to(ROOT) if name.is_relative_to(ROOT) else Path(name.name)
        top.append(f"{where}:{frame.lineno} {stat.size / len(ids):.0f} B")
    return (after - before) / len(ids), top


def started_request_factory() -> Callable[[str], Request]:
    engine = make_engine(accounts(2), strategy="round-robin")

    def create(rid: str) -> Request:
        r = engine.open(rid, MODEL, True, 0.0)
        engine.start(r, 0.0)
        return r

    for i in range(100):  # warm: first-use caches are not per-request memory
        create(f"warm{i}")
    return create


# 5. replay on the virtual clock ---------------------------------------------------------------
EXPECTED_LOG = [(0.0, "A", "daily"), (0.05, "B", "daily"), (100.05, "A", "daily")]
ANSWER_DELAY_S = 0.05  # the scripted transport's defaults
CHUNK_GAP_S = 0.01
REPLAY_CHUNKS = (ContentReceived(content="chunk0"), ContentReceived(content="chunk1"))
A_100S = UpstreamFailed(facts=quota_429(100_000), wall=WALL)
B_2H = UpstreamFailed(facts=quota_429(7_200_000), wall=WALL)


@dataclass(frozen=True, slots=True)
class ReplayRun:
    scenario: Timing
    virtual_s: float  # virtual seconds simulated per scenario


def replay_run() -> ReplayRun:
    watch, virtual = Stopwatch(), 0.0
    for _ in range(REPLAY_N):
        clock = VirtualClock()
        engine = make_engine(["A", "B"], strategy="round-robin")
        scripts = {"A": [error(quota_429(100_000)), ok()], "B": [error(quota_429(7_200_000))]}
        transport = ScriptedTransport(clock, scripts)
        runner = Runner(engine, transport, clock)
        client = RecordingClient(clock)
        with watch:
            outcome = clock.run(runner.run("r1", MODEL, True, client))
        virtual += clock.now()
        assert outcome.ok and transport.log == EXPECTED_LOG, transport.log
    return ReplayRun(watch.per_op(REPLAY_N), virtual / REPLAY_N)


def drive_sync(
    engine: Engine, scripts: dict[str, list[UpstreamFailed | None]], log: list[Any]
) -> Request:
    """The replay scenario without the runner: answers (None is a streamed success) arrive
    `ANSWER_DELAY_S` after each SendAttempt, timers fire exactly at `wait_until`."""
    now = 0.0
    r = engine.open("r1", MODEL, True, now)
    effects = engine.start(r, now)
    while r.outcome is None:
        send = next((e for e in effects if isinstance(e, SendAttempt)), None)
        if send is None:
            assert r.wait_until is not None
            now = r.wait_until
            effects = engine.handle(r, TIMER, now)
            continue
        log.append((round(now, 6), send.account, send.endpoint))
        script = scripts[send.account]
        answer = script.pop(0) if len(script) > 1 else script[0]
        now += ANSWER_DELAY_S
        if answer is not None:
            effects = engine.handle(r, answer, now)
            continue
        engine.handle(r, OPENED, now)
        for chunk in REPLAY_CHUNKS:
            engine.handle(r, chunk, now)
            now += CHUNK_GAP_S
        effects = engine.handle(r, ENDED, now)
    return r


def sync_replay() -> Timing:
    watch = Stopwatch()
    for _ in range(REPLAY_N):
        engine = make_engine(["A", "B"], strategy="round-robin")
        scripts: dict[str, list[UpstreamFailed | None]] = {"A": [A_100S, None], "B": [B_2H]}
        log: list[Any] = []
        with watch:
            r = drive_sync(engine, scripts, log)
        assert r.outcome is not None and r.outcome.ok and log == EXPECTED_LOG, log
    return watch.per_op(REPLAY_N)


async def _nothing() -> None:
    await asyncio.sleep(0)


def empty_clock_run() -> Timing:
    """What `VirtualClock.run` costs by itself (a fresh event loop per scenario)."""
    coroutines: list[Coroutine[Any, Any, None]] = [_nothing() for _ in range(REPLAY_N)]
    with Stopwatch() as watch:
        for coroutine in coroutines:
            VirtualClock().run(coroutine)
    return watch.per_op(REPLAY_N)


# profile --------------------------------------------------------------------------------------
def profile(run: Callable[[], object], title: str) -> None:
    print(f"\nprofile: {title}, top 12 by own time (cProfile inflates per-call costs)")
    profiler = cProfile.Profile()
    profiler.runcall(run)
    pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats("tottime").print_stats(12)


# main -----------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the interlock retry engine.")
    parser.add_argument("--profile", action="store_true", help="cProfile both engine paths")
    args = parser.parse_args(argv)
    began, began_cpu = time.perf_counter(), time.process_time()
    report = Report()
    print("interlock engine benchmark")
    print(machine_header())
    print(
        f"load average at start: {os.getloadavg()[0]:.2f}; {REPEATS} repeats after 1 warm-up; "
        "value = wall median (wall min, thread-CPU median); GC enabled"
    )

    report.section("baselines (same run)")
    trigger = Stat.timed(repeat(bare_trigger))
    report.line("bare transitions trigger, 2 states", trigger, "us/trig")
    plain = Stat.timed(repeat(plain_objects))
    report.line("plain 8-slot object (2 lists, 1 set)", plain, "us/obj", digits=3)

    report.section(f"1. happy path, hybrid, 2 accounts, now += {HAPPY_STEP_S:g} s per request")
    states, fired = happy_path_once()
    happy_stat = Stat.timed(repeat(happy))
    report.line(
        "engine CPU per request",
        happy_stat,
        "us/req",
        target=TARGET_STEP_US,
        note=f"{happy_stat.median / trigger.median:.1f}x bare trigger",
    )
    report.info(
        f"state after start and each event: {' -> '.join(states)}; {fired} transitions, "
        f"{happy_stat.median / fired:.1f} us each = "
        f"{happy_stat.median / fired / trigger.median:.1f}x a bare trigger"
    )
    big = Stat.timed(repeat(lambda: happy(BIG_POOL, BIG_POOL_N)))
    report.line(
        f"the same with {BIG_POOL} accounts",
        big,
        "us/req",
        note=f"{big.median / happy_stat.median:.1f}x 2 accounts (scaling check, no target)",
    )

    report.section(
        f"2. quota 429 -> switch -> success, hybrid, {SWITCH_ACCOUNTS} accounts, "
        f"now += {SWITCH_STEP_S:g} s per request"
    )
    states, sends, fired = switch_path_once()
    switch_stat = Stat.timed(repeat(switch))
    report.line(
        "engine CPU per request",
        switch_stat,
        "us/req",
        target=TARGET_STEP_US,
        note=f"{switch_stat.median / trigger.median:.1f}x bare trigger, "
        f"{switch_stat.median / happy_stat.median:.1f}x happy path",
    )
    report.info(
        f"state after start and each event: {' -> '.join(states)}; "
        f"sends to {' then '.join(sends)}; {fired} transitions, "
        f"{switch_stat.median / fired:.1f} us each"
    )

    report.section(f"3. setup, round-robin, 2 accounts, {LIVE_N:,} requests left in Fetching")
    runs = repeat(setup_run)
    batch = Stat.timed([r.batch for r in runs])
    report.line(
        f"open+start, {LIVE_N:,} in a row",
        batch,
        "us/req",
        target=TARGET_SETUP_US,
        note=f"{batch.median / plain.median:.0f}x plain object",
    )
    no_gc = Stat.timed([r.batch_no_gc for r in runs])
    report.line(
        "the same with the cyclic GC disabled",
        no_gc,
        "us/req",
        note=f"GC adds {batch.median - no_gc.median:.1f} us/req while 10,000 stay live",
    )
    opened = Stat.timed([r.open_only for r in runs])
    report.line(
        "of which Engine.open (Request alloc)",
        opened,
        "us/req",
        note=f"{opened.median / plain.median:.1f}x plain object",
    )
    idle = Stat.of([r.one_more_idle_us for r in runs])
    busy = Stat.of([r.one_more_busy_us for r in runs])
    report.line("one more open+start, 0 live", idle, "us")
    report.line(f"one more open+start, {LIVE_N:,} live", busy, "us")
    growth = Stat.of([r.one_more_busy_us / r.one_more_idle_us for r in runs])
    report.line(
        f"ratio {LIVE_N:,} live / 0 live",
        growth,
        "x",
        target=TARGET_GROWTH,
        note="about 1: setup is O(1) in the number in flight",
    )

    report.section(f"4. memory, {LIVE_N:,} started requests alive (tracemalloc)")
    ids = request_ids(LIVE_N)
    request_bytes, top = traced_bytes(started_request_factory(), ids)
    plain_bytes, _ = traced_bytes(lambda rid: PlainSlotted(rid, MODEL, True, 0.0), ids)
    report.line(
        "bytes per in-flight request",
        Stat(request_bytes, request_bytes),
        "B/req",
        target=TARGET_BYTES,
        note=f"{request_bytes / plain_bytes:.1f}x plain object ({plain_bytes:.0f} B)",
        digits=0,
    )
    report.info("deterministic (one run); largest allocation sites per request:")
    report.info("  " + "; ".join(top))

    report.section(
        f"5. replay: {REPLAY_N} scenarios per repeat (A 429 resets in 100 s, B in 2 h, A ok)"
    )
    replays = repeat(replay_run)
    runner_stat = Stat.timed([r.scenario for r in replays])
    virtual_s = replays[0].virtual_s
    sync_stat = Stat.timed(repeat(sync_replay))
    loop_stat = Stat.timed(repeat(empty_clock_run))
    report.line(
        "Runner + VirtualClock per scenario",
        runner_stat,
        "us",
        note=f"{1e6 / runner_stat.median:,.0f} scenarios/s, "
        f"{virtual_s * 1e6 / runner_stat.median:,.0f} virtual s per real s",
        digits=0,
    )
    report.line(
        "baseline: engine driven synchronously",
        sync_stat,
        "us",
        note=f"{1e6 / sync_stat.median:,.0f} scenarios/s",
        digits=0,
    )
    report.line(
        "of Runner's time: an empty clock.run",
        loop_stat,
        "us",
        note="a fresh event loop per scenario",
        digits=0,
    )
    report.info(
        f"runner overhead: {runner_stat.median / sync_stat.median:.1f}x the bare engine "
        f"({runner_stat.median - sync_stat.median:.0f} us per scenario); each scenario "
        f"simulates {virtual_s:.2f} virtual s (informational, no target)"
    )

    if args.profile:
        profile(happy, "happy path")
        profile(switch, "429 -> switch -> success")

    wall = time.perf_counter() - began
    share = (time.process_time() - began_cpu) / wall
    verdict = "uncontended" if share >= 0.9 else "the machine was busy: wall times are inflated"
    print(
        f"\n{report.passed} PASS, {report.failed} FAIL; total {wall:.1f} s wall; "
        f"CPU share of this process {share:.0%} ({verdict})"
    )
    return 0  # a report, not a gate: timings on shared machines are too noisy to fail on


if __name__ == "__main__":
    sys.exit(main())
