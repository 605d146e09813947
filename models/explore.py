"""Exhaustive breadth-first exploration of a small Raft cluster, checking every invariant in every state.

Time is abstracted as in Ongaro's TLA+ spec: instead of ticks, any non-leader may time out at
any step and any leader may send heartbeats. From each state the explorer tries every action:
time out, heartbeat, propose on a leader, deliver / drop / duplicate any message in flight,
crash and restart. Bounds keep the space finite: the highest term, the log length, the messages
in flight, the copies of one message, and the number of crashes.

Each state is reduced to a *view*: its protocol state without timers, random seeds or ghost
history (like a TLC VIEW), and canonicalised under every renaming of the node ids (symmetry
reduction). Breadth-first order means the first violation found comes with a shortest trace.

Run `etcdref explore --help` for the command line; `make explore-large` runs the large profile.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs

from models import cluster as model
from models.invariants import STATE_INVARIANTS, TRANSITION_INVARIANTS
from spec.raft.messages import Message
from spec.raft.state import NodeState, PersistedState
from spec.raft.types import NodeId, Role, Settings

Action = tuple[str, Callable[[model.ClusterState], model.ClusterState]]
View = tuple[Any, ...]


@attrs.frozen
class Bounds:
    servers: int = 3
    term_max: int = 2
    log_length_max: int = 2
    messages_max: int = 3
    copies_max: int = 1  # copies of one message in flight; above 1 means duplication is explored
    loss: bool = False
    crashes_max: int = 0
    heartbeats: bool = True
    pre_vote: bool = False
    states_max: int = 5_000_000
    seconds_max: float = 3600.0


PROFILES: dict[str, Bounds] = {
    # Completes in well under a minute; runs in `make test`. Duplication and a crash, no loss.
    "ci": Bounds(
        term_max=2,
        log_length_max=1,
        messages_max=2,
        copies_max=2,
        loss=False,
        crashes_max=1,
        heartbeats=False,
    ),
    # A quick smoke run (seconds): elections over three terms, one entry.
    "small": Bounds(
        term_max=3,
        log_length_max=1,
        messages_max=2,
        copies_max=1,
        loss=False,
        crashes_max=0,
        heartbeats=False,
    ),
    # The documented large run (`make explore-large`): loss, duplication, crash and restart.
    "large": Bounds(
        term_max=3,
        log_length_max=2,
        messages_max=2,
        copies_max=2,
        loss=True,
        crashes_max=1,
        heartbeats=False,
        states_max=50_000_000,
        seconds_max=6 * 3600.0,
    ),
}


# --- Views -------------------------------------------------------------------------------------------


def rename(node: int | None, permutation: Sequence[int]) -> int:
    return 0 if node is None else permutation[node]


@functools.lru_cache(maxsize=200_000)
def message_parts(message: Message) -> tuple[int, int, View]:
    """(sender, recipient, everything else): the ids apart, so a renaming touches only them.

    Snapshots carry a membership; exploration never changes membership, so it is left out.
    """
    fields = attrs.astuple(message, recurse=False)
    rest = tuple(None if hasattr(value, "voters") else value for value in fields[2:])
    return fields[0], fields[1], (type(message).__name__, *rest)


def node_parts(node: NodeState) -> tuple[View, int | None, int | None, View, View]:
    """A node's view split into the part no renaming changes and the parts that name nodes."""
    base = (
        node.role.value,
        node.term,
        node.log.snapshot.index,
        tuple((entry.term, entry.kind.value, entry.data) for entry in node.log.entries),
        node.commit_index,
        node.durable_index,
        node.emitted_index,
    )
    votes = tuple(node.votes.items())
    progress: View = ()
    if node.leader_state is not None:
        progress = tuple(
            (
                peer,
                (
                    item.match_index,
                    item.next_index,
                    item.mode.value,
                    item.probe_sent,
                    item.inflight,
                ),
            )
            for peer, item in node.leader_state.progress.items()
        )
    return base, node.vote, node.leader, votes, progress


def persisted_parts(stored: PersistedState) -> tuple[View, int | None, int | None, View, View]:
    hard = stored.hard_state
    base = (
        "down",
        hard.term,
        stored.log.snapshot.index,
        tuple((e.term, e.kind.value, e.data) for e in stored.log.entries),
        hard.commit,
    )
    return base, hard.vote, None, (), ()


