"""The peer transport: messages survive the encoding; malformed frames close only their connection."""

from __future__ import annotations

import json
import queue
import socket
import struct
import zlib
from pathlib import Path

import pytest

from impl.node.cli import free_ports
from impl.transport.codec import FrameError, decode_message, encode_message, encode_message_json
from impl.transport.peer import (
    KIND_CLUSTER_REQUEST,
    KIND_HELLO,
    KIND_RAFT,
    PeerTransport,
    encode_frame,
)
from spec.raft.log import Snapshot
from spec.raft.messages import (
    AppendRequest,
    AppendResponse,
    HeartbeatRequest,
    Message,
    ReadIndexResponse,
    SnapshotRequest,
    VoteRequest,
)
from spec.raft.types import Entry, EntryKind, LogIndex, Membership, NodeId, Term

EXAMPLES: list[Message] = [
    VoteRequest(NodeId(1), NodeId(2), Term(3), LogIndex(4), Term(2), pre_vote=True),
    AppendRequest(
        NodeId(1),
        NodeId(2),
        Term(3),
        LogIndex(4),
        Term(2),
        (
            Entry(Term(3), LogIndex(5), EntryKind.NORMAL, b"\x00\xffdata"),
            Entry(Term(3), LogIndex(6), EntryKind.CONFIGURATION, b"add-voter 4"),
        ),
        LogIndex(4),
    ),
    AppendResponse(NodeId(2), NodeId(1), Term(3), LogIndex(2), True, LogIndex(1), Term(1)),
    HeartbeatRequest(NodeId(1), NodeId(2), Term(3), LogIndex(4), b"read-7"),
    ReadIndexResponse(NodeId(1), NodeId(2), Term(3), b"ctx", LogIndex(9)),
    SnapshotRequest(
        NodeId(1),
        NodeId(2),
        Term(3),
        Snapshot(
            LogIndex(10),
            Term(2),
            Membership(frozenset({NodeId(1), NodeId(2)}), frozenset({NodeId(3)})),
            b"s",
        ),
    ),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda message: type(message).__name__)
def test_every_message_survives_encoding(message: Message) -> None:
    assert decode_message(encode_message(message)) == message


def _with_field(message: Message, field: str, value: object) -> bytes:
    raw = json.loads(encode_message_json(message))
    raw[field] = value
    return json.dumps(raw).encode()


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        b'{"@": "Popen"}',
        _with_field(EXAMPLES[0], "term", "three"),
        _with_field(EXAMPLES[0], "pre_vote", 1),
        _with_field(EXAMPLES[1], "entries", [{"@": "Membership", "voters": {"s": []}}]),
        _with_field(EXAMPLES[1], "entries", [{"@": "Entry", "term": 3, "index": 9}]),
        _with_field(EXAMPLES[3], "read_context", {"b": "!!!"}),
        b"[" * 5000 + b"]" * 5000,
    ],
    ids=["text", "list", "class", "str-term", "int-bool", "foreign-entry", "gap", "base64", "deep"],
)
def test_malformed_payloads_raise_frame_error_only(payload: bytes) -> None:
    with pytest.raises(FrameError):
        decode_message(payload)


def _closed_by_peer(connection: socket.socket) -> bool:
    connection.settimeout(5)
    try:
        return connection.recv(1) == b""
    except ConnectionResetError:
        return True


def test_a_malformed_frame_closes_its_connection_and_the_transport_keeps_working() -> None:
    (port,) = free_ports(1)
    received: queue.Queue[Message] = queue.Queue()
    transport = PeerTransport(("127.0.0.1", port), {}, received.put, lambda data: None)
    try:
        good = encode_frame(KIND_RAFT, encode_message(EXAMPLES[0]))
        bad_checksum = good[:4] + struct.pack(">I", zlib.crc32(b"x")) + good[8:]
        bad_payload = encode_frame(KIND_RAFT, b'{"@": "Nope"}')
        oversized = struct.pack(">IIB", 1 << 30, 0, KIND_RAFT)
        unknown_kind = encode_frame(9, b"")
        for frame in (bad_checksum, bad_payload, oversized, unknown_kind):
            with socket.create_connection(("127.0.0.1", port)) as connection:
                connection.sendall(frame)
                assert _closed_by_peer(connection)
        with socket.create_connection(("127.0.0.1", port)) as connection:
            connection.sendall(good + good)
            assert received.get(timeout=5) == EXAMPLES[0]
            assert received.get(timeout=5) == EXAMPLES[0]
        assert received.empty()
    finally:
        transport.close()


