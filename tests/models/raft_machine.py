"""A Hypothesis state machine over the cluster model: every action of `models.cluster` is a rule,
and every invariant of `models.invariants` is checked after every step.

Shared by tests/models/test_raft_safety.py (the real spec) and tests/quality (seeded bugs).
"""

from __future__ import annotations

import attrs
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from models import cluster as model
from models.invariants import violations
from spec.raft.types import ChangeAction, ConfigurationChange, NodeId, Settings

NODE_COUNT = 4
INITIAL_VOTERS = 3
SETTINGS = Settings(
    election_ticks=4, heartbeat_ticks=1, entries_per_message_max=3, inflight_appends_max=2
)
NETWORK_MESSAGES_MAX = 80

nodes = st.integers(1, NODE_COUNT).map(NodeId)
positions = st.integers(0, 10_000)
partitions = st.sampled_from(
    [
        [[1, 2], [3, 4]],
        [[1], [2, 3, 4]],
        [[2], [1, 3, 4]],
        [[3], [1, 2, 4]],
        [[1, 3], [2, 4]],
        [[1, 2, 3]],
    ]
).map(lambda groups: [[NodeId(n) for n in group] for group in groups])
changes = st.builds(ConfigurationChange, st.sampled_from(list(ChangeAction)), nodes)


