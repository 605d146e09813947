"""The launcher starts real etcd on loopback and always stops it, paused or killed members too."""

from __future__ import annotations

import pytest

from conformance.client import EtcdClient
from conformance.launcher import LaunchedCluster, free_ports
from etcdpb.etcdserverpb import rpc_pb2

pytestmark = pytest.mark.etcd


def test_ports_are_distinct_loopback_ports() -> None:
    ports = free_ports(6)
    assert len(set(ports)) == 6
    assert all(1024 < port < 65536 for port in ports)


def test_stop_ends_paused_and_running_members_and_removes_the_data() -> None:
    cluster = LaunchedCluster(size=3)
    cluster.start()
    try:
        assert all(endpoint.startswith("127.0.0.1:") for endpoint in cluster.endpoints)
        cluster.pause(1)
        cluster.kill(2)
    finally:
        cluster.stop()
    assert all(
        member.process is not None and member.process.poll() is not None
        for member in cluster.members
    )
    assert cluster.root is not None
    assert not cluster.root.exists()


def test_killed_member_restarts_from_its_data() -> None:
    with LaunchedCluster(size=3) as cluster:
        with EtcdClient(cluster.endpoints[0]) as client:
            client.put(rpc_pb2.PutRequest(key=b"k", value=b"v"))
        cluster.kill(0)
        cluster.restart(0)
        with EtcdClient(cluster.endpoints[0]) as client:
            assert client.get(b"k").kvs[0].value == b"v"
