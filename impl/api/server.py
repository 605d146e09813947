"""etcd's v3 gRPC services over a `Node`: KV, Watch, Lease, Cluster, Maintenance, health.

`serve` puts the gRPC server on an internal loopback port behind the client port's front
(impl/api/front.py), which also answers HTTP/1.1 with the JSON gateway (impl/api/gateway.py),
as etcd serves both on one port.

Each handler validates as etcd's API layer does (spec.mvcc.validate_request, the request size),
hands the request to the node and waits for the answer. Errors leave with etcd's exact text and
gRPC code from spec.errors. No leader known: `etcdserver: no leader` at once, never a hang,
except for what a follower forwards to the leader (lease keep-alive and time-to-live, member
changes), which waits for a leader within the request timeout as etcd does (impl/api/forward.py).
A request that gets no answer within etcd's request timeout (5 s + 2 election timeouts) gets
`etcdserver: request timed out`. A Put, Txn or LeaseGrant over `--quota-backend-bytes` raises
the NOSPACE alarm and gets `etcdserver: mvcc: database space exceeded` (impl/api/alarm.py).
Services not built yet answer UNIMPLEMENTED.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import attrs
import grpc

from etcdpb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from etcdpb.grpc_health.v1 import health_pb2, health_pb2_grpc
from impl.api import convert
from impl.api.alarm import AlarmAction, AlarmRequest, AlarmResponse, AlarmType, QuotaRequest
from impl.api.convert import ReplicatedRequest
from impl.api.forward import LeaderForwarder
from impl.api.front import ClientFront
from impl.api.gateway import Gateway
from impl.api.maintenance import backend_hash, copy_keyspace, snapshot_chunks
from impl.api.metrics import NodeMetrics
from impl.backend.hash import KeyspaceHash, hash_keyspace
from impl.node.membership import Member, MemberRequest, MembershipChanged, valid_peer_urls
from impl.node.node import Node
from spec import constants, lease, watch
from spec.errors import EtcdError
from spec.mvcc import RangeRequest, ResponseHeader, Revision, validate_request

SERVER_VERSION = "3.4.23"
INTERNAL_GRPC_HOST = "127.0.0.1"  # the gRPC server's own port, reached through the front
# grpcio runs each call on a pool thread, which a write holds until it is applied and a watch or
# keep-alive stream for its whole life: the pool bounds the writes in flight (etcd has a
# goroutine per call, no such bound). `etcdctl check perf --load m` keeps 200 writes in flight.
GRPC_THREADS_MAX = 1024
T = TypeVar("T")


def grpc_options(max_request_bytes: int) -> list[tuple[str, int]]:
    """grpcio options so etcd clients' pings and long streams are not cut (facts §0 item 10)."""
    return [
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 5000),
        ("grpc.http2.max_ping_strikes", 0),
        ("grpc.keepalive_time_ms", 7_200_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.max_receive_message_length", max_request_bytes + constants.grpc_overhead_bytes),
        ("grpc.max_send_message_length", 2**31 - 1),
        ("grpc.so_reuseport", 0),
    ]


_STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def abort(context: grpc.ServicerContext, error: EtcdError) -> NoReturn:
    """End the call with etcd's exact text and code for `error`."""
    context.abort(_STATUS_BY_NUMBER[error.grpc_code.value], error.message)
    raise AssertionError("unreachable")  # context.abort raises


