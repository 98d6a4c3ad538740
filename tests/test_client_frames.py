"""What reaches the client: SSE frames of Anthropic events and the folded non-streamed
message, encoded fast (orjson) without losing anything the standard library would keep."""

from __future__ import annotations

import json

from adapters.client_stream import MessageAccumulator, dumps, sse_frame


def test_a_frame_is_the_event_type_then_compact_json_then_a_blank_line() -> None:
    event = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "é\n"},
    }
    frame = sse_frame(event)
    head, data, rest = frame.split(b"\n", 2)
    assert head == b"event: content_block_delta"
    assert json.loads(data.removeprefix(b"data: ")) == event
    assert rest == b"\n"
    assert b" " not in data.removeprefix(b"data: ")  # compact


def test_values_the_fast_encoder_refuses_are_encoded_exactly_by_the_standard_library() -> None:
    big = {"type": "content_block_start", "n": 2**70, 3: "non-string key"}
    assert json.loads(dumps(big)) == {
        "type": "content_block_start",
        "n": 2**70,
        "3": "non-string key",
    }
    assert str(2**70).encode() in dumps(big)


def test_a_long_answer_folds_into_one_message_with_every_delta_in_order() -> None:
    fold = MessageAccumulator()
    fold.add({"type": "message_start", "message": {"id": "m", "content": [], "usage": {}}})
    fold.add(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    )
    for i in range(5000):
        fold.add(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": f"{i},"},
            }
        )
    fold.add(
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "input": {}},
        }
    )
    for piece in ('{"n": ', str(2**70), "}"):
        fold.add(
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": piece},
            }
        )
    message = fold.result()
    assert message["content"][0]["text"] == "".join(f"{i}," for i in range(5000))
    assert message["content"][1]["input"] == {"n": 2**70}
    assert fold.result() == message  # a second call changes nothing
