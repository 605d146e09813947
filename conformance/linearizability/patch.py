"""Resolve indeterminate writes with the reference history, before the search.

An indeterminate write may have taken effect at any time after its invocation, or never, and
each one can double the search (the exponential cost etcd's robustness tests met, etcd PR
#14880). Every value written is unique, so the reference history (a whole-keyspace watch from
revision 1, complete up to the final revision) settles each indeterminate put: if the value
appears there, the write took effect at that event's revision (status `persisted`); if not, it
never took effect and is dropped. etcd's robustness tests do the same with the WAL; this works
against any server. Indeterminate deletes carry no unique value: when the reference has no
delete event on the key that an acknowledged delete does not explain, every indeterminate
delete of that key was a no-op (a delete that removes nothing creates no revision and no event)
and is dropped; otherwise they stay indeterminate (the workloads keep them rare).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from conformance.history import Kind, Operation, Status


@dataclass(frozen=True)
class ReferenceWrites:
    """What the reference history says about writes: the revision of every PUT event by
    (key, value), and the revisions of the DELETE events of each key."""

    puts: Mapping[tuple[str, str], int]
    deletes: Mapping[str, Sequence[int]]


def patch_indeterminate_writes(
    history: Sequence[Operation], reference: ReferenceWrites
) -> list[Operation]:
    explained = {
        (operation.key, operation.revision)
        for operation in history
        if operation.kind == Kind.DELETE and operation.status == Status.OK and operation.deleted
    }
    unexplained_delete_keys = {
        key
        for key, revisions in reference.deletes.items()
        if any((key, revision) not in explained for revision in revisions)
    }
    patched = []
    for operation in history:
        if operation.status != Status.INDETERMINATE:
            patched.append(operation)
            continue
        if operation.kind == Kind.DELETE:
            if operation.key in unexplained_delete_keys:
                patched.append(operation)
            continue
        revision = reference.puts.get((operation.key, operation.value))
        if revision is None:
            continue  # never took effect
        patched.append(replace(operation, status=Status.PERSISTED, revision=revision))
    return patched
