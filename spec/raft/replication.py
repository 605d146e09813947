"""Log replication: AppendEntries and its responses, heartbeats, snapshots, and the commit rule.

Leader side: `send_append` chooses what one follower gets next (entries, an empty append or a
snapshot) under flow control; `on_append_response` moves that follower's progress;
`advance_commit` applies the commit rule. Follower side: `on_append_request`,
`on_heartbeat_request` and `on_snapshot_request`, each answering with an `AppendResponse` or a
`HeartbeatResponse`.
"""

from __future__ import annotations

import attrs

from spec.raft.io import NOTHING, Output, send
from spec.raft.log import Log
from spec.raft.messages import (
    AppendRequest,
    AppendResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    SnapshotRequest,
)
from spec.raft.state import LeaderState, NodeState, Progress, ReplicationMode
from spec.raft.types import Entry, EntryKind, LogIndex, NodeId

# --- Leader: sending ----------------------------------------------------------------------------


def leader_state_of(state: NodeState) -> LeaderState:
    assert state.leader_state is not None, "only a leader has leader state"
    return state.leader_state


def with_progress(state: NodeState, peer: NodeId, progress: Progress) -> NodeState:
    leader = leader_state_of(state)
    return attrs.evolve(
        state, leader_state=attrs.evolve(leader, progress={**leader.progress, peer: progress})
    )


def append_to_own_log(state: NodeState, data: bytes, kind: EntryKind) -> tuple[NodeState, Output]:
    """The leader appends a new entry of its term at the end of its log (Raft §5.3: leaders never overwrite)."""
    entry = Entry(state.term, LogIndex(state.log.last_index + 1), kind, data)
    appended = attrs.evolve(state, log=state.log.append(entry))
    return appended, Output(entries_to_persist=(entry,))


def append_all_to_own_log(state: NodeState, data: tuple[bytes, ...]) -> tuple[NodeState, Output]:
    """`append_to_own_log` of each command in turn, as normal entries of the leader's term."""
    first = state.log.last_index + 1
    entries = tuple(
        Entry(state.term, LogIndex(first + offset), EntryKind.NORMAL, each)
        for offset, each in enumerate(data)
    )
    appended = attrs.evolve(state, log=state.log.append_all(entries))
    return appended, Output(entries_to_persist=entries)


def send_append(state: NodeState, peer: NodeId, allow_empty: bool) -> tuple[NodeState, Output]:
    """Send `peer` the next entries it lacks, or the snapshot if they were compacted (Raft §5.3, §7).

    Flow control (etcd Progress): in PROBE at most one append is unanswered; in REPLICATE at most
    `inflight_appends_max`, each with at most `entries_per_message_max` entries; in SNAPSHOT
    nothing is sent until the snapshot is acknowledged (or a heartbeat response asks again).
    """
    progress = leader_state_of(state).progress[peer]
    settings = state.settings
    if progress.paused or len(progress.inflight) >= settings.inflight_appends_max:
        return state, NOTHING
    previous_index = LogIndex(progress.next_index - 1)
    previous_term = state.log.term_at(previous_index)
    if previous_term is None or progress.mode is ReplicationMode.SNAPSHOT:
        return send_snapshot(state, peer)
    entries: tuple[Entry, ...] = ()
    if progress.next_index <= state.log.last_index:
        entries = state.log.slice(progress.next_index, settings.entries_per_message_max)
    if not entries and not allow_empty:
        return state, NOTHING
    message = AppendRequest(
        state.node_id, peer, state.term, previous_index, previous_term, entries, state.commit_index
    )
    if progress.mode is ReplicationMode.PROBE:
        progress = attrs.evolve(progress, probe_sent=True)
    elif entries:
        last_sent = entries[-1].index
        progress = attrs.evolve(
            progress,
            next_index=LogIndex(last_sent + 1),
            inflight=(*progress.inflight, last_sent),
        )
    return with_progress(state, peer, progress), send(message)


