"""The requests Kubernetes' etcd3 store makes, checked as it relies on them.

kube-apiserver uses etcd through a handful of shapes (etcd's `client/v3/kubernetes`
interface: Get, List with revision, limit and continue, Count, OptimisticPut,
OptimisticDelete). Each function returns the violations it found:

* `check_optimistic_writes`: create is `Txn(If mod_revision(key) == 0 Then Put Else Get)`,
  update and delete are guarded by the mod revision the writer last read; a guard that no
  longer holds fails the txn and returns the current object in the Get (KV-9);
* `check_paginated_list`: listing a prefix page by page at one pinned revision, continuing
  from the last key + "\\0", gives exactly the one-shot list at that revision, even while the
  keys change between pages; `more` is set on every page but the last and the first page's
  `count` is the whole range (KV-7, KV-8);
* `check_count_and_get_at_revision`: `count_only` counts the range, and a Get at an older
  revision returns the object as it was then.
"""

from __future__ import annotations

from conformance.client import EtcdClient
from etcdpb.etcdserverpb import rpc_pb2


def guarded_txn(key: bytes, mod_revision: int, operation: rpc_pb2.RequestOp) -> rpc_pb2.TxnRequest:
    return rpc_pb2.TxnRequest(
        compare=[
            rpc_pb2.Compare(
                result=rpc_pb2.Compare.EQUAL,
                target=rpc_pb2.Compare.MOD,
                key=key,
                mod_revision=mod_revision,
            )
        ],
        success=[operation],
        failure=[rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=key))],
    )


def put_op(key: bytes, value: bytes) -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=value))


def current_in_failure(response: rpc_pb2.TxnResponse) -> rpc_pb2.RangeResponse | None:
    if response.succeeded or not response.responses:
        return None
    return response.responses[0].response_range


def check_optimistic_writes(client: EtcdClient, prefix: bytes) -> list[str]:
    violations = []
    key = prefix + b"kubernetes/pods/a"
    created = client.txn(guarded_txn(key, 0, put_op(key, b"v1")))
    if not created.succeeded:
        violations.append("create of a new object failed")
    again = client.txn(guarded_txn(key, 0, put_op(key, b"v1-again")))
    current = current_in_failure(again)
    if again.succeeded or current is None or [kv.value for kv in current.kvs] != [b"v1"]:
        violations.append("second create of the same object did not fail with the current object")
    revision = created.header.revision
    updated = client.txn(guarded_txn(key, revision, put_op(key, b"v2")))
    if not updated.succeeded or updated.header.revision <= revision:
        violations.append("update guarded by the current mod revision failed")
    stale = client.txn(guarded_txn(key, revision, put_op(key, b"v3")))
    current = current_in_failure(stale)
    if (
        stale.succeeded
        or current is None
        or [kv.mod_revision for kv in current.kvs] != [updated.header.revision]
    ):
        violations.append(
            "update guarded by a stale mod revision did not fail with the current object"
        )
    delete = rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(key=key))
    deleted = client.txn(guarded_txn(key, updated.header.revision, delete))
    if not deleted.succeeded or deleted.responses[0].response_delete_range.deleted != 1:
        violations.append("delete guarded by the current mod revision did not delete")
    if client.range(rpc_pb2.RangeRequest(key=key)).kvs:
        violations.append("object still present after its guarded delete")
    return violations


def check_paginated_list(client: EtcdClient, prefix: bytes, page_size: int = 3) -> list[str]:
    violations = []
    folder = prefix + b"kubernetes/list/"
    end = folder[:-1] + bytes([folder[-1] + 1])
    for index in range(8):
        client.put(rpc_pb2.PutRequest(key=folder + f"item{index}".encode(), value=b"%d" % index))
    pinned = client.range(rpc_pb2.RangeRequest(key=folder, range_end=end))
    revision = pinned.header.revision
    pages: list[rpc_pb2.RangeResponse] = []
    start = folder
    for _ in range(20):  # bounded: 8 keys in pages of 3
        page = client.range(
            rpc_pb2.RangeRequest(key=start, range_end=end, limit=page_size, revision=revision)
        )
        pages.append(page)
        # Kubernetes keeps writing between pages; the pinned revision must hide it.
        client.put(rpc_pb2.PutRequest(key=folder + b"item0", value=b"changed"))
        client.delete_range(rpc_pb2.DeleteRangeRequest(key=folder + b"item7"))
        if not page.more:
            break
        start = page.kvs[-1].key + b"\x00"
    listed = [(kv.key, kv.value, kv.mod_revision) for page in pages for kv in page.kvs]
    expected = [(kv.key, kv.value, kv.mod_revision) for kv in pinned.kvs]
    if listed != expected:
        violations.append(
            f"pages at revision {revision} list {len(listed)} keys, one-shot list {len(expected)}"
        )
    if [page.more for page in pages] != [True] * (len(pages) - 1) + [False]:
        violations.append(f"more flags {[page.more for page in pages]}")
    if pages and pages[0].count != len(expected):
        violations.append(f"first page count {pages[0].count}, expected {len(expected)}")
    return violations


def check_count_and_get_at_revision(client: EtcdClient, prefix: bytes) -> list[str]:
    violations = []
    folder = prefix + b"kubernetes/count/"
    end = folder[:-1] + bytes([folder[-1] + 1])
    first = client.put(rpc_pb2.PutRequest(key=folder + b"x", value=b"old")).header.revision
    client.put(rpc_pb2.PutRequest(key=folder + b"x", value=b"new"))
    client.put(rpc_pb2.PutRequest(key=folder + b"y", value=b"1"))
    counted = client.range(rpc_pb2.RangeRequest(key=folder, range_end=end, count_only=True))
    if counted.count != 2 or counted.kvs:
        violations.append(f"count_only answered count {counted.count} with {len(counted.kvs)} keys")
    old = client.range(rpc_pb2.RangeRequest(key=folder + b"x", revision=first))
    if [kv.value for kv in old.kvs] != [b"old"]:
        violations.append(f"get at revision {first} answered {[kv.value for kv in old.kvs]}")
    return violations