def canonical_view(cluster: model.ClusterState, permutations: Sequence[Sequence[int]]) -> View:
    """The least view over the renamings of node ids that sort the nodes by their id-free part.

    Symmetric states share one fingerprint: the id-free parts are the same multiset in both, so
    the same renamings qualify, and the least of their views is the same. Only renamings that
    put the nodes in sorted order are tried (usually one), not all of them.
    """
    parts = {
        node_id: node_parts(node)
        if node is not None
        else persisted_parts(cluster.persisted[node_id])
        for node_id, node in cluster.nodes.items()
    }
    ordered_bases = sorted(part[0] for part in parts.values())
    messages = [message_parts(message) for message in cluster.network]
    best: View | None = None
    for permutation in permutations:
        slots: list[View] = [()] * len(parts)
        for node_id, (base, vote, leader, votes, progress) in parts.items():
            slot = permutation[node_id] - 1
            if base != ordered_bases[slot]:
                break
            slots[slot] = (
                base,
                rename(vote, permutation),
                rename(leader, permutation),
                tuple(sorted((permutation[voter], granted) for voter, granted in votes)),
                tuple(sorted((permutation[peer], item) for peer, item in progress)),
            )
        else:
            network = tuple(
                sorted(
                    (permutation[sender], permutation[recipient], rest)
                    for sender, recipient, rest in messages
                )
            )
            view = (tuple(slots), network)
            if best is None or view < best:
                best = view
    assert best is not None
    return best


def all_permutations(servers: int) -> list[list[int]]:
    """Each renaming as a list indexed by old id (index 0 unused)."""
    return [[0, *order] for order in itertools.permutations(range(1, servers + 1))]


# --- Actions -------------------------------------------------------------------------------------------


def crashes_so_far(cluster: model.ClusterState) -> int:
    return cluster.restarts + sum(1 for node in cluster.nodes.values() if node is None)


def enabled_actions(cluster: model.ClusterState, bounds: Bounds) -> Iterator[Action]:
    """Every action allowed in `cluster` under `bounds`, with a readable label."""
    room = len(cluster.network) < bounds.messages_max
    for node_id in cluster.node_ids:
        node = cluster.nodes[node_id]
        if node is None:
            yield f"restart {node_id}", functools.partial(model.recover, node_id=node_id)
            continue
        if (
            node.role is not Role.LEADER
            and node.term < bounds.term_max
            and node.promotable
            and room
        ):
            yield f"timeout {node_id}", functools.partial(model.election_timeout, node_id=node_id)
        if node.role is Role.LEADER and room:
            if node.log.last_index < bounds.log_length_max:
                yield f"propose on {node_id}", functools.partial(propose_value, node_id=node_id)
            if bounds.heartbeats:
                yield (
                    f"heartbeat from {node_id}",
                    functools.partial(model.heartbeat_timeout, node_id=node_id),
                )
        if crashes_so_far(cluster) < bounds.crashes_max:
            yield f"crash {node_id}", functools.partial(model.crash, node_id=node_id)
    seen: set[Message] = set()
    for position, message in enumerate(cluster.network):
        if message in seen:
            continue
        seen.add(message)
        label = describe(message)
        yield f"deliver {label}", functools.partial(model.deliver, position=position)
        if bounds.loss:
            yield f"drop {label}", functools.partial(model.drop, position=position)
        if room and cluster.network.count(message) < bounds.copies_max:
            yield f"duplicate {label}", functools.partial(model.duplicate, position=position)


def propose_value(cluster: model.ClusterState, node_id: NodeId) -> model.ClusterState:
    return model.propose(cluster, node_id, b"v")


def describe(message: Message) -> str:
    fields = ", ".join(
        f"{name}={value!r}"
        for name, value in attrs.asdict(message, recurse=False).items()
        if name not in ("sender", "recipient")
    )
    return f"{type(message).__name__} {message.sender}->{message.recipient} ({fields})"


def within_bounds(cluster: model.ClusterState, bounds: Bounds) -> bool:
    """Transitions may create messages beyond the bound (a broadcast); such states are not explored further."""
    return len(cluster.network) <= bounds.messages_max + bounds.servers


# --- Search ---------------------------------------------------------------------------------------------


@attrs.frozen
class Report:
    distinct_states: int
    transitions: int
    depth: int
    seconds: float
    complete: bool
    counterexample: tuple[str, ...] | None = None
    problems: tuple[str, ...] = ()

    @property
    def states_per_second(self) -> float:
        return self.distinct_states / self.seconds if self.seconds > 0 else 0.0


def initial_cluster(bounds: Bounds) -> model.ClusterState:
    settings = Settings(
        election_ticks=10, heartbeat_ticks=1, pre_vote=bounds.pre_vote, check_quorum=False
    )
    return model.new_cluster(bounds.servers, settings)


