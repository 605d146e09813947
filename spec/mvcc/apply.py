"""Dispatch a KV request to its operation, and validate any KV request as etcd's API layer does."""

from __future__ import annotations

from spec.errors import EtcdError
from spec.mvcc.compaction import compact
from spec.mvcc.messages import (
    CompactionRequest,
    CompactionResponse,
    DeleteRangeRequest,
    DeleteRangeResponse,
    KeyValueRequest,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    TxnRequest,
    TxnResponse,
)
from spec.mvcc.outcome import Outcome
from spec.mvcc.read import range_keys, validate_range
from spec.mvcc.transaction import txn, validate_txn_request
from spec.mvcc.view import KeyspaceView
from spec.mvcc.write import delete_range, put, validate_delete_range, validate_put

KeyValueOutcome = (
    Outcome[RangeResponse]
    | Outcome[PutResponse]
    | Outcome[DeleteRangeResponse]
    | Outcome[TxnResponse]
    | Outcome[CompactionResponse]
)


def validate_request(request: KeyValueRequest) -> EtcdError | None:
    """The checks etcd makes before proposing a request through Raft (`v3rpc/key.go`)."""
    match request:
        case RangeRequest():
            return validate_range(request)
        case PutRequest():
            return validate_put(request)
        case DeleteRangeRequest():
            return validate_delete_range(request)
        case TxnRequest():
            return validate_txn_request(request)
        case CompactionRequest():
            return None


def apply_request(view: KeyspaceView, request: KeyValueRequest) -> KeyValueOutcome:
    """Apply any KV request to `view` with the operation of its type."""
    match request:
        case RangeRequest():
            return range_keys(view, request)
        case PutRequest():
            return put(view, request)
        case DeleteRangeRequest():
            return delete_range(view, request)
        case TxnRequest():
            return txn(view, request)
        case CompactionRequest():
            return compact(view, request)
