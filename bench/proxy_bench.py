# ruff: noqa: E402  (the repository root goes on sys.path before the project imports)
"""Proxy benchmark: what interlock adds on the wire, and what an idle stream costs in memory.

Run it with `make bench` (`.venv/bin/python bench/proxy_bench.py`); it takes about 45 s on an
idle 2-core machine. `--profile` adds cProfiles of the proxy process (own time per component,
the hottest functions, interlock's functions by cumulative time) while it serves 100 short and
20 long answers at concurrency 1 and while 1,000 streams sit idle.

Processes
---------
The load generator (aiohttp clients) runs in this process; the servers run in a child process
(this file with `--child`): the real proxy (`adapters.serve.start` in sandbox mode, round-robin
strategy, 3 simulated accounts, INFO logging to a file as `interlock serve` does) in front of
the fake upstream, plus a small control app (statistics, scripting, profiling, a trivial
handler). Both share the child's event loop, as in `interlock serve --sandbox`. Every address is
on 127.0.0.1. The child's CPU time (`time.process_time`) over a batch, divided by its requests,
is the server-side cost per request: fake alone when straight, fake + interlock when through.

What is measured
----------------
1. Time to first byte, short streamed answer (3 chunks), at concurrency 1, 8 and 64 (one
   aiohttp ClientSession per level with a connection limit equal to the level, warmed up first;
   each of the level's workers sends its next request as soon as the last one ends):
   - straight: POST `<daily>/v1internal:streamGenerateContent?alt=sse` to the fake with the
     body and headers interlock sent (taken from the fake's request log after one proxied
     call) and a valid bearer token;
   - through: POST /v1/messages with stream=true to interlock.
   TTFB = from just before the request is sent to the first response body bytes (interlock
   holds its headers until the first content, so both are measured to the first body bytes).
   Straight and through batches alternate (rounds) so both see the same machine load. Also one
   line at concurrency 1 with a Claude-Code-sized request (~120 KB: system prompt, 16 tools,
   40 turns), where parsing and converting the body is part of what interlock adds.
2. Streamed throughput, long answer (200 chunks of ~100 characters of text, no delay):
   per-stream chunks/s and MB/s (first body byte to end of stream), the whole answer's time,
   and aggregate chunks/s over a batch, straight and through, at the same levels. Above
   concurrency 1 the per-stream rate mostly says how streams interleave (the fake writes a
   whole answer in one burst, interlock relays chunk by chunk), so compare the aggregates.
3. Memory of idle streams: clients wait on an upstream that hangs (the fake's `hang()` as
   default answer; first-byte timeout 300 s; ping interval 1 s so every proxied stream has
   opened its SSE response and pinged, the state of a stream that waits long). 1,000 streams
   with a small request, 100 with a small one (all within the proxy's upstream connection
   limit) and 100 with the Claude-Code-sized one. Each scenario runs in a fresh child (so no
   scenario reuses memory another freed); its VmRSS (after `gc.collect()`) is read after a
   warm-up (the same scenario with 20 streams, then torn down) and again with every stream in
   flight. Attribution: the clients live in this process and are not counted; the child's
   growth is split between the fake (measured alone by the same requests sent straight to it,
   subtracted per request that reached it) and interlock. Baseline: a trivial aiohttp handler
   that never answers (what aiohttp alone costs per idle request). Also the child's CPU share
   while the streams sit idle.

How to read it
--------------
Latency lines show median (p90, min) in ms; `added` is the through median minus the straight
median of the same level. Targets give PASS/FAIL; ratios compare with baselines measured in the
same run. The script always exits 0: timings on shared machines are too noisy to gate on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp
from aiohttp import web

from adapters import serve
from adapters.config import load_settings
from adapters.fake.specs import from_spec
from adapters.server import PROXY

HOST = "127.0.0.1"
ACCOUNTS = 3
MODEL = "claude-sonnet-4-6"
LEVELS = (1, 8, 64)
# per level: (TTFB rounds, TTFB requests per round and mode, throughput rounds, streams per round)
PLAN: dict[int, tuple[int, int, int, int]] = {
    1: (4, 25, 2, 10),
    8: (4, 40, 2, 16),
    64: (3, 64, 2, 64),
}
BIG_ROUNDS, BIG_PER_ROUND = 4, 10  # the Claude-Code-sized request, concurrency 1
SHORT_ANSWER: dict[str, Any] = {"kind": "stream", "parts": ["Hello from the fake upstream."]}
LONG_CHUNKS, LONG_CHUNK_CHARS = 200, 100
LONG_ANSWER: dict[str, Any] = {
    "kind": "stream",
    "parts": ["x" * (LONG_CHUNKS * LONG_CHUNK_CHARS)],
    "chunks": LONG_CHUNKS,
}
TARGET_ADDED_MS = 2.0

IDLE_N = 1_000
IDLE_SMALL_N = 100  # through interlock, all within the proxy's upstream connection limit
IDLE_WARM_N = 20
IDLE_PING_S = 1.0
IDLE_FIRST_BYTE_S = 300.0
IDLE_SETTLE_S = 1.6  # > ping interval: every proxied stream has sent its headers and a ping
IDLE_CPU_WINDOW_S = 1.5
RAMP_BATCH = 100
READY_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 15.0
CHILD_START_TIMEOUT_S = 30.0
CHILD_EXIT_TIMEOUT_S = 20.0
PHASE_TIMEOUT_S = 120.0  # any single batch
TOTAL_TIMEOUT_S = 240.0  # the whole benchmark


class BenchError(Exception):
    """A response that was not what the benchmark expects (the numbers would be meaningless)."""


# statistics and report ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Stat:
    median: float
    p90: float
    min: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        ordered = sorted(values)
        p90 = statistics.quantiles(ordered, n=10, method="inclusive")[-1] if len(values) > 1 else 0
        return cls(statistics.median(ordered), p90 or ordered[0], ordered[0])


@dataclass(slots=True)
class Report:
    passed: int = 0
    failed: int = 0

    def section(self, title: str) -> None:
        print(f"\n{title}")

    def line(self, label: str, value: str, note: str = "") -> None:
        print(f"  {label:<34} {value}{'  | ' + note if note else ''}".rstrip())

    def verdict(self, ok: bool) -> str:
        self.passed += ok
        self.failed += not ok
        return "PASS" if ok else "FAIL"

    def info(self, text: str) -> None:
        print(f"    {text}")


def ms(stat: Stat) -> str:
    return f"{stat.median:7.2f} ms (p90 {stat.p90:6.2f}, min {stat.min:5.2f})"


def machine_header() -> str:
    cpu = platform.processor()
    if not cpu:
        with contextlib.suppress(OSError):
            for text in Path("/proc/cpuinfo").read_text().splitlines():
                if text.startswith("model name"):
                    cpu = text.split(":", 1)[1].strip()
                    break
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("aiohttp", "pydantic"))
    return (
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {cpu or 'unknown CPU'}; "
        f"{platform.python_implementation()} {platform.python_version()}; {versions}"
    )


def raise_fd_limit(wanted: int = 8192) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


# the child: proxy + fake upstream + control app ----------------------------------------------
def memory_kib() -> tuple[int, int]:
    """(VmRSS, RssAnon) of this process in KiB."""
    values = {"VmRSS": 0, "RssAnon": 0}
    for text in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = text.partition(":")
        if key in values:
            values[key] = int(rest.split()[0])
    return values["VmRSS"], values["RssAnon"]


@dataclass
class ChildState:
    served: serve.Served
    idle_open: int = 0
    never: asyncio.Event = field(default_factory=asyncio.Event)
    profiler: cProfile.Profile | None = None


CHILD = web.AppKey("child", ChildState)


async def _idle(request: web.Request) -> web.StreamResponse:
    """The baseline: a trivial handler that never answers."""
    state = request.app[CHILD]
    await request.read()
    state.idle_open += 1
    try:
        await state.never.wait()
    finally:
        state.idle_open -= 1
    return web.Response(text="never")


async def _stats(request: web.Request) -> web.Response:
    state = request.app[CHILD]
    fake = state.served.fake
    assert fake is not None
    if request.query.get("gc"):
        gc.collect()
    rss, anon = memory_kib()
    generate = fake.requests(path="streamGenerateContent")
    return web.json_response(
        {
            "rss_kib": rss,
            "anon_kib": anon,
            "cpu_s": time.process_time(),
            "idle_open": state.idle_open,
            "fake_open": sum(r.finished is None for r in generate),
            "proxy_leases": state.served.runner.app[PROXY].engine.pool.leases(),
        }
    )


async def _default(request: web.Request) -> web.Response:
    fake = request.app[CHILD].served.fake
    assert fake is not None
    fake.set_default(from_spec((await request.json())["answer"]))
    return web.json_response({"ok": True})


async def _sample(request: web.Request) -> web.Response:
    """The last streamGenerateContent request interlock sent the fake: URL, headers, body."""
    fake = request.app[CHILD].served.fake
    assert fake is not None
    last = fake.requests(path="streamGenerateContent")[-1]
    url = f"{fake.urls[last.endpoint]}{last.path}?{last.query}"
    return web.json_response({"url": url, "headers": last.headers, "body": last.body})


async def _profile(request: web.Request) -> web.Response:
    state = request.app[CHILD]
    if request.match_info["what"] == "start":
        state.profiler = cProfile.Profile()
        state.profiler.enable()
        return web.Response(text="started")
    profiler, state.profiler = state.profiler, None
    if profiler is None:
        return web.Response(text="not profiling")
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(12)
    text = [by_component(profiler), out.getvalue().strip("\n"), own_code(profiler, 16)]
    return web.Response(text="\n\n".join(text))


COMPONENTS = (  # (what the path contains, component); the first match wins
    ("/adapters/fake/", "fake upstream (not interlock)"),
    ("/adapters/", "interlock adapters"),
    ("/engine/", "interlock engine"),
    ("/transitions/", "transitions (engine's FSM library)"),
    ("/aiohttp/", "aiohttp"),
    ("/asyncio/", "asyncio"),
    ("/pydantic", "pydantic"),
    ("/json/", "json"),
    ("/logging/", "logging"),
)


def profile_table(profiler: cProfile.Profile) -> dict[tuple[str, int, str], Any]:
    table: dict[tuple[str, int, str], Any] = getattr(pstats.Stats(profiler), "stats", {})
    return table


def by_component(profiler: cProfile.Profile) -> str:
    """Own time (tottime) summed per component; C functions are grouped by kind."""
    totals: dict[str, float] = {}
    for (filename, _, func), (_, _, tottime, _, _) in profile_table(profiler).items():
        if filename == "~":
            if "epoll" in func:
                name = "epoll wait (idle)"
            elif "socket" in func:
                name = "socket syscalls (send/recv)"
            elif "pydantic" in func:
                name = "pydantic"
            else:
                name = "other C functions (isinstance, dict, json scanner, ...)"
        else:
            name = next((c for key, c in COMPONENTS if key in filename), "other Python")
        totals[name] = totals.get(name, 0.0) + tottime
    busy = sum(t for name, t in totals.items() if not name.startswith("epoll")) or 1.0
    rows = sorted(totals.items(), key=lambda item: -item[1])
    lines = [f"own time by component (busy total {busy:.3f} s under cProfile):"]
    for name, seconds in rows:
        share = "" if name.startswith("epoll") else f"{seconds / busy:5.0%}"
        lines.append(f"  {seconds:8.3f} s {share:>5}  {name}")
    return "\n".join(lines)


def own_code(profiler: cProfile.Profile, limit: int) -> str:
    """Interlock's own functions (adapters and engine, not the fake) by cumulative time."""
    rows = []
    for (filename, line, func), (_, ncalls, tottime, cumtime, _) in profile_table(profiler).items():
        path = Path(filename)
        if not path.is_relative_to(ROOT):
            continue
        where = path.relative_to(ROOT)
        if where.parts[0] in ("adapters", "engine") and where.parts[1] != "fake":
            rows.append((cumtime, tottime, ncalls, f"{where}:{line}({func})"))
    rows.sort(reverse=True)
    head = "   cumtime   tottime    ncalls  interlock's own functions by cumulative time"
    body = [f"{c:10.3f}{t:10.3f}{n:10d}  {name}" for c, t, n, name in rows[:limit]]
    return "\n".join([head, *body])


