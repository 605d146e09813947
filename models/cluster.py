"""The whole-cluster model: N spec nodes, a network bag, crashes and restarts, and a ghost history.

Every action is a pure function `ClusterState -> ClusterState`, so the Hypothesis tests and
the exhaustive explorer drive the very same transitions.

- The network is a bag of messages in flight: any one may be delivered next, dropped or
  duplicated, so delivery order is arbitrary. A partition drops messages between the groups.
- Storage is synchronous, as in etcd's Ready loop: after each step the node's output is made
  durable (snapshot, entries, hard state), then its messages are sent, then its committed
  entries are applied and reported back. A crash loses the node's volatile state; a restart
  rebuilds it from what was durable.
- The ghost history records what no node could know (Ongaro's TLA+ `elections`/`allLogs` idea):
  leaders per term, votes per term, committed entries, each node's applied sequence. It is kept
  out of the explorer's state fingerprint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from spec.raft.io import (
    Applied,
    CompactLog,
    ElectionTimeout,
    HeartbeatTimeout,
    Input,
    Output,
    Propose,
    ProposeConfigurationChange,
    Receive,
    RequestRead,
    StorageAcknowledged,
    Tick,
    TransferLeadership,
)
from spec.raft.log import Log
from spec.raft.messages import Message, VoteRequest, VoteResponse
from spec.raft.state import NodeState, PersistedState, initial_state, restart
from spec.raft.step import step
from spec.raft.types import (
    ConfigurationChange,
    Entry,
    LogIndex,
    Membership,
    NodeId,
    Role,
    Settings,
    Term,
)

# Bound on the chain of follow-up inputs one action may cause (ack -> commit -> apply): a loop guard.
FOLLOW_UP_STEPS_MAX = 8

# How a node is stepped: `spec.raft.step.step`, or (in the explorer) a memoised equivalent of it.
Stepper = Callable[[NodeState, Input], tuple[NodeState, Output]]


@attrs.frozen(slots=True)
class ReadRecord:
    """A ReadIndex read in the ghost history: what had committed when it was asked, what index it got."""

    node: NodeId
    context: bytes
    committed_when_requested: LogIndex
    read_index: LogIndex | None = None


@attrs.frozen(slots=True)
class Ghost:
    """History the invariants need and no node stores."""

    leaders: Mapping[Term, frozenset[NodeId]] = attrs.field(factory=dict)
    campaigns: frozenset[Term] = frozenset()  # terms some node started as a candidate
    votes: Mapping[tuple[NodeId, Term], NodeId] = attrs.field(factory=dict)
    committed: Mapping[LogIndex, tuple[Entry, Term]] = attrs.field(
        factory=dict
    )  # entry, term it was seen committed in
    commit_quorums: tuple[
        tuple[LogIndex, Membership], ...
    ] = ()  # a leader committed up to index under membership
    applied: Mapping[LogIndex, Entry] = attrs.field(factory=dict)
    reads: tuple[ReadRecord, ...] = ()
    violations: tuple[str, ...] = ()  # problems seen inside a transition (e.g. a vote cast twice)


@attrs.frozen(slots=True)
class PendingWrite:
    """One step's output that is not yet durable: what to write, and the messages that wait for it."""

    output: Output
    held: tuple[Message, ...]


@attrs.frozen(slots=True)
class ClusterState:
    settings: Settings
    nodes: Mapping[NodeId, NodeState | None]  # None while crashed
    persisted: Mapping[NodeId, PersistedState]
    network: tuple[Message, ...] = ()
    blocked: frozenset[tuple[NodeId, NodeId]] = (
        frozenset()
    )  # (sender, recipient) pairs cut by a partition
    restarts: int = 0  # seeds restarted nodes' timers differently
    ghost: Ghost = Ghost()
    # False: each node's writes wait in `pending` until a `persist` action makes them durable,
    # and a crash loses them (with the messages that had to wait for them).
    synchronous_storage: bool = True
    pending: Mapping[NodeId, tuple[PendingWrite, ...]] = attrs.field(factory=dict)

    @property
    def node_ids(self) -> tuple[NodeId, ...]:
        return tuple(sorted(self.nodes))

    def running(self) -> list[NodeState]:
        return [node for _, node in sorted(self.nodes.items()) if node is not None]

    def leaders(self) -> list[NodeState]:
        return [node for node in self.running() if node.role is Role.LEADER]


