"""The oracle for `spec.mvcc`: a deliberately naive keyspace that keeps every revision whole.

`KeyValueModel.history[r]` is the complete keyspace at revision r, a plain dict from key to
`KeyValue`; every write copies the latest dict, changes the copy and appends it. Reading at a
revision is a dict lookup; compaction only moves the point before which reads are refused.
`events[r]` lists the watch events of revision r in the order they were made. Nothing here
shares code with `spec.mvcc` except the request/response classes and the request validation
rules (`spec.mvcc.validate_request`, which are example-tested on their own), so agreement
between the two is evidence that both are right.

Public API (the conformance suite uses it as its expected-results oracle):

    model = KeyValueModel()
    model.apply(request)        -> response | EtcdError   (Range, Put, DeleteRange, Txn, Compaction)
    model.range(request) / put / delete_range / txn / compact   -> response | EtcdError
    model.lease_grant(id, ttl, now) -> the granted TTL | EtcdError
    model.lease_keep_alive(id, now) / model.lease_expired(now, limit)
    model.lease_revoke(id)      -> the revision after the revoke | EtcdError
    model.lease_keys(id)        -> keys attached to a lease, in key order
    model.watch_events(key, range_end, first, last, filters, prev_kv)
                                -> what a watcher of that range is sent for revisions
                                   first..last (filters applied, prev_kv as of now)
    model.current_revision, model.compacted_revision, model.history, model.events
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from spec import constants
from spec.errors import EtcdError
from spec.mvcc import (
    CompactionRequest,
    CompactionResponse,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResponse,
    EmptyRequestOp,
    Event,
    EventType,
    KeyValue,
    KeyValueRequest,
    LeaseId,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    RequestOp,
    ResponseHeader,
    ResponseOp,
    Revision,
    SortOrder,
    SortTarget,
    TxnRequest,
    TxnResponse,
    validate_request,
)
from spec.watch import FilterType

Keyspace = dict[bytes, KeyValue]
Response = RangeResponse | PutResponse | DeleteRangeResponse | TxnResponse | CompactionResponse


def in_range(key: bytes, start: bytes, range_end: bytes) -> bool:
    """etcd's range convention: empty end = one key; b"\\0" = from start on; else [start, end)."""
    if not range_end:
        return key == start
    if range_end == b"\x00":
        return key >= start
    return start <= key < range_end


class _Writes:
    """The working copy of one write transaction: the keyspace so far and its events in order."""

    def __init__(self, base: Keyspace, revision: int) -> None:
        self.keyspace = dict(base)
        self.revision = revision
        self.events: list[Event] = []