async def child_main(ping_s: float, first_byte_s: float) -> None:
    raise_fd_limit()
    serve.configure_logging("info")  # as `interlock serve` (stderr goes to a file)
    settings = load_settings(
        env={},
        overrides={
            "server": {"host": HOST, "port": 0, "ping_interval_s": ping_s},
            "policy": {"strategy": "round-robin"},
            "upstream": {"first_byte_timeout_s": first_byte_s},
        },
    )
    served = await serve.start(settings, sandbox_accounts=ACCOUNTS, seed=0)
    assert served.fake is not None
    app = web.Application()
    app[CHILD] = ChildState(served)
    app.router.add_post("/idle", _idle)
    app.router.add_get("/stats", _stats)
    app.router.add_post("/default", _default)
    app.router.add_get("/sample", _sample)
    app.router.add_post("/profile/{what}", _profile)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, HOST, 0).start()
    hello = {
        "proxy": served.url,
        "control": f"http://{HOST}:{runner.addresses[0][1]}",
        "token": served.fake.access_token("account-1"),
    }
    print(json.dumps(hello), flush=True)
    # run until the parent closes our stdin (or dies): then stop everything, bounded
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CHILD_EXIT_TIMEOUT_S / 2):
            await runner.cleanup()
            await served.stop()


# the parent's side of the child ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Target:
    url: str
    body: bytes
    headers: dict[str, str]
    marker: bytes  # must appear near the end of a complete answer


