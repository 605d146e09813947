"""TCP between members: framed, checksummed frames, one outgoing connection per peer.

A frame is `length (4 bytes, big-endian) | CRC-32 of kind+payload (4 bytes) | kind (1 byte) |
payload`. Kinds: a Raft message (`codec`), a proposal forwarded from a follower to the leader
(its payload is the entry data), a link heartbeat (empty; an idle connection writes one every
second, so a peer that went away is noticed, as etcd's rafthttp does), the frames of a
keyspace snapshot stream, a joining member's request for the cluster's members, and the hello
that opens every connection a member dials: the sender's cluster id (8 bytes), so a member of
another cluster that reaches this port is turned away (etcd's X-Etcd-Cluster-ID check); before
it, a connection may only ask for the cluster's members (a joining member's question). A frame
that is too long, fails its checksum or does not decode closes that connection and is logged;
the node keeps running.

Each peer has a bounded queue drained by one sender thread; when the queue is full the frame
is dropped (Raft retransmits). A broken connection is re-dialled with exponential backoff. The
transport remembers since when each peer's connection has been up (etcd `ActiveSince`), which
the membership checks read.

A snapshot travels on a connection of its own (etcd streams it over a separate HTTP request):
`SNAPSHOT_BEGIN` (the 8-byte size, then the encoded Raft `SnapshotRequest`), the keyspace file
in `SNAPSHOT_CHUNK` frames of at most 1 MiB, and `SNAPSHOT_END` with the SHA-256 of the file.
The receiver writes the chunks to a file in its snapshot directory, checks size and digest,
syncs it, answers `SNAPSHOT_ACK`, and only then hands the message and the file to the node.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from impl.transport.codec import FrameError, decode_message, encode_message
from spec.raft.messages import Message, SnapshotRequest

KIND_RAFT: Final = 1
KIND_PROPOSAL: Final = 2
KIND_LINK_HEARTBEAT: Final = 3
KIND_SNAPSHOT_BEGIN: Final = 4
KIND_SNAPSHOT_CHUNK: Final = 5
KIND_SNAPSHOT_END: Final = 6
KIND_SNAPSHOT_ACK: Final = 7
KIND_CLUSTER_REQUEST: Final = 8
KIND_CLUSTER_RESPONSE: Final = 9
KIND_HELLO: Final = 10
_KINDS: Final = frozenset(range(KIND_RAFT, KIND_HELLO + 1))
FRAME_BYTES_MAX: Final = 8 * 1024 * 1024  # default; a node raises it to fit its largest append
SNAPSHOT_CHUNK_BYTES: Final = 1024 * 1024
SNAPSHOT_BYTES_MAX: Final = 64 * 1024 * 1024 * 1024
SNAPSHOT_ACK_TIMEOUT_SECONDS: Final = 60.0
LINK_HEARTBEAT_SECONDS: Final = 1.0
QUEUE_FRAMES_MAX: Final = 4096
RECEIVE_BUFFER_BYTES: Final = 256 * 1024
BACKOFF_SECONDS_MIN: Final = 0.05
BACKOFF_SECONDS_MAX: Final = 2.0
_HEADER = struct.Struct(">IIB")

log = logging.getLogger("etcdref.transport")


# CRC-32 of each kind byte: a frame's checksum continues from it over the payload, so neither
# side copies the payload just to put the kind in front of it.
_KIND_CRCS: Final = tuple(zlib.crc32(bytes([kind])) for kind in range(256))


def encode_frame(kind: int, payload: bytes) -> bytes:
    return _HEADER.pack(len(payload), zlib.crc32(payload, _KIND_CRCS[kind]), kind) + payload


def frame_bytes_max_for(request_bytes_max: int, entries_per_message_max: int) -> int:
    """A frame limit that holds the largest append a leader may send: that many entries, each
    up to the request limit, base64-encoded (4/3) with room for the tagged JSON around them (the
    codec's fallback; its binary form of an append is smaller).
    A lower limit would refuse a legal append over and over, and the follower would never catch up."""
    entry_bytes_max = (request_bytes_max + 2) // 3 * 4 + 1024
    return max(FRAME_BYTES_MAX, entries_per_message_max * entry_bytes_max + 1024 * 1024)


class FrameReader:
    """Frames from one connection, read in chunks of up to `buffer_bytes`.

    A loaded peer sends many small frames back to back; one recv for all of them costs far less
    than two per frame. Bytes read past a frame wait here for the next call, so one reader must
    read every frame of its connection. `buffer_bytes=0` reads exactly each frame and no more,
    for a connection that is handed on after one frame.
    """

    def __init__(
        self,
        connection: socket.socket,
        limit_bytes: int = FRAME_BYTES_MAX,
        buffer_bytes: int = RECEIVE_BUFFER_BYTES,
    ) -> None:
        self._connection = connection
        self._limit_bytes = limit_bytes
        self._buffer_bytes = buffer_bytes
        self._data = b""
        self._offset = 0  # where the unread bytes of _data start

    def read_frame(self) -> tuple[int, bytes] | None:
        """The next frame (kind, payload), None at a clean end; raises FrameError for a bad frame."""
        if len(self._data) - self._offset < _HEADER.size and not self._fill(_HEADER.size):
            return None
        length, checksum, kind = _HEADER.unpack_from(self._data, self._offset)
        if length > self._limit_bytes:
            raise FrameError(f"frame of {length} bytes exceeds {self._limit_bytes}")
        start = self._offset + _HEADER.size
        if len(self._data) - start < length:
            if not self._fill(_HEADER.size + length):
                raise FrameError("connection ended inside a frame")
            start = _HEADER.size
        payload = self._data[start : start + length]
        self._offset = start + length
        if zlib.crc32(payload, _KIND_CRCS[kind]) != checksum:
            raise FrameError("frame checksum mismatch")
        if kind not in _KINDS:
            raise FrameError(f"unknown frame kind {kind}")
        return kind, payload

    def _fill(self, count: int) -> bool:
        """Receive until at least `count` unread bytes are held; False if the peer ended first."""
        chunks = [self._data[self._offset :]]
        held = len(chunks[0])
        while held < count:
            chunk = self._connection.recv(min(max(self._buffer_bytes, count - held), 1 << 20))
            if not chunk:
                return False
            chunks.append(chunk)
            held += len(chunk)
        self._data = b"".join(chunks)
        self._offset = 0
        return True


def read_frame(
    connection: socket.socket, limit_bytes: int = FRAME_BYTES_MAX
) -> tuple[int, bytes] | None:
    """The next frame on `connection`, reading no byte past it (see `FrameReader`)."""
    return FrameReader(connection, limit_bytes, buffer_bytes=0).read_frame()


def fetch_cluster_info(address: tuple[str, int], timeout_seconds: float = 2.0) -> bytes | None:
    """Ask the member listening on `address` for its cluster information (the payload the node
    there answers with); None when it cannot answer."""
    try:
        with socket.create_connection(address, timeout=timeout_seconds) as connection:
            connection.settimeout(timeout_seconds)
            connection.sendall(encode_frame(KIND_CLUSTER_REQUEST, b""))
            frame = read_frame(connection)
    except (OSError, FrameError):
        return None
    if frame is None or frame[0] != KIND_CLUSTER_RESPONSE or not frame[1]:
        return None
    return frame[1]


class _PeerSender:
    """One peer's bounded queue and the thread that writes it to a (re)dialled connection."""

    def __init__(
        self, peer_id: int, address: tuple[str, int], stopping: threading.Event, hello: bytes
    ) -> None:
        self.peer_id = peer_id
        self.address = address
        self._hello = hello
        # A deque's append and popleft are atomic; the sender is woken only when it waits idle,
        # so a busy sender costs the raft loop no notify (queue.Queue notifies on every put).
        # The wake-up is a plain lock used as a one-token semaphore: held means no token, and a
        # C-level acquire with a timeout costs far less than a Condition's wait.
        self.frames: deque[bytes] = deque()
        self._idle = False
        self._wake = threading.Lock()
        self._wake.acquire()
        self.dropped = 0
        self.connected_since: float | None = None  # time.monotonic() when the link came up
        self._stopping = stopping
        self._removed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"peer-{peer_id:x}", daemon=True)
        self._thread.start()

    def remove(self) -> None:
        self._removed.set()

    def _done(self) -> bool:
        return self._stopping.is_set() or self._removed.is_set()

    def offer(self, frame: bytes) -> None:
        if len(self.frames) >= QUEUE_FRAMES_MAX:
            self.dropped += 1
            return
        self.frames.append(frame)
        if self._idle:
            with contextlib.suppress(RuntimeError):  # already released: a wake-up is pending
                self._wake.release()

    def _next_frames(self, timeout_seconds: float) -> list[bytes]:
        """Up to 256 queued frames, waiting up to `timeout_seconds` for one; [] if none came.

        The sender says it is idle before it looks at the queue a last time, so a frame offered
        after that look finds `_idle` set and wakes it: no frame waits out the timeout."""
        if not self.frames:
            self._idle = True
            if not self.frames:
                self._wake.acquire(timeout=timeout_seconds)  # a stale token only wakes it early
            self._idle = False
        batch: list[bytes] = []
        while self.frames and len(batch) < 256:
            batch.append(self.frames.popleft())
        return batch

    def _run(self) -> None:
        backoff = BACKOFF_SECONDS_MIN
        while not self._done():
            try:
                connection = socket.create_connection(self.address, timeout=1.0)
            except OSError:
                self._removed.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_SECONDS_MAX)
                continue
            backoff = BACKOFF_SECONDS_MIN
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connected_since = time.monotonic()
            try:
                if self._hello:
                    connection.sendall(self._hello)
                self._send_until_broken(connection)
            except OSError as error:
                log.debug("connection to peer %x lost: %s", self.peer_id, error)
            finally:
                self.connected_since = None
                connection.close()

    def _send_until_broken(self, connection: socket.socket) -> None:
        connection.settimeout(5.0)
        idle_since = time.monotonic()
        while not self._done():
            batch = self._next_frames(0.2)
            if not batch:
                if time.monotonic() - idle_since >= LINK_HEARTBEAT_SECONDS:
                    connection.sendall(encode_frame(KIND_LINK_HEARTBEAT, b""))
                    idle_since = time.monotonic()
                continue
            idle_since = time.monotonic()
            connection.sendall(b"".join(batch))


