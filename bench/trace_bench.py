"""Trace benchmark: how fast traces replay on the virtual clock.

Measures (medians over repeats, with min):
1. single-request traces replayed per second (parse + replay + check), target >= 1,000/s, and
   what each part costs; baseline: the same request driven synchronously through the engine
   with no runner, no clock, no trace;
2. one trace spanning two hours of cooldowns (four quota strikes), target: milliseconds;
3. the whole corpus in tests/traces/ (if present), as `make test` replays it.
Always exits 0; read PASS/FAIL against the targets.
"""

from __future__ import annotations

import asyncio
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.trace.format import Header, parse_lines, read_trace  # noqa: E402
from adapters.trace.recorder import TraceRecorder  # noqa: E402
from adapters.trace.replay import check, replay  # noqa: E402
from engine.events import ContentReceived, StreamEnded, StreamOpened, UpstreamFailed  # noqa: E402
from engine.machine import Engine  # noqa: E402
from engine.policy import load_policy  # noqa: E402
from engine.pool import AccountPool  # noqa: E402
from engine.runner import Runner, VirtualClock  # noqa: E402
from tests.fakes import RecordingClient, ScriptedTransport, error, ok  # noqa: E402
from tests.support import quota_429  # noqa: E402

REPEATS = 7


def record(scripts: dict[str, list[object]], arrivals: list[float], **policy: object) -> list[str]:
    """Record requests arriving at `arrivals` through the runner on the virtual clock."""
    clock = VirtualClock(start=0.0)
    the_policy = load_policy(overrides={"endpoints": ("daily", "prod"), **policy})
    pool = AccountPool(the_policy, list(scripts), now=0.0)
    engine = Engine(the_policy, pool, rng=random.Random(1))
    lines: list[str] = []
    header = Header(
        policy=the_policy.model_dump(mode="json"),
        seed=1,
        start=0.0,
        wall_start=clock.wall(),
        accounts=[pool.record(a) for a in pool.account_ids],
    )
    recorder = TraceRecorder(lines.append, header)
    engine.on_step = recorder.on_step
    runner = Runner(engine, ScriptedTransport(clock, scripts), clock, recorder)  # type: ignore[arg-type]

    async def main() -> None:
        async def one(i: int, at: float) -> None:
            await asyncio.sleep(at - clock.now())
            await runner.run(f"r{i}", "claude-sonnet-4-6", True, RecordingClient(clock), f"r{i}")

        await asyncio.gather(*(one(i, at) for i, at in enumerate(arrivals)))

    clock.run(main())
    return lines


def timed(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """Median and min seconds per call over REPEATS batches of n calls."""
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n)
    return statistics.median(samples), min(samples)


def verdict(ok_: bool) -> str:
    return "PASS" if ok_ else "FAIL"


def main() -> int:
    print("interlock trace benchmark")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs; CPython {platform.python_version()}"
    )
    print(f"{REPEATS} repeats; value = median (min)\n")

    single = record({"A": [error(quota_429()), ok()], "B": [ok()]}, [0.0])
    print(
        f"1. single-request trace (429 -> 5 s switch pause -> other account -> ok), "
        f"{len(single)} lines"
    )
    full, full_min = timed(lambda: check(t := parse_lines(single), replay(t)), 200)
    parse, _ = timed(lambda: parse_lines(single), 200)
    trace = parse_lines(single)
    only_replay, _ = timed(lambda: replay(trace), 200)
    print(
        f"  parse + replay + check   {full * 1e6:8.0f} us  (min {full_min * 1e6:.0f})  -> "
        f"{1 / full:,.0f} traces/s  target >= 1,000/s: {verdict(1 / full >= 1000)}"
    )
    print(f"    of which parse         {parse * 1e6:8.0f} us;  replay {only_replay * 1e6:.0f} us")

    policy = load_policy(overrides={"endpoints": ("daily", "prod")})
    facts = quota_429()

    def synchronous() -> None:
        pool = AccountPool(policy, ["A", "B"])
        engine = Engine(policy, pool, rng=random.Random(1))
        r = engine.open("r", "m", True, 0.0)
        engine.start(r, 0.0)
        engine.handle(r, UpstreamFailed(facts=facts), 0.05)
        engine.handle(r, __import__("engine.events").events.TimerFired(), r.wait_until or 0.0)
        for event in (StreamOpened(), ContentReceived(content=None), StreamEnded()):
            engine.handle(r, event, r.now + 0.05)

    base, _ = timed(synchronous, 200)
    print(
        f"  baseline: the same request through the bare engine {base * 1e6:.0f} us "
        f"-> replay costs {full / base:.1f}x (runner, virtual event loop, trace I/O)\n"
    )

    two_hours = record(
        {"A": [error(quota_429())]},
        [0.0, 70.0, 400.0, 2300.0, 9600.0],
        switch_account_delay_ms=0,
        max_wait_before_error_ms=0,
    )
    span = max(float(line.split('"t":')[1].split(",")[0]) for line in two_hours[1:])
    trace2 = parse_lines(two_hours)
    took, took_min = timed(lambda: replay(trace2), 20)
    print(f"2. a trace spanning {span / 3600:.1f} h of cooldowns (5 requests, quota tiers)")
    print(
        f"  replay                   {took * 1e3:8.2f} ms  (min {took_min * 1e3:.2f})  "
        f"target milliseconds: {verdict(took < 0.05)}; "
        f"{span / took:,.0f} virtual s per real s\n"
    )

    corpus = sorted((ROOT / "tests" / "traces").glob("*.jsonl"))
    if corpus:
        traces = [read_trace(p) for p in corpus]
        start = time.perf_counter()
        for t in traces:
            check(t, replay(t))
        elapsed = time.perf_counter() - start
        print(f"3. corpus: {len(corpus)} traces replayed with --check in {elapsed * 1e3:.0f} ms")
    else:
        print("3. corpus: tests/traces/ is empty")
    return 0


if __name__ == "__main__":
    sys.exit(main())
