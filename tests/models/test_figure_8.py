"""Raft Figure 8, played step by step on the cluster model (as etcd's raft_paper_test plays the paper).

A leader must not commit an entry of an earlier term by counting replicas (Raft §5.4.2). Here
S1 leads term 1 and writes entry 1 alone; S3 leads term 2 and writes a different entry 1 alone;
S1 leads again in term 3 and copies its old entry 1 to S2 (one entry per message), so the old
entry is on a majority. If S1 counted that as committed, S3 could still win term 4 with S2's
vote and overwrite it. The real spec does not commit it; the seeded bug from the quality catalog
does, and the invariants catch the lost committed entry.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from models import cluster as model
from models.invariants import violations
from spec.raft.messages import AppendRequest, AppendResponse, Message, VoteRequest, VoteResponse
from spec.raft.types import LogIndex, NodeId, Role, Settings, Term
from tests.quality.raft_bugs import HARD_TO_CATCH

S1, S2, S3 = NodeId(1), NodeId(2), NodeId(3)
SETTINGS = Settings(pre_vote=False, check_quorum=False, entries_per_message_max=1)


class Scenario:
    """Runs actions on the model, checking every invariant after each one."""

    def __init__(self) -> None:
        self.cluster = model.new_cluster(3, SETTINGS)
        self.problems: list[str] = []

    def act(self, action: Callable[[model.ClusterState], model.ClusterState]) -> None:
        after = action(self.cluster)
        self.problems += violations(self.cluster, after)
        self.cluster = after

    def deliver(self, wanted: Callable[[Message], bool]) -> None:
        """Deliver the first message in flight that `wanted` accepts (there must be one)."""
        position = next(i for i, message in enumerate(self.cluster.network) if wanted(message))
        self.act(lambda cluster: model.deliver(cluster, position))

    def drop_everything(self) -> None:
        while self.cluster.network:
            self.act(lambda cluster: model.drop(cluster, 0))

    def timeout(self, node: NodeId) -> None:
        self.act(lambda cluster: model.election_timeout(cluster, node))

    def restart(self, node: NodeId) -> None:
        """Crash and restart: a leader that nobody deposed comes back as a follower."""
        self.act(lambda cluster: model.crash(cluster, node))
        self.act(lambda cluster: model.recover(cluster, node))

    def win_with_vote_of(self, candidate: NodeId, voter: NodeId) -> None:
        term = self.node(candidate).term
        self.deliver(
            lambda m: (
                isinstance(m, VoteRequest)
                and (m.sender, m.recipient, m.term) == (candidate, voter, term)
            )
        )
        self.deliver(
            lambda m: (
                isinstance(m, VoteResponse)
                and (m.sender, m.recipient, m.term) == (voter, candidate, term)
            )
        )
        node = self.cluster.nodes[candidate]
        assert node is not None and node.role is Role.LEADER

    def node(self, node_id: NodeId) -> model.NodeState:
        node = self.cluster.nodes[node_id]
        assert node is not None
        return node


def play_figure_8() -> Scenario:
    s = Scenario()
    # Term 1: S1 leads and writes entry 1 (its no-op) on its own log only.
    s.timeout(S1)
    s.win_with_vote_of(S1, S2)
    s.drop_everything()
    # Term 2: S3 leads with S2's vote and writes a different entry 1 on its own log only.
    s.timeout(S3)
    s.timeout(S3)
    s.win_with_vote_of(S3, S2)
    s.drop_everything()
    # Term 3: S1 restarts, wins with S2's vote, and copies its term-1 entry to S2.
    s.restart(S1)
    s.timeout(S1)
    s.timeout(S1)
    assert s.node(S1).term == 3
    s.win_with_vote_of(S1, S2)
    s.deliver(
        lambda m: isinstance(m, AppendRequest) and m.recipient == S2
    )  # probe after the no-op: rejected
    s.deliver(lambda m: isinstance(m, AppendResponse) and m.sender == S2)
    s.deliver(
        lambda m: isinstance(m, AppendRequest) and m.recipient == S2 and m.previous_index == 0
    )
    s.deliver(
        lambda m: isinstance(m, AppendResponse) and m.sender == S2
    )  # S2 now holds entry 1 of term 1
    s.drop_everything()
    # Term 4: S3 restarts and wins with S2's vote: its entry 1 (term 2) beats S2's (term 1).
    s.restart(S3)
    for _ in range(2):
        s.timeout(S3)
    assert s.node(S3).term == 4
    s.win_with_vote_of(S3, S2)
    return s


def test_figure_8_an_old_entry_on_a_majority_is_not_committed_by_counting() -> None:
    s = play_figure_8()
    assert s.problems == []
    assert s.node(S1).commit_index == 0, "S1 must not commit its term-1 entry by counting replicas"
    assert s.node(S3).log.term_at(LogIndex(1)) == Term(2)


def test_figure_8_catches_commit_by_counting(monkeypatch: pytest.MonkeyPatch) -> None:
    bug = next(bug for bug in HARD_TO_CATCH if bug.name == "commit-earlier-term-by-counting")
    bug.install(monkeypatch)
    s = play_figure_8()
    assert any("Leader Completeness" in problem for problem in s.problems), s.problems
