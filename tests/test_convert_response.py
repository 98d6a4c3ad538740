"""Cloud Code answers become Anthropic events and messages (seed §5.7, §5.8, §5.9.3, with fixes)."""

from __future__ import annotations

import json
from typing import Any

from adapters.convert.ids import SequentialIds
from adapters.convert.response import (
    PLACEHOLDER_TEXT,
    StreamTranslator,
    placeholder_events,
    to_message,
)
from adapters.convert.signatures import SignatureCache
from adapters.convert.toolnames import ToolNameMap

S = "S" * 60
G = "G" * 60
NOW = 50.0
MSG_ID = "msg_" + "0" * 31 + "1"
TOOLU_ID = "toolu_" + "0" * 23 + "1"


def chunk(*parts: dict[str, Any], finish: str | None = None, **usage: int) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}}
    if finish:
        candidate["finishReason"] = finish
    body: dict[str, Any] = {"candidates": [candidate]}
    if usage:
        body["usageMetadata"] = usage
    return body


SEED_STREAM = [
    chunk({"thought": True, "text": "thinking..."}),
    chunk({"thought": True, "text": "", "thoughtSignature": S}),
    chunk({"text": "Let me run it."}),
    chunk(
        {"functionCall": {"name": "Bash", "args": {"command": "ls"}}, "thoughtSignature": G},
        finish="STOP",
        promptTokenCount=100,
        cachedContentTokenCount=40,
        candidatesTokenCount=20,
    ),
]


def translator(
    model: str = "gemini-3-flash",
    names: ToolNameMap | None = None,
    cache: SignatureCache | None = None,
) -> StreamTranslator:
    return StreamTranslator(
        model, names or ToolNameMap(["Bash"]), cache or SignatureCache(), NOW, ids=SequentialIds()
    )


def run(chunks: list[dict[str, Any]], t: StreamTranslator | None = None) -> list[dict[str, Any]]:
    t = t or translator()
    events: list[dict[str, Any]] = []
    for c in chunks:
        events += t.feed(c)
    return events + t.finish()


def test_seed_example_stream_gives_the_seed_event_sequence_with_fixed_stop_and_usage() -> None:
    cache = SignatureCache()
    events = run(SEED_STREAM, translator(cache=cache))
    assert events == [
        {
            "type": "message_start",
            "message": {
                "id": MSG_ID,
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": "gemini-3-flash",
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 0,
                    "output_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "cache_creation_input_tokens": 0,
                },
            },
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "thinking..."},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": S},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "text_delta", "text": "Let me run it."},
        },
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {
                "type": "tool_use",
                "id": TOOLU_ID,
                "name": "Bash",
                "input": {},
                "thoughtSignature": G,
            },
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"command":"ls"}'},
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {
                "input_tokens": 60,
                "output_tokens": 20,
                "cache_read_input_tokens": 40,
                "cache_creation_input_tokens": 0,
            },
        },
        {"type": "message_stop"},
    ]
    assert cache.family_of(S, now=NOW) == "gemini"
    assert cache.tool_signature(TOOLU_ID, now=NOW) == G


