# ruff: noqa: E402  (the repository root goes on sys.path before the project imports)
"""Hot-path benchmark: the proxy's CPU per request in the four cells of issue 10's table.

    .venv/bin/python bench/hotpath_bench.py [--baseline-root DIR] [--rounds N]

Cells (concurrency 8, closed loop: each of 8 workers sends its next request when the last one
ends; the fake upstream in a process of its own, 3 accounts):

    stream, short answer            3 chunks of text, streamed
    not streamed                    the same answer, `stream: false`
    stream, 200,000-char answer     one text in 200 chunks of 1,000 characters
    stream, Claude-Code-sized body  a ~120 KB request (system prompt, 16 tools, 40 turns)

With `--js`, the JavaScript proxy it replaces (`antigravity-claude-proxy@2.0.4` from npm,
`bench/js_proxy.py`) runs the same cells against the same fake, and the ratio interlock / JS is
printed. For each cell a fresh proxy process (`interlock serve` against the fake, logs at warning)
serves a warm-up, then the measured requests; its CPU (utime + stime from /proc) over them,
divided by their number, is the figure. With `--baseline-root DIR` the same cells run, in
alternating rounds, on the proxy of another checkout (for example `git worktree add DIR
<commit>`), and the ratio current / baseline is printed: a baseline measured in the same run.
Medians over rounds. Always exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import aiohttp
import js_proxy
from operate_bench import (
    cpu_seconds,
    free_port,
    start_fake,
    start_proxy,
    wait_ready,
    write_config,
)
from proxy_bench import claude_code_sized_body

CONCURRENCY = 8
SHORT = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "hi"}],
}
LONG_ANSWER = {"kind": "stream", "parts": ["x" * 200_000], "chunks": 200}
SHORT_ANSWER = {"kind": "stream", "parts": ["hello there, this is a short answer"], "chunks": 3}


class Cell:
    def __init__(
        self, name: str, body: Callable[[], dict[str, Any]], answer: dict[str, Any], n: int
    ) -> None:
        self.name, self.body, self.answer, self.n = name, body, answer, n


CELLS = (
    Cell("stream, short answer", lambda: {**SHORT, "stream": True}, SHORT_ANSWER, 800),
    Cell("not streamed", lambda: {**SHORT, "stream": False}, SHORT_ANSWER, 800),
    Cell("stream, 200,000-char answer", lambda: {**SHORT, "stream": True}, LONG_ANSWER, 160),
    Cell(
        "stream, Claude-Code-sized body",
        lambda: {**claude_code_sized_body(), "stream": True},
        SHORT_ANSWER,
        240,
    ),
)
VARIANT = {"dashboard": True, "quota": True, "refresh_s": 150}  # the defaults


def launch(target: str | Path, config: Path, workdir: Path, fake: dict[str, Any], port: int) -> Any:
    """Start the proxy under test on `port`: interlock from a checkout, or the JS proxy."""
    if target == "js":
        command, env = js_proxy.prepare(workdir, fake)
        return subprocess.Popen(
            command,
            env={**env, "PORT": str(port), "HOST": "127.0.0.1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return start_proxy(config, port, root=Path(target))


async def measure(
    target: str | Path, config: Path, workdir: Path, fake: dict[str, Any], cell: Cell
) -> float:
    port = free_port()
    proxy = launch(target, config, workdir, fake, port)
    fake_admin = str(fake["auth"])
    url = f"http://127.0.0.1:{port}"
    body = cell.body()
    try:
        await wait_ready(url, proxy)
        connector = aiohttp.TCPConnector(limit=CONCURRENCY)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.post(fake_admin + "/_fake/default", json={"answer": cell.answer}):
                pass

            async def worker(count: int) -> None:
                for _ in range(count):
                    async with session.post(url + "/v1/messages", json=body) as response:
                        await response.read()
                        assert response.status == 200, response.status

            await asyncio.gather(*(worker(8) for _ in range(CONCURRENCY)))  # warm-up
            start = cpu_seconds(proxy.pid)
            await asyncio.gather(*(worker(cell.n // CONCURRENCY) for _ in range(CONCURRENCY)))
            return (cpu_seconds(proxy.pid) - start) / cell.n * 1000
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)


async def main(roots: dict[str, str | Path], rounds: int) -> None:
    print(
        f"# hot-path benchmark: proxy CPU per request, concurrency {CONCURRENCY}, {rounds} rounds"
    )
    fake, described = start_fake()
    results: dict[tuple[str, str], list[float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="interlock-hotpath-") as tmp:
            for round_ in range(1, rounds + 1):
                for cell in CELLS:
                    for label, root in roots.items():
                        config = write_config(Path(tmp), described, VARIANT)
                        value = await measure(root, config, Path(tmp), described, cell)
                        results.setdefault((cell.name, label), []).append(value)
                        print(f"  round {round_}  {label:<9} {cell.name:<32} {value:7.3f} ms")
    finally:
        fake.terminate()
        fake.wait(timeout=30)
    print()
    header = f"{'cell':<32}" + "".join(f"{label:>12}" for label in roots)
    if len(roots) > 1:
        header += "".join(f"{'÷ ' + label:>12}" for label in list(roots)[1:])
    print(header + "   (ms CPU per request, median)")
    for cell in CELLS:
        medians = [statistics.median(results[(cell.name, label)]) for label in roots]
        line = f"{cell.name:<32}" + "".join(f"{m:12.3f}" for m in medians)
        line += "".join(f"{medians[0] / m:12.2f}" for m in medians[1:])
        print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-root", type=Path, help="another checkout to compare with")
    parser.add_argument("--js", action="store_true", help="also the JS proxy 2.0.4 (npm)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    roots: dict[str, str | Path] = {"current": BENCH.parent}
    if args.baseline_root:
        roots["baseline"] = args.baseline_root.resolve()
    if args.js:
        roots["js 2.0.4"] = "js"
    started = time.monotonic()
    asyncio.run(main(roots, args.rounds))
    print(f"\n({time.monotonic() - started:.0f} s)")
