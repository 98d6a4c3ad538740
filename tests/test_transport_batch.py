"""One upstream read becomes one batch of content: adjacent text deltas of a block are merged
into one (the same text, in order), everything else is kept as it came."""

from __future__ import annotations

from typing import Any

from adapters.cloudcode.transport import _Batch
from engine.events import ContentReceived


def text(index: int, value: str) -> dict[str, Any]:
    return {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "text_delta", "text": value},
    }


def thinking(index: int, value: str) -> dict[str, Any]:
    return {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "thinking_delta", "thinking": value},
    }


def content(batch: _Batch) -> list[dict[str, Any]]:
    [event] = batch.events_out()
    assert isinstance(event, ContentReceived)
    return list(event.content)


def test_adjacent_text_deltas_of_one_block_become_one_delta_with_the_same_text() -> None:
    batch = _Batch()
    start = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    batch.add([start, text(0, "a")])
    for piece in ("b", "c", "d"):
        batch.add([text(0, piece)])
    assert content(batch) == [start, text(0, "abcd")]


def test_other_events_and_other_blocks_break_the_merge_and_keep_their_order() -> None:
    batch = _Batch()
    stop = {"type": "content_block_stop", "index": 0}
    batch.add([thinking(0, "t1"), thinking(0, "t2"), stop, text(1, "x"), text(1, "y")])
    batch.add([text(2, "z"), text(2, "w")])
    assert content(batch) == [
        thinking(0, "t1"),
        thinking(0, "t2"),
        stop,
        text(1, "xy"),
        text(2, "zw"),
    ]


def test_a_read_without_content_gives_no_event_and_a_single_delta_is_kept_as_it_is() -> None:
    assert _Batch().events_out() == []
    batch = _Batch()
    single = text(0, "only")
    batch.add([single])
    assert content(batch)[0] is single
