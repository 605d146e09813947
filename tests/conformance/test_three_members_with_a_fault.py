"""A three-member real etcd cluster keeps every guarantee through one fault window.

The linearizability workload runs with clients on every member while the suite kills one
member (SIGKILL, then restart from its data directory); afterwards a final write succeeds and
all members agree on the keyspace hash.
"""

from __future__ import annotations

import uuid

import pytest

from conformance.checks import CHECKS, CheckContext, Outcome, run_check
from conformance.faults import Fault, FaultRecord
from conformance.launcher import LaunchedCluster
from conformance.workload import WorkloadSettings

pytestmark = pytest.mark.etcd


def test_kill_and_restart_one_member_during_the_workload() -> None:
    with LaunchedCluster(size=3) as cluster:
        context = CheckContext(
            endpoints=cluster.endpoints,
            prefix=f"/fault/{uuid.uuid4().hex[:8]}/".encode(),
            workload=WorkloadSettings(client_count=3, operations_per_client=100, seed=11),
            server_version="3.4.23",
            cluster=cluster,
            fault=Fault.KILL,
        )
        results = run_check(CHECKS["linearizability"], context)
        results += run_check(CHECKS["hash agreement"], context)
    outcomes = {result.name: result.outcome for result in results}
    assert outcomes == {
        "linearizability: durability": Outcome.PASSED,
        "linearizability": Outcome.PASSED,
        "hash agreement": Outcome.PASSED,
    }, results
    fault = context.artifacts["fault"]
    assert isinstance(fault, FaultRecord)
    assert fault.recovered_ns > fault.injected_ns
