"""SSE framing: the decoder against the SSE specification's rules and UPSTREAM.md's fixes.

Every framing case (line endings, multi-line data, fields, comments, the optional space, splits
anywhere in the byte stream, the last event without a newline, the size bound), the encoder, and
the JSON layer over the EMPIRICAL example stream of reference/seed-behaviour.md §4.4.
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from adapters.sse import (
    JsonChunk,
    JsonStreamDecoder,
    SSEDecoder,
    SSEError,
    SSEEvent,
    Unparsed,
    decode_json_events,
    encode_sse,
    parse_json_event,
)


def decode(stream: bytes, **kwargs: int) -> list[SSEEvent]:
    decoder = SSEDecoder(**kwargs)
    return [*decoder.feed(stream), *decoder.end()]


def decode_in_pieces(pieces: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [event for piece in pieces for event in decoder.feed(piece)]
    return [*events, *decoder.end()]


def split_at(stream: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


# Framing ------------------------------------------------------------------------------------------
def test_an_event_is_dispatched_at_the_blank_line_and_not_before() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: hello\n") == []
    assert decoder.feed(b"\n") == [SSEEvent(event=None, data="hello")]
    assert decoder.end() == []


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_lf_crlf_and_cr_line_endings_frame_the_same_events(eol: bytes) -> None:
    stream = eol.join([b"event: a", b"data: 1", b"", b"data: 2", b"data: 3", b"", b""])
    assert decode(stream) == [SSEEvent("a", "1"), SSEEvent(None, "2\n3")]


def test_mixed_line_endings_in_one_stream_are_all_accepted() -> None:
    stream = b"data: 1\r\n\ndata: 2\r\rdata: 3\n\r\n"
    assert [e.data for e in decode(stream)] == ["1", "2", "3"]


def test_multi_line_data_is_joined_with_newlines() -> None:
    stream = b'data: {\ndata:   "a": 1\ndata: }\n\n'
    [event] = decode(stream)
    assert event.data == '{\n  "a": 1\n}'
    assert json.loads(event.data) == {"a": 1}


def test_the_event_field_names_the_event_and_does_not_leak_into_the_next() -> None:
    stream = b"event: message_start\ndata: {}\n\ndata: {}\n\n"
    assert [e.event for e in decode(stream)] == ["message_start", None]


def test_the_id_field_is_reported_and_persists_like_last_event_id() -> None:
    stream = b"id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n"
    assert [(e.data, e.id) for e in decode(stream)] == [("a", "7"), ("b", "7"), ("c", "")]


def test_an_id_containing_nul_is_ignored() -> None:
    stream = b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"
    assert [e.id for e in decode(stream)] == ["1", "1"]


def test_comment_lines_are_ignored_even_between_data_lines() -> None:
    stream = b": keep-alive\n\ndata: a\n: note\ndata: b\n\n:\n\n"
    assert decode(stream) == [SSEEvent(None, "a\nb")]


def test_only_one_space_after_the_colon_is_removed() -> None:
    stream = b"data:x\n\ndata: x\n\ndata:  x\n\nevent:  e\ndata:\n\n"
    assert decode(stream) == [
        SSEEvent(None, "x"),
        SSEEvent(None, "x"),
        SSEEvent(None, " x"),
        SSEEvent(" e", ""),
    ]


def test_a_field_without_a_colon_has_an_empty_value() -> None:
    assert decode(b"data\ndata\n\n") == [SSEEvent(None, "\n")]


def test_a_colon_inside_the_value_is_kept() -> None:
    assert decode(b'data: {"a": "b:c"}\n\n')[0].data == '{"a": "b:c"}'


def test_an_event_without_data_is_not_dispatched() -> None:
    assert decode(b"event: ping\n\nid: 3\n\n") == []


def test_unknown_fields_and_retry_are_ignored() -> None:
    assert decode(b"retry: 100\nfoo: bar\ndata: a\n\n") == [SSEEvent(None, "a")]


def test_an_empty_event_type_is_reported_as_none() -> None:
    assert decode(b"event:\ndata: a\n\n") == [SSEEvent(None, "a")]


def test_consecutive_blank_lines_dispatch_nothing_extra() -> None:
    assert decode(b"\n\n\ndata: a\n\n\n\n") == [SSEEvent(None, "a")]


def test_a_leading_byte_order_mark_is_ignored() -> None:
    assert decode(b"\xef\xbb\xbfdata: a\n\n") == [SSEEvent(None, "a")]


def test_invalid_utf8_is_replaced_instead_of_breaking_the_stream() -> None:
    assert decode(b"data: a\xffb\n\n") == [SSEEvent(None, "a\ufffdb")]


# Splits anywhere ---------------------------------------------------------------------------------
def test_a_utf8_character_split_between_feeds_is_decoded_whole() -> None:
    encoded = "data: héllo €😀\n\n".encode()
    cut = encoded.index("😀".encode()) + 2
    assert decode_in_pieces([encoded[:cut], encoded[cut:]]) == [SSEEvent(None, "héllo €😀")]


def test_a_crlf_split_between_feeds_is_one_line_ending() -> None:
    pieces = [b"data: a\r", b"\n", b"data: b\r", b"\n\r", b"\n"]
    assert decode_in_pieces(pieces) == [SSEEvent(None, "a\nb")]


def test_a_cr_at_the_end_of_a_feed_followed_by_an_empty_feed_still_absorbs_the_lf() -> None:
    pieces = [b"data: a\r", b"", b"\n", b"\r\n"]
    assert decode_in_pieces(pieces) == [SSEEvent(None, "a")]


def test_feeding_byte_by_byte_gives_the_same_events_as_feeding_whole() -> None:
    stream = "event: x\r\ndata: é1\r\n: c\r\ndata: 2\r\n\r\ndata: 😀\r\rdata: end".encode()
    one_by_one = [stream[i : i + 1] for i in range(len(stream))]
    assert decode_in_pieces(one_by_one) == decode(stream)
    assert len(decode(stream)) == 3


_EOLS = st.sampled_from(["\n", "\r\n", "\r"])
_VALUE = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"))
_LINE = st.one_of(
    st.tuples(st.sampled_from(["data", "event", "id", "retry", "x"]), _VALUE).map(
        lambda fv: f"{fv[0]}:{fv[1]}"
    ),
    _VALUE.map(lambda v: ":" + v),
    st.just("data"),
    st.just(""),
)


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.tuples(_LINE, _EOLS), max_size=30))
    text = "".join(line + eol for line, eol in lines)
    if draw(st.booleans()):
        text += draw(_LINE)  # a last line without a newline
    return ("\ufeff" if draw(st.booleans()) else "").encode() + text.encode()


@given(data=st.data(), stream=streams())
def test_arbitrary_split_points_give_identical_events(data: st.DataObject, stream: bytes) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    assert decode_in_pieces(split_at(stream, cuts)) == decode(stream)


_DATA_EVENT = st.tuples(st.sampled_from(["data:", "data: ", "data:  "]), _VALUE).map(
    lambda pv: f"{pv[0]}{pv[1]}\n\n"
)
_ODD = st.one_of(
    _LINE.map(lambda line: line + "\n"),
    _LINE.flatmap(lambda ln: _EOLS.map(ln.__add__)),
    _VALUE.map(lambda v: f"id: {v}\n\n"),  # sets the last event id, dispatches nothing
)


@st.composite
def mostly_data_events(draw: st.DrawFn) -> bytes:
    """Cloud Code's shape (one-line `data:` events framed by a blank line) most of the time,
    with odd lines (other fields, comments, CR endings, multi-line data) in between."""
    parts = [
        draw(_ODD if draw(st.integers(0, 9)) == 0 else _DATA_EVENT)
        for _ in range(draw(st.integers(0, 25)))
    ]
    text = "".join(parts)
    return ("\ufeff" if draw(st.booleans()) else "").encode() + text.encode()


@given(data=st.data(), stream=st.one_of(mostly_data_events(), streams()))
def test_the_fast_path_decodes_exactly_as_the_line_parser_does(
    data: st.DataObject, stream: bytes
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8))
    fast = SSEDecoder()
    got = [event for piece in split_at(stream, cuts) for event in fast.feed(piece)]
    got += fast.end()
    reference = SSEDecoder(fast=False)
    assert got == [*reference.feed(stream), *reference.end()]
    assert reference.fast_events == 0
    event("fast path used" if fast.fast_events else "line parser only")
    event("split" if cuts else "whole")


def test_whole_data_events_take_the_fast_path() -> None:
    decoder = SSEDecoder()
    chunks = [f'data: {{"n": {i}}}\n\n'.encode() for i in range(3)]
    assert decoder.feed(b"".join(chunks)) == [SSEEvent(None, f'{{"n": {i}}}') for i in range(3)]
    assert decoder.fast_events == 3


def test_an_event_at_the_size_bound_still_raises_on_the_fast_path() -> None:
    decoder = SSEDecoder(max_event_size=10)
    decoder.feed(b"data: 1\n\n")  # past the start of the stream
    with pytest.raises(SSEError):
        decoder.feed(b"data: 0123456789\n\n")


# The last event, end() ---------------------------------------------------------------------------
def test_the_last_event_without_a_trailing_newline_is_delivered_by_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: 1\n\ndata: last") == [SSEEvent(None, "1")]
    assert decoder.end() == [SSEEvent(None, "last")]


def test_the_last_event_with_a_newline_but_no_blank_line_is_delivered_by_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: e\ndata: last\r\n") == []
    assert decoder.end() == [SSEEvent("e", "last")]


def test_end_with_nothing_pending_delivers_nothing() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\n: trailing comment")
    assert decoder.end() == []


# Bounded memory ----------------------------------------------------------------------------------
def test_an_event_larger_than_the_bound_raises_a_clear_error() -> None:
    decoder = SSEDecoder(max_event_size=100)
    with pytest.raises(SSEError, match="exceeds 100 bytes"):
        for _ in range(20):
            decoder.feed(b"data: 0123456789\n")


def test_a_single_line_that_never_ends_raises_once_past_the_bound() -> None:
    decoder = SSEDecoder(max_event_size=100)
    decoder.feed(b"data: " + b"x" * 90)
    with pytest.raises(SSEError):
        decoder.feed(b"x" * 20)


def test_the_bound_applies_per_event_not_per_stream() -> None:
    decoder = SSEDecoder(max_event_size=100)
    events = [e for _ in range(1000) for e in decoder.feed(b"data: " + b"x" * 80 + b"\n\n")]
    assert len(events) == 1000


def test_the_default_bound_is_sixteen_mebibytes() -> None:
    decoder = SSEDecoder()
    big = b"x" * (16 * 1024 * 1024)
    with pytest.raises(SSEError, match=str(16 * 1024 * 1024)):
        decoder.feed(b"data: " + big)


def test_a_non_positive_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        SSEDecoder(max_event_size=0)


# Encoder -----------------------------------------------------------------------------------------
def test_an_encoded_event_has_its_type_its_data_and_a_blank_line() -> None:
    assert encode_sse("message_stop", '{"type":"message_stop"}') == (
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )


def test_an_encoded_event_without_a_type_has_only_data() -> None:
    assert encode_sse(None, "x") == b"data: x\n\n"


def test_each_line_of_encoded_data_gets_its_own_data_field() -> None:
    assert encode_sse("e", "a\nb\r\nc\rd") == b"event: e\ndata: a\ndata: b\ndata: c\ndata: d\n\n"


def test_an_event_type_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        encode_sse("a\nb", "x")


@given(
    event=st.one_of(st.none(), _VALUE.filter(bool)),
    data=st.text(st.characters(codec="utf-8")),
)
def test_decoding_an_encoded_event_gives_it_back(event: str | None, data: str) -> None:
    normalised = data.replace("\r\n", "\n").replace("\r", "\n")
    assert decode(encode_sse(event, data)) == [SSEEvent(event, normalised)]


# JSON layer ---------------------------------------------------------------------------------------
SIG_T = "S" * 60
SIG_G = "G" * 60
EXAMPLE_LINES = [
    '{"response":{"candidates":[{"content":{"role":"model","parts":[{"thought":true,'
    '"text":"thinking..."}]}}]}}',
    '{"response":{"candidates":[{"content":{"role":"model","parts":[{"thought":true,"text":"",'
    f'"thoughtSignature":"{SIG_T}"'
    "}]}}]}}",
    '{"response":{"candidates":[{"content":{"role":"model","parts":[{"text":"Let me run it."}'
    "]}}]}}",
    '{"response":{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"Bash",'
    f'"args":{{"command":"ls"}}}},"thoughtSignature":"{SIG_G}"'
    '}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":100,'
    '"cachedContentTokenCount":40,"candidatesTokenCount":20}}}',
]
EXPECTED_CHUNKS = [json.loads(line)["response"] for line in EXAMPLE_LINES]


def chunks(results: list[JsonChunk | Unparsed]) -> list[dict[str, object]]:
    assert all(isinstance(r, JsonChunk) for r in results), results
    return [r.value for r in results if isinstance(r, JsonChunk)]


@pytest.mark.parametrize("separator", ["\n\n", "\r\n\r\n", "\r\r"], ids=["lf", "crlf", "cr"])
def test_the_empirical_example_stream_decodes_to_its_four_chunks(separator: str) -> None:
    stream = "".join(f"data: {line}{separator}" for line in EXAMPLE_LINES).encode()
    assert chunks(decode_json_events(decode(stream))) == EXPECTED_CHUNKS


def test_the_example_stream_written_one_data_line_per_chunk_still_gives_four_chunks() -> None:
    """§4.4 lists the chunks as consecutive `data:` lines; the JS proxy parses line by line."""
    stream = "".join(f"data: {line}\n" for line in EXAMPLE_LINES).encode()
    assert chunks(decode_json_events(decode(stream))) == EXPECTED_CHUNKS


def test_the_example_stream_fed_byte_by_byte_without_a_final_newline_gives_four_chunks() -> None:
    stream = "\r\n\r\n".join(f"data: {line}" for line in EXAMPLE_LINES).encode()
    decoder = JsonStreamDecoder()
    results = [r for i in range(len(stream)) for r in decoder.feed(stream[i : i + 1])]
    assert len(results) == 3
    assert chunks([*results, *decoder.end()]) == EXPECTED_CHUNKS


def test_a_pretty_printed_multi_line_json_event_is_one_chunk() -> None:
    event = SSEEvent(None, '{\n  "response": {\n    "candidates": []\n  }\n}')
    assert parse_json_event(event) == [JsonChunk(value={"candidates": []})]


def test_an_object_without_a_response_envelope_is_kept_as_is() -> None:
    assert parse_json_event(SSEEvent(None, '{"candidates": []}')) == [
        JsonChunk(value={"candidates": []})
    ]


def test_an_error_object_in_the_stream_is_returned_for_the_caller_to_judge() -> None:
    data = '{"error": {"code": 429, "message": "Resource has been exhausted"}}'
    [result] = parse_json_event(SSEEvent(None, data))
    assert isinstance(result, JsonChunk)
    assert result.value["error"] == {"code": 429, "message": "Resource has been exhausted"}


def test_data_that_is_not_json_is_reported_not_dropped() -> None:
    [result] = parse_json_event(SSEEvent("e", "[DONE]"))
    assert isinstance(result, Unparsed)
    assert (result.text, result.event) == ("[DONE]", "e")
    assert result.why.startswith("not JSON")


def test_json_that_is_not_an_object_is_reported_not_dropped() -> None:
    [result] = parse_json_event(SSEEvent(None, "[1, 2]"))
    assert isinstance(result, Unparsed)
    assert "not an object" in result.why


def test_one_bad_line_among_good_data_lines_is_reported_alone() -> None:
    event = SSEEvent(None, '{"a": 1}\nnot json\n{"b": 2}')
    results = parse_json_event(event)
    assert results[0] == JsonChunk(value={"a": 1})
    assert isinstance(results[1], Unparsed)
    assert results[1].text == "not json"
    assert results[2] == JsonChunk(value={"b": 2})


def test_the_event_type_travels_with_each_json_chunk() -> None:
    results = decode_json_events([SSEEvent("message_start", '{"type": "message_start"}')])
    assert results == [JsonChunk(value={"type": "message_start"}, event="message_start")]


def test_chunks_the_fast_json_library_refuses_are_still_parsed() -> None:
    # orjson refuses integers past 64 bits and lone surrogates; Python's decoder takes both
    for data in ('{"n": 123456789012345678901234567890}', '{"s": "\\ud800"}'):
        [result] = parse_json_event(SSEEvent(None, data))
        assert isinstance(result, JsonChunk), result
        assert result.value == json.loads(data)


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # far past 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


@given(_JSON_VALUES, st.booleans())
def test_a_chunk_parses_exactly_as_pythons_decoder_parses_it(
    value: object, ascii_only: bool
) -> None:
    text = json.dumps({"v": value}, ensure_ascii=ascii_only)
    [result] = parse_json_event(SSEEvent(None, text))
    assert isinstance(result, JsonChunk)
    assert result.value == json.loads(text)
    assert repr(result.value) == repr(json.loads(text))  # int stays int, float stays float
    big = any(
        isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2**63 for v in _leaves(value)
    )
    event("an integer past 64 bits" if big else "fits orjson")


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [leaf for child in value.values() for leaf in _leaves(child)]
    if isinstance(value, list):
        return [leaf for child in value for leaf in _leaves(child)]
    return [value]
