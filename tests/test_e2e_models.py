"""Model names through the real proxy on the fake upstream: the live list, family resolution,
the model routes (also through the official SDK), and the 404s for unresolvable names."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import pytest

from adapters.fake_upstream import FakeUpstream
from adapters.models import ModelCatalog
from adapters.serve import Served
from adapters.server import PROXY
from adapters.trace.format import read_trace
from tests.e2e import post, proxy, run

LATER_LIST = {
    "claude-opus-4-7-thinking": {"displayName": "Claude Opus 4.7 (Thinking)"},
    "claude-sonnet-4-6": {"displayName": "Claude Sonnet 4.6"},
    "gemini-3-flash": {"displayName": "Gemini 3 Flash"},
    "gemini-3.6-flash": {"displayName": "Gemini 3.6 Flash"},
}


def body(model: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 2048,
        "messages": [{"role": "user", "content": "hi"}],
        **extra,
    }


def catalog(served: Served) -> ModelCatalog:
    return served.runner.app[PROXY].models


def fake(served: Served) -> FakeUpstream:
    assert served.fake is not None
    return served.fake


async def serve_list(served: Served, models: dict[str, Any]) -> None:
    """Let the startup refresh land, then make the fake list `models` and refresh again."""
    await catalog(served).refresh()
    fake(served).set_models(models)
    assert await catalog(served).refresh()


def upstream_models(served: Served) -> list[str | None]:
    return [r.model for r in fake(served).requests(path="streamGenerateContent")]


def sdk(url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key="test", max_retries=0, timeout=30)


def test_claude_codes_default_opus_name_works_out_of_the_box_in_sandbox_mode() -> None:
    async def scenario() -> None:
        async with proxy(quota={"enabled": False}) as served:  # one list read, the catalog's
            status, _, answer = await post(served, body("claude-opus-4-8"))
            assert status == 200 and answer["model"] == "claude-opus-4-8"
            assert upstream_models(served) == ["claude-opus-4-6-thinking"]
            assert len(fake(served).requests(path="fetchAvailableModels")) == 1

    run(scenario())


@pytest.mark.parametrize(
    ("asked", "extra", "upstream"),
    [
        ("claude-opus-5-5", {}, "claude-opus-4-7-thinking"),
        ("claude-opus-4-5-thinking", {}, "claude-opus-4-7-thinking"),
        ("claude-sonnet-4-5-20250929", {}, "claude-sonnet-4-6"),
        ("claude-haiku-4-5-20251001", {}, "gemini-3.6-flash"),
        ("gemini-3.6-flash", {"thinking": {"type": "adaptive"}}, "gemini-3.6-flash"),
    ],
)
def test_names_the_upstream_does_not_list_reach_it_as_the_live_lists_model_of_their_family(
    asked: str, extra: dict[str, Any], upstream: str
) -> None:
    async def scenario() -> None:
        async with proxy(accounts=1) as served:
            await serve_list(served, LATER_LIST)
            status, _, answer = await post(served, body(asked, **extra))
            assert status == 200 and answer["model"] == asked
            assert upstream_models(served) == [upstream]

    run(scenario())


def test_a_thinking_request_goes_to_the_thinking_variant_of_the_resolved_model() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1) as served:
            thinking = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
            status, _, _ = await post(served, body("claude-sonnet-4-5", **thinking))
            assert status == 200
            assert upstream_models(served) == ["claude-sonnet-4-6-thinking"]

    run(scenario())


def test_a_thinking_request_for_a_model_that_cannot_think_is_a_clear_400() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1) as served:
            await serve_list(served, LATER_LIST)
            thinking = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
            status, _, answer = await post(served, body("claude-sonnet-4-5", **thinking))
            assert status == 400 and answer["error"]["type"] == "invalid_request_error"
            assert (
                "'claude-sonnet-4-5' (upstream 'claude-sonnet-4-6') does not support thinking"
                in (answer["error"]["message"])
            )
            assert upstream_models(served) == []

    run(scenario())


def test_adaptive_thinking_on_a_model_that_cannot_think_is_served_without_thinking() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1) as served:
            await serve_list(served, LATER_LIST)
            status, _, _ = await post(
                served, body("claude-sonnet-4-5", thinking={"type": "adaptive"})
            )
            assert status == 200
            assert upstream_models(served) == ["claude-sonnet-4-6"]

    run(scenario())


def test_an_unresolvable_model_is_a_404_that_lists_the_available_models() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1, models={"aliases": {"fast": "gemini-3-flash"}}) as served:
            await serve_list(served, LATER_LIST)
            status, _, answer = await post(served, body("gpt-4o"))
            assert status == 404 and answer["error"]["type"] == "not_found_error"
            message = answer["error"]["message"]
            assert message.startswith("model: unknown model 'gpt-4o'; available: ")
            for name in [*LATER_LIST, "fast"]:
                assert name in message
            assert upstream_models(served) == []

    run(scenario())


def test_count_tokens_answers_a_resolvable_model_and_404s_an_unknown_one() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1) as served:
            path = "/v1/messages/count_tokens"
            status, _, answer = await post(served, body("claude-haiku-4-5-20251001"), path=path)
            assert status == 200 and answer["input_tokens"] > 0
            status, _, answer = await post(served, body("gpt-4o"), path=path)
            assert status == 404 and answer["error"]["type"] == "not_found_error"
            assert "available: claude-opus-4-6-thinking" in answer["error"]["message"]

    run(scenario())


def test_the_sdk_lists_the_live_models_and_the_aliases() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1, models={"aliases": {"fast": "gemini-3-flash"}}) as served:
            await serve_list(served, LATER_LIST)
            client = sdk(served.url)
            page = await client.models.list()
            assert [m.id for m in page.data] == [*LATER_LIST, "fast"]
            assert page.data[0].display_name == "Claude Opus 4.7 (Thinking)"
            assert page.data[-1].display_name == "Gemini 3 Flash" and page.data[-1].type == "model"
            assert page.has_more is False
            assert (page.first_id, page.last_id) == ("claude-opus-4-7-thinking", "fast")
            paged = [m.id async for m in client.models.list(limit=2)]  # follows after_id
            assert paged == [*LATER_LIST, "fast"]

    run(scenario())


def test_the_sdk_retrieves_any_resolvable_name_under_the_id_it_asked_for() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1) as served:
            client = sdk(served.url)
            opus = await client.models.retrieve("claude-opus-4-8")
            assert (opus.id, opus.display_name) == ("claude-opus-4-8", "Claude Opus 4.6 (Thinking)")
            assert opus.type == "model" and opus.created_at.year == 2026
            exact = await client.models.retrieve("gemini-3-flash")
            assert exact.display_name == "Gemini 3 Flash"
            with pytest.raises(anthropic.NotFoundError) as caught:
                await client.models.retrieve("gpt-4o")
            assert "unknown model 'gpt-4o'" in str(caught.value)

    run(scenario())


def test_the_model_list_pages_with_after_id_and_before_id_and_rejects_bad_parameters() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1) as served:
            names = catalog(served).names()
            after = await get(served, f"/v1/models?limit=2&after_id={names[1]}")
            assert [m["id"] for m in after["data"]] == names[2:4] and after["has_more"]
            before = await get(served, f"/v1/models?limit=5&before_id={names[3]}")
            assert [m["id"] for m in before["data"]] == names[:3] and not before["has_more"]
            for query in ("limit=0", "limit=x", "after_id=nope", "after_id=a&before_id=b"):
                answer = await get(served, f"/v1/models?{query}", status=400)
                assert answer["error"]["type"] == "invalid_request_error"

    run(scenario())


def test_the_request_log_line_and_the_trace_name_the_client_model_and_the_upstream_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with proxy(accounts=1, server={"record": str(tmp_path)}) as served:
            status, _, _ = await post(served, body("claude-opus-4-8"))
            assert status == 200

    with caplog.at_level(logging.INFO, logger="interlock.server"):
        run(scenario())
    assert any(
        "claude-opus-4-8 -> claude-opus-4-6-thinking (family) unary -> 200" in r.getMessage()
        for r in caplog.records
    )
    (path,) = tmp_path.glob("*.jsonl")
    (arrival,) = read_trace(path).of("arrival")
    assert (arrival.model, arrival.client_model) == ("claude-opus-4-6-thinking", "claude-opus-4-8")


async def get(served: Served, path: str, *, status: int = 200) -> Any:
    async with aiohttp.ClientSession() as session, session.get(served.url + path) as response:
        assert response.status == status
        return await response.json()
