"""Buffered frame reading: frames come out whole and in order however the bytes are split, in
few receives, with the same limit, checksum and end-of-stream behaviour as before buffering."""

from __future__ import annotations

import socket
import struct
import zlib
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from impl.transport.codec import FrameError
from impl.transport.peer import (
    KIND_HELLO,
    KIND_LINK_HEARTBEAT,
    KIND_RAFT,
    FrameReader,
    encode_frame,
    read_frame,
)


class ScriptedConnection:
    """A connection whose bytes arrive in the given pieces; counts receives and what they asked for."""

    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = [piece for piece in pieces if piece]
        self.receives = 0

    def recv(self, size: int) -> bytes:
        assert size > 0
        self.receives += 1
        if not self._pieces:
            return b""
        piece = self._pieces[0]
        self._pieces[0] = piece[size:]
        if not self._pieces[0]:
            self._pieces.pop(0)
        return piece[:size]

    def unread(self) -> bytes:
        return b"".join(self._pieces)


def _reader(pieces: list[bytes], **options: int) -> tuple[FrameReader, ScriptedConnection]:
    connection = ScriptedConnection(pieces)
    return FrameReader(cast(socket.socket, connection), **options), connection


def _read_all(reader: FrameReader) -> list[tuple[int, bytes]]:
    frames = []
    while (frame := reader.read_frame()) is not None:
        frames.append(frame)
    return frames


frame_lists = st.lists(
    st.tuples(
        st.sampled_from([KIND_RAFT, KIND_LINK_HEARTBEAT, KIND_HELLO]), st.binary(max_size=600)
    ),
    max_size=20,
)


@given(frame_lists, st.lists(st.integers(1, 700), max_size=40), st.sampled_from([0, 7, 64, 4096]))
def test_frames_survive_any_split_of_the_stream(
    frames: list[tuple[int, bytes]], cuts: list[int], buffer_bytes: int
) -> None:
    stream = b"".join(encode_frame(kind, payload) for kind, payload in frames)
    pieces, position = [], 0
    for cut in cuts:
        pieces.append(stream[position : position + cut])
        position += cut
    pieces.append(stream[position:])
    reader, _ = _reader(pieces, buffer_bytes=buffer_bytes)
    assert _read_all(reader) == frames


def test_many_small_frames_cost_one_receive_each_buffer() -> None:
    frames = [(KIND_RAFT, b"append response %d" % number) for number in range(1000)]
    stream = b"".join(encode_frame(kind, payload) for kind, payload in frames)
    reader, connection = _reader([stream])
    assert _read_all(reader) == frames
    assert connection.receives <= 3, "one receive for the lot, one that finds the end"


def test_a_frame_larger_than_the_buffer_arrives_whole() -> None:
    payload = bytes(range(256)) * 4000
    frames = [(KIND_RAFT, b"small"), (KIND_RAFT, payload), (KIND_RAFT, b"after")]
    stream = b"".join(encode_frame(kind, data) for kind, data in frames)
    reader, _ = _reader(
        [stream[i : i + 5000] for i in range(0, len(stream), 5000)], buffer_bytes=4096
    )
    assert _read_all(reader) == frames


def test_read_frame_takes_no_byte_past_its_frame() -> None:
    """A connection may carry other bytes after a one-off answer; they stay unread."""
    first, second = encode_frame(KIND_RAFT, b"answer"), encode_frame(KIND_RAFT, b"next")
    connection = ScriptedConnection([first + second])
    assert read_frame(cast(socket.socket, connection)) == (KIND_RAFT, b"answer")
    assert connection.unread() == second


def test_an_end_inside_the_header_is_a_clean_end_and_inside_a_payload_an_error() -> None:
    frame = encode_frame(KIND_RAFT, b"payload")
    for length in range(9):
        reader, _ = _reader([frame + frame[:length]])
        assert reader.read_frame() == (KIND_RAFT, b"payload")
        assert reader.read_frame() is None
    for length in range(9, len(frame)):
        reader, _ = _reader([frame + frame[:length]])
        assert reader.read_frame() == (KIND_RAFT, b"payload")
        with pytest.raises(FrameError, match="inside a frame"):
            reader.read_frame()


def test_the_limit_is_checked_before_the_payload_is_read() -> None:
    header = struct.pack(">IIB", 101, 0, KIND_RAFT)
    reader, connection = _reader([header, b"x" * 101], limit_bytes=100)
    with pytest.raises(FrameError, match="exceeds 100"):
        reader.read_frame()
    assert connection.unread() == b"x" * 101
    reader, _ = _reader([encode_frame(KIND_RAFT, b"x" * 100)], limit_bytes=100)
    assert reader.read_frame() == (KIND_RAFT, b"x" * 100)


@pytest.mark.parametrize(
    "frame",
    [
        struct.pack(">IIB", 2, zlib.crc32(bytes([KIND_RAFT]) + b"ab"), KIND_RAFT) + b"ac",
        struct.pack(">IIB", 2, zlib.crc32(b"ab"), KIND_RAFT) + b"ab",
        struct.pack(">IIB", 2, zlib.crc32(bytes([KIND_RAFT]) + b"ab"), KIND_HELLO) + b"ab",
        encode_frame(0, b"ab"),
        encode_frame(200, b"ab"),
    ],
    ids=["payload", "kind-not-covered", "kind-swapped", "kind-zero", "kind-unknown"],
)
def test_a_bad_checksum_or_kind_is_a_frame_error(frame: bytes) -> None:
    reader, _ = _reader([encode_frame(KIND_RAFT, b"good") + frame])
    assert reader.read_frame() == (KIND_RAFT, b"good")
    with pytest.raises(FrameError):
        reader.read_frame()


def test_the_checksum_covers_the_kind_and_then_the_payload() -> None:
    """The frame format is unchanged: CRC-32 of the kind byte followed by the payload."""
    assert encode_frame(KIND_RAFT, b"ab") == (
        struct.pack(">IIB", 2, zlib.crc32(bytes([KIND_RAFT]) + b"ab"), KIND_RAFT) + b"ab"
    )
