"""Seeded random simulation of the cluster model: long schedules of faults and requests, invariants after every step.

Where the Hypothesis state machine shrinks failures well, this covers ground fast: one seed
gives one schedule, drawn with weights that keep the cluster making progress between faults
(swarm-style: each seed also switches some fault kinds off entirely). A failure reports the
seed and the numbered actions, so `simulate(seed, ...)` replays it exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

from models import cluster as model
from models.invariants import violations
from spec.raft.types import ChangeAction, ConfigurationChange, NodeId, Settings

Action = Callable[[model.ClusterState], model.ClusterState]


@attrs.frozen
class SimulationResult:
    seed: int
    steps_run: int
    problems: tuple[str, ...]
    trace: tuple[str, ...]
    cluster: model.ClusterState

    @property
    def failed(self) -> bool:
        return bool(self.problems)

    def describe(self, last_actions: int = 40) -> str:
        shown = self.trace[-last_actions:]
        first_number = len(self.trace) - len(shown)
        lines = [f"seed {self.seed}: {'; '.join(self.problems)}", "last actions:"]
        lines += [f"  {first_number + offset:>4}. {label}" for offset, label in enumerate(shown)]
        return "\n".join(lines)


WEIGHTS = {
    "deliver": 30, "deliver_in_order": 6, "tick": 14, "tick_all": 4, "propose": 10, "drop": 5,
    "duplicate": 4, "election_timeout": 3, "partition": 2, "heal": 3, "crash": 2, "recover": 3,
    "read": 3, "compact": 2, "change": 3, "transfer": 1, "persist": 20,
}  # fmt: skip
FAULTS = ("drop", "duplicate", "partition", "crash", "compact", "change", "transfer")


def choose_action(
    rng: random.Random,
    cluster: model.ClusterState,
    weights: dict[str, int],
    serial: int,
    leader_removal: bool = True,
) -> tuple[str, Action]:
    """Draw one action by weight; actions that cannot apply (no message to deliver) fall back to a tick."""
    kind = rng.choices(list(weights), weights=list(weights.values()))[0]
    node = NodeId(rng.choice(cluster.node_ids))
    leaders = cluster.leaders()
    leader = (
        max(leaders, key=lambda state: state.term).node_id
        if leaders and rng.random() < 0.8
        else node
    )
    network = len(cluster.network)
    position = rng.randrange(network) if network else 0
    name = f"r{serial}".encode()
    if kind in ("deliver", "drop", "duplicate", "deliver_in_order") and not network:
        kind = "tick"
    match kind:
        case "deliver":
            return f"deliver #{position}", lambda c: model.deliver(c, position)
        case "deliver_in_order":
            return "deliver all in order", lambda c: model.deliver_all(c, messages_max=50)
        case "drop":
            return f"drop #{position}", lambda c: model.drop(c, position)
        case "duplicate":
            return f"duplicate #{position}", lambda c: model.duplicate(c, position)
        case "tick":
            return f"tick {node}", lambda c: model.tick(c, node)
        case "tick_all":
            return "tick all", model.tick_all
        case "election_timeout":
            return f"election timeout {node}", lambda c: model.election_timeout(c, node)
        case "propose":
            return f"propose {name!r} on {leader}", lambda c: model.propose(c, leader, name)
        case "partition":
            nodes = list(cluster.node_ids)
            rng.shuffle(nodes)
            cut = rng.randrange(1, len(nodes))
            groups = [nodes[:cut], nodes[cut:]]
            return f"partition {groups}", lambda c: model.partition(c, groups)
        case "heal":
            return "heal", model.heal
        case "crash":
            return f"crash {node}", lambda c: model.crash(c, node)
        case "recover":
            return f"recover {node}", lambda c: model.recover(c, node)
        case "read":
            return f"read {name!r} on {leader}", lambda c: model.request_read(c, leader, name)
        case "persist":
            return f"persist {node}", lambda c: model.persist_next(c, node)
        case "compact":
            return f"compact {node}", lambda c: model.compact(c, node)
        case "change":
            change = ConfigurationChange(
                rng.choice(list(ChangeAction)), NodeId(rng.choice(cluster.node_ids))
            )
            if (
                not leader_removal
                and change.action is ChangeAction.REMOVE
                and change.node == leader
            ):
                return f"tick {node}", lambda c: model.tick(c, node)
            return f"change {change} on {leader}", lambda c: model.change_membership(
                c, leader, change
            )
        case _:
            return f"transfer {leader} -> {node}", lambda c: model.transfer_leadership(
                c, leader, node
            )


CLUSTER_SHAPES = ((3, 3), (4, 3), (5, 5), (5, 5), (5, 3))  # (nodes, initial voters)


def settings_for(rng: random.Random) -> Settings:
    """Each schedule also draws its settings: etcd 3.4 runs without PreVote, 3.5 with it."""
    return Settings(
        election_ticks=rng.choice((3, 4, 6)),
        heartbeat_ticks=1,
        pre_vote=rng.random() < 0.5,
        check_quorum=rng.random() < 0.7,
        entries_per_message_max=rng.choice((1, 3)),
        inflight_appends_max=rng.choice((1, 2, 4)),
    )


def simulate(seed: int, steps: int, leader_removal: bool = True) -> SimulationResult:
    """Run `steps` random actions from `seed`, checking every invariant after each; stop at the first violation.

    `leader_removal=False` never proposes removing the leader itself (etcd's advice: move
    leadership away first); the liveness test needs it, see tests/models/test_raft_simulation.py.
    """
    rng = random.Random(seed)
    node_count, voters = rng.choice(CLUSTER_SHAPES)
    settings = settings_for(rng)
    weights = dict(WEIGHTS)
    for fault in FAULTS:  # swarm testing: each schedule leaves out some kinds of fault entirely
        if rng.random() < 0.3:
            weights[fault] = 0
    synchronous = rng.random() < 0.5
    if synchronous:
        weights["persist"] = 0
    cluster = model.new_cluster(
        node_count, settings, seed=seed, voters=voters, synchronous_storage=synchronous
    )
    trace: list[str] = []
    for serial in range(steps):
        label, action = choose_action(rng, cluster, weights, serial, leader_removal)
        trace.append(label)
        after = action(cluster)
        problems = violations(cluster, after)
        cluster = after
        if problems:
            return SimulationResult(seed, serial + 1, tuple(problems), tuple(trace), cluster)
    return SimulationResult(seed, steps, (), tuple(trace), cluster)
