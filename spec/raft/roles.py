"""Role changes: the only functions that set a node's role (etcd becomeFollower / becomePreCandidate / ...).

Each one sets every field that depends on the role, so no stale leader or vote state leaks
from one role into the next.
"""

from __future__ import annotations

import attrs

from spec.raft.io import NOTHING, Output, Refusal, RefusalReason, RequestRead
from spec.raft.state import LeaderState, NodeState, Progress, draw_election_timeout
from spec.raft.types import LogIndex, NodeId, Role, Term


def reads_lost_on_step_down(state: NodeState) -> Output:
    """Reads a leader had not yet confirmed are refused when it stops leading, so callers need not wait them out."""
    if state.leader_state is None:
        return NOTHING
    contexts = [read.context for read in state.leader_state.reads]
    contexts += [context for context, _ in state.leader_state.reads_awaiting_commit]
    refusals = tuple(
        Refusal(RequestRead(context), RefusalReason.LEADERSHIP_LOST, None) for context in contexts
    )
    return Output(refusals=refusals)


def become_follower(
    state: NodeState, term: Term, leader: NodeId | None
) -> tuple[NodeState, Output]:
    """Step down to follower in `term` (Raft §5.1: a server that sees a larger term reverts to follower).

    The vote is kept only if the term does not change: a server votes at most once per term.
    """
    assert term >= state.term, "terms never decrease"
    refused = reads_lost_on_step_down(state)
    follower = attrs.evolve(
        state,
        role=Role.FOLLOWER,
        term=term,
        vote=state.vote if term == state.term else None,
        leader=leader,
        election_elapsed_ticks=0,
        heartbeat_elapsed_ticks=0,
        votes={},
        leader_state=None,
    )
    return draw_election_timeout(follower), refused


def become_pre_candidate(state: NodeState) -> NodeState:
    """Start a PreVote round without changing term or vote (thesis §9.6), so a partitioned server cannot inflate terms."""
    assert state.role is not Role.LEADER
    pre_candidate = attrs.evolve(
        state,
        role=Role.PRE_CANDIDATE,
        leader=None,
        election_elapsed_ticks=0,
        votes={state.node_id: True},
    )
    return draw_election_timeout(pre_candidate)


def become_candidate(state: NodeState) -> NodeState:
    """Start an election: increment the term, vote for yourself (Raft §5.2)."""
    assert state.role is not Role.LEADER
    candidate = attrs.evolve(
        state,
        role=Role.CANDIDATE,
        term=Term(state.term + 1),
        vote=state.node_id,
        leader=None,
        election_elapsed_ticks=0,
        votes={state.node_id: True},
    )
    return draw_election_timeout(candidate)


def become_leader(state: NodeState) -> NodeState:
    """Take leadership: every follower starts in probe mode just past our last entry (Raft Figure 2 nextIndex)."""
    assert state.role is Role.CANDIDATE, "only a candidate wins an election"
    next_index = LogIndex(state.log.last_index + 1)
    progress = {
        peer: Progress(match_index=LogIndex(0), next_index=next_index)
        for peer in sorted(state.membership.members - {state.node_id})
    }
    return attrs.evolve(
        state,
        role=Role.LEADER,
        leader=state.node_id,
        election_elapsed_ticks=0,
        heartbeat_elapsed_ticks=0,
        votes={},
        leader_state=LeaderState(progress=progress),
    )
