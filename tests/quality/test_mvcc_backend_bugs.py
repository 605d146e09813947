"""Seeded bugs in the LMDB keyspace: each is caught by the LMDB-against-memory comparison
(tests/impl/backend/test_backend_equivalence.py), shown by replacing one function."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

import impl.backend.keyspace
from impl.backend.keyspace import LmdbKeyspace
from spec.mvcc import Changes, KeyIndex, Revision
from spec.mvcc.key_index import key_index_put, key_index_tombstone
from tests.impl.backend.test_backend_equivalence import LmdbAgainstMemory

BUG_HUNT = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def assert_caught() -> None:
    with pytest.raises(AssertionError):
        run_state_machine_as_test(LmdbAgainstMemory, settings=BUG_HUNT)


def test_rebuild_counts_instead_of_restoring(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug: on open, the index is rebuilt by replaying puts, so a life whose start was
    compacted away restarts its creation revision and version at the first kept record."""

    def replay(
        index: KeyIndex | None, key: bytes, revision: Any, tombstone: bool, *_: Any
    ) -> KeyIndex:
        if tombstone:
            if index is None or index.generations[-1].is_empty:
                index = key_index_put(index, key, revision)
                return attrs.evolve(
                    index,
                    generations=(
                        *index.generations,
                        *key_index_tombstone(index, revision).generations[-1:],
                    ),
                )
            return key_index_tombstone(index, revision)
        return key_index_put(index, key, revision)

    monkeypatch.setattr(impl.backend.keyspace, "key_index_restore", replay)
    assert_caught()


def test_compaction_not_physical(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug: the backend records the compaction point but keeps the compacted records."""
    real_apply = LmdbKeyspace.apply

    def apply_keeping_records(self: LmdbKeyspace, changes: Changes) -> None:
        real_apply(self, attrs.evolve(changes, records_removed=()))

    monkeypatch.setattr(LmdbKeyspace, "apply", apply_keeping_records)
    assert_caught()


def test_consistent_index_not_persisted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug: the batch commits without the consistent index, so a restart re-applies entries."""
    real_commit = LmdbKeyspace.commit

    def commit_without_index(self: LmdbKeyspace, consistent_index: int | None = None) -> None:
        if consistent_index is not None:
            self._consistent_index = consistent_index
        self._consistent_index_in_batch = self._consistent_index  # as if written: it is not
        real_commit(self)

    monkeypatch.setattr(LmdbKeyspace, "commit", commit_without_index)
    assert_caught()


def test_history_read_one_revision_late(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug: reading history from revision R starts at R + 1 (watch catch-up misses a revision)."""
    real_records_from = LmdbKeyspace.records_from

    def records_from_late(self: LmdbKeyspace, revision: Revision) -> Any:
        return real_records_from(self, Revision(revision + 1))

    monkeypatch.setattr(LmdbKeyspace, "records_from", records_from_late)
    assert_caught()
