"""Field-by-field copies between etcd's protobuf messages and spec.mvcc's request/response classes.

spec.mvcc's classes carry etcd's field names, so each copy is by name; enums and the oneofs
(`RequestOp`, `ResponseOp`, `Compare.target_union`) are the only special cases. A protobuf
enum may hold a number etcd does not define: that raises `ValueError`, which the API answers
as INVALID_ARGUMENT.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from etcdpb.etcdserverpb import raft_internal_pb2, rpc_pb2
from etcdpb.mvccpb import kv_pb2
from impl.api.alarm import AlarmAction, AlarmRequest, AlarmType
from spec import lease
from spec.mvcc import (
    CompactionRequest,
    CompactionResponse,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResponse,
    EmptyRequestOp,
    Event,
    KeyValue,
    KeyValueRequest,
    LeaseId,
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

_ENUM_FIELDS: dict[str, Any] = {
    "sort_order": SortOrder,
    "sort_target": SortTarget,
    "result": CompareResult,
    "target": CompareTarget,
}


def _copy_in(cls: Any, message: Any) -> Any:
    arguments: dict[str, Any] = {}
    for field in attrs.fields(cls):
        value = getattr(message, field.name)
        enum_class = _ENUM_FIELDS.get(field.name)
        arguments[field.name] = enum_class(value) if enum_class is not None else value
    return cls(**arguments)


def range_request_in(message: rpc_pb2.RangeRequest) -> RangeRequest:
    result: RangeRequest = _copy_in(RangeRequest, message)
    return result


def put_request_in(message: rpc_pb2.PutRequest) -> PutRequest:
    result: PutRequest = _copy_in(PutRequest, message)
    return result


def delete_range_request_in(message: rpc_pb2.DeleteRangeRequest) -> DeleteRangeRequest:
    result: DeleteRangeRequest = _copy_in(DeleteRangeRequest, message)
    return result


def compaction_request_in(message: rpc_pb2.CompactionRequest) -> CompactionRequest:
    result: CompactionRequest = _copy_in(CompactionRequest, message)
    return result


def compare_in(message: rpc_pb2.Compare) -> Compare:
    result: Compare = _copy_in(Compare, message)
    return result


def request_op_in(message: rpc_pb2.RequestOp) -> RequestOp:
    match message.WhichOneof("request"):
        case "request_range":
            return range_request_in(message.request_range)
        case "request_put":
            return put_request_in(message.request_put)
        case "request_delete_range":
            return delete_range_request_in(message.request_delete_range)
        case "request_txn":
            return txn_request_in(message.request_txn)
        case _:
            return EmptyRequestOp()


def txn_request_in(message: rpc_pb2.TxnRequest) -> TxnRequest:
    return TxnRequest(
        compare=tuple(compare_in(item) for item in message.compare),
        success=tuple(request_op_in(item) for item in message.success),
        failure=tuple(request_op_in(item) for item in message.failure),
    )


# --- out -------------------------------------------------------------------------------------


def header_out(header: ResponseHeader) -> rpc_pb2.ResponseHeader:
    return rpc_pb2.ResponseHeader(
        cluster_id=header.cluster_id,
        member_id=header.member_id,
        revision=header.revision,
        raft_term=header.raft_term,
    )


def key_value_out(key_value: KeyValue) -> kv_pb2.KeyValue:
    return kv_pb2.KeyValue(
        key=key_value.key,
        create_revision=key_value.create_revision,
        mod_revision=key_value.mod_revision,
        version=key_value.version,
        value=key_value.value,
        lease=key_value.lease,
    )


def event_out(event: Event) -> kv_pb2.Event:
    message = kv_pb2.Event(type=int(event.type), kv=key_value_out(event.kv))  # type: ignore[arg-type]
    if event.prev_kv is not None:
        message.prev_kv.CopyFrom(key_value_out(event.prev_kv))
    return message


def range_response_out(response: RangeResponse) -> rpc_pb2.RangeResponse:
    return rpc_pb2.RangeResponse(
        header=header_out(response.header),
        kvs=[key_value_out(item) for item in response.kvs],
        more=response.more,
        count=response.count,
    )


def put_response_out(response: PutResponse) -> rpc_pb2.PutResponse:
    message = rpc_pb2.PutResponse(header=header_out(response.header))
    if response.prev_kv is not None:
        message.prev_kv.CopyFrom(key_value_out(response.prev_kv))
    return message


def delete_range_response_out(response: DeleteRangeResponse) -> rpc_pb2.DeleteRangeResponse:
    return rpc_pb2.DeleteRangeResponse(
        header=header_out(response.header),
        deleted=response.deleted,
        prev_kvs=[key_value_out(item) for item in response.prev_kvs],
    )


def response_op_out(response: ResponseOp) -> rpc_pb2.ResponseOp:
    match response:
        case RangeResponse():
            return rpc_pb2.ResponseOp(response_range=range_response_out(response))
        case PutResponse():
            return rpc_pb2.ResponseOp(response_put=put_response_out(response))
        case DeleteRangeResponse():
            return rpc_pb2.ResponseOp(response_delete_range=delete_range_response_out(response))
        case TxnResponse():
            return rpc_pb2.ResponseOp(response_txn=txn_response_out(response))


def txn_response_out(response: TxnResponse) -> rpc_pb2.TxnResponse:
    return rpc_pb2.TxnResponse(
        header=header_out(response.header),
        succeeded=response.succeeded,
        responses=[response_op_out(item) for item in response.responses],
    )


def compaction_response_out(response: CompactionResponse) -> rpc_pb2.CompactionResponse:
    return rpc_pb2.CompactionResponse(header=header_out(response.header))


# --- entries ---------------------------------------------------------------------------------


ReplicatedRequest = (
    KeyValueRequest | lease.LeaseGrantRequest | lease.LeaseRevokeRequest | AlarmRequest
)


def internal_request_out(request_id: int, request: ReplicatedRequest) -> bytes:
    """The entry data etcd proposes for `request`: a marshalled InternalRaftRequest."""

    message = raft_internal_pb2.InternalRaftRequest()
    message.header.ID = request_id
    match request:
        case RangeRequest():
            message.range.CopyFrom(_copy_out(rpc_pb2.RangeRequest, request))
        case PutRequest():
            message.put.CopyFrom(_copy_out(rpc_pb2.PutRequest, request))
        case DeleteRangeRequest():
            message.delete_range.CopyFrom(_copy_out(rpc_pb2.DeleteRangeRequest, request))
        case TxnRequest():
            message.txn.CopyFrom(txn_request_out(request))
        case CompactionRequest():
            message.compaction.CopyFrom(_copy_out(rpc_pb2.CompactionRequest, request))
        case lease.LeaseGrantRequest():
            message.lease_grant.CopyFrom(rpc_pb2.LeaseGrantRequest(TTL=request.TTL, ID=request.ID))
        case lease.LeaseRevokeRequest():
            message.lease_revoke.CopyFrom(rpc_pb2.LeaseRevokeRequest(ID=request.ID))
        case AlarmRequest():
            message.alarm.CopyFrom(
                rpc_pb2.AlarmRequest(
                    action=int(request.action),  # type: ignore[arg-type]
                    memberID=request.member_id,
                    alarm=int(request.alarm),  # type: ignore[arg-type]
                )
            )
    return message.SerializeToString(deterministic=True)


def internal_request_in(data: bytes) -> tuple[int, ReplicatedRequest | None]:
    """(request id, the KV request) of an entry's data; None for a request this node does not apply."""

    message = raft_internal_pb2.InternalRaftRequest.FromString(data)
    request_id = message.header.ID or message.ID
    request: ReplicatedRequest | None = None
    if message.HasField("lease_grant"):
        grant = message.lease_grant
        request = lease.LeaseGrantRequest(TTL=grant.TTL, ID=LeaseId(grant.ID))
    elif message.HasField("lease_revoke"):
        request = lease.LeaseRevokeRequest(ID=LeaseId(message.lease_revoke.ID))
    elif message.HasField("alarm"):
        alarm = message.alarm
        request = AlarmRequest(AlarmAction(alarm.action), alarm.memberID, AlarmType(alarm.alarm))
    elif message.HasField("range"):
        request = range_request_in(message.range)
    elif message.HasField("put"):
        request = put_request_in(message.put)
    elif message.HasField("delete_range"):
        request = delete_range_request_in(message.delete_range)
    elif message.HasField("txn"):
        request = txn_request_in(message.txn)
    elif message.HasField("compaction"):
        request = compaction_request_in(message.compaction)
    return request_id, request


