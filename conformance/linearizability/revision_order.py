"""The cross-key half of the linearizability check: revisions are unique and follow real time.

etcd promises one total order of all KV operations, given by revision and consistent with real
time (KV-2, KV-5 in the conformance notes): every write creates exactly one new revision, and
an operation invoked after another completed never reports a smaller revision (a larger one,
if it is a write). The per-key search (`key_model`) checks everything else; with this check the
per-key orders merge into one global order. Both checks are a sort and a sweep: O(n log n).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from conformance.history import Operation, Status


@dataclass(frozen=True)
class RevisionViolation:
    rule: str
    earlier: Operation
    later: Operation

    def describe(self) -> str:
        return (
            f"{self.rule}: operation {self.earlier.identifier} ({self.earlier.kind} "
            f"{self.earlier.key!r}, revision {self.earlier.revision}) and operation "
            f"{self.later.identifier} ({self.later.kind} {self.later.key!r}, revision "
            f"{self.later.revision})"
        )


def check_unique_write_revisions(operations: Sequence[Operation]) -> list[RevisionViolation]:
    """No two acknowledged writes that changed the store share a revision (each mutating
    operation creates exactly one new revision; duplicates break Kubernetes, Xline#848)."""
    seen: dict[int, Operation] = {}
    violations = []
    for operation in operations:
        if not operation.changed_the_store:
            continue
        other = seen.get(operation.revision)
        if other is not None:
            violations.append(RevisionViolation("duplicate write revision", other, operation))
        else:
            seen[operation.revision] = operation
    return violations


def check_real_time_revision_order(operations: Sequence[Operation]) -> list[RevisionViolation]:
    """An operation invoked after another completed reports a revision at least as large, and
    strictly larger when it changed the store (revisions increase with real time)."""
    completed = [operation for operation in operations if operation.status == Status.OK]
    by_return = sorted(completed, key=lambda operation: operation.return_ns or 0)
    by_call = sorted(completed, key=lambda operation: operation.call_ns)
    violations = []
    returned = 0
    highest: Operation | None = None
    for operation in by_call:
        while (
            returned < len(by_return) and (by_return[returned].return_ns or 0) < operation.call_ns
        ):
            candidate = by_return[returned]
            if highest is None or candidate.revision > highest.revision:
                highest = candidate
            returned += 1
        if highest is None:
            continue
        if operation.revision < highest.revision:
            violations.append(
                RevisionViolation("revision went back in real time", highest, operation)
            )
        elif operation.changed_the_store and operation.revision == highest.revision:
            violations.append(
                RevisionViolation("write did not create a newer revision", highest, operation)
            )
    return violations
