"""Put and DeleteRange (etcd `server/etcdserver/apply.go`, `mvcc/kvstore_txn.go`).

**Put** always writes, so it always advances the revision by one. The new key-value keeps the
key's `create_revision` if the key exists (else the new revision), gets `mod_revision` = the
new revision, `version` = previous version + 1 (1 for a key that did not exist: a delete resets
it), and the request's lease. `ignore_value` keeps the previous value and `ignore_lease` the
previous lease; both need the key to exist.

**DeleteRange** writes one tombstone per key alive in the range, in key order, all at one
revision. When nothing is alive in the range it writes nothing, and the revision does not move.
A deleted key is detached from its lease.

Each operation comes in two layers: `put` / `delete_range` validate and check a request
against the store and return an Outcome; `write_put` / `write_delete_range` do the writing into
an `OverlayView`, which transactions share across their operations.
"""

from __future__ import annotations

from spec.errors import EtcdError
from spec.mvcc.key_index import key_index_get, key_index_put, key_index_tombstone
from spec.mvcc.messages import (
    DeleteRangeRequest,
    DeleteRangeResponse,
    KeyValue,
    PutRequest,
    PutResponse,
    ResponseHeader,
)
from spec.mvcc.outcome import Applied, Outcome, Rejected, events_for_changes
from spec.mvcc.read import key_indexes_in_range
from spec.mvcc.revision import lease_none
from spec.mvcc.view import KeyspaceView, LeaseMove, OverlayView, Record


def validate_put(request: PutRequest) -> EtcdError | None:
    """etcd `v3rpc/key.go:checkPutRequest`: a key; no value with ignore_value; no lease with ignore_lease."""
    if not request.key:
        return EtcdError.EMPTY_KEY
    if request.ignore_value and request.value:
        return EtcdError.VALUE_PROVIDED
    if request.ignore_lease and request.lease != lease_none:
        return EtcdError.LEASE_PROVIDED
    return None


def validate_delete_range(request: DeleteRangeRequest) -> EtcdError | None:
    """etcd `v3rpc/key.go:checkDeleteRequest`: a delete needs a key."""
    if not request.key:
        return EtcdError.EMPTY_KEY
    return None


def current_key_value(view: KeyspaceView, key: bytes) -> KeyValue | None:
    """The key's value as of the view's current revision, or None if it is not alive."""
    index = view.key_index(key)
    if index is None:
        return None
    key_at = key_index_get(index, view.current_revision())
    if key_at is None:
        return None
    return view.record(key_at.modified)


def check_put_lease(view: KeyspaceView, request: PutRequest) -> EtcdError | None:
    """A put may attach only a granted lease (etcd apply.go: `lease.ErrLeaseNotFound`)."""
    if request.lease != lease_none and view.lease(request.lease) is None:
        return EtcdError.LEASE_NOT_FOUND
    return None


def check_put_previous(view: KeyspaceView, request: PutRequest) -> EtcdError | None:
    """ignore_value and ignore_lease reuse the previous key-value, so the key must exist."""
    if (request.ignore_value or request.ignore_lease) and current_key_value(
        view, request.key
    ) is None:
        return EtcdError.KEY_NOT_FOUND
    return None


def put(view: KeyspaceView, request: PutRequest) -> Outcome[PutResponse]:
    """Apply a PutRequest on its own: validate, then check the lease, then the key (etcd's order)."""
    error = (
        validate_put(request) or check_put_lease(view, request) or check_put_previous(view, request)
    )
    if error is not None:
        return Rejected(error)
    overlay = OverlayView(view)
    response = write_put(overlay, request)
    changes = overlay.changes()
    return Applied(response, changes, events_for_changes(changes))


def write_put(overlay: OverlayView, request: PutRequest) -> PutResponse:
    """Write one put at the overlay's next sub revision (checks already passed)."""
    revision = overlay.next_revision()
    index = overlay.key_index(request.key)
    key_at = None if index is None else key_index_get(index, overlay.write_revision)
    previous = None if key_at is None else overlay.record(key_at.modified)
    assert previous is not None or not (request.ignore_value or request.ignore_lease)
    value = previous.value if request.ignore_value and previous is not None else request.value
    lease = previous.lease if request.ignore_lease and previous is not None else request.lease
    key_value = KeyValue(
        key=request.key,
        create_revision=revision.main if key_at is None else key_at.created,
        mod_revision=revision.main,
        version=1 if key_at is None else key_at.version + 1,
        value=value,
        lease=lease,
    )
    lease_move = LeaseMove(request.key, lease_none if previous is None else previous.lease, lease)
    overlay.write(
        Record(revision, key_value, tombstone=False),
        key_index_put(index, request.key, revision),
        lease_move,
    )
    prev_kv = previous if request.prev_kv else None
    return PutResponse(header=ResponseHeader(revision=revision.main), prev_kv=prev_kv)


def delete_range(view: KeyspaceView, request: DeleteRangeRequest) -> Outcome[DeleteRangeResponse]:
    """Apply a DeleteRangeRequest on its own; deleting nothing writes nothing."""
    error = validate_delete_range(request)
    if error is not None:
        return Rejected(error)
    overlay = OverlayView(view)
    response = write_delete_range(overlay, request)
    changes = overlay.changes()
    return Applied(response, changes, events_for_changes(changes))


def write_delete_range(overlay: OverlayView, request: DeleteRangeRequest) -> DeleteRangeResponse:
    """Tombstone every key alive in range, in key order, at the overlay's revision.

    The keys are read while the overlay is written: each write replaces the index of the key
    just read, and the reading goes on forward from it, so it sees what it would see in a copy
    taken first (without holding every key's old index until the end).
    """
    read_at = overlay.current_revision()
    deleted = 0
    prev_kvs: list[KeyValue] = []
    for index in key_indexes_in_range(overlay, request.key, request.range_end):
        key_at = key_index_get(index, read_at)
        if key_at is None:
            continue
        previous = overlay.record(key_at.modified)
        deleted += 1
        if request.prev_kv:
            prev_kvs.append(previous)
        revision = overlay.next_revision()
        tombstone = Record(revision, KeyValue(key=index.key), tombstone=True)
        lease_move = LeaseMove(index.key, previous.lease, lease_none)
        overlay.write(tombstone, key_index_tombstone(index, revision), lease_move)
    header = ResponseHeader(revision=overlay.current_revision())
    return DeleteRangeResponse(header=header, deleted=deleted, prev_kvs=tuple(prev_kvs))