def test_empty_stream_produces_no_events_and_stays_unstarted() -> None:
    t = translator()
    usage_only = {
        "candidates": [{"finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 5},
    }
    assert t.feed(usage_only) == []
    assert t.feed({"candidates": [{"content": {"role": "model", "parts": []}}]}) == []
    assert t.finish() == []
    assert t.started is False


def test_chunk_with_only_empty_text_starts_the_message_but_no_block() -> None:
    events = run([chunk({"text": ""}, finish="STOP")])
    assert [e["type"] for e in events] == ["message_start", "message_delta", "message_stop"]


def test_message_start_is_held_until_the_first_chunk_with_parts_and_reports_known_usage() -> None:
    t = translator()
    assert t.feed({"usageMetadata": {"promptTokenCount": 100, "cachedContentTokenCount": 30}}) == []
    assert t.started is False
    events = t.feed(chunk({"text": "hi"}))
    assert t.started is True
    assert events[0]["message"]["usage"] == {
        "input_tokens": 70,
        "output_tokens": 0,
        "cache_read_input_tokens": 30,
        "cache_creation_input_tokens": 0,
    }


def test_whitespace_only_text_is_kept_and_empty_text_skipped() -> None:
    events = run(
        [chunk({"text": "a"}), chunk({"text": ""}), chunk({"text": "  \n"}), chunk({"text": "b"})]
    )
    deltas = [e["delta"]["text"] for e in events if e["type"] == "content_block_delta"]
    assert deltas == ["a", "  \n", "b"]
    assert sum(e["type"] == "content_block_start" for e in events) == 1


def test_function_call_ending_with_stop_reports_tool_use() -> None:
    events = run([chunk({"functionCall": {"name": "Bash", "args": {}}}, finish="STOP")])
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_text_after_a_tool_call_still_reports_tool_use() -> None:
    events = run(
        [
            chunk({"functionCall": {"name": "Bash", "args": {}}}),
            chunk({"text": "done"}, finish="STOP"),
        ]
    )
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_stop_reasons_without_tool_calls() -> None:
    assert run([chunk({"text": "a"}, finish="STOP")])[-2]["delta"]["stop_reason"] == "end_turn"
    assert (
        run([chunk({"text": "a"}, finish="MAX_TOKENS")])[-2]["delta"]["stop_reason"] == "max_tokens"
    )
    assert run([chunk({"text": "a"}, finish="SAFETY")])[-2]["delta"]["stop_reason"] == "refusal"
    assert run([chunk({"text": "a"}, finish="RECITATION")])[-2]["delta"]["stop_reason"] == (
        "refusal"
    )
    assert run([chunk({"text": "a"})])[-2]["delta"]["stop_reason"] == "end_turn"


def test_sanitised_tool_names_are_mapped_back_to_the_clients_names() -> None:
    names = ToolNameMap(["mcp.server/tool"])
    events = run(
        [chunk({"functionCall": {"name": "mcp_server_tool", "args": {"a": 1}, "id": "toolu_up"}})],
        translator(names=names),
    )
    start = events[1]["content_block"]
    assert (start["name"], start["id"]) == ("mcp.server/tool", "toolu_up")


def test_signature_only_parts_attach_to_the_open_thinking_block() -> None:
    for signature_part in ({"thoughtSignature": S}, {"text": "", "thoughtSignature": S}):
        cache = SignatureCache()
        events = run(
            [
                chunk({"thought": True, "text": "hmm"}),
                chunk(signature_part),
                chunk({"text": "answer"}),
            ],
            translator(model="claude-opus-4-6-thinking", cache=cache),
        )
        kinds = [(e["type"], e.get("delta", {}).get("type")) for e in events]
        assert kinds[:5] == [
            ("message_start", None),
            ("content_block_start", None),
            ("content_block_delta", "thinking_delta"),
            ("content_block_delta", "signature_delta"),
            ("content_block_stop", None),
        ]
        assert events[3]["delta"]["signature"] == S
        assert cache.family_of(S, now=NOW) == "claude"


def test_open_thinking_block_gets_its_signature_flushed_at_the_end() -> None:
    events = run([chunk({"thought": True, "text": "x", "thoughtSignature": S})])
    assert [e["type"] for e in events][-5:] == [
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[-4]["delta"] == {"type": "signature_delta", "signature": S}


def test_inline_image_is_a_block_opened_and_closed_at_once() -> None:
    events = run([chunk({"text": "see"}, {"inlineData": {"mimeType": "image/png", "data": "QQ"}})])
    assert events[3:6] == [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "QQ"},
            },
        },
        {"type": "content_block_stop", "index": 1},
    ]


def test_wrapped_chunks_are_unwrapped_and_nothing_is_emitted_after_finish() -> None:
    t = translator()
    assert t.feed({"response": chunk({"text": "hi"})})[0]["type"] == "message_start"
    assert [e["type"] for e in t.finish()][-1] == "message_stop"
    assert t.feed(chunk({"text": "late"})) == []
    assert t.finish() == []


def test_non_streaming_message_for_a_tool_call_with_stop_reports_tool_use() -> None:
    message = to_message(
        SEED_STREAM,
        model="gemini-3-flash",
        tool_names=ToolNameMap(["Bash"]),
        signatures=SignatureCache(),
        now=NOW,
        ids=SequentialIds(),
    )
    assert message == {
        "id": MSG_ID,
        "type": "message",
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "thinking...", "signature": S},
            {"type": "text", "text": "Let me run it."},
            {
                "type": "tool_use",
                "id": TOOLU_ID,
                "name": "Bash",
                "input": {"command": "ls"},
                "thoughtSignature": G,
            },
        ],
        "model": "gemini-3-flash",
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 60,
            "output_tokens": 20,
            "cache_read_input_tokens": 40,
            "cache_creation_input_tokens": 0,
        },
    }


def test_non_streaming_message_accumulates_consecutive_thoughts_and_texts() -> None:
    message = to_message(
        [
            chunk({"thought": True, "text": "a"}, {"thought": True, "text": "b"}),
            chunk({"thought": True, "text": "", "thoughtSignature": S}),
            chunk({"text": "x"}, {"text": " y"}),
            chunk({"text": "z"}, finish="MAX_TOKENS", candidatesTokenCount=7),
        ],
        model="claude-opus-4-6-thinking",
        tool_names=ToolNameMap(),
        signatures=SignatureCache(),
        now=NOW,
        ids=SequentialIds(),
    )
    assert message["content"] == [
        {"type": "thinking", "thinking": "ab", "signature": S},
        {"type": "text", "text": "x yz"},
    ]
    assert message["stop_reason"] == "max_tokens"
    assert message["usage"]["output_tokens"] == 7


def test_non_streaming_unary_response_without_content_is_one_empty_text_block() -> None:
    message = to_message(
        [
            {
                "response": {
                    "candidates": [{"finishReason": "STOP"}],
                    "usageMetadata": {"promptTokenCount": 9},
                }
            }
        ],
        model="claude-sonnet-4-6",
        tool_names=ToolNameMap(),
        signatures=SignatureCache(),
        now=NOW,
        ids=SequentialIds(),
    )
    assert message["id"] == MSG_ID
    assert message["content"] == [{"type": "text", "text": ""}]
    assert message["stop_reason"] == "end_turn"
    assert message["usage"]["input_tokens"] == 9


