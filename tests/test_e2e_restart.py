"""Restart: cooldowns and invalid accounts survive; another process can list accounts meanwhile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import aiohttp

from adapters import serve
from adapters.config import load_settings
from adapters.fake_upstream import FakeUpstream, preset
from adapters.store_sqlite import Credentials, SQLiteStore
from tests.e2e import FAST_POLICY, FAST_UPSTREAM, post, run, written


def test_cooldowns_and_invalid_accounts_survive_a_restart_and_are_listed_meanwhile(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.db"

    async def scenario() -> None:
        async with FakeUpstream() as fake:
            store = SQLiteStore(state)
            for name in ("a", "b", "c"):
                info = fake.add_account(name)
                store.add_account(
                    f"{name}@example.com", Credentials(refresh_token=info.refresh_token)
                )
            store.close()
            fake.revoke("b")
            fake.script("a", [preset("quota_429")])  # rests a for the 60 s quota tier
            settings = load_settings(
                env={},
                overrides={
                    "server": {"port": 0, "state": str(state)},
                    "policy": FAST_POLICY,
                    "upstream": {
                        **FAST_UPSTREAM,
                        "endpoints": fake.urls,
                        "token_url": fake.token_url,
                    },
                },
            )
            first = await serve.start(settings)
            try:
                status, _, _ = await post(first)  # a: 429 (rests), b: revoked, c: answers
                assert status == 200
                await written(first)  # the state writes happen behind the request
                listed = subprocess.run(
                    [sys.executable, "-m", "adapters.cli", "accounts", "list", "--json"],
                    env={**os.environ, "INTERLOCK_STATE": str(state)},
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=True,
                )
                by_email = {a["email"]: a for a in json.loads(listed.stdout)}
                assert by_email["a@example.com"]["cooldowns"]
                assert by_email["b@example.com"]["invalid_reason"]
            finally:
                await first.stop()

            second = await serve.start(settings)
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(second.url + "/accounts") as r,
                ):
                    rows = {row["email"]: row for row in (await r.json())["accounts"]}
                assert rows["a@example.com"]["cooldowns"]
                assert rows["b@example.com"]["invalid_reason"]
                fake.clear_log()
                status, _, _ = await post(second)
                assert status == 200
                used = {r.account for r in fake.requests(path="streamGenerateContent")}
                assert used == {"c"}  # a still rests, b is still invalid
            finally:
                await second.stop()

    run(scenario())
