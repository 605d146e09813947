"""The safety properties of Raft over a whole cluster, each a pure predicate returning its violations.

The five properties of Raft Figure 3, plus: committed entries are on a quorum, terms and
commit indices never decrease, a node votes at most once per term, ReadIndex reads see every
earlier committed write, and every single-node invariant of `spec.raft.invariants`.
`violations(before, after)` checks them all for one transition.
"""

from __future__ import annotations

from models.cluster import ClusterState
from spec.raft.invariants import node_violations
from spec.raft.log import Log
from spec.raft.types import Role


def election_safety(cluster: ClusterState) -> list[str]:
    """At most one leader can be elected in a given term (Raft Figure 3)."""
    return [
        f"Election Safety: term {term} had leaders {sorted(leaders)}"
        for term, leaders in cluster.ghost.leaders.items()
        if len(leaders) > 1
    ]


def leader_append_only(before: ClusterState, after: ClusterState) -> list[str]:
    """A leader never overwrites or deletes entries in its log; it only appends (Raft Figure 3)."""
    problems = []
    for old in before.leaders():
        new = after.nodes.get(old.node_id)
        if new is None or new.role is not Role.LEADER or new.term != old.term:
            continue
        for entry in old.log.entries:
            if entry.index > new.log.snapshot.index and new.log.entry_at(entry.index) != entry:
                problems.append(f"Leader Append-Only: leader {old.node_id} lost or changed {entry}")
                break
    return problems


def log_matching(cluster: ClusterState) -> list[str]:
    """If two logs contain an entry with the same index and term, they are identical up to it (Raft Figure 3)."""
    problems = []
    nodes = cluster.running()
    for position, first in enumerate(nodes):
        for second in nodes[position + 1 :]:
            problem = first_mismatch_below_agreement(first.log, second.log)
            if problem is not None:
                problems.append(
                    f"Log Matching: nodes {first.node_id} and {second.node_id}: {problem}"
                )
    return problems


def first_mismatch_below_agreement(first: Log, second: Log) -> str | None:
    low = max(first.snapshot.index, second.snapshot.index) + 1
    high = min(first.last_index, second.last_index)
    agreed = False
    for index in range(high, low - 1, -1):
        one, other = first.entry_at(index), second.entry_at(index)
        assert one is not None and other is not None
        if one.term == other.term:
            agreed = True
            if one != other:
                return f"same index and term, different entries at {index}"
        elif agreed:
            return f"they agree above {index} but differ at {index}"
    return None


def leader_completeness(cluster: ClusterState) -> list[str]:
    """A committed entry is present in the log of every leader of a later or equal term (Raft Figure 3)."""
    problems = []
    for leader in cluster.leaders():
        for index, (entry, committed_in_term) in cluster.ghost.committed.items():
            if committed_in_term > leader.term or index <= leader.log.snapshot.index:
                continue
            if leader.log.entry_at(index) != entry:
                problems.append(
                    f"Leader Completeness: leader {leader.node_id} of term {leader.term} lacks committed {entry}"
                )
    return problems


def state_machine_safety(cluster: ClusterState) -> list[str]:
    """No two servers apply different entries at the same index (Raft Figure 3); checked as entries are applied."""
    return [
        problem
        for problem in cluster.ghost.violations
        if " applied " in problem or " committed " in problem
    ]


def votes_once_per_term(cluster: ClusterState) -> list[str]:
    """A server votes for at most one candidate in a term (Raft §5.2), across crashes too."""
    return [problem for problem in cluster.ghost.violations if " voted for " in problem]


def committed_on_quorum(cluster: ClusterState) -> list[str]:
    """Every entry a leader committed is durable on a majority of the voters it counted (Raft §5.4)."""
    problems = []
    for commit_index, membership in cluster.ghost.commit_quorums:
        entry = cluster.ghost.committed[commit_index][0]
        holders = sum(
            1
            for voter in membership.voters
            if voter in cluster.persisted
            and durably_holds(cluster.persisted[voter].log, entry.index, entry.term)
        )
        if holders < membership.quorum_size:
            problems.append(
                f"committed {entry} is durable on {holders} of {sorted(membership.voters)}"
            )
    return problems


def durably_holds(log: Log, index: int, term: int) -> bool:
    return index <= log.snapshot.index or log.term_at(index) == term


def monotonic(before: ClusterState, after: ClusterState) -> list[str]:
    """Terms never decrease, and neither do commit indices, on any node, across restarts too."""
    problems = []
    for node_id in after.node_ids:
        old_hard, new_hard = (
            before.persisted[node_id].hard_state,
            after.persisted[node_id].hard_state,
        )
        if new_hard.term < old_hard.term:
            problems.append(
                f"node {node_id}: durable term went from {old_hard.term} to {new_hard.term}"
            )
        if new_hard.commit < old_hard.commit:
            problems.append(
                f"node {node_id}: durable commit went from {old_hard.commit} to {new_hard.commit}"
            )
        old, new = before.nodes.get(node_id), after.nodes.get(node_id)
        if old is not None and new is not None:
            if new.term < old.term:
                problems.append(f"node {node_id}: term went from {old.term} to {new.term}")
            if new.commit_index < old.commit_index:
                problems.append(
                    f"node {node_id}: commit went from {old.commit_index} to {new.commit_index}"
                )
    return problems


def reads_see_earlier_commits(cluster: ClusterState) -> list[str]:
    """A ReadIndex read's index covers every entry committed before the read was requested (thesis §6.4)."""
    return [
        f"ReadIndex: read {read.context!r} on node {read.node} got index {read.read_index}"
        f" though {read.committed_when_requested} was committed when it was asked"
        for read in cluster.ghost.reads
        if read.read_index is not None and read.read_index < read.committed_when_requested
    ]


def terms_start_with_a_candidate(cluster: ClusterState) -> list[str]:
    """Every term a node holds was started by some candidate: only an election creates a term.

    In particular a PreVote round creates none (thesis §9.6), however its messages are delivered.
    """
    return [
        f"node {node.node_id} is in term {node.term}, which no candidate started"
        for node in cluster.running()
        if node.term > 0 and node.term not in cluster.ghost.campaigns
    ]


def single_node_invariants(cluster: ClusterState) -> list[str]:
    return [problem for node in cluster.running() for problem in node_violations(node)]


STATE_INVARIANTS = (
    election_safety,
    log_matching,
    leader_completeness,
    state_machine_safety,
    votes_once_per_term,
    committed_on_quorum,
    reads_see_earlier_commits,
    terms_start_with_a_candidate,
    single_node_invariants,
)
TRANSITION_INVARIANTS = (leader_append_only, monotonic)


def violations(before: ClusterState, after: ClusterState) -> list[str]:
    """Every invariant broken by the transition `before` -> `after` or in `after` itself."""
    problems = [problem for check in STATE_INVARIANTS for problem in check(after)]
    problems += [problem for check in TRANSITION_INVARIANTS for problem in check(before, after)]
    return problems
