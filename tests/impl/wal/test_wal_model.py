"""The WAL against a model: any sequence of saves, overwrites, cuts, snapshots, releases and
reopens gives back what a plain list says it should.

Method: a Hypothesis state machine drives one WAL (small segments, so cuts happen often) and
a model (the log as a list with Raft's overwrite rule, the last hard state, the last snapshot
point). Saves follow Raft's rules, as the node's will: terms never decrease, only entries
above the commit index are overwritten, hard states never lower their term, snapshots are
taken at committed entries. After every reopen the WAL must return exactly the model's
entries after the snapshot, and its hard state.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from impl.wal import Entry, HardState, SnapshotPoint, Wal, WalContents
from tests.conftest import DEEP
from tests.impl.wal.helpers import METADATA

SEGMENT_SIZE_BYTES = 2048


class WalMachine(RuleBasedStateMachine):
    """One WAL and its model."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="wal-model-")) / "wal"
        self.log: list[Entry] = []  # the model: every entry from index 1
        self.hard_state = HardState()
        self.snapshot = SnapshotPoint()
        self.wal = Wal.create(self.directory, METADATA, segment_size_bytes=SEGMENT_SIZE_BYTES)
        self.contents: WalContents | None = None

    def teardown(self) -> None:
        self.wal.close()
        shutil.rmtree(self.directory.parent, ignore_errors=True)

    @initialize()
    def start(self) -> None:
        self.contents = None

    @rule(
        count=st.integers(0, 12),
        back=st.integers(0, 5),
        term_step=st.integers(0, 1),
        size=st.integers(0, 300),
        commit_step=st.integers(0, 8),
        vote=st.sampled_from([0, 1, 2]),
    )
    def save(
        self, count: int, back: int, term_step: int, size: int, commit_step: int, vote: int
    ) -> None:
        """Append `count` entries starting up to `back` entries before the end (an overwrite
        of uncommitted entries), in the current term or the next one."""
        term = max(self.hard_state.term, 1) + term_step
        first = max(self.hard_state.commit + 1, len(self.log) + 1 - back)
        entries = [
            Entry(term, index, data=bytes([index % 251]) * size)
            for index in range(first, first + count)
        ]
        if entries:
            del self.log[first - 1 :]
            self.log.extend(entries)
        commit = min(len(self.log), self.hard_state.commit + commit_step)
        if term != self.hard_state.term:
            vote = vote  # a new term may come with a new vote
        else:
            vote = self.hard_state.vote
        state = HardState(term, vote, commit)
        self.wal.save(state, entries)
        if entries or (state != self.hard_state and state != HardState()):
            self.hard_state = state

    @rule()
    def cut(self) -> None:
        self.wal.cut()

    @precondition(lambda self: self.hard_state.commit > self.snapshot.index)
    @rule(kept=st.integers(1, 3), data=st.data())
    def snapshot_and_release(self, kept: int, data: st.DataObject) -> None:
        """Snapshot at a committed entry, record it, and purge old segments."""
        index = data.draw(st.integers(self.snapshot.index + 1, self.hard_state.commit))
        point = SnapshotPoint(index, self.log[index - 1].term)
        self.wal.save_snapshot(point)
        self.snapshot = point
        self.wal.release_to(index, segments_kept_max=kept)

    @rule()
    def reopen(self) -> None:
        self.wal.close()
        self.wal, self.contents = Wal.open(
            self.directory, self.snapshot, segment_size_bytes=SEGMENT_SIZE_BYTES
        )

    @invariant()
    def reopened_wal_matches_the_model(self) -> None:
        if self.contents is None:
            return
        expected = [entry for entry in self.log if entry.index > self.snapshot.index]
        assert list(self.contents.entries) == expected
        assert self.contents.hard_state == self.hard_state
        assert self.contents.metadata == METADATA
        self.contents = None


TestWalMachine = WalMachine.TestCase
# Every save is a real fdatasync (milliseconds here), so the example counts are set to fit
# the time budgets: about 10 s by default, a few minutes under ETCDREF_DEEP=1.
TestWalMachine.settings = settings(
    settings.default, max_examples=400 if DEEP else 60, stateful_step_count=30
)