def new_cluster(
    size: int,
    settings: Settings,
    seed: int = 0,
    voters: int | None = None,
    synchronous_storage: bool = True,
) -> ClusterState:
    """`size` nodes with ids 1..size; the first `voters` (default all) form the bootstrap membership."""
    voter_ids = frozenset(NodeId(i) for i in range(1, (voters or size) + 1))
    membership = Membership(voter_ids)
    nodes: dict[NodeId, NodeState | None] = {}
    persisted: dict[NodeId, PersistedState] = {}
    for i in range(1, size + 1):
        node = initial_state(NodeId(i), membership, settings, random_seed=seed * 1000 + i)
        nodes[NodeId(i)] = node
        persisted[NodeId(i)] = PersistedState(node.hard_state, node.log)
    return ClusterState(settings, nodes, persisted, synchronous_storage=synchronous_storage)


# --- Running one input on one node ---------------------------------------------------------------


def run_input(
    cluster: ClusterState, node_id: NodeId, event: Input, stepper: Stepper = step
) -> ClusterState:
    """Step one running node and carry out its output: persist, send, apply, report back."""
    node = cluster.nodes.get(node_id)
    if node is None:
        return cluster
    pending: list[Input] = [event]
    for _ in range(FOLLOW_UP_STEPS_MAX):
        if not pending:
            return cluster
        current = pending.pop(0)
        before = cluster.nodes[node_id]
        assert before is not None
        after, output = stepper(before, current)
        cluster = record_step(cluster, before, after, output, current)
        cluster = carry_out(cluster, after, output)
        pending += follow_ups(after, output, cluster.synchronous_storage)
    raise AssertionError(f"node {node_id} kept producing follow-up inputs: {pending}")


def follow_ups(node: NodeState, output: Output, synchronous_storage: bool) -> list[Input]:
    """What the host reports back after carrying out `output`: entries durable (at once only with
    synchronous storage; otherwise when `persist_next` writes them), entries applied."""
    reports: list[Input] = []
    durable_now = synchronous_storage and (
        output.entries_to_persist or output.snapshot_to_persist is not None
    )
    if durable_now:
        reports.append(StorageAcknowledged(node.log.last_index, node.log.last_term))
    if output.committed_entries:
        reports.append(Applied(output.committed_entries[-1].index))
    return reports


def carry_out(cluster: ClusterState, node: NodeState, output: Output) -> ClusterState:
    """Carry out one step's output: with synchronous storage, persist it and then send everything.

    With asynchronous storage, messages that may leave before persistence leave now; the write
    and the messages that must wait for it (and for every earlier write) are queued for `persist`.
    """
    if cluster.synchronous_storage:
        # One new cluster state for the node, its disk and its messages together (the same as
        # updating them one after another, only cheaper: the explorer runs this millions of times).
        changes: dict[str, Any] = {}
        if cluster.nodes[node.node_id] is not node:
            changes["nodes"] = {**cluster.nodes, node.node_id: node}
        stored = cluster.persisted[node.node_id]
        persisted = persist(stored, output)
        if persisted is not stored:
            changes["persisted"] = {**cluster.persisted, node.node_id: persisted}
        if output.messages:
            messages = [outgoing.message for outgoing in output.messages]
            changes["ghost"] = record_votes(cluster.ghost, messages)
            changes["network"] = cluster.network + sendable(cluster, messages)
        return attrs.evolve(cluster, **changes) if changes else cluster
    cluster = attrs.evolve(cluster, nodes={**cluster.nodes, node.node_id: node})
    queue = cluster.pending.get(node.node_id, ())
    must_wait = bool(queue) or output.must_sync
    early = [
        outgoing.message
        for outgoing in output.messages
        if not (must_wait and outgoing.after_persistence)
    ]
    held = tuple(
        outgoing.message for outgoing in output.messages if must_wait and outgoing.after_persistence
    )
    cluster = send_messages(cluster, early)
    if output.must_sync or held:
        queue = (*queue, PendingWrite(output, held))
        cluster = attrs.evolve(cluster, pending={**cluster.pending, node.node_id: queue})
    return cluster


