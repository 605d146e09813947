"""The read-only keyspace view every operation reads, and the changes every operation returns.

An operation never writes. It reads a `KeyspaceView` and returns `Changes`: the records to
append (keyed by revision, as in etcd's `key` bucket), the new key index of every key it
touched, lease grants and revocations, and for a compaction the records and keys to forget.
The store that owns the view (in memory: `spec.mvcc.memory`; on disk: `impl.backend`) writes
the changes exactly as given, and nothing else: all decisions are made here, in the spec.

A transaction applies its operations one after another, each seeing the ones before it, by
reading through an `OverlayView`: the store's view with the transaction's pending changes laid
over it (etcd `storeTxnWrite`: reads inside a write transaction see its earlier writes).
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterator
from typing import Protocol

import attrs

from spec.mvcc.key_index import KeyIndex
from spec.mvcc.messages import KeyValue
from spec.mvcc.revision import LeaseId, Revision, RevisionPair


@attrs.frozen
class Record:
    """One entry of history: the key-value written at `revision`, or a tombstone (key only)."""

    revision: RevisionPair
    key_value: KeyValue
    tombstone: bool


@attrs.frozen
class RecordId:
    """How a record is found in storage: its revision, and whether it is a tombstone."""

    revision: RevisionPair
    tombstone: bool


@attrs.frozen
class LeaseRecord:
    """A lease as persisted (etcd's `lease` bucket): its id and granted TTL."""

    id: LeaseId
    ttl_seconds: int


@attrs.frozen
class LeaseMove:
    """A key's attachment moving from one lease to another (0 means none) at a write."""

    key: bytes
    lease_detached: LeaseId
    lease_attached: LeaseId


@attrs.frozen
class Changes:
    """Everything one operation asks the store to write, as one atomic unit."""

    revision: Revision | None = None
    records: tuple[Record, ...] = ()
    key_indexes: tuple[KeyIndex, ...] = ()
    lease_moves: tuple[LeaseMove, ...] = ()
    leases_granted: tuple[LeaseRecord, ...] = ()
    leases_revoked: tuple[LeaseId, ...] = ()
    compacted_revision: Revision | None = None
    records_removed: tuple[RecordId, ...] = ()
    keys_removed: tuple[bytes, ...] = ()

    @property
    def is_empty(self) -> bool:
        return self == Changes()


class KeyspaceView(Protocol):
    """What an operation may read. Implementations must not change while an operation runs."""

    def current_revision(self) -> Revision:
        """The revision of the last write (1 for a fresh store)."""
        ...

    def compacted_revision(self) -> Revision:
        """The revision of the last compaction, or -1 if there was none."""
        ...

    def key_index(self, key: bytes) -> KeyIndex | None:
        """The index of one key, or None if the store has no history for it."""
        ...

    def key_indexes(self, start: bytes, end: bytes | None) -> Iterator[KeyIndex]:
        """Indexes of keys with start <= key < end (no upper bound if end is None), by key."""
        ...

    def record(self, revision: RevisionPair) -> KeyValue:
        """The key-value a put wrote at `revision` (the revision must hold a live record)."""
        ...

    def records_from(self, revision: Revision) -> Iterator[Record]:
        """Every stored record with main revision >= `revision`, in revision order."""
        ...

    def lease(self, lease: LeaseId) -> LeaseRecord | None:
        """The granted lease with this id, or None."""
        ...

    def leases(self) -> Iterator[LeaseRecord]:
        """Every granted lease, by id."""
        ...

    def keys_attached(self, lease: LeaseId) -> tuple[bytes, ...]:
        """The keys whose current value is attached to `lease`, in key order."""
        ...


class OverlayView:
    """A view of `base` with one write transaction's pending changes laid over it.

    The transaction writes at main revision `base.current_revision() + 1`; while it has
    pending records, reads report that revision as current (etcd `storeTxnWrite.Range`).
    """

    def __init__(self, base: KeyspaceView) -> None:
        self.base = base
        self.write_revision = Revision(base.current_revision() + 1)
        self._records: list[Record] = []
        self._records_by_revision: dict[RevisionPair, KeyValue] = {}
        self._indexes: dict[bytes, KeyIndex] = {}
        self._sorted_keys: list[bytes] = []
        self._lease_moves: list[LeaseMove] = []
        self._attached: dict[bytes, LeaseId] = {}

    # --- writes (used by the operations in this package only) -----------------------------
    def next_revision(self) -> RevisionPair:
        """Where the next change of this transaction goes: same main revision, next sub."""
        return RevisionPair(self.write_revision, len(self._records))

    def write(self, record: Record, index: KeyIndex, lease_move: LeaseMove) -> None:
        """Add one change: its record, the key's new index, and its lease attachment."""
        assert record.revision.main == self.write_revision, "changes are written at one revision"
        assert record.revision.sub == len(self._records), "changes are written in sub order"
        self._records.append(record)
        self._records_by_revision[record.revision] = record.key_value
        if index.key not in self._indexes:
            bisect.insort(self._sorted_keys, index.key)
        self._indexes[index.key] = index
        self._lease_moves.append(lease_move)
        self._attached[index.key] = lease_move.lease_attached

    def changes(self) -> Changes:
        """Everything written so far, as one `Changes` (empty if nothing was written)."""
        if not self._records:
            return Changes()
        return Changes(
            revision=self.write_revision,
            records=tuple(self._records),
            key_indexes=tuple(self._indexes[key] for key in self._sorted_keys),
            lease_moves=tuple(self._lease_moves),
        )

    @property
    def has_changes(self) -> bool:
        return bool(self._records)

    # --- the KeyspaceView protocol --------------------------------------------------------
    def current_revision(self) -> Revision:
        if self._records:
            return self.write_revision
        return self.base.current_revision()

    def compacted_revision(self) -> Revision:
        return self.base.compacted_revision()

    def key_index(self, key: bytes) -> KeyIndex | None:
        if key in self._indexes:
            return self._indexes[key]
        return self.base.key_index(key)

    def key_indexes(self, start: bytes, end: bytes | None) -> Iterator[KeyIndex]:
        low = bisect.bisect_left(self._sorted_keys, start)
        high = len(self._sorted_keys) if end is None else bisect.bisect_left(self._sorted_keys, end)
        pending = [self._indexes[key] for key in self._sorted_keys[low:high]]
        from_base = (
            index for index in self.base.key_indexes(start, end) if index.key not in self._indexes
        )
        return heapq.merge(pending, from_base, key=lambda index: index.key)

    def record(self, revision: RevisionPair) -> KeyValue:
        if revision in self._records_by_revision:
            return self._records_by_revision[revision]
        return self.base.record(revision)

    def records_from(self, revision: Revision) -> Iterator[Record]:
        yield from self.base.records_from(revision)
        yield from (record for record in self._records if record.revision.main >= revision)

    def lease(self, lease: LeaseId) -> LeaseRecord | None:
        return self.base.lease(lease)

    def leases(self) -> Iterator[LeaseRecord]:
        return self.base.leases()

    def keys_attached(self, lease: LeaseId) -> tuple[bytes, ...]:
        keys = {key for key in self.base.keys_attached(lease) if key not in self._attached}
        keys.update(key for key, attached in self._attached.items() if attached == lease)
        return tuple(sorted(keys))