class KeyValueModel:
    def __init__(self) -> None:
        self.history: list[Keyspace] = [{}, {}]  # index 0 unused; the store starts at 1
        self.events: list[tuple[Event, ...]] = [(), ()]
        self.compacted_revision = -1
        self.leases: dict[LeaseId, int] = {}
        self.lease_expiry_seconds: dict[LeaseId, float] = {}

    @property
    def current_revision(self) -> int:
        """The revision of the last write: the last index of `history`."""
        return len(self.history) - 1

    def _commit(self, writes: _Writes) -> None:
        if writes.events:
            self.history.append(writes.keyspace)
            self.events.append(tuple(writes.events))

    def apply(self, request: KeyValueRequest) -> Response | EtcdError:
        """Answer any KV request as etcd would: its response, or the error etcd sends."""
        match request:
            case RangeRequest():
                return self.range(request)
            case PutRequest():
                return self.put(request)
            case DeleteRangeRequest():
                return self.delete_range(request)
            case TxnRequest():
                return self.txn(request)
            case CompactionRequest():
                return self.compact(request)

    # --- Range -----------------------------------------------------------------------------
    def range(self, request: RangeRequest) -> RangeResponse | EtcdError:
        """Read from the whole keyspace saved at the requested revision."""
        error = validate_request(request)
        if error is not None:
            return error
        return self._range(request, None)

    def _range(self, request: RangeRequest, writes: _Writes | None) -> RangeResponse | EtcdError:
        current = self.current_revision
        if writes is not None and writes.events:
            current += 1
        if request.revision > current:
            return EtcdError.FUTURE_REVISION
        if 0 < request.revision < self.compacted_revision:
            return EtcdError.COMPACTED
        if request.revision > 0:
            keyspace = self.history[request.revision]
        else:
            keyspace = writes.keyspace if writes is not None else self.history[current]
        found = [
            keyspace[key]
            for key in sorted(keyspace)
            if in_range(key, request.key, request.range_end)
        ]
        header = ResponseHeader(revision=Revision(current))
        if request.count_only:
            return RangeResponse(header=header, count=len(found))
        filtering = any(
            (
                request.min_mod_revision,
                request.max_mod_revision,
                request.min_create_revision,
                request.max_create_revision,
            )
        )
        chosen = found
        if request.limit > 0 and request.sort_order == SortOrder.NONE and not filtering:
            chosen = found[: request.limit + 1]  # etcd reads one more than the limit, then sorts
        chosen = [kv for kv in chosen if _model_passes(request, kv)]
        chosen = _model_sort(request, chosen)
        more = request.limit > 0 and len(chosen) > request.limit
        if more:
            chosen = chosen[: request.limit]
        if request.keys_only:
            chosen = [
                KeyValue(kv.key, kv.create_revision, kv.mod_revision, kv.version, b"", kv.lease)
                for kv in chosen
            ]
        return RangeResponse(header=header, kvs=tuple(chosen), more=more, count=len(found))

    # --- Put and DeleteRange -------------------------------------------------------------------
    def put(self, request: PutRequest) -> PutResponse | EtcdError:
        """Copy the latest keyspace, set one key, append the copy as the next revision."""
        error = validate_request(request)
        if error is None and request.lease != 0 and request.lease not in self.leases:
            error = EtcdError.LEASE_NOT_FOUND
        latest = self.history[self.current_revision]
        if (
            error is None
            and (request.ignore_value or request.ignore_lease)
            and request.key not in latest
        ):
            error = EtcdError.KEY_NOT_FOUND
        if error is not None:
            return error
        writes = _Writes(latest, self.current_revision + 1)
        response = self._put(request, writes)
        self._commit(writes)
        return response

    def _put(self, request: PutRequest, writes: _Writes) -> PutResponse:
        previous = writes.keyspace.get(request.key)
        value = request.value
        lease = request.lease
        if previous is not None and request.ignore_value:
            value = previous.value
        if previous is not None and request.ignore_lease:
            lease = previous.lease
        if previous is None:
            created, version = writes.revision, 1
        else:
            created, version = previous.create_revision, previous.version + 1
        new = KeyValue(
            request.key, Revision(created), Revision(writes.revision), version, value, lease
        )
        writes.keyspace[request.key] = new
        writes.events.append(Event(EventType.PUT, new))
        header = ResponseHeader(revision=Revision(writes.revision))
        return PutResponse(header=header, prev_kv=previous if request.prev_kv else None)

    def delete_range(self, request: DeleteRangeRequest) -> DeleteRangeResponse | EtcdError:
        """Copy the latest keyspace without the keys in range; append it only if one was there."""
        error = validate_request(request)
        if error is not None:
            return error
        writes = _Writes(self.history[self.current_revision], self.current_revision + 1)
        response = self._delete(request, writes)
        self._commit(writes)
        return response

    def _delete(self, request: DeleteRangeRequest, writes: _Writes) -> DeleteRangeResponse:
        doomed = sorted(
            key for key in writes.keyspace if in_range(key, request.key, request.range_end)
        )
        previous = [writes.keyspace.pop(key) for key in doomed]
        for key in doomed:
            gone = KeyValue(key=key, mod_revision=Revision(writes.revision))
            writes.events.append(Event(EventType.DELETE, gone))
        revision = writes.revision if writes.events else writes.revision - 1
        return DeleteRangeResponse(
            header=ResponseHeader(revision=Revision(revision)),
            deleted=len(doomed),
            prev_kvs=tuple(previous) if request.prev_kv else (),
        )

    # --- Txn -------------------------------------------------------------------------------------
    def txn(self, request: TxnRequest) -> TxnResponse | EtcdError:
        """Decide every branch on the latest keyspace, then run the operations on one copy."""
        error = validate_request(request)
        if error is not None:
            return error
        latest = self.history[self.current_revision]
        error = self._txn_checks(request, latest)
        if error is not None:
            return error
        writes = _Writes(latest, self.current_revision + 1)
        response = self._txn(request, writes, latest)
        self._commit(writes)
        revision = writes.revision if writes.events else writes.revision - 1
        return TxnResponse(
            ResponseHeader(revision=Revision(revision)), response.succeeded, response.responses
        )

    def _branch(self, request: TxnRequest, before: Keyspace) -> tuple[bool, tuple[RequestOp, ...]]:
        succeeded = all(_model_compare(compare, before) for compare in request.compare)
        return succeeded, request.success if succeeded else request.failure

    def _chosen_leaves(self, request: TxnRequest, before: Keyspace) -> list[RequestOp]:
        _, branch = self._branch(request, before)
        leaves: list[RequestOp] = []
        for operation in branch:
            if isinstance(operation, TxnRequest):
                leaves.extend(self._chosen_leaves(operation, before))
            else:
                leaves.append(operation)
        return leaves

    def _txn_checks(self, request: TxnRequest, before: Keyspace) -> EtcdError | None:
        leaves = self._chosen_leaves(request, before)
        for operation in leaves:
            if isinstance(operation, PutRequest):
                if (
                    operation.ignore_value or operation.ignore_lease
                ) and operation.key not in before:
                    return EtcdError.KEY_NOT_FOUND
                if operation.lease != 0 and operation.lease not in self.leases:
                    return EtcdError.LEASE_NOT_FOUND
        for operation in leaves:
            if isinstance(operation, RangeRequest) and operation.revision != 0:
                if operation.revision > self.current_revision:
                    return EtcdError.FUTURE_REVISION
                if operation.revision < self.compacted_revision:
                    return EtcdError.COMPACTED
        return None

    def _txn(self, request: TxnRequest, writes: _Writes, before: Keyspace) -> TxnResponse:
        succeeded, branch = self._branch(request, before)
        responses: list[ResponseOp] = []
        for operation in branch:
            match operation:
                case RangeRequest():
                    answer = self._range(operation, writes)
                    assert not isinstance(answer, EtcdError)
                    responses.append(answer)
                case PutRequest():
                    responses.append(self._put(operation, writes))
                case DeleteRangeRequest():
                    responses.append(self._delete(operation, writes))
                case TxnRequest():
                    responses.append(self._txn(operation, writes, before))
                case EmptyRequestOp():
                    raise AssertionError("validated away")
        return TxnResponse(succeeded=succeeded, responses=tuple(responses))

    # --- Compaction --------------------------------------------------------------------------
    def compact(self, request: CompactionRequest) -> CompactionResponse | EtcdError:
        """Refuse reads before the revision from now on (the history itself is kept)."""
        if request.revision <= self.compacted_revision:
            return EtcdError.COMPACTED
        if request.revision > self.current_revision:
            return EtcdError.FUTURE_REVISION
        self.compacted_revision = request.revision
        return CompactionResponse(ResponseHeader(revision=Revision(self.current_revision)))

    # --- Leases ----------------------------------------------------------------------------------
    def lease_grant(
        self, lease: LeaseId, ttl_seconds: int, now_seconds: float | None = None
    ) -> int | EtcdError:
        """Grant a lease; returns the TTL granted (raised to the 2 s minimum). With a time,
        the lease expires that TTL later (the leader's view); without, never."""
        if ttl_seconds > constants.lease_ttl_seconds_max:
            return EtcdError.LEASE_TTL_TOO_LARGE
        if lease in self.leases:
            return EtcdError.LEASE_EXISTS
        self.leases[lease] = max(ttl_seconds, constants.lease_ttl_seconds_min)
        if now_seconds is not None:
            self.lease_expiry_seconds[lease] = now_seconds + self.leases[lease]
        return self.leases[lease]

    def lease_keep_alive(self, lease: LeaseId, now_seconds: float) -> int:
        """Restart a live lease's TTL; answers its TTL, or 0 if unknown or already expired."""
        expiry = self.lease_expiry_seconds.get(lease)
        if lease not in self.leases or (expiry is not None and expiry <= now_seconds):
            return 0
        self.lease_expiry_seconds[lease] = now_seconds + self.leases[lease]
        return self.leases[lease]

    def lease_expired(self, now_seconds: float, limit: int) -> list[LeaseId]:
        """Leases whose expiry has come, soonest first (ties by id), at most `limit`."""
        due = [
            (expiry, lease)
            for lease, expiry in self.lease_expiry_seconds.items()
            if expiry <= now_seconds
        ]
        return [lease for _, lease in sorted(due)[:limit]]

    def lease_keys(self, lease: LeaseId) -> tuple[bytes, ...]:
        """Keys whose latest value carries the lease, in key order."""
        latest = self.history[self.current_revision]
        return tuple(sorted(key for key, kv in latest.items() if kv.lease == lease))

    def lease_revoke(self, lease: LeaseId) -> int | EtcdError:
        """Delete the lease's keys in key order in one revision; returns the revision after."""
        if lease not in self.leases:
            return EtcdError.LEASE_NOT_FOUND
        writes = _Writes(self.history[self.current_revision], self.current_revision + 1)
        for key in self.lease_keys(lease):
            self._delete(DeleteRangeRequest(key=key), writes)
        self._commit(writes)
        del self.leases[lease]
        self.lease_expiry_seconds.pop(lease, None)
        return self.current_revision

    # --- Watch -----------------------------------------------------------------------------------
    def watch_events(
        self,
        key: bytes,
        range_end: bytes,
        first: int,
        last: int,
        filters: Collection[FilterType] = (),
        prev_kv: bool = False,
    ) -> list[Event]:
        """Events of revisions first..last in range, as a watcher is sent them now."""
        watch_key = key or b"\x00"
        sent: list[Event] = []
        for revision in range(max(first, 2), min(last, self.current_revision) + 1):
            for event in self.events[revision]:
                if not in_range(event.kv.key, watch_key, range_end):
                    continue
                if event.type == EventType.PUT and FilterType.NOPUT in filters:
                    continue
                if event.type == EventType.DELETE and FilterType.NODELETE in filters:
                    continue
                if prev_kv:
                    event = Event(event.type, event.kv, self._previous(event, revision))
                sent.append(event)
        return sent

    def _previous(self, event: Event, revision: int) -> KeyValue | None:
        if event.type == EventType.PUT and event.kv.version == 1:
            return None
        if revision - 1 < self.compacted_revision:
            return None
        return self.history[revision - 1].get(event.kv.key)


