"""What the host reports back: durable entries, applied entries, and snapshots it took (Raft §7)."""

from __future__ import annotations

import attrs

from spec.raft.io import NOTHING, Output
from spec.raft.log import Snapshot
from spec.raft.replication import advance_commit
from spec.raft.state import NodeState, membership_at
from spec.raft.types import LogIndex, Role, Term


def on_storage_acknowledged(
    state: NodeState, index: LogIndex, term: Term
) -> tuple[NodeState, Output]:
    """Entries up to `index` are durable; a leader may now count itself for them (thesis §10.2.1).

    An acknowledgement for an entry that has since been replaced (its term differs) says nothing.
    """
    if index <= state.durable_index or state.log.term_at(index) != term:
        return state, NOTHING
    state = attrs.evolve(state, durable_index=index)
    if state.role is Role.LEADER:
        return advance_commit(state)
    return state, NOTHING


def on_applied(state: NodeState, index: LogIndex) -> tuple[NodeState, Output]:
    """The host applied entries up to `index`; only entries already handed out can have been applied."""
    applied = LogIndex(max(state.applied_index, min(index, state.emitted_index)))
    return attrs.evolve(state, applied_index=applied), NOTHING


def on_compact_log(state: NodeState, index: LogIndex, data: bytes) -> tuple[NodeState, Output]:
    """Replace the log up to `index` by the host's snapshot (Raft §7); only applied entries may be compacted.

    The snapshot keeps the last compacted entry's term and the membership at that point, which
    a follower installing it needs.
    """
    if index <= state.log.snapshot.index or index > state.applied_index:
        return state, NOTHING
    term = state.log.term_at(index)
    assert term is not None
    snapshot = Snapshot(index, term, membership_at(state.log, index), data)
    return attrs.evolve(state, log=state.log.compacted_to(snapshot)), NOTHING
