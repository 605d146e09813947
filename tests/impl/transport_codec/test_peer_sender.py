"""A peer's sender: a bounded queue that drops on overflow, and an idle sender wakes at once."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from impl.node.cli import free_ports
from impl.transport.peer import (
    KIND_LINK_HEARTBEAT,
    KIND_RAFT,
    QUEUE_FRAMES_MAX,
    FrameReader,
    _PeerSender,
    encode_frame,
)


@pytest.fixture
def stopping() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_a_full_queue_drops_the_frames_offered_to_it(stopping: threading.Event) -> None:
    (port,) = free_ports(1)  # nothing listens: every frame stays queued
    sender = _PeerSender(2, ("127.0.0.1", port), stopping, b"")
    for number in range(QUEUE_FRAMES_MAX + 3):
        sender.offer(b"frame %d" % number)
    assert sender.dropped == 3
    assert list(sender.frames) == [b"frame %d" % number for number in range(QUEUE_FRAMES_MAX)]


def test_an_idle_sender_wakes_for_each_frame_without_waiting_out_its_timeout(
    stopping: threading.Event,
) -> None:
    """The sender waits up to 0.2 s for a frame; 20 frames offered to it while it waits must
    arrive far sooner than 20 missed wake-ups would allow (4 s)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sender = _PeerSender(2, listener.getsockname(), stopping, b"")
        connection, _ = listener.accept()
        connection.settimeout(5)
        with connection:
            reader = FrameReader(connection)
            started = time.monotonic()
            for number in range(20):
                while not sender._idle:
                    time.sleep(0.001)
                sender.offer(encode_frame(KIND_RAFT, b"frame %d" % number))
                while (frame := reader.read_frame()) == (KIND_LINK_HEARTBEAT, b""):
                    pass
                assert frame == (KIND_RAFT, b"frame %d" % number)
            assert time.monotonic() - started < 2.0
