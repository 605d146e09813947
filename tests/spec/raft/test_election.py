"""Election rules at the level of single steps (Raft §5.2, thesis §9.6 PreVote, §4.2.3 leader lease)."""

from __future__ import annotations

import attrs

from spec.raft.io import ElectionTimeout, Receive
from spec.raft.messages import VoteRequest, VoteResponse
from spec.raft.state import initial_state
from spec.raft.step import step
from spec.raft.types import LogIndex, Membership, NodeId, Role, Settings, Term

VOTERS = Membership(frozenset({NodeId(1), NodeId(2), NodeId(3)}))
SETTINGS = Settings(pre_vote=True, check_quorum=True)


def test_the_election_after_a_won_pre_vote_is_not_marked_as_a_transfer() -> None:
    """Only a transfer's election may pass the voters' leader lease (etcd campaignTransfer)."""
    node = initial_state(NodeId(1), VOTERS, SETTINGS, random_seed=1)
    node, output = step(node, ElectionTimeout())
    assert node.role is Role.PRE_CANDIDATE
    assert all(isinstance(o.message, VoteRequest) and o.message.pre_vote for o in output.messages)
    grant = VoteResponse(NodeId(2), NodeId(1), Term(node.term + 1), granted=True, pre_vote=True)
    node, output = step(node, Receive(grant))
    assert node.role is Role.CANDIDATE
    requests = [o.message for o in output.messages]
    assert requests and all(isinstance(m, VoteRequest) and not m.pre_vote for m in requests)
    assert not any(isinstance(m, VoteRequest) and m.transfer for m in requests)


def test_a_follower_in_its_leader_lease_ignores_a_vote_request_of_a_later_term() -> None:
    follower = initial_state(NodeId(2), VOTERS, SETTINGS, random_seed=2)
    follower = attrs.evolve(follower, term=Term(3), leader=NodeId(1), election_elapsed_ticks=0)
    request = VoteRequest(NodeId(3), NodeId(2), Term(4), LogIndex(0), Term(0))
    after, output = step(follower, Receive(request))
    assert after == follower
    assert output.messages == ()


def test_a_transfer_election_passes_the_lease() -> None:
    follower = initial_state(NodeId(2), VOTERS, SETTINGS, random_seed=2)
    follower = attrs.evolve(follower, term=Term(3), leader=NodeId(1), election_elapsed_ticks=0)
    request = VoteRequest(NodeId(3), NodeId(2), Term(4), LogIndex(0), Term(0), transfer=True)
    after, output = step(follower, Receive(request))
    assert after.term == 4
    assert after.vote == NodeId(3)
    assert [o.message for o in output.messages] == [VoteResponse(NodeId(2), NodeId(3), Term(4), True)]
