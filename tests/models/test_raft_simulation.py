"""Raft safety and liveness over long seeded schedules (models.simulate), seeds drawn by Hypothesis.

Safety: every invariant holds after every step of a 400-step schedule of faults and requests.
Liveness: once faults stop (every node restarted, the network whole), a leader is elected and
a new proposal commits on every member within a bounded number of ticks; provided no leader
removed itself. Known gap: membership takes effect on commit (as in etcd), and a leader that
commits its own removal steps down at once; if the commit never reached the others (lost
messages), the remaining voters still count the removed node, whose longer log refuses them
its vote, so no leader is elected (found at seed 16280). etcd's advice is to move leadership away
before removing a leader; the schedules here follow it.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from models import cluster as model
from models.simulate import simulate
from spec.raft.types import NodeId, Settings
from tests.conftest import DEEP

seeds = st.integers(min_value=0, max_value=2**32 - 1)
SCHEDULES = 3000 if DEEP else 300
# After faults stop: elections take at most a few randomized timeouts; 40 election timeouts is ample.
STABILIZE_TICKS_MAX = 40 * 6
SETTLE_ROUNDS = 8  # ticks between a refused proposal and the next (a transfer expires within 6)


@settings(max_examples=SCHEDULES)
@given(seed=seeds)
def test_every_invariant_holds_on_random_schedules(seed: int) -> None:
    result = simulate(seed, steps=400)
    assert not result.failed, result.describe()


@settings(max_examples=SCHEDULES // 2)
@given(seed=seeds)
def test_a_healed_cluster_elects_a_leader_and_commits(seed: int) -> None:
    result = simulate(seed, steps=300, leader_removal=False)
    assert not result.failed, result.describe()
    cluster = model.stabilize(model.recover_all(result.cluster), STABILIZE_TICKS_MAX)
    leaders = cluster.leaders()
    assert len(leaders) == 1, (
        f"seed {seed}: no single leader after healing: {[(n.node_id, n.role, n.term) for n in cluster.running()]}"
    )
    cluster = propose_until_committed(cluster, b"after-faults", seed)
    new_leader = cluster.leaders()[0]
    index = next(entry.index for entry in new_leader.log.entries if entry.data == b"after-faults")
    for node in cluster.running():
        if node.node_id in new_leader.membership.members:
            assert node.commit_index >= index, (
                f"seed {seed}: node {node.node_id} did not learn the commit"
            )


def propose_until_committed(cluster: model.ClusterState, data: bytes, seed: int) -> model.ClusterState:
    """Propose as a client would: to the leader, again while it refuses (say, during a leadership
    transfer, which expires after an election timeout), until the entry commits; bounded."""
    for _ in range(10):
        leader = cluster.leaders()[0]
        cluster = model.stabilize(model.propose(cluster, leader.node_id, data), STABILIZE_TICKS_MAX)
        leaders = cluster.leaders()
        assert len(leaders) == 1, f"seed {seed}: leadership lost after healing"
        entries = [entry for entry in leaders[0].log.entries if entry.data == data]
        if entries and leaders[0].commit_index >= entries[0].index:
            return cluster
        for _ in range(SETTLE_ROUNDS):
            cluster = model.deliver_all(model.persist_all(model.tick_all(cluster)))
    raise AssertionError(f"seed {seed}: {data!r} not committed after 10 proposals")


def test_a_fresh_cluster_elects_within_the_bound() -> None:
    cluster = model.new_cluster(3, Settings(), seed=1)
    cluster = model.stabilize(cluster, STABILIZE_TICKS_MAX)
    assert len(cluster.leaders()) == 1
    assert all(node.commit_index >= 1 for node in cluster.running())
    assert cluster.nodes[NodeId(1)] is not None
