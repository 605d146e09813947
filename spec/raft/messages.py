"""Every message one Raft node sends another (etcd raftpb.MessageType, minus the local ones).

Every message carries `sender`, `recipient` and the sender's `term`; `step` compares terms
for all of them in one place before any handler runs (Raft §5.1, etcd `raft.Step`).
Messages are untrusted input: a handler never assumes a field is in range.
"""

from __future__ import annotations

import attrs

from spec.raft.log import Snapshot
from spec.raft.types import Entry, LogIndex, NodeId, Term

# Messages are hashed again and again by the explorer (network sets, memoised steps, views): each
# caches its hash. Every field is immutable and hashable, so the cached hash never goes stale.


@attrs.frozen(slots=True, cache_hash=True)
class VoteRequest:
    """RequestVote (Raft §5.2), or a PreVote probe when `pre_vote` (thesis §9.6): `term` is then the term the sender would take."""

    sender: NodeId
    recipient: NodeId
    term: Term
    last_log_index: LogIndex
    last_log_term: Term
    pre_vote: bool = False
    # Set when a leadership transfer asked for this election: voters then ignore their leader lease (thesis §3.10).
    transfer: bool = False


@attrs.frozen(slots=True, cache_hash=True)
class VoteResponse:
    sender: NodeId
    recipient: NodeId
    term: Term
    granted: bool
    pre_vote: bool = False


@attrs.frozen(slots=True, cache_hash=True)
class AppendRequest:
    """AppendEntries (Raft §5.3): entries follow (previous_index, previous_term); `commit` is the leader's commit index."""

    sender: NodeId
    recipient: NodeId
    term: Term
    previous_index: LogIndex
    previous_term: Term
    entries: tuple[Entry, ...]
    commit: LogIndex


@attrs.frozen(slots=True, cache_hash=True)
class AppendResponse:
    """Reply to AppendEntries or to a snapshot.

    Accepted: `index` is the last index known to match the leader's log. Rejected: `index` is
    the rejected `previous_index`, and (`hint_index`, `hint_term`) is the follower's guess at
    where the logs may agree (the fast-backtracking hint, etcd RejectHint/LogTerm).
    """

    sender: NodeId
    recipient: NodeId
    term: Term
    index: LogIndex
    rejected: bool = False
    hint_index: LogIndex = LogIndex(0)
    hint_term: Term = Term(0)


@attrs.frozen(slots=True, cache_hash=True)
class HeartbeatRequest:
    """An empty AppendEntries that only asserts leadership (Raft §5.2); `commit` is capped at the follower's match.

    `read_context` names the newest pending ReadIndex request this round confirms (thesis §6.4).
    """

    sender: NodeId
    recipient: NodeId
    term: Term
    commit: LogIndex
    read_context: bytes | None = None


@attrs.frozen(slots=True, cache_hash=True)
class HeartbeatResponse:
    sender: NodeId
    recipient: NodeId
    term: Term
    read_context: bytes | None = None


@attrs.frozen(slots=True, cache_hash=True)
class SnapshotRequest:
    """InstallSnapshot (Raft §7): sent when a follower needs entries the leader has compacted."""

    sender: NodeId
    recipient: NodeId
    term: Term
    snapshot: Snapshot


@attrs.frozen(slots=True, cache_hash=True)
class TimeoutNow:
    """Leadership transfer: the leader tells a caught-up follower to start an election now (thesis §3.10)."""

    sender: NodeId
    recipient: NodeId
    term: Term


@attrs.frozen(slots=True, cache_hash=True)
class ReadIndexRequest:
    """A follower asks the leader for a safe read index on behalf of its client (thesis §6.4)."""

    sender: NodeId
    recipient: NodeId
    term: Term
    context: bytes


@attrs.frozen(slots=True, cache_hash=True)
class ReadIndexResponse:
    sender: NodeId
    recipient: NodeId
    term: Term
    context: bytes
    index: LogIndex


Message = (
    VoteRequest
    | VoteResponse
    | AppendRequest
    | AppendResponse
    | HeartbeatRequest
    | HeartbeatResponse
    | SnapshotRequest
    | TimeoutNow
    | ReadIndexRequest
    | ReadIndexResponse
)

# Messages whose sender speaks as the leader of `term`; receiving one at a higher term makes the sender our leader.
LEADER_MESSAGES = (AppendRequest, HeartbeatRequest, SnapshotRequest)


def must_wait_for_persistence(message: Message) -> bool:
    """Whether `message` may leave only after the step's hard state and entries are durable.

    Raft §5 (Figure 2) and thesis §3.8: a server persists its term, vote and log before it
    answers, so a vote or acknowledgement survives a crash. Vote requests wait too, because the
    candidate's own term and self-vote must survive a crash before other servers act on them.
    The leader's appends, heartbeats and snapshots may leave first: the leader writes its log
    in parallel with replication and counts itself toward commitment only once its own write is
    acknowledged (thesis §10.2.1).
    """
    return not isinstance(
        message, AppendRequest | HeartbeatRequest | SnapshotRequest | TimeoutNow | ReadIndexResponse
    )
