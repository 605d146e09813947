"""TCP between members: framed, checksummed frames, one outgoing connection per peer.

A frame is `length (4 bytes, big-endian) | CRC-32 of kind+payload (4 bytes) | kind (1 byte) |
payload`. Kinds: a Raft message (`codec`), or a proposal forwarded from a follower to the
leader (its payload is the entry data). A frame that is too long, fails its checksum or does
not decode closes that connection and is logged; the node keeps running.

Each peer has a bounded queue drained by one sender thread; when the queue is full the frame
is dropped (Raft retransmits). A broken connection is re-dialled with exponential backoff.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from typing import Final

from impl.transport.codec import FrameError, decode_message, encode_message
from spec.raft.messages import Message

KIND_RAFT: Final = 1
KIND_PROPOSAL: Final = 2
FRAME_BYTES_MAX: Final = 8 * 1024 * 1024
QUEUE_FRAMES_MAX: Final = 4096
BACKOFF_SECONDS_MIN: Final = 0.05
BACKOFF_SECONDS_MAX: Final = 2.0
_HEADER = struct.Struct(">IIB")

log = logging.getLogger("etcdref.transport")


def encode_frame(kind: int, payload: bytes) -> bytes:
    checksum = zlib.crc32(bytes([kind]) + payload)
    return _HEADER.pack(len(payload), checksum, kind) + payload


def _read_exactly(connection: socket.socket, count: int) -> bytes | None:
    chunks: list[bytes] = []
    remaining = count
    while remaining:
        chunk = connection.recv(min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(connection: socket.socket) -> tuple[int, bytes] | None:
    """The next frame (kind, payload), None at a clean end; raises FrameError for a bad frame."""
    header = _read_exactly(connection, _HEADER.size)
    if header is None:
        return None
    length, checksum, kind = _HEADER.unpack(header)
    if length > FRAME_BYTES_MAX:
        raise FrameError(f"frame of {length} bytes exceeds {FRAME_BYTES_MAX}")
    payload = _read_exactly(connection, length)
    if payload is None:
        raise FrameError("connection ended inside a frame")
    if zlib.crc32(bytes([kind]) + payload) != checksum:
        raise FrameError("frame checksum mismatch")
    if kind not in (KIND_RAFT, KIND_PROPOSAL):
        raise FrameError(f"unknown frame kind {kind}")
    return kind, payload


class _PeerSender:
    """One peer's bounded queue and the thread that writes it to a (re)dialled connection."""

    def __init__(self, peer_id: int, address: tuple[str, int], stopping: threading.Event) -> None:
        self.peer_id = peer_id
        self.address = address
        self.frames: queue.Queue[bytes] = queue.Queue(QUEUE_FRAMES_MAX)
        self.dropped = 0
        self._stopping = stopping
        self._thread = threading.Thread(target=self._run, name=f"peer-{peer_id:x}", daemon=True)
        self._thread.start()

    def offer(self, frame: bytes) -> None:
        try:
            self.frames.put_nowait(frame)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        backoff = BACKOFF_SECONDS_MIN
        while not self._stopping.is_set():
            try:
                connection = socket.create_connection(self.address, timeout=1.0)
            except OSError:
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_SECONDS_MAX)
                continue
            backoff = BACKOFF_SECONDS_MIN
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self._send_until_broken(connection)
            except OSError as error:
                log.debug("connection to peer %x lost: %s", self.peer_id, error)
            finally:
                connection.close()

    def _send_until_broken(self, connection: socket.socket) -> None:
        connection.settimeout(5.0)
        while not self._stopping.is_set():
            try:
                first = self.frames.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < 256:
                try:
                    batch.append(self.frames.get_nowait())
                except queue.Empty:
                    break
            connection.sendall(b"".join(batch))


class PeerTransport:
    """Listen for peers and send to them; `on_message` and `on_proposal` run on reader threads."""

    def __init__(
        self,
        listen_address: tuple[str, int],
        peers: dict[int, tuple[str, int]],
        on_message: Callable[[Message], None],
        on_proposal: Callable[[bytes], None],
    ) -> None:
        self._stopping = threading.Event()
        self._on_message = on_message
        self._on_proposal = on_proposal
        self._listener = socket.create_server(listen_address, reuse_port=False)
        self._listener.settimeout(0.5)
        self._senders = {
            peer_id: _PeerSender(peer_id, address, self._stopping)
            for peer_id, address in peers.items()
        }
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept, name="peer-listener", daemon=True)
        self._acceptor.start()

    def send(self, message: Message) -> None:
        sender = self._senders.get(message.recipient)
        if sender is not None:
            sender.offer(encode_frame(KIND_RAFT, encode_message(message)))

    def forward_proposal(self, peer_id: int, data: bytes) -> bool:
        sender = self._senders.get(peer_id)
        if sender is None:
            return False
        sender.offer(encode_frame(KIND_PROPOSAL, data))
        return True

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._connections.add(connection)
            threading.Thread(
                target=self._receive, args=(connection,), name="peer-reader", daemon=True
            ).start()

    def _receive(self, connection: socket.socket) -> None:
        try:
            while not self._stopping.is_set():
                frame = read_frame(connection)
                if frame is None:
                    return
                kind, payload = frame
                if kind == KIND_RAFT:
                    self._on_message(decode_message(payload))
                else:
                    self._on_proposal(payload)
        except FrameError as error:
            log.warning("closing peer connection after a malformed frame: %s", error)
        except OSError:
            pass
        finally:
            with self._lock:
                self._connections.discard(connection)
            connection.close()

    def close(self) -> None:
        self._stopping.set()
        # The accepting thread holds the listening socket open until its accept returns:
        # wake it and wait, so the port is free when this returns (a restart binds it again).
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._acceptor.join(timeout=2)
        self._listener.close()
        with self._lock:
            for connection in list(self._connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
        time.sleep(0)
