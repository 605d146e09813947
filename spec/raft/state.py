"""The state of one Raft node, and how a node starts or restarts.

`NodeState` holds Raft's persistent state (term, vote, log; plus commit, persisted by etcd in
HardState), its volatile state (role, leader, commit and apply progress, timers) and, on a
leader only, `LeaderState`: per-follower replication progress, pending reads and a transfer.

Randomness enters through `random_state`, a seed advanced by a pure generator (SplitMix64),
never a global RNG: the same seed replays the same election timeouts.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from spec.raft.log import Log, Snapshot
from spec.raft.types import (
    ConfigurationChange,
    EntryKind,
    HardState,
    LogIndex,
    Membership,
    NodeId,
    Role,
    Settings,
    Term,
)


class ReplicationMode(enum.Enum):
    """How the leader feeds one follower (etcd tracker.StateType).

    PROBE: one append at a time until the follower's match is found. REPLICATE: appends are
    pipelined optimistically, bounded by `Settings.inflight_appends_max`. SNAPSHOT: the follower
    needs the snapshot; appends wait until it is acknowledged.
    """

    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


@attrs.frozen(slots=True)
class Progress:
    """The leader's view of one follower (Raft Figure 2 nextIndex/matchIndex, plus etcd's flow control)."""

    match_index: LogIndex
    next_index: LogIndex
    mode: ReplicationMode = ReplicationMode.PROBE
    probe_sent: bool = False
    inflight: tuple[LogIndex, ...] = ()  # last index of each unacknowledged append, in REPLICATE
    pending_snapshot_index: LogIndex = LogIndex(0)
    recently_active: bool = False

    @property
    def paused(self) -> bool:
        """No new append may go to this follower now (etcd Progress.IsPaused)."""
        match self.mode:
            case ReplicationMode.PROBE:
                return self.probe_sent
            case ReplicationMode.REPLICATE:
                return False  # the in-flight bound is checked by the sender, which knows the limit
            case ReplicationMode.SNAPSHOT:
                return self.probe_sent


@attrs.frozen(slots=True)
class PendingRead:
    """A read waiting for a quorum to confirm leadership at `index` (thesis §6.4 step 3)."""

    context: bytes
    index: LogIndex
    requester: NodeId
    acknowledged_by: frozenset[NodeId]


@attrs.frozen(slots=True)
class LeaderState:
    progress: Mapping[NodeId, Progress]
    reads: tuple[PendingRead, ...] = ()
    # Reads asked for before this leader committed an entry of its term (thesis §6.4 step 1).
    reads_awaiting_commit: tuple[tuple[bytes, NodeId], ...] = ()
    transfer_target: NodeId | None = None
    transfer_elapsed_ticks: int = 0


@attrs.frozen(slots=True)
class NodeState:
    node_id: NodeId
    settings: Settings
    # Persistent (HardState and log).
    term: Term
    vote: NodeId | None
    log: Log
    commit_index: LogIndex
    # Volatile.
    role: Role = Role.FOLLOWER
    leader: NodeId | None = None
    membership: Membership = Membership(frozenset())
    durable_index: LogIndex = LogIndex(0)  # entries up to here acknowledged durable on this node
    emitted_index: LogIndex = LogIndex(0)  # committed entries up to here handed out for applying
    applied_index: LogIndex = LogIndex(0)  # reported applied by the host
    election_elapsed_ticks: int = 0
    heartbeat_elapsed_ticks: int = 0
    election_timeout_ticks: int = 0  # randomized, in [election_ticks, 2 * election_ticks)
    random_state: int = 0
    votes: Mapping[NodeId, bool] = attrs.field(factory=dict)
    leader_state: LeaderState | None = None

    @property
    def hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.commit_index)

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    @property
    def promotable(self) -> bool:
        """Only a voter of its own committed membership may campaign (etcd raft.promotable)."""
        return self.node_id in self.membership.voters


def membership_at(log: Log, index: int) -> Membership:
    """The membership in force at `index`: the snapshot's, changed by each configuration entry up to `index`.

    etcd applies a membership change when its entry is applied, that is, once it is committed;
    so a node's membership is a function of its log and commit index, and a crash loses none
    of it (unlike the thesis's use-on-append rule, §4.1).
    """
    membership = log.snapshot.membership
    configuration = EntryKind.CONFIGURATION  # looked up once: an enum member lookup is slow
    for entry in log.entries:
        if entry.index > index:
            break
        if entry.kind is configuration:
            change = ConfigurationChange.decode(entry.data)
            if change is not None:
                membership = membership.apply(change)
    return membership


def next_random(random_state: int) -> tuple[int, int]:
    """SplitMix64: returns (a 64-bit draw, the next state). Pure, so elections replay from a seed."""
    mask = (1 << 64) - 1
    state = (random_state + 0x9E3779B97F4A7C15) & mask
    value = state
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & mask
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & mask
    return value ^ (value >> 31), state


def draw_election_timeout(state: NodeState) -> NodeState:
    """Pick a new randomized election timeout in [election_ticks, 2 * election_ticks) (Raft §5.2; etcd's range)."""
    draw, random_state = next_random(state.random_state)
    timeout = state.settings.election_ticks + draw % state.settings.election_ticks
    return attrs.evolve(state, election_timeout_ticks=timeout, random_state=random_state)


def initial_state(
    node_id: NodeId, membership: Membership, settings: Settings, random_seed: int
) -> NodeState:
    """A brand-new node of a cluster bootstrapped with `membership` at index 0 (term 0, empty log)."""
    assert node_id > 0, "node ids are positive"
    log = Log(Snapshot(LogIndex(0), Term(0), membership))
    state = NodeState(
        node_id=node_id,
        settings=settings,
        term=Term(0),
        vote=None,
        log=log,
        commit_index=LogIndex(0),
        membership=membership,
        random_state=random_seed,
    )
    return draw_election_timeout(state)


@attrs.frozen(slots=True)
class PersistedState:
    """What survives a crash: the last durable hard state, snapshot and log entries after it."""

    hard_state: HardState
    log: Log


def restart(
    node_id: NodeId, persisted: PersistedState, settings: Settings, random_seed: int
) -> NodeState:
    """A node rebuilt from its durable state: a follower that knows no leader (Raft §5.1, thesis §3.8).

    Commit comes back from the hard state, capped at the durable log (etcd checks the same);
    the state machine restarts from the snapshot, so entries after it are applied again.
    """
    log = persisted.log
    commit = LogIndex(max(log.snapshot.index, min(persisted.hard_state.commit, log.last_index)))
    state = NodeState(
        node_id=node_id,
        settings=settings,
        term=persisted.hard_state.term,
        vote=persisted.hard_state.vote,
        log=log,
        commit_index=commit,
        membership=membership_at(log, commit),
        durable_index=log.last_index,
        emitted_index=log.snapshot.index,
        applied_index=log.snapshot.index,
        random_state=random_seed,
    )
    return draw_election_timeout(state)
