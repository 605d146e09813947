"""Client proposals on the leader: new entries and one-server membership changes (Raft §5.3; thesis §4.1)."""

from __future__ import annotations

from spec.raft.io import Output, Propose, ProposeConfigurationChange, Refusal, RefusalReason
from spec.raft.reads import committed_in_current_term
from spec.raft.replication import append_all_to_own_log, append_to_own_log, broadcast_append
from spec.raft.state import NodeState
from spec.raft.types import ConfigurationChange, EntryKind, Role


def refusal_reason_for_proposal(state: NodeState) -> RefusalReason | None:
    """Only a leader takes proposals, and not while it hands leadership over (thesis §3.10: new requests would be lost)."""
    if state.role is not Role.LEADER:
        return RefusalReason.NOT_LEADER
    assert state.leader_state is not None
    if state.leader_state.transfer_target is not None:
        return RefusalReason.TRANSFER_IN_PROGRESS
    return None


def on_propose(state: NodeState, data: bytes) -> tuple[NodeState, Output]:
    """The leader appends the command to its log and replicates it (Raft §5.3)."""
    reason = refusal_reason_for_proposal(state)
    if reason is not None:
        return state, Output(refusals=(Refusal(Propose(data), reason, state.leader),))
    state, appended = append_to_own_log(state, data, EntryKind.NORMAL)
    state, sent = broadcast_append(state, allow_empty=False)
    return state, appended.then(sent)


def on_propose_batch(state: NodeState, data: tuple[bytes, ...]) -> tuple[NodeState, Output]:
    """Commands that arrived together are appended in order and replicated in the same messages
    (Raft §5.3; etcd's MsgProp carries many entries): the log and state `on_propose` of each in
    turn would give, with fewer messages; refused, each is refused as its own `Propose`."""
    reason = refusal_reason_for_proposal(state)
    if reason is not None:
        refusals = tuple(Refusal(Propose(each), reason, state.leader) for each in data)
        return state, Output(refusals=refusals)
    state, appended = append_all_to_own_log(state, data)
    state, sent = broadcast_append(state, allow_empty=False)
    return state, appended.then(sent)


def has_pending_configuration_change(state: NodeState) -> bool:
    """Whether the log holds a membership change that is not yet committed."""
    return any(
        entry.kind is EntryKind.CONFIGURATION
        for entry in state.log.entries_after(state.commit_index)
    )


def refusal_reason_for_change(
    state: NodeState, change: ConfigurationChange
) -> RefusalReason | None:
    """When a membership change may be proposed (thesis §4.1 and its 2015 correction).

    One change at a time: none may be pending. And the leader must first commit an entry of its
    own term; otherwise changes proposed in different terms can give two disjoint majorities
    (the single-server membership change bug, raft-dev 2015). The change must also change
    something and leave at least one voter.
    """
    reason = refusal_reason_for_proposal(state)
    if reason is not None:
        return reason
    if not committed_in_current_term(state):
        return RefusalReason.NO_COMMIT_IN_TERM
    if has_pending_configuration_change(state):
        return RefusalReason.CHANGE_PENDING
    changed = state.membership.apply(change)
    if changed == state.membership or not changed.voters:
        return RefusalReason.BAD_REQUEST
    return None


def on_propose_configuration_change(
    state: NodeState, change: ConfigurationChange
) -> tuple[NodeState, Output]:
    reason = refusal_reason_for_change(state, change)
    if reason is not None:
        refusal = Refusal(ProposeConfigurationChange(change), reason, state.leader)
        return state, Output(refusals=(refusal,))
    state, appended = append_to_own_log(state, change.encode(), EntryKind.CONFIGURATION)
    state, sent = broadcast_append(state, allow_empty=False)
    return state, appended.then(sent)