class _Handlers:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.request_timeout_seconds = 5 + 2 * node.config.election_timeout_ms / 1000
        self.forwarder = LeaderForwarder(node, self.request_timeout_seconds, abort)

    def header(self, revision: int = 0) -> ResponseHeader:
        if revision == 0:
            revision = int(self.node.keyspace.current_revision())
        return ResponseHeader(
            cluster_id=self.node.cluster_id,
            member_id=self.node.member_id,
            revision=revision,  # type: ignore[arg-type]
            raft_term=self.node.term,
        )

    def header_pb(self) -> rpc_pb2.ResponseHeader:
        return convert.header_out(self.header())

    def cluster_header_pb(self) -> rpc_pb2.ResponseHeader:
        """etcd 3.4's Cluster service builds its own header (v3rpc/member.go `header()`): the
        cluster, the member and the term, but no revision, unlike every other service."""
        return rpc_pb2.ResponseHeader(
            cluster_id=self.node.cluster_id, member_id=self.node.member_id, raft_term=self.node.term
        )

    def wait(self, future: Future[object], context: grpc.ServicerContext) -> object:
        try:
            result = future.result(timeout=self.request_timeout_seconds)
        except futures.TimeoutError:
            future.cancel()
            abort(context, EtcdError.TIMEOUT)
        if isinstance(result, EtcdError):
            abort(context, result)
        return result

    def require_leader(self, context: grpc.ServicerContext) -> None:
        if self.node.leader is None:
            abort(context, EtcdError.NO_LEADER)

    def convert_in(self, convert_function: Any, message: Any, context: grpc.ServicerContext) -> Any:
        try:
            request = convert_function(message)
        except ValueError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        problem = validate_request(request)
        if problem is not None:
            abort(context, problem)
        return request

    def write(self, request: ReplicatedRequest, context: grpc.ServicerContext) -> Any:
        self.require_leader(context)
        if not isinstance(request, AlarmRequest):
            self.check_quota(request, context)
        return self.wait(self.node.propose(request), context)

    def check_quota(self, request: QuotaRequest, context: grpc.ServicerContext) -> None:
        """etcd v3rpc/quota.go: a Put, Txn or LeaseGrant that would take the backend over its
        quota is refused before it is proposed, once this member has raised a NOSPACE alarm
        with its own id through Raft (waited for, its outcome ignored, as etcd does)."""
        node = self.node
        if node.quota.available(request, node.keyspace.size_bytes()):
            return
        alarm = AlarmRequest(AlarmAction.ACTIVATE, node.member_id, AlarmType.NOSPACE)
        with contextlib.suppress(futures.TimeoutError):
            node.propose(alarm).result(timeout=self.request_timeout_seconds)
        abort(context, EtcdError.NO_SPACE)

    def fill(self, header: Any) -> None:
        """Set the member fields of a response header (and of every nested header)."""
        header.cluster_id = self.node.cluster_id
        header.member_id = self.node.member_id
        header.raft_term = self.node.term
        if header.revision == 0:
            header.revision = int(self.node.keyspace.current_revision())