def send_messages(
    cluster: ClusterState, messages: list[Message] | tuple[Message, ...]
) -> ClusterState:
    """Put messages on the network (those across a partition are lost) and record the votes they cast."""
    ghost = record_votes(cluster.ghost, messages)
    return attrs.evolve(cluster, ghost=ghost, network=cluster.network + sendable(cluster, messages))


def sendable(
    cluster: ClusterState, messages: list[Message] | tuple[Message, ...]
) -> tuple[Message, ...]:
    """The messages that a partition does not cut."""
    if not cluster.blocked:
        return tuple(messages)
    return tuple(
        message
        for message in messages
        if (message.sender, message.recipient) not in cluster.blocked
    )


def record_votes(ghost: Ghost, messages: list[Message] | tuple[Message, ...]) -> Ghost:
    """A vote counts once others can see it: a granted vote sent, or the candidate's own vote implied
    by its vote requests. A vote lost in a crash before it was durable and sent binds nobody."""
    problems: list[str] = []
    votes = dict(ghost.votes)
    for message in messages:
        if isinstance(message, VoteResponse) and message.granted and not message.pre_vote:
            voter, candidate = message.sender, message.recipient
        elif isinstance(message, VoteRequest) and not message.pre_vote:
            voter, candidate = message.sender, message.sender
        else:
            continue
        earlier = votes.setdefault((voter, message.term), candidate)
        if earlier != candidate:
            problems.append(
                f"node {voter} voted for {earlier} and {candidate} in term {message.term}"
            )
    if len(votes) == len(ghost.votes) and not problems:
        return ghost
    return attrs.evolve(ghost, votes=votes, violations=ghost.violations + tuple(problems))


def persist_next(cluster: ClusterState, node_id: NodeId) -> ClusterState:
    """Asynchronous storage: the node's oldest queued write becomes durable; its held messages leave;
    the node is told (StorageAcknowledged) which entries are now durable."""
    queue = cluster.pending.get(node_id, ())
    if not queue or cluster.nodes.get(node_id) is None:
        return cluster
    write, rest = queue[0], queue[1:]
    persisted = persist(cluster.persisted[node_id], write.output)
    cluster = attrs.evolve(
        cluster,
        persisted={**cluster.persisted, node_id: persisted},
        pending={**cluster.pending, node_id: rest},
    )
    cluster = send_messages(cluster, write.held)
    written = write.output.entries_to_persist
    if written:
        return run_input(cluster, node_id, StorageAcknowledged(written[-1].index, written[-1].term))
    if write.output.snapshot_to_persist is not None:
        snapshot = write.output.snapshot_to_persist
        return run_input(cluster, node_id, StorageAcknowledged(snapshot.index, snapshot.term))
    return cluster


def persist(stored: PersistedState, output: Output) -> PersistedState:
    """What a disk would hold after writing `output`: snapshot replaces the log, entries replace from their index."""
    if (
        output.snapshot_to_persist is None
        and not output.entries_to_persist
        and output.hard_state_to_persist is None
    ):
        return stored  # nothing to write (the same object, so states share it)
    log = stored.log
    if output.snapshot_to_persist is not None:
        log = Log(output.snapshot_to_persist)
    if output.entries_to_persist:
        first = output.entries_to_persist[0].index
        kept = tuple(entry for entry in log.entries if entry.index < first)
        log = Log(log.snapshot, kept + output.entries_to_persist)
    hard_state = output.hard_state_to_persist or stored.hard_state
    return PersistedState(hard_state, log)


def record_step(
    cluster: ClusterState, before: NodeState, after: NodeState, output: Output, event: Input
) -> ClusterState:
    """Add what this step reveals to the ghost history."""
    ghost = cluster.ghost
    problems: list[str] = []
    # A leader campaigned in its term too, even if it won within this same step.
    if after.role in (Role.CANDIDATE, Role.LEADER) and after.term not in ghost.campaigns:
        ghost = attrs.evolve(ghost, campaigns=ghost.campaigns | {after.term})
    if after.role is Role.LEADER and after.node_id not in ghost.leaders.get(after.term, ()):
        leaders = ghost.leaders.get(after.term, frozenset()) | {after.node_id}
        ghost = attrs.evolve(ghost, leaders={**ghost.leaders, after.term: leaders})
    ghost = record_commit(ghost, before, after, problems)
    for entry in output.committed_entries:
        earlier_entry = ghost.applied.get(entry.index)
        if earlier_entry is not None and earlier_entry != entry:
            problems.append(
                f"node {after.node_id} applied {entry} where {earlier_entry} was applied"
            )
        ghost = attrs.evolve(ghost, applied={**ghost.applied, entry.index: entry})
    ghost = record_reads(ghost, after, output, event)
    if problems:
        ghost = attrs.evolve(ghost, violations=ghost.violations + tuple(problems))
    if ghost is cluster.ghost:
        return cluster
    return attrs.evolve(cluster, ghost=ghost)


