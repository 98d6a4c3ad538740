"""The official `anthropic` SDK as the client, through the real proxy, on the fake upstream."""

from __future__ import annotations

import anthropic

from adapters.fake_upstream import function_call, image, stream, text, thinking
from tests.e2e import calls, proxy, run

TOOLS = [
    {
        "name": "Bash",
        "description": "run a shell command",
        "input_schema": {
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        },
    }
]
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E"
    "rkJggg=="
)


def sdk(url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key="test", max_retries=0, timeout=30)


def test_the_sdk_streams_and_parses_a_normal_answer() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            client = sdk(served.url)
            async with client.messages.stream(
                model="claude-sonnet-4-6",
                max_tokens=64,
                messages=[{"role": "user", "content": "hi"}],
            ) as s:
                pieces = [t async for t in s.text_stream]
                final = await s.get_final_message()
            assert "".join(pieces) == "Hello from the fake upstream."
            assert final.stop_reason == "end_turn" and final.usage.output_tokens == 20
            assert final.usage.input_tokens == 60 and final.usage.cache_read_input_tokens == 40

    run(scenario())


def test_the_sdk_gets_a_complete_message_without_streaming() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            msg = await sdk(served.url).messages.create(
                model="claude-sonnet-4-6",
                max_tokens=64,
                messages=[{"role": "user", "content": "hi"}],
            )
            assert msg.content[0].type == "text"
            assert msg.content[0].text == "Hello from the fake upstream."
            assert msg.model == "claude-sonnet-4-6" and msg.id.startswith("msg_")

    run(scenario())


def test_tools_over_two_turns_map_names_and_results_back() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1) as served:
            assert served.fake is not None
            served.fake.script(
                "account-1",
                [
                    stream(text("Let me look."), function_call("Bash", {"command": "ls"})),
                    stream(text("There are two files.")),
                ],
            )
            client = sdk(served.url)
            first = await client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=256,
                tools=TOOLS,  # type: ignore[arg-type]
                messages=[{"role": "user", "content": "what is here?"}],
            )
            assert first.stop_reason == "tool_use"
            call = next(b for b in first.content if b.type == "tool_use")
            assert (call.name, call.input) == ("Bash", {"command": "ls"})
            second = await client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=256,
                tools=TOOLS,  # type: ignore[arg-type]
                messages=[
                    {"role": "user", "content": "what is here?"},
                    {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": call.id,
                                "content": "a.txt\nb.txt",
                            },
                        ],
                    },
                ],
            )
            assert second.content[0].text == "There are two files."  # type: ignore[union-attr]
            sent = served.fake.requests(path="streamGenerateContent")[1].body
            parts = [p for c in sent["request"]["contents"] for p in c["parts"]]
            response = next(p["functionResponse"] for p in parts if "functionResponse" in p)
            assert response["name"] == "Bash"

    run(scenario())


def test_thinking_blocks_arrive_with_their_signatures() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1) as served:
            assert served.fake is not None
            served.fake.script("account-1", [stream(thinking("pondering"), text("42"))])
            client = sdk(served.url)
            async with client.messages.stream(
                model="claude-opus-4-6-thinking",
                max_tokens=1024,
                thinking={"type": "enabled", "budget_tokens": 512},
                messages=[{"role": "user", "content": "answer?"}],
            ) as s:
                final = await s.get_final_message()
            kinds = [b.type for b in final.content]
            assert kinds == ["thinking", "text"]
            block = final.content[0]
            assert block.thinking == "pondering" and len(block.signature) >= 50  # type: ignore[union-attr]

    run(scenario())


def test_an_image_in_the_request_reaches_the_upstream_as_inline_data() -> None:
    async def scenario() -> None:
        async with proxy(accounts=1) as served:
            assert served.fake is not None
            served.fake.script("account-1", [stream(text("a pixel"), image())])
            msg = await sdk(served.url).messages.create(
                model="claude-sonnet-4-6",
                max_tokens=64,
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": PNG,
                                },
                            },
                            {"type": "text", "text": "what is this?"},
                        ],
                    }
                ],
            )
            assert msg.content[0].text == "a pixel"  # type: ignore[union-attr]
            sent = served.fake.requests(path="streamGenerateContent")[0].body
            parts = sent["request"]["contents"][0]["parts"]
            assert parts[0]["inlineData"] == {"mimeType": "image/png", "data": PNG}
            assert calls(served) == [("daily", "account-1")]

    run(scenario())
