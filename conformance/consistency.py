"""Check 2, live: run the concurrent workload, rebuild the store's history from a watch, and
decide linearizability.

Steps: note the revision before the workload; run the clients; watch every key from just
after that revision to the final one (the reference history); then
* durability (KV-1): every acknowledged write that changed the store appears in the reference
  at the revision its response named, with its value, and every event under the run's prefix
  comes from a write some client invoked (no phantom writes);
* linearizability (KV-2 .. KV-9): the checker, with indeterminate writes resolved from the
  reference;
* with several endpoints, every member replays the same events for the run's revisions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from conformance.client import EtcdClient
from conformance.history import Kind, Operation, Status
from conformance.linearizability.checker import LinearizabilityReport, check_history
from conformance.linearizability.patch import ReferenceWrites
from conformance.watch.recording import PUT, WatchRecording
from conformance.watch.reference import ReferenceHistory, collect_reference
from conformance.watch.scenario import current_revision
from conformance.workload import WorkloadSettings, run_workload


@dataclass
class ConsistencyResult:
    history: list[Operation]
    reference: ReferenceHistory
    reference_recording: WatchRecording
    report: LinearizabilityReport
    durability_violations: list[str] = field(default_factory=list)
    agreement_violations: list[str] = field(default_factory=list)


def reference_writes(reference: ReferenceHistory, prefix: bytes) -> ReferenceWrites:
    """The reference's events under `prefix`, by the short key names the history uses."""
    puts: dict[tuple[str, str], int] = {}
    deletes: dict[str, list[int]] = {}
    for event in reference.events:
        if not event.key.startswith(prefix):
            continue
        key = event.key[len(prefix) :].decode("utf-8", "backslashreplace")
        if event.type == PUT:
            puts[(key, event.key_value.value.decode("utf-8", "backslashreplace"))] = event.revision
        else:
            deletes.setdefault(key, []).append(event.revision)
    return ReferenceWrites(puts, deletes)


def check_durability(history: Sequence[Operation], writes: ReferenceWrites) -> list[str]:
    """KV-1 Durability: acknowledged writes are in the history at their revision; and the
    history holds no value that no client wrote."""
    violations = []
    invoked_values = {
        (op.key, op.value) for op in history if op.kind in (Kind.PUT, Kind.COMPARE_AND_PUT)
    }
    for operation in history:
        if operation.status != Status.OK or not operation.changed_the_store:
            continue
        if operation.kind == Kind.DELETE:
            if operation.revision not in writes.deletes.get(operation.key, []):
                violations.append(
                    f"acknowledged delete of {operation.key!r} at revision {operation.revision} "
                    "has no delete event"
                )
            continue
        seen = writes.puts.get((operation.key, operation.value))
        if seen != operation.revision:
            violations.append(
                f"acknowledged {operation.kind} of {operation.key!r}={operation.value!r} at revision "
                f"{operation.revision}: the history has it at {seen}"
            )
    for key_value, revision in writes.puts.items():
        if key_value not in invoked_values:
            violations.append(
                f"value {key_value} at revision {revision} was never written by a client"
            )
    return violations


def run_consistency_check(
    endpoints: Sequence[str],
    prefix: bytes,
    settings: WorkloadSettings,
    budget_seconds: float = 60.0,
    during: Callable[[], object] | None = None,
) -> ConsistencyResult:
    """Run the workload (with `during`, a fault, injected meanwhile) and check its history."""
    with EtcdClient(endpoints[0], timeout_seconds=5.0) as client:
        start = current_revision(client)
    history = run_workload(endpoints, prefix, settings, during)
    with EtcdClient(endpoints[0], timeout_seconds=5.0) as client:
        final = current_revision(client)
        reference, recording = collect_reference(client, final, start_revision=start + 1)
    writes = reference_writes(reference, prefix)
    report = check_history(history, budget_seconds, writes)
    agreement = check_member_histories_agree(endpoints, reference, start + 1, final)
    return ConsistencyResult(
        history, reference, recording, report, check_durability(history, writes), agreement
    )


def check_member_histories_agree(
    endpoints: Sequence[str], reference: ReferenceHistory, first: int, last: int
) -> list[str]:
    """Every member replays the same history of events for the run's revisions (Raft's state
    machine safety, seen from outside: all members apply the same writes in the same order).
    `reference` is the history as the first endpoint replays it."""
    violations = []
    for endpoint in endpoints[1:]:
        with EtcdClient(endpoint, timeout_seconds=5.0) as client:
            other, _ = collect_reference(client, last, start_revision=first)
        for index, (mine, theirs) in enumerate(zip(reference.events, other.events, strict=False)):
            if mine != theirs:
                violations.append(
                    f"{endpoint} differs from {endpoints[0]} at event {index}: revision "
                    f"{theirs.revision} {theirs.type} {theirs.key!r} versus revision "
                    f"{mine.revision} {mine.type} {mine.key!r}"
                )
                break
        else:
            if len(reference.events) != len(other.events):
                violations.append(
                    f"{endpoint} has {len(other.events)} events for revisions {first}..{last}, "
                    f"{endpoints[0]} has {len(reference.events)}"
                )
    return violations
