"""`interlock serve` as a user runs it, for end-to-end tests: a state database holding the fake
upstream's accounts, a configuration pointing at the fake, the process on a free port of
127.0.0.1 (stopped with SIGTERM at the end)."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from adapters.fake_upstream import FakeUpstream
from adapters.store_sqlite import Credentials, SQLiteStore


def write_config(
    directory: Path,
    fake: FakeUpstream,
    urls: dict[str, str],
    accounts: Sequence[str],
    *,
    server: str = "",
    upstream: str = "",
    redis_url: str | None = None,
) -> Path:
    """A state database in `directory` holding the fake's `accounts`, and a configuration
    (quota reading off, round-robin, no waiting); `server` and `upstream` are extra lines of
    those tables, `redis_url` the `[state]` one."""
    state = directory / "state.db"
    store = SQLiteStore(state)
    for name in accounts:
        account = fake.account(name)
        store.add_account(
            f"{name}@example.com",
            Credentials(refresh_token=account.refresh_token, managed_project_id=account.project),
        )
    store.close()
    shared = "" if redis_url is None else f'[state]\nredis_url = "{redis_url}"\n'
    config = directory / "interlock.toml"
    config.write_text(
        f'[server]\nstate = "{state}"\n{server}{shared}'
        f'[upstream]\nendpoints = {{ daily = "{urls["daily"]}", prod = "{urls["prod"]}" }}\n'
        f'token_url = "{fake.token_url}"\n{upstream}'
        '[oauth]\nclient_id = "test"\nclient_secret = "test"\n'
        "[quota]\nenabled = false\n"
        '[policy]\nstrategy = "round-robin"\nmax_wait_before_error_ms = 0\n'
    )
    return config


@dataclass
class Serving:
    url: str
    first_line: str  # what serve printed first
    process: asyncio.subprocess.Process


def serve_argv(config: Path, port: int, *args: str) -> list[str]:
    """The command line of `interlock serve` with `config` on `port` (logs at warning)."""
    return [
        sys.executable,
        "-m",
        "adapters.cli",
        "serve",
        "--config",
        str(config),
        "--port",
        str(port),
        *args,
        "--log-level",
        "warning",
    ]


@asynccontextmanager
async def serve(config: Path, *args: str) -> AsyncIterator[Serving]:
    """`interlock serve --config config --port 0 *args`, until it says where it listens."""
    process = await asyncio.create_subprocess_exec(
        *serve_argv(config, 0, *args), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        first = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        yield Serving(first.split(" listening on ")[1].split()[0], first, process)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)


async def health(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(url + "/health") as response:
        return dict(await response.json())
