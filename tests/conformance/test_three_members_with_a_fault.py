"""A three-member real etcd cluster keeps every guarantee through one fault window.

The linearizability workload runs with clients on every member while the suite kills one
member (SIGKILL, then restart from its data directory); afterwards every member replays the
same history, a final write succeeds and all members agree on the keyspace and its hash.
The real etcd 3.4 divergence of conformance/FINDINGS.md is shown caught by both agreement
checks. (A lease surviving the loss of its leader: test_etcdref.py, against both servers.)
"""

from __future__ import annotations

import uuid

import pytest

from conformance.checks import CHECKS, CheckContext, Outcome, run_check
from conformance.client import EtcdClient, RequestFailed
from conformance.consistency import check_member_histories_agree
from conformance.faults import Fault, FaultRecord
from conformance.launcher import LaunchedCluster
from conformance.watch.reference import collect_reference
from conformance.workload import WorkloadSettings
from etcdpb.etcdserverpb import rpc_pb2
from spec.errors import EtcdError

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
        assert_guarantees_hold_through_the_fault(context)


def assert_guarantees_hold_through_the_fault(context: CheckContext) -> None:
    """The linearizability workload with the context's fault injected, then the members'
    agreement: every result passes and the fault was injected and recovered from."""
    results = run_check(CHECKS["linearizability"], context)
    results += run_check(CHECKS["hash agreement"], context)
    outcomes = {result.name: result.outcome for result in results}
    assert outcomes == {
        "linearizability: durability": Outcome.PASSED,
        "linearizability": Outcome.PASSED,
        "linearizability: members replay one history": Outcome.PASSED,
        "hash agreement: keyspace agreement": Outcome.PASSED,
        "hash agreement: HashKV agreement": Outcome.PASSED,
    }, results
    fault = context.artifacts["fault"]
    assert isinstance(fault, FaultRecord)
    assert fault.recovered_ns > fault.injected_ns


def test_etcd_3_4_future_revision_txn_divergence_is_caught() -> None:
    """Real etcd 3.4 diverges on one request shape (conformance/FINDINGS.md); the keyspace
    agreement check names it (this test pins etcd 3.4's behaviour; a fixed etcd fails it)."""
    with LaunchedCluster(size=3) as cluster:
        with EtcdClient(cluster.endpoints[0]) as client:
            revision = client.put(rpc_pb2.PutRequest(key=b"a", value=b"1")).header.revision
            future_range = rpc_pb2.RangeRequest(key=b"a", revision=revision + 1)
            txn = rpc_pb2.TxnRequest(
                success=[
                    rpc_pb2.RequestOp(request_range=future_range),
                    rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=b"b", value=b"x")),
                ]
            )
            with pytest.raises(RequestFailed) as failure:
                client.txn(txn)
            assert failure.value.details == EtcdError.FUTURE_REVISION.message
        context = CheckContext(
            endpoints=cluster.endpoints,
            prefix=b"/divergence/",
            workload=WorkloadSettings(),
            server_version="3.4.23",
        )
        results = {result.name: result for result in run_check(CHECKS["hash agreement"], context)}
    agreement = results["hash agreement: keyspace agreement"]
    assert agreement.outcome == Outcome.FAILED, agreement


def test_members_that_replay_different_histories_are_named() -> None:
    """The divergence of FINDINGS.md, seen by the history-agreement part of the check."""
    with LaunchedCluster(size=3) as cluster:
        with EtcdClient(cluster.endpoints[0]) as client:
            start = client.put(rpc_pb2.PutRequest(key=b"a", value=b"1")).header.revision
            txn = rpc_pb2.TxnRequest(
                success=[
                    rpc_pb2.RequestOp(
                        request_range=rpc_pb2.RangeRequest(key=b"a", revision=start + 1)
                    ),
                    rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=b"b", value=b"x")),
                ]
            )
            with pytest.raises(RequestFailed):
                client.txn(txn)
            final = client.put(rpc_pb2.PutRequest(key=b"c", value=b"1")).header.revision
            reference, _ = collect_reference(client, final, start_revision=start)
        violations = check_member_histories_agree(cluster.endpoints, reference, start, final)
    assert len(violations) == 2, violations
    assert all("differs from" in violation for violation in violations)