def send_snapshot(state: NodeState, peer: NodeId) -> tuple[NodeState, Output]:
    """Send the leader's snapshot to a follower whose next entry was compacted (Raft §7)."""
    snapshot = state.log.snapshot
    progress = attrs.evolve(
        leader_state_of(state).progress[peer],
        mode=ReplicationMode.SNAPSHOT,
        pending_snapshot_index=snapshot.index,
        probe_sent=True,
        inflight=(),
    )
    message = SnapshotRequest(state.node_id, peer, state.term, snapshot)
    return with_progress(state, peer, progress), send(message)


def broadcast_append(state: NodeState, allow_empty: bool) -> tuple[NodeState, Output]:
    output = NOTHING
    for peer in sorted(leader_state_of(state).progress):
        state, sent = send_append(state, peer, allow_empty)
        output = output.then(sent)
    return state, output


def broadcast_heartbeat(state: NodeState, read_context: bytes | None) -> tuple[NodeState, Output]:
    """Assert leadership to every follower (Raft §5.2). The commit sent is capped at the follower's
    match, so a follower never commits an entry it may not have (etcd sendHeartbeat)."""
    leader = leader_state_of(state)
    messages = [
        HeartbeatRequest(
            state.node_id,
            peer,
            state.term,
            LogIndex(min(progress.match_index, state.commit_index)),
            read_context,
        )
        for peer, progress in sorted(leader.progress.items())
    ]
    return attrs.evolve(state, heartbeat_elapsed_ticks=0), send(*messages)


# --- Leader: receiving ---------------------------------------------------------------------------


def on_append_response(state: NodeState, message: AppendResponse) -> tuple[NodeState, Output]:
    """Move the follower's progress on an answer to AppendEntries or InstallSnapshot (Raft §5.3)."""
    progress = leader_state_of(state).progress.get(message.sender)
    if progress is None:
        return state, NOTHING  # not a member we replicate to
    progress = attrs.evolve(progress, recently_active=True)
    if message.rejected:
        state = with_progress(
            state, message.sender, rejected_progress(state.log, progress, message)
        )
        return send_append(state, message.sender, allow_empty=False)
    if message.index > state.log.last_index:
        return with_progress(
            state, message.sender, progress
        ), NOTHING  # claims entries we never sent
    updated = message.index > progress.match_index
    progress = accepted_progress(progress, message.index)
    state = with_progress(state, message.sender, progress)
    output = NOTHING
    if updated:
        state, output = advance_commit(state)
        state, more = send_append(state, message.sender, allow_empty=False)
        output = output.then(more)
    return state, output


def rejected_progress(log: Log, progress: Progress, message: AppendResponse) -> Progress:
    """Back `next_index` up after a rejection, skipping whole terms with the follower's hint (etcd MaybeDecrTo).

    A rejection that does not answer the latest probe (or is below match while replicating) is
    stale and changes nothing; `next_index` never drops to or below `match_index`.
    """
    rejected = message.index
    if progress.mode is ReplicationMode.REPLICATE:
        if rejected <= progress.match_index:
            return progress
        return attrs.evolve(
            progress,
            mode=ReplicationMode.PROBE,
            next_index=LogIndex(progress.match_index + 1),
            inflight=(),
            probe_sent=False,
        )
    if progress.mode is ReplicationMode.SNAPSHOT or rejected != progress.next_index - 1:
        return progress
    probe_index, _ = log.find_conflict_by_term(message.hint_index, message.hint_term)
    next_index = max(min(rejected, probe_index + 1), progress.match_index + 1)
    return attrs.evolve(progress, next_index=LogIndex(next_index), probe_sent=False)


