"""The binary form of the hot Raft messages: exact layout, round trips, and refusal of bad bytes.

Any payload a peer sends must come back as the message it encodes or as FrameError, never as
another exception and never as a different message.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from impl.transport.codec import FrameError, decode_message, encode_message
from spec.raft.messages import (
    AppendRequest,
    AppendResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    Message,
)
from spec.raft.types import Entry, EntryKind, LogIndex, NodeId, Term

U64 = 2**64 - 1
BINARY_MARKERS = (1, 2, 3, 4)
u64 = st.integers(0, U64)
small = st.integers(0, 1000)
numbers = st.one_of(small, u64)  # small values are what a cluster sends, extremes find edge cases


@st.composite
def append_requests(draw: st.DrawFn) -> AppendRequest:
    previous_index = draw(st.one_of(small, st.integers(0, U64 - 40)))
    entries = tuple(
        Entry(Term(term), LogIndex(previous_index + 1 + position), kind, data)
        for position, (term, kind, data) in enumerate(
            draw(
                st.lists(
                    st.tuples(numbers, st.sampled_from(EntryKind), st.binary(max_size=300)),
                    max_size=30,
                )
            )
        )
    )
    return AppendRequest(
        NodeId(draw(numbers)), NodeId(draw(numbers)), Term(draw(numbers)),
        LogIndex(previous_index), Term(draw(numbers)), entries, LogIndex(draw(numbers)),
    )  # fmt: skip


contexts = st.one_of(st.none(), st.binary(max_size=40))
append_responses = st.builds(
    AppendResponse, numbers, numbers, numbers, numbers, st.booleans(), numbers, numbers
)
heartbeat_requests = st.builds(HeartbeatRequest, numbers, numbers, numbers, numbers, contexts)
heartbeat_responses = st.builds(HeartbeatResponse, numbers, numbers, numbers, contexts)
hot_messages = st.one_of(
    append_requests(), append_responses, heartbeat_requests, heartbeat_responses
)


@pytest.mark.parametrize(
    "strategy",
    [append_requests(), append_responses, heartbeat_requests, heartbeat_responses],
    ids=["AppendRequest", "AppendResponse", "HeartbeatRequest", "HeartbeatResponse"],
)
def test_each_hot_message_round_trips_in_binary(strategy: st.SearchStrategy[Message]) -> None:
    @given(strategy)
    def round_trip(message: Message) -> None:
        payload = encode_message(message)
        assert payload[0] in BINARY_MARKERS
        assert decode_message(payload) == message

    round_trip()


APPEND = AppendRequest(
    NodeId(0x0102030405060708), NodeId(2), Term(3), LogIndex(4), Term(5),
    (
        Entry(Term(5), LogIndex(5), EntryKind.NORMAL, b"ab"),
        Entry(Term(6), LogIndex(6), EntryKind.CONFIGURATION, b""),
    ),
    LogIndex(9),
)  # fmt: skip


def _u64(*values: int) -> bytes:
    return b"".join(struct.pack(">Q", value) for value in values)


# The layouts the module docstring documents, written out by hand.
LAYOUTS: list[tuple[Message, bytes]] = [
    (
        APPEND,
        b"\x01" + _u64(0x0102030405060708, 2, 3, 4, 5, 9) + b"\x00\x00\x00\x02"
        + _u64(5) + b"\x00" + b"\x00\x00\x00\x02" + b"ab"
        + _u64(6) + b"\x01" + b"\x00\x00\x00\x00",
    ),
    (
        AppendResponse(NodeId(1), NodeId(2), Term(3), LogIndex(4), True, LogIndex(5), Term(6)),
        b"\x02" + _u64(1, 2, 3, 4) + b"\x01" + _u64(5, 6),
    ),
    (
        HeartbeatRequest(NodeId(1), NodeId(2), Term(3), LogIndex(4), b"ctx"),
        b"\x03" + _u64(1, 2, 3, 4) + b"\x01ctx",
    ),
    (HeartbeatRequest(NodeId(1), NodeId(2), Term(3), LogIndex(4)), b"\x03" + _u64(1, 2, 3, 4) + b"\x00"),
    (HeartbeatResponse(NodeId(1), NodeId(2), Term(3), b""), b"\x04" + _u64(1, 2, 3) + b"\x01"),
    (HeartbeatResponse(NodeId(1), NodeId(2), Term(3)), b"\x04" + _u64(1, 2, 3) + b"\x00"),
]  # fmt: skip


@pytest.mark.parametrize("message, layout", LAYOUTS, ids=[str(n) for n in range(len(LAYOUTS))])
def test_the_binary_layout_is_the_documented_one(message: Message, layout: bytes) -> None:
    assert encode_message(message) == layout
    assert decode_message(layout) == message


@pytest.mark.parametrize(
    "message",
    [
        AppendResponse(NodeId(1), NodeId(2), Term(-1), LogIndex(0)),
        HeartbeatRequest(NodeId(2**64), NodeId(2), Term(3), LogIndex(4)),
        AppendRequest(
            NodeId(1),
            NodeId(2),
            Term(3),
            LogIndex(4),
            Term(3),
            (Entry(Term(-3), LogIndex(5)),),
            LogIndex(4),
        ),
    ],
    ids=["negative", "too-large", "negative-entry-term"],
)
def test_values_the_binary_form_cannot_hold_fall_back_to_json(message: Message) -> None:
    payload = encode_message(message)
    assert payload.startswith(b"{")
    assert decode_message(payload) == message


def test_a_gapped_append_is_sent_as_json_and_refused_on_arrival() -> None:
    gapped = AppendRequest(
        NodeId(1), NodeId(2), Term(3), LogIndex(4), Term(3),
        (Entry(Term(3), LogIndex(6)),), LogIndex(4),
    )  # fmt: skip
    payload = encode_message(gapped)
    assert payload.startswith(b"{")
    with pytest.raises(FrameError):
        decode_message(payload)


def _entry_count(payload: bytes, count: int) -> bytes:
    return payload[:49] + struct.pack(">I", count) + payload[53:]


APPEND_BYTES = LAYOUTS[0][1]
RESPONSE_BYTES = LAYOUTS[1][1]
HEARTBEAT_BYTES = LAYOUTS[2][1]
HEARTBEAT_RESPONSE_BYTES = LAYOUTS[5][1]


@pytest.mark.parametrize(
    "payload",
    [
        APPEND_BYTES + b"\x00",
        _entry_count(APPEND_BYTES, 3),
        _entry_count(APPEND_BYTES, 1),
        _entry_count(APPEND_BYTES, 2**32 - 1),
        APPEND_BYTES[:53] + _u64(5) + b"\x02" + APPEND_BYTES[62:],
        b"\x01" + _u64(1, 2, 3, 4, 5, 9) + b"\x00\x00\x00\x01" + _u64(5) + b"\x00\x00\x00\x00\x03ab",
        b"\x01" + _u64(1, 2, 3, U64, 5, 9) + b"\x00\x00\x00\x01" + _u64(5) + b"\x00" + bytes(4),
        RESPONSE_BYTES + b"\x00",
        RESPONSE_BYTES[:33] + b"\x02" + RESPONSE_BYTES[34:],
        HEARTBEAT_BYTES[:33] + b"\x02ctx",
        HEARTBEAT_BYTES[:33] + b"\x00ctx",
        HEARTBEAT_RESPONSE_BYTES + b"x",
        HEARTBEAT_RESPONSE_BYTES[:25] + b"\xff",
        b"\x01",
        b"\x02",
        b"\x03",
        b"\x04",
        b"",
    ],
    ids=[
        "append-trailing", "count-too-high", "count-too-low", "count-huge", "entry-kind",
        "entry-length-past-end", "index-overflow", "response-trailing", "response-flag",
        "heartbeat-flag", "heartbeat-no-context-trailing", "heartbeat-response-trailing",
        "heartbeat-response-flag", "marker-1-only", "marker-2-only", "marker-3-only",
        "marker-4-only", "empty",
    ],
)  # fmt: skip
def test_malformed_binary_payloads_raise_frame_error(payload: bytes) -> None:
    with pytest.raises(FrameError):
        decode_message(payload)


@pytest.mark.parametrize("layout", [layout for _, layout in LAYOUTS])
def test_every_truncation_of_a_binary_payload_is_refused(layout: bytes) -> None:
    """A heartbeat with a context may lose context bytes and stay valid; nothing else may."""
    has_context = layout[0] in (3, 4) and layout.endswith(b"ctx")
    shortest_valid = len(layout) - 3 if has_context else len(layout)
    for length in range(shortest_valid):
        with pytest.raises(FrameError):
            decode_message(layout[:length])


def _decodes_canonically(payload: bytes) -> None:
    """Decoding gives a message or FrameError; a binary payload that decodes is the one its message encodes to."""
    try:
        message = decode_message(payload)
    except FrameError:
        return
    if payload[:1] in (b"\x01", b"\x02", b"\x03", b"\x04"):
        assert encode_message(message) == payload


@given(st.binary(max_size=200))
def test_random_bytes_only_ever_raise_frame_error(payload: bytes) -> None:
    _decodes_canonically(payload)


@given(st.sampled_from(BINARY_MARKERS), st.binary(max_size=200))
def test_random_bytes_after_a_binary_marker_only_ever_raise_frame_error(
    marker: int, rest: bytes
) -> None:
    _decodes_canonically(bytes([marker]) + rest)


@given(hot_messages, st.data())
def test_mutated_binary_payloads_only_ever_raise_frame_error(
    message: Message, data: st.DataObject
) -> None:
    payload = bytearray(encode_message(message))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(payload)))
        action = data.draw(st.sampled_from(["flip", "insert", "delete", "set"]))
        if action == "insert":
            payload[position:position] = data.draw(st.binary(min_size=1, max_size=8))
        elif position == len(payload):
            continue
        elif action == "delete":
            del payload[position : position + data.draw(st.integers(1, 8))]
        elif action == "flip":
            payload[position] ^= 1 << data.draw(st.integers(0, 7))
        else:
            payload[position] = data.draw(st.sampled_from([0, 1, 2, 0x7F, 0x80, 0xFF]))
    assume(bytes(payload) != encode_message(message))
    _decodes_canonically(bytes(payload))
