"""The spec's less obvious KV and lease rules, checked against real etcd.

Each scenario is a list of requests applied in order to a fresh etcd (one member, launched by
the conformance launcher), to `spec.mvcc` over a `MemoryKeyspace`, and to `models.kv`; the
three answers must be equal, field by field and error for error. The scenarios are the rules
where a plausible reading of etcd's documentation differs from what etcd does (see the
docstrings of spec/mvcc/read.py and transaction.py). Needs `etcd` on PATH (marker `etcd`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from conformance.api_semantics.comparison import send
from conformance.api_semantics.wire import RevisionShift
from conformance.client import EtcdClient, RequestFailed
from conformance.launcher import LaunchedCluster
from etcdpb.etcdserverpb import rpc_pb2
from models.kv import KeyValueModel
from spec import lease as lease_spec
from spec.errors import EtcdError
from spec.mvcc import (
    Applied,
    CompactionRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    EmptyRequestOp,
    KeyValueRequest,
    LeaseId,
    MemoryKeyspace,
    PutRequest,
    RangeRequest,
    Rejected,
    Revision,
    SortOrder,
    SortTarget,
    TxnRequest,
    apply_request,
)

PREFIX = b"/spec-against-etcd/"


def key(name: bytes) -> bytes:
    return PREFIX + name


def put(name: bytes, **fields: Any) -> PutRequest:
    return PutRequest(key=key(name), **fields)


def puts(name: bytes, count: int) -> list[KeyValueRequest]:
    return [put(name) for _ in range(count)]


def between(low: bytes, high: bytes, **fields: Any) -> RangeRequest:
    return RangeRequest(key=key(low), range_end=key(high), **fields)


SCENARIOS: dict[str, list[KeyValueRequest]] = {
    "a sort target without an order sorts only the first limit + 1 keys": [
        *puts(b"a", 3),
        *puts(b"b", 2),
        *puts(b"c", 1),
        *puts(b"d", 4),
        between(b"a", b"z", limit=1, sort_target=SortTarget.VERSION),
        between(b"a", b"z", limit=1, sort_target=SortTarget.VERSION, sort_order=SortOrder.ASCEND),
        between(b"a", b"z", limit=2, sort_target=SortTarget.CREATE, sort_order=SortOrder.DESCEND),
        between(b"a", b"z", limit=2, sort_target=SortTarget.MOD, min_mod_revision=Revision(3)),
        between(b"a", b"z", limit=1, count_only=True),
        between(
            b"a", b"z", keys_only=True, sort_order=SortOrder.DESCEND, sort_target=SortTarget.VALUE
        ),
    ],
    "a delete with range_end \\0 does not conflict with a put in the same txn": [
        put(b"x"),
        TxnRequest(success=(DeleteRangeRequest(key=key(b"y"), range_end=b"\x00"), put(b"z"))),
    ],
    "duplicate keys: nested branches may share a key; order decides for siblings": [
        TxnRequest(success=(TxnRequest(success=(put(b"n"),), failure=(put(b"n"),)),)),
        TxnRequest(success=(TxnRequest(success=(put(b"n"),), failure=(put(b"n"),)), put(b"n"))),
        TxnRequest(success=(TxnRequest(success=(DeleteRangeRequest(key=key(b"n")),)), put(b"n"))),
        TxnRequest(
            success=(
                TxnRequest(success=(put(b"n"),)),
                TxnRequest(success=(DeleteRangeRequest(key=key(b"n")),)),
            )
        ),
        RangeRequest(key=key(b"n")),
    ],
    "128 operations, a nested txn's budget, an empty operation": [
        TxnRequest(success=tuple(put(b"l%d" % number) for number in range(128))),
        TxnRequest(success=tuple(put(b"m%d" % number) for number in range(129))),
        TxnRequest(
            success=(
                *(put(b"o%d" % n) for n in range(126)),
                TxnRequest(success=(put(b"p1"), put(b"p2"))),
            )
        ),
        TxnRequest(
            success=(*(put(b"q%d" % n) for n in range(126)), TxnRequest(success=(put(b"r1"),)))
        ),
        TxnRequest(failure=(EmptyRequestOp(),)),
    ],
    "a lone put checks its lease first, a txn its key first, against the store before it": [
        put(b"missing", ignore_value=True, lease=LeaseId(12345)),
        TxnRequest(success=(put(b"missing", ignore_value=True, lease=LeaseId(12345)),)),
        TxnRequest(success=(put(b"fresh", value=b"v"), put(b"fresh2", ignore_value=True))),
    ],
    "a txn decides every compare before it writes; reads see its earlier writes": [
        put(b"c1"),
        TxnRequest(
            success=(
                put(b"c2"),
                between(b"c", b"d"),
                TxnRequest(
                    compare=(Compare(target=CompareTarget.CREATE, key=key(b"c2")),),
                    success=(put(b"yes"),),
                    failure=(put(b"no"),),
                ),
            )
        ),
        TxnRequest(
            compare=(
                Compare(
                    result=CompareResult.NOT_EQUAL,
                    target=CompareTarget.VALUE,
                    key=key(b"none"),
                    value=b"x",
                ),
            ),
            success=(put(b"s"),),
            failure=(put(b"f"),),
        ),
        TxnRequest(
            compare=(
                Compare(
                    result=CompareResult.GREATER,
                    target=CompareTarget.VERSION,
                    key=key(b"c"),
                    range_end=key(b"d"),
                ),
            ),
            success=(DeleteRangeRequest(key=key(b"c"), range_end=key(b"d"), prev_kv=True),),
        ),
        DeleteRangeRequest(key=key(b"c"), range_end=key(b"d")),
        TxnRequest(
            success=(
                put(b"t1"),
                put(b"t2"),
                DeleteRangeRequest(key=key(b"yes"), prev_kv=True),
                between(b"t", b"u"),
            )
        ),
    ],
    "a delete resets the version; deleting nothing writes nothing": [
        put(b"v"),
        put(b"v"),
        DeleteRangeRequest(key=key(b"v")),
        put(b"v"),
        RangeRequest(key=key(b"v")),
        DeleteRangeRequest(key=key(b"v")),
        DeleteRangeRequest(key=key(b"v")),
    ],
}


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdClient]:
    with LaunchedCluster(size=1) as cluster, EtcdClient(cluster.endpoints[0]) as client:
        yield client


class ThreeWay:
    """The same requests on real etcd, on spec.mvcc and on the model."""

    def __init__(self, client: EtcdClient) -> None:
        self.client = client
        start = client.range(rpc_pb2.RangeRequest(key=b"\x00", count_only=True)).header.revision
        self.shift = RevisionShift(offset=start - 1)
        self.model = KeyValueModel()
        self.store = MemoryKeyspace()

    def agree(self, request: KeyValueRequest) -> Any:
        expected = self.model.apply(request)
        outcome = apply_request(self.store, request)
        if isinstance(outcome, Applied):
            self.store.apply(outcome.changes)
        spec_answer = outcome.error if isinstance(outcome, Rejected) else outcome.response
        actual = send(self.client, self.shift, request)
        assert spec_answer == expected, (request, spec_answer, expected)
        assert actual == expected, (request, actual, expected)
        return actual


@pytest.mark.etcd
def test_scenarios_agree_with_etcd(etcd: EtcdClient) -> None:
    """All scenarios in one store (one etcd keyspace), in order, then compaction at a delete."""
    three = ThreeWay(etcd)
    for requests in SCENARIOS.values():
        for request in requests:
            three.agree(request)
    current = three.model.current_revision
    at, before, after = Revision(current), Revision(current - 1), Revision(current + 1)
    assert three.agree(CompactionRequest(revision=at)) is not None
    assert three.agree(CompactionRequest(revision=at)) == EtcdError.COMPACTED
    assert (
        three.agree(CompactionRequest(revision=Revision(current + 5))) == EtcdError.FUTURE_REVISION
    )
    three.agree(RangeRequest(key=key(b"v"), revision=at))
    assert three.agree(RangeRequest(key=key(b"v"), revision=before)) == EtcdError.COMPACTED
    three.agree(RangeRequest(key=key(b"v"), revision=Revision(-1)))
    in_txn = TxnRequest(success=(RangeRequest(key=key(b"v"), revision=Revision(-1)),))
    assert three.agree(in_txn) == EtcdError.COMPACTED
    future = TxnRequest(success=(RangeRequest(key=key(b"v"), revision=after), put(b"w")))
    assert three.agree(future) == EtcdError.FUTURE_REVISION


@pytest.mark.etcd
def test_lease_answers_agree_with_etcd(etcd: EtcdClient) -> None:
    """Grant raises a short TTL, refuses a taken id and a huge TTL; unknown leases answer -1,
    0 or not found; a revoke deletes the attached keys in key order at one revision."""
    lease = 0x5E1
    granted = etcd.lease_grant(rpc_pb2.LeaseGrantRequest(ID=lease, TTL=1))
    spec_outcome, _ = lease_spec.grant(
        MemoryKeyspace(),
        lease_spec.Leases(),
        lease_spec.LeaseGrantRequest(TTL=1, ID=LeaseId(lease)),
        LeaseId(1),
        0.0,
    )
    assert isinstance(spec_outcome, Applied)
    assert (
        (granted.ID, granted.TTL)
        == (spec_outcome.response.ID, spec_outcome.response.TTL)
        == (lease, 2)
    )
    with pytest.raises(RequestFailed) as taken:
        etcd.lease_grant(rpc_pb2.LeaseGrantRequest(ID=lease, TTL=30))
    assert (taken.value.details, taken.value.code.value[0]) == (
        EtcdError.LEASE_EXISTS.message,
        EtcdError.LEASE_EXISTS.grpc_code.value,
    )
    with pytest.raises(RequestFailed) as huge:
        etcd.lease_grant(rpc_pb2.LeaseGrantRequest(ID=lease + 1, TTL=9_000_000_001))
    assert huge.value.details == EtcdError.LEASE_TTL_TOO_LARGE.message
    assert huge.value.code == grpc.StatusCode.OUT_OF_RANGE
    unknown = lease + 99
    assert etcd.lease_time_to_live(rpc_pb2.LeaseTimeToLiveRequest(ID=unknown)).TTL == -1
    assert etcd.lease_keep_alive_once(unknown).TTL == 0
    with pytest.raises(RequestFailed) as missing:
        etcd.lease_revoke(rpc_pb2.LeaseRevokeRequest(ID=unknown))
    assert (missing.value.details, missing.value.code) == (
        EtcdError.LEASE_NOT_FOUND.message,
        grpc.StatusCode.NOT_FOUND,
    )
    attached = etcd.lease_grant(rpc_pb2.LeaseGrantRequest(ID=lease + 2, TTL=60))
    for name in (b"leased/c", b"leased/a", b"leased/b"):
        etcd.put(rpc_pb2.PutRequest(key=key(name), lease=attached.ID))
    before = etcd.range(rpc_pb2.RangeRequest(key=b"\x00", count_only=True)).header.revision
    etcd.lease_revoke(rpc_pb2.LeaseRevokeRequest(ID=attached.ID))
    after = etcd.range(rpc_pb2.RangeRequest(key=key(b"leased/"), range_end=key(b"leased0")))
    assert after.header.revision == before + 1 and after.count == 0
