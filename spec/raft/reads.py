"""Linearizable reads by ReadIndex (thesis §6.4).

1. The leader must have committed an entry of its current term, so its commit index is at
   least that of any earlier leader; reads asked for before then wait.
2. It records its commit index as the read index.
3. It confirms it is still leader by a heartbeat round answered by a majority.
4. The read is served once the state machine has applied the read index.

A follower forwards the request to its leader and receives the read index back.
"""

from __future__ import annotations

import attrs

from spec.raft.io import NOTHING, Output, ReadReady, Refusal, RefusalReason, RequestRead, send
from spec.raft.messages import HeartbeatResponse, ReadIndexRequest, ReadIndexResponse
from spec.raft.replication import broadcast_heartbeat, leader_state_of
from spec.raft.state import NodeState, PendingRead
from spec.raft.types import LogIndex, NodeId, Role


def committed_in_current_term(state: NodeState) -> bool:
    """Whether the entry at the commit index belongs to this node's current term (thesis §6.4 step 1)."""
    return state.log.term_at(state.commit_index) == state.term


def on_request_read(state: NodeState, context: bytes) -> tuple[NodeState, Output]:
    """A local client asks for a read index: the leader handles it, a follower forwards it."""
    if state.role is Role.LEADER:
        return leader_read(state, context, state.node_id)
    if state.leader is None:
        refusal = Refusal(RequestRead(context), RefusalReason.NOT_LEADER, None)
        return state, Output(refusals=(refusal,))
    return state, send(ReadIndexRequest(state.node_id, state.leader, state.term, context))


def on_read_index_request(state: NodeState, message: ReadIndexRequest) -> tuple[NodeState, Output]:
    if state.role is not Role.LEADER or message.sender not in state.membership.members:
        return state, NOTHING
    return leader_read(state, message.context, message.sender)


def leader_read(state: NodeState, context: bytes, requester: NodeId) -> tuple[NodeState, Output]:
    """Steps 1 to 3 for one read on the leader; a single-voter cluster needs no confirmation round."""
    leader = leader_state_of(state)
    if not committed_in_current_term(state):
        waiting = (*leader.reads_awaiting_commit, (context, requester))
        return attrs.evolve(
            state, leader_state=attrs.evolve(leader, reads_awaiting_commit=waiting)
        ), NOTHING
    if state.membership.voters == {state.node_id}:
        return state, answer_read(state, context, requester, state.commit_index)
    read = PendingRead(context, state.commit_index, requester, frozenset({state.node_id}))
    state = attrs.evolve(state, leader_state=attrs.evolve(leader, reads=(*leader.reads, read)))
    return broadcast_heartbeat(state, context)


def answer_read(state: NodeState, context: bytes, requester: NodeId, index: LogIndex) -> Output:
    if requester == state.node_id:
        return Output(reads_ready=(ReadReady(context, index),))
    return send(ReadIndexResponse(state.node_id, requester, state.term, context, index))


def on_read_heartbeat_response(
    state: NodeState, message: HeartbeatResponse
) -> tuple[NodeState, Output]:
    """Step 3: a majority answering the heartbeat round for a read confirms it and every read queued before it."""
    leader = leader_state_of(state)
    if message.read_context is None or message.sender not in state.membership.voters:
        return state, NOTHING
    positions = [i for i, read in enumerate(leader.reads) if read.context == message.read_context]
    if not positions:
        return state, NOTHING
    position = positions[0]
    read = leader.reads[position]
    read = attrs.evolve(read, acknowledged_by=read.acknowledged_by | {message.sender})
    reads = (*leader.reads[:position], read, *leader.reads[position + 1 :])
    if len(read.acknowledged_by & state.membership.voters) < state.membership.quorum_size:
        return attrs.evolve(state, leader_state=attrs.evolve(leader, reads=reads)), NOTHING
    output = NOTHING
    for confirmed in reads[: position + 1]:
        output = output.then(
            answer_read(state, confirmed.context, confirmed.requester, confirmed.index)
        )
    state = attrs.evolve(state, leader_state=attrs.evolve(leader, reads=reads[position + 1 :]))
    return state, output


def release_reads_awaiting_commit(state: NodeState) -> tuple[NodeState, Output]:
    """Once the leader commits in its term, reads that waited for it proceed (etcd pendingReadIndexMessages)."""
    leader = leader_state_of(state)
    if not leader.reads_awaiting_commit or not committed_in_current_term(state):
        return state, NOTHING
    waiting = leader.reads_awaiting_commit
    state = attrs.evolve(state, leader_state=attrs.evolve(leader, reads_awaiting_commit=()))
    output = NOTHING
    for context, requester in waiting:
        state, handled = leader_read(state, context, requester)
        output = output.then(handled)
    return state, output


def on_read_index_response(
    state: NodeState, message: ReadIndexResponse
) -> tuple[NodeState, Output]:
    """A follower's forwarded read came back from the leader with its read index."""
    if state.role is not Role.FOLLOWER or message.sender != state.leader:
        return state, NOTHING
    return state, Output(reads_ready=(ReadReady(message.context, message.index),))
