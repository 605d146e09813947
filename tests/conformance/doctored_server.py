"""A gRPC server that forwards to real etcd, optionally broken in one known way.

Used to show that the suite catches a broken server and names the right check:

* `rewrite_range_version`: every Range answer reports each key's version one too high
  (one response field rewritten);
* `drop_every_nth_put`: every n-th Put is acknowledged with a made-up revision and never
  forwarded (an acknowledged write lost);
* `reverse_watch_events`: a watch response with several events carries them reversed
  (events reordered within a revision);
* `ignore_range_revision`: a Range is served at the latest revision whatever revision it
  asked for (no multi-version reads);
* `acknowledge_revoke_only`: LeaseRevoke answers success without revoking anything;
* `serve_leases`: when false, the Lease service is not registered, so every lease RPC is
  answered Unimplemented (a server without leases);
* `rewrite_granted_ttl`: LeaseTimeToLive reports the granted TTL one second too long;
* `shorten_remaining_ttl_seconds`: LeaseTimeToLive reports that many seconds less remaining
  (a lease that runs down too fast);
* `hide_first_lease`: LeaseLeases leaves out the lease with the lowest id;
* `drop_watch_prev_kv`: watch events arrive without their prev_kv.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc

from etcdpb.etcdserverpb import rpc_pb2, rpc_pb2_grpc


def forward(method: Any, request: Any, context: Any, timeout_seconds: float) -> Any:
    """Call etcd; pass its error (code and description) back unchanged, as a proxy should."""
    try:
        return method(request, timeout=timeout_seconds)
    except grpc.RpcError as error:
        context.abort(error.code(), error.details())


@dataclass
class Breakage:
    rewrite_range_version: bool = False
    drop_every_nth_put: int = 0
    reverse_watch_events: bool = False
    ignore_range_revision: bool = False
    acknowledge_revoke_only: bool = False
    serve_leases: bool = True
    rewrite_granted_ttl: bool = False
    shorten_remaining_ttl_seconds: int = 0
    hide_first_lease: bool = False
    drop_watch_prev_kv: bool = False


class ForwardingKV(rpc_pb2_grpc.KVServicer):
    def __init__(self, target: rpc_pb2_grpc.KVStub, breakage: Breakage) -> None:
        self.target = target
        self.breakage = breakage
        self.puts = 0
        self.lock = threading.Lock()

    def Range(self, request: rpc_pb2.RangeRequest, context: Any) -> rpc_pb2.RangeResponse:
        if self.breakage.ignore_range_revision:
            request.revision = 0
        response: rpc_pb2.RangeResponse = forward(self.target.Range, request, context, 5)
        if self.breakage.rewrite_range_version:
            for key_value in response.kvs:
                key_value.version += 1
        return response

    def Put(self, request: rpc_pb2.PutRequest, context: Any) -> rpc_pb2.PutResponse:
        with self.lock:
            self.puts += 1
            drop = (
                self.breakage.drop_every_nth_put
                and self.puts % self.breakage.drop_every_nth_put == 0
            )
        if drop:
            current = self.target.Range(
                rpc_pb2.RangeRequest(key=b"\x00", count_only=True), timeout=5
            )
            return rpc_pb2.PutResponse(
                header=rpc_pb2.ResponseHeader(revision=current.header.revision + 1)
            )
        response: rpc_pb2.PutResponse = forward(self.target.Put, request, context, 5)
        return response

    def DeleteRange(
        self, request: rpc_pb2.DeleteRangeRequest, context: Any
    ) -> rpc_pb2.DeleteRangeResponse:
        response: rpc_pb2.DeleteRangeResponse = forward(
            self.target.DeleteRange, request, context, 5
        )
        return response

    def Txn(self, request: rpc_pb2.TxnRequest, context: Any) -> rpc_pb2.TxnResponse:
        response: rpc_pb2.TxnResponse = forward(self.target.Txn, request, context, 5)
        return response

    def Compact(
        self, request: rpc_pb2.CompactionRequest, context: Any
    ) -> rpc_pb2.CompactionResponse:
        response: rpc_pb2.CompactionResponse = forward(self.target.Compact, request, context, 10)
        return response


class ForwardingWatch(rpc_pb2_grpc.WatchServicer):
    def __init__(self, target: rpc_pb2_grpc.WatchStub, breakage: Breakage) -> None:
        self.target = target
        self.breakage = breakage

    def Watch(
        self, request_iterator: Iterator[rpc_pb2.WatchRequest], context: Any
    ) -> Iterator[rpc_pb2.WatchResponse]:
        responses = self.target.Watch(request_iterator)
        context.add_callback(responses.cancel)
        for response in responses:
            if self.breakage.reverse_watch_events and len(response.events) > 1:
                events = list(response.events)[::-1]
                del response.events[:]
                response.events.extend(events)
            if self.breakage.drop_watch_prev_kv:
                for event in response.events:
                    event.ClearField("prev_kv")
            yield response


class ForwardingLease(rpc_pb2_grpc.LeaseServicer):
    def __init__(self, target: rpc_pb2_grpc.LeaseStub, breakage: Breakage) -> None:
        self.target = target
        self.breakage = breakage

    def LeaseGrant(self, request: Any, context: Any) -> Any:
        return forward(self.target.LeaseGrant, request, context, 5)

    def LeaseRevoke(self, request: Any, context: Any) -> Any:
        if self.breakage.acknowledge_revoke_only:
            return rpc_pb2.LeaseRevokeResponse()
        return forward(self.target.LeaseRevoke, request, context, 5)

    def LeaseTimeToLive(self, request: Any, context: Any) -> Any:
        response = forward(self.target.LeaseTimeToLive, request, context, 5)
        if response.TTL > 0:
            response.grantedTTL += int(self.breakage.rewrite_granted_ttl)
            response.TTL -= self.breakage.shorten_remaining_ttl_seconds
        return response

    def LeaseLeases(self, request: Any, context: Any) -> Any:
        response = forward(self.target.LeaseLeases, request, context, 5)
        if self.breakage.hide_first_lease and response.leases:
            kept = sorted(response.leases, key=lambda lease: lease.ID)[1:]
            del response.leases[:]
            response.leases.extend(kept)
        return response

    def LeaseKeepAlive(self, request_iterator: Any, context: Any) -> Any:
        responses = self.target.LeaseKeepAlive(request_iterator)
        context.add_callback(responses.cancel)
        yield from responses


class ForwardingMaintenance(rpc_pb2_grpc.MaintenanceServicer):
    def __init__(self, target: rpc_pb2_grpc.MaintenanceStub) -> None:
        self.target = target

    def Status(self, request: Any, context: Any) -> Any:
        return forward(self.target.Status, request, context, 5)

    def HashKV(self, request: Any, context: Any) -> Any:
        return forward(self.target.HashKV, request, context, 5)


class ForwardingCluster(rpc_pb2_grpc.ClusterServicer):
    def __init__(self, target: rpc_pb2_grpc.ClusterStub) -> None:
        self.target = target

    def MemberList(self, request: Any, context: Any) -> Any:
        return forward(self.target.MemberList, request, context, 5)


class DoctoredServer:
    """Listens on a free loopback port; `endpoint` is where to point the suite."""

    def __init__(self, etcd_endpoint: str, breakage: Breakage) -> None:
        self.channel = grpc.insecure_channel(etcd_endpoint)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
        rpc_pb2_grpc.add_KVServicer_to_server(
            ForwardingKV(rpc_pb2_grpc.KVStub(self.channel), breakage), self.server
        )
        rpc_pb2_grpc.add_WatchServicer_to_server(
            ForwardingWatch(rpc_pb2_grpc.WatchStub(self.channel), breakage), self.server
        )
        if breakage.serve_leases:
            rpc_pb2_grpc.add_LeaseServicer_to_server(
                ForwardingLease(rpc_pb2_grpc.LeaseStub(self.channel), breakage), self.server
            )
        rpc_pb2_grpc.add_MaintenanceServicer_to_server(
            # Only Status and HashKV are forwarded; grpcio answers the rest Unimplemented.
            ForwardingMaintenance(rpc_pb2_grpc.MaintenanceStub(self.channel)),  # type: ignore[abstract]
            self.server,
        )
        rpc_pb2_grpc.add_ClusterServicer_to_server(
            ForwardingCluster(rpc_pb2_grpc.ClusterStub(self.channel)),  # type: ignore[abstract]
            self.server,
        )
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"127.0.0.1:{port}"
        self.server.start()

    def close(self) -> None:
        self.server.stop(grace=None)
        self.channel.close()

    def __enter__(self) -> DoctoredServer:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()


def empty_grpc_server() -> tuple[grpc.Server, str]:
    """A gRPC server with no services at all: not an etcd server."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"