def accepted_progress(progress: Progress, index: LogIndex) -> Progress:
    """Record that the follower's log matches ours up to `index`; a found match turns probing into pipelining."""
    match_index = LogIndex(max(progress.match_index, index))
    next_index = LogIndex(max(progress.next_index, match_index + 1))
    progress = attrs.evolve(progress, match_index=match_index, next_index=next_index)
    match progress.mode:
        case ReplicationMode.PROBE:
            if index < progress.match_index:
                return progress
            return start_replicating(progress)
        case ReplicationMode.SNAPSHOT:
            if match_index < progress.pending_snapshot_index:
                return progress
            return start_replicating(progress)
        case ReplicationMode.REPLICATE:
            return attrs.evolve(
                progress, inflight=tuple(last for last in progress.inflight if last > index)
            )


def start_replicating(progress: Progress) -> Progress:
    """Pipeline appends from just past the match, with an empty in-flight window (etcd BecomeReplicate)."""
    return attrs.evolve(
        progress,
        mode=ReplicationMode.REPLICATE,
        next_index=LogIndex(progress.match_index + 1),
        probe_sent=False,
        pending_snapshot_index=LogIndex(0),
        inflight=(),
    )


def quorum_match_index(state: NodeState) -> LogIndex:
    """The highest index stored on a majority of voters; the leader counts only what it has made durable."""
    leader = leader_state_of(state)
    matches = sorted(
        (
            state.durable_index if voter == state.node_id else leader.progress[voter].match_index
            for voter in state.membership.voters
            if voter == state.node_id or voter in leader.progress
        ),
        reverse=True,
    )
    quorum = state.membership.quorum_size
    if len(matches) < quorum:
        return state.commit_index
    return LogIndex(matches[quorum - 1])


def advance_commit(state: NodeState) -> tuple[NodeState, Output]:
    """Commit up to the quorum match, but only by counting replicas of an entry of the current term.

    Raft §5.4.2 (Figure 8): an entry from an earlier term is committed only indirectly, when an
    entry of the leader's own term after it is stored on a majority. Commit then reaches the
    followers in appends (etcd bcastAppend on commit).
    """
    candidate = quorum_match_index(state)
    if candidate <= state.commit_index or state.log.term_at(candidate) != state.term:
        return state, NOTHING
    state = attrs.evolve(state, commit_index=candidate)
    return broadcast_append(state, allow_empty=True)


def on_heartbeat_response(state: NodeState, message: HeartbeatResponse) -> tuple[NodeState, Output]:
    """A heartbeat answer shows the follower is alive: resume probing it and send what it lacks (etcd).

    Without this, an append lost in flight would pause a follower forever: in PROBE the probe is
    never answered, in REPLICATE the in-flight window stays full. The append is sent even when
    it carries no entries (etcd sendAppend, sendIfEmpty): in REPLICATE everything may already
    be in flight, and if it was lost only the follower's rejection of an empty append at
    `next_index - 1` turns the leader back to probing (and to a snapshot once compacted).
    """
    progress = leader_state_of(state).progress.get(message.sender)
    if progress is None:
        return state, NOTHING
    progress = attrs.evolve(progress, recently_active=True, probe_sent=False)
    if len(progress.inflight) >= state.settings.inflight_appends_max:
        # An append may have been lost: let one more through, so a gap is detected (etcd FreeFirstOne).
        progress = attrs.evolve(progress, inflight=progress.inflight[1:])
    state = with_progress(state, message.sender, progress)
    if progress.match_index < state.log.last_index:
        return send_append(state, message.sender, allow_empty=True)
    return state, NOTHING


# --- Follower: receiving -------------------------------------------------------------------------


def is_well_formed_append(message: AppendRequest) -> bool:
    """Entries must follow `previous_index` contiguously with terms that never decrease and never exceed the sender's term."""
    previous_term = message.previous_term
    for offset, entry in enumerate(message.entries):
        if entry.index != message.previous_index + 1 + offset:
            return False
        if entry.term < previous_term or entry.term > message.term:
            return False
        previous_term = entry.term
    return message.previous_index >= 0 and 0 <= message.previous_term <= message.term


