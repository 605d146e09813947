"""Speed of the pure Raft spec and of the exhaustive explorer.

    .venv/bin/python -m benchmarks.raft            # or: etcdref bench raft
    .venv/bin/python -m benchmarks.raft --seconds 3

- heartbeat round: a leader of three broadcasts a heartbeat, both followers step it and answer,
  the leader steps both answers: 5 `step` calls per round.
- append round: a proposal on the leader, one append to each follower, each answers, the
  leader steps both answers (commit advances) and acknowledges its own write: 6+ steps per round.
- explorer: distinct states per second over the `small` bounds (models/explore.py).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.table import Table

from models import cluster as model
from models.explore import PROFILES, explore
from spec.raft.io import HeartbeatTimeout, Input, Propose, Receive, StorageAcknowledged
from spec.raft.state import NodeState
from spec.raft.step import step
from spec.raft.types import NodeId, Settings


def elected_cluster() -> dict[NodeId, NodeState]:
    cluster = model.stabilize(model.new_cluster(3, Settings(), seed=3), ticks_max=200)
    nodes = {node.node_id: node for node in cluster.running()}
    assert len(cluster.leaders()) == 1
    return nodes


def run_round(nodes: dict[NodeId, NodeState], leader_id: NodeId, first: Input) -> int:
    """Step `first` on the leader, deliver everything it causes (one hop each way); return steps taken."""
    steps = 1
    leader, output = step(nodes[leader_id], first)
    replies = []
    for outgoing in output.messages:
        follower, answer = step(nodes[outgoing.message.recipient], Receive(outgoing.message))
        nodes[follower.node_id] = follower
        replies += [reply.message for reply in answer.messages]
        steps += 1
    if output.entries_to_persist:
        leader, _ = step(leader, StorageAcknowledged(leader.log.last_index, leader.log.last_term))
        steps += 1
    for reply in replies:
        leader, _ = step(leader, Receive(reply))
        steps += 1
    nodes[leader_id] = leader
    return steps


def measure(seconds: float, one_round: Callable[[], int]) -> tuple[float, float]:
    """(rounds per second, steps per second) over about `seconds`."""
    rounds = steps = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        steps += one_round()
        rounds += 1
    elapsed = time.perf_counter() - began
    return rounds / elapsed, steps / elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="etcdref bench raft", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="time per measurement (default 5)"
    )
    arguments = parser.parse_args(argv)
    if arguments.seconds <= 0:
        parser.error("--seconds must be positive")
    nodes = elected_cluster()
    leader_id = next(node_id for node_id, node in nodes.items() if node.is_leader)
    heartbeat = measure(arguments.seconds, lambda: run_round(nodes, leader_id, HeartbeatTimeout()))
    counter = iter(range(10**9))
    append = measure(
        arguments.seconds, lambda: run_round(nodes, leader_id, Propose(b"x%d" % next(counter)))
    )
    report = explore(PROFILES["small"])
    table = Table(title="Raft specification speed (one core, pure Python)")
    for column in ("measurement", "rounds/s", "spec steps/s"):
        table.add_column(column, justify="right" if column != "measurement" else "left")
    table.add_row("heartbeat round (3 nodes)", f"{heartbeat[0]:,.0f}", f"{heartbeat[1]:,.0f}")
    table.add_row("append round (3 nodes)", f"{append[0]:,.0f}", f"{append[1]:,.0f}")
    table.add_row(
        f"explorer, small bounds ({report.distinct_states:,} states)",
        "",
        f"{report.states_per_second:,.0f} distinct states/s",
    )
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
