"""The replicated log as an immutable value: a snapshot point followed by entries.

`Log.snapshot` stands for every entry up to and including `snapshot.index`, which have been
compacted away (Raft §7). Entries after it are kept in order with no gaps, so the entry at
index i is `entries[i - snapshot.index - 1]`. Index 0 with term 0 is the empty log's snapshot.
"""

from __future__ import annotations

import attrs

from spec.raft.types import Entry, LogIndex, Membership, Term


@attrs.frozen(slots=True)
class Snapshot:
    """The compacted prefix: its last index and term, the membership then, and the application's state bytes."""

    index: LogIndex
    term: Term
    membership: Membership
    data: bytes = b""


@attrs.frozen(slots=True)
class Log:
    snapshot: Snapshot
    entries: tuple[Entry, ...] = ()

    def __attrs_post_init__(self) -> None:
        # O(1) on purpose: a log is rebuilt on every append. Every way of building one (append,
        # merge_after, compacted_to) keeps entries contiguous; spec.raft.invariants checks all of them.
        if self.entries:
            assert self.entries[0].index == self.snapshot.index + 1, (
                "log entries follow the snapshot"
            )
            assert self.entries[-1].index == self.snapshot.index + len(self.entries), (
                "log entries are contiguous"
            )

    @property
    def first_index(self) -> LogIndex:
        return LogIndex(self.snapshot.index + 1)

    @property
    def last_index(self) -> LogIndex:
        return LogIndex(self.snapshot.index + len(self.entries))

    @property
    def last_term(self) -> Term:
        return self.entries[-1].term if self.entries else self.snapshot.term

    def term_at(self, index: int) -> Term | None:
        """The term of the entry at `index`; None if it was compacted (below the snapshot) or is beyond the log."""
        if index == self.snapshot.index:
            return self.snapshot.term
        if index < self.snapshot.index or index > self.last_index:
            return None
        return self.entries[index - self.snapshot.index - 1].term

    def entry_at(self, index: int) -> Entry | None:
        if index <= self.snapshot.index or index > self.last_index:
            return None
        return self.entries[index - self.snapshot.index - 1]

    def matches(self, index: int, term: int) -> bool:
        """True when this log has an entry (or the snapshot point) at `index` with `term` (Raft §5.3)."""
        return self.term_at(index) == term

    def slice(self, first: int, count_max: int) -> tuple[Entry, ...]:
        """Up to `count_max` entries starting at `first` (which must not be compacted)."""
        assert first > self.snapshot.index, "slice of compacted entries"
        start = first - self.snapshot.index - 1
        return self.entries[start : start + count_max]

    def entries_after(self, index: int) -> tuple[Entry, ...]:
        start = max(0, index - self.snapshot.index)
        return self.entries[start:]

    def is_up_to_date(self, last_term: int, last_index: int) -> bool:
        """Whether a log ending at (last_term, last_index) is at least as up-to-date as this one (Raft §5.4.1)."""
        return (last_term, last_index) >= (self.last_term, self.last_index)

    def find_conflict_by_term(self, index: int, term: int) -> tuple[LogIndex, Term]:
        """The largest index <= `index` whose term is <= `term`, with that term.

        The fast-backtracking hint (Raft §5.3's optimisation, as etcd's findConflictByTerm): every
        entry after the returned index has a term above `term`, so it cannot match the other log.
        """
        candidate = min(index, self.last_index)
        while candidate > self.snapshot.index:
            entry_term = self.term_at(candidate)
            assert entry_term is not None
            if entry_term <= term:
                return LogIndex(candidate), entry_term
            candidate -= 1
        return self.snapshot.index, self.snapshot.term

    def append(self, entry: Entry) -> Log:
        assert entry.index == self.last_index + 1, "appends go at the end"
        return Log(self.snapshot, (*self.entries, entry))

    def append_all(self, entries: tuple[Entry, ...]) -> Log:
        """`append` of each entry in turn, with one copy of the log."""
        assert all(
            entry.index == self.last_index + 1 + offset for offset, entry in enumerate(entries)
        ), "appends go at the end, in order"
        return Log(self.snapshot, self.entries + entries)

    def merge_after(
        self, previous_index: int, incoming: tuple[Entry, ...]
    ) -> tuple[Log, LogIndex | None]:
        """Add `incoming` (which follow `previous_index`), truncating only at the first conflict.

        Raft §5.3 (Figure 2, AppendEntries receiver steps 3 and 4): an existing entry that
        conflicts with a new one (same index, different term) is deleted with all that follow
        it; entries that already match are kept as they are, so a late or duplicated message
        never shortens the log. Returns the new log and the first index written (None when every
        incoming entry was already present).
        """
        for offset, entry in enumerate(incoming):
            assert entry.index == previous_index + 1 + offset, "incoming entries are contiguous"
            existing_term = self.term_at(entry.index)
            if entry.index <= self.snapshot.index or existing_term == entry.term:
                continue
            kept = self.entries[: entry.index - self.snapshot.index - 1]
            return Log(self.snapshot, kept + incoming[offset:]), entry.index
        return self, None

    def compacted_to(self, snapshot: Snapshot) -> Log:
        """The log after the application's snapshot at `snapshot.index` replaces the prefix (Raft §7)."""
        assert snapshot.index > self.snapshot.index, "compaction moves forward"
        assert self.term_at(snapshot.index) == snapshot.term, (
            "a snapshot covers entries this log has"
        )
        return Log(snapshot, self.entries_after(snapshot.index))
