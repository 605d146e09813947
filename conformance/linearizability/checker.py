"""Linearizability verdict for a recorded etcd history.

Indeterminate writes are first resolved against the reference history when it is given
(`patch`). The history is then partitioned by key (every operation in the workloads touches one key); each
partition is searched with `search.check_operations` over `key_model`, and the revisions are
checked across keys by `revision_order`. The verdict is ILLEGAL if any part fails, UNKNOWN if
the time budget ran out before a failure was found, OK otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from conformance.history import Operation, checked_operations
from conformance.linearizability import key_model, revision_order
from conformance.linearizability.patch import ReferenceWrites, patch_indeterminate_writes
from conformance.linearizability.search import SearchResult, Verdict, check_operations

DEFAULT_BUDGET_SECONDS = 60.0


@dataclass
class LinearizabilityReport:
    verdict: Verdict
    operation_count: int
    seconds: float
    failures: list[str] = field(default_factory=list)
    # For an illegal key: the longest accepted order and the operations that could not follow.
    excerpts: dict[str, dict[str, list[Operation]]] = field(default_factory=dict)

    def summary(self) -> str:
        if self.verdict == Verdict.OK:
            return f"linearizable ({self.operation_count} operations, {self.seconds:.2f} s)"
        if self.verdict == Verdict.UNKNOWN:
            return f"undecided within the time budget ({self.operation_count} operations)"
        return "not linearizable: " + "; ".join(self.failures[:5])


def partition_by_key(operations: Sequence[Operation]) -> dict[str, list[Operation]]:
    partitions: dict[str, list[Operation]] = {}
    for operation in operations:
        partitions.setdefault(operation.key, []).append(operation)
    return partitions


def check_history(
    history: Sequence[Operation],
    budget_seconds: float = DEFAULT_BUDGET_SECONDS,
    reference: ReferenceWrites | None = None,
) -> LinearizabilityReport:
    """Check `history`; with `reference` (from a reference watch history, see `patch`),
    indeterminate writes are resolved first, which keeps the search near-linear."""
    started = time.monotonic()
    deadline = started + budget_seconds
    operations = checked_operations(history)
    if reference is not None:
        operations = patch_indeterminate_writes(operations, reference)
    failures: list[str] = []
    excerpts: dict[str, dict[str, list[Operation]]] = {}
    for violation in revision_order.check_unique_write_revisions(operations):
        failures.append(violation.describe())
    for violation in revision_order.check_real_time_revision_order(operations):
        failures.append(violation.describe())
    undecided = False
    for key, partition in sorted(partition_by_key(operations).items()):
        result: SearchResult[Operation] = check_operations(
            partition, key_model.INITIAL_KEY_STATE, key_model.step, deadline
        )
        if result.verdict == Verdict.ILLEGAL:
            failures.append(f"key {key!r}: no linearization of its {len(partition)} operations")
            excerpts[key] = {
                "longest_accepted_prefix": result.longest_prefix[-10:],
                "could_not_follow": result.stuck,
            }
        elif result.verdict == Verdict.UNKNOWN:
            undecided = True
    if failures:
        verdict = Verdict.ILLEGAL
    elif undecided:
        verdict = Verdict.UNKNOWN
    else:
        verdict = Verdict.OK
    return LinearizabilityReport(
        verdict, len(operations), time.monotonic() - started, failures, excerpts
    )