def record_commit(ghost: Ghost, before: NodeState, after: NodeState, problems: list[str]) -> Ghost:
    if after.commit_index <= before.commit_index:
        return ghost
    committed = dict(ghost.committed)
    for index in range(
        max(before.commit_index, after.log.snapshot.index) + 1, after.commit_index + 1
    ):
        entry = after.log.entry_at(index)
        assert entry is not None
        earlier = committed.get(LogIndex(index))
        if earlier is not None and earlier[0] != entry:
            problems.append(
                f"node {after.node_id} committed {entry} where {earlier[0]} was committed"
            )
        elif earlier is None:
            committed[LogIndex(index)] = (entry, after.term)
    quorums = ghost.commit_quorums
    if after.role is Role.LEADER and before.role is Role.LEADER:
        quorums = (*quorums, (after.commit_index, before.membership))
    return attrs.evolve(ghost, committed=committed, commit_quorums=quorums)


def record_reads(ghost: Ghost, node: NodeState, output: Output, event: Input) -> Ghost:
    """Remember each read's committed index when asked, and the read index it was granted."""
    if not output.reads_ready and not isinstance(event, RequestRead):
        return ghost
    reads = list(ghost.reads)
    if isinstance(event, RequestRead):
        highest_commit = max((index for index in ghost.committed), default=LogIndex(0))
        reads.append(ReadRecord(node.node_id, event.context, highest_commit))
    for ready in output.reads_ready:
        for position, read in enumerate(reads):
            if (
                read.node == node.node_id
                and read.context == ready.context
                and read.read_index is None
            ):
                reads[position] = attrs.evolve(read, read_index=ready.index)
    return attrs.evolve(ghost, reads=tuple(reads))


# --- Actions ---------------------------------------------------------------------------------------


def deliver(cluster: ClusterState, position: int, stepper: Stepper = step) -> ClusterState:
    """Take message `position` off the network and hand it to its recipient (lost if it is down or cut off)."""
    message = cluster.network[position]
    cluster = attrs.evolve(
        cluster, network=cluster.network[:position] + cluster.network[position + 1 :]
    )
    if (message.sender, message.recipient) in cluster.blocked:
        return cluster
    return run_input(cluster, message.recipient, Receive(message), stepper)


def drop(cluster: ClusterState, position: int) -> ClusterState:
    return attrs.evolve(
        cluster, network=cluster.network[:position] + cluster.network[position + 1 :]
    )


def duplicate(cluster: ClusterState, position: int) -> ClusterState:
    return attrs.evolve(cluster, network=(*cluster.network, cluster.network[position]))


def tick(cluster: ClusterState, node_id: NodeId) -> ClusterState:
    return run_input(cluster, node_id, Tick())


def tick_all(cluster: ClusterState) -> ClusterState:
    for node_id in cluster.node_ids:
        cluster = tick(cluster, node_id)
    return cluster


def election_timeout(
    cluster: ClusterState, node_id: NodeId, stepper: Stepper = step
) -> ClusterState:
    return run_input(cluster, node_id, ElectionTimeout(), stepper)


def heartbeat_timeout(
    cluster: ClusterState, node_id: NodeId, stepper: Stepper = step
) -> ClusterState:
    return run_input(cluster, node_id, HeartbeatTimeout(), stepper)


def propose(
    cluster: ClusterState, node_id: NodeId, data: bytes, stepper: Stepper = step
) -> ClusterState:
    return run_input(cluster, node_id, Propose(data), stepper)


def change_membership(
    cluster: ClusterState, node_id: NodeId, change: ConfigurationChange
) -> ClusterState:
    return run_input(cluster, node_id, ProposeConfigurationChange(change))


def transfer_leadership(cluster: ClusterState, node_id: NodeId, target: NodeId) -> ClusterState:
    return run_input(cluster, node_id, TransferLeadership(target))


