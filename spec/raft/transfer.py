"""Leadership transfer (thesis §3.10): catch the target up, then tell it to time out now."""

from __future__ import annotations

import attrs

from spec.raft.election import campaign
from spec.raft.io import NOTHING, Output, Refusal, RefusalReason, TransferLeadership, send
from spec.raft.messages import TimeoutNow
from spec.raft.replication import leader_state_of, send_append
from spec.raft.state import NodeState
from spec.raft.types import NodeId, Role


def on_transfer_leadership(state: NodeState, target: NodeId) -> tuple[NodeState, Output]:
    """Start handing leadership to `target`, a voter; proposals are refused until it ends (thesis §3.10).

    The transfer is abandoned after an election timeout (on tick) if the target has not taken over.
    """
    if state.role is not Role.LEADER:
        refusal = Refusal(TransferLeadership(target), RefusalReason.NOT_LEADER, state.leader)
        return state, Output(refusals=(refusal,))
    leader = leader_state_of(state)
    if target == state.node_id or leader.transfer_target == target:
        return state, NOTHING
    if target not in state.membership.voters or target not in leader.progress:
        refusal = Refusal(TransferLeadership(target), RefusalReason.BAD_TARGET, state.leader)
        return state, Output(refusals=(refusal,))
    leader = attrs.evolve(leader, transfer_target=target, transfer_elapsed_ticks=0)
    state = attrs.evolve(state, leader_state=leader)
    return continue_transfer(state)


def continue_transfer(state: NodeState) -> tuple[NodeState, Output]:
    """Send TimeoutNow once the target's log matches ours in full; until then, send it entries."""
    if state.leader_state is None or state.leader_state.transfer_target is None:
        return state, NOTHING
    target = state.leader_state.transfer_target
    if state.leader_state.progress[target].match_index == state.log.last_index:
        return state, send(TimeoutNow(state.node_id, target, state.term))
    return send_append(state, target, allow_empty=False)


def on_timeout_now(state: NodeState, message: TimeoutNow) -> tuple[NodeState, Output]:
    """The target starts an election at once, skipping PreVote and marked as a transfer so voters ignore their lease."""
    if state.role is not Role.FOLLOWER:
        return state, NOTHING
    return campaign(state, transfer=True)
