"""Real Claude Code 2.1.332 requests (tests/fixtures/claude_code/) through the real proxy on the
fake upstream.

Each scenario's requests are replayed in the order Claude Code sent them, on one proxy, and the
fake answers each with what the capture server answered (the assistant turn the next request
carries: text, a Bash functionCall, signed thinking), so a second turn's thinking signature is
one the proxy has seen from its upstream. Checked per request:

- the client's answer: 200 and a well-formed event stream (or message), validated strictly with
  the `anthropic` SDK's own pydantic types;
- what the upstream received: an available model of the requested family, only `user`/`model`
  roles in `contents`, the system message's text somewhere in `contents` or
  `systemInstruction`, no functionDeclaration for a `defer_loading: true` tool and one for
  every other tool, and a second turn's signed thinking replayed with its signature.

The HEAD probe fixture is sent as recorded and must get 200, as from Anthropic's API.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter, ValidationError

from adapters.convert.request import ANSWER_TOOL
from adapters.convert.toolnames import ToolNameMap
from adapters.fake_upstream import Answer, Part, function_call, make_signature, stream, text
from adapters.fake_upstream import thinking as thinking_part
from adapters.serve import Served
from tests.e2e import post, proxy, run
from tests.e2e_clients import inventory

FIXTURES = Path(__file__).parent / "fixtures" / "claude_code"
EVENT = TypeAdapter(RawMessageStreamEvent)
GENERATE = ("streamGenerateContent", "generateContent")
SENT_HEADERS = ("anthropic-beta", "anthropic-version", "user-agent", "x-app")


def load(path: Path) -> dict[str, Any]:
    fixture: dict[str, Any] = json.loads(path.read_text())
    fixture["name"] = path.stem
    return fixture


ALL = [load(p) for p in sorted(FIXTURES.glob("*.json"))]
MESSAGES = [f for f in ALL if f["method"] == "POST" and f["path"].split("?")[0] == "/v1/messages"]
PROBES = [f for f in ALL if f not in MESSAGES]
SCENARIOS = sorted({f["scenario"] for f in MESSAGES})


def in_scenario(scenario: str) -> list[dict[str, Any]]:
    return sorted((f for f in MESSAGES if f["scenario"] == scenario), key=lambda f: f["index"])


def blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


# what the fake answers: the assistant turn the client carried on ---------------------------------


def next_turn(fixture: dict[str, Any], later: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The assistant content the client got for `fixture`: the assistant message right after
    its messages in the first later request of the same conversation; [] when none."""
    count = len(fixture["body"]["messages"])
    for other in later:
        msgs = other["body"]["messages"]
        if len(msgs) > count and msgs[count]["role"] == "assistant":
            return blocks(msgs[count]["content"])
    return []


def as_part(block: dict[str, Any]) -> Part:
    if block["type"] == "thinking":
        # the capture server signs as the fake does, so the proxy sees this signature upstream
        assert block["signature"] == make_signature(block["thinking"]), block
        return thinking_part(block["thinking"])
    if block["type"] == "tool_use":
        return function_call(block["name"], block["input"])
    return text(block.get("text", ""))


def answer_for(fixture: dict[str, Any], later: list[dict[str, Any]]) -> Answer:
    turn = next_turn(fixture, later)
    return stream(*(as_part(b) for b in turn)) if turn else stream(text("Hello."))


# checks ------------------------------------------------------------------------------------------


def _camel(name: str) -> str:
    return "".join(word.title() for word in name.split("_"))


def _why(event: dict[str, Any], exc: ValidationError) -> str:
    """The errors of the union member the event's type names (e.g. ThinkingBlock.signature)."""
    wanted = "Raw" + _camel(str(event.get("type"))) + "Event"
    block = event.get("content_block") or event.get("delta") or {}
    inner = _camel(str(block.get("type"))) if isinstance(block, dict) else ""
    errors = [
        f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
        for e in exc.errors()
        if e["loc"] and e["loc"][0] == wanted and (len(e["loc"]) < 3 or inner in str(e["loc"][2]))
    ]
    return "; ".join(errors[:4]) or str(exc)[:600]


def check_client_answer(status: int, answer: Any, stream_wanted: bool) -> None:
    assert status == 200, f"the client got {status}: {answer}"
    if not stream_wanted:
        try:
            Message.model_validate(answer, strict=True)
        except ValidationError as exc:
            raise AssertionError(f"not an SDK Message: {answer}\n{exc}") from None
        return
    assert isinstance(answer, list) and answer, answer
    events = []
    for event in answer:
        try:
            events.append(EVENT.validate_python(event, strict=True))
        except ValidationError as exc:
            why = _why(event, exc)
            raise AssertionError(f"not an SDK stream event: {event}: {why}") from None
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop", kinds
    assert "error" not in kinds, answer


def upstream_texts(envelope: dict[str, Any]) -> str:
    request = envelope["request"]
    turns = [*request.get("contents", []), request.get("systemInstruction") or {}]
    return "\n".join(str(p.get("text", "")) for c in turns for p in c.get("parts", []))


def family(model: str) -> str:
    for name in ("opus", "sonnet", "haiku", "gemini"):
        if name in model:
            return name
    return model


