"""The log value: Log Matching helpers and the contiguity invariant."""

from __future__ import annotations

import attrs

from spec.raft.invariants import node_violations
from spec.raft.log import Log, Snapshot
from spec.raft.state import initial_state
from spec.raft.types import Entry, LogIndex, Membership, NodeId, Settings, Term

MEMBERS = Membership(frozenset({NodeId(1)}))


def entries(*terms: int) -> tuple[Entry, ...]:
    return tuple(Entry(Term(term), LogIndex(index)) for index, term in enumerate(terms, start=1))


def test_merge_truncates_only_at_the_first_conflict() -> None:
    log = Log(Snapshot(LogIndex(0), Term(0), MEMBERS), entries(1, 1, 2))
    same, written = log.merge_after(1, entries(1, 1)[1:])
    assert same == log and written is None
    merged, written = log.merge_after(1, (Entry(Term(1), LogIndex(2)), Entry(Term(3), LogIndex(3))))
    assert written == 3
    assert [entry.term for entry in merged.entries] == [1, 1, 3]


def test_find_conflict_by_term_skips_whole_terms() -> None:
    log = Log(Snapshot(LogIndex(0), Term(0), MEMBERS), entries(1, 1, 4, 4, 5))
    assert log.find_conflict_by_term(5, 3) == (2, 1)
    assert log.find_conflict_by_term(9, 4) == (4, 4)


def test_a_log_with_a_gap_inside_is_reported() -> None:
    """Building a Log checks only its ends (O(1)); the invariant checks every entry."""
    node = initial_state(NodeId(1), MEMBERS, Settings(), random_seed=1)
    gapped = (Entry(Term(1), LogIndex(1)), Entry(Term(1), LogIndex(5)), Entry(Term(1), LogIndex(3)))
    node = attrs.evolve(node, log=Log(node.log.snapshot, gapped))
    assert any("log entry 5 at position 1" in problem for problem in node_violations(node))
