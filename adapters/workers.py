"""`interlock serve --workers N`: N processes serving one port (`SO_REUSEPORT`: the kernel
spreads new connections over them).

The parent holds the state database's lock (so no other `serve` uses it), picks the port (a
free one for `--port 0`), starts N worker processes and watches them: a SIGINT or SIGTERM
stops every worker and then the parent; a worker that dies stops the others too, and `serve`
exits 1 saying which. Each worker is a whole proxy (its own engine, pool, event loop and
connections); they share the pool through Redis when `[state] redis_url` is set, else through
the state database, whose changes each worker reads every `state_poll_s` (cooldowns another
worker learned are adopted, `AccountPool.reconcile`). `/health` says `"workers": N` and which
worker answered; `/metrics` is per worker (the one that answered the scrape).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import socket
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from adapters.config import Settings
from adapters.store_sqlite import StateLock, default_path

log = logging.getLogger("interlock.serve")

STOP_TIMEOUT_S = 15.0


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _worker(settings: Settings, index: int, count: int, log_level: str) -> None:
    """One worker process: a whole proxy on the shared port, until SIGTERM."""
    from adapters import serve  # noqa: PLC0415 - in the child, after spawn

    serve.configure_logging(log_level, settings.server.log_format)
    serve.choose_event_loop(settings.server.event_loop)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve.serve_worker(settings, index, count))


def run_workers(settings: Settings, log_level: str) -> int:
    """Supervise `settings.server.workers` worker processes; returns the exit status."""
    from adapters.serve import ServeError  # noqa: PLC0415

    count = settings.server.workers
    state = Path(settings.server.state) if settings.server.state else default_path()
    lock = StateLock(state)
    lock.acquire()
    processes: list[Any] = []
    try:
        server = settings.server
        if server.port == 0:
            server = server.model_copy(update={"port": _free_port(server.host)})
        settings = settings.model_copy(update={"server": server})
        context = multiprocessing.get_context("spawn")
        for index in range(count):
            process = context.Process(
                target=_worker,
                args=(settings, index, count, log_level),
                name=f"interlock-worker-{index}",
                daemon=True,
            )
            process.start()
            processes.append(process)
        stop = _StopFlag()
        host = f"[{server.host}]" if ":" in server.host else server.host
        print(f"interlock listening on http://{host}:{server.port} with {count} workers")
        while not stop.raised:
            ended = wait([p.sentinel for p in processes], timeout=0.2)
            if ended:
                dead = [p for p in processes if p.sentinel in ended]
                names = ", ".join(f"{p.name} (exit {p.exitcode})" for p in dead)
                raise ServeError(f"a worker stopped: {names}; stopping the others")
        print("interlock: stopping the workers")
        return 0
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(STOP_TIMEOUT_S)
            if process.is_alive():
                process.kill()
                process.join(5)
        lock.release()


class _StopFlag:
    """SIGINT and SIGTERM set it (the parent's wait loop checks it)."""

    def __init__(self) -> None:
        self.raised = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._raise)

    def _raise(self, signum: int, frame: object) -> None:
        self.raised = True
