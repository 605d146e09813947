"""spec.watch's exact responses, checked against real etcd on one scripted stream.

The same watch requests and writes go to a fresh etcd and to the spec (spec.mvcc over a
MemoryKeyspace, spec.watch for the watchers); for each watch id, the sequence of responses
etcd sends must equal the spec's (headers compared by revision). Covers: created first, catch-up
from history with prev_kv, automatic ids, the empty-range refusal, NOPUT and NODELETE filters,
one response per txn in change order, and the compaction cancel (whose header revision is 0).
Not compared: a negative start revision, which etcd 3.4 accepts and 3.5 refuses.
Needs `etcd` on PATH (marker `etcd`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from conformance.client import EtcdClient, WatchStream
from conformance.launcher import LaunchedCluster
from etcdpb.etcdserverpb import rpc_pb2
from etcdpb.mvccpb import kv_pb2
from spec import watch as watch_spec
from spec.mvcc import (
    Applied,
    CompactionRequest,
    DeleteRangeRequest,
    Event,
    EventType,
    KeyValue,
    KeyValueRequest,
    LeaseId,
    MemoryKeyspace,
    PutRequest,
    ResponseHeader,
    Revision,
    TxnRequest,
    apply_request,
)

pytestmark = pytest.mark.etcd


def spec_key_value(message: kv_pb2.KeyValue) -> KeyValue:
    return KeyValue(
        message.key,
        Revision(message.create_revision),
        Revision(message.mod_revision),
        message.version,
        message.value,
        LeaseId(message.lease),
    )


def spec_response(message: rpc_pb2.WatchResponse) -> watch_spec.WatchResponse:
    events = tuple(
        Event(
            EventType(event.type),
            spec_key_value(event.kv),
            spec_key_value(event.prev_kv) if event.HasField("prev_kv") else None,
        )
        for event in message.events
    )
    return watch_spec.WatchResponse(
        ResponseHeader(revision=Revision(message.header.revision)),
        message.watch_id,
        message.created,
        message.canceled,
        Revision(message.compact_revision),
        message.cancel_reason,
        message.fragment,
        events,
    )


class SpecStream:
    """The spec's side of one watch stream: a store, its watchers, and what each was sent."""

    def __init__(self) -> None:
        self.store = MemoryKeyspace()
        self.ids = watch_spec.WatchIds()
        self.watchers: dict[int, watch_spec.Watcher] = {}
        self.sent: dict[int, list[watch_spec.WatchResponse]] = defaultdict(list)

    def create(self, request: watch_spec.WatchCreateRequest) -> None:
        response, watcher, self.ids = watch_spec.create_watcher(self.store, request, self.ids)
        self.sent[response.watch_id].append(response)
        if watcher is not None:
            self.watchers[watcher.watch_id] = watcher
        self.sync()

    def sync(self) -> None:
        for watch_id, watcher in list(self.watchers.items()):
            while not watcher.synced:
                response, next_watcher = watch_spec.catch_up(self.store, watcher)
                if response is not None:
                    self.sent[watch_id].append(response)
                if next_watcher is None:
                    del self.watchers[watch_id]
                    break
                watcher = next_watcher
            else:
                self.watchers[watch_id] = watcher

    def write(self, request: KeyValueRequest) -> None:
        outcome = apply_request(self.store, request)
        assert isinstance(outcome, Applied), outcome
        self.store.apply(outcome.changes)
        if outcome.changes.revision is None:
            return
        for watch_id, watcher in list(self.watchers.items()):
            if watcher.synced:
                response, self.watchers[watch_id] = watch_spec.notify(
                    self.store, watcher, outcome.changes.revision, outcome.events
                )
                if response is not None:
                    self.sent[watch_id].append(response)


def wire_request(request: watch_spec.WatchCreateRequest) -> rpc_pb2.WatchCreateRequest:
    return rpc_pb2.WatchCreateRequest(
        key=request.key,
        range_end=request.range_end,
        start_revision=request.start_revision,
        filters=[int(kind) for kind in request.filters],  # type: ignore[misc]
        prev_kv=request.prev_kv,
        watch_id=request.watch_id,
    )


def wire_write(request: Any) -> Any:
    match request:
        case PutRequest():
            return ("put", rpc_pb2.PutRequest(key=request.key, value=request.value))
        case DeleteRangeRequest():
            return (
                "delete",
                rpc_pb2.DeleteRangeRequest(key=request.key, range_end=request.range_end),
            )
        case CompactionRequest():
            return ("compact", rpc_pb2.CompactionRequest(revision=request.revision, physical=True))
        case TxnRequest():
            operations = []
            for operation in request.success:
                kind, message = wire_write(operation)
                field = {"put": "request_put", "delete": "request_delete_range"}[kind]
                operations.append(rpc_pb2.RequestOp(**{field: message}))
            return ("txn", rpc_pb2.TxnRequest(success=operations))
    raise AssertionError(request)


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdClient]:
    with LaunchedCluster(size=1) as cluster, EtcdClient(cluster.endpoints[0]) as client:
        yield client