def _copy_out(cls: Any, request: Any) -> Any:
    return cls(
        **{field.name: getattr(request, field.name) for field in attrs.fields(type(request))}
    )


def _request_op_out(request: RequestOp) -> rpc_pb2.RequestOp:
    match request:
        case RangeRequest():
            return rpc_pb2.RequestOp(request_range=_copy_out(rpc_pb2.RangeRequest, request))
        case PutRequest():
            return rpc_pb2.RequestOp(request_put=_copy_out(rpc_pb2.PutRequest, request))
        case DeleteRangeRequest():
            return rpc_pb2.RequestOp(
                request_delete_range=_copy_out(rpc_pb2.DeleteRangeRequest, request)
            )
        case TxnRequest():
            return rpc_pb2.RequestOp(request_txn=txn_request_out(request))
        case EmptyRequestOp():
            return rpc_pb2.RequestOp()


def txn_request_out(request: TxnRequest) -> rpc_pb2.TxnRequest:
    return rpc_pb2.TxnRequest(
        compare=[_compare_out(item) for item in request.compare],
        success=[_request_op_out(item) for item in request.success],
        failure=[_request_op_out(item) for item in request.failure],
    )


def _compare_out(compare: Compare) -> rpc_pb2.Compare:
    message = rpc_pb2.Compare(
        result=int(compare.result),  # type: ignore[arg-type]
        target=int(compare.target),  # type: ignore[arg-type]
        key=compare.key,
        range_end=compare.range_end,
    )
    match compare.target:
        case CompareTarget.VERSION:
            message.version = compare.version
        case CompareTarget.CREATE:
            message.create_revision = compare.create_revision
        case CompareTarget.MOD:
            message.mod_revision = compare.mod_revision
        case CompareTarget.VALUE:
            message.value = compare.value
        case CompareTarget.LEASE:
            message.lease = compare.lease
    return message


