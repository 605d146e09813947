"""`step(state, input) -> (state, output)`: the one entry point of a Raft node.

Order of work for a message (etcd raft.Step): first the checks every message gets (addressed to
us, term comparison, which may make us a follower), then dispatch by message kind and role.
After any input, `settle` applies what follows from a changed commit index: the membership in
force, a leader's follower list, the reads that waited for a commit, and what to persist and
apply.
"""

from __future__ import annotations

import attrs

from spec.raft.election import (
    in_leader_lease,
    on_election_timeout,
    on_tick,
    on_vote_request,
    on_vote_response,
)
from spec.raft.io import (
    NOTHING,
    Applied,
    CompactLog,
    ElectionTimeout,
    HeartbeatTimeout,
    Input,
    Output,
    Propose,
    ProposeBatch,
    ProposeConfigurationChange,
    Receive,
    RequestRead,
    StorageAcknowledged,
    Tick,
    TransferLeadership,
    send,
)
from spec.raft.messages import (
    LEADER_MESSAGES,
    AppendRequest,
    AppendResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    SnapshotRequest,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from spec.raft.proposals import on_propose, on_propose_batch, on_propose_configuration_change
from spec.raft.reads import (
    on_read_heartbeat_response,
    on_read_index_request,
    on_read_index_response,
    on_request_read,
    release_reads_awaiting_commit,
)
from spec.raft.replication import (
    broadcast_heartbeat,
    leader_state_of,
    on_append_request,
    on_append_response,
    on_heartbeat_request,
    on_heartbeat_response,
    on_snapshot_request,
    stale_term_reply,
)
from spec.raft.roles import become_follower
from spec.raft.state import LeaderState, NodeState, Progress, membership_at
from spec.raft.storage import on_applied, on_compact_log, on_storage_acknowledged
from spec.raft.transfer import continue_transfer, on_timeout_now, on_transfer_leadership
from spec.raft.types import LogIndex, Role


def step(state: NodeState, event: Input) -> tuple[NodeState, Output]:
    """Apply one input to a node; return its next state and what the host must do (see `spec.raft.io`)."""
    match event:
        case Tick():
            after, output = on_tick(state)
        case ElectionTimeout():
            after, output = on_election_timeout(state)
        case HeartbeatTimeout():
            after, output = on_heartbeat_timeout(state)
        case Receive(message):
            after, output = on_message(state, message)
        case Propose(data):
            after, output = on_propose(state, data)
        case ProposeBatch(data):
            after, output = on_propose_batch(state, data)
        case ProposeConfigurationChange(change):
            after, output = on_propose_configuration_change(state, change)
        case RequestRead(context):
            after, output = on_request_read(state, context)
        case TransferLeadership(target):
            after, output = on_transfer_leadership(state, target)
        case StorageAcknowledged(index, term):
            after, output = on_storage_acknowledged(state, index, term)
        case Applied(index):
            after, output = on_applied(state, index)
        case CompactLog(index, data):
            after, output = on_compact_log(state, index, data)
    return settle(state, after, output)


def on_heartbeat_timeout(state: NodeState) -> tuple[NodeState, Output]:
    if state.role is not Role.LEADER:
        return state, NOTHING
    return broadcast_heartbeat(state, None)


# --- Messages ------------------------------------------------------------------------------------


def should_ignore_message(state: NodeState, message: Message) -> bool:
    """Messages not addressed to us, claiming to come from us, or with impossible ids or terms are dropped."""
    return (
        message.recipient != state.node_id
        or message.sender == state.node_id
        or message.sender <= 0
        or message.term < 0
    )


def on_message(state: NodeState, message: Message) -> tuple[NodeState, Output]:
    """Term checks for every message (Raft §5.1), then the handler for its kind."""
    if should_ignore_message(state, message):
        return state, NOTHING
    output = NOTHING
    if message.term > state.term:
        if isinstance(message, VoteRequest) and in_leader_lease(state) and not message.transfer:
            return state, NOTHING
        if not keeps_term_on_higher_term(message):
            leader = message.sender if isinstance(message, LEADER_MESSAGES) else None
            state, output = become_follower(state, message.term, leader)
    elif message.term < state.term:
        return on_stale_term_message(state, message)
    state, handled = dispatch(state, message)
    return state, output.then(handled)


def keeps_term_on_higher_term(message: Message) -> bool:
    """A PreVote request, or a granted PreVote answer, carries a term nobody has taken yet (thesis §9.6)."""
    if isinstance(message, VoteRequest):
        return message.pre_vote
    return isinstance(message, VoteResponse) and message.pre_vote and message.granted


def on_stale_term_message(state: NodeState, message: Message) -> tuple[NodeState, Output]:
    """Messages from an older term are dropped, except two that are answered with our term (etcd).

    An append or heartbeat from a deposed leader gets a reply, so it learns the new term and
    steps down (needed with CheckQuorum, where it may not otherwise hear of it); a PreVote
    from an older term is refused, so the pre-candidate learns it is behind.
    """
    answers_stale_leaders = state.settings.check_quorum or state.settings.pre_vote
    if isinstance(message, AppendRequest | HeartbeatRequest) and answers_stale_leaders:
        return state, send(stale_term_reply(state, message.sender))
    if isinstance(message, VoteRequest) and message.pre_vote:
        return state, send(VoteResponse(state.node_id, message.sender, state.term, False, True))
    return state, NOTHING


def dispatch(state: NodeState, message: Message) -> tuple[NodeState, Output]:
    """Route a message of our term (or a PreVote) to the handler for its kind and our role."""
    match message:
        case VoteRequest():
            return on_vote_request(state, message)
        case VoteResponse():
            return on_vote_response(state, message)
        case AppendRequest() | HeartbeatRequest() | SnapshotRequest():
            return on_leader_message(state, message)
        case AppendResponse() | HeartbeatResponse():
            if state.role is not Role.LEADER:
                return state, NOTHING
            return on_follower_answer(state, message)
        case ReadIndexRequest():
            return on_read_index_request(state, message)
        case ReadIndexResponse():
            return on_read_index_response(state, message)
        case TimeoutNow():
            return on_timeout_now(state, message)


def on_leader_message(
    state: NodeState, message: AppendRequest | HeartbeatRequest | SnapshotRequest
) -> tuple[NodeState, Output]:
    """A message from the leader of our term: a candidate steps down (Raft §5.2); a follower resets its timer."""
    if state.role is Role.LEADER:
        return state, NOTHING  # two leaders in one term cannot happen; ignore rather than trust it
    output = NOTHING
    if state.role is not Role.FOLLOWER:
        state, output = become_follower(state, message.term, message.sender)
    state = attrs.evolve(state, leader=message.sender, election_elapsed_ticks=0)
    match message:
        case AppendRequest():
            state, handled = on_append_request(state, message)
        case HeartbeatRequest():
            state, handled = on_heartbeat_request(state, message)
        case SnapshotRequest():
            state, handled = on_snapshot_request(state, message)
    return state, output.then(handled)


def on_follower_answer(
    state: NodeState, message: AppendResponse | HeartbeatResponse
) -> tuple[NodeState, Output]:
    if isinstance(message, AppendResponse):
        state, output = on_append_response(state, message)
        if state.role is Role.LEADER and leader_state_of(state).transfer_target == message.sender:
            state, more = continue_transfer(state)
            output = output.then(more)
        return state, output
    state, output = on_heartbeat_response(state, message)
    state, confirmed = on_read_heartbeat_response(state, message)
    return state, output.then(confirmed)


# --- After every input ---------------------------------------------------------------------------


def settle(before: NodeState, after: NodeState, output: Output) -> tuple[NodeState, Output]:
    """Derive what follows from the input's effect: membership, leader bookkeeping, persistence, applying."""
    if after.commit_index != before.commit_index or after.log.snapshot != before.log.snapshot:
        after, more = on_commit_changed(after)
        output = output.then(more)
    if after.role is Role.LEADER:
        after, released = release_reads_awaiting_commit(after)
        output = output.then(released)
    if after.hard_state != before.hard_state:
        output = output.then(Output(hard_state_to_persist=after.hard_state))
    return emit_committed_entries(after, output)


def on_commit_changed(state: NodeState) -> tuple[NodeState, Output]:
    """A committed membership change takes effect (etcd applies it when applied); a leader updates its
    follower list, and steps down if it was removed (etcd StepDownOnRemoval)."""
    membership = membership_at(state.log, state.commit_index)
    if membership == state.membership:
        return state, NOTHING
    state = attrs.evolve(state, membership=membership)
    if state.role is not Role.LEADER:
        return state, NOTHING
    if state.node_id not in membership.voters:
        return become_follower(state, state.term, None)
    leader = leader_state_of(state)
    next_index = LogIndex(state.log.last_index + 1)
    progress = {
        peer: leader.progress.get(peer, Progress(LogIndex(0), next_index))
        for peer in sorted(membership.members - {state.node_id})
    }
    target = leader.transfer_target if leader.transfer_target in membership.voters else None
    leader = LeaderState(
        progress, leader.reads, leader.reads_awaiting_commit, target, leader.transfer_elapsed_ticks
    )
    return attrs.evolve(state, leader_state=leader), NOTHING


def emit_committed_entries(state: NodeState, output: Output) -> tuple[NodeState, Output]:
    """Hand out committed entries once each, in order, and only once durable here (Raft §5.3, thesis §10.2.1)."""
    last = min(state.commit_index, state.durable_index, state.log.last_index)
    if last <= state.emitted_index:
        return state, output
    first = max(state.emitted_index + 1, state.log.first_index)
    entries = state.log.slice(first, last - first + 1)
    state = attrs.evolve(state, emitted_index=LogIndex(last))
    return state, output.then(Output(committed_entries=entries))
