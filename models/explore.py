"""Exhaustive breadth-first exploration of a small Raft cluster, checking every invariant in every state.

Time is abstracted as in Ongaro's TLA+ spec: instead of ticks, any non-leader may time out at
any step and any leader may send heartbeats. From each state the explorer tries every action:
time out, heartbeat, propose on a leader, deliver / deliver and keep / drop any message in
flight, crash and restart. Bounds keep the space finite: the highest term, the log length, the
messages in flight, and the number of crashes.

The network. Without duplication it is a bag: each message is delivered or dropped once. With
duplication it is a set, as in Ongaro's TLA+ spec, and a message may be delivered and kept, so
delivered again later, any number of times; keeping a message needs room under the bound on
messages in flight, as a copy would. With loss, a message that its recipient can only ignore
from now on is removed at once (`normalise_network` argues both reductions).

The bound on messages in flight: a timeout, proposal or heartbeat, and keeping a delivered
message, need fewer than `messages_max` distinct messages in flight; a step may exceed it (a
vote request or append goes to every peer at once), and states with more than
`messages_max + servers` are checked but not explored further. The large profile uses 2: a
candidate's vote requests can be in flight while another node times out (competing candidates,
split votes), and a leader's appends while a crash, a loss or a new election happens. With 1,
no node could time out while another's messages are in flight, and duplication would be unused.

Each state is reduced to a *view*: its protocol state without timers, random seeds or ghost
history (like a TLC VIEW), and canonicalised under every renaming of the node ids (symmetry
reduction). Breadth-first order means the first violation found comes with a shortest trace.
`NodeTable` memoises each node's steps and shares node objects between states; `explore`
keeps a fingerprint per state and, for traces, a parent number and action position.

Run `etcdref explore --help` for the command line; `make explore-large` runs the large profile
(figures in benchmarks/raft/README.md).
"""

from __future__ import annotations

import argparse
import array
import functools
import gc
import itertools
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from models import cluster as model
from models.invariants import STATE_INVARIANTS, TRANSITION_INVARIANTS
from spec.raft.io import NOTHING, Input, Output, Receive
from spec.raft.messages import AppendResponse, HeartbeatResponse, Message, VoteResponse
from spec.raft.state import NodeState, PersistedState
from spec.raft.step import step
from spec.raft.types import NodeId, Role, Settings

View = tuple[Any, ...]


