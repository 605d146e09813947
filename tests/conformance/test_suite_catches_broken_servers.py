"""The suite passes real etcd and fails a doctored server, naming the check that caught it.

The doctored server (`doctored_server.py`) forwards to a real etcd and breaks one thing.
"""

from __future__ import annotations

import uuid

import pytest

from conformance.checks import CHECKS, CheckContext, CheckResult, Outcome, run_check
from conformance.launcher import LaunchedCluster
from conformance.workload import WorkloadSettings
from tests.conformance.doctored_server import Breakage, DoctoredServer

pytestmark = pytest.mark.etcd


def run(endpoint: str, check: str) -> dict[str, CheckResult]:
    context = CheckContext(
        endpoints=[endpoint],
        prefix=f"/broken/{uuid.uuid4().hex[:8]}/".encode(),
        workload=WorkloadSettings(client_count=3, operations_per_client=40, seed=5),
        server_version="3.4.23",
    )
    return {result.name: result for result in run_check(CHECKS[check], context)}


def outcomes(results: dict[str, CheckResult]) -> dict[str, Outcome]:
    return {name: result.outcome for name, result in results.items()}


def test_faithful_forwarding_passes(etcd_cluster: LaunchedCluster) -> None:
    with DoctoredServer(etcd_cluster.endpoints[0], Breakage()) as server:
        for check in ("linearizability", "watch"):
            results = run(server.endpoint, check)
            assert all(
                outcome in (Outcome.PASSED, Outcome.KNOWN_DEVIATION) for outcome in outcomes(results).values()
            ), results


def test_rewritten_response_field_fails_linearizability(etcd_cluster: LaunchedCluster) -> None:
    with DoctoredServer(etcd_cluster.endpoints[0], Breakage(rewrite_range_version=True)) as server:
        results = run(server.endpoint, "linearizability")
    assert results["linearizability"].outcome == Outcome.FAILED
    assert results["linearizability: durability"].outcome == Outcome.PASSED


def test_dropped_acknowledged_write_fails_durability(etcd_cluster: LaunchedCluster) -> None:
    with DoctoredServer(etcd_cluster.endpoints[0], Breakage(drop_every_nth_put=7)) as server:
        results = run(server.endpoint, "linearizability")
    assert results["linearizability: durability"].outcome == Outcome.FAILED
    assert "acknowledged put" in results["linearizability: durability"].messages[0]
    assert results["linearizability"].outcome == Outcome.FAILED


def test_reordered_watch_events_fail_reliable(etcd_cluster: LaunchedCluster) -> None:
    with DoctoredServer(etcd_cluster.endpoints[0], Breakage(reverse_watch_events=True)) as server:
        results = run(server.endpoint, "watch")
    assert results["watch: reliable"].outcome == Outcome.FAILED
    assert results["watch: txn order"].outcome == Outcome.FAILED


def test_missing_lease_service_is_unsupported_not_failed(etcd_cluster: LaunchedCluster) -> None:
    with DoctoredServer(etcd_cluster.endpoints[0], Breakage(serve_leases=False)) as server:
        results = run(server.endpoint, "lease")
    assert outcomes(results) == {"lease": Outcome.UNSUPPORTED}


def test_reads_ignoring_the_revision_fail_the_kubernetes_check(etcd_cluster: LaunchedCluster) -> None:
    with DoctoredServer(etcd_cluster.endpoints[0], Breakage(ignore_range_revision=True)) as server:
        results = run(server.endpoint, "kubernetes")
    assert outcomes(results) == {
        "kubernetes: optimistic create, update, delete": Outcome.PASSED,
        "kubernetes: paginated list at a revision": Outcome.FAILED,
        "kubernetes: count and get at a revision": Outcome.FAILED,
    }


def test_faithful_forwarding_passes_the_kubernetes_check(etcd_cluster: LaunchedCluster) -> None:
    with DoctoredServer(etcd_cluster.endpoints[0], Breakage()) as server:
        results = run(server.endpoint, "kubernetes")
    assert set(outcomes(results).values()) == {Outcome.PASSED}


def test_revoke_that_does_not_revoke_fails_the_lease_check(etcd_cluster: LaunchedCluster) -> None:
    with DoctoredServer(etcd_cluster.endpoints[0], Breakage(acknowledge_revoke_only=True)) as server:
        results = run(server.endpoint, "lease")
    assert results["lease: revoke deletes keys"].outcome == Outcome.FAILED
    assert results["lease: expiry deletes keys"].outcome == Outcome.PASSED