@dataclass
class Child:
    process: asyncio.subprocess.Process
    proxy: str
    control: str
    token: str
    session: aiohttp.ClientSession
    log: Path

    async def stats(self, collect: bool = False) -> dict[str, Any]:
        url = self.control + "/stats" + ("?gc=1" if collect else "")
        async with self.session.get(url) as response:
            data: dict[str, Any] = await response.json()
            return data

    async def set_default(self, answer: dict[str, Any] | str) -> None:
        async with self.session.post(self.control + "/default", json={"answer": answer}) as r:
            r.raise_for_status()

    async def profile(self, what: str) -> str:
        async with self.session.post(f"{self.control}/profile/{what}") as response:
            return await response.text()

    async def straight_target(self) -> Target:
        """The request interlock last sent the fake, with a valid token of its own."""
        async with self.session.get(self.control + "/sample") as response:
            sample = await response.json()
        headers = {
            k: v
            for k, v in sample["headers"].items()
            if k not in ("host", "content-length", "authorization", "accept-encoding")
        }
        headers["authorization"] = f"Bearer {self.token}"
        body = json.dumps(sample["body"]).encode()
        return Target(sample["url"], body, headers, b'"finishReason": "STOP"')

    def through_target(self, body: dict[str, Any]) -> Target:
        data = json.dumps({**body, "stream": True}).encode()
        return Target(
            self.proxy + "/v1/messages",
            data,
            {"content-type": "application/json"},
            b"message_stop",
        )