def request_read(cluster: ClusterState, node_id: NodeId, context: bytes) -> ClusterState:
    return run_input(cluster, node_id, RequestRead(context))


def compact(cluster: ClusterState, node_id: NodeId) -> ClusterState:
    """The node snapshots its state machine at its applied index (data: the applied count, for visibility).

    The host stores the snapshot itself, so a compaction the step performed is mirrored on disk.
    """
    before = cluster.nodes.get(node_id)
    if before is None:
        return cluster
    cluster = run_input(
        cluster, node_id, CompactLog(before.applied_index, str(before.applied_index).encode())
    )
    after = cluster.nodes[node_id]
    assert after is not None
    if after.log.snapshot.index > before.log.snapshot.index:
        stored = cluster.persisted[node_id]
        stored = PersistedState(stored.hard_state, stored.log.compacted_to(after.log.snapshot))
        cluster = attrs.evolve(cluster, persisted={**cluster.persisted, node_id: stored})
    return cluster


def crash(cluster: ClusterState, node_id: NodeId) -> ClusterState:
    """The node stops; everything but its durable state is lost, queued writes included."""
    return attrs.evolve(
        cluster, nodes={**cluster.nodes, node_id: None}, pending={**cluster.pending, node_id: ()}
    )


def recover(cluster: ClusterState, node_id: NodeId) -> ClusterState:
    """A crashed node restarts from its durable state (a running node is left alone)."""
    if cluster.nodes.get(node_id) is not None:
        return cluster
    seed = 7_919 * (cluster.restarts + 1) + node_id
    node = restart(node_id, cluster.persisted[node_id], cluster.settings, random_seed=seed)
    return attrs.evolve(
        cluster, nodes={**cluster.nodes, node_id: node}, restarts=cluster.restarts + 1
    )


def partition(cluster: ClusterState, groups: Iterable[Iterable[NodeId]]) -> ClusterState:
    """Cut the network between the groups (nodes in no group are cut off from everyone)."""
    group_of = {node: index for index, group in enumerate(groups) for node in group}
    blocked = frozenset(
        (a, b)
        for a in cluster.node_ids
        for b in cluster.node_ids
        if a != b and (a not in group_of or b not in group_of or group_of[a] != group_of[b])
    )
    return attrs.evolve(cluster, blocked=blocked)


def heal(cluster: ClusterState) -> ClusterState:
    return attrs.evolve(cluster, blocked=frozenset())


# --- A fair scheduler, for liveness ------------------------------------------------------------------


def deliver_all(cluster: ClusterState, messages_max: int = 10_000) -> ClusterState:
    """Deliver messages in the order sent until none is left (new ones included), at most `messages_max`."""
    for _ in range(messages_max):
        if not cluster.network:
            return cluster
        cluster = deliver(cluster, 0)
    return cluster


def persist_all(cluster: ClusterState) -> ClusterState:
    """Make every queued write durable, in order, node by node (writes caused meanwhile included)."""
    for node_id in cluster.node_ids:
        for _ in range(1000):
            if not cluster.pending.get(node_id):
                break
            cluster = persist_next(cluster, node_id)
    return cluster


def stabilize(cluster: ClusterState, ticks_max: int) -> ClusterState:
    """Run the cluster with a whole network and no faults: tick everyone, persist and deliver everything, repeat.

    Stops early once there is one leader that has committed its whole log, in its own term, and
    every running member has learned that commit.
    """
    for _ in range(ticks_max):
        cluster = tick_all(cluster)
        for _ in range(100):
            cluster = deliver_all(persist_all(cluster))
            if not any(cluster.pending.values()):
                break
        if is_settled(cluster):
            return cluster
    return cluster


def is_settled(cluster: ClusterState) -> bool:
    leaders = cluster.leaders()
    if len(leaders) != 1 or cluster.network:
        return False
    leader = leaders[0]
    if (
        leader.log.term_at(leader.commit_index) != leader.term
        or leader.commit_index != leader.log.last_index
    ):
        return False
    return all(
        node.commit_index == leader.commit_index
        for node in cluster.running()
        if node.node_id in leader.membership.members
    )


def recover_all(cluster: ClusterState) -> ClusterState:
    for node_id in cluster.node_ids:
        cluster = recover(cluster, node_id)
    return heal(cluster)
