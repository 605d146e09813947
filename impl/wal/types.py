"""The plain data the WAL stores and returns, in etcd's terms (ids are uint64, 0 means none)."""

from __future__ import annotations

import enum
from typing import NamedTuple

import attrs


class EntryType(enum.IntEnum):
    """raftpb.EntryType: what an entry's data holds."""

    NORMAL = 0  # an etcdserverpb.InternalRaftRequest (or empty: a new leader's no-op)
    CONF_CHANGE = 1  # a raftpb.ConfChange
    CONF_CHANGE_V2 = 2  # a raftpb.ConfChangeV2


class Entry(NamedTuple):
    """One Raft log entry as etcd persists it (raftpb.Entry).

    Immutable like the attrs classes below, but a NamedTuple, for speed: replay builds one
    per entry (close to a million for a 256 MB log), and a tuple is built in C, where a frozen
    attrs instance sets each field through `object.__setattr__` (0.2 to 0.6 µs more per entry,
    measured in `benchmarks/wal/README.md`). Being a tuple, it also equals a plain tuple of
    the same values; compare entries with entries only.
    """

    term: int
    index: int  # type: ignore[assignment]  # the field hides tuple.index, never used on an entry
    entry_type: int = EntryType.NORMAL
    data: bytes = b""


@attrs.frozen(slots=True)
class HardState:
    """raftpb.HardState: Raft's currentTerm and votedFor (paper Figure 2) and the commit index."""

    term: int = 0
    vote: int = 0
    commit: int = 0

    def is_empty(self) -> bool:
        """etcd writes no state record for an empty hard state (raft.IsEmptyHardState)."""
        return self.term == 0 and self.vote == 0 and self.commit == 0


EMPTY_HARD_STATE = HardState()


@attrs.frozen(slots=True)
class WalMetadata:
    """etcdserverpb.Metadata, written at the head of every segment."""

    node_id: int
    cluster_id: int


@attrs.frozen(slots=True)
class SnapshotPoint:
    """walpb.Snapshot: the (index, term) of a snapshot, recorded in the WAL when one is taken."""

    index: int = 0
    term: int = 0


ZERO_SNAPSHOT = SnapshotPoint()  # a new WAL records this point; open at it to read everything


@attrs.frozen(slots=True)
class WalContents:
    """What opening a WAL yields: its metadata, the last hard state, and the entries after the
    snapshot point, in index order with overwritten suffixes already dropped (etcd `ReadAll`).

    Entries above `hard_state.commit` may be uncommitted and must not be applied yet.
    """

    metadata: WalMetadata
    hard_state: HardState
    entries: tuple[Entry, ...]