class RaftClusterMachine(RuleBasedStateMachine):
    """Random schedules of ticks, deliveries, losses, duplicates, partitions, crashes and client requests."""

    def __init__(self) -> None:
        super().__init__()
        self.cluster = model.new_cluster(NODE_COUNT, SETTINGS, seed=0, voters=INITIAL_VOTERS)
        self.previous = self.cluster
        self.requests = 0

    def advance(self, next_cluster: model.ClusterState) -> None:
        self.previous, self.cluster = self.cluster, next_cluster

    @initialize(
        first_leader=st.sampled_from([None, 1, 2, 3]).map(
            lambda n: None if n is None else NodeId(n)
        ),
        synchronous_storage=st.booleans(),
    )
    def start(self, first_leader: NodeId | None, synchronous_storage: bool) -> None:
        """Storage is synchronous or queued (then `persist` rules make writes durable); most runs
        start from a cluster that has elected a leader, some from scratch."""
        cluster = attrs.evolve(self.cluster, synchronous_storage=synchronous_storage)
        if first_leader is not None:
            cluster = model.election_timeout(cluster, first_leader)
            for _ in range(20):
                for node in cluster.node_ids:
                    cluster = model.persist_next(cluster, node)
                cluster = model.deliver_all(cluster, messages_max=200)
        self.advance(cluster)

    @rule(node=nodes)
    def persist(self, node: NodeId) -> None:
        self.advance(model.persist_next(self.cluster, node))

    def addressee(self, node: NodeId, to_leader: bool) -> NodeId:
        """Clients mostly find the leader; sometimes they ask whichever node they drew."""
        leaders = self.cluster.leaders()
        if to_leader and leaders:
            return max(leaders, key=lambda leader: leader.term).node_id
        return node

    def next_request_name(self) -> bytes:
        self.requests += 1
        return f"r{self.requests}".encode()

    @rule(node=nodes)
    def tick(self, node: NodeId) -> None:
        self.advance(model.tick(self.cluster, node))

    @rule()
    def tick_all(self) -> None:
        self.advance(model.tick_all(self.cluster))

    @rule(rounds=st.integers(1, 8))
    def run_rounds(self, rounds: int) -> None:
        """Progress despite the faults around it: tick everyone, then deliver what is in flight, in order."""
        cluster = self.cluster
        for _ in range(rounds):
            cluster = model.tick_all(cluster)
            for _ in range(len(cluster.network)):
                cluster = model.deliver(cluster, 0)
        self.advance(cluster)

    @rule(node=nodes)
    def campaign_and_deliver(self, node: NodeId) -> None:
        cluster = model.election_timeout(self.cluster, node)
        self.advance(model.deliver_all(cluster, messages_max=200))

    @rule(node=nodes)
    def election_timeout(self, node: NodeId) -> None:
        self.advance(model.election_timeout(self.cluster, node))

    @rule(node=nodes)
    def heartbeat_timeout(self, node: NodeId) -> None:
        self.advance(model.heartbeat_timeout(self.cluster, node))

    @precondition(lambda self: bool(self.cluster.network))
    @rule(position=positions)
    def deliver(self, position: int) -> None:
        self.advance(model.deliver(self.cluster, position % len(self.cluster.network)))

    @precondition(lambda self: bool(self.cluster.network))
    @rule(count=st.integers(1, 12))
    def deliver_in_order(self, count: int) -> None:
        cluster = self.cluster
        for _ in range(min(count, len(cluster.network))):
            cluster = model.deliver(cluster, 0)
        self.advance(cluster)

    @precondition(lambda self: bool(self.cluster.network))
    @rule(position=positions)
    def drop(self, position: int) -> None:
        self.advance(model.drop(self.cluster, position % len(self.cluster.network)))

    @precondition(lambda self: 0 < len(self.cluster.network) < NETWORK_MESSAGES_MAX)
    @rule(position=positions)
    def duplicate(self, position: int) -> None:
        self.advance(model.duplicate(self.cluster, position % len(self.cluster.network)))

    @rule(groups=partitions)
    def partition(self, groups: list[list[NodeId]]) -> None:
        self.advance(model.partition(self.cluster, groups))

    @rule()
    def heal(self) -> None:
        self.advance(model.heal(self.cluster))

    @rule(node=nodes)
    def crash(self, node: NodeId) -> None:
        self.advance(model.crash(self.cluster, node))

    @rule(node=nodes)
    def recover(self, node: NodeId) -> None:
        self.advance(model.recover(self.cluster, node))

    @rule(node=nodes, to_leader=st.booleans())
    def propose(self, node: NodeId, to_leader: bool) -> None:
        node = self.addressee(node, to_leader)
        self.advance(model.propose(self.cluster, node, self.next_request_name()))

    @rule(node=nodes, change=changes, to_leader=st.booleans())
    def change_membership(self, node: NodeId, change: ConfigurationChange, to_leader: bool) -> None:
        node = self.addressee(node, to_leader)
        self.advance(model.change_membership(self.cluster, node, change))

    @rule(node=nodes, successor=nodes, to_leader=st.booleans())
    def transfer_leadership(self, node: NodeId, successor: NodeId, to_leader: bool) -> None:
        node = self.addressee(node, to_leader)
        self.advance(model.transfer_leadership(self.cluster, node, successor))

    @rule(node=nodes, to_leader=st.booleans())
    def request_read(self, node: NodeId, to_leader: bool) -> None:
        node = self.addressee(node, to_leader)
        self.advance(model.request_read(self.cluster, node, self.next_request_name()))

    @rule(node=nodes)
    def compact(self, node: NodeId) -> None:
        self.advance(model.compact(self.cluster, node))

    def teardown(self) -> None:
        """Label each run by how far it got, so `--hypothesis-show-statistics` shows what was covered."""
        ghost = self.cluster.ghost
        event(f"leaders elected: {min(len(ghost.leaders), 3)}+")
        event(f"entries committed: {min(len(ghost.committed), 5)}+")
        event(
            f"reads answered: {min(sum(read.read_index is not None for read in ghost.reads), 2)}+"
        )
        event(f"snapshots: {any(node.log.snapshot.index > 0 for node in self.cluster.running())}")
        voters = [len(node.membership.voters) for node in self.cluster.running()]
        event(f"membership changed: {any(count != INITIAL_VOTERS for count in voters)}")

    @invariant()
    def safety_properties_hold(self) -> None:
        problems = violations(self.previous, self.cluster)
        assert not problems, "\n".join(problems)
