"""etcd's multi-version key-value store, as pure functions. Read this package top to bottom.

**The model.** The store is a history: an append-only sequence of records, each a key-value
written (or a key deleted) at a revision `{main, sub}` (`revision.py`). Every write transaction
that changes something takes the next main revision; a fresh store is at revision 1. A key
index (`key_index.py`) lists, for each key, the revisions of its writes grouped into
generations, one per life of the key between creation and deletion.

**The operations** (etcd's KV service) are functions of a read-only `KeyspaceView`
(`view.py`) and a request, returning an `Outcome` (`outcome.py`): either `Applied(response,
changes, events)` or `Rejected(error)` with one of etcd's errors (`spec.errors`):

    range_keys(view, RangeRequest)          -> Outcome[RangeResponse]       read.py
    put(view, PutRequest)                   -> Outcome[PutResponse]         write.py
    delete_range(view, DeleteRangeRequest)  -> Outcome[DeleteRangeResponse] write.py
    txn(view, TxnRequest)                   -> Outcome[TxnResponse]         transaction.py
    compact(view, CompactionRequest)        -> Outcome[CompactionResponse]  compaction.py
    apply_request(view, request)            -> any of the above, by request type

A write happens at `view.current_revision() + 1`; the caller hands `changes` to the store
that owns the view (`MemoryKeyspace.apply` in `memory.py`, or `impl.backend`) and `events` to
the watchers (`spec.watch`). Requests and responses mirror etcd's protobuf messages field for
field (`messages.py`). Validation that etcd does before Raft (empty key, ignore_value with a
value, too many txn operations, duplicate keys in a txn) is exposed separately
(`validate_request`) and is also applied by each operation, so an operation can be called on
any request. Size limits (`--max-request-bytes`, the backend quota) are in `limits.py`.

**Reading order:** `revision.py` (the clock), `messages.py` (the wire shapes), `key_index.py`
(generations, tombstones, what compaction keeps), `view.py` (what operations read and return),
`outcome.py`, then the operations `read.py`, `write.py`, `transaction.py`, `compaction.py`,
`limits.py`; `memory.py` is the simplest store and `apply.py` the dispatcher. Leases
(`spec.lease`) and watches (`spec.watch`) build on this package.

**Where each rule comes from** is stated in each module and function docstring: etcd 3.4/3.5
`server/mvcc/*` and `server/etcdserver/apply.go`, `api/v3rpc/key.go`.
"""

from spec.mvcc.apply import apply_request, validate_request
from spec.mvcc.compaction import compact
from spec.mvcc.key_index import Generation, KeyAt, KeyIndex, key_index_get
from spec.mvcc.limits import check_quota, check_request_size, write_cost_bytes
from spec.mvcc.memory import MemoryKeyspace
from spec.mvcc.messages import (
    CompactionRequest,
    CompactionResponse,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResponse,
    EmptyRequestOp,
    Event,
    EventType,
    KeyValue,
    KeyValueRequest,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    RequestOp,
    ResponseHeader,
    ResponseOp,
    SortOrder,
    SortTarget,
    TxnRequest,
    TxnResponse,
)
from spec.mvcc.outcome import Applied, Outcome, Rejected, event_for_record, events_for_changes
from spec.mvcc.read import range_keys
from spec.mvcc.revision import (
    LeaseId,
    Revision,
    RevisionPair,
    compacted_revision_none,
    lease_none,
    store_revision_initial,
)
from spec.mvcc.transaction import txn
from spec.mvcc.view import Changes, KeyspaceView, LeaseRecord, Record, RecordId
from spec.mvcc.write import delete_range, put

__all__ = [
    "Applied",
    "Changes",
    "CompactionRequest",
    "CompactionResponse",
    "Compare",
    "CompareResult",
    "CompareTarget",
    "DeleteRangeRequest",
    "DeleteRangeResponse",
    "EmptyRequestOp",
    "Event",
    "EventType",
    "Generation",
    "KeyAt",
    "KeyIndex",
    "KeyValue",
    "KeyValueRequest",
    "KeyspaceView",
    "LeaseId",
    "LeaseRecord",
    "MemoryKeyspace",
    "Outcome",
    "PutRequest",
    "PutResponse",
    "RangeRequest",
    "RangeResponse",
    "Record",
    "RecordId",
    "Rejected",
    "RequestOp",
    "ResponseHeader",
    "ResponseOp",
    "Revision",
    "RevisionPair",
    "SortOrder",
    "SortTarget",
    "TxnRequest",
    "TxnResponse",
    "apply_request",
    "check_quota",
    "check_request_size",
    "compact",
    "compacted_revision_none",
    "delete_range",
    "event_for_record",
    "events_for_changes",
    "key_index_get",
    "lease_none",
    "put",
    "range_keys",
    "store_revision_initial",
    "txn",
    "validate_request",
    "write_cost_bytes",
]