def test_messages_flow_between_two_transports() -> None:
    port_one, port_two = free_ports(2)
    received: queue.Queue[Message] = queue.Queue()
    one = PeerTransport(
        ("127.0.0.1", port_one), {2: ("127.0.0.1", port_two)}, lambda m: None, lambda d: None
    )
    two = PeerTransport(("127.0.0.1", port_two), {}, received.put, lambda d: None)
    try:
        to_two = [message for message in EXAMPLES if message.recipient == 2]
        for message in EXAMPLES:
            one.send(message)  # those for member 1 have no connection here: not sent
        assert [received.get(timeout=5) for _ in to_two] == to_two
        one.send_all(EXAMPLES)  # one queue item per peer, the same messages in the same order
        assert [received.get(timeout=5) for _ in to_two] == to_two
        assert received.empty()
    finally:
        one.close()
        two.close()


def test_forwarded_proposals_arrive_in_order() -> None:
    port_one, port_two = free_ports(2)
    proposals: queue.Queue[bytes] = queue.Queue()
    one = PeerTransport(
        ("127.0.0.1", port_one), {2: ("127.0.0.1", port_two)}, lambda m: None, lambda d: None
    )
    two = PeerTransport(("127.0.0.1", port_two), {}, lambda m: None, proposals.put)
    try:
        sent = [b"put a", b"put b", b"put c"]
        assert one.forward_proposals(2, sent)
        assert [proposals.get(timeout=5) for _ in sent] == sent
        assert not one.forward_proposals(3, sent), "no connection to member 3"
        assert proposals.empty()
    finally:
        one.close()
        two.close()


def test_a_member_of_another_cluster_is_turned_away() -> None:
    """Every dialled connection opens with the sender's cluster id (etcd X-Etcd-Cluster-ID)."""
    port_one, port_two, port_three = free_ports(3)
    received: queue.Queue[Message] = queue.Queue()
    ours = PeerTransport(
        ("127.0.0.1", port_two), {}, received.put, lambda d: None, cluster_id=lambda: 7
    )
    stranger = PeerTransport(
        ("127.0.0.1", port_one), {2: ("127.0.0.1", port_two)}, lambda m: None, lambda d: None,
        cluster_id=lambda: 8,
    )  # fmt: skip
    friend = PeerTransport(
        ("127.0.0.1", port_three), {2: ("127.0.0.1", port_two)}, lambda m: None, lambda d: None,
        cluster_id=lambda: 7,
    )  # fmt: skip
    message = EXAMPLES[1]
    try:
        stranger.send(message)
        with pytest.raises(queue.Empty):
            received.get(timeout=1.5)
        friend.send(message)
        assert received.get(timeout=5) == message
    finally:
        for transport in (ours, stranger, friend):
            transport.close()


def test_a_connection_that_does_not_say_its_cluster_is_turned_away() -> None:
    """Before its hello a connection may only ask for the cluster's members (a joining member
    does not know the cluster id yet); a Raft frame first closes it, undelivered."""
    (port,) = free_ports(1)
    received: queue.Queue[Message] = queue.Queue()
    ours = PeerTransport(
        ("127.0.0.1", port), {}, received.put, lambda d: None, cluster_id=lambda: 7
    )
    message = EXAMPLES[1]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(encode_frame(KIND_RAFT, encode_message(message)))
            assert connection.recv(1) == b"", "the connection was not closed"
        with pytest.raises(queue.Empty):
            received.get(timeout=0.5)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(encode_frame(KIND_CLUSTER_REQUEST, b""))
            connection.sendall(encode_frame(KIND_HELLO, struct.pack(">Q", 7)))
            connection.sendall(encode_frame(KIND_RAFT, encode_message(message)))
            assert received.get(timeout=5) == message
    finally:
        ours.close()


def test_a_snapshot_stream_arrives_verified(tmp_path: Path) -> None:
    port_one, port_two = free_ports(2)
    arrived: queue.Queue[tuple[Message, bytes]] = queue.Queue()
    incoming = tmp_path / "in"
    incoming.mkdir()
    receiver = PeerTransport(
        ("127.0.0.1", port_two), {}, lambda m: None, lambda d: None,
        snapshot_directory=incoming,
        on_snapshot=lambda message, path: arrived.put((message, path.read_bytes())),
    )  # fmt: skip
    sender = PeerTransport(
        ("127.0.0.1", port_one), {2: ("127.0.0.1", port_two)}, lambda m: None, lambda d: None
    )
    source = tmp_path / "keyspace"
    source.write_bytes(bytes(range(256)) * 10_000)  # 2.5 MiB: three chunks
    done: queue.Queue[bool] = queue.Queue()
    message = EXAMPLES[-1]
    assert isinstance(message, SnapshotRequest)
    try:
        sender.send_snapshot(message, source, done.put)
        assert done.get(timeout=10) is True
        assert arrived.get(timeout=5) == (message, source.read_bytes())
    finally:
        sender.close()
        receiver.close()