def explore(bounds: Bounds, progress: Callable[[int, int], None] | None = None) -> Report:
    """Visit every reachable state within `bounds`; stop at the first invariant violation."""
    permutations = all_permutations(bounds.servers)
    start = initial_cluster(bounds)
    start_print = fingerprint(canonical_view(start, permutations))
    parents: dict[int, tuple[int | None, str]] = {start_print: (None, "initial state")}
    frontier: deque[tuple[model.ClusterState, int, int]] = deque([(start, start_print, 0)])
    began, transitions, depth = time.monotonic(), 0, 0
    while frontier:
        cluster, print_, level = frontier.popleft()
        depth = max(depth, level)
        for label, action in enabled_actions(cluster, bounds):
            after = action(cluster)
            transitions += 1
            problems = [
                problem for check in TRANSITION_INVARIANTS for problem in check(cluster, after)
            ]
            after_print = fingerprint(canonical_view(after, permutations))
            if after_print not in parents or problems:
                problems += [problem for check in STATE_INVARIANTS for problem in check(after)]
            if problems:
                trace = (*trace_to(parents, print_), label)
                elapsed = time.monotonic() - began
                return Report(
                    len(parents), transitions, level + 1, elapsed, False, trace, tuple(problems)
                )
            if after_print in parents or not within_bounds(after, bounds):
                continue
            parents[after_print] = (print_, label)
            frontier.append((after, after_print, level + 1))
        if progress is not None and len(parents) % 1000 < 50:
            progress(len(parents), depth)
        if len(parents) >= bounds.states_max or time.monotonic() - began > bounds.seconds_max:
            return Report(len(parents), transitions, depth, time.monotonic() - began, False)
    return Report(len(parents), transitions, depth, time.monotonic() - began, True)


def fingerprint(view: View) -> int:
    """A 64-bit hash of a view, kept instead of the view itself (as TLC keeps fingerprints).

    Two different states could share one (then one would go unexplored); at ten million states
    the chance is about one in a hundred thousand. Python's hash is stable within one run.
    """
    return hash(view)


def trace_to(parents: dict[int, tuple[int | None, str]], state_print: int) -> list[str]:
    labels: list[str] = []
    current: int | None = state_print
    while current is not None:
        parent, label = parents[current]
        labels.append(label)
        current = parent
    return list(reversed(labels))


# --- Command line ------------------------------------------------------------------------------------------


def format_report(bounds: Bounds, report: Report) -> str:
    lines = [
        f"bounds: {bounds.servers} servers, term <= {bounds.term_max}, log <= {bounds.log_length_max},"
        f" messages in flight <= {bounds.messages_max}, copies <= {bounds.copies_max},"
        f" loss {'on' if bounds.loss else 'off'}, crashes <= {bounds.crashes_max}, pre-vote {'on' if bounds.pre_vote else 'off'}",
        f"distinct states: {report.distinct_states:,}  transitions: {report.transitions:,}  depth: {report.depth}",
        f"time: {report.seconds:.1f} s  ({report.states_per_second:,.0f} distinct states per second)",
    ]
    if report.counterexample is not None:
        lines.append("VIOLATION: " + "; ".join(report.problems))
        lines.append("shortest trace:")
        lines += [f"  {number:>3}. {label}" for number, label in enumerate(report.counterexample)]
    elif report.complete:
        lines.append("result: every reachable state satisfies every invariant")
    else:
        lines.append(
            "result: stopped at the state or time limit before exhausting the space (no violation so far)"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="etcdref explore", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="ci",
        help="a named set of bounds (default: ci)",
    )
    parser.add_argument("--term-max", type=int, help="highest term any server may reach")
    parser.add_argument("--log-length-max", type=int, help="longest log a leader may build")
    parser.add_argument("--messages-max", type=int, help="messages in flight at once")
    parser.add_argument(
        "--crashes-max", type=int, help="crashes (each followed by a possible restart)"
    )
    parser.add_argument("--pre-vote", action="store_true", help="explore with PreVote enabled")
    parser.add_argument("--seconds-max", type=float, help="stop after this many seconds")
    arguments = parser.parse_args(argv)
    bounds = PROFILES[arguments.profile]
    overrides = {
        "term_max": arguments.term_max,
        "log_length_max": arguments.log_length_max,
        "messages_max": arguments.messages_max,
        "crashes_max": arguments.crashes_max,
        "seconds_max": arguments.seconds_max,
    }
    bounds = attrs.evolve(
        bounds, **{key: value for key, value in overrides.items() if value is not None}
    )
    if arguments.pre_vote:
        bounds = attrs.evolve(bounds, pre_vote=True)
    if (
        min(bounds.term_max, bounds.log_length_max, bounds.messages_max) < 1
        or bounds.crashes_max < 0
    ):
        parser.error("bounds must be at least 1 (crashes at least 0)")

    started = time.monotonic()
    last_line = [started]

    def show(states: int, depth: int) -> None:
        """A live counter on a terminal; otherwise a line a minute, so long runs leave a trail in logs."""
        now = time.monotonic()
        if sys.stderr.isatty():
            print(
                f"\r  {states:,} distinct states, depth {depth}",
                end="",
                file=sys.stderr,
                flush=True,
            )
        elif now - last_line[0] >= 60:
            last_line[0] = now
            rate = states / (now - started)
            print(
                f"  {now - started:,.0f} s: {states:,} distinct states, depth {depth}, {rate:,.0f}/s",
                file=sys.stderr,
                flush=True,
            )

    report = explore(bounds, progress=show)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(format_report(bounds, report))
    return 1 if report.counterexample is not None else 0
