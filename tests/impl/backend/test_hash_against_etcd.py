"""HashKV over the LMDB keyspace equals real etcd's, byte for byte, at every revision, with a
compaction in the history (both at a put and at a delete). Needs `etcd` (marker `etcd`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.api_semantics.comparison import send
from conformance.api_semantics.wire import RevisionShift
from conformance.client import EtcdClient, RequestFailed
from conformance.launcher import LaunchedCluster
from etcdpb.etcdserverpb import rpc_pb2
from impl.backend.hash import KeyspaceHash, hash_keyspace
from impl.backend.keyspace import LmdbKeyspace
from spec.errors import EtcdError
from spec.mvcc import (
    Applied,
    CompactionRequest,
    DeleteRangeRequest,
    KeyValueRequest,
    PutRequest,
    Revision,
    TxnRequest,
    apply_request,
)

pytestmark = pytest.mark.etcd


def history(compaction_revision: int) -> list[KeyValueRequest]:
    return [
        PutRequest(key=b"a", value=b"1"),
        PutRequest(key=b"b", value=b""),
        PutRequest(key=b"a", value=b"\x00\xff"),
        DeleteRangeRequest(key=b"b"),
        TxnRequest(
            success=(
                PutRequest(key=b"c", value=b"x"),
                PutRequest(key=b"d"),
                DeleteRangeRequest(key=b"a"),
            )
        ),
        PutRequest(key=b"c", value=b"y"),
        CompactionRequest(revision=Revision(compaction_revision)),
        PutRequest(key=b"e", value=b"z" * 300),
    ]


@pytest.mark.parametrize("compaction_revision", [4, 5], ids=["at a put", "at a delete"])
def test_hash_equals_etcds(compaction_revision: int, tmp_path: Path) -> None:
    store = LmdbKeyspace(tmp_path / "db", sync=False)
    with LaunchedCluster(size=1) as cluster, EtcdClient(cluster.endpoints[0]) as client:
        assert client.range(rpc_pb2.RangeRequest(key=b"\x00", count_only=True)).header.revision == 1
        for request in history(compaction_revision):
            outcome = apply_request(store, request)
            assert isinstance(outcome, Applied), outcome
            store.apply(outcome.changes)
            send(client, RevisionShift(offset=0), request)
        for revision in range(store.current_revision() + 2):
            ours = hash_keyspace(store, Revision(revision))
            try:
                theirs = client.hash_kv(revision)
            except RequestFailed as failure:
                assert isinstance(ours, EtcdError) and failure.details == ours.message
                continue
            assert isinstance(ours, KeyspaceHash), (revision, ours)
            assert (ours.hash, ours.compact_revision) == (theirs.hash, theirs.compact_revision)
    store.close()