@contextlib.asynccontextmanager
async def child_process(ping_s: float = 15.0, first_byte_s: float = 120.0) -> Any:
    log = Path(tempfile.mkstemp(prefix="interlock-bench-", suffix=".log")[1])
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            "--ping",
            str(ping_s),
            "--first-byte",
            str(first_byte_s),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4))
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), CHILD_START_TIMEOUT_S)
        if not line:
            raise BenchError(f"the child did not start; its log: {log.read_text()[-2000:]}")
        hello = json.loads(line)
        yield Child(process, hello["proxy"], hello["control"], hello["token"], session, log)
    finally:
        await session.close()
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), CHILD_EXIT_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()
        log.unlink(missing_ok=True)


# clients --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Sample:
    ttfb_ms: float  # request sent -> first body bytes
    body_ms: float  # first body bytes -> end of stream
    nbytes: int
    events: int  # SSE events (blank-line terminated)


async def fetch(session: aiohttp.ClientSession, target: Target) -> Sample:
    start = time.perf_counter()
    async with session.post(target.url, data=target.body, headers=target.headers) as response:
        if response.status != 200:
            text = (await response.text())[:300]
            raise BenchError(f"{target.url}: HTTP {response.status}: {text}")
        first = await response.content.readany()
        got_first = time.perf_counter()
        if not first:
            raise BenchError(f"{target.url}: empty body")
        nbytes, events, tail = len(first), first.count(b"\n\n"), first[-256:]
        while chunk := await response.content.readany():
            nbytes += len(chunk)
            events += (tail[-1:] + chunk).count(b"\n\n")
            tail = (tail + chunk)[-256:]
        end = time.perf_counter()
    if target.marker not in tail:
        raise BenchError(f"{target.url}: incomplete answer, ends with {tail[-120:]!r}")
    return Sample((got_first - start) * 1e3, (end - got_first) * 1e3, nbytes, events)


@dataclass(frozen=True, slots=True)
class Batch:
    samples: list[Sample]
    wall_s: float
    server_cpu_ms: float  # the child's CPU time over the batch, per request


