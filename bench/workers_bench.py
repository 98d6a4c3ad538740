# ruff: noqa: E402  (the repository root goes on sys.path before the project imports)
"""Workers benchmark: requests per second through `interlock serve --workers 2` against one
worker, at concurrency 64 (target: at least 1.6 times).

    .venv/bin/python bench/workers_bench.py [--seconds 8] [--rounds 2] [--harness lean|aiohttp]

The proxy runs as `interlock serve --workers N` (quota reading off, logs at warning); the load
is 64 connections, closed loop, short non-streamed requests, counted over `--seconds` after a
2 s warm-up; N = 1 and N = 2 alternate over `--rounds`.

On this 2-core machine the upstream and the load generator share the cores with the proxy, so
what they cost decides how much of the second core the proxy can get. `--harness lean` (the
default) uses `lean_harness.py`: a raw-asyncio upstream replaying the real fake's captured
answers and a raw-asyncio load generator, about 0.05 ms of CPU per request between them.
`--harness aiohttp` uses `interlock fake-upstream` and aiohttp clients, about 0.4 ms per
request, close to half the proxy's own, and the ratio it gives mostly measures them. The CPU
of the proxy, the upstream and the load generator per request is printed for both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import aiohttp
import lean_harness
from operate_bench import cpu_seconds, free_port, start_fake, start_proxy, wait_ready, write_config

CONCURRENCY = 64
BODY = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
}


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (from /proc, this moment)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [pid, *(int(p) for p in children.read_text().split())] if children.exists() else [pid]
    total = 0.0
    for each in pids:
        with contextlib.suppress(FileNotFoundError):  # a child that just ended
            total += cpu_seconds(each)
    return total


async def aiohttp_load(port: int, seconds: float) -> tuple[int, float]:
    url = f"http://127.0.0.1:{port}/v1/messages"
    done = 0
    counting = False
    stop_at = time.monotonic() + 2.0 + seconds

    async def worker() -> None:
        nonlocal done
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < stop_at:
                async with session.post(url, json=BODY) as response:
                    await response.read()
                if counting:
                    done += 1

    tasks = [asyncio.ensure_future(worker()) for _ in range(CONCURRENCY)]
    await asyncio.sleep(2.0)
    counting, start = True, time.monotonic()
    await asyncio.gather(*tasks)
    return done, time.monotonic() - start


class Sample(NamedTuple):
    rate: float  # requests/s
    proxy: float  # CPU seconds per request: the proxy (all its processes)
    upstream: float  # the upstream
    generator: float  # the load generator (this process)


async def measure(
    config: Path, workers: int, seconds: float, harness: str, upstream_pid: int
) -> Sample:
    port = free_port()
    proxy = start_proxy(config, port, workers=workers)
    try:
        await wait_ready(f"http://127.0.0.1:{port}", proxy)
        await asyncio.sleep(1.0)  # every worker up
        before = tree_cpu(proxy.pid), cpu_seconds(upstream_pid), time.process_time()
        if harness == "lean":
            done, elapsed = await lean_harness.load(
                port, json.dumps(BODY).encode(), CONCURRENCY, 2.0, seconds
            )
        else:
            done, elapsed = await aiohttp_load(port, seconds)
        after = tree_cpu(proxy.pid), cpu_seconds(upstream_pid), time.process_time()
        # CPU over warm-up and window alike: per request of both (the rate is steady)
        total = done * (elapsed + 2.0) / elapsed
        per = [(b - a) / total for a, b in zip(before, after, strict=True)]
        return Sample(done / elapsed, *per)
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)


def start_lean_upstream(described: dict[str, object]) -> tuple[subprocess.Popen[str], dict]:
    lean = subprocess.Popen(
        [
            sys.executable,
            str(BENCH / "lean_harness.py"),
            "upstream",
            "--fake",
            json.dumps(described),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert lean.stdout is not None
    return lean, {**described, "endpoints": json.loads(lean.stdout.readline())}


async def main(seconds: float, rounds: int, harness: str) -> None:
    print(
        f"# workers benchmark: requests/s at concurrency {CONCURRENCY}, {rounds} rounds, "
        f"{harness} harness"
    )
    fake, described = start_fake()
    upstream, lean = fake, None
    results: dict[int, list[Sample]] = {1: [], 2: []}
    try:
        if harness == "lean":
            lean, described = start_lean_upstream(described)
            upstream = lean
        with tempfile.TemporaryDirectory(prefix="interlock-workers-") as tmp:
            for round_ in range(1, rounds + 1):
                for workers in (1, 2):
                    variant = {"dashboard": True, "quota": False, "refresh_s": 150}
                    config = write_config(Path(tmp), described, variant)
                    sample = await measure(config, workers, seconds, harness, upstream.pid)
                    results[workers].append(sample)
                    print(
                        f"  round {round_}  workers {workers}  {sample.rate:7.1f} req/s  CPU per "
                        f"request: proxy {sample.proxy * 1e3:.2f} ms, upstream "
                        f"{sample.upstream * 1e3:.2f} ms, load generator "
                        f"{sample.generator * 1e3:.2f} ms"
                    )
    finally:
        for process in (fake, lean):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
    one = statistics.median(s.rate for s in results[1])
    two = statistics.median(s.rate for s in results[2])
    print(
        f"\nworkers 1: {one:.1f} req/s, workers 2: {two:.1f} req/s, ratio {two / one:.2f} "
        f"(target >= 1.6): {'PASS' if two / one >= 1.6 else 'FAIL'}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--harness", choices=["lean", "aiohttp"], default="lean")
    args = parser.parse_args()
    if args.harness == "lean":
        lean_harness.event_loop_policy()
    asyncio.run(main(args.seconds, args.rounds, args.harness))