class PeerTransport:
    """Listen for peers and send to them; the callbacks run on reader threads.

    `on_snapshot(message, path)` receives a snapshot message with the verified keyspace file it
    came with (the node takes the file over); `cluster_info()` answers a joining member (None:
    not ready to answer). Peers can be added, re-addressed and removed while running.
    """

    def __init__(
        self,
        listen_address: tuple[str, int],
        peers: dict[int, tuple[str, int]],
        on_message: Callable[[Message], None],
        on_proposal: Callable[[bytes], None],
        *,
        snapshot_directory: Path | None = None,
        on_snapshot: Callable[[SnapshotRequest, Path], None] | None = None,
        cluster_info: Callable[[], bytes | None] | None = None,
        cluster_id: Callable[[], int | None] = lambda: None,
        frame_bytes_max: int = FRAME_BYTES_MAX,
    ) -> None:
        self._stopping = threading.Event()
        self._frame_bytes_max = frame_bytes_max
        self._on_message = on_message
        self._on_proposal = on_proposal
        self._snapshot_directory = snapshot_directory
        self._on_snapshot = on_snapshot
        self._cluster_info = cluster_info
        self._cluster_id = cluster_id  # None: not known yet, every cluster's hello is taken
        self._listener = socket.create_server(listen_address, reuse_port=False)
        self._listener.settimeout(0.5)
        self._senders = {
            peer_id: _PeerSender(peer_id, address, self._stopping, self._hello())
            for peer_id, address in peers.items()
        }
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept, name="peer-listener", daemon=True)
        self._acceptor.start()

    def set_peer(self, peer_id: int, address: tuple[str, int]) -> None:
        """Send to `peer_id` at `address` from now on (a new member, or new peer URLs)."""
        with self._lock:
            sender = self._senders.get(peer_id)
            if sender is not None and sender.address == address:
                return
            if sender is not None:
                sender.remove()
            self._senders[peer_id] = _PeerSender(peer_id, address, self._stopping, self._hello())

    def remove_peer(self, peer_id: int) -> None:
        with self._lock:
            sender = self._senders.pop(peer_id, None)
        if sender is not None:
            sender.remove()

    def peers(self) -> dict[int, tuple[str, int]]:
        with self._lock:
            return {peer_id: sender.address for peer_id, sender in self._senders.items()}

    def connected_seconds(self) -> dict[int, float]:
        """For each peer, how long its connection has been up (0 when it is down)."""
        now = time.monotonic()
        with self._lock:
            senders = list(self._senders.values())
        result = {}
        for sender in senders:
            since = sender.connected_since
            result[sender.peer_id] = 0.0 if since is None else now - since
        return result

    def send_snapshot(
        self, message: SnapshotRequest, path: Path, on_done: Callable[[bool], None]
    ) -> None:
        """Stream `message` with the keyspace file at `path` to its recipient, on a thread of its
        own; `on_done(delivered)` runs when the receiver acknowledged it or the stream failed."""
        with self._lock:
            sender = self._senders.get(message.recipient)
        if sender is None:
            on_done(False)
            return
        threading.Thread(
            target=self._stream_snapshot,
            args=(sender.address, message, path, on_done),
            name=f"snapshot-to-{message.recipient:x}",
            daemon=True,
        ).start()

    def _stream_snapshot(
        self,
        address: tuple[str, int],
        message: SnapshotRequest,
        path: Path,
        on_done: Callable[[bool], None],
    ) -> None:
        delivered = False
        try:
            size = path.stat().st_size
            digest = hashlib.sha256()
            with socket.create_connection(address, timeout=5.0) as connection:
                connection.settimeout(SNAPSHOT_ACK_TIMEOUT_SECONDS)
                connection.sendall(self._hello())
                begin = struct.pack(">Q", size) + encode_message(message)
                connection.sendall(encode_frame(KIND_SNAPSHOT_BEGIN, begin))
                with open(path, "rb") as file:
                    while chunk := file.read(SNAPSHOT_CHUNK_BYTES):
                        if self._stopping.is_set():
                            return
                        digest.update(chunk)
                        connection.sendall(encode_frame(KIND_SNAPSHOT_CHUNK, chunk))
                connection.sendall(encode_frame(KIND_SNAPSHOT_END, digest.digest()))
                answer = read_frame(connection)
                delivered = answer is not None and answer == (KIND_SNAPSHOT_ACK, b"ok")
            log.info(
                "sent a snapshot at index %d (%d bytes) to %x: %s",
                message.snapshot.index, size, message.recipient,
                "acknowledged" if delivered else "not acknowledged",
            )  # fmt: skip
        except (OSError, FrameError) as error:
            log.warning("sending a snapshot to %x failed: %s", message.recipient, error)
        finally:
            on_done(delivered)

    def send(self, message: Message) -> None:
        self.send_all([message])

    def send_all(self, messages: Sequence[Message]) -> None:
        """Send each message to its recipient, in order: one queue item per peer for the lot (a
        queue hand-off per message cost the raft loop more than encoding it)."""
        frames: dict[int, list[bytes]] = {}
        for message in messages:
            frames.setdefault(message.recipient, []).append(
                encode_frame(KIND_RAFT, encode_message(message))
            )
        for recipient, encoded in frames.items():
            sender = self._senders.get(recipient)
            if sender is not None:
                sender.offer(b"".join(encoded))

    def forward_proposals(self, peer_id: int, proposals: Sequence[bytes]) -> bool:
        """Send proposals to the leader `peer_id`, in order, as one queue item (see `send_all`)."""
        sender = self._senders.get(peer_id)
        if sender is None:
            return False
        sender.offer(b"".join(encode_frame(KIND_PROPOSAL, data) for data in proposals))
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
        reader = FrameReader(connection, self._frame_bytes_max)
        # Until the dialler has said which cluster it belongs to, only a joining member's
        # question is answered (it cannot know the id yet); a member that does not know its
        # own cluster id yet takes everything.
        greeted = self._cluster_id() is None
        try:
            while not self._stopping.is_set():
                frame = reader.read_frame()
                if frame is None:
                    return
                kind, payload = frame
                if not greeted and kind not in (KIND_HELLO, KIND_CLUSTER_REQUEST):
                    raise FrameError("a peer connection must open with its cluster id (hello)")
                if kind == KIND_RAFT:
                    self._on_message(decode_message(payload))
                elif kind == KIND_PROPOSAL:
                    self._on_proposal(payload)
                elif kind == KIND_CLUSTER_REQUEST:
                    answer = self._cluster_info() if self._cluster_info is not None else None
                    connection.sendall(encode_frame(KIND_CLUSTER_RESPONSE, answer or b""))
                elif kind == KIND_SNAPSHOT_BEGIN:
                    self._receive_snapshot(connection, reader, payload)
                    return
                elif kind == KIND_HELLO:
                    self._check_hello(payload)
                    greeted = True
                elif kind != KIND_LINK_HEARTBEAT:
                    raise FrameError(f"unexpected frame kind {kind} on a peer connection")
        except FrameError as error:
            log.warning("closing peer connection after a malformed frame: %s", error)
        except OSError:
            pass
        finally:
            with self._lock:
                self._connections.discard(connection)
            connection.close()

    def _hello(self) -> bytes:
        cluster_id = self._cluster_id()
        return (
            b"" if cluster_id is None else encode_frame(KIND_HELLO, struct.pack(">Q", cluster_id))
        )

    def _check_hello(self, payload: bytes) -> None:
        ours = self._cluster_id()
        if len(payload) != 8:
            raise FrameError("a hello carries an 8-byte cluster id")
        (theirs,) = struct.unpack(">Q", payload)
        if ours is not None and theirs != ours:
            raise FrameError(f"cluster ID mismatch: a member of cluster {theirs:x}, not {ours:x}")

    def _receive_snapshot(
        self, connection: socket.socket, reader: FrameReader, begin: bytes
    ) -> None:
        """Receive one snapshot stream into a file, verify it, acknowledge it, hand it over.

        Its chunks come through `reader`, which may already hold some of them."""
        if self._snapshot_directory is None or self._on_snapshot is None or len(begin) < 8:
            raise FrameError("this member does not take snapshots")
        (size,) = struct.unpack(">Q", begin[:8])
        message = decode_message(begin[8:])
        if not isinstance(message, SnapshotRequest) or size > SNAPSHOT_BYTES_MAX:
            raise FrameError("a snapshot stream must begin with a snapshot message of sane size")
        part = self._snapshot_directory / f"incoming-{os.getpid()}-{threading.get_ident()}.part"
        digest = hashlib.sha256()
        received = 0
        try:
            with open(part, "wb") as file:
                while True:
                    frame = reader.read_frame()
                    if frame is None:
                        raise FrameError("snapshot stream ended early")
                    kind, payload = frame
                    if kind == KIND_SNAPSHOT_CHUNK:
                        received += len(payload)
                        if received > size:
                            raise FrameError("snapshot stream longer than announced")
                        digest.update(payload)
                        file.write(payload)
                    elif kind == KIND_SNAPSHOT_END:
                        if received != size or payload != digest.digest():
                            raise FrameError("snapshot size or SHA-256 mismatch")
                        break
                    else:
                        raise FrameError(f"unexpected frame kind {kind} in a snapshot stream")
                file.flush()
                os.fsync(file.fileno())
            connection.sendall(encode_frame(KIND_SNAPSHOT_ACK, b"ok"))
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        log.info(
            "received a snapshot at index %d (%d bytes) from %x",
            message.snapshot.index, size, message.sender,
        )  # fmt: skip
        self._on_snapshot(message, part)

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