async def run_batch(
    session: aiohttp.ClientSession, child: Child, target: Target, n: int, concurrency: int
) -> Batch:
    """`n` requests by `concurrency` workers, each sending its next as soon as one ends."""
    samples: list[Sample] = []
    todo = iter(range(n))

    async def worker() -> None:
        for _ in todo:
            samples.append(await fetch(session, target))

    before = (await child.stats())["cpu_s"]
    start = time.perf_counter()
    async with asyncio.timeout(PHASE_TIMEOUT_S):
        await asyncio.gather(*(worker() for _ in range(min(n, concurrency))))
    wall = time.perf_counter() - start
    after = (await child.stats())["cpu_s"]
    return Batch(samples, wall, (after - before) * 1e3 / n)


@dataclass
class Compared:
    straight: list[Batch] = field(default_factory=list)
    through: list[Batch] = field(default_factory=list)

    @staticmethod
    def samples(batches: list[Batch]) -> list[Sample]:
        return [s for b in batches for s in b.samples]

    @staticmethod
    def cpu_ms(batches: list[Batch]) -> float:
        return statistics.median(b.server_cpu_ms for b in batches)


async def compare(
    session: aiohttp.ClientSession,
    child: Child,
    pair: tuple[Target, Target],
    *,
    rounds: int,
    per_round: int,
    concurrency: int,
) -> Compared:
    """Alternate straight and through batches so that both see the same machine load."""
    out = Compared()
    for i in range(rounds):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for which in order:
            batch = await run_batch(session, child, pair[which], per_round, concurrency)
            (out.straight if which == 0 else out.through).append(batch)
    return out


def client_session(limit: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
    )


def claude_code_sized_body() -> dict[str, Any]:
    """About 120 KB: a system prompt, 16 tools with small schemas, 40 turns of text."""
    words = "the quick brown fox jumps over the lazy dog while the proxy converts it "
    tools = [
        {
            "name": f"tool_{i}",
            "description": (words * 8)[:500],
            "input_schema": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "a file path"},
                    "limit": {"type": "integer", "minimum": 1},
                    "flags": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["path"],
            },
        }
        for i in range(16)
    ]
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": (words * 34)[:2_400]}
        for i in range(40)
    ]
    messages.append({"role": "user", "content": "and now?"})
    system = [{"type": "text", "text": (words * 140)[:10_000]}]
    return {
        "model": MODEL,
        "max_tokens": 1000,
        "system": system,
        "tools": tools,
        "messages": messages,
    }


SMALL_BODY: dict[str, Any] = {
    "model": MODEL,
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi"}],
}


# 1 + 2: latency and throughput ----------------------------------------------------------------
@dataclass
class Level:
    concurrency: int
    ttfb: Compared
    long: Compared


async def warm(session: aiohttp.ClientSession, targets: Sequence[Target], n: int) -> None:
    for target in targets:
        await asyncio.gather(*(fetch(session, target) for _ in range(n)))


async def latency_runs(child: Child, profile: bool) -> tuple[list[Level], Compared, list[str]]:
    await child.set_default(SHORT_ANSWER)
    async with client_session(4) as session:
        for _ in range(2 * ACCOUNTS):  # every account: token, project discovery
            await fetch(session, child.through_target(SMALL_BODY))
        small = (await child.straight_target(), child.through_target(SMALL_BODY))
        await fetch(session, child.through_target(claude_code_sized_body()))
        big = (await child.straight_target(), child.through_target(claude_code_sized_body()))
        await warm(session, big, 3)
        big_run = await compare(
            session, child, big, rounds=BIG_ROUNDS, per_round=BIG_PER_ROUND, concurrency=1
        )
    levels = []
    for c in LEVELS:
        ttfb_rounds, ttfb_n, long_rounds, long_n = PLAN[c]
        async with client_session(c) as session:
            await child.set_default(SHORT_ANSWER)
            await warm(session, small, c)
            ttfb = await compare(
                session, child, small, rounds=ttfb_rounds, per_round=ttfb_n, concurrency=c
            )
            await child.set_default(LONG_ANSWER)
            await warm(session, small, min(c, 8))
            long = await compare(
                session, child, small, rounds=long_rounds, per_round=long_n, concurrency=c
            )
        levels.append(Level(c, ttfb, long))
    profiles: list[str] = []
    if profile:
        async with client_session(1) as session:
            for answer, n in ((SHORT_ANSWER, 100), (LONG_ANSWER, 20)):
                await child.set_default(answer)
                await child.profile("start")
                await run_batch(session, child, small[1], n, 1)
                profiles.append(await child.profile("stop"))
    return levels, big_run, profiles


