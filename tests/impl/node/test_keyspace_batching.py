"""The keyspace's batch is committed every 100 ms, not after each apply (as etcd's backend):
a member killed with acknowledged writes still in the batch replays them from its WAL on
restart, each exactly once."""

from __future__ import annotations

from pathlib import Path

import grpc

from etcdpb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.impl.node.harness import EtcdrefCluster

WRITES = 200


def test_a_killed_member_keeps_every_acknowledged_write_once(tmp_path: Path) -> None:
    with EtcdrefCluster(tmp_path, size=1) as cluster:
        with grpc.insecure_channel(cluster.endpoints[0]) as channel:
            kv = rpc_pb2_grpc.KVStub(channel)
            for number in range(WRITES):
                kv.Put(rpc_pb2.PutRequest(key=b"k%04d" % number, value=b"v"), timeout=10)
        cluster.kill(0)  # at once: the last writes are in the WAL, not yet in the keyspace file
        cluster.spawn(0)
        cluster.wait_for_leader()
        with grpc.insecure_channel(cluster.endpoints[0]) as channel:
            answer = rpc_pb2_grpc.KVStub(channel).Range(
                rpc_pb2.RangeRequest(key=b"k", range_end=b"l", keys_only=True), timeout=10
            )
    assert [kv.key for kv in answer.kvs] == [b"k%04d" % number for number in range(WRITES)]
    assert answer.header.revision == 1 + WRITES, "a write was applied twice or lost"
