"""How the keyspace is laid out in the backend file: etcd's record keys and values.

As in etcd's bbolt `key` bucket (etcd `mvcc/revision.go`, `kvstore_txn.go`): a record's key is
its revision, 8 bytes big-endian main + `_` + 8 bytes big-endian sub (17 bytes), with a
trailing `t` for a tombstone (18 bytes); its value is the marshalled `mvccpb.KeyValue`
(only the key for a tombstone). Byte order of the record keys is revision order, so a cursor
walks history in order. Leases are stored as 16 bytes (id, TTL), keyed by the big-endian id.
"""

from __future__ import annotations

import struct

from etcdpb.mvccpb import kv_pb2
from spec.mvcc import KeyValue, LeaseId, LeaseRecord, Record, RecordId, Revision, RevisionPair

REVISION_KEY_BYTES = 17
TOMBSTONE_MARK = b"t"
_REVISION = struct.Struct(">Q")
_REVISION_KEY = struct.Struct(">Q1sQ")  # main, "_", sub
_REVISION_KEY_TOMBSTONE = struct.Struct(">Q1sQ1s")  # main, "_", sub, "t"
_LEASE = struct.Struct(">qq")
_LEASE_ID = struct.Struct(">q")


class RecordFormatError(ValueError):
    """A stored record that cannot be decoded: the file is damaged or not ours."""


def revision_key(revision: RevisionPair, tombstone: bool) -> bytes:
    if tombstone:
        return _REVISION_KEY_TOMBSTONE.pack(revision.main, b"_", revision.sub, TOMBSTONE_MARK)
    return _REVISION_KEY.pack(revision.main, b"_", revision.sub)


def revision_key_prefix(main: Revision) -> bytes:
    """The smallest record key of main revision `main`: where a cursor starts to read from it."""
    return _REVISION.pack(max(main, 0))


def record_id_of(key: bytes) -> RecordId:
    if len(key) not in (REVISION_KEY_BYTES, REVISION_KEY_BYTES + 1) or key[8:9] != b"_":
        raise RecordFormatError(f"record key {key!r} is not a revision")
    if len(key) == REVISION_KEY_BYTES + 1 and key[-1:] != TOMBSTONE_MARK:
        raise RecordFormatError(f"record key {key!r} has an unknown mark")
    main = Revision(_REVISION.unpack(key[:8])[0])
    sub = _REVISION.unpack(key[9:17])[0]
    return RecordId(RevisionPair(main, sub), tombstone=len(key) == REVISION_KEY_BYTES + 1)


def encode_key_value(kv: KeyValue) -> bytes:
    message = kv_pb2.KeyValue(
        key=kv.key,
        create_revision=kv.create_revision,
        mod_revision=kv.mod_revision,
        version=kv.version,
        value=kv.value,
        lease=kv.lease,
    )
    return message.SerializeToString(deterministic=True)


def decode_key_value(data: bytes) -> KeyValue:
    message = kv_pb2.KeyValue()
    try:
        message.ParseFromString(data)
    except Exception as error:  # protobuf raises its own DecodeError
        raise RecordFormatError(f"record value is not an mvccpb.KeyValue: {error}") from error
    return KeyValue(
        key=message.key,
        create_revision=Revision(message.create_revision),
        mod_revision=Revision(message.mod_revision),
        version=message.version,
        value=message.value,
        lease=LeaseId(message.lease),
    )


def encode_record(record: Record) -> tuple[bytes, bytes]:
    return revision_key(record.revision, record.tombstone), encode_key_value(record.key_value)


def decode_record(key: bytes, value: bytes) -> Record:
    record_id = record_id_of(key)
    return Record(record_id.revision, decode_key_value(value), record_id.tombstone)


def lease_key(lease: LeaseId) -> bytes:
    return _LEASE_ID.pack(lease)


def encode_lease(lease: LeaseRecord) -> bytes:
    return _LEASE.pack(lease.id, lease.ttl_seconds)


def decode_lease(data: bytes) -> LeaseRecord:
    if len(data) != _LEASE.size:
        raise RecordFormatError(f"lease record of {len(data)} bytes, expected {_LEASE.size}")
    lease_id, ttl_seconds = _LEASE.unpack(data)
    return LeaseRecord(LeaseId(lease_id), ttl_seconds)
