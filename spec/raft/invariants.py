"""Properties of a single node that hold after every step; each returns a list of violations (empty when fine).

Cluster-wide properties (Election Safety, Log Matching, ...) need several nodes and history;
they live in `models.invariants`.
"""

from __future__ import annotations

from spec.raft.state import NodeState, ReplicationMode
from spec.raft.types import Role


def node_violations(state: NodeState) -> list[str]:
    """Every broken single-node invariant of `state`, described in one line each."""
    problems: list[str] = []
    log = state.log
    if not log.snapshot.index <= state.applied_index <= state.emitted_index <= state.commit_index:
        problems.append(
            f"node {state.node_id}: snapshot {log.snapshot.index} <= applied {state.applied_index}"
            f" <= emitted {state.emitted_index} <= commit {state.commit_index} does not hold"
        )
    for offset, entry in enumerate(log.entries):
        if entry.index != log.snapshot.index + 1 + offset:
            problems.append(
                f"node {state.node_id}: log entry {entry.index} at position {offset} after snapshot {log.snapshot.index}"
            )
            break
    if state.commit_index > log.last_index:
        problems.append(
            f"node {state.node_id}: commit {state.commit_index} beyond last index {log.last_index}"
        )
    if state.durable_index > log.last_index:
        problems.append(
            f"node {state.node_id}: durable {state.durable_index} beyond last index {log.last_index}"
        )
    if state.vote is not None and state.vote <= 0:
        problems.append(f"node {state.node_id}: vote for impossible id {state.vote}")
    if (state.role is Role.LEADER) != (state.leader_state is not None):
        problems.append(f"node {state.node_id}: leader state present iff leader does not hold")
    if state.role is Role.CANDIDATE and state.vote != state.node_id:
        problems.append(f"node {state.node_id}: a candidate votes for itself")
    if state.role is Role.LEADER:
        problems += leader_violations(state)
    return problems


def leader_violations(state: NodeState) -> list[str]:
    assert state.leader_state is not None
    problems: list[str] = []
    if state.leader != state.node_id:
        problems.append(f"node {state.node_id}: a leader knows itself as leader")
    for peer, progress in state.leader_state.progress.items():
        if not progress.match_index < progress.next_index <= state.log.last_index + 1:
            problems.append(
                f"leader {state.node_id}: progress of {peer} has match {progress.match_index},"
                f" next {progress.next_index}, last index {state.log.last_index}"
            )
        if progress.mode is not ReplicationMode.REPLICATE and progress.inflight:
            problems.append(
                f"leader {state.node_id}: in-flight appends to {peer} outside REPLICATE"
            )
        if len(progress.inflight) > state.settings.inflight_appends_max:
            problems.append(
                f"leader {state.node_id}: more in-flight appends to {peer} than allowed"
            )
    return problems
