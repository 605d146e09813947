"""The client port's gRPC relay (impl/api/front.py) against an upstream the test controls:
bytes arrive intact and in order through a slow reader without the relay buffering without
bound, an end of stream is passed on as a half-close in both directions, a closed or reset
side ends the pair (after the bytes already read for the other side are written), and stopping
the front closes every relayed connection."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from impl.api.front import HTTP2_PREFACE, ClientFront

STREAM_BYTES = 64 * 1024 * 1024
STALLED_LIMIT_BYTES = 40 * 1024 * 1024  # socket buffers on both hops hold far less than this


class Relayed:
    """A ClientFront before a listener the test accepts from: `client` and `upstream` are the
    two ends of one relayed connection."""

    def __init__(self, front: ClientFront, listener: socket.socket) -> None:
        self.front = front
        port = front._servers[0].sockets[0].getsockname()[1]
        self.client = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.client.sendall(HTTP2_PREFACE)
        self.upstream, _ = listener.accept()
        self.upstream.settimeout(10)
        assert receive_exactly(self.upstream, len(HTTP2_PREFACE)) == HTTP2_PREFACE


@pytest.fixture
def relayed() -> Iterator[Relayed]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    async def no_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    front = ClientFront([("127.0.0.1", 0)], listener.getsockname(), no_http)
    front.start()
    pair = Relayed(front, listener)
    yield pair
    pair.client.close()
    pair.upstream.close()
    front.stop()
    listener.close()


def receive_exactly(connection: socket.socket, size: int) -> bytes:
    received = bytearray()
    while len(received) < size:
        chunk = connection.recv(size - len(received))
        assert chunk, f"end of stream after {len(received)} of {size} bytes"
        received += chunk
    return bytes(received)


def receive_all(connection: socket.socket) -> bytes:
    received = bytearray()
    while chunk := connection.recv(1 << 20):
        received += chunk
    return bytes(received)


def numbered_stream(size: int) -> bytes:
    """Bytes whose every 8-byte word is its own index, so a lost or reordered piece shows."""
    return b"".join(index.to_bytes(8, "big") for index in range(size // 8))


def eventually(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


@pytest.mark.parametrize("direction", ["client to upstream", "upstream to client"])
def test_a_slow_reader_gets_a_large_stream_intact_and_holds_back_the_writer(
    relayed: Relayed, direction: str
) -> None:
    writer, reader = (relayed.client, relayed.upstream)
    if direction == "upstream to client":
        writer, reader = reader, writer
    stream = numbered_stream(STREAM_BYTES)
    sent = 0

    def write() -> None:
        nonlocal sent
        view = memoryview(stream)
        while sent < len(stream):
            sent += writer.send(view[sent : sent + 65536])

    writer.settimeout(30)
    thread = threading.Thread(target=write)
    thread.start()
    time.sleep(1.0)  # the reader reads nothing: only buffers fill
    stalled_at = sent
    assert stalled_at < STALLED_LIMIT_BYTES, f"the relay took {stalled_at} bytes unread"
    received = bytearray()
    while len(received) < len(stream):
        received += reader.recv(65536)
        if len(received) < 4 * 1024 * 1024:
            time.sleep(0.0005)  # slowly at first
    thread.join()
    assert received == stream


@pytest.mark.parametrize("first_to_end", ["client", "upstream"])
def test_an_end_of_stream_is_passed_on_as_a_half_close_both_ways(
    relayed: Relayed, first_to_end: str
) -> None:
    first, second = relayed.client, relayed.upstream
    if first_to_end == "upstream":
        first, second = second, first
    first.sendall(b"request")
    first.shutdown(socket.SHUT_WR)
    assert receive_all(second) == b"request"  # the data, then the end of stream
    second.sendall(b"the answer after the half-close")
    assert receive_exactly(first, 31) == b"the answer after the half-close"
    second.shutdown(socket.SHUT_WR)
    assert receive_all(first) == b""
    eventually(lambda: not relayed.front.relay._sides)  # both ended: the pair is closed


@pytest.mark.parametrize("closing", ["client", "upstream"])
def test_a_closed_side_ends_the_pair_after_what_it_sent(relayed: Relayed, closing: str) -> None:
    gone, other = relayed.client, relayed.upstream
    if closing == "upstream":
        gone, other = other, gone
    gone.sendall(b"last words")
    gone.close()
    assert receive_all(other) == b"last words"
    with pytest.raises(OSError):
        for _ in range(100):  # the relay's socket towards `gone` is closed: writes fail
            other.sendall(b"x" * 65536)
            time.sleep(0.01)
    eventually(lambda: not relayed.front.relay._sides)


def test_a_reset_side_ends_the_pair(relayed: Relayed) -> None:
    relayed.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    relayed.client.close()  # with a zero linger: a reset, not an end of stream
    with contextlib.suppress(ConnectionResetError):
        assert receive_all(relayed.upstream) == b""
    eventually(lambda: not relayed.front.relay._sides)


def test_stopping_the_front_closes_relayed_connections(relayed: Relayed) -> None:
    relayed.client.sendall(b"ping")
    assert receive_exactly(relayed.upstream, 4) == b"ping"
    relayed.front.stop()
    for end in (relayed.client, relayed.upstream):
        with contextlib.suppress(ConnectionResetError):
            assert end.recv(10) == b""
    assert not relayed.front.relay._thread.is_alive()


def test_bytes_held_for_a_slow_reader_are_delivered_after_the_other_side_resets(
    relayed: Relayed,
) -> None:
    stream = numbered_stream(32 * 1024 * 1024)
    relayed.upstream.setblocking(False)
    sent = 0
    held, previous = b"", None
    while not held or held != previous:  # until the client's buffers take no more
        with contextlib.suppress(BlockingIOError):
            sent += relayed.upstream.send(stream[sent : sent + 1024 * 1024])
        time.sleep(0.2)
        held, previous = held_for(relayed), held
    relayed.upstream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    relayed.upstream.close()  # a reset
    time.sleep(0.2)
    relayed.client.sendall(b"x")  # the relay finds the upstream gone when it passes this on
    received = receive_all(relayed.client)
    assert received == stream[: len(received)]
    assert received.endswith(held), "bytes already read for the client were dropped"


def held_for(relayed: Relayed) -> bytes:
    """The bytes the relay has read for the client but not yet written to it."""
    for side in list(relayed.front.relay._sides.values()):
        if side.socket.getpeername() == relayed.client.getsockname():
            return bytes(side.outgoing)
    return b""


def test_a_pair_arriving_after_stop_is_closed_not_relayed(relayed: Relayed) -> None:
    relayed.front.stop()
    late_client, late_upstream = socket.socketpair()
    relayed.front.relay.add(late_client, late_upstream, b"")  # (the wake-up fd is closed)
    assert late_client.fileno() == -1 and late_upstream.fileno() == -1