# --- member attributes (etcd publishes them through Raft as a v2 request) ----------------------


def publish_request_out(
    request_id: int, member_id: int, name: str, client_urls: list[str]
) -> bytes:
    """etcd's publish: a v2 PUT of `/0/members/<id hex>/attributes` with {name, clientURLs} as JSON."""
    message = raft_internal_pb2.InternalRaftRequest()
    message.header.ID = request_id
    message.v2.ID = request_id
    message.v2.Method = "PUT"
    message.v2.Path = f"/0/members/{member_id:x}/attributes"
    message.v2.Val = json.dumps({"name": name, "clientURLs": client_urls}, separators=(",", ":"))
    return message.SerializeToString(deterministic=True)


def member_attributes_in(data: bytes) -> tuple[int, str, list[str]] | None:
    """(member id, name, client URLs) when `data` is a publish request, else None (never raises)."""
    try:
        message = raft_internal_pb2.InternalRaftRequest.FromString(data)
        if not message.HasField("v2") or message.v2.Method != "PUT":
            return None
        parts = message.v2.Path.split("/")
        if len(parts) != 5 or parts[1:3] != ["0", "members"] or parts[4] != "attributes":
            return None
        attributes = json.loads(message.v2.Val)
        urls = [str(url) for url in attributes.get("clientURLs", [])]
        return int(parts[3], 16), str(attributes.get("name", "")), urls
    except (ValueError, AttributeError, TypeError):
        return None
