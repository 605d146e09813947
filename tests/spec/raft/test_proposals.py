"""Proposals that arrived together (`ProposeBatch`) against proposing each in turn (Raft §5.3)."""

from __future__ import annotations

import pytest

from spec.raft.io import ElectionTimeout, Input, Output, Propose, ProposeBatch, Receive
from spec.raft.messages import AppendRequest, AppendResponse, VoteResponse
from spec.raft.state import NodeState, initial_state
from spec.raft.step import step
from spec.raft.types import LogIndex, Membership, NodeId, Role, Settings

VOTERS = Membership(frozenset({NodeId(1), NodeId(2), NodeId(3)}))
SETTINGS = Settings(pre_vote=False, check_quorum=True, entries_per_message_max=4)
COMMANDS = tuple(b"command %d" % number for number in range(10))


def leader(replicating: bool) -> NodeState:
    """Node 1 elected in term 1; with `replicating`, both followers matched its first entry."""
    node = initial_state(NodeId(1), VOTERS, SETTINGS, random_seed=1)
    node, _ = step(node, ElectionTimeout())
    node, _ = step(node, Receive(VoteResponse(NodeId(2), NodeId(1), node.term, True)))
    assert node.role is Role.LEADER
    if replicating:
        for follower in (NodeId(2), NodeId(3)):
            answer = AppendResponse(follower, NodeId(1), node.term, node.log.last_index)
            node, _ = step(node, Receive(answer))
    return node


def run(node: NodeState, events: list[Input]) -> tuple[NodeState, Output]:
    output = Output()
    for event in events:
        node, more = step(node, event)
        output = output.then(more)
    return node, output


@pytest.mark.parametrize("replicating", [False, True])
def test_a_batch_appends_what_proposing_each_in_turn_appends(replicating: bool) -> None:
    node = leader(replicating)
    batched, batch_output = step(node, ProposeBatch(COMMANDS))
    one_by_one, each_output = run(node, [Propose(command) for command in COMMANDS])
    assert batched.log == one_by_one.log
    assert [entry.data for entry in batched.log.entries_after(node.log.last_index)] == list(
        COMMANDS
    )
    assert batch_output.entries_to_persist == each_output.entries_to_persist
    assert batched.hard_state == one_by_one.hard_state
    assert batch_output.refusals == ()


def test_a_batch_goes_to_a_replicating_follower_in_one_full_message() -> None:
    """One append per follower with up to `entries_per_message_max` entries (the rest follow its
    answer, etcd sendAppend), where proposing each in turn sends one append per proposal."""
    node = leader(replicating=True)
    _, output = step(node, ProposeBatch(COMMANDS))
    for follower in (NodeId(2), NodeId(3)):
        appends = [
            outgoing.message
            for outgoing in output.messages
            if isinstance(outgoing.message, AppendRequest)
            and outgoing.message.recipient == follower
        ]
        assert len(appends) == 1
        assert [entry.data for entry in appends[0].entries] == list(COMMANDS[:4])
        assert appends[0].previous_index == node.log.last_index


def test_a_batch_on_a_follower_is_refused_command_by_command() -> None:
    follower = initial_state(NodeId(2), VOTERS, SETTINGS, random_seed=2)
    after, output = step(follower, ProposeBatch(COMMANDS))
    assert after.log == follower.log
    assert [refusal.request for refusal in output.refusals] == [Propose(c) for c in COMMANDS]
    assert output.messages == () and output.entries_to_persist == ()


def test_an_empty_batch_changes_nothing() -> None:
    node = leader(replicating=True)
    after, output = step(node, ProposeBatch(()))
    assert after == node
    assert output == Output()
    assert after.log.last_index == LogIndex(1)
