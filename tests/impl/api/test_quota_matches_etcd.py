"""`--quota-backend-bytes` against a one-member etcdref cluster and real etcd 3.4 started with
the same small quota: fill the backend until a write is refused, then the same etcdctl script
on both (the refusal, the NOSPACE alarm, what still works, a restart that keeps the alarm, and
the way out: compaction, defrag, disarm). etcd's quota check is approximate (its file grows in
pages), so the number of writes before the refusal is not compared; the outputs are.
"""

from __future__ import annotations

import re

import pytest

from conformance.client import EtcdClient, RequestFailed
from conformance.launcher import LaunchedCluster, Server
from etcdpb.etcdserverpb import rpc_pb2
from tests.impl.api.cluster_tools import etcdctl, member_ids, normalize

QUOTA_BYTES = 256 * 1024
VALUE = b"x" * 4096
WRITES_MAX = 400  # 4 KiB each: well past the quota on both servers


def fill_until_refused(endpoint: str) -> tuple[int, str]:
    """Put 4 KiB values under one key until a put fails: (puts that succeeded, the failure)."""
    with EtcdClient(endpoint, timeout_seconds=10.0) as client:
        for count in range(WRITES_MAX):
            try:
                client.put(rpc_pb2.PutRequest(key=b"big", value=VALUE))
            except RequestFailed as failure:
                return count, f"{failure.code.name}: {failure.details}"
    raise AssertionError(f"{WRITES_MAX} puts of {len(VALUE)} bytes fit a {QUOTA_BYTES}-byte quota")


def quota_script(cluster: LaunchedCluster) -> list[str]:
    endpoints = cluster.endpoints
    ids = member_ids(endpoints)
    count, failure = fill_until_refused(endpoints[0])
    assert count > 10, failure
    revision = int(
        re.findall(r'"revision":(\d+)', etcdctl(endpoints, "get", "big", "-w", "json"))[0]
    )
    steps = [
        failure,
        etcdctl(endpoints, "put", "small", "v"),
        etcdctl(endpoints, "txn", stdin="\n\nput small v\n\n"),
        etcdctl(endpoints, "lease", "grant", "60"),
        etcdctl(endpoints, "alarm", "list"),
        etcdctl(endpoints, "get", "big", "--keys-only"),
        etcdctl(endpoints, "del", "nothing"),
    ]
    cluster.kill(0)
    cluster.restart(0)
    steps += [
        etcdctl(endpoints, "alarm", "list"),  # kept across the restart (stored in the backend)
        etcdctl(endpoints, "put", "small", "v"),
        etcdctl(endpoints, "compaction", str(revision)).replace(str(revision), "<revision>"),
        etcdctl(endpoints, "defrag"),
        etcdctl(endpoints, "put", "small", "v"),  # under the quota now, but still alarmed
        etcdctl(endpoints, "alarm", "disarm"),
        etcdctl(endpoints, "alarm", "list"),
        etcdctl(endpoints, "put", "small", "v"),
        etcdctl(endpoints, "get", "small", "--print-value-only"),
    ]
    return [normalize(step, endpoints, ids) for step in steps]


def run(server: Server) -> list[str]:
    flags = ("--quota-backend-bytes", str(QUOTA_BYTES))
    with LaunchedCluster(size=1, server=server, extra_flags=flags) as cluster:
        return quota_script(cluster)


@pytest.mark.etcd
def test_a_full_backend_is_refused_alarmed_and_recovered_as_in_etcd() -> None:
    ours, etcd = run("etcdref"), run("etcd")
    assert ours == etcd
    assert ours[0] == "RESOURCE_EXHAUSTED: etcdserver: mvcc: database space exceeded"
    assert ours[4].endswith("memberID:<id0> alarm:NOSPACE \n"), ours[4]
    assert ours[7] == ours[4], "a restarted member keeps its alarm"
    assert ours[-1].endswith("exit 0\nv\n"), ours[-1]
