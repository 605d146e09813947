"""Requests, responses and records of the KV service, mirroring etcd's protobuf messages.

Each class has the fields of the etcd message of the same name (`etcdserverpb` in
`rpc.proto`, `mvccpb` in `kv.proto`), with the same field names and etcd's zero values as
defaults, so converting from and to the wire is a field-by-field copy:

    KeyValue            key, create_revision, mod_revision, version, value, lease
    Event               type, kv, prev_kv (None when absent)
    RangeRequest        key, range_end, limit, revision, sort_order, sort_target, serializable,
                        keys_only, count_only, min/max_mod_revision, min/max_create_revision
    RangeResponse       header, kvs, more, count
    PutRequest          key, value, lease, prev_kv, ignore_value, ignore_lease
    PutResponse         header, prev_kv (None when absent)
    DeleteRangeRequest  key, range_end, prev_kv
    DeleteRangeResponse header, deleted, prev_kvs
    Compare             result, target, key, version, create_revision, mod_revision, value,
                        lease, range_end   (the field named by `target` is the one compared)
    TxnRequest          compare, success, failure  (success/failure hold RequestOp values)
    TxnResponse         header, succeeded, responses
    CompactionRequest   revision, physical
    CompactionResponse  header

`RequestOp` is etcd's oneof as a union: `request_range` is a RangeRequest, `request_put` a
PutRequest, `request_delete_range` a DeleteRangeRequest, `request_txn` a TxnRequest, and a
RequestOp with no field set is `EmptyRequestOp()`. `ResponseOp` is the matching union.
The spec fills only `header.revision`; the API layer fills cluster_id, member_id and raft_term.
"""

from __future__ import annotations

import enum

import attrs

from spec.mvcc.revision import LeaseId, Revision, lease_none


class SortOrder(enum.IntEnum):
    NONE = 0
    ASCEND = 1
    DESCEND = 2


class SortTarget(enum.IntEnum):
    KEY = 0
    VERSION = 1
    CREATE = 2
    MOD = 3
    VALUE = 4


class CompareResult(enum.IntEnum):
    EQUAL = 0
    GREATER = 1
    LESS = 2
    NOT_EQUAL = 3


class CompareTarget(enum.IntEnum):
    VERSION = 0
    CREATE = 1
    MOD = 2
    VALUE = 3
    LEASE = 4


class EventType(enum.IntEnum):
    PUT = 0
    DELETE = 1


@attrs.frozen
class ResponseHeader:
    cluster_id: int = 0
    member_id: int = 0
    revision: Revision = Revision(0)
    raft_term: int = 0


@attrs.frozen
class KeyValue:
    """A key's value at one revision; a key absent from the store compares as `KeyValue()`."""

    key: bytes = b""
    create_revision: Revision = Revision(0)
    mod_revision: Revision = Revision(0)
    version: int = 0
    value: bytes = b""
    lease: LeaseId = lease_none


@attrs.frozen
class Event:
    """A change seen by watchers. A DELETE's `kv` holds only the key and the deletion revision."""

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None = None


@attrs.frozen
class RangeRequest:
    key: bytes = b""
    range_end: bytes = b""
    limit: int = 0
    revision: Revision = Revision(0)
    sort_order: SortOrder = SortOrder.NONE
    sort_target: SortTarget = SortTarget.KEY
    serializable: bool = False
    keys_only: bool = False
    count_only: bool = False
    min_mod_revision: Revision = Revision(0)
    max_mod_revision: Revision = Revision(0)
    min_create_revision: Revision = Revision(0)
    max_create_revision: Revision = Revision(0)


@attrs.frozen
class RangeResponse:
    header: ResponseHeader = ResponseHeader()
    kvs: tuple[KeyValue, ...] = ()
    more: bool = False
    count: int = 0


@attrs.frozen
class PutRequest:
    key: bytes = b""
    value: bytes = b""
    lease: LeaseId = lease_none
    prev_kv: bool = False
    ignore_value: bool = False
    ignore_lease: bool = False


@attrs.frozen
class PutResponse:
    header: ResponseHeader = ResponseHeader()
    prev_kv: KeyValue | None = None


@attrs.frozen
class DeleteRangeRequest:
    key: bytes = b""
    range_end: bytes = b""
    prev_kv: bool = False


@attrs.frozen
class DeleteRangeResponse:
    header: ResponseHeader = ResponseHeader()
    deleted: int = 0
    prev_kvs: tuple[KeyValue, ...] = ()


@attrs.frozen
class Compare:
    result: CompareResult = CompareResult.EQUAL
    target: CompareTarget = CompareTarget.VERSION
    key: bytes = b""
    version: int = 0
    create_revision: Revision = Revision(0)
    mod_revision: Revision = Revision(0)
    value: bytes = b""
    lease: LeaseId = lease_none
    range_end: bytes = b""


@attrs.frozen
class EmptyRequestOp:
    """A RequestOp with none of its oneof fields set (etcd answers `key not found`)."""


@attrs.frozen
class TxnRequest:
    compare: tuple[Compare, ...] = ()
    success: tuple[RequestOp, ...] = ()
    failure: tuple[RequestOp, ...] = ()


@attrs.frozen
class TxnResponse:
    header: ResponseHeader = ResponseHeader()
    succeeded: bool = False
    responses: tuple[ResponseOp, ...] = ()


@attrs.frozen
class CompactionRequest:
    revision: Revision = Revision(0)
    physical: bool = False


@attrs.frozen
class CompactionResponse:
    header: ResponseHeader = ResponseHeader()


RequestOp = RangeRequest | PutRequest | DeleteRangeRequest | TxnRequest | EmptyRequestOp
ResponseOp = RangeResponse | PutResponse | DeleteRangeResponse | TxnResponse
KeyValueRequest = RangeRequest | PutRequest | DeleteRangeRequest | TxnRequest | CompactionRequest
