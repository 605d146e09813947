"""One-line human summaries of WAL records and of etcd's proposals inside entries.

Entry data is decoded the way etcd-dump-logs does: a normal entry holds an
etcdserverpb.InternalRaftRequest (put, delete_range, txn, ...), or in etcd 3.4 a bare v2
etcdserverpb.Request (member attributes and cluster version are published as v2 PUTs); a
conf-change entry holds a raftpb.ConfChange. Keys are shown with Python's bytes escapes.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from etcdpb.etcdserverpb import etcdserver_pb2, raft_internal_pb2, rpc_pb2
from etcdpb.raftpb import raft_pb2
from etcdpb.walpb import record_pb2
from impl.wal.record import RecordType
from impl.wal.types import EntryType

_KEY_SHOWN_BYTES_MAX = 64


def show_key(key: bytes) -> str:
    """A key as readable text, shortened past 64 bytes."""
    shown = repr(key[:_KEY_SHOWN_BYTES_MAX])[1:]
    return shown + ("..." if len(key) > _KEY_SHOWN_BYTES_MAX else "")


def describe_range(key: bytes, range_end: bytes) -> str:
    """etcd's range conventions: empty end is one key, "\\x00" is every key from `key` on."""
    if not range_end:
        return f"key={show_key(key)}"
    if range_end == b"\x00":
        return f"from_key={show_key(key)}"
    return f"key={show_key(key)} range_end={show_key(range_end)}"


def describe_put(put: rpc_pb2.PutRequest) -> str:
    """Key, value size and lease of a put (values are not printed: they may be large)."""
    text = f"put {show_key(put.key)} value_bytes={len(put.value)}"
    if put.lease:
        text += f" lease={put.lease:016x}"
    return text


def describe_request_op(operation: rpc_pb2.RequestOp) -> str:
    """One operation of a txn branch."""
    kind = operation.WhichOneof("request")
    if kind == "request_put":
        return describe_put(operation.request_put)
    if kind == "request_delete_range":
        request = operation.request_delete_range
        return f"delete_range {describe_range(request.key, request.range_end)}"
    if kind == "request_range":
        request_range = operation.request_range
        return f"range {describe_range(request_range.key, request_range.range_end)}"
    if kind == "request_txn":
        return "txn(nested)"
    return "empty"


def describe_txn(txn: rpc_pb2.TxnRequest) -> str:
    """A txn as `if [compares] then [ops] else [ops]`, as etcdctl txn takes it."""
    compares = ", ".join(
        f"{rpc_pb2.Compare.CompareTarget.Name(compare.target).lower()}({show_key(compare.key)}) "
        f"{rpc_pb2.Compare.CompareResult.Name(compare.result).lower()}"
        for compare in txn.compare
    )
    success = "; ".join(describe_request_op(operation) for operation in txn.success)
    failure = "; ".join(describe_request_op(operation) for operation in txn.failure)
    return f"txn if [{compares}] then [{success}] else [{failure}]"


def describe_internal_request(request: raft_internal_pb2.InternalRaftRequest) -> str | None:
    """The request an InternalRaftRequest carries, or None if none of its fields is set."""
    if request.HasField("put"):
        return describe_put(request.put)
    if request.HasField("delete_range"):
        delete = request.delete_range
        return f"delete_range {describe_range(delete.key, delete.range_end)}"
    if request.HasField("txn"):
        return describe_txn(request.txn)
    if request.HasField("range"):
        return f"range {describe_range(request.range.key, request.range.range_end)}"
    if request.HasField("compaction"):
        return f"compaction revision={request.compaction.revision}"
    if request.HasField("lease_grant"):
        grant = request.lease_grant
        return f"lease_grant id={grant.ID:016x} ttl={grant.TTL}"
    if request.HasField("lease_revoke"):
        return f"lease_revoke id={request.lease_revoke.ID:016x}"
    for field, _ in request.ListFields():
        if field.name not in ("header", "ID"):
            return field.name
    return None


def describe_entry_data(entry_type: int, data: bytes) -> str:
    """What an entry proposes, decoded as etcd-dump-logs would."""
    if not data:
        return "empty (leader's no-op)"
    try:
        if entry_type == EntryType.CONF_CHANGE:
            change = raft_pb2.ConfChange()
            change.ParseFromString(data)
            action = raft_pb2.ConfChangeType.Name(change.Type)
            return f"conf_change {action} node={change.NodeID:016x}"
        if entry_type == EntryType.CONF_CHANGE_V2:
            change_v2 = raft_pb2.ConfChangeV2()
            change_v2.ParseFromString(data)
            return f"conf_change_v2 changes={len(change_v2.changes)}"
        request = raft_internal_pb2.InternalRaftRequest()
        try:
            request.ParseFromString(data)
            summary = describe_internal_request(request)
        except DecodeError:
            summary = None
        if summary is not None:
            return summary
        v2 = etcdserver_pb2.Request()
        v2.ParseFromString(data)
        return f"v2 {v2.Method} {v2.Path}"
    except (DecodeError, ValueError):
        return f"undecodable data ({len(data)} bytes)"


def describe_record(record_type: int, data: bytes, crc: int) -> tuple[str, str, str, str]:
    """(type name, term, index, summary) for one record, as `etcdref wal dump` prints it."""
    try:
        name = RecordType(record_type).name.lower()
    except ValueError:
        return f"type{record_type}", "-", "-", f"unknown record type ({len(data)} bytes)"
    try:
        if record_type == RecordType.ENTRY:
            entry = raft_pb2.Entry()
            entry.ParseFromString(data)
            summary = describe_entry_data(entry.Type, entry.Data)
            return name, str(entry.Term), str(entry.Index), summary
        if record_type == RecordType.STATE:
            state = raft_pb2.HardState()
            state.ParseFromString(data)
            return name, str(state.term), "-", f"vote={state.vote:x} commit={state.commit}"
        if record_type == RecordType.METADATA:
            metadata = etcdserver_pb2.Metadata()
            metadata.ParseFromString(data)
            return name, "-", "-", f"node_id={metadata.NodeID:x} cluster_id={metadata.ClusterID:x}"
        if record_type == RecordType.SNAPSHOT:
            snapshot = record_pb2.Snapshot()
            snapshot.ParseFromString(data)
            return name, str(snapshot.term), str(snapshot.index), "snapshot point"
    except DecodeError:
        return name, "-", "-", f"undecodable data ({len(data)} bytes)"
    return name, "-", "-", f"crc={crc:08x}"
