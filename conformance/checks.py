"""The checks the `conformance` command runs, their profiles, and how a result is classified.

A check is a function of the run's context that returns, per guarantee it covers, the
violations found. The runner turns that into results:

* passed: no violation;
* failed: violations, listed;
* known deviation: violations that a documented bug of the target explains (named);
* unsupported: the server answered gRPC Unimplemented (not a failure: a capability);
* error: the check could not run to the end (unreachable server, timeout); the message says
  what failed, never a bare traceback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from conformance import kubernetes, leases
from conformance.api_semantics.comparison import run_semantics_comparison
from conformance.client import EtcdClient, RequestFailed
from conformance.consistency import run_consistency_check
from conformance.faults import Fault, inject_fault
from conformance.launcher import LaunchedCluster
from conformance.watch.reference import ReferenceUnavailable
from conformance.watch.scenario import current_revision, run_compaction_scenario, run_watch_scenario
from conformance.workload import WorkloadSettings
from etcdpb.etcdserverpb import rpc_pb2
from etcdpb.grpc_health.v1 import health_pb2


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    KNOWN_DEVIATION = "known deviation"
    UNSUPPORTED = "unsupported"
    ERROR = "error"


@dataclass
class CheckResult:
    name: str
    outcome: Outcome
    seconds: float
    messages: list[str] = field(default_factory=list)


@dataclass
class CheckContext:
    endpoints: list[str]
    prefix: bytes
    workload: WorkloadSettings
    server_version: str = ""
    cluster: LaunchedCluster | None = None
    minimum_ttl_seconds: int | None = None  # known for launched etcd with default timing
    progress_notify_seconds: float | None = None  # known for launched etcd
    artifacts: dict[str, object] = field(default_factory=dict)  # for the report
    fault: Fault | None = None  # injected during the linearizability workload (launched only)
    semantics_steps: int = 300  # requests in the API semantics comparison

    def client(self) -> EtcdClient:
        return EtcdClient(self.endpoints[0], timeout_seconds=5.0)


Violations = dict[str, list[str]]


@dataclass(frozen=True)
class Check:
    name: str
    summary: str
    run: Callable[[CheckContext], Violations]
    # A guarantee -> the documented bug that explains its violations, for matching servers.
    known_deviations: Callable[[CheckContext], dict[str, str]] = lambda context: {}


def run_cluster_check(context: CheckContext) -> Violations:
    """Status and MemberList answer on every endpoint, with one cluster id, and every member
    that answers names the same leader (cluster messages, wire notes §1.7-1.8)."""
    violations: list[str] = []
    cluster_ids = set()
    leaders = set()
    for endpoint in context.endpoints:
        with EtcdClient(endpoint, timeout_seconds=5.0) as client:
            status = client.status()
            members = client.member_list()
        cluster_ids.add(status.header.cluster_id)
        leaders.add(status.leader)
        if not status.version:
            violations.append(f"{endpoint}: Status has no version (Kubernetes reads it)")
        if not members.members:
            violations.append(f"{endpoint}: MemberList is empty")
        if not any(member.clientURLs for member in members.members):
            violations.append(f"{endpoint}: no member lists client URLs")
    if len(cluster_ids) != 1:
        violations.append(f"endpoints report different cluster ids: {sorted(cluster_ids)}")
    if len(leaders) != 1 or 0 in leaders:
        violations.append(f"endpoints name leaders {sorted(leaders)}")
    return {"status and member list": violations, "health service": check_health(context)}


def check_health(context: CheckContext) -> list[str]:
    """etcd registers grpc.health.v1.Health beside its services and answers SERVING while it
    is healthy (wire notes §0.1). A server without the health service is not faulted here."""
    violations = []
    for endpoint in context.endpoints:
        with EtcdClient(endpoint, timeout_seconds=5.0) as client:
            try:
                answer = client.health_check()
            except RequestFailed as failure:
                if failure.unsupported:
                    continue
                raise
        if answer.status != health_pb2.HealthCheckResponse.SERVING:
            violations.append(f"{endpoint}: health service answers {answer.status}")
    return violations


def run_linearizability_check(context: CheckContext) -> Violations:
    cluster, fault = context.cluster, context.fault
    during = None
    if cluster is not None and fault is not None:

        def during() -> None:
            context.artifacts["fault"] = inject_fault(cluster, fault, context.workload.seed)

    result = run_consistency_check(
        context.endpoints, context.prefix + b"kv/", context.workload, during=during
    )
    context.artifacts["history"] = result.history
    context.artifacts["reference"] = result.reference_recording
    context.artifacts["linearizability"] = result.report
    linearizability = (
        [] if result.report.verdict == "ok" else result.report.failures or [result.report.summary()]
    )
    found = {"durability": result.durability_violations, "linearizability": linearizability}
    if len(context.endpoints) > 1:
        found["members replay one history"] = result.agreement_violations
    return found


def run_watch_check(context: CheckContext) -> Violations:
    with context.client() as client:
        result = run_watch_scenario(
            client,
            context.prefix,
            seed=context.workload.seed,
            progress_notify_seconds=context.progress_notify_seconds,
        )
    context.artifacts["watches"] = result.recordings
    return result.violations


def watch_known_deviations(context: CheckContext) -> dict[str, str]:
    if context.server_version.startswith("3.4."):
        return {
            "progress (stream-wide request)": "etcd 3.4 answers a progress request before the "
            "watch has caught up (etcd#15220, fixed in 3.5)"
        }
    return {}


def run_lease_check(context: CheckContext) -> Violations:
    with context.client() as client:
        found = {
            "grant and time-to-live": leases.check_grant_and_time_to_live(
                client, context.prefix, context.minimum_ttl_seconds
            ),
            "unknown lease": leases.check_unknown_lease_answers(client, context.prefix),
            "keep-alive extends": leases.check_keep_alive_extends(client),
            "revoke deletes keys": leases.check_revoke_deletes_keys(client, context.prefix),
            "expiry deletes keys": leases.check_expiry_deletes_keys(client, context.prefix),
        }
    if context.cluster is not None and len(context.cluster.members) >= 3:
        found["across a leader change"] = leases.check_lease_across_leader_change(
            context.cluster, context.prefix
        )
    return found


def run_api_semantics_check(context: CheckContext) -> Violations:
    """Check 1: a seeded single-client workload compared with the model, field by field."""
    with context.client() as client:
        result = run_semantics_comparison(
            client, context.prefix + b"api/", context.workload.seed, context.semantics_steps
        )
    context.artifacts["api semantics"] = result
    return {
        "responses equal the model's": result.violations(),
        "delete at the compaction revision": result.compacted_delete_dropped,
    }


def api_semantics_known_deviations(context: CheckContext) -> dict[str, str]:
    """etcd#18089: compaction removed the tombstones of its own revision, so a watch from that
    revision missed their DELETE events; fixed in etcd 3.4.34 and 3.5.16 (2024)."""
    version = tuple(int(part) for part in context.server_version.split(".")[:3] if part.isdigit())
    if (3, 4) <= version < (3, 4, 34) or (3, 5) <= version < (3, 5, 16):
        return {
            "delete at the compaction revision": "etcd#18089: a watch from the compaction "
            "revision misses that revision's DELETE events (fixed in 3.4.34 and 3.5.16)"
        }
    return {}


def run_kubernetes_check(context: CheckContext) -> Violations:
    with context.client() as client:
        return {
            "optimistic create, update, delete": kubernetes.check_optimistic_writes(
                client, context.prefix
            ),
            "paginated list at a revision": kubernetes.check_paginated_list(client, context.prefix),
            "count and get at a revision": kubernetes.check_count_and_get_at_revision(
                client, context.prefix
            ),
        }


def run_hash_agreement_check(context: CheckContext) -> Violations:
    """After the run (and any fault), a final write succeeds and all members agree on the
    keyspace at one revision: the same keys with the same fields (a serializable Range on each
    member), and the same HashKV (etcd's robustness end-of-test check). In the full profile it
    runs before the API semantics check, whose random txns include the request shape on which
    etcd 3.4 members diverge (FINDINGS.md)."""
    with context.client() as client:
        client.put(
            rpc_pb2.PutRequest(key=context.prefix + b"tombstone", value=b"true"), timeout_seconds=10
        )
        revision = current_revision(client)
    deadline = time.monotonic() + 15
    keyspaces: dict[str, bytes] = {}
    hashes: dict[str, tuple[int, int]] = {}
    for endpoint in context.endpoints:
        with EtcdClient(endpoint, timeout_seconds=10.0) as client:
            while current_revision(client) < revision and time.monotonic() < deadline:
                time.sleep(0.1)
            everything = rpc_pb2.RangeRequest(
                key=b"\x00", range_end=b"\x00", revision=revision, serializable=True
            )
            response = client.range(everything)
            keyspaces[endpoint] = b"".join(kv.SerializeToString() for kv in response.kvs)
            answer = client.hash_kv(revision)
            hashes[endpoint] = (answer.compact_revision, answer.hash)
    keyspace_violations = []
    if len(set(keyspaces.values())) > 1:
        keyspace_violations.append(f"members disagree on the keyspace at revision {revision}")
    hash_violations = []
    if len(set(hashes.values())) > 1:
        described = {
            endpoint: f"hash {value} after compaction at {compact}"
            for endpoint, (compact, value) in hashes.items()
        }
        hash_violations.append(f"HashKV at revision {revision} differs: {described}")
    return {"keyspace agreement": keyspace_violations, "HashKV agreement": hash_violations}


def run_compaction_check(context: CheckContext) -> Violations:
    """Compaction cancels watches from before it (W-9); destructive, so it runs last. Writes
    three revisions of its own and compacts at the middle one."""
    with context.client() as client:
        revisions = [
            client.put(
                rpc_pb2.PutRequest(key=context.prefix + b"compaction/key", value=bytes([65 + n]))
            ).header.revision
            for n in range(3)
        ]
        violations, recording = run_compaction_scenario(client, revisions[1])
    context.artifacts["compaction watch"] = recording
    return {"watch cancelled by compaction": violations}


CHECKS = {
    check.name: check
    for check in [
        Check("cluster", "Status and MemberList on every endpoint", run_cluster_check),
        Check(
            "linearizability",
            "concurrent clients: durability and linearizability",
            run_linearizability_check,
        ),
        Check(
            "watch",
            "watch guarantees against the history from a watch",
            run_watch_check,
            watch_known_deviations,
        ),
        Check("lease", "lease grant, keep-alive, revoke, expiry", run_lease_check),
        Check("kubernetes", "the request shapes kube-apiserver uses", run_kubernetes_check),
        Check(
            "api semantics",
            "KV, lease and watch answers equal the model's and the spec's",
            run_api_semantics_check,
            api_semantics_known_deviations,
        ),
        Check(
            "hash agreement", "members agree on the keyspace and HashKV", run_hash_agreement_check
        ),
        Check("compaction", "compaction cancels older watches", run_compaction_check),
    ]
}

PROFILES = {
    "kubernetes": ("cluster", "kubernetes", "linearizability", "watch", "lease", "compaction"),
    "kv-watch-lease": ("linearizability", "watch", "lease", "api semantics"),
    "full": (
        "cluster",
        "kubernetes",
        "linearizability",
        "watch",
        "lease",
        "hash agreement",
        "api semantics",
        "compaction",
    ),
}


def run_check(check: Check, context: CheckContext) -> list[CheckResult]:
    """Run one check and classify what it returned (see the module docstring)."""
    started = time.monotonic()
    try:
        found = check.run(context)
    except RequestFailed as failure:
        outcome = Outcome.UNSUPPORTED if failure.unsupported else Outcome.ERROR
        return [CheckResult(check.name, outcome, time.monotonic() - started, [str(failure)])]
    except ReferenceUnavailable as failure:
        return [CheckResult(check.name, Outcome.ERROR, time.monotonic() - started, [str(failure)])]
    except Exception as failure:
        message = f"{type(failure).__name__}: {failure}"
        return [CheckResult(check.name, Outcome.ERROR, time.monotonic() - started, [message])]
    seconds = time.monotonic() - started
    deviations = check.known_deviations(context)
    results = []
    for guarantee, violations in found.items():
        name = f"{check.name}: {guarantee}" if guarantee != check.name else check.name
        if not violations:
            results.append(CheckResult(name, Outcome.PASSED, seconds))
        elif guarantee in deviations:
            results.append(
                CheckResult(
                    name, Outcome.KNOWN_DEVIATION, seconds, [deviations[guarantee], *violations]
                )
            )
        else:
            results.append(CheckResult(name, Outcome.FAILED, seconds, violations))
    return results


def report_directory_default() -> Path:
    return Path("conformance-report") / time.strftime("%Y%m%dT%H%M%S")