@attrs.frozen
class Bounds:
    servers: int = 3
    term_max: int = 2
    log_length_max: int = 2
    messages_max: int = 3
    # A message may be delivered and kept, so delivered any number of times (`normalise_network`).
    duplication: bool = False
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
        duplication=True,
        loss=False,
        crashes_max=1,
        heartbeats=False,
    ),
    # A quick smoke run (seconds): elections over three terms, one entry.
    "small": Bounds(
        term_max=3,
        log_length_max=1,
        messages_max=2,
        duplication=False,
        loss=False,
        crashes_max=0,
        heartbeats=False,
    ),
    # The documented large run (`make explore-large`): loss, duplication, crash and restart.
    # Exhausted on 2026-12-02: 9,615,645 distinct states, depth 43, 45 minutes, 1.6 GB
    # (benchmarks/raft/README.md).
    "large": Bounds(
        term_max=3,
        log_length_max=2,
        messages_max=2,
        duplication=True,
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


NodeParts = tuple[View, int | None, int | None, View, View]


class NodeTable:
    """One shared object per distinct node state, and each node's steps memoised.

    `spec.raft.step.step` is a pure function, so a step of a node state that was stepped with
    the same input before can reuse that result. Nodes are keyed by their id and view
    (`node_parts`): two node states with the same key differ only in what the view leaves out
    (timers, random seed, bookkeeping unused with these bounds), which the explorer already
    treats as behaviourally irrelevant when it merges states with the same view. Within one
    key the first node state met stands for all, so the same views are explored as without the
    table (the `ci` bounds give the same count either way); states only share their node
    objects (less memory) and skip repeated steps.

    Steps are keyed by the node object's id: the table keeps every node it knows alive, so
    an id cannot be reused while it is a key. Both tables are emptied when they grow past
    `entries_max`, and then filled again.
    """

    def __init__(self, entries_max: int = 2_000_000) -> None:
        self.entries_max = entries_max
        self.by_key: dict[tuple[int, NodeParts], NodeState] = {}
        self.parts: dict[int, NodeParts] = {}  # id of a shared node -> its view parts
        self.steps: dict[tuple[int, Input], tuple[NodeState, Output]] = {}
        # Views of shared nodes and of messages under each renaming (by its position).
        self.renamed_nodes: dict[tuple[int, int], View] = {}
        self.renamed_messages: dict[tuple[Message, int], View] = {}

    def intern(self, node: NodeState) -> NodeState:
        """The shared node with the same key as `node` (`node` itself if it is the first)."""
        if id(node) in self.parts:
            return node
        parts = node_parts(node)
        shared = self.by_key.setdefault((node.node_id, parts), node)
        if shared is node:
            self.parts[id(node)] = parts
        return shared

    def step(self, node: NodeState, event: Input) -> tuple[NodeState, Output]:
        """`spec.raft.step.step`, memoised; the node it returns is a shared one."""
        node = self.intern(node)
        key = (id(node), event)
        known = self.steps.get(key)
        if known is not None:
            return known
        after, output = step(node, event)
        result = (self.intern(after), output)
        if len(self.steps) >= self.entries_max or len(self.by_key) >= self.entries_max:
            self.clear()
            result = (self.intern(result[0]), output)
            node = self.intern(node)
            key = (id(node), event)
        self.steps[key] = result
        return result

    def clear(self) -> None:
        self.by_key.clear()
        self.parts.clear()
        self.steps.clear()
        self.renamed_nodes.clear()
        self.renamed_messages.clear()

    def intern_all(self, cluster: model.ClusterState) -> model.ClusterState:
        nodes = {
            node_id: None if node is None else self.intern(node)
            for node_id, node in cluster.nodes.items()
        }
        if all(nodes[node_id] is node for node_id, node in cluster.nodes.items()):
            return cluster
        return attrs.evolve(cluster, nodes=nodes)


def canonical_view(
    cluster: model.ClusterState,
    permutations: Sequence[Sequence[int]],
    nodes: NodeTable | None = None,
) -> View:
    """The least view over the renamings of node ids that sort the nodes by their id-free part.

    Symmetric states share one fingerprint: the id-free parts are the same multiset in both, so
    the same renamings qualify, and the least of their views is the same. Only renamings that
    put the nodes in sorted order are tried (usually one), not all of them. With a `NodeTable`,
    the renamed view of each shared node and of each message is computed once and remembered.
    """
    renamed_nodes = nodes.renamed_nodes if nodes is not None else {}
    renamed_messages = nodes.renamed_messages if nodes is not None else {}
    known = nodes.parts if nodes is not None else {}
    parts: list[tuple[int, NodeParts, int | None]] = []  # (node id, parts, id of a shared node)
    for node_id, node in cluster.nodes.items():
        if node is None:
            parts.append((node_id, persisted_parts(cluster.persisted[node_id]), None))
            continue
        cached = known.get(id(node))
        if cached is None:
            parts.append((node_id, node_parts(node), None))
        else:
            parts.append((node_id, cached, id(node)))
    ordered_bases = sorted(part[1][0] for part in parts)
    best: View | None = None
    for number, permutation in enumerate(permutations):
        slots: list[View] = [()] * len(parts)
        for owner, node_view, shared in parts:
            slot = permutation[owner] - 1
            if node_view[0] != ordered_bases[slot]:
                break
            if shared is None:
                slots[slot] = renamed_node(node_view, permutation)
            else:
                renamed = renamed_nodes.get((shared, number))
                if renamed is None:
                    renamed = renamed_nodes[(shared, number)] = renamed_node(node_view, permutation)
                slots[slot] = renamed
        else:
            messages = []
            for message in cluster.network:
                renamed = renamed_messages.get((message, number))
                if renamed is None:
                    sender, recipient, rest = message_parts(message)
                    renamed = (permutation[sender], permutation[recipient], rest)
                    if nodes is not None:
                        renamed_messages[(message, number)] = renamed
                messages.append(renamed)
            messages.sort()
            view = (tuple(slots), tuple(messages))
            if best is None or view < best:
                best = view
    assert best is not None
    return best


def renamed_node(parts: NodeParts, permutation: Sequence[int]) -> View:
    base, vote, leader, votes, progress = parts
    return (
        base,
        rename(vote, permutation),
        rename(leader, permutation),
        tuple(sorted((permutation[voter], granted) for voter, granted in votes)),
        tuple(sorted((permutation[peer], item) for peer, item in progress)),
    )


def all_permutations(servers: int) -> list[list[int]]:
    """Each renaming as a list indexed by old id (index 0 unused)."""
    return [[0, *order] for order in itertools.permutations(range(1, servers + 1))]


# --- Actions -------------------------------------------------------------------------------------------

# An action is a kind and what it applies to: a node id, or a message's position in the network.
# Labels are only written for a counterexample trace, by `label`.
Action = tuple[str, int]


def crashes_so_far(cluster: model.ClusterState) -> int:
    return cluster.restarts + sum(1 for node in cluster.nodes.values() if node is None)


def enabled_actions(cluster: model.ClusterState, bounds: Bounds) -> list[Action]:
    """Every action allowed in `cluster` under `bounds`, in a fixed order (a trace names them by position)."""
    actions: list[Action] = []
    room = len(cluster.network) < bounds.messages_max
    may_crash = crashes_so_far(cluster) < bounds.crashes_max
    for node_id in cluster.node_ids:
        node = cluster.nodes[node_id]
        if node is None:
            actions.append(("restart", node_id))
            continue
        if node.role is not Role.LEADER:
            if room and node.term < bounds.term_max and node.promotable:
                actions.append(("timeout", node_id))
        elif room:
            if node.log.last_index < bounds.log_length_max:
                actions.append(("propose", node_id))
            if bounds.heartbeats:
                actions.append(("heartbeat", node_id))
        if may_crash:
            actions.append(("crash", node_id))
    seen: set[Message] = set()
    for position, message in enumerate(cluster.network):
        if message in seen:  # identical copies in a bag: delivering either is the same action
            continue
        seen.add(message)
        actions.append(("deliver", position))
        if bounds.duplication and room:
            actions.append(("deliver and keep", position))
        if bounds.loss:
            actions.append(("drop", position))
    return actions


def apply_action(
    cluster: model.ClusterState, action: Action, nodes: NodeTable
) -> model.ClusterState:
    kind, target = action
    node_id = NodeId(target)
    match kind:
        case "restart":
            return model.recover(cluster, node_id)
        case "timeout":
            return model.election_timeout(cluster, node_id, nodes.step)
        case "propose":
            return model.propose(cluster, node_id, b"v", nodes.step)
        case "heartbeat":
            return model.heartbeat_timeout(cluster, node_id, nodes.step)
        case "crash":
            return model.crash(cluster, node_id)
        case "deliver":
            return model.deliver(cluster, target, nodes.step)
        case "deliver and keep":
            # A second copy is made and one copy delivered: the network keeps the message.
            return model.deliver(model.duplicate(cluster, target), target, nodes.step)
        case "drop":
            return model.drop(cluster, target)
    raise AssertionError(f"unknown action {action}")


def successor(
    cluster: model.ClusterState, action: Action, bounds: Bounds, nodes: NodeTable
) -> model.ClusterState:
    """The state after `action`, with the network reduced as `normalise_network` explains and
    its nodes the shared ones of `nodes`."""
    after = normalise_network(apply_action(cluster, action, nodes), bounds, nodes)
    return nodes.intern_all(after)


def normalise_network(
    cluster: model.ClusterState, bounds: Bounds, nodes: NodeTable
) -> model.ClusterState:
    """The network's two reductions: duplicates merged, inert messages collected.

    With duplication, the network is a *set*, as in Ongaro's TLA+ spec: a message stays until an
    action removes it, and "deliver and keep" delivers it while it stays, so one message can be
    delivered any number of times. Sending a message already in flight adds nothing. Keeping a
    message needs room under the bound on messages in flight, as sending one more would. No two
    states differ only in how many copies of a message they hold, which keeps the space small.
    (Until 2026-12 the network was a bag allowing two copies of a message, where making a copy
    needed room and each copy counted towards the bound. Neither model's behaviours contain the
    other's: here a message may be delivered any number of times, there a copy made while there
    was room could still be delivered once the network was full.)

    With loss, a message is collected (dropped at once) when its running recipient will ignore
    it for good (`inert`): it is from an older term than the recipient's, or it answers the
    recipient as candidate or leader of a term in which the recipient holds that role no more.
    The state without such a message has every behaviour of the state with it (delivering or
    dropping the message there changes nothing here, and there is more room for new messages
    here) and the same nodes, storage and ghost, which are all the invariants read; and it is
    reachable itself, by dropping the message, so collection adds no behaviour either. Each
    message is collected only after delivering it to a copy of its recipient changed nothing,
    so a spec that acts on such messages (PreVote, CheckQuorum, or a bug: see
    tests/models/test_explore.py) keeps them. That it stays ignored rests on terms never
    decreasing (checked by the `monotonic` invariant) and on campaigning starting a new term.
    """
    network = cluster.network
    if bounds.duplication and len(set(network)) < len(network):
        network = tuple(dict.fromkeys(network))
    if bounds.loss:
        network = tuple(message for message in network if not inert(cluster, message, nodes))
    if network is cluster.network or network == cluster.network:
        return cluster
    return attrs.evolve(cluster, network=network)


def inert(cluster: model.ClusterState, message: Message, nodes: NodeTable) -> bool:
    """Whether `message` is from an older term than its running recipient, which would ignore it."""
    recipient = cluster.nodes.get(message.recipient)
    if recipient is None or message.term > recipient.term:
        return False
    if message.term == recipient.term and not answers_a_role_it_left(message, recipient):
        return False
    after, output = nodes.step(recipient, Receive(message))
    return output == NOTHING and (after is nodes.intern(recipient) or after == recipient)


def answers_a_role_it_left(message: Message, recipient: NodeState) -> bool:
    """A vote for a node that is no longer a candidate in the vote's term, or an append answer to a
    node that is not the leader of the answer's term: it can never take that role in that term
    again, since campaigning starts a new term and terms never decrease."""
    if isinstance(message, VoteResponse):
        return not message.pre_vote and recipient.role is not Role.CANDIDATE
    if isinstance(message, AppendResponse | HeartbeatResponse):
        return recipient.role is not Role.LEADER
    return False


def label(cluster: model.ClusterState, action: Action) -> str:
    kind, target = action
    match kind:
        case "propose":
            return f"propose on {target}"
        case "heartbeat":
            return f"heartbeat from {target}"
        case "deliver" | "deliver and keep" | "drop":
            return f"{kind} {describe(cluster.network[target])}"
    return f"{kind} {target}"


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


Progress = Callable[
    [int, int, int], None
]  # (distinct states, depth, states waiting in the frontier)


def explore(bounds: Bounds, progress: Progress | None = None) -> Report:
    """Visit every reachable state within `bounds`; stop at the first invariant violation.

    Memory per distinct state: its fingerprint in a set, and for the shortest trace the number
    of the state it was first reached from (array of 4-byte integers) and the position of the
    action among that state's enabled actions (1 byte). A trace is rebuilt by replaying those
    actions from the initial state, which is deterministic. Full states are kept only in the
    breadth-first frontier. The cyclic garbage collector is paused: states are trees of
    immutable values, with no cycles to collect, and scanning millions of them costs time.
    """
    permutations = all_permutations(bounds.servers)
    nodes = NodeTable()
    start = nodes.intern_all(initial_cluster(bounds))
    seen = {fingerprint(canonical_view(start, permutations))}
    parents = array.array("I", [0])  # parents[n]: the number of the state state n was reached from
    positions = array.array("B", [0])  # positions[n]: which of its parent's actions reached it
    frontier: deque[tuple[model.ClusterState, int, int]] = deque([(start, 0, 0)])
    began, transitions, depth, next_report = time.monotonic(), 0, 0, 0
    collecting = gc.isenabled()
    gc.disable()
    try:
        while frontier:
            cluster, number, level = frontier.popleft()
            depth = max(depth, level)
            for position, action in enumerate(enabled_actions(cluster, bounds)):
                after = successor(cluster, action, bounds, nodes)
                transitions += 1
                problems = [
                    problem for check in TRANSITION_INVARIANTS for problem in check(cluster, after)
                ]
                after_print = fingerprint(canonical_view(after, permutations, nodes))
                new = after_print not in seen
                if new or problems:
                    problems += [problem for check in STATE_INVARIANTS for problem in check(after)]
                if problems:
                    trace = (
                        *trace_to(start, parents, positions, number, bounds, nodes),
                        label(cluster, action),
                    )
                    elapsed = time.monotonic() - began
                    return Report(
                        len(seen), transitions, level + 1, elapsed, False, trace, tuple(problems)
                    )
                if not new or not within_bounds(after, bounds):
                    continue
                seen.add(after_print)
                parents.append(number)
                positions.append(position)
                frontier.append((after, len(parents) - 1, level + 1))
            if progress is not None and len(seen) >= next_report:
                next_report = len(seen) + 1000
                progress(len(seen), depth, len(frontier))
            if len(seen) >= bounds.states_max or time.monotonic() - began > bounds.seconds_max:
                return Report(len(seen), transitions, depth, time.monotonic() - began, False)
    finally:
        if collecting:
            gc.enable()
    return Report(len(seen), transitions, depth, time.monotonic() - began, True)


def fingerprint(view: View) -> int:
    """A 64-bit hash of a view, kept instead of the view itself (as TLC keeps fingerprints).

    Two different states could share one (then one would go unexplored); at ten million states
    the chance is about one in a hundred thousand. Python's hash is stable within one run.
    """
    return hash(view)


def trace_to(
    start: model.ClusterState,
    parents: array.array[int],
    positions: array.array[int],
    number: int,
    bounds: Bounds,
    nodes: NodeTable,
) -> list[str]:
    """The labels of the actions from the initial state to state `number`, found by replaying them."""
    path: list[int] = []
    while number != 0:
        path.append(positions[number])
        number = parents[number]
    labels = ["initial state"]
    cluster = start
    for position in reversed(path):
        action = enabled_actions(cluster, bounds)[position]
        labels.append(label(cluster, action))
        cluster = successor(cluster, action, bounds, nodes)
    return labels


# --- Command line ------------------------------------------------------------------------------------------


def format_report(bounds: Bounds, report: Report) -> str:
    lines = [
        f"bounds: {bounds.servers} servers, term <= {bounds.term_max}, log <= {bounds.log_length_max},"
        f" messages in flight <= {bounds.messages_max},"
        f" duplication {'on' if bounds.duplication else 'off'}, loss {'on' if bounds.loss else 'off'},"
        f" crashes <= {bounds.crashes_max}, pre-vote {'on' if bounds.pre_vote else 'off'}",
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

    def show(states: int, depth: int, waiting: int) -> None:
        """A live counter on a terminal; otherwise a line a minute, so long runs leave a trail in logs."""
        now = time.monotonic()
        if sys.stderr.isatty():
            print(
                f"\r  {states:,} distinct states, depth {depth}, {waiting:,} waiting",
                end="",
                file=sys.stderr,
                flush=True,
            )
        elif now - last_line[0] >= 60:
            last_line[0] = now
            rate = states / (now - started)
            print(
                f"  {now - started:,.0f} s: {states:,} distinct states, depth {depth},"
                f" {waiting:,} waiting, {rate:,.0f}/s",
                file=sys.stderr,
                flush=True,
            )

    report = explore(bounds, progress=show)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(format_report(bounds, report))
    return 1 if report.counterexample is not None else 0
