"""Seeded MVCC bugs: each test replaces one spec function with a plausible wrong version and
shows that the model comparison (tests/spec/mvcc/harness.py) fails.

A check that no bug can break proves nothing (DESIGN.md principle 7). Each bug below is one
that etcd or an etcd-like store could plausibly have; the test passes only if the Hypothesis
comparison of spec against models.kv finds a counterexample within the budget.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

import spec.lease
import spec.mvcc.apply
import spec.mvcc.compaction
import spec.mvcc.read
import spec.mvcc.transaction
import spec.mvcc.write
import spec.watch
from spec.errors import EtcdError
from spec.mvcc import (
    Applied,
    Changes,
    DeleteRangeRequest,
    Rejected,
    ResponseHeader,
    Revision,
    RevisionPair,
    events_for_changes,
)
from spec.mvcc.key_index import KeyIndex, key_index_compact
from spec.mvcc.view import KeyspaceView, OverlayView
from spec.mvcc.write import write_delete_range
from tests.spec.mvcc.harness import MvccComparison

BUG_HUNT = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples every run, so the time each test takes is fixed
    phases=[Phase.generate],  # no shrinking: we only need to know a counterexample exists
    suppress_health_check=list(HealthCheck),
)


def assert_caught(machine: type[MvccComparison] = MvccComparison) -> None:
    """The comparison must fail with an assertion (not crash some other way)."""
    with pytest.raises(AssertionError):
        run_state_machine_as_test(machine, settings=BUG_HUNT)


def test_version_not_reset_by_delete(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug: a key put again after a delete continues its old version instead of starting at 1."""
    real_write_put = spec.mvcc.write.write_put

    def put_continuing_version(overlay: OverlayView, request: Any) -> Any:
        index_before = overlay.key_index(request.key)
        response = real_write_put(overlay, request)
        record = overlay._records[-1]
        if record.key_value.version == 1 and index_before and len(index_before.generations) > 1:
            ended = index_before.generations[-2]  # its count includes the tombstone: last + 1
            carried = attrs.evolve(record.key_value, version=ended.version_count)
            overlay._records[-1] = attrs.evolve(record, key_value=carried)
            overlay._records_by_revision[record.revision] = carried
        return response

    monkeypatch.setattr(spec.mvcc.write, "write_put", put_continuing_version)
    monkeypatch.setattr(spec.mvcc.transaction, "write_put", put_continuing_version)
    assert_caught()


def test_compaction_dropping_latest_revision_at_or_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bug: compaction at R also drops each key's latest revision <= R (keeping only > R)."""

    def compact_too_much(index: KeyIndex, at_revision: Revision) -> Any:
        compacted, dropped = key_index_compact(index, at_revision)
        if compacted is None:
            return compacted, dropped
        first = compacted.generations[0]
        if len(first.revisions) > 1 and first.revisions[0].main <= at_revision:
            trimmed = attrs.evolve(first, revisions=first.revisions[1:])
            kept = KeyIndex(index.key, (trimmed, *compacted.generations[1:]))
            return kept, (*dropped, first.revisions[0])
        return compacted, dropped

    monkeypatch.setattr(spec.mvcc.compaction, "key_index_compact", compact_too_much)
    assert_caught()


def test_delete_of_nothing_bumps_revision(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug: a DeleteRange that deletes nothing still takes a new revision."""
    real_delete_range = spec.mvcc.write.delete_range

    def delete_always_writing(view: KeyspaceView, request: Any) -> Any:
        outcome = real_delete_range(view, request)
        if isinstance(outcome, Applied) and outcome.changes.is_empty:
            revision = Revision(view.current_revision() + 1)
            response = attrs.evolve(outcome.response, header=ResponseHeader(revision=revision))
            return Applied(response, Changes(revision=revision))
        return outcome

    monkeypatch.setattr(spec.mvcc.apply, "delete_range", delete_always_writing)
    assert_caught()


def test_count_computed_after_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug: Range's count is the number of key-values returned, not the number in range."""
    real_read_range = spec.mvcc.read.read_range

    def count_after_limit(view: KeyspaceView, request: Any) -> Any:
        outcome = real_read_range(view, request)
        if isinstance(outcome, Applied) and not request.count_only:
            response = attrs.evolve(outcome.response, count=len(outcome.response.kvs))
            return Applied(response)
        return outcome

    monkeypatch.setattr(spec.mvcc.read, "read_range", count_after_limit)
    monkeypatch.setattr(spec.mvcc.transaction, "read_range", count_after_limit)
    assert_caught()


class _Uncompacted:
    """A view that pretends nothing was ever compacted."""

    def __init__(self, view: KeyspaceView) -> None:
        self.view = view

    def compacted_revision(self) -> Revision:
        return Revision(-1)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.view, name)


def test_watch_from_compacted_revision_not_canceled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug: catching up ignores the compaction point and serves what history is left."""
    real_catch_up = spec.watch.catch_up

    def catch_up_ignoring_compaction(view: KeyspaceView, watcher: Any, batch: int) -> Any:
        return real_catch_up(_Uncompacted(view), watcher, batch)

    monkeypatch.setattr(spec.watch, "catch_up", catch_up_ignoring_compaction)
    assert_caught()


def test_txn_writes_given_separate_revisions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug: each write inside a txn takes its own main revision instead of a sub revision."""

    def separate_revision(self: OverlayView) -> RevisionPair:
        return RevisionPair(Revision(self.write_revision + len(self._records)), 0)

    monkeypatch.setattr(OverlayView, "next_revision", separate_revision)
    assert_caught()


def test_range_filter_off_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug: min_mod_revision excludes the bound itself."""
    real_passes = spec.mvcc.read._passes_filters

    def exclusive_minimum(request: Any, kv: Any) -> bool:
        if request.min_mod_revision and kv.mod_revision == request.min_mod_revision:
            return False
        return real_passes(request, kv)

    monkeypatch.setattr(spec.mvcc.read, "_passes_filters", exclusive_minimum)
    assert_caught()


def test_lease_revoke_deletes_keys_out_of_key_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug: revoking a lease deletes its keys in reverse key order (etcd sorts them)."""

    def revoke_in_reverse(view: KeyspaceView, leases: Any, request: Any) -> Any:
        if request.ID not in leases.by_id:
            return Rejected(EtcdError.LEASE_NOT_FOUND), leases
        overlay = OverlayView(view)
        for key in reversed(view.keys_attached(request.ID)):
            write_delete_range(overlay, DeleteRangeRequest(key=key))
        changes = attrs.evolve(overlay.changes(), leases_revoked=(request.ID,))
        header = ResponseHeader(revision=overlay.current_revision())
        response = spec.lease.LeaseRevokeResponse(header=header)
        return Applied(response, changes, events_for_changes(changes)), leases.without(request.ID)

    monkeypatch.setattr(spec.lease, "revoke", revoke_in_reverse)
    assert_caught()


def test_expired_lease_kept_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug: a keep-alive that arrives after expiry (before the revoke) revives the lease."""

    def keep_alive_ignoring_expiry(leases: Any, request: Any, now_seconds: float) -> Any:
        lease = leases.by_id.get(request.ID)
        if lease is None:
            return spec.lease.LeaseKeepAliveResponse(ID=request.ID, TTL=0), leases
        renewed = attrs.evolve(lease, expiry_seconds=now_seconds + lease.ttl_seconds)
        response = spec.lease.LeaseKeepAliveResponse(ID=request.ID, TTL=lease.ttl_seconds)
        return response, leases.with_lease(renewed)

    monkeypatch.setattr(spec.lease, "keep_alive", keep_alive_ignoring_expiry)
    assert_caught()