def report_ttfb(report: Report, label: str, run: Compared, concurrency: int = 1) -> None:
    straight = Stat.of([s.ttfb_ms for s in Compared.samples(run.straight)])
    through = Stat.of([s.ttfb_ms for s in Compared.samples(run.through)])
    added = through.median - straight.median
    report.line(f"{label} straight to the fake", ms(straight))
    verdict = report.verdict(added < TARGET_ADDED_MS)
    report.line(
        f"{label} through interlock",
        ms(through),
        f"added {added:+.2f} ms ({through.median / straight.median:.1f}x); "
        f"target added < {TARGET_ADDED_MS:g} ms: {verdict}",
    )
    cpu_s, cpu_t = Compared.cpu_ms(run.straight), Compared.cpu_ms(run.through)
    report.info(
        f"server CPU per request: fake alone {cpu_s:.2f} ms, fake + interlock {cpu_t:.2f} ms "
        f"-> interlock {cpu_t - cpu_s:.2f} ms; {len(Compared.samples(run.through))} requests "
        "per mode"
    )
    if concurrency > 1:
        report.info(
            f"one event loop serves them all: a request queues behind the others' work, about "
            f"{concurrency} x {cpu_t - cpu_s:.2f} = {concurrency * (cpu_t - cpu_s):.1f} ms of "
            "interlock CPU per round of requests"
        )


def report_throughput(report: Report, level: Level) -> None:
    c = level.concurrency
    rates = []
    for name, batches in (("straight", level.long.straight), ("through ", level.long.through)):
        samples = Compared.samples(batches)
        per_stream = sorted(LONG_CHUNKS / s.body_ms for s in samples)  # k chunks/s
        slow = per_stream[len(per_stream) // 10]  # the slowest tenth streams at most this
        mbps = statistics.median(s.nbytes / s.body_ms / 1e3 for s in samples)
        total = sum(len(b.samples) for b in batches) * LONG_CHUNKS
        aggregate = total / sum(b.wall_s for b in batches) / 1e3
        whole = Stat.of([s.ttfb_ms + s.body_ms for s in samples])
        rates.append((statistics.median(per_stream), aggregate))
        report.line(
            f"c={c:<3} {name} per stream",
            f"{rates[-1][0]:6.1f} k chunks/s (p10 {slow:6.1f}), {mbps:5.1f} MB/s",
            f"aggregate {aggregate:5.1f} k chunks/s; whole answer {whole.median:.1f} ms "
            f"(p90 {whole.p90:.1f})",
        )
    (straight, straight_all), (through, through_all) = rates
    cpu_s, cpu_t = Compared.cpu_ms(level.long.straight), Compared.cpu_ms(level.long.through)
    report.info(
        f"through / straight: {through / straight:.3g}x per stream, "
        f"{through_all / straight_all:.2f}x aggregate; interlock CPU "
        f"{(cpu_t - cpu_s) * 1e3 / LONG_CHUNKS:.0f} us per upstream chunk "
        f"({cpu_t - cpu_s:.1f} ms per stream; fake alone {cpu_s:.1f} ms)"
    )


# 3: idle streams ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class IdleRun:
    n: int
    ready: int  # streams in flight when measured
    reached: int  # of which reached the fake upstream
    growth_kib: int  # VmRSS growth
    anon_kib: int  # RssAnon growth
    idle_cpu: float  # the child's CPU share (of one core) with the streams idle
    failures: int  # client tasks that ended with an error instead of waiting
    body_bytes: int  # of the request each client sent
    profile: str = ""  # cProfile of the child over an idle window (--profile)


async def hold(session: aiohttp.ClientSession, target: Target) -> None:
    async with session.post(target.url, data=target.body, headers=target.headers) as response:
        await response.content.read()  # never ends: the upstream hangs


async def open_idle(
    child: Child, target: Target, n: int, counter: str
) -> tuple[list[asyncio.Task[None]], aiohttp.ClientSession, int]:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None)
    )
    tasks: list[asyncio.Task[None]] = []
    ready = 0
    for first in range(0, n, RAMP_BATCH):  # a burst of 1,000 connects would overflow backlog
        batch = range(first, min(first + RAMP_BATCH, n))
        tasks += [asyncio.create_task(hold(session, target)) for _ in batch]
        await asyncio.sleep(0.05)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        ready = (await child.stats())[counter]
        if ready >= n or all(t.done() for t in tasks):
            break
        await asyncio.sleep(0.1)
    return tasks, session, ready


