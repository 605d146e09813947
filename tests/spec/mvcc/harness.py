"""A Hypothesis state machine that drives spec.mvcc, spec.lease and spec.watch beside models.kv.

Every rule performs one operation on the spec (against one or more keyspace stores: in memory,
and LMDB in tests/impl/backend) and on the naive model, then compares the whole response, the
changes' events, and what every watcher is sent. Subclasses choose the stores (`make_stores`);
quality tests replace one spec function and expect this comparison to fail.

Keys come from eight (b"\0", a, a\0, b, \xff, \xff\xff, and the empty key, which etcd
refuses) so they collide often; values are short binary strings including the empty one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from models.kv import KeyValueModel
from spec import lease as lease_spec
from spec import mvcc
from spec import watch as watch_spec
from spec.errors import EtcdError
from spec.mvcc import (
    Applied,
    Changes,
    CompactionRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    EmptyRequestOp,
    KeyspaceView,
    KeyValueRequest,
    LeaseId,
    PutRequest,
    RangeRequest,
    Rejected,
    RequestOp,
    Revision,
    SortOrder,
    SortTarget,
    TxnRequest,
)

WATCH_BATCH_REVISIONS_MAX = 2  # small, so catch-up takes several rounds in tests

KEYS = [b"\x00", b"a", b"a", b"a\x00", b"b", b"b", b"\xff", b"\xff\xff"]
nonempty_keys = st.sampled_from(KEYS)
keys = st.sampled_from([*KEYS, *KEYS, b""])  # the empty key, which etcd refuses, now and then
values = st.binary(max_size=3)
range_ends = st.one_of(st.just(b""), st.just(b"\x00"), keys)
lease_ids = st.sampled_from([0, 0, 0, 0, 1, 2, 3]).map(LeaseId)
revision_offsets = st.one_of(st.integers(0, 3), st.integers(-1, 12))
filters = st.lists(st.sampled_from(list(watch_spec.FilterType)), max_size=2, unique=True)


def range_requests(
    revision: st.SearchStrategy[int], current_revision: int = 8
) -> st.SearchStrategy[RangeRequest]:
    """Ranges with every option; revision filters near the current revision, where keys are."""
    recent = st.integers(max(1, current_revision - 6), current_revision + 1).map(Revision)
    small_revisions = st.one_of(st.just(Revision(0)), recent)
    return st.builds(
        RangeRequest,
        key=keys,
        range_end=range_ends,
        limit=st.one_of(st.just(0), st.integers(-1, 3)),
        revision=revision.map(Revision),
        sort_order=st.sampled_from(list(SortOrder)),
        sort_target=st.sampled_from(list(SortTarget)),
        keys_only=st.booleans(),
        count_only=st.booleans(),
        min_mod_revision=st.one_of(st.just(Revision(0)), small_revisions),
        max_mod_revision=st.one_of(st.just(Revision(0)), small_revisions),
        min_create_revision=st.one_of(st.just(Revision(0)), small_revisions),
        max_create_revision=st.one_of(st.just(Revision(0)), small_revisions),
    )


plain_puts = st.builds(PutRequest, key=keys, value=values, lease=lease_ids, prev_kv=st.booleans())
keeping_puts = st.builds(
    PutRequest,
    key=keys,
    value=st.sampled_from([b"", b"", b"", b"v"]),
    lease=st.sampled_from([0, 0, 0, 1]).map(LeaseId),
    prev_kv=st.booleans(),
    ignore_value=st.booleans(),
    ignore_lease=st.booleans(),
)
put_requests = st.one_of(plain_puts, plain_puts, plain_puts, keeping_puts)
attached_leases = st.sampled_from([0, 0, 1, 1, 2]).map(LeaseId)  # often a granted one
inner_puts = st.builds(
    PutRequest, key=nonempty_keys, value=values, lease=attached_leases, prev_kv=st.booleans()
)
inner_deletes = st.builds(
    DeleteRangeRequest, key=nonempty_keys, range_end=range_ends, prev_kv=st.booleans()
)
delete_requests = st.builds(
    DeleteRangeRequest, key=keys, range_end=range_ends, prev_kv=st.booleans()
)
compares = st.builds(
    Compare,
    result=st.sampled_from(list(CompareResult)),
    target=st.sampled_from(list(CompareTarget)),
    key=keys,
    version=st.integers(0, 3),
    create_revision=st.integers(0, 6).map(Revision),
    mod_revision=st.integers(0, 6).map(Revision),
    value=values,
    lease=lease_ids,
    range_end=st.one_of(st.just(b""), range_ends),
)


def txn_requests(revision: st.SearchStrategy[int]) -> st.SearchStrategy[TxnRequest]:
    ranges = range_requests(revision)
    empty: st.SearchStrategy[RequestOp] = st.just(EmptyRequestOp())
    leaf: st.SearchStrategy[RequestOp] = st.one_of(
        ranges,
        inner_puts,
        inner_deletes,
        inner_puts,
        inner_puts,
        put_requests,
        delete_requests,
        ranges,
        inner_puts,
        inner_deletes,
        inner_puts,
        empty,
    )

    def nest(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        operations = st.lists(st.one_of(leaf, inner), min_size=1, max_size=3).map(tuple)
        return st.builds(
            TxnRequest,
            compare=st.lists(compares, max_size=2).map(tuple),
            success=operations,
            failure=operations,
        )

    operations = st.lists(leaf, min_size=1, max_size=3).map(tuple)
    base = st.builds(
        TxnRequest,
        compare=st.lists(compares, max_size=2).map(tuple),
        success=operations,
        failure=operations,
    )
    return st.recursive(base, nest, max_leaves=6)


class Store(Protocol):
    """A keyspace store under test: a view that can apply changes."""

    def apply(self, changes: Changes) -> None: ...


@attrs.define
class WatchedRange:
    """One watcher, as the spec holds it and as the test expects it."""

    watcher: watch_spec.Watcher | None
    key: bytes
    range_end: bytes
    filters: frozenset[watch_spec.FilterType]
    prev_kv: bool
    expected_next_revision: int
    expected_synced: bool
    canceled: bool = False


class MvccComparison(RuleBasedStateMachine):
    """spec.mvcc on every store in `stores` must agree with models.kv on every step."""

    def __init__(self) -> None:
        super().__init__()
        self.model = KeyValueModel()
        self.stores: list[Any] = self.make_stores()
        self.leases = lease_spec.Leases()
        self.watchers: list[WatchedRange] = []
        self.watch_ids = watch_spec.WatchIds()
        self.now_seconds = 0.0

    # --- hooks for subclasses ----------------------------------------------------------------
    def make_stores(self) -> list[Any]:
        return [mvcc.MemoryKeyspace()]

    @property
    def view(self) -> KeyspaceView:
        return self.stores[0]  # type: ignore[no-any-return]

    def commit(self, changes: Changes) -> None:
        for store in self.stores:
            store.apply(changes)

    # --- comparing -----------------------------------------------------------------------------
    def run_everywhere(self, operation: Any, *arguments: Any) -> Any:
        outcomes = [operation(store, *arguments) for store in self.stores]
        for other in outcomes[1:]:
            assert other == outcomes[0], "every store gives the same outcome"
        return outcomes[0]

    def check_outcome(self, outcome: Any, expected: Any) -> None:
        if isinstance(expected, EtcdError):
            assert outcome == Rejected(expected), (outcome, expected)
            return
        assert isinstance(outcome, Applied), (outcome, expected)
        assert outcome.response == expected, (outcome.response, expected)

    def apply_request(self, request: KeyValueRequest) -> None:
        revision_before = self.model.current_revision
        outcome = self.run_everywhere(mvcc.apply_request, request)
        expected = self.model.apply(request)
        self.check_outcome(outcome, expected)
        if isinstance(outcome, Applied):
            self.after_write(outcome, revision_before)

    def after_write(self, outcome: Applied[Any], revision_before: int) -> None:
        if outcome.changes.revision is not None:
            assert self.model.current_revision == revision_before + 1
            assert outcome.events == self.model.events[self.model.current_revision]
        else:
            assert self.model.current_revision == revision_before
            assert outcome.events == ()
        self.commit(outcome.changes)
        if outcome.changes.revision is not None:
            self.notify_watchers(outcome.changes.revision, outcome.events)

    # --- KV rules --------------------------------------------------------------------------------
    @initialize(requests=st.lists(inner_puts, max_size=5), granted=st.lists(lease_ids, max_size=2))
    def populate(self, requests: list[PutRequest], granted: list[LeaseId]) -> None:
        """Start with a few leases and keys, so puts with a lease and revokes find something."""
        for lease in granted:
            if lease:
                self.lease_grant(lease, 5)
        for request in requests:
            self.apply_request(request)

    @rule(request=put_requests)
    def put(self, request: PutRequest) -> None:
        self.apply_request(request)

    @rule(request=inner_puts)
    def put_to_existing_keys(self, request: PutRequest) -> None:
        """A second put rule: writes are what the rest of the machine needs to find bugs."""
        self.apply_request(request)

    @rule(request=delete_requests)
    def delete(self, request: DeleteRangeRequest) -> None:
        self.apply_request(request)

    @rule(data=st.data())
    def range(self, data: st.DataObject) -> None:
        request = data.draw(range_requests(self.revisions(), self.model.current_revision))
        self.apply_request(request)

    @rule(data=st.data())
    def txn(self, data: st.DataObject) -> None:
        request = data.draw(txn_requests(self.revisions()))
        self.apply_request(request)

    @rule(offset=revision_offsets)
    def compact(self, offset: int) -> None:
        revision = Revision(self.model.current_revision - offset)
        self.apply_request(CompactionRequest(revision=revision))

    @rule(data=st.data())
    def range_at_edges(self, data: st.DataObject) -> None:
        """Ranges whose filters sit exactly on revisions that keys have (the off-by-one spots)."""
        latest = self.model.history[self.model.current_revision]
        edges = sorted(
            {kv.mod_revision for kv in latest.values()}
            | {kv.create_revision for kv in latest.values()}
        )
        bounds = st.sampled_from([0, *edges]).map(Revision) if edges else st.just(Revision(0))
        request = RangeRequest(
            key=b"\x00",
            range_end=data.draw(st.sampled_from([b"\x00", b"b"])),
            limit=data.draw(st.integers(0, 3)),
            sort_order=data.draw(st.sampled_from(list(SortOrder))),
            sort_target=data.draw(st.sampled_from(list(SortTarget))),
            min_mod_revision=data.draw(bounds),
            max_mod_revision=data.draw(bounds),
            min_create_revision=data.draw(bounds),
            max_create_revision=data.draw(bounds),
        )
        self.apply_request(request)

    @rule(data=st.data())
    def put_with_granted_lease(self, data: st.DataObject) -> None:
        """Attach keys to leases that exist, so revokes and expiry delete several keys."""
        granted = sorted(self.model.leases)
        lease = data.draw(st.sampled_from(granted)) if granted else LeaseId(0)
        self.apply_request(PutRequest(key=data.draw(nonempty_keys), value=b"l", lease=lease))

    @rule(offset=st.integers(0, 2))
    def compact_recent(self, offset: int) -> None:
        """Compaction near the current revision: what cancels watchers and trims history."""
        self.compact(offset)

    def revisions(self) -> st.SearchStrategy[int]:
        current = self.model.current_revision
        return st.one_of(st.just(0), st.integers(-1, current + 1))

    # --- lease rules -----------------------------------------------------------------------------
    @rule(lease=lease_ids.filter(bool), ttl_seconds=st.integers(-1, 5))
    def lease_grant(self, lease: LeaseId, ttl_seconds: int) -> None:
        request = lease_spec.LeaseGrantRequest(TTL=ttl_seconds, ID=lease)
        outcomes = [
            lease_spec.grant(store, self.leases, request, LeaseId(99), self.now_seconds)
            for store in self.stores
        ]
        outcome, leases = outcomes[0]
        assert all(other == outcomes[0] for other in outcomes[1:])
        expected = self.model.lease_grant(lease, ttl_seconds, self.now_seconds)
        if isinstance(expected, EtcdError):
            assert outcome == Rejected(expected)
            return
        assert isinstance(outcome, Applied)
        assert (lease, expected) == (outcome.response.ID, outcome.response.TTL)
        self.leases = leases
        self.commit(outcome.changes)

    @rule(lease=st.sampled_from([0, 1, 1, 2, 3]).map(LeaseId))
    def lease_revoke(self, lease: LeaseId) -> None:
        revision_before = self.model.current_revision
        request = lease_spec.LeaseRevokeRequest(ID=lease)
        outcomes = [lease_spec.revoke(store, self.leases, request) for store in self.stores]
        outcome, leases = outcomes[0]
        assert all(other == outcomes[0] for other in outcomes[1:])
        expected = self.model.lease_revoke(lease)
        if isinstance(expected, EtcdError):
            assert outcome == Rejected(expected)
            return
        assert isinstance(outcome, Applied)
        assert outcome.response.header.revision == expected
        self.leases = leases
        self.after_write(outcome, revision_before)

    @rule(lease=lease_ids)
    def lease_time_to_live(self, lease: LeaseId) -> None:
        request = lease_spec.LeaseTimeToLiveRequest(ID=lease, keys=True)
        response = self.run_everywhere(
            lease_spec.time_to_live, self.leases, request, self.now_seconds
        )
        if lease not in self.model.leases:
            assert response.TTL == -1
            return
        assert response.grantedTTL == self.model.leases[lease]
        assert response.keys == self.model.lease_keys(lease)
        remaining = self.model.lease_expiry_seconds[lease] - self.now_seconds
        assert int(remaining) == response.TTL

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.0, 3.0, 5.0]))
    def advance_clock(self, seconds: float) -> None:
        self.now_seconds += seconds

    @rule(lease=lease_ids.filter(bool))
    def lease_keep_alive(self, lease: LeaseId) -> None:
        request = lease_spec.LeaseKeepAliveRequest(ID=lease)
        response, self.leases = lease_spec.keep_alive(self.leases, request, self.now_seconds)
        assert self.model.lease_keep_alive(lease, self.now_seconds) == response.TTL

    @rule()
    def revoke_lease_with_most_keys(self) -> None:
        """Revoke the lease holding the most keys: where the order of the deletes shows."""
        held = {lease: len(self.model.lease_keys(lease)) for lease in self.model.leases}
        if held:
            self.lease_revoke(max(held, key=lambda lease: (held[lease], lease)))

    @rule(data=st.data(), late_seconds=st.sampled_from([0.0, 0.5]))
    def keep_alive_at_expiry(self, data: st.DataObject, late_seconds: float) -> None:
        """The clock reaches a lease's expiry (or just past it) before its keep-alive arrives."""
        granted = sorted(self.model.lease_expiry_seconds)
        if not granted:
            return
        lease = data.draw(st.sampled_from(granted))
        expiry = self.model.lease_expiry_seconds[lease]
        self.now_seconds = max(self.now_seconds, expiry + late_seconds)
        self.lease_keep_alive(lease)

    @rule(limit=st.integers(1, 3))
    def revoke_expired_leases(self, limit: int) -> None:
        """The leader's expiry pass: find expired leases, then revoke each through the store."""
        expired = lease_spec.expired_leases(self.leases, self.now_seconds, limit)
        assert list(expired) == self.model.lease_expired(self.now_seconds, limit)
        for lease in expired:
            self.lease_revoke(lease)

    # --- watch rules -----------------------------------------------------------------------------
    @rule(
        key=keys,
        range_end=range_ends,
        offset=st.integers(-3, 6),
        chosen=filters,
        prev_kv=st.booleans(),
    )
    def watch(
        self,
        key: bytes,
        range_end: bytes,
        offset: int,
        chosen: list[watch_spec.FilterType],
        prev_kv: bool,
    ) -> None:
        current = self.model.current_revision
        start = 0 if offset == -3 else max(-1, current - offset)
        request = watch_spec.WatchCreateRequest(
            key=key,
            range_end=range_end,
            start_revision=Revision(start),
            filters=tuple(chosen),
            prev_kv=prev_kv,
        )
        response, watcher, ids = self.run_everywhere(
            watch_spec.create_watcher, request, self.watch_ids
        )
        watch_key = key or b"\x00"
        refused = start < 0 or (range_end not in (b"", b"\x00") and watch_key >= range_end)
        assert response.created
        assert response.header.revision == current
        assert response.canceled == refused
        if refused:
            assert watcher is None and response.watch_id == -1
            return
        assert watcher is not None
        assert response.watch_id == len(self.watchers), "automatic ids count up from 0"
        self.watch_ids = ids
        next_revision = current + 1 if start == 0 else start
        self.watchers.append(
            WatchedRange(
                watcher,
                watch_key,
                range_end,
                frozenset(chosen),
                prev_kv,
                next_revision,
                next_revision > current,
            )
        )

    @rule()
    def sync_watchers(self) -> None:
        """etcd's syncWatchers round: every unsynced watcher catches up one batch."""
        for watched in self.watchers:
            if watched.watcher is None or watched.watcher.synced:
                continue
            results = [
                watch_spec.catch_up(store, watched.watcher, WATCH_BATCH_REVISIONS_MAX)
                for store in self.stores
            ]
            assert all(result == results[0] for result in results[1:])
            response, watcher = results[0]
            self.check_catch_up(watched, response, watcher)
            watched.watcher = watcher

    def check_catch_up(self, watched: WatchedRange, response: Any, watcher: Any) -> None:
        model = self.model
        current = model.current_revision
        assert watched.watcher is not None
        if watched.expected_next_revision < model.compacted_revision:
            assert watcher is None, "a watcher behind the compaction point is canceled"
            assert response == watch_spec.WatchResponse(
                mvcc.ResponseHeader(revision=Revision(0)),
                watched.watcher.watch_id,
                canceled=True,
                compact_revision=Revision(model.compacted_revision),
            )
            watched.canceled = True
            return
        with_events = [
            revision
            for revision in range(watched.expected_next_revision, current + 1)
            if model.watch_events(watched.key, watched.range_end, revision, revision)
        ]
        last = current
        next_revision = current + 1
        if len(with_events) > WATCH_BATCH_REVISIONS_MAX:
            next_revision = with_events[WATCH_BATCH_REVISIONS_MAX]
            last = next_revision - 1
        expected_events = model.watch_events(
            watched.key,
            watched.range_end,
            watched.expected_next_revision,
            last,
            watched.filters,
            watched.prev_kv,
        )
        self.check_delivery(watched, response, current, expected_events)
        assert watcher is not None
        assert watcher.next_revision == next_revision
        assert watcher.synced == (next_revision == current + 1)
        watched.expected_next_revision = next_revision

    def check_delivery(
        self, watched: WatchedRange, response: Any, revision: int, expected: Sequence[Any]
    ) -> None:
        assert watched.watcher is not None
        if not expected:
            assert response is None, response
            return
        assert response == watch_spec.WatchResponse(
            mvcc.ResponseHeader(revision=Revision(revision)),
            watched.watcher.watch_id,
            events=tuple(expected),
        ), (response, expected)

    def notify_watchers(self, revision: Revision, events: Any) -> None:
        for watched in self.watchers:
            if watched.watcher is None or not watched.watcher.synced:
                continue
            results = [
                watch_spec.notify(store, watched.watcher, revision, events) for store in self.stores
            ]
            assert all(result == results[0] for result in results[1:])
            response, watcher = results[0]
            expected = self.model.watch_events(
                watched.key, watched.range_end, revision, revision, watched.filters, watched.prev_kv
            )
            if revision < watched.expected_next_revision:
                expected = []  # a watch that starts in the future skips earlier writes
            self.check_delivery(watched, response, revision, expected)
            watched.watcher = watcher
            watched.expected_next_revision = max(revision + 1, watched.expected_next_revision)

    # --- whole-history checks ------------------------------------------------------------------
    @rule()
    def read_every_revision(self) -> None:
        """Every revision that may still be read gives the model's whole keyspace."""
        for revision in range(
            max(1, self.model.compacted_revision), self.model.current_revision + 1
        ):
            self.read_everything(revision)

    def read_everything(self, revision: int) -> None:
        request = RangeRequest(key=b"\x00", range_end=b"\x00", revision=Revision(revision))
        outcome = self.run_everywhere(mvcc.range_keys, request)
        self.check_outcome(outcome, self.model.range(request))

    @invariant()
    def revisions_agree(self) -> None:
        for store in self.stores:
            assert store.current_revision() == self.model.current_revision
            assert store.compacted_revision() == self.model.compacted_revision
        self.read_everything(self.model.current_revision)
        if self.model.compacted_revision >= 1:
            self.read_everything(self.model.compacted_revision)