def test_unsigned_thinking_in_a_non_streaming_message_has_an_empty_signature() -> None:
    message = to_message(
        [chunk({"thought": True, "text": "t"}), chunk({"text": "a"})],
        model="gemini-3-flash",
        tool_names=ToolNameMap(),
        signatures=SignatureCache(),
        now=NOW,
    )
    assert message["content"][0] == {"type": "thinking", "thinking": "t", "signature": ""}
    assert message["id"].startswith("msg_") and len(message["id"]) == 36


def test_generated_tool_ids_have_the_anthropic_shape_by_default() -> None:
    t = StreamTranslator("gemini-3-flash", ToolNameMap(), SignatureCache(), NOW)
    events = t.feed(chunk({"functionCall": {"name": "X", "args": {"k": "é"}}}))
    tool_id = events[1]["content_block"]["id"]
    assert tool_id.startswith("toolu_") and len(tool_id) == 30
    assert json.loads(events[2]["delta"]["partial_json"]) == {"k": "é"}
    assert events[2]["delta"]["partial_json"] == '{"k":"é"}'


def test_placeholder_answer_matches_the_seed() -> None:
    events = placeholder_events("claude-sonnet-4-6", ids=SequentialIds())
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[0]["message"]["id"] == MSG_ID
    assert events[0]["message"]["usage"] == {"input_tokens": 0, "output_tokens": 0}
    assert events[2]["delta"] == {"type": "text_delta", "text": PLACEHOLDER_TEXT}
    assert events[4]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}


# --- issue 7: shapes the SDKs' strict types need, stop sequences, omitted thinking ------------


def test_a_streamed_thinking_block_starts_with_an_empty_signature() -> None:
    events = run([chunk({"thought": True, "text": "hmm"}), chunk({"text": "ok"}, finish="STOP")])
    assert events[1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}


def test_a_thinking_block_whose_signature_is_too_short_still_has_a_signature_key() -> None:
    message = to_message(
        [
            chunk({"thought": True, "text": "hmm", "thoughtSignature": "short"}),
            chunk({"text": "a"}),
        ],
        model="gemini-3-flash",
        tool_names=ToolNameMap([]),
        signatures=SignatureCache(),
        now=NOW,
    )
    assert message["content"][0] == {"type": "thinking", "thinking": "hmm", "signature": ""}


def stop_translator(*sequences: str) -> StreamTranslator:
    return StreamTranslator(
        "m", ToolNameMap([]), SignatureCache(), NOW, ids=SequentialIds(), stop_sequences=sequences
    )


def test_an_answer_ending_with_a_stop_sequence_reports_it() -> None:
    events = run(
        [chunk({"text": "one two EN"}), chunk({"text": "D"}, finish="STOP")],
        stop_translator("STOP!", "END"),
    )
    assert events[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}


def test_an_answer_the_upstream_stripped_of_its_stop_sequence_reports_end_turn() -> None:
    events = run([chunk({"text": "one two"}, finish="STOP")], stop_translator("END"))
    assert events[-2]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}


def test_a_stop_sequence_at_max_tokens_is_not_reported_as_one() -> None:
    events = run([chunk({"text": "END"}, finish="MAX_TOKENS")], stop_translator("END"))
    assert events[-2]["delta"] == {"stop_reason": "max_tokens", "stop_sequence": None}


def test_the_unary_message_reports_the_stop_sequence_too() -> None:
    message = to_message(
        [chunk({"text": "a b END"}, finish="STOP")],
        model="m",
        tool_names=ToolNameMap([]),
        signatures=SignatureCache(),
        now=NOW,
        stop_sequences=["END"],
    )
    assert (message["stop_reason"], message["stop_sequence"]) == ("stop_sequence", "END")


def test_omitted_thinking_keeps_the_block_and_its_signature_but_not_its_text() -> None:
    omitting = StreamTranslator(
        "gemini-3-flash", ToolNameMap([]), SignatureCache(), NOW, omit_thinking=True
    )
    events = run(
        [
            chunk({"thought": True, "text": "secret plan"}),
            chunk({"thought": True, "text": "", "thoughtSignature": S}),
            chunk({"text": "answer"}, finish="STOP"),
        ],
        omitting,
    )
    assert "secret plan" not in json.dumps(events)
    assert events[1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert events[2]["delta"] == {"type": "signature_delta", "signature": S}


def test_a_call_of_the_answer_tool_is_the_json_text_answer_not_a_tool_use() -> None:
    names = ToolNameMap(["Bash"])
    answer_tool = names.reserve_answer_tool("structured_output")
    events = run(
        [chunk({"functionCall": {"name": answer_tool, "args": {"title": "Hi"}}}, finish="STOP")],
        translator(names=names),
    )
    assert events[1]["content_block"] == {"type": "text", "text": ""}
    assert events[2]["delta"] == {"type": "text_delta", "text": '{"title":"Hi"}'}
    assert events[-2]["delta"]["stop_reason"] == "end_turn"
