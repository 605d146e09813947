"""Calls a follower sends on to the leader: lease keep-alive and time-to-live, member changes.

Only the leader knows when a lease expires, so a follower forwards what needs that knowledge,
as etcd 3.4 does (`etcdserver/v3_server.go` LeaseRenew, LeaseTimeToLive, waitLeader): the
call gets the request timeout (5 s + 2 election timeouts, or the client's deadline if nearer);
within it the follower waits for a leader, sends the call to it, and when that leader cannot be
reached (it was just killed) tries again, 50 ms later, at whoever leads by then. What a leader
answers, error or not, is final. When the time is up the client gets etcd's error:
`etcdserver: no leader` if it was waiting for a leader, else `etcdserver: request timed out`;
never a Python exception text.

etcd forwards to the leader's peer URLs; etcdref forwards the gRPC call itself to the leader's
published client URL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, NoReturn, TypeVar

import grpc

from spec.errors import EtcdError

if TYPE_CHECKING:
    from impl.node.node import Node

RETRY_PAUSE_SECONDS: Final = 0.05  # etcd LeaseRenew's pause between attempts
T = TypeVar("T")
Abort = Callable[[grpc.ServicerContext, EtcdError], NoReturn]
# Codes that mean "the leader did not answer": it is gone, or no longer leads.
_LEADER_UNREACHABLE: Final = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
)


class LeaderForwarder:
    """Channels to the leader's client address, and the wait-and-retry loop around a call."""

    def __init__(self, node: Node, request_timeout_seconds: float, abort: Abort) -> None:
        self.node = node
        self.request_timeout_seconds = request_timeout_seconds
        self._abort = abort
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()

    def forward(
        self,
        send: Callable[[grpc.Channel, float], T],
        context: grpc.ServicerContext,
        *,
        retry: bool = True,
    ) -> T | None:
        """`send(channel, timeout_seconds)` at the leader, retried as the module doc says; None
        when this member leads (the caller answers itself). With `retry` False (a member change,
        which must not be made twice) a leader lost after the call was sent is reported as
        `etcdserver: leader changed` instead of tried again."""
        deadline = time.monotonic() + self._time_allowed(context)
        while context.is_active():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if self.node.is_leader:
                return None
            address = self._leader_address()
            if address is None:
                time.sleep(min(self.node.config.heartbeat_interval_ms / 1000, remaining))
                continue
            try:
                return send(self._channel(address), remaining)
            except grpc.RpcError as error:
                self._leader_failed(address, error, context, retry)
            time.sleep(min(RETRY_PAUSE_SECONDS, max(0.0, deadline - time.monotonic())))
        # etcd: time up while waiting for a leader (waitLeader) or while sending to one
        no_leader = self._leader_address() is None
        self._abort(context, EtcdError.NO_LEADER if no_leader else EtcdError.TIMEOUT)

    def _time_allowed(self, context: grpc.ServicerContext) -> float:
        # grpcio gives a huge remaining time when the client set no deadline
        return min(self.request_timeout_seconds, context.time_remaining())

    def _leader_address(self) -> str | None:
        """The leader's first published client address (None: no leader, or not published)."""
        leader = self.node.leader
        urls = self.node.client_urls.get(leader or 0) if leader else None
        return urls[0].split("://", 1)[-1] if urls else None

    def _channel(self, address: str) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(address)
            if channel is None:
                channel = self._channels[address] = grpc.insecure_channel(address)
            return channel

    def _leader_failed(
        self, address: str, error: grpc.RpcError, context: grpc.ServicerContext, retry: bool
    ) -> None:
        """Return when the call may be tried again; otherwise end it with the leader's answer."""
        code: grpc.StatusCode = error.code()
        details: str = error.details() or ""
        if code not in _LEADER_UNREACHABLE:
            context.abort(code, details)  # the leader's own answer, in etcd's words
        from_etcd = details.startswith("etcdserver:")
        if not from_etcd:
            self._forget_channel(address)
        if retry:
            return
        if from_etcd:
            context.abort(code, details)
        self._abort(context, EtcdError.LEADER_CHANGED)

    def _forget_channel(self, address: str) -> None:
        """The next call gets a fresh channel, without grpc's reconnect backoff (up to 2 min)
        for a leader that comes back. Not closed: other calls may still be using it."""
        with self._lock:
            self._channels.pop(address, None)
