"""SIGKILL the leader of a three-member etcdref cluster during writes: a new leader is elected,
writes continue, the old member restarts from its data directory and catches up, and every
acknowledged write is on every member afterwards."""

from __future__ import annotations

import time
from pathlib import Path

import grpc

from etcdpb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.impl.node.harness import EtcdrefCluster

WRITES = 120
KILL_AFTER_WRITES = 40
DEADLINE_SECONDS = 60.0


def put_somewhere(stubs: list[rpc_pb2_grpc.KVStub], start: int, key: bytes, value: bytes) -> bool:
    """Try each member once, starting at `start`; True when one acknowledged the put."""
    for offset in range(len(stubs)):
        stub = stubs[(start + offset) % len(stubs)]
        try:
            stub.Put(rpc_pb2.PutRequest(key=key, value=value), timeout=3)
            return True
        except grpc.RpcError:
            continue
    return False


def read_all(stub: rpc_pb2_grpc.KVStub, serializable: bool = False) -> dict[bytes, bytes]:
    response = stub.Range(
        rpc_pb2.RangeRequest(key=b"k", range_end=b"l", serializable=serializable), timeout=5
    )
    return {item.key: item.value for item in response.kvs}


def test_acknowledged_writes_survive_a_killed_leader(tmp_path: Path) -> None:
    with EtcdrefCluster(tmp_path) as cluster:
        channels = [grpc.insecure_channel(endpoint) for endpoint in cluster.endpoints]
        stubs = [rpc_pb2_grpc.KVStub(channel) for channel in channels]
        old_leader = cluster.wait_for_leader()
        acknowledged: dict[bytes, bytes] = {}
        deadline = time.monotonic() + DEADLINE_SECONDS
        for number in range(WRITES):
            if number == KILL_AFTER_WRITES:
                cluster.kill(old_leader)
            key, value = b"k%04d" % number, b"v%d" % number
            while time.monotonic() < deadline:
                if put_somewhere(stubs, number, key, value):
                    acknowledged[key] = value
                    break
                time.sleep(0.1)
        assert len(acknowledged) == WRITES, "writes stopped after the leader was killed"
        alive = [index for index in range(cluster.size) if index != old_leader]
        new_leader = cluster.wait_for_leader(among=alive)
        assert new_leader != old_leader

        cluster.spawn(old_leader)
        cluster.wait_for_leader()
        for index in range(cluster.size):
            stored = read_all(stubs[index])
            missing = {key for key in acknowledged if stored.get(key) != acknowledged[key]}
            assert not missing, (
                f"member {index + 1} lost acknowledged writes: {sorted(missing)[:5]}"
            )
        # The restarted member serves them locally too once it has applied them.
        for _ in range(50):
            if read_all(stubs[old_leader], serializable=True) == acknowledged:
                break
            time.sleep(0.1)
        assert read_all(stubs[old_leader], serializable=True) == acknowledged
        for channel in channels:
            channel.close()


def test_a_member_without_a_quorum_answers_no_leader_at_once(tmp_path: Path) -> None:
    with EtcdrefCluster(tmp_path) as cluster:
        cluster.wait_for_leader()
        cluster.kill(0)
        cluster.kill(1)
        time.sleep(2.5)  # past the election timeout: the survivor knows it has no leader
        with grpc.insecure_channel(cluster.endpoints[2]) as channel:
            stub = rpc_pb2_grpc.KVStub(channel)
            for call in (
                lambda: stub.Put(rpc_pb2.PutRequest(key=b"k", value=b"v"), timeout=3),
                lambda: stub.Range(rpc_pb2.RangeRequest(key=b"k"), timeout=3),
            ):
                started = time.monotonic()
                try:
                    call()
                except grpc.RpcError as error:
                    assert error.code() is grpc.StatusCode.UNAVAILABLE
                    assert error.details() == "etcdserver: no leader"
                else:
                    raise AssertionError("a member without a quorum served a linearizable request")
                assert time.monotonic() - started < 1.0, "the answer waited instead of failing fast"
            # Serializable reads are still served from the local keyspace, as etcd does.
            stub.Range(rpc_pb2.RangeRequest(key=b"k", serializable=True), timeout=3)
