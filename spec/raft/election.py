"""Leader election: timers, PreVote, RequestVote, and CheckQuorum (Raft §5.2, §5.4.1; thesis §9.6, §6.2)."""

from __future__ import annotations

import attrs

from spec.raft.io import NOTHING, Output, send
from spec.raft.messages import VoteRequest, VoteResponse
from spec.raft.replication import append_to_own_log, broadcast_append, broadcast_heartbeat
from spec.raft.roles import become_candidate, become_follower, become_leader, become_pre_candidate
from spec.raft.state import NodeState
from spec.raft.types import EntryKind, Role, Term


def on_election_timeout(state: NodeState) -> tuple[NodeState, Output]:
    """A follower or candidate that hears from no leader for an election timeout campaigns (Raft §5.2)."""
    if state.role is Role.LEADER:
        return state, NOTHING
    return campaign(state, transfer=False)


def campaign(
    state: NodeState, transfer: bool, pre_vote_passed: bool = False
) -> tuple[NodeState, Output]:
    """Ask the voters for their vote: first a PreVote round when enabled, unless this election follows
    a won PreVote round or a transfer asked for it.

    Only a voter of its own membership campaigns (etcd promotable). A cluster of one wins at once.
    Only a transfer's election is marked as one, so only it passes the voters' leader lease (etcd
    campaignTransfer); an election after PreVote is an ordinary one.
    """
    if not state.promotable:
        return state, NOTHING
    if state.settings.pre_vote and not transfer and not pre_vote_passed:
        state = become_pre_candidate(state)
        request_term = Term(state.term + 1)
    else:
        state = become_candidate(state)
        request_term = state.term
    if votes_granted(state) >= state.membership.quorum_size:
        return election_won(state)
    requests = [
        VoteRequest(
            state.node_id,
            voter,
            request_term,
            state.log.last_index,
            state.log.last_term,
            pre_vote=state.role is Role.PRE_CANDIDATE,
            transfer=transfer,
        )
        for voter in sorted(state.membership.voters - {state.node_id})
    ]
    return state, send(*requests)


def election_won(state: NodeState) -> tuple[NodeState, Output]:
    """A won PreVote round starts the real election; a won election makes a leader, whose first act is
    to append an empty entry of its term (Raft §8: it commits everything before it)."""
    if state.role is Role.PRE_CANDIDATE:
        return campaign(state, transfer=False, pre_vote_passed=True)
    state = become_leader(state)
    state, appended = append_to_own_log(state, b"", EntryKind.NORMAL)
    state, sent = broadcast_append(state, allow_empty=True)
    return state, appended.then(sent)


def votes_granted(state: NodeState) -> int:
    return sum(
        1 for voter, granted in state.votes.items() if granted and voter in state.membership.voters
    )


def votes_rejected(state: NodeState) -> int:
    return sum(
        1
        for voter, granted in state.votes.items()
        if not granted and voter in state.membership.voters
    )


def on_vote_request(state: NodeState, message: VoteRequest) -> tuple[NodeState, Output]:
    """Grant a vote if we have not voted for someone else this term and the candidate's log is at
    least as up-to-date as ours (Raft §5.2, §5.4.1).

    A PreVote for a later term is granted on the log check alone and records nothing (thesis §9.6).
    Without a vote in this term we also require knowing no leader (etcd), so a server that follows
    a leader does not help unseat it.
    """
    can_vote = (
        state.vote == message.sender
        or (state.vote is None and state.leader is None)
        or (message.pre_vote and message.term > state.term)
    )
    granted = can_vote and state.log.is_up_to_date(message.last_log_term, message.last_log_index)
    if granted and not message.pre_vote:
        state = attrs.evolve(state, vote=message.sender, election_elapsed_ticks=0)
    response_term = message.term if granted and message.pre_vote else state.term
    reply = VoteResponse(state.node_id, message.sender, response_term, granted, message.pre_vote)
    return state, send(reply)


def on_vote_response(state: NodeState, message: VoteResponse) -> tuple[NodeState, Output]:
    """Count a vote; a majority wins the round, a majority of refusals ends it (Raft §5.2)."""
    expected_role = Role.PRE_CANDIDATE if message.pre_vote else Role.CANDIDATE
    if state.role is not expected_role or message.sender not in state.membership.voters:
        return state, NOTHING
    state = attrs.evolve(state, votes={**state.votes, message.sender: message.granted})
    quorum = state.membership.quorum_size
    if votes_granted(state) >= quorum:
        return election_won(state)
    if votes_rejected(state) >= quorum:
        return become_follower(state, state.term, None)
    return state, NOTHING


def in_leader_lease(state: NodeState) -> bool:
    """Whether we heard from a leader within the minimum election timeout (thesis §4.2.3, etcd inLease).

    With CheckQuorum such a server ignores requests to vote in a later term, so a server that
    was merely cut off cannot depose a leader that a majority still hears.
    """
    return (
        state.settings.check_quorum
        and state.leader is not None
        and state.election_elapsed_ticks < state.settings.election_ticks
    )


def on_tick(state: NodeState) -> tuple[NodeState, Output]:
    """Advance the timers by one tick; a timer that expires fires its timeout."""
    if state.role is Role.LEADER:
        return on_leader_tick(state)
    elapsed = min(state.election_elapsed_ticks + 1, 2 * state.settings.election_ticks)
    state = attrs.evolve(state, election_elapsed_ticks=elapsed)
    if elapsed >= state.election_timeout_ticks and state.promotable:
        return campaign(state, transfer=False)
    return state, NOTHING


def on_leader_tick(state: NodeState) -> tuple[NodeState, Output]:
    """Leader timers: a heartbeat every `heartbeat_ticks`; every election timeout, CheckQuorum and transfer expiry."""
    state = attrs.evolve(
        state,
        election_elapsed_ticks=state.election_elapsed_ticks + 1,
        heartbeat_elapsed_ticks=state.heartbeat_elapsed_ticks + 1,
    )
    leader = state.leader_state
    assert leader is not None
    if leader.transfer_target is not None:
        elapsed = leader.transfer_elapsed_ticks + 1
        target = None if elapsed >= state.settings.election_ticks else leader.transfer_target
        leader = attrs.evolve(leader, transfer_target=target, transfer_elapsed_ticks=elapsed)
        state = attrs.evolve(state, leader_state=leader)
    if state.election_elapsed_ticks >= state.settings.election_ticks:
        state = attrs.evolve(state, election_elapsed_ticks=0)
        if state.settings.check_quorum:
            state, stepped_down = check_quorum(state)
            if state.role is not Role.LEADER:
                return state, stepped_down
    if state.heartbeat_elapsed_ticks >= state.settings.heartbeat_ticks:
        return broadcast_heartbeat(state, None)
    return state, NOTHING


def check_quorum(state: NodeState) -> tuple[NodeState, Output]:
    """A leader that has not heard from a majority within an election timeout steps down (thesis §6.2).

    Every follower's `recently_active` flag is then cleared for the next period.
    """
    leader = state.leader_state
    assert leader is not None
    active = sum(
        1
        for voter in state.membership.voters
        if voter == state.node_id
        or (voter in leader.progress and leader.progress[voter].recently_active)
    )
    if active < state.membership.quorum_size:
        return become_follower(state, state.term, None)
    progress = {
        peer: attrs.evolve(progress, recently_active=False)
        for peer, progress in leader.progress.items()
    }
    return attrs.evolve(state, leader_state=attrs.evolve(leader, progress=progress)), NOTHING
