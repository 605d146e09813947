"""A typed etcd v3 client over grpcio that never retries anything by itself.

Every call has an explicit deadline and makes exactly one attempt: gRPC's own retry support
is switched off on the channel, and nothing here loops. A client that silently retried a
non-idempotent write would manufacture anomalies (a put applied twice looks like a lost
update); Jepsen's etcd 3.4.3 reports that etcd's maintainers rejected turned out to be caused
by exactly that (etcd#18424, jetcd#1445). A failed or timed-out write is therefore reported to
the caller as it is, and the history recorder marks it indeterminate.

A failed call raises `RequestFailed` with the gRPC status code and the server's exact
description string, which is what etcd's clients match on.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Final, TypeVar

import grpc

from etcdpb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from etcdpb.grpc_health.v1 import health_pb2, health_pb2_grpc

DEFAULT_TIMEOUT_SECONDS: Final = 2.0
# Keep-alive settings that real etcd's enforcement policy (min 5 s) accepts; no gRPC retries.
CHANNEL_OPTIONS: Final = (
    ("grpc.enable_retries", 0),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
)

Request = TypeVar("Request")
Response = TypeVar("Response")


class RequestFailed(Exception):
    """One RPC failed: the gRPC status code and the server's description, verbatim."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{method}: {code.name}: {details}")
        self.method = method
        self.code = code
        self.details = details

    @property
    def unsupported(self) -> bool:
        """The server does not implement this RPC (reported as unsupported, not failed)."""
        return self.code == grpc.StatusCode.UNIMPLEMENTED

    @property
    def deadline_exceeded(self) -> bool:
        return self.code == grpc.StatusCode.DEADLINE_EXCEEDED


def normalize_endpoint(endpoint: str) -> str:
    """`http://127.0.0.1:2379` or `127.0.0.1:2379` -> `127.0.0.1:2379` (plaintext only)."""
    for scheme in ("http://", "grpc://"):
        if endpoint.startswith(scheme):
            endpoint = endpoint[len(scheme) :]
    if endpoint.startswith("https://"):
        raise ValueError(f"TLS endpoints are not supported yet: {endpoint}")
    endpoint = endpoint.rstrip("/")
    if ":" not in endpoint:
        raise ValueError(f"endpoint needs host:port, got {endpoint!r}")
    return endpoint


def call_once(
    method: str,
    function: Callable[..., Response],
    request: object,
    timeout_seconds: float,
) -> Response:
    """Make exactly one attempt at a unary RPC, turning a gRPC error into RequestFailed."""
    try:
        return function(request, timeout=timeout_seconds)
    except grpc.RpcError as error:
        raise as_request_failed(method, error) from None


def as_request_failed(method: str, error: grpc.RpcError) -> RequestFailed:
    # grpcio raises objects that are both RpcError and Call; the stubs cannot express that.
    code = getattr(error, "code", None)
    details = getattr(error, "details", None)
    if callable(code) and callable(details):
        status = code()
        if isinstance(status, grpc.StatusCode):
            return RequestFailed(method, status, str(details() or ""))
    return RequestFailed(method, grpc.StatusCode.UNKNOWN, str(error))


def cancel_call(call: object) -> None:
    """Cancel a streaming call (grpcio's stream objects are untyped in the stubs)."""
    cancel = getattr(call, "cancel", None)
    if callable(cancel):
        cancel()