async def close_idle(
    child: Child, tasks: list[asyncio.Task[None]], session: aiohttp.ClientSession
) -> int:
    """Cancel the clients, wait until the child has let go of every stream; the failures."""
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    await session.close()
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        stats = await child.stats()
        if stats["idle_open"] + stats["fake_open"] + stats["proxy_leases"] == 0:
            break
        await asyncio.sleep(0.1)
    return sum(not isinstance(r, asyncio.CancelledError) for r in results)


async def idle_run(kind: str, n: int, *, big: bool = False, profile: bool = False) -> IdleRun:
    """One scenario in a fresh child: `bare` (the trivial handler), `straight` (the fake
    hanging) or `through` (interlock in front of the hanging fake); `big`: the request is the
    Claude-Code-sized one (for `straight`: what interlock makes of it)."""
    body = claude_code_sized_body() if big else SMALL_BODY
    async with child_process(IDLE_PING_S, IDLE_FIRST_BYTE_S) as child:
        await child.set_default(SHORT_ANSWER)
        async with client_session(4) as session:
            for _ in range(2 * ACCOUNTS):
                await fetch(session, child.through_target(body))
            straight = await child.straight_target()
            await fetch(session, straight)
        if kind == "bare":
            target = Target(child.control + "/idle", b"{}", {}, b"")
            counter = "idle_open"
        elif kind == "straight":
            target, counter = straight, "fake_open"
        else:
            target, counter = child.through_target(body), "proxy_leases"
        await child.set_default("hang")
        # warm-up: the same scenario, small, so first-use allocations are not per stream
        tasks, session, _ = await open_idle(child, target, IDLE_WARM_N, counter)
        await asyncio.sleep(IDLE_SETTLE_S)
        await close_idle(child, tasks, session)
        before = await child.stats(collect=True)
        tasks, session, ready = await open_idle(child, target, n, counter)
        try:
            await asyncio.sleep(IDLE_SETTLE_S)
            after = await child.stats(collect=True)
            window = time.perf_counter()
            await asyncio.sleep(IDLE_CPU_WINDOW_S)
            later = await child.stats()
            window = time.perf_counter() - window
            if profile:
                await child.profile("start")
                await asyncio.sleep(IDLE_CPU_WINDOW_S)
                text = await child.profile("stop")
        finally:
            failures = await close_idle(child, tasks, session)
    return IdleRun(
        n,
        ready,
        after["fake_open"],
        after["rss_kib"] - before["rss_kib"],
        after["anon_kib"] - before["anon_kib"],
        (later["cpu_s"] - after["cpu_s"]) / window,
        failures,
        len(target.body),
        text if profile else "",
    )


def report_idle(report: Report, runs: dict[str, IdleRun]) -> None:
    bare = runs["bare"]
    per_bare = bare.growth_kib / bare.n
    report.line(
        f"baseline: aiohttp handler, {bare.n:,} idle",
        f"{per_bare:6.1f} KiB/request",
        f"idle CPU {bare.idle_cpu:.0%} of a core",
    )
    fake_kib: dict[str, float] = {}
    for key, label in (
        ("through", "interlock, 1,000 idle streams"),
        ("through_100", "interlock, 100 idle streams"),
        ("through_big", "interlock, 100, ~120 KB request"),
    ):
        fake = runs["straight_big" if key == "through_big" else "straight"]
        fake_kib[key] = fake.growth_kib / fake.n
        run = runs[key]
        subtracted = run.reached * fake_kib[key]
        per = (run.growth_kib - subtracted) / run.n
        note = (
            f"{per / per_bare:.1f}x baseline; {run.reached} of {run.n:,} reached the fake "
            f"({subtracted / 1024:.1f} MiB subtracted); idle CPU {run.idle_cpu:.0%} of a core"
        )
        if key == "through_big":
            note = f"{per * 1024 / run.body_bytes:.1f}x the request body; " + note
        report.line(label, f"{per:6.1f} KiB/stream", note)
    for key in ("straight", "straight_big"):
        run = runs[key]
        report.line(
            "  (the fake alone, hanging)" if key == "straight" else "  (the fake alone, ~120 KB)",
            f"{run.growth_kib / run.n:6.1f} KiB/request",
            f"measured alone, {run.n:,} requests; subtracted per request that reached it",
        )
    for key, run in runs.items():
        if run.failures or run.ready < run.n:
            report.info(f"WARNING {key}: {run.failures} client errors, {run.ready}/{run.n} ready")
    through = runs["through"]
    if through.reached < through.n:
        report.info(
            f"only {through.reached} of {through.n:,} proxied streams hold an upstream "
            "request: the proxy's aiohttp ClientSession keeps TCPConnector's default limit of "
            "100 connections; the rest wait inside it (a wait that counts against "
            "first_byte_timeout_s)"
        )
    worst = max(abs(r.anon_kib - r.growth_kib) / max(r.growth_kib, 1) for r in runs.values())
    report.info(
        "VmRSS growth of the server child (after gc.collect) from a warmed-up start to all "
        "streams in flight; clients live in the parent, not counted; anonymous memory "
        f"(RssAnon) agrees within {worst:.0%}"
    )


