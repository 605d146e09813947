"""A keyspace held in memory: the `KeyspaceView` used by tests and by the models' comparisons.

It stores exactly what `Changes` say and decides nothing; `impl.backend` is the same thing on
disk. Not thread-safe; one writer, reads between writes.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from spec.mvcc.key_index import KeyIndex
from spec.mvcc.messages import KeyValue
from spec.mvcc.revision import (
    LeaseId,
    Revision,
    RevisionPair,
    compacted_revision_none,
    lease_none,
    store_revision_initial,
)
from spec.mvcc.view import Changes, LeaseRecord, Record


class MemoryKeyspace:
    """Records by revision, key indexes by key (plus a sorted key list), leases by id."""

    def __init__(self) -> None:
        self._current_revision = store_revision_initial
        self._compacted_revision = compacted_revision_none
        self._records: dict[RevisionPair, Record] = {}
        self._indexes: dict[bytes, KeyIndex] = {}
        self._sorted_keys: list[bytes] = []
        self._leases: dict[LeaseId, LeaseRecord] = {}
        self._attached: dict[LeaseId, set[bytes]] = {}

    def apply(self, changes: Changes) -> None:
        """Write one operation's changes (the store's only mutator)."""
        if changes.revision is not None:
            assert changes.revision == self._current_revision + 1, "one revision per write"
            self._current_revision = changes.revision
        for record in changes.records:
            self._records[record.revision] = record
        for index in changes.key_indexes:
            if index.key not in self._indexes:
                bisect.insort(self._sorted_keys, index.key)
            self._indexes[index.key] = index
        for move in changes.lease_moves:
            if move.lease_detached != lease_none:
                self._attached.get(move.lease_detached, set()).discard(move.key)
            if move.lease_attached != lease_none:
                self._attached.setdefault(move.lease_attached, set()).add(move.key)
        for lease in changes.leases_granted:
            self._leases[lease.id] = lease
        for lease_id in changes.leases_revoked:
            del self._leases[lease_id]
            self._attached.pop(lease_id, None)
        if changes.compacted_revision is not None:
            self._compacted_revision = changes.compacted_revision
        for record_id in changes.records_removed:
            del self._records[record_id.revision]
        for key in changes.keys_removed:
            del self._indexes[key]
            del self._sorted_keys[bisect.bisect_left(self._sorted_keys, key)]

    # --- the KeyspaceView protocol --------------------------------------------------------
    def current_revision(self) -> Revision:
        return self._current_revision

    def compacted_revision(self) -> Revision:
        return self._compacted_revision

    def key_index(self, key: bytes) -> KeyIndex | None:
        return self._indexes.get(key)

    def key_indexes(self, start: bytes, end: bytes | None) -> Iterator[KeyIndex]:
        low = bisect.bisect_left(self._sorted_keys, start)
        high = len(self._sorted_keys) if end is None else bisect.bisect_left(self._sorted_keys, end)
        for key in self._sorted_keys[low:high]:
            yield self._indexes[key]

    def record(self, revision: RevisionPair) -> KeyValue:
        record = self._records[revision]
        assert not record.tombstone, "only live records are read as values"
        return record.key_value

    def records_from(self, revision: Revision) -> Iterator[Record]:
        for pair in sorted(pair for pair in self._records if pair.main >= revision):
            yield self._records[pair]

    def lease(self, lease: LeaseId) -> LeaseRecord | None:
        return self._leases.get(lease)

    def leases(self) -> Iterator[LeaseRecord]:
        for lease_id in sorted(self._leases):
            yield self._leases[lease_id]

    def keys_attached(self, lease: LeaseId) -> tuple[bytes, ...]:
        return tuple(sorted(self._attached.get(lease, ())))