def on_append_request(state: NodeState, message: AppendRequest) -> tuple[NodeState, Output]:
    """AppendEntries receiver (Raft Figure 2).

    Reply false if the log has no entry at `previous_index` with `previous_term` (with a hint);
    otherwise keep matching entries, replace from the first conflict, append the rest, and set
    commit to min(leader commit, index of last new entry). An append below our commit index is
    answered with the commit index (etcd), since everything up to it already matches.
    """
    if not is_well_formed_append(message):
        return state, NOTHING
    if message.previous_index < state.commit_index:
        return state, send(reply_accepted(state, message.sender, state.commit_index))
    if not state.log.matches(message.previous_index, message.previous_term):
        hint_index, hint_term = state.log.find_conflict_by_term(
            min(message.previous_index, state.log.last_index), message.previous_term
        )
        reply = AppendResponse(
            state.node_id,
            message.sender,
            state.term,
            message.previous_index,
            True,
            hint_index,
            hint_term,
        )
        return state, send(reply)
    log, first_written = state.log.merge_after(message.previous_index, message.entries)
    last_new = LogIndex(message.previous_index + len(message.entries))
    output = NOTHING
    durable_index = state.durable_index
    if first_written is not None:
        output = Output(entries_to_persist=log.entries_after(first_written - 1))
        durable_index = LogIndex(min(durable_index, first_written - 1))
    commit = LogIndex(max(state.commit_index, min(message.commit, last_new)))
    state = attrs.evolve(state, log=log, commit_index=commit, durable_index=durable_index)
    return state, output.then(send(reply_accepted(state, message.sender, last_new)))


def reply_accepted(state: NodeState, leader: NodeId, index: LogIndex) -> AppendResponse:
    return AppendResponse(state.node_id, leader, state.term, index)


def on_heartbeat_request(state: NodeState, message: HeartbeatRequest) -> tuple[NodeState, Output]:
    """Heartbeat receiver: learn the commit index, never beyond our own last entry (Raft §5.3)."""
    commit = LogIndex(max(state.commit_index, min(message.commit, state.log.last_index)))
    reply = HeartbeatResponse(state.node_id, message.sender, state.term, message.read_context)
    return attrs.evolve(state, commit_index=commit), send(reply)


def on_snapshot_request(state: NodeState, message: SnapshotRequest) -> tuple[NodeState, Output]:
    """InstallSnapshot receiver (Raft §7).

    A snapshot we already cover (at or below commit) is answered with our commit. If our log
    has the snapshot's last entry, the snapshot only moves commit forward and the entries are
    kept. Otherwise the whole log is replaced by the snapshot, which the host restores.
    """
    snapshot = message.snapshot
    if snapshot.term > message.term or snapshot.index < 0 or not snapshot.membership.voters:
        return state, NOTHING
    if snapshot.index <= state.commit_index:
        return state, send(reply_accepted(state, message.sender, state.commit_index))
    if state.log.matches(snapshot.index, snapshot.term):
        state = attrs.evolve(state, commit_index=snapshot.index)
        return state, send(reply_accepted(state, message.sender, snapshot.index))
    state = attrs.evolve(
        state,
        log=Log(snapshot),
        commit_index=snapshot.index,
        membership=snapshot.membership,
        durable_index=snapshot.index,
        emitted_index=snapshot.index,
        applied_index=snapshot.index,
    )
    output = Output(snapshot_to_persist=snapshot)
    return state, output.then(send(reply_accepted(state, message.sender, snapshot.index)))


def stale_term_reply(state: NodeState, sender: NodeId) -> AppendResponse:
    """Answer to an append from a leader of an older term: our term makes it step down (etcd, with CheckQuorum/PreVote)."""
    return AppendResponse(state.node_id, sender, state.term, LogIndex(0))
