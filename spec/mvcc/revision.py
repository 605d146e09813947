"""Revisions: the clock of etcd's keyspace.

Every write transaction that changes something advances the store's **main** revision by one;
each change inside it gets a **sub** revision 0, 1, 2, ... in the order the changes were made
(etcd `mvcc/revision.go`). A fresh store is at revision 1, so the first write is revision 2
(`currentRev: 1` in etcd `mvcc/kvstore.go`). Before any compaction the compaction point is -1.
"""

from __future__ import annotations

from typing import Final, NewType

import attrs

Revision = NewType("Revision", int)
"""A main revision: the store's logical clock, one tick per write transaction."""

LeaseId = NewType("LeaseId", int)
"""A lease's 64-bit identifier; 0 means "no lease"."""

store_revision_initial: Final = Revision(1)
compacted_revision_none: Final = Revision(-1)
lease_none: Final = LeaseId(0)


@attrs.frozen(order=True)
class RevisionPair:
    """Where a change sits in history: its transaction (`main`) and its place inside it (`sub`)."""

    main: Revision
    sub: int

    def __attrs_post_init__(self) -> None:
        assert self.main >= 0, "main revisions are never negative"
        assert self.sub >= 0, "sub revisions count from 0"
