"""Cluster invariants that read the ghost history report what they should (each shown failing)."""

from __future__ import annotations

from models import cluster as model
from models.invariants import votes_once_per_term
from spec.raft.messages import VoteRequest, VoteResponse
from spec.raft.types import LogIndex, NodeId, Settings, Term


def test_two_granted_votes_in_one_term_are_reported() -> None:
    cluster = model.new_cluster(3, Settings())
    first = VoteResponse(NodeId(1), NodeId(2), Term(4), granted=True)
    again = VoteResponse(NodeId(1), NodeId(2), Term(4), granted=True)
    other = VoteResponse(NodeId(1), NodeId(3), Term(4), granted=True)
    assert votes_once_per_term(model.send_messages(cluster, [first, again])) == []
    assert votes_once_per_term(model.send_messages(cluster, [first, other])) == [
        "node 1 voted for 2 and 3 in term 4"
    ]


def test_a_candidate_votes_for_itself_by_asking_for_votes() -> None:
    cluster = model.new_cluster(3, Settings())
    request = VoteRequest(NodeId(1), NodeId(2), Term(4), LogIndex(0), Term(0))
    grant = VoteResponse(NodeId(1), NodeId(3), Term(4), granted=True)
    assert votes_once_per_term(model.send_messages(cluster, [request, grant])) == [
        "node 1 voted for 1 and 3 in term 4"
    ]


def test_pre_votes_and_refusals_bind_nobody() -> None:
    cluster = model.new_cluster(3, Settings())
    messages = [
        VoteResponse(NodeId(1), NodeId(2), Term(4), granted=True, pre_vote=True),
        VoteResponse(NodeId(1), NodeId(3), Term(4), granted=False),
        VoteResponse(NodeId(1), NodeId(3), Term(4), granted=True),
    ]
    assert votes_once_per_term(model.send_messages(cluster, messages)) == []
