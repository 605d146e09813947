"""Between the spec's request/response classes and etcd's protobuf messages, with a revision shift.

The model starts at revision 1 with an empty store; the target may already be at revision R0
(other keys exist outside the run's prefix). Every revision crossing the wire is shifted by
`offset = R0 - 1`: model revision m is server revision m + offset. Zero and negative values
mean "none" or "latest" in etcd and are not shifted. Lease ids are not revisions and cross
unchanged.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from etcdpb.etcdserverpb import rpc_pb2
from etcdpb.mvccpb import kv_pb2
from spec.lease import (
    LeaseGrantRequest,
    LeaseGrantResponse,
    LeaseKeepAliveResponse,
    LeaseLeasesResponse,
    LeaseRevokeResponse,
    LeaseStatus,
    LeaseTimeToLiveResponse,
)
from spec.mvcc import (
    CompactionRequest,
    CompactionResponse,
    Compare,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResponse,
    EmptyRequestOp,
    Event,
    EventType,
    KeyValue,
    LeaseId,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    RequestOp,
    ResponseHeader,
    ResponseOp,
    Revision,
    TxnRequest,
    TxnResponse,
)
from spec.watch import WatchCreateRequest, WatchResponse


@dataclass(frozen=True)
class RevisionShift:
    offset: int

    def to_server(self, revision: int) -> int:
        return revision + self.offset if revision > 0 else revision

    def to_model(self, revision: int) -> Revision:
        return Revision(revision - self.offset if revision > 0 else revision)

    # --- Requests: model -> wire -------------------------------------------------------------
    def range_request(self, request: RangeRequest) -> rpc_pb2.RangeRequest:
        return rpc_pb2.RangeRequest(
            key=request.key,
            range_end=request.range_end,
            limit=request.limit,
            revision=self.to_server(request.revision),
            sort_order=int(request.sort_order),  # type: ignore[arg-type]
            sort_target=int(request.sort_target),  # type: ignore[arg-type]
            serializable=request.serializable,
            keys_only=request.keys_only,
            count_only=request.count_only,
            min_mod_revision=self.to_server(request.min_mod_revision),
            max_mod_revision=self.to_server(request.max_mod_revision),
            min_create_revision=self.to_server(request.min_create_revision),
            max_create_revision=self.to_server(request.max_create_revision),
        )

    def put_request(self, request: PutRequest) -> rpc_pb2.PutRequest:
        return rpc_pb2.PutRequest(
            key=request.key,
            value=request.value,
            lease=request.lease,
            prev_kv=request.prev_kv,
            ignore_value=request.ignore_value,
            ignore_lease=request.ignore_lease,
        )

    def delete_request(self, request: DeleteRangeRequest) -> rpc_pb2.DeleteRangeRequest:
        return rpc_pb2.DeleteRangeRequest(
            key=request.key, range_end=request.range_end, prev_kv=request.prev_kv
        )

    def compare(self, compare: Compare) -> rpc_pb2.Compare:
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
                message.create_revision = self.to_server(compare.create_revision)
            case CompareTarget.MOD:
                message.mod_revision = self.to_server(compare.mod_revision)
            case CompareTarget.VALUE:
                message.value = compare.value
            case CompareTarget.LEASE:
                message.lease = compare.lease
        return message

    def request_op(self, operation: RequestOp) -> rpc_pb2.RequestOp:
        match operation:
            case RangeRequest():
                return rpc_pb2.RequestOp(request_range=self.range_request(operation))
            case PutRequest():
                return rpc_pb2.RequestOp(request_put=self.put_request(operation))
            case DeleteRangeRequest():
                return rpc_pb2.RequestOp(request_delete_range=self.delete_request(operation))
            case TxnRequest():
                return rpc_pb2.RequestOp(request_txn=self.txn_request(operation))
            case EmptyRequestOp():
                return rpc_pb2.RequestOp()

    def txn_request(self, request: TxnRequest) -> rpc_pb2.TxnRequest:
        return rpc_pb2.TxnRequest(
            compare=[self.compare(compare) for compare in request.compare],
            success=[self.request_op(operation) for operation in request.success],
            failure=[self.request_op(operation) for operation in request.failure],
        )

    def compaction_request(self, request: CompactionRequest) -> rpc_pb2.CompactionRequest:
        return rpc_pb2.CompactionRequest(
            revision=self.to_server(request.revision), physical=request.physical
        )

    def lease_grant_request(self, request: LeaseGrantRequest) -> rpc_pb2.LeaseGrantRequest:
        return rpc_pb2.LeaseGrantRequest(TTL=request.TTL, ID=request.ID)

    def watch_create_request(self, request: WatchCreateRequest) -> rpc_pb2.WatchCreateRequest:
        return rpc_pb2.WatchCreateRequest(
            key=request.key,
            range_end=request.range_end,
            start_revision=self.to_server(request.start_revision),
            progress_notify=request.progress_notify,
            filters=[int(kind) for kind in request.filters],  # type: ignore[misc]
            prev_kv=request.prev_kv,
            watch_id=request.watch_id,
            fragment=request.fragment,
        )

    # --- Responses: wire -> model ------------------------------------------------------------
    def header(self, message: rpc_pb2.ResponseHeader) -> ResponseHeader:
        """Only the revision: cluster_id, member_id and raft_term are the server's business."""
        return ResponseHeader(revision=self.to_model(message.revision))

    def key_value(self, message: kv_pb2.KeyValue) -> KeyValue:
        return KeyValue(
            key=message.key,
            create_revision=self.to_model(message.create_revision),
            mod_revision=self.to_model(message.mod_revision),
            version=message.version,
            value=message.value,
            lease=LeaseId(message.lease),
        )

    def range_response(self, message: rpc_pb2.RangeResponse) -> RangeResponse:
        return RangeResponse(
            header=self.header(message.header),
            kvs=tuple(self.key_value(kv) for kv in message.kvs),
            more=message.more,
            count=message.count,
        )

    def put_response(self, message: rpc_pb2.PutResponse) -> PutResponse:
        previous = self.key_value(message.prev_kv) if message.HasField("prev_kv") else None
        return PutResponse(header=self.header(message.header), prev_kv=previous)

    def delete_response(self, message: rpc_pb2.DeleteRangeResponse) -> DeleteRangeResponse:
        return DeleteRangeResponse(
            header=self.header(message.header),
            deleted=message.deleted,
            prev_kvs=tuple(self.key_value(kv) for kv in message.prev_kvs),
        )

    def response_op(self, message: rpc_pb2.ResponseOp) -> ResponseOp:
        kind = message.WhichOneof("response")
        if kind == "response_range":
            return self.range_response(message.response_range)
        if kind == "response_put":
            return self.put_response(message.response_put)
        if kind == "response_delete_range":
            return self.delete_response(message.response_delete_range)
        if kind == "response_txn":
            return self.txn_response(message.response_txn)
        raise ValueError(f"ResponseOp with no response set: {message}")

    def txn_response(self, message: rpc_pb2.TxnResponse) -> TxnResponse:
        return TxnResponse(
            header=self.header(message.header),
            succeeded=message.succeeded,
            responses=tuple(self.response_op(response) for response in message.responses),
        )

    def compaction_response(self, message: rpc_pb2.CompactionResponse) -> CompactionResponse:
        return CompactionResponse(header=self.header(message.header))

    # --- Lease responses ---------------------------------------------------------------------
    def lease_grant_response(self, message: rpc_pb2.LeaseGrantResponse) -> LeaseGrantResponse:
        return LeaseGrantResponse(
            header=self.header(message.header),
            ID=LeaseId(message.ID),
            TTL=message.TTL,
            error=message.error,
        )

    def lease_revoke_response(self, message: rpc_pb2.LeaseRevokeResponse) -> LeaseRevokeResponse:
        return LeaseRevokeResponse(header=self.header(message.header))

    def lease_keep_alive_response(
        self, message: rpc_pb2.LeaseKeepAliveResponse
    ) -> LeaseKeepAliveResponse:
        return LeaseKeepAliveResponse(
            header=self.header(message.header), ID=LeaseId(message.ID), TTL=message.TTL
        )

    def lease_time_to_live_response(
        self, message: rpc_pb2.LeaseTimeToLiveResponse
    ) -> LeaseTimeToLiveResponse:
        """Keys in key order: etcd lists them in Go map order, so they compare as a set."""
        return LeaseTimeToLiveResponse(
            header=self.header(message.header),
            ID=LeaseId(message.ID),
            TTL=message.TTL,
            grantedTTL=message.grantedTTL,
            keys=tuple(sorted(message.keys)),
        )

    def lease_leases_response(
        self, message: rpc_pb2.LeaseLeasesResponse, ours: Collection[int]
    ) -> LeaseLeasesResponse:
        """Only the leases in `ours` (the run's ids), by id: etcd orders them by expiry on the
        leader and arbitrarily on a follower, and other leases on the server are not the run's."""
        return LeaseLeasesResponse(
            header=self.header(message.header),
            leases=tuple(
                LeaseStatus(LeaseId(lease.ID))
                for lease in sorted(message.leases, key=lambda lease: lease.ID)
                if lease.ID in ours
            ),
        )

    # --- Watch responses ---------------------------------------------------------------------
    def event(self, message: kv_pb2.Event) -> Event:
        previous = self.key_value(message.prev_kv) if message.HasField("prev_kv") else None
        return Event(EventType(message.type), self.key_value(message.kv), previous)

    def watch_response(self, message: rpc_pb2.WatchResponse) -> WatchResponse:
        return WatchResponse(
            header=self.header(message.header),
            watch_id=message.watch_id,
            created=message.created,
            canceled=message.canceled,
            compact_revision=self.to_model(message.compact_revision),
            cancel_reason=message.cancel_reason,
            fragment=message.fragment,
            events=tuple(self.event(event) for event in message.events),
        )