# main -----------------------------------------------------------------------------------------
async def bench(profile: bool) -> int:
    began, began_cpu = time.perf_counter(), time.process_time()
    report = Report()
    limit = raise_fd_limit()
    print("interlock proxy benchmark")
    print(machine_header())
    print(
        f"load average at start: {os.getloadavg()[0]:.2f}; fd soft limit {limit}; load "
        "generator in this process, proxy + fake upstream in one child process, all on "
        f"{HOST}; round-robin, {ACCOUNTS} sandbox accounts"
    )

    async with child_process() as child:
        levels, big_run, profiles = await latency_runs(child, profile)

    report.section(
        "1. time to first body byte, short streamed answer (3 chunks): median (p90, min)"
    )
    for level in levels:
        report_ttfb(report, f"c={level.concurrency:<3}", level.ttfb, level.concurrency)
    report_ttfb(report, "c=1   120 KB", big_run)

    report.section(
        f"2. streamed throughput, {LONG_CHUNKS} chunks x {LONG_CHUNK_CHARS} characters "
        "(first body byte to end; no target)"
    )
    for level in levels:
        report_throughput(report, level)

    report.section(
        f"3. memory: idle streams on a hanging upstream, RSS growth of the server process "
        f"(ping every {IDLE_PING_S:g} s)"
    )
    runs = {
        "bare": await idle_run("bare", IDLE_N),
        "straight": await idle_run("straight", IDLE_N),
        "through": await idle_run("through", IDLE_N, profile=profile),
        "through_100": await idle_run("through", IDLE_SMALL_N),
        "straight_big": await idle_run("straight", IDLE_SMALL_N, big=True),
        "through_big": await idle_run("through", IDLE_SMALL_N, big=True),
    }
    report_idle(report, runs)

    titles: tuple[str, ...] = (
        "through interlock at c=1, 100 short answers",
        "through interlock at c=1, 20 long answers",
    )
    if profile:
        profiles.append(runs["through"].profile)
        titles += (f"{IDLE_N:,} idle streams through interlock, {IDLE_CPU_WINDOW_S:g} s",)
    for title, text in zip(titles, profiles, strict=False):  # empty without --profile
        print(f"\nprofile of the server child, {title}:")
        print(text.rstrip())

    wall = time.perf_counter() - began
    share = (time.process_time() - began_cpu) / wall
    print(
        f"\n{report.passed} PASS, {report.failed} FAIL; total {wall:.1f} s wall; "
        f"load generator CPU share {share:.0%}; load average now {os.getloadavg()[0]:.2f}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the interlock proxy on loopback.")
    parser.add_argument("--profile", action="store_true", help="cProfile the proxy process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ping", type=float, default=15.0, help=argparse.SUPPRESS)
    parser.add_argument("--first-byte", type=float, default=120.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        asyncio.run(child_main(args.ping, args.first_byte))
        return 0
    try:
        return asyncio.run(asyncio.wait_for(bench(args.profile), TOTAL_TIMEOUT_S))
    except (BenchError, TimeoutError, aiohttp.ClientError, OSError) as err:
        print(f"\nbenchmark aborted: {type(err).__name__}: {err}")
        return 0  # a report, not a gate


if __name__ == "__main__":
    sys.exit(main())
