"""`interlock serve`: run the proxy (optionally in sandbox mode, on the built-in fake upstream).

Loads the configuration (file, environment, flags), opens the state database, starts the aiohttp
app on 127.0.0.1 unless told otherwise, and runs until SIGINT or SIGTERM. `--sandbox` starts the
fake upstream in-process with simulated accounts in a throwaway state database, so that anyone
can try interlock without Google accounts; the fake's admin routes let a script inject faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import ipaddress
import logging
import os
import signal
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from adapters import connections
from adapters.cloudcode.credentials import warn_if_oauth_client_missing
from adapters.config import Settings
from adapters.fake_upstream import FakeUpstream
from adapters.request_log import JsonFormatter
from adapters.server import make_app
from adapters.store_sqlite import Credentials, SQLiteStore, StateLock, default_path
from engine.runner.ports import TraceSink

log = logging.getLogger("interlock")


class ServeError(Exception):
    """The proxy cannot start (the address cannot be bound): one line for the user."""


@dataclass
class Served:
    """A running proxy (and, in sandbox mode, its fake upstream)."""

    url: str
    runner: web.AppRunner
    fake: FakeUpstream | None
    store: SQLiteStore
    tmp: tempfile.TemporaryDirectory[str] | None
    lock: StateLock | None = None

    async def stop(self) -> None:
        await self.runner.cleanup()
        self.store.close()
        if self.lock is not None:
            self.lock.release()
        if self.fake is not None:
            await self.fake.stop()
        if self.tmp is not None:
            self.tmp.cleanup()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def configure_logging(level: str, log_format: str = "text") -> None:
    """Log to stderr at `level`: readable lines, or one JSON object per line (`json`)."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])
    logging.getLogger("transitions").setLevel(logging.WARNING)  # one line per callback otherwise
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


async def start_sandbox(
    settings: Settings, accounts: int
) -> tuple[Settings, FakeUpstream, Path, Any]:
    """Start the fake upstream with `accounts` simulated accounts; point the settings at it."""
    fake = FakeUpstream()
    urls = await fake.start(settings.policy.endpoints)  # one fake site per endpoint tried
    tmp = tempfile.TemporaryDirectory(prefix="interlock-sandbox-")
    path = Path(tmp.name) / "state.db"
    store = SQLiteStore(path)
    for i in range(1, accounts + 1):
        account = fake.add_account(f"account-{i}")
        store.add_account(
            f"account-{i}@sandbox.invalid",
            Credentials(refresh_token=account.refresh_token, managed_project_id=account.project),
        )
    store.close()
    upstream = settings.upstream.model_copy(update={"endpoints": urls, "token_url": fake.token_url})
    return settings.model_copy(update={"upstream": upstream}), fake, path, tmp


async def start(
    settings: Settings,
    *,
    sandbox_accounts: int | None = None,
    seed: int | None = None,
    sink: TraceSink | None = None,
    on_step: Callable[[Any, str, str, str], None] | None = None,
    worker: tuple[int, int] | None = None,
) -> Served:
    """Start the proxy; returns once it listens. `StoreError` (`StateInUse`: another `serve`
    holds the state database) or `ServeError` when it cannot; nothing is left running then.
    `worker` (index, count): one of `--workers` processes (the parent holds the lock; the port
    is shared with `SO_REUSEPORT`)."""
    fake = tmp = lock = None
    state = Path(settings.server.state) if settings.server.state else default_path()
    if sandbox_accounts is None and worker is None:
        lock = StateLock(state)
        lock.acquire()
    store = runner = None
    try:
        if sandbox_accounts is not None:
            settings, fake, state, tmp = await start_sandbox(settings, sandbox_accounts)
        store = SQLiteStore(state)
        warn_if_oauth_client_missing(settings, store, sandbox=fake is not None)
        app = make_app(settings, store, seed=seed, sink=sink, on_step=on_step, worker=worker)
        app.middlewares.append(connections.body_deadline(settings.server.body_timeout_s))
        runner = web.AppRunner(
            app, handle_signals=False, **connections.handler_args(settings.server)
        )
        await runner.setup()
        site = connections.CappedSite(
            runner,
            settings.server.host,
            settings.server.port,
            max_connections=settings.server.max_connections,
            reuse_port=worker is not None,
        )
        try:
            await site.start()
        except OSError as err:
            raise ServeError(_bind_error(settings.server.host, settings.server.port, err)) from None
        port = runner.addresses[0][1]  # the bound port, also when port 0 asked the OS for one
        return Served(f"http://{settings.server.host}:{port}", runner, fake, store, tmp, lock)
    except BaseException:
        if runner is not None:
            await runner.cleanup()
        if store is not None:
            store.close()
        if fake is not None:
            await fake.stop()
        if tmp is not None:
            tmp.cleanup()
        if lock is not None:
            lock.release()
        raise