def _model_passes(request: RangeRequest, kv: KeyValue) -> bool:
    checks = (
        (request.min_mod_revision, kv.mod_revision >= request.min_mod_revision),
        (request.max_mod_revision, kv.mod_revision <= request.max_mod_revision),
        (request.min_create_revision, kv.create_revision >= request.min_create_revision),
        (request.max_create_revision, kv.create_revision <= request.max_create_revision),
    )
    return all(passes for bound, passes in checks if bound != 0)


def _model_sort(request: RangeRequest, found: list[KeyValue]) -> list[KeyValue]:
    if request.sort_order == SortOrder.NONE and request.sort_target == SortTarget.KEY:
        return found
    fields: dict[SortTarget, Callable[[KeyValue], Any]] = {
        SortTarget.KEY: lambda kv: kv.key,
        SortTarget.VERSION: lambda kv: kv.version,
        SortTarget.CREATE: lambda kv: kv.create_revision,
        SortTarget.MOD: lambda kv: kv.mod_revision,
        SortTarget.VALUE: lambda kv: kv.value,
    }
    field = fields[request.sort_target]
    ascending = sorted(found, key=lambda kv: (field(kv), kv.key))
    if request.sort_order != SortOrder.DESCEND:
        return ascending
    # Descending keeps ties in ascending key order, as etcd's stable insertion sort does.
    groups: dict[Any, list[KeyValue]] = {}
    for kv in ascending:
        groups.setdefault(field(kv), []).append(kv)
    return [kv for value in reversed(list(groups)) for kv in groups[value]]


def _model_compare(compare: Compare, keyspace: Keyspace) -> bool:
    found = [kv for key, kv in keyspace.items() if in_range(key, compare.key, compare.range_end)]
    if not found:
        if compare.target == CompareTarget.VALUE:
            return False
        found = [KeyValue()]
    for kv in found:
        left: Any
        right: Any
        match compare.target:
            case CompareTarget.VALUE:
                left, right = kv.value, compare.value
            case CompareTarget.VERSION:
                left, right = kv.version, compare.version
            case CompareTarget.CREATE:
                left, right = kv.create_revision, compare.create_revision
            case CompareTarget.MOD:
                left, right = kv.mod_revision, compare.mod_revision
            case CompareTarget.LEASE:
                left, right = kv.lease, compare.lease
        holds = {
            CompareResult.EQUAL: left == right,
            CompareResult.NOT_EQUAL: left != right,
            CompareResult.GREATER: left > right,
            CompareResult.LESS: left < right,
        }[compare.result]
        if not holds:
            return False
    return True
