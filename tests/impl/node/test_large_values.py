"""Values near the request limit reach every member: a follower that was down while several
such values were written gets them all in appends (etcd bounds an append by bytes, at least one
entry; here a frame must hold the largest append the leader may send), and every member then
reports the same keyspace revision."""

from __future__ import annotations

import time
from pathlib import Path

import grpc

from etcdpb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.impl.node.harness import EtcdrefCluster

VALUE_BYTES = 1_400_000  # under the default --max-request-bytes of 1.5 MiB
WRITES = 8  # together over the old 8 MiB frame limit once base64-encoded
WAIT_SECONDS = 30.0


def revision(endpoint: str) -> int | None:
    with grpc.insecure_channel(endpoint) as channel:
        try:
            status = rpc_pb2_grpc.MaintenanceStub(channel).Status(
                rpc_pb2.StatusRequest(), timeout=2
            )
            response = rpc_pb2_grpc.KVStub(channel).Range(
                rpc_pb2.RangeRequest(key=b"k", serializable=True), timeout=2
            )
        except grpc.RpcError:
            return None
    return response.header.revision if status.raftAppliedIndex else None


def test_a_restarted_follower_receives_values_near_the_request_limit(tmp_path: Path) -> None:
    with EtcdrefCluster(tmp_path) as cluster:
        leader = cluster.wait_for_leader()
        follower = next(index for index in range(cluster.size) if index != leader)
        cluster.kill(follower)
        with grpc.insecure_channel(
            cluster.endpoints[leader], options=[("grpc.max_send_message_length", 4 << 20)]
        ) as channel:
            kv = rpc_pb2_grpc.KVStub(channel)
            for number in range(WRITES):
                kv.Put(rpc_pb2.PutRequest(key=b"big/%d" % number, value=b"x" * VALUE_BYTES))
        expected = revision(cluster.endpoints[leader])
        cluster.spawn(follower)
        deadline = time.monotonic() + WAIT_SECONDS
        while revision(cluster.endpoints[follower]) != expected and time.monotonic() < deadline:
            time.sleep(0.5)
        assert revision(cluster.endpoints[follower]) == expected, cluster.log_tail(follower)