class KeyValueService(rpc_pb2_grpc.KVServicer):
    def __init__(self, handlers: _Handlers) -> None:
        self.handlers = handlers

    def Range(
        self, request: rpc_pb2.RangeRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.RangeResponse:
        spec_request: RangeRequest = self.handlers.convert_in(
            convert.range_request_in, request, context
        )
        if not spec_request.serializable:
            self.handlers.require_leader(context)
        response = self.handlers.wait(self.handlers.node.read(spec_request), context)
        message = convert.range_response_out(response)  # type: ignore[arg-type]
        self.handlers.fill(message.header)
        return message

    def Put(
        self, request: rpc_pb2.PutRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.PutResponse:
        spec_request = self.handlers.convert_in(convert.put_request_in, request, context)
        message = convert.put_response_out(self.handlers.write(spec_request, context))
        self.handlers.fill(message.header)
        return message

    def DeleteRange(
        self, request: rpc_pb2.DeleteRangeRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.DeleteRangeResponse:
        spec_request = self.handlers.convert_in(convert.delete_range_request_in, request, context)
        message = convert.delete_range_response_out(self.handlers.write(spec_request, context))
        self.handlers.fill(message.header)
        return message

    def Txn(
        self, request: rpc_pb2.TxnRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.TxnResponse:
        spec_request = self.handlers.convert_in(convert.txn_request_in, request, context)
        message = convert.txn_response_out(self.handlers.write(spec_request, context))
        self.handlers.fill(message.header)
        return message

    def Compact(
        self, request: rpc_pb2.CompactionRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.CompactionResponse:
        spec_request = self.handlers.convert_in(convert.compaction_request_in, request, context)
        message = convert.compaction_response_out(self.handlers.write(spec_request, context))
        self.handlers.fill(message.header)
        return message


class LeaseService(rpc_pb2_grpc.LeaseServicer):
    """Grant and revoke go through Raft; keep-alive and time-to-live are answered by the leader
    (the only member that knows when a lease expires), so a follower forwards them to it."""

    def __init__(self, handlers: _Handlers) -> None:
        self.handlers = handlers

    def _own_header(self, header: rpc_pb2.ResponseHeader) -> None:
        """A forwarded answer carries this member's header, as in etcd (whose leader answers a
        forwarded lease request with an empty header that the follower fills)."""
        header.Clear()
        self.handlers.fill(header)

    def LeaseGrant(
        self, request: rpc_pb2.LeaseGrantRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.LeaseGrantResponse:
        lease_id = request.ID or self.handlers.node.next_request_id() & ((1 << 63) - 1)
        spec_request = lease.LeaseGrantRequest(TTL=request.TTL, ID=lease_id)  # type: ignore[arg-type]
        response = self.handlers.write(spec_request, context)
        message = rpc_pb2.LeaseGrantResponse(
            header=convert.header_out(response.header),
            ID=response.ID,
            TTL=response.TTL,
            error=response.error,
        )
        self.handlers.fill(message.header)
        return message

    def LeaseRevoke(
        self, request: rpc_pb2.LeaseRevokeRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.LeaseRevokeResponse:
        response = self.handlers.write(lease.LeaseRevokeRequest(ID=request.ID), context)  # type: ignore[arg-type]
        message = rpc_pb2.LeaseRevokeResponse(header=convert.header_out(response.header))
        self.handlers.fill(message.header)
        return message

    def LeaseKeepAlive(
        self, requests: Iterator[rpc_pb2.LeaseKeepAliveRequest], context: grpc.ServicerContext
    ) -> Iterator[rpc_pb2.LeaseKeepAliveResponse]:
        for request in requests:
            forwarded = self.handlers.forwarder.forward(
                lambda channel, timeout: list(
                    rpc_pb2_grpc.LeaseStub(channel).LeaseKeepAlive(
                        iter([request]),  # noqa: B023 (called before the loop moves on)
                        timeout=timeout,
                    )
                ),
                context,
            )
            if forwarded is not None:
                for answer in forwarded:
                    self._own_header(answer.header)
                    yield answer
                continue
            spec_request = lease.LeaseKeepAliveRequest(ID=request.ID)  # type: ignore[arg-type]
            keep = partial(_keep_alive, self.handlers.node, spec_request)
            response: Any = self.handlers.wait(self.handlers.node.call(keep), context)
            message = rpc_pb2.LeaseKeepAliveResponse(ID=response.ID, TTL=response.TTL)
            self.handlers.fill(message.header)
            yield message

    def LeaseTimeToLive(
        self, request: rpc_pb2.LeaseTimeToLiveRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.LeaseTimeToLiveResponse:
        forwarded: rpc_pb2.LeaseTimeToLiveResponse | None = self.handlers.forwarder.forward(
            lambda channel, timeout: rpc_pb2_grpc.LeaseStub(channel).LeaseTimeToLive(
                request, timeout=timeout
            ),
            context,
        )
        if forwarded is not None:
            self._own_header(forwarded.header)
            return forwarded
        node = self.handlers.node
        spec_request = lease.LeaseTimeToLiveRequest(ID=request.ID, keys=request.keys)  # type: ignore[arg-type]
        response: Any = self.handlers.wait(
            node.call(
                lambda: lease.time_to_live(
                    node.keyspace, node.leases, spec_request, time.monotonic()
                )
            ),
            context,
        )
        message = rpc_pb2.LeaseTimeToLiveResponse(
            ID=response.ID,
            TTL=response.TTL,
            grantedTTL=response.grantedTTL,
            keys=list(response.keys),
        )
        self.handlers.fill(message.header)
        return message

    def LeaseLeases(
        self, request: rpc_pb2.LeaseLeasesRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.LeaseLeasesResponse:
        node = self.handlers.node
        response: Any = self.handlers.wait(
            node.call(lambda: lease.lease_list(node.keyspace, node.leases)), context
        )
        message = rpc_pb2.LeaseLeasesResponse(
            leases=[rpc_pb2.LeaseStatus(ID=status.ID) for status in response.leases]
        )
        self.handlers.fill(message.header)
        return message


class WatchService(rpc_pb2_grpc.WatchServicer):
    """One stream per call: requests are read on a helper thread and carried out on the raft
    loop; responses are sent in the order the loop produced them. A client half-close ends
    only the reading: the watches keep running until the call ends (facts §0 item 8)."""

    def __init__(self, handlers: _Handlers) -> None:
        self.handlers = handlers

    def Watch(
        self, requests: Iterator[rpc_pb2.WatchRequest], context: grpc.ServicerContext
    ) -> Iterator[rpc_pb2.WatchResponse]:
        node = self.handlers.node
        stream: Any = self.handlers.wait(node.call(node.open_watch_stream), context)
        threading.Thread(
            target=self._read_requests, args=(requests, stream, context), daemon=True
        ).start()
        try:
            while context.is_active():
                try:
                    response = stream.responses.get(timeout=0.5)
                except queue.Empty:
                    continue
                for piece in self._pieces(stream, response):
                    yield self._response_out(piece)
        finally:
            node.call(partial(node.close_watch_stream, stream))

    def _pieces(
        self, stream: Any, response: watch.WatchResponse
    ) -> tuple[watch.WatchResponse, ...]:
        """A response bigger than the request limit goes in fragments when its watch asked for
        them (etcd v3rpc sendFragments, limit --max-request-bytes plus gRPC overhead)."""
        if response.watch_id not in stream.fragmenting or len(response.events) < 2:
            return (response,)
        limit = self.handlers.node.config.max_request_bytes + constants.grpc_overhead_bytes
        event_sizes = {id(event): convert.event_out(event).ByteSize() for event in response.events}
        empty_size = self._response_out(attrs.evolve(response, events=(), fragment=True)).ByteSize()

        def size_bytes(piece: watch.WatchResponse) -> int:
            # The protobuf size of the piece, from each event's size measured once.
            return empty_size + sum(
                1 + varint_size(event_sizes[id(event)]) + event_sizes[id(event)]
                for event in piece.events
            )

        return watch.fragment(response, size_bytes, limit)

    def _read_requests(
        self, requests: Iterator[rpc_pb2.WatchRequest], stream: Any, context: grpc.ServicerContext
    ) -> None:
        node = self.handlers.node
        try:
            for request in requests:
                kind = request.WhichOneof("request_union")
                if kind == "create_request":
                    create = request.create_request
                    spec_request = watch.WatchCreateRequest(
                        key=create.key,
                        range_end=create.range_end,
                        start_revision=create.start_revision,  # type: ignore[arg-type]
                        progress_notify=create.progress_notify,
                        filters=tuple(watch.FilterType(item) for item in create.filters),
                        prev_kv=create.prev_kv,
                        watch_id=create.watch_id,
                        fragment=create.fragment,
                    )
                    node.call(partial(node.create_watch, stream, spec_request))
                elif kind == "cancel_request":
                    node.call(partial(node.cancel_watch, stream, request.cancel_request.watch_id))
                elif kind == "progress_request":
                    node.call(partial(node.watch_progress, stream))
        except (grpc.RpcError, ValueError):
            context.cancel()  # type: ignore[no-untyped-call]

    def _response_out(self, response: watch.WatchResponse) -> rpc_pb2.WatchResponse:
        node = self.handlers.node
        message = rpc_pb2.WatchResponse(
            header=convert.header_out(response.header),
            watch_id=response.watch_id,
            created=response.created,
            canceled=response.canceled,
            compact_revision=response.compact_revision,
            cancel_reason=response.cancel_reason,
            fragment=response.fragment,
            events=[convert.event_out(event) for event in response.events],
        )
        message.header.cluster_id = node.cluster_id
        message.header.member_id = node.member_id
        message.header.raft_term = node.term
        return message


def varint_size(value: int) -> int:
    """Bytes of `value` as a protobuf varint (7 bits a byte)."""
    return max(1, (value.bit_length() + 6) // 7)


def _keep_alive(node: Node, request: lease.LeaseKeepAliveRequest) -> object:
    """Restart a lease's TTL; runs on the raft loop, which owns `node.leases`."""
    response, node.leases = lease.keep_alive(node.leases, request, time.monotonic())
    return response


def _unimplemented(context: grpc.ServicerContext) -> NoReturn:
    context.abort(grpc.StatusCode.UNIMPLEMENTED, "not implemented by etcdref yet")
    raise AssertionError("unreachable")


class MaintenanceService(rpc_pb2_grpc.MaintenanceServicer):
    def __init__(self, handlers: _Handlers) -> None:
        self.handlers = handlers

    def Status(
        self, request: rpc_pb2.StatusRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.StatusResponse:
        node = self.handlers.node
        errors = [] if node.leader is not None else [EtcdError.NO_LEADER.message]
        errors += [member.text() for member in node.alarms.active]
        return rpc_pb2.StatusResponse(
            header=self.handlers.header_pb(),
            version=SERVER_VERSION,
            dbSize=node.keyspace.size_bytes(),
            leader=node.leader or 0,
            raftIndex=node.commit_index,
            raftTerm=node.term,
            raftAppliedIndex=node.applied_index,
            errors=errors,
            dbSizeInUse=node.keyspace.size_in_use_bytes(),
            isLearner=node.is_learner,
        )

    def Alarm(
        self, request: rpc_pb2.AlarmRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.AlarmResponse:
        """Every alarm request, GET included, goes through Raft, as in etcd; the answer has no header."""
        try:
            spec_request = AlarmRequest(
                AlarmAction(request.action), request.memberID, AlarmType(request.alarm)
            )
        except ValueError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        response = self.handlers.write(spec_request, context)
        assert isinstance(response, AlarmResponse)
        return rpc_pb2.AlarmResponse(
            alarms=[
                rpc_pb2.AlarmMember(memberID=member.member_id, alarm=int(member.alarm))  # type: ignore[arg-type]
                for member in response.alarms
            ]
        )

    def Defragment(
        self, request: rpc_pb2.DefragmentRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.DefragmentResponse:
        node = self.handlers.node
        self.handlers.wait(node.call(node.keyspace.defragment), context)
        return rpc_pb2.DefragmentResponse(header=self.handlers.header_pb())

    def Hash(
        self, request: rpc_pb2.HashRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.HashResponse:
        node = self.handlers.node
        header: list[rpc_pb2.ResponseHeader] = []

        def hash_now() -> int:
            header.append(self.handlers.header_pb())  # the revision the hash covers
            return backend_hash(node.keyspace)

        result = self.handlers.wait(node.call(hash_now), context)
        assert isinstance(result, int)
        return rpc_pb2.HashResponse(header=header[0], hash=result)

    def HashKV(
        self, request: rpc_pb2.HashKVRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.HashKVResponse:
        node = self.handlers.node
        revision = Revision(request.revision)
        result = self.handlers.wait(
            node.call(lambda: hash_keyspace(node.keyspace, revision)), context
        )
        assert isinstance(result, KeyspaceHash)
        return rpc_pb2.HashKVResponse(
            header=self.handlers.header_pb(),
            hash=result.hash,
            compact_revision=result.compact_revision,
        )

    def Snapshot(
        self, request: rpc_pb2.SnapshotRequest, context: grpc.ServicerContext
    ) -> Iterator[rpc_pb2.SnapshotResponse]:
        node = self.handlers.node
        copied = self.handlers.wait(
            node.call(lambda: copy_keyspace(node.keyspace, node.member_dir / "snap")), context
        )
        assert isinstance(copied, Path)
        try:
            for remaining, blob in snapshot_chunks(copied):
                yield rpc_pb2.SnapshotResponse(
                    header=self.handlers.header_pb(), remaining_bytes=remaining, blob=blob
                )
        finally:
            copied.unlink(missing_ok=True)

    def MoveLeader(
        self, request: rpc_pb2.MoveLeaderRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.MoveLeaderResponse:
        """etcd: only the leader moves leadership; then it waits, polling every heartbeat, until
        the target leads (or answers `etcdserver: request timed out` after the request timeout)."""
        node = self.handlers.node
        if not node.is_leader:
            abort(context, EtcdError.NOT_LEADER)
        target = request.targetID
        if target not in {member.member_id for member in node.members}:
            abort(context, EtcdError.BAD_LEADER_TRANSFEREE)
        self.handlers.wait(node.transfer_leadership(target), context)
        deadline = time.monotonic() + self.handlers.request_timeout_seconds
        interval = node.config.heartbeat_interval_ms / 1000
        while node.leader != target:
            if time.monotonic() > deadline:
                abort(context, EtcdError.TIMEOUT)
            time.sleep(interval)
        return rpc_pb2.MoveLeaderResponse(header=self.handlers.header_pb())

    def Downgrade(self, request: Any, context: grpc.ServicerContext) -> NoReturn:
        _unimplemented(context)


class ClusterService(rpc_pb2_grpc.ClusterServicer):
    """Member changes are decided by the leader, which alone knows how its followers are doing
    (etcd 3.4 forwards a promote to it for that reason); a follower forwards every change to the
    leader's client URL. MemberList answers from this member's table, as etcd 3.4 does."""

    def __init__(self, handlers: _Handlers) -> None:
        self.handlers = handlers

    def _change(
        self, method: str, request: Any, change: MemberRequest, context: grpc.ServicerContext
    ) -> Any:
        """The leader makes the change and answers with the members after it (and the member
        itself, for an add); a follower forwards the call to the leader."""
        forwarded = self.handlers.forwarder.forward(
            lambda channel, timeout: getattr(rpc_pb2_grpc.ClusterStub(channel), method)(
                request, timeout=timeout
            ),
            context,
            retry=False,  # a change must not be made twice
        )
        if forwarded is not None:
            return forwarded
        result = self.handlers.wait(self.handlers.node.change_membership(change), context)
        assert isinstance(result, MembershipChanged)
        response = getattr(rpc_pb2, f"{method}Response")(
            header=self.handlers.cluster_header_pb(),
            members=[self._member_out(member) for member in result.members],
        )
        if method == "MemberAdd":
            response.member.CopyFrom(self._member_out(result.member))
        return response

    @staticmethod
    def _member_out(member: Member) -> rpc_pb2.Member:
        return rpc_pb2.Member(
            ID=member.member_id,
            name=member.name,
            peerURLs=list(member.peer_urls),
            clientURLs=list(member.client_urls),
            isLearner=member.is_learner,
        )

    def MemberList(
        self, request: rpc_pb2.MemberListRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.MemberListResponse:
        members = [self._member_out(member) for member in self.handlers.node.member_table.members]
        return rpc_pb2.MemberListResponse(header=self.handlers.cluster_header_pb(), members=members)

    def MemberAdd(
        self, request: rpc_pb2.MemberAddRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.MemberAddResponse:
        peer_urls = tuple(request.peerURLs)
        if not valid_peer_urls(peer_urls):
            abort(context, EtcdError.MEMBER_BAD_URLS)
        change = MemberRequest("add", 0, peer_urls, request.isLearner)
        response: rpc_pb2.MemberAddResponse = self._change("MemberAdd", request, change, context)
        return response

    def MemberRemove(
        self, request: rpc_pb2.MemberRemoveRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.MemberRemoveResponse:
        change = MemberRequest("remove", request.ID)
        response: rpc_pb2.MemberRemoveResponse = self._change(
            "MemberRemove", request, change, context
        )
        return response

    def MemberUpdate(
        self, request: rpc_pb2.MemberUpdateRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.MemberUpdateResponse:
        peer_urls = tuple(request.peerURLs)
        if not valid_peer_urls(peer_urls):
            abort(context, EtcdError.MEMBER_BAD_URLS)
        change = MemberRequest("update", request.ID, peer_urls)
        response: rpc_pb2.MemberUpdateResponse = self._change(
            "MemberUpdate", request, change, context
        )
        return response

    def MemberPromote(
        self, request: rpc_pb2.MemberPromoteRequest, context: grpc.ServicerContext
    ) -> rpc_pb2.MemberPromoteResponse:
        change = MemberRequest("promote", request.ID)
        response: rpc_pb2.MemberPromoteResponse = self._change(
            "MemberPromote", request, change, context
        )
        return response


_SERVED_TO_LEARNERS = frozenset(
    {"/etcdserverpb.Maintenance/Status", "/etcdserverpb.Maintenance/Snapshot"}
)
_RANGE_METHOD = "/etcdserverpb.KV/Range"


if TYPE_CHECKING:
    _ServerInterceptor = grpc.ServerInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.ServerInterceptor  # not subscriptable at run time


class LearnerGuard(_ServerInterceptor):
    """etcd 3.4's interceptors: a learner serves only Status, serializable Range and the
    Snapshot stream; every other etcd RPC gets `etcdserver: rpc not supported for learner`
    (checked against etcd 3.4.23: put, get, member list, lease grant, hashkv, defrag...)."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        method: str = details.method
        if (
            handler is None
            or not method.startswith("/etcdserverpb.")
            or method in _SERVED_TO_LEARNERS
        ):
            return handler
        node = self.node
        if handler.unary_unary is not None:
            unary_behavior = handler.unary_unary

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                if node.is_learner and not (method == _RANGE_METHOD and request.serializable):
                    abort(context, EtcdError.NOT_SUPPORTED_FOR_LEARNER)
                return unary_behavior(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.stream_stream is not None:
            stream_behavior = handler.stream_stream

            def streams(requests: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                if node.is_learner:
                    abort(context, EtcdError.NOT_SUPPORTED_FOR_LEARNER)
                yield from stream_behavior(requests, context)

            return grpc.stream_stream_rpc_method_handler(
                streams, handler.request_deserializer, handler.response_serializer
            )
        return handler


class HealthService(health_pb2_grpc.HealthServicer):
    def __init__(self, node: Node) -> None:
        self.node = node

    def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        serving = health_pb2.HealthCheckResponse.SERVING
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        return health_pb2.HealthCheckResponse(
            status=serving if self.node.leader is not None else not_serving
        )

    def Watch(self, request: Any, context: grpc.ServicerContext) -> NoReturn:
        _unimplemented(context)


class ClientServer:
    """What `serve` started: the gRPC server on an internal loopback port, and the front on the
    client addresses that relays gRPC to it and answers HTTP/1.1 with the JSON gateway."""

    def __init__(
        self, grpc_server: grpc.Server, front: ClientFront, gateway: Gateway, grpc_port: int
    ) -> None:
        self.grpc_server = grpc_server
        self.front = front
        self.gateway = gateway
        self.grpc_port = grpc_port

    def stop(self, grace: float | None) -> threading.Event:
        self.front.stop()
        self.gateway.close()
        return self.grpc_server.stop(grace)


def split_host_port(address: str) -> tuple[str, int]:
    """`host:port` (IPv6 hosts in brackets) as a pair; ValueError when it is not one."""
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def serve(node: Node, listen_addresses: list[str]) -> ClientServer:
    """Serve `node`'s clients on each `host:port`: gRPC and the JSON gateway on the same port,
    as etcd does (impl/api/front.py); raises OSError when a port is taken."""
    try:
        addresses = [split_host_port(address) for address in listen_addresses]
    except ValueError:
        raise OSError(f"cannot listen for clients on {listen_addresses}: not host:port") from None
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=GRPC_THREADS_MAX, thread_name_prefix="grpc"),
        options=grpc_options(node.config.max_request_bytes),
        interceptors=[LearnerGuard(node)],
    )
    handlers = _Handlers(node)
    rpc_pb2_grpc.add_KVServicer_to_server(KeyValueService(handlers), server)
    rpc_pb2_grpc.add_WatchServicer_to_server(WatchService(handlers), server)
    rpc_pb2_grpc.add_LeaseServicer_to_server(LeaseService(handlers), server)
    rpc_pb2_grpc.add_MaintenanceServicer_to_server(MaintenanceService(handlers), server)
    rpc_pb2_grpc.add_ClusterServicer_to_server(ClusterService(handlers), server)
    health_pb2_grpc.add_HealthServicer_to_server(HealthService(node), server)
    try:
        grpc_port = server.add_insecure_port(f"{INTERNAL_GRPC_HOST}:0")
    except RuntimeError as error:
        raise OSError(f"cannot listen for gRPC on {INTERNAL_GRPC_HOST}: {error}") from None
    server.start()
    metrics = NodeMetrics(node)
    metrics.instrument()
    gateway = Gateway(node, f"{INTERNAL_GRPC_HOST}:{grpc_port}", metrics)
    front = ClientFront(addresses, (INTERNAL_GRPC_HOST, grpc_port), gateway.handle, node.ready)
    try:
        front.start()
    except OSError as error:
        gateway.close()
        server.stop(None)
        raise OSError(
            f"cannot listen for clients on {','.join(listen_addresses)}: {error}"
        ) from None
    logging.getLogger("etcdref.api").info(
        "gRPC served on internal port %s:%d behind the client port", INTERNAL_GRPC_HOST, grpc_port
    )
    return ClientServer(server, front, gateway, grpc_port)
