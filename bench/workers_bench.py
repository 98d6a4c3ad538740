# ruff: noqa: E402  (the repository root goes on sys.path before the project imports)
"""Workers benchmark: requests per second through `interlock serve --workers 2` against one
worker, at concurrency 64 (target: at least 1.6 times).

    .venv/bin/python bench/workers_bench.py [--seconds 8] [--rounds 2]

The fake upstream runs in a process of its own (`interlock fake-upstream`, 3 accounts, short
answers); the proxy runs as `interlock serve --workers N` (quota reading off, logs at warning);
this process sends the load: 64 workers, each with its own connection, closed loop, short
non-streamed requests. Throughput is counted over `--seconds` after a 2 s warm-up; N = 1 and
N = 2 alternate over `--rounds`. On a 2-core machine the load generator and the fake share the
cores with the proxy, so the ratio here understates what a second core gives the proxy alone
(the proxy's own CPU is printed too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import aiohttp
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


async def measure(config: Path, workers: int, seconds: float) -> tuple[float, float]:
    port = free_port()
    proxy = start_proxy(config, port, workers=workers)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, proxy)
        await asyncio.sleep(1.0)  # every worker up
        done = 0
        counting = False
        stop_at = time.monotonic() + 2.0 + seconds

        async def worker() -> None:
            nonlocal done
            async with aiohttp.ClientSession() as session:
                while time.monotonic() < stop_at:
                    async with session.post(url + "/v1/messages", json=BODY) as response:
                        await response.read()
                    if counting:
                        done += 1

        tasks = [asyncio.ensure_future(worker()) for _ in range(CONCURRENCY)]
        await asyncio.sleep(2.0)
        counting, start, cpu = True, time.monotonic(), tree_cpu(proxy.pid)
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - start
        return done / elapsed, (tree_cpu(proxy.pid) - cpu) / elapsed
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)


async def main(seconds: float, rounds: int) -> None:
    print(f"# workers benchmark: requests/s at concurrency {CONCURRENCY}, {rounds} rounds")
    fake, described = start_fake()
    results: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    try:
        with tempfile.TemporaryDirectory(prefix="interlock-workers-") as tmp:
            for round_ in range(1, rounds + 1):
                for workers in (1, 2):
                    variant = {"dashboard": True, "quota": False, "refresh_s": 150}
                    config = write_config(Path(tmp), described, variant)
                    rate, cpu = await measure(config, workers, seconds)
                    results[workers].append((rate, cpu))
                    print(
                        f"  round {round_}  workers {workers}  {rate:7.1f} req/s  "
                        f"proxy CPU {cpu * 100:5.1f} % of a core"
                    )
    finally:
        fake.terminate()
        fake.wait(timeout=30)
    one = statistics.median(r for r, _ in results[1])
    two = statistics.median(r for r, _ in results[2])
    print(
        f"\nworkers 1: {one:.1f} req/s, workers 2: {two:.1f} req/s, ratio {two / one:.2f} "
        f"(target >= 1.6): {'PASS' if two / one >= 1.6 else 'FAIL'}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.rounds))