def _bind_error(host: str, port: int, err: OSError) -> str:
    where = f"{host}:{port}"
    if isinstance(err, socket.gaierror):
        return f"cannot listen on {host!r}: the host name does not resolve ({err.strerror})"
    if err.errno == errno.EADDRINUSE:
        return f"cannot listen on {where}: the address is in use (another server? try --port)"
    if err.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: no such address on this machine (see --host)"
    if err.errno == errno.EACCES:
        return f"cannot listen on {where}: permission denied (ports below 1024 need privileges)"
    reason = err.strerror or str(err)
    return f"cannot listen on {where}: {reason}"


def choose_event_loop(wanted: str) -> str:
    """Install the event loop `interlock serve` runs on (before `asyncio.run`); returns its
    name. `auto`: uvloop when installed, else asyncio's. `ServeError` when `uvloop` is asked
    for and not installed."""
    if wanted == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: PLC0415 - optional: only when installed
    except ImportError:
        if wanted == "uvloop":
            raise ServeError(
                '[server] event_loop = "uvloop" but uvloop is not installed '
                '(pip install uvloop, or use "auto" or "asyncio")'
            ) from None
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def _freeze_startup() -> None:
    """Everything built at start (modules, the app, pydantic schemas) lives as long as the
    process: out of the collector's reach, full collections stop walking it on every pass
    (measured in bench/hotpath_bench.py)."""
    gc.collect()
    gc.freeze()


async def _until_signalled(served: Served, goodbye: str | None = None) -> int:
    """Serve until SIGINT or SIGTERM, then stop (saying `goodbye` first, when given)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        if goodbye:
            print(goodbye)
        await served.stop()
    return 0


async def serve_worker(settings: Settings, index: int, count: int) -> int:
    """One of `--workers` processes (`adapters.workers`): serve until SIGTERM or SIGINT."""
    served = await start(settings, worker=(index, count))
    _freeze_startup()
    log.info("worker %d of %d serving on %s (pid %d)", index, count, served.url, os.getpid())
    return await _until_signalled(served)


async def serve(settings: Settings, *, sandbox_accounts: int | None = None) -> int:
    served = await start(settings, sandbox_accounts=sandbox_accounts)
    _freeze_startup()
    if not is_loopback(settings.server.host) and settings.server.api_key is None:
        log.warning(
            "listening on %s without an API key: anyone who can reach it can use "
            "your accounts (set INTERLOCK_API_KEY)",
            settings.server.host,
        )
    accounts = len(served.store.accounts())
    mode = " (sandbox: fake upstream, simulated accounts)" if served.fake else ""
    running = type(asyncio.get_running_loop()).__module__
    loop_name = "uvloop" if "uvloop" in running else "asyncio"
    print(f"interlock listening on {served.url}{mode} with {accounts} account(s) ({loop_name})")
    print(f"  point Claude Code at it:  ANTHROPIC_BASE_URL={served.url} claude")
    if settings.server.dashboard:
        print(f"  dashboard:                {served.url}/dashboard")
    if served.fake is not None:
        print(f"  script faults:            POST {served.fake.auth_url}/_fake/script")
    if accounts == 0:
        print("  no accounts yet: add one with `interlock accounts login` or `accounts import`")
    return await _until_signalled(served, "interlock: stopping")