def check_upstream(served: Served, fixture: dict[str, Any], sent: list[Any]) -> dict[str, Any]:
    assert served.fake is not None
    body = fixture["body"]
    assert sent, "the upstream got no generate request"
    envelope: dict[str, Any] = sent[-1].body
    request = envelope["request"]

    available = set(served.fake.models_for(None))
    wanted, got = body["model"], envelope["model"]
    assert got in available, f"{wanted} went upstream as {got}, not one of {sorted(available)}"
    if wanted in available:
        assert got == wanted
    elif family(wanted) in ("opus", "sonnet", "gemini"):
        assert family(got) == family(wanted), f"{wanted} went upstream as {got}"

    roles = [c.get("role") for c in request["contents"]]
    assert set(roles) <= {"user", "model"}, roles

    seen = upstream_texts(envelope)
    for msg in body["messages"]:
        if msg["role"] == "system":
            for block in blocks(msg["content"]):
                assert block["text"].strip() in seen, "the system message's text is lost"

    tools = body.get("tools", [])
    names = ToolNameMap(t["name"] for t in tools)
    declared = [
        d["name"] for t in request.get("tools", []) for d in t.get("functionDeclarations", [])
    ]
    deferred = {names.to_upstream(t["name"]) for t in tools if t.get("defer_loading")}
    others = [names.to_upstream(t["name"]) for t in tools if not t.get("defer_loading")]
    assert not deferred & set(declared), f"defer_loading tools declared: {deferred}"
    if (body.get("output_config") or {}).get("format") and family(got) != "gemini":
        # structured outputs on a Claude model: the answer tool carries the schema
        assert ANSWER_TOOL in declared, "structured outputs were dropped"
        declared.remove(ANSWER_TOOL)
    assert sorted(declared) == sorted(others)

    for msg in body["messages"]:
        for block in blocks(msg["content"]):
            if block["type"] == "thinking" and block.get("signature"):
                parts = [p for c in request["contents"] for p in c.get("parts", [])]
                replayed = [p.get("thoughtSignature") for p in parts if p.get("thought")]
                assert block["signature"] in replayed, "the signed thinking was not replayed"
    return envelope


# the tests ---------------------------------------------------------------------------------------


def headers_of(fixture: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in fixture["headers"].items() if k in SENT_HEADERS}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_claude_code_requests_are_served(scenario: str) -> None:
    fixtures = in_scenario(scenario)

    async def replay() -> None:
        async with proxy(accounts=1) as served:
            assert served.fake is not None
            for i, fixture in enumerate(fixtures):
                served.fake.script("account-1", [answer_for(fixture, fixtures[i + 1 :])])
                before = len(served.fake.log)
                body = fixture["body"]
                status, _, answer = await post(
                    served,
                    body,
                    stream=bool(body.get("stream")),
                    headers=headers_of(fixture),
                    path=fixture["path"],
                )
                where = f"{fixture['name']}: "
                try:
                    check_client_answer(status, answer, bool(body.get("stream")))
                    sent = [r for r in served.fake.log[before:] if r.call in GENERATE]
                    check_upstream(served, fixture, sent)
                except AssertionError as exc:
                    raise AssertionError(where + str(exc)) from exc

    run(replay())


@pytest.mark.parametrize("fixture", PROBES, ids=[f["name"] for f in PROBES])
def test_claude_code_probes_get_200(fixture: dict[str, Any]) -> None:
    async def probe() -> None:
        async with (
            proxy(accounts=1) as served,
            aiohttp.ClientSession() as session,
            session.request(
                fixture["method"],
                served.url + fixture["path"],
                headers=headers_of(fixture),
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response,
        ):
            assert response.status == 200, f"{fixture['method']} {fixture['path']}"

    run(probe())


def test_the_issue_s_head_root_probe_gets_200() -> None:
    """Issue 7 reports `HEAD /` as Claude Code's connectivity probe; 2.1.332 sent
    `HEAD /api/hello` in every capture (the fixture above), but an older or newer one may not."""

    async def probe() -> None:
        async with (
            proxy(accounts=1) as served,
            aiohttp.ClientSession() as session,
            session.head(served.url + "/", timeout=aiohttp.ClientTimeout(total=10)) as response,
        ):
            assert response.status == 200

    run(probe())


def test_the_fixtures_cover_what_the_issue_reported() -> None:
    """The fixtures hold the shapes issue 7 is about, so a re-capture cannot lose them."""
    bodies = [f["body"] for f in MESSAGES]
    assert {b["model"] for b in bodies} >= {"claude-opus-5-5", "gemini-3-flash"}
    assert any(m["role"] == "system" for b in bodies for m in b["messages"])
    assert any(t.get("defer_loading") for b in bodies for t in b.get("tools", []))
    assert any(b.get("thinking", {}).get("type") == "adaptive" for b in bodies)
    assert any("effort" in b.get("output_config", {}) for b in bodies)
    assert any("context_management" in b for b in bodies)
    assert all(f["path"].endswith("?beta=true") for f in MESSAGES)
    assert all("anthropic-beta" in f["headers"] for f in MESSAGES)
    kinds = {
        blk["type"]
        for b in bodies
        for m in b["messages"]
        if m["role"] == "assistant"
        for blk in blocks(m["content"])
    }
    assert kinds >= {"thinking", "tool_use", "text"}
    for fixture in ALL:
        assert fixture["about"] and fixture["client"] == "claude-code 2.1.332"
        assert set(fixture["headers"]) <= set(SENT_HEADERS), "only the four headers are kept"
        assert "sk-test-dummy" not in json.dumps(fixture["body"]), "a key in the body"


def test_the_fixture_inventory_is_current() -> None:
    readme = (FIXTURES / "README.md").read_text()
    table = inventory.inventory(inventory.load(FIXTURES))
    assert inventory.render_readme(readme, table) == readme, (
        "run python -m tests.e2e_clients.inventory --write"
    )
