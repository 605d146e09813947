"""Range: reading keys at a revision (etcd `server/etcdserver/apply.go:Range`, `mvcc/kvstore_txn.go`).

The steps, in etcd's order:

1. **Which keys.** An empty `range_end` means the single key `key`; `range_end == b"\\0"`
   means every key >= `key`; otherwise the half-open range [key, range_end), which is empty
   when range_end <= key (etcd `mvcc/kv.go`, `mkGteRange`).
2. **Which revision.** `revision <= 0` reads the current revision; a revision after the
   current one is `ErrFutureRev`; one before the compaction point is `ErrCompacted` (reading
   exactly at the compaction point is allowed).
3. **Count** is the number of keys in range at that revision: before `limit`, before the
   min/max filters.
4. **Fetch.** With `count_only` nothing is fetched. Otherwise, if the request sorts
   (`sort_order != NONE`) or filters (any min/max revision set), every key is fetched;
   else at most `limit + 1` keys in key order (the extra one decides `more`). Note: a
   `sort_target` other than KEY with `sort_order == NONE` does **not** fetch everything,
   so it sorts only the first `limit + 1` keys; this is etcd's code (`rangeLimit`), though
   one might expect otherwise.
5. **Filter** out `mod_revision > max_mod_revision`, `mod_revision < min_mod_revision`, and
   the same for create revisions; 0 means "no filter".
6. **Sort.** A target other than KEY with order NONE sorts ascending. Ties keep key order in
   both directions (etcd's Go sort is an insertion sort, stable, for the small slices where
   ties are observable; for large slices etcd's tie order is unspecified).
7. **Truncate** to `limit` (if positive), setting `more` when something was cut.
8. `keys_only` empties each value. The header revision is the store's current revision,
   not the revision read.

`serializable` does not change the answer computed here: it only lets a node answer from its
own keyspace without first confirming leadership (ReadIndex), which is the node's business.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from spec.errors import EtcdError
from spec.mvcc.key_index import KeyIndex, key_index_get
from spec.mvcc.messages import (
    KeyValue,
    RangeRequest,
    RangeResponse,
    ResponseHeader,
    SortOrder,
    SortTarget,
)
from spec.mvcc.outcome import Applied, Outcome, Rejected
from spec.mvcc.revision import Revision
from spec.mvcc.view import KeyspaceView

RANGE_FROM_KEY = b"\x00"


def validate_range(request: RangeRequest) -> EtcdError | None:
    """A range needs a key (etcd `v3rpc/key.go:checkRangeRequest`)."""
    if not request.key:
        return EtcdError.EMPTY_KEY
    return None


def key_indexes_in_range(view: KeyspaceView, key: bytes, range_end: bytes) -> Iterator[KeyIndex]:
    """Indexes of the keys a (key, range_end) pair names, in key order (rule 1 above)."""
    if not range_end:
        index = view.key_index(key)
        if index is not None:
            yield index
        return
    if range_end == RANGE_FROM_KEY:
        yield from view.key_indexes(key, None)
        return
    if range_end <= key:
        return
    yield from view.key_indexes(key, range_end)


def read_revision(view: KeyspaceView, revision: Revision) -> Revision | EtcdError:
    """The revision a read at `revision` sees, or why it cannot be read (rule 2 above)."""
    current = view.current_revision()
    if revision > current:
        return EtcdError.FUTURE_REVISION
    at_revision = current if revision <= 0 else revision
    if at_revision < view.compacted_revision():
        return EtcdError.COMPACTED
    return at_revision


def key_values_at(
    view: KeyspaceView,
    key: bytes,
    range_end: bytes,
    at_revision: Revision,
    fetch_limit: int | None = None,
) -> tuple[int, list[KeyValue]]:
    """(count of keys alive at `at_revision` in range, the first `fetch_limit` of them or all)."""
    count = 0
    fetched: list[KeyValue] = []
    for index in key_indexes_in_range(view, key, range_end):
        key_at = key_index_get(index, at_revision)
        if key_at is None:
            continue
        count += 1
        if fetch_limit is None or len(fetched) < fetch_limit:
            fetched.append(view.record(key_at.modified))
    return count, fetched


def range_keys(view: KeyspaceView, request: RangeRequest) -> Outcome[RangeResponse]:
    """Answer a RangeRequest, validating it first (steps 1-8 in the module docstring)."""
    error = validate_range(request)
    if error is not None:
        return Rejected(error)
    return read_range(view, request)


def read_range(view: KeyspaceView, request: RangeRequest) -> Outcome[RangeResponse]:
    """Answer an already validated RangeRequest (also used inside transactions)."""
    at_revision = read_revision(view, request.revision)
    if isinstance(at_revision, EtcdError):
        return Rejected(at_revision)
    header = ResponseHeader(revision=view.current_revision())
    fetch_limit = 0 if request.count_only else _fetch_limit(request)
    count, key_values = key_values_at(
        view, request.key, request.range_end, at_revision, fetch_limit
    )
    if request.count_only:
        return Applied(RangeResponse(header=header, count=count))
    key_values = [kv for kv in key_values if _passes_filters(request, kv)]
    key_values = _sorted(request, key_values)
    more = False
    if request.limit > 0 and len(key_values) > request.limit:
        key_values = key_values[: request.limit]
        more = True
    if request.keys_only:
        key_values = [attrs.evolve(kv, value=b"") for kv in key_values]
    return Applied(RangeResponse(header=header, kvs=tuple(key_values), more=more, count=count))


def _fetch_limit(request: RangeRequest) -> int | None:
    """etcd `rangeLimit`: sorting or filtering fetches all (None); else limit + 1 for `more`."""
    filters = (
        request.min_mod_revision,
        request.max_mod_revision,
        request.min_create_revision,
        request.max_create_revision,
    )
    if request.sort_order != SortOrder.NONE or any(filters):
        return None
    if request.limit > 0:
        return request.limit + 1
    return None


def _passes_filters(request: RangeRequest, kv: KeyValue) -> bool:
    if request.max_mod_revision and kv.mod_revision > request.max_mod_revision:
        return False
    if request.min_mod_revision and kv.mod_revision < request.min_mod_revision:
        return False
    if request.max_create_revision and kv.create_revision > request.max_create_revision:
        return False
    return not (request.min_create_revision and kv.create_revision < request.min_create_revision)


def _sorted(request: RangeRequest, key_values: list[KeyValue]) -> list[KeyValue]:
    order = request.sort_order
    if request.sort_target != SortTarget.KEY and order == SortOrder.NONE:
        order = SortOrder.ASCEND
    if order == SortOrder.NONE:
        return key_values
    descending = order == SortOrder.DESCEND
    target = request.sort_target
    if target == SortTarget.KEY:
        return sorted(key_values, key=lambda kv: kv.key, reverse=descending)
    if target == SortTarget.VERSION:
        return sorted(key_values, key=lambda kv: kv.version, reverse=descending)
    if target == SortTarget.CREATE:
        return sorted(key_values, key=lambda kv: kv.create_revision, reverse=descending)
    if target == SortTarget.MOD:
        return sorted(key_values, key=lambda kv: kv.mod_revision, reverse=descending)
    return sorted(key_values, key=lambda kv: kv.value, reverse=descending)