class EtcdClient:
    """One gRPC channel to one endpoint, with the six etcd services and the health service."""

    def __init__(self, endpoint: str, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.endpoint = normalize_endpoint(endpoint)
        self.timeout_seconds = timeout_seconds
        self.channel = grpc.insecure_channel(self.endpoint, options=CHANNEL_OPTIONS)
        self.kv = rpc_pb2_grpc.KVStub(self.channel)
        self.watch_service = rpc_pb2_grpc.WatchStub(self.channel)
        self.lease = rpc_pb2_grpc.LeaseStub(self.channel)
        self.cluster = rpc_pb2_grpc.ClusterStub(self.channel)
        self.maintenance = rpc_pb2_grpc.MaintenanceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> EtcdClient:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()

    def deadline(self, timeout_seconds: float | None) -> float:
        return self.timeout_seconds if timeout_seconds is None else timeout_seconds

    # --- KV ------------------------------------------------------------------------------------
    def range(
        self, request: rpc_pb2.RangeRequest, timeout_seconds: float | None = None
    ) -> rpc_pb2.RangeResponse:
        return call_once("Range", self.kv.Range, request, self.deadline(timeout_seconds))

    def put(
        self, request: rpc_pb2.PutRequest, timeout_seconds: float | None = None
    ) -> rpc_pb2.PutResponse:
        return call_once("Put", self.kv.Put, request, self.deadline(timeout_seconds))

    def delete_range(
        self, request: rpc_pb2.DeleteRangeRequest, timeout_seconds: float | None = None
    ) -> rpc_pb2.DeleteRangeResponse:
        return call_once("DeleteRange", self.kv.DeleteRange, request, self.deadline(timeout_seconds))

    def txn(
        self, request: rpc_pb2.TxnRequest, timeout_seconds: float | None = None
    ) -> rpc_pb2.TxnResponse:
        return call_once("Txn", self.kv.Txn, request, self.deadline(timeout_seconds))

    def compact(
        self, request: rpc_pb2.CompactionRequest, timeout_seconds: float | None = None
    ) -> rpc_pb2.CompactionResponse:
        return call_once("Compact", self.kv.Compact, request, self.deadline(timeout_seconds))

    def get(self, key: bytes, revision: int = 0) -> rpc_pb2.RangeResponse:
        return self.range(rpc_pb2.RangeRequest(key=key, revision=revision))

    # --- Lease ---------------------------------------------------------------------------------
    def lease_grant(
        self, request: rpc_pb2.LeaseGrantRequest, timeout_seconds: float | None = None
    ) -> rpc_pb2.LeaseGrantResponse:
        return call_once("LeaseGrant", self.lease.LeaseGrant, request, self.deadline(timeout_seconds))

    def lease_revoke(
        self, request: rpc_pb2.LeaseRevokeRequest, timeout_seconds: float | None = None
    ) -> rpc_pb2.LeaseRevokeResponse:
        return call_once(
            "LeaseRevoke", self.lease.LeaseRevoke, request, self.deadline(timeout_seconds)
        )

    def lease_time_to_live(
        self, request: rpc_pb2.LeaseTimeToLiveRequest, timeout_seconds: float | None = None
    ) -> rpc_pb2.LeaseTimeToLiveResponse:
        return call_once(
            "LeaseTimeToLive", self.lease.LeaseTimeToLive, request, self.deadline(timeout_seconds)
        )

    def lease_leases(self, timeout_seconds: float | None = None) -> rpc_pb2.LeaseLeasesResponse:
        return call_once(
            "LeaseLeases",
            self.lease.LeaseLeases,
            rpc_pb2.LeaseLeasesRequest(),
            self.deadline(timeout_seconds),
        )

    def lease_keep_alive_once(
        self, lease_id: int, timeout_seconds: float | None = None
    ) -> rpc_pb2.LeaseKeepAliveResponse:
        """Open a keep-alive stream, send one request, read one answer, close the stream."""
        requests = iter([rpc_pb2.LeaseKeepAliveRequest(ID=lease_id)])
        responses = self.lease.LeaseKeepAlive(requests, timeout=self.deadline(timeout_seconds))
        try:
            for response in responses:
                return response
        except grpc.RpcError as error:
            raise as_request_failed("LeaseKeepAlive", error) from None
        finally:
            cancel_call(responses)
        raise RequestFailed("LeaseKeepAlive", grpc.StatusCode.UNKNOWN, "stream ended without answer")

    # --- Cluster and maintenance ---------------------------------------------------------------
    def member_list(self, timeout_seconds: float | None = None) -> rpc_pb2.MemberListResponse:
        return call_once(
            "MemberList",
            self.cluster.MemberList,
            rpc_pb2.MemberListRequest(),
            self.deadline(timeout_seconds),
        )

    def status(self, timeout_seconds: float | None = None) -> rpc_pb2.StatusResponse:
        return call_once(
            "Status", self.maintenance.Status, rpc_pb2.StatusRequest(), self.deadline(timeout_seconds)
        )

    def hash_kv(self, revision: int, timeout_seconds: float | None = None) -> rpc_pb2.HashKVResponse:
        return call_once(
            "HashKV",
            self.maintenance.HashKV,
            rpc_pb2.HashKVRequest(revision=revision),
            self.deadline(timeout_seconds),
        )

    def health_check(
        self, timeout_seconds: float | None = None
    ) -> health_pb2.HealthCheckResponse:
        return call_once(
            "Health.Check",
            self.health.Check,
            health_pb2.HealthCheckRequest(),
            self.deadline(timeout_seconds),
        )

    # --- Watch ---------------------------------------------------------------------------------
    def open_watch_stream(self) -> WatchStream:
        return WatchStream(self.watch_service)


_END_OF_REQUESTS: Final = None


class WatchStream:
    """One bidirectional Watch stream: send create/cancel/progress requests, receive responses.

    A reader thread moves responses into a queue so `receive` can wait with a deadline.
    The stream ends when `close` cancels the call; nothing is ever re-sent.
    """

    def __init__(self, stub: rpc_pb2_grpc.WatchStub) -> None:
        self.requests: queue.Queue[rpc_pb2.WatchRequest | None] = queue.Queue()
        self.responses: queue.Queue[rpc_pb2.WatchResponse | RequestFailed | None] = queue.Queue()
        self.call = stub.Watch(self.request_iterator())
        self.reader = threading.Thread(target=self.read_responses, daemon=True)
        self.reader.start()

    def request_iterator(self) -> Iterator[rpc_pb2.WatchRequest]:
        while True:
            request = self.requests.get()
            if request is _END_OF_REQUESTS:
                return
            yield request

    def read_responses(self) -> None:
        try:
            for response in self.call:
                self.responses.put(response)
        except grpc.RpcError as error:
            self.responses.put(as_request_failed("Watch", error))
        self.responses.put(None)

    def send(self, request: rpc_pb2.WatchRequest) -> None:
        self.requests.put(request)

    def create(self, request: rpc_pb2.WatchCreateRequest) -> None:
        self.send(rpc_pb2.WatchRequest(create_request=request))

    def cancel(self, watch_id: int) -> None:
        self.send(rpc_pb2.WatchRequest(cancel_request=rpc_pb2.WatchCancelRequest(watch_id=watch_id)))

    def request_progress(self) -> None:
        self.send(rpc_pb2.WatchRequest(progress_request=rpc_pb2.WatchProgressRequest()))

    def receive(self, timeout_seconds: float) -> rpc_pb2.WatchResponse | None:
        """The next response, or None when none arrives in time. Raises if the stream failed."""
        try:
            item = self.responses.get(timeout=timeout_seconds)
        except queue.Empty:
            return None
        if isinstance(item, RequestFailed):
            self.responses.put(item)  # keep reporting the failure to later calls
            raise item
        if item is None:
            self.responses.put(None)
            raise RequestFailed("Watch", grpc.StatusCode.CANCELLED, "watch stream ended")
        return item

    def close(self) -> None:
        self.requests.put(_END_OF_REQUESTS)
        cancel_call(self.call)
        self.reader.join(timeout=5)

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()