def drain(stream: WatchStream, seconds: float = 0.6) -> list[rpc_pb2.WatchResponse]:
    received = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = stream.receive(max(0.01, deadline - time.monotonic()))
        if response is not None:
            received.append(response)
    return received


def test_watch_responses_equal_etcds(etcd: EtcdClient) -> None:
    assert etcd.range(rpc_pb2.RangeRequest(key=b"\x00", count_only=True)).header.revision == 1
    spec_side = SpecStream()
    stream = etcd.open_watch_stream()
    etcd_sent: dict[int, list[watch_spec.WatchResponse]] = defaultdict(list)

    def write(request: KeyValueRequest) -> None:
        spec_side.write(request)
        kind, message = wire_write(request)
        getattr(
            etcd, {"put": "put", "delete": "delete_range", "compact": "compact", "txn": "txn"}[kind]
        )(message)

    def create(request: watch_spec.WatchCreateRequest) -> None:
        spec_side.create(request)
        stream.create(wire_request(request))
        for response in drain(stream):
            etcd_sent[response.watch_id].append(spec_response(response))

    try:
        write(PutRequest(key=b"a", value=b"1"))
        write(PutRequest(key=b"b", value=b"2"))
        write(PutRequest(key=b"a", value=b"3"))
        write(DeleteRangeRequest(key=b"b"))
        history = watch_spec.WatchCreateRequest(
            key=b"a", range_end=b"c", start_revision=Revision(2), prev_kv=True
        )
        create(history)
        create(
            watch_spec.WatchCreateRequest(
                key=b"a", range_end=b"\x00", filters=(watch_spec.FilterType.NOPUT,)
            )
        )
        create(
            watch_spec.WatchCreateRequest(
                key=b"b", filters=(watch_spec.FilterType.NODELETE,), prev_kv=True
            )
        )
        create(watch_spec.WatchCreateRequest(key=b"c", range_end=b"a"))
        for request in (
            TxnRequest(
                success=(
                    PutRequest(key=b"b", value=b"4"),
                    DeleteRangeRequest(key=b"a"),
                    PutRequest(key=b"c"),
                )
            ),
            PutRequest(key=b"b", value=b"5"),
            DeleteRangeRequest(key=b"a", range_end=b"z"),
            CompactionRequest(revision=Revision(7)),
        ):
            write(request)
        create(watch_spec.WatchCreateRequest(key=b"a", start_revision=Revision(3)))
        for response in drain(stream):
            etcd_sent[response.watch_id].append(spec_response(response))
    finally:
        stream.close()
    assert dict(etcd_sent) == dict(spec_side.sent)
    assert set(etcd_sent) == {-1, 0, 1, 2, 3}


def test_lease_revoke_events_equal_etcds(etcd: EtcdClient) -> None:
    """A revoke's deletes reach a watcher as one response, in key order, at one revision."""
    from spec import lease as lease_spec

    store = MemoryKeyspace()
    leases = lease_spec.Leases()
    lease = LeaseId(0x7E0)
    outcome, leases = lease_spec.grant(
        store, leases, lease_spec.LeaseGrantRequest(TTL=60, ID=lease), lease, 0.0
    )
    assert isinstance(outcome, Applied)
    store.apply(outcome.changes)
    etcd.lease_grant(rpc_pb2.LeaseGrantRequest(ID=lease, TTL=60))
    start = etcd.range(rpc_pb2.RangeRequest(key=b"\x00", count_only=True)).header.revision
    for name in (b"/revoke/c", b"/revoke/a", b"/revoke/b"):
        etcd.put(rpc_pb2.PutRequest(key=name, lease=lease))
        put_outcome = apply_request(store, PutRequest(key=name, lease=lease))
        assert isinstance(put_outcome, Applied)
        store.apply(put_outcome.changes)
    stream = etcd.open_watch_stream()
    try:
        stream.create(rpc_pb2.WatchCreateRequest(key=b"/revoke/", range_end=b"/revoke0"))
        assert drain(stream)[0].created
        etcd.lease_revoke(rpc_pb2.LeaseRevokeRequest(ID=lease))
        received = [spec_response(response) for response in drain(stream)]
    finally:
        stream.close()
    revoked, _ = lease_spec.revoke(store, leases, lease_spec.LeaseRevokeRequest(ID=lease))
    assert isinstance(revoked, Applied)
    assert len(received) == 1
    etcd_events = [
        (event.type, event.kv.key, event.kv.mod_revision - start) for event in received[0].events
    ]
    spec_events = [
        (event.type, event.kv.key, event.kv.mod_revision - 1) for event in revoked.events
    ]
    assert etcd_events == spec_events
    assert [key for _, key, _ in spec_events] == [b"/revoke/a", b"/revoke/b", b"/revoke/c"]
