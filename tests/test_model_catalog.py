"""The model catalog: TTL, single flight, fail-open, union over accounts, and the
fetchAvailableModels call itself against the fake upstream.

Catalog rules run on a virtual clock (`VirtualClock`: waits cost no real time) with an
in-memory fetch; the wire tests use the fake upstream on 127.0.0.1 with an injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.cloudcode.credentials import CredentialManager
from adapters.cloudcode.models import (
    ModelInfo,
    ModelListFetcher,
    ModelListUnavailable,
    parse_models,
    rfc3339_epoch,
)
from adapters.config import ModelSettings, Settings, load_settings
from adapters.fake_upstream import FakeUpstream, drop_before, error, hang, preset
from adapters.models import BUILTIN_NAMES, ModelCatalog
from adapters.models.catalog import RETRY_AFTER_FAILURE_S
from adapters.store_sqlite import Credentials, SQLiteStore
from engine.runner.clock import VirtualClock
from tests.e2e import run

TTL = 300.0
SETTINGS = ModelSettings(ttl_s=TTL, startup_wait_s=3.0)


def listing(*names: str) -> dict[str, ModelInfo]:
    return {name: ModelInfo(id=name, display_name=name.upper()) for name in names}


class ScriptedFetch:
    """An in-memory fetch: per account, a list of answers (a dict of models, or an exception),
    each taking `duration` virtual seconds; the last answer repeats."""

    def __init__(self, answers: Mapping[str, Sequence[Any]], duration: float = 0.1) -> None:
        self.answers = {k: list(v) for k, v in answers.items()}
        self.duration = duration
        self.calls: list[str] = []

    async def __call__(self, account: str) -> dict[str, ModelInfo]:
        self.calls.append(account)
        await asyncio.sleep(self.duration)
        queue = self.answers[account]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, BaseException):
            raise answer
        return dict(answer)


def catalog(
    fetch: ScriptedFetch | None,
    clock: VirtualClock,
    accounts: Sequence[str] = ("a",),
    settings: ModelSettings = SETTINGS,
) -> ModelCatalog:
    return ModelCatalog(settings, fetch, lambda: list(accounts), monotonic=clock.now)


# catalog rules (virtual clock) ---------------------------------------------------------------
def test_concurrent_callers_share_one_refresh() -> None:
    clock = VirtualClock()
    fetch = ScriptedFetch({"a": [listing("claude-opus-4-7-thinking")]})
    models = catalog(fetch, clock)

    async def main() -> list[bool]:
        return await asyncio.gather(*(models.refresh() for _ in range(20)))

    assert clock.run(main()) == [True] * 20
    assert fetch.calls == ["a"] and models.refreshes == 1
    assert models.names() == ["claude-opus-4-7-thinking"]


def test_a_stale_list_is_served_at_once_while_one_background_refresh_replaces_it() -> None:
    clock = VirtualClock()
    fetch = ScriptedFetch({"a": [listing("claude-opus-4-6-thinking"), listing("claude-opus-4-7")]})
    models = catalog(fetch, clock)

    async def main() -> None:
        await models.refresh()
        await asyncio.sleep(TTL - 1)
        assert list(await models.current()) == ["claude-opus-4-6-thinking"]
        assert len(fetch.calls) == 1  # still fresh
        await asyncio.sleep(1)
        assert models.stale
        before = clock.now()
        served = await asyncio.gather(*(models.current() for _ in range(5)))
        assert clock.now() == before  # nobody waited for the refresh
        assert all(list(s) == ["claude-opus-4-6-thinking"] for s in served)
        await models.refresh()  # joins the background refresh
        assert len(fetch.calls) == 2 and models.names() == ["claude-opus-4-7"]

    clock.run(main())


def test_a_request_before_the_first_list_waits_for_it_at_most_the_startup_bound() -> None:
    clock = VirtualClock()
    slow = ScriptedFetch({"a": [listing("claude-opus-4-7")]}, duration=60.0)
    models = catalog(slow, clock)

    async def main() -> None:
        models.start()
        await asyncio.sleep(1)
        served = await models.current()
        assert clock.now() == pytest.approx(3.0)  # startup_wait_s after the refresh started
        assert list(served) == list(BUILTIN_NAMES)
        assert list(await models.current()) == list(BUILTIN_NAMES)
        assert clock.now() == pytest.approx(3.0)  # later requests do not wait again
        await asyncio.sleep(60)
        assert list(await models.current()) == ["claude-opus-4-7"]
        assert len(slow.calls) == 1

    clock.run(main())


def test_a_request_before_the_first_list_gets_it_when_it_lands_in_time() -> None:
    clock = VirtualClock()
    models = catalog(ScriptedFetch({"a": [listing("claude-opus-4-7")]}, duration=0.5), clock)

    async def main() -> None:
        models.start()
        assert list(await models.current()) == ["claude-opus-4-7"]
        assert clock.now() == pytest.approx(0.5)

    clock.run(main())


def test_when_every_fetch_fails_the_builtin_list_is_served_until_a_fetch_succeeds() -> None:
    clock = VirtualClock()
    down = ModelListUnavailable("daily: HTTP 503; prod: HTTP 503")
    fetch = ScriptedFetch(
        {"a": [down, down, listing("claude-opus-4-7-thinking")], "b": [down, down, down]}
    )
    models = catalog(fetch, clock, accounts=("a", "b"))

    async def main() -> None:
        assert await models.refresh() is False
        assert not models.live and models.names() == list(BUILTIN_NAMES)
        assert models.resolve("claude-opus-4-8") is not None  # built-in opus serves
        assert fetch.calls == ["a", "b"]
        await asyncio.sleep(RETRY_AFTER_FAILURE_S - 1)
        assert not models.stale  # no hammering after a failure
        await asyncio.sleep(1)
        assert models.stale
        assert await models.refresh() is False
        assert await models.refresh() is True
        assert models.live and models.names() == ["claude-opus-4-7-thinking"]
        found = models.resolve("claude-opus-4-8")
        assert found is not None and found.model == "claude-opus-4-7-thinking"

    clock.run(main())


def test_a_failed_refresh_keeps_the_last_live_list() -> None:
    clock = VirtualClock()
    fetch = ScriptedFetch({"a": [listing("claude-opus-4-7"), TimeoutError()]})
    models = catalog(fetch, clock)

    async def main() -> None:
        assert await models.refresh() is True
        assert await models.refresh() is False
        assert models.names() == ["claude-opus-4-7"]

    clock.run(main())


def test_a_failing_account_is_skipped_and_the_next_refresh_starts_after_the_one_that_answered() -> (
    None
):
    clock = VirtualClock()
    fetch = ScriptedFetch(
        {
            "a": [RuntimeError("boom")],
            "b": [listing("claude-sonnet-4-6")],
            "c": [listing("gemini-3-flash", "claude-sonnet-4-6")],
        }
    )
    models = catalog(fetch, clock, accounts=("a", "b", "c"))

    async def main() -> None:
        await models.refresh()
        assert fetch.calls == ["a", "b"]
        await models.refresh()
        assert fetch.calls == ["a", "b", "c"]
        assert models.names() == ["claude-sonnet-4-6", "gemini-3-flash"]  # union over accounts
        assert set(models.quotas("b")) == {"claude-sonnet-4-6"}
        assert models.quotas("a") == {}

    clock.run(main())


def test_an_account_that_leaves_the_pool_takes_its_models_with_it() -> None:
    clock = VirtualClock()
    accounts = ["a", "b"]
    fetch = ScriptedFetch({"a": [listing("claude-opus-4-7")], "b": [listing("gemini-3-flash")]})
    models = ModelCatalog(SETTINGS, fetch, lambda: list(accounts), monotonic=clock.now)

    async def main() -> None:
        await models.refresh()
        await models.refresh()
        assert models.names() == ["claude-opus-4-7", "gemini-3-flash"]
        accounts.remove("a")
        await models.refresh()
        assert models.names() == ["gemini-3-flash"]

    clock.run(main())


def test_an_account_listing_no_claude_or_gemini_model_does_not_replace_the_list() -> None:
    clock = VirtualClock()
    fetch = ScriptedFetch({"a": [{}], "b": [listing("claude-opus-4-7")]})
    models = catalog(fetch, clock, accounts=("a", "b"))

    async def main() -> None:
        assert await models.refresh() is True
        assert fetch.calls == ["a", "b"] and models.names() == ["claude-opus-4-7"]

    clock.run(main())


def test_without_a_fetch_or_accounts_the_builtin_list_is_served_without_waiting() -> None:
    clock = VirtualClock()

    async def main() -> None:
        for models in (catalog(None, clock), catalog(ScriptedFetch({}), clock, accounts=())):
            models.start()
            assert list(await models.current()) == list(BUILTIN_NAMES)
            assert clock.now() == 0.0

    clock.run(main())


def test_closing_cancels_the_refresh_in_flight() -> None:
    clock = VirtualClock()
    models = catalog(ScriptedFetch({"a": [listing("x-claude")]}, duration=1e6), clock)

    async def main() -> None:
        models.start()
        await asyncio.sleep(1)
        await models.close()
        assert not models.live and clock.now() == pytest.approx(1)

    clock.run(main())


def test_the_catalog_resolves_with_the_configured_aliases_and_families() -> None:
    clock = VirtualClock()
    settings = ModelSettings(aliases={"fast": "gemini-3-flash"}, haiku="gemini-3.1-pro-low")
    models = catalog(None, clock, settings=settings)
    fast, haiku = models.resolve("fast"), models.resolve("claude-haiku-4-5-20251001")
    assert fast is not None and (fast.model, fast.via) == ("gemini-3-flash", "alias")
    assert haiku is not None and haiku.model == "gemini-3.1-pro-low"


# the answer -----------------------------------------------------------------------------------
def test_the_answer_keeps_claude_and_gemini_models_with_their_quota() -> None:
    models = parse_models(
        {
            "models": {
                "claude-opus-4-6-thinking": {
                    "displayName": "Claude Opus 4.6 (Thinking)",
                    "quotaInfo": {"remainingFraction": 0.8, "resetTime": "2026-01-10T15:00:00Z"},
                },
                "gemini-3-flash": {"quotaInfo": {"resetTime": "2026-01-10T15:00:00.123456789Z"}},
                "gemini-3.1-pro-high": {"displayName": "Gemini 3.1 Pro (High)"},
                "chat_20706": {"displayName": "internal"},
                "gpt-oss-120b-medium": {"displayName": "GPT-OSS"},
            }
        }
    )
    assert list(models) == ["claude-opus-4-6-thinking", "gemini-3-flash", "gemini-3.1-pro-high"]
    opus, flash, pro = models.values()
    assert (opus.display_name, opus.remaining_fraction) == ("Claude Opus 4.6 (Thinking)", 0.8)
    assert opus.reset_wall == rfc3339_epoch("2026-01-10T15:00:00+00:00") == 1768057200.0
    assert (flash.display_name, flash.remaining_fraction) == ("gemini-3-flash", 0.0)
    assert flash.reset_wall == pytest.approx(1768057200.123456)
    assert (pro.remaining_fraction, pro.reset_time, pro.reset_wall) == (None, None, None)


@pytest.mark.parametrize("answer", [None, [], {}, {"models": []}, {"error": {"code": 403}}])
def test_an_answer_without_a_models_map_is_no_list(answer: Any) -> None:
    with pytest.raises(ModelListUnavailable):
        parse_models(answer)


# the wire (fake upstream on 127.0.0.1) --------------------------------------------------------
async def _wire(
    fake: FakeUpstream, tmp_path: Path, session: aiohttp.ClientSession, names: Sequence[str]
) -> tuple[Settings, SQLiteStore, dict[str, str], ModelListFetcher]:
    store = SQLiteStore(tmp_path / "state.db")
    ids = {}
    for name in names:
        info = fake.add_account(name)
        account_id = store.add_account(
            f"{name}@example.com",
            Credentials(refresh_token=info.refresh_token, managed_project_id=info.project),
        )
        assert account_id
        ids[name] = account_id
    settings = load_settings(
        env={}, overrides={"upstream": {"endpoints": fake.urls, "token_url": fake.token_url}}
    )
    fetcher = ModelListFetcher(session, CredentialManager(session, store, settings), settings)
    return settings, store, ids, fetcher


class Now:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_n_concurrent_callers_cause_one_fetch_available_models_upstream(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeUpstream() as fake, aiohttp.ClientSession() as session:
            settings, _, ids, fetcher = await _wire(fake, tmp_path, session, ["a", "b"])
            models = ModelCatalog(settings.models, fetcher, lambda: list(ids.values()))
            answers = await asyncio.gather(
                *(models.refresh() for _ in range(10)), *(models.current() for _ in range(10))
            )
            assert answers[:10] == [True] * 10
            assert len(fake.requests(path="fetchAvailableModels")) == 1
            assert models.live and models.names() == list(BUILTIN_NAMES)

    run(scenario())


def test_the_list_is_fetched_again_once_its_ttl_has_passed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeUpstream() as fake, aiohttp.ClientSession() as session:
            settings, _, ids, fetcher = await _wire(fake, tmp_path, session, ["a"])
            now = Now()
            models = ModelCatalog(settings.models, fetcher, lambda: [ids["a"]], monotonic=now)
            await models.current()
            now.t += settings.models.ttl_s - 0.001
            await models.current()
            assert len(fake.requests(path="fetchAvailableModels")) == 1
            fake.set_models({"claude-opus-4-7-thinking": {"displayName": "Claude Opus 4.7"}})
            now.t += 0.001
            assert "claude-opus-4-7-thinking" not in await models.current()  # stale is served
            await models.refresh()  # the refresh that current() started
            assert len(fake.requests(path="fetchAvailableModels")) == 2
            assert models.names() == ["claude-opus-4-7-thinking"]

    run(scenario())


def test_when_no_account_can_list_models_the_builtin_list_serves_until_one_can(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with FakeUpstream() as fake, aiohttp.ClientSession() as session:
            settings, _, ids, fetcher = await _wire(fake, tmp_path, session, ["a", "b"])
            models = ModelCatalog(settings.models, fetcher, lambda: list(ids.values()))
            fake.set_models({"claude-opus-4-7-thinking": {"displayName": "Claude Opus 4.7"}})
            failures = [preset("quota_429"), error(503), drop_before(), error(500, "x")]
            fake.script(None, failures, call="fetchAvailableModels")
            assert await models.refresh() is False
            assert not models.live and models.names() == list(BUILTIN_NAMES)
            calls = [(r.account, r.endpoint) for r in fake.requests(path="fetchAvailableModels")]
            assert calls == [("a", "daily"), ("a", "prod"), ("b", "daily"), ("b", "prod")]
            assert await models.refresh() is True
            assert models.names() == ["claude-opus-4-7-thinking"]

    run(scenario())


def test_the_fetch_goes_to_prod_when_daily_fails_and_carries_the_antigravity_headers(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with FakeUpstream() as fake, aiohttp.ClientSession() as session:
            _, _, ids, fetcher = await _wire(fake, tmp_path, session, ["a"])
            fake.script("a", [error(503)], endpoint="daily", call="fetchAvailableModels")
            fake.set_quota("gemini-3-flash", 0.25, reset_time="2026-01-10T15:00:00Z")
            models = await fetcher(ids["a"])
            assert models["gemini-3-flash"].remaining_fraction == 0.25
            daily, prod = fake.requests(path="fetchAvailableModels")
            assert (daily.endpoint, daily.status, prod.endpoint) == ("daily", 503, "prod")
            assert prod.body == {"project": fake.account("a").project}
            assert prod.headers["user-agent"].startswith("antigravity/")
            assert prod.headers["x-client-name"] == "antigravity"
            assert "x-machine-session-id" not in prod.headers

    run(scenario())


def test_a_fetch_that_hangs_is_bounded_by_the_fetch_timeout(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeUpstream() as fake, aiohttp.ClientSession() as session:
            settings, store, ids, _ = await _wire(fake, tmp_path, session, ["a"])
            quick = settings.model_copy(
                update={"models": settings.models.model_copy(update={"fetch_timeout_s": 0.05})}
            )
            fetcher = ModelListFetcher(session, CredentialManager(session, store, quick), quick)
            fake.script("a", [hang(), hang()], call="fetchAvailableModels")
            with pytest.raises(ModelListUnavailable, match="daily: TimeoutError; prod: Timeout"):
                await fetcher(ids["a"])

    run(scenario())


def test_a_revoked_account_has_no_list_and_the_next_account_answers(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with FakeUpstream() as fake, aiohttp.ClientSession() as session:
            settings, _, ids, fetcher = await _wire(fake, tmp_path, session, ["a", "b"])
            fake.revoke("a")
            models = ModelCatalog(settings.models, fetcher, lambda: list(ids.values()))
            assert await models.refresh() is True
            assert models.quotas(ids["a"]) == {} and models.quotas(ids["b"])
            assert [r.account for r in fake.requests(path="fetchAvailableModels")] == ["b"]

    run(scenario())
