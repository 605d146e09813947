"""Txn: compare, then apply one branch of operations atomically at one revision.

Validation before Raft (etcd `v3rpc/key.go`), in etcd's order:

1. `max(len(compare), len(success), len(failure))` above `--max-txn-ops` (128) is
   `too many operations in txn request`; a nested txn is checked against the budget left
   (`max-txn-ops` minus the outer count).
2. A compare with an empty key is `key is not provided`; each operation is validated as on
   its own; an operation with no request set is `key not found`.
3. Duplicate keys (`checkIntervals`), checked separately for `success` and `failure`: within one
   branch, two puts of one key, or a put of a key inside a delete's range, is
   `duplicate key given in txn request`; nested txns count as part of the branch, except that
   their own success and failure branches may put the same key (only one of them runs). A
   delete's range is taken literally here: `range_end == b"\\0"` is the interval
   [key, "\\0"), which holds no key (etcd builds the interval before turning "\\0" into
   "every key from key on").

Applying (etcd `server/etcdserver/apply.go:Txn`):

4. Every compare of the txn **and of every nested txn on the chosen path** is evaluated
   against the store as it was before the txn (`compareToPath`). A compare holds for a range
   when it holds for every key in it; against no key, VALUE compares are false and the
   others compare a zero KeyValue (so `create_revision == 0` means "absent").
5. Checks of the chosen path against that same pre-txn store, so a txn never fails half way:
   first every put (lease granted, key present for ignore_value/ignore_lease; in that order,
   the reverse of a lone put), then every range's revision (0 is always fine; above current is
   future; below the compaction point, negative revisions included, is compacted).
6. Operations run in order, each seeing the ones before it, all writes at one main revision
   with sub revisions 0, 1, 2, ... The header revision is the new revision if anything was
   written, else the current one; a nested TxnResponse's header revision is left 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from spec import constants
from spec.errors import EtcdError
from spec.mvcc.messages import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    EmptyRequestOp,
    KeyValue,
    PutRequest,
    RangeRequest,
    RequestOp,
    ResponseHeader,
    ResponseOp,
    TxnRequest,
    TxnResponse,
)
from spec.mvcc.outcome import Applied, Outcome, Rejected, events_for_changes
from spec.mvcc.read import RANGE_FROM_KEY, key_values_at, read_range, validate_range
from spec.mvcc.view import KeyspaceView, OverlayView
from spec.mvcc.write import (
    check_put_lease,
    check_put_previous,
    validate_delete_range,
    validate_put,
    write_delete_range,
    write_put,
)


# --- 1 and 2: shape ------------------------------------------------------------------------
def validate_txn(
    request: TxnRequest, operations_max: int = constants.txn_operations_max
) -> EtcdError | None:
    """etcd `checkTxnRequest`: operation count, compare keys, then each operation in turn."""
    operation_count = max(len(request.compare), len(request.success), len(request.failure))
    if operation_count > operations_max:
        return EtcdError.TOO_MANY_OPERATIONS
    for compare in request.compare:
        if not compare.key:
            return EtcdError.EMPTY_KEY
    for operation in (*request.success, *request.failure):
        error = validate_request_op(operation, operations_max - operation_count)
        if error is not None:
            return error
    return None


def validate_request_op(operation: RequestOp, operations_max: int) -> EtcdError | None:
    """etcd `checkRequestOp`: validate the operation a RequestOp holds; none is `key not found`."""
    match operation:
        case RangeRequest():
            return validate_range(operation)
        case PutRequest():
            return validate_put(operation)
        case DeleteRangeRequest():
            return validate_delete_range(operation)
        case TxnRequest():
            return validate_txn(operation, operations_max)
        case EmptyRequestOp():
            return EtcdError.KEY_NOT_FOUND


# --- 3: duplicate keys ---------------------------------------------------------------------
@attrs.frozen
class _Interval:
    """A delete's key interval [start, end); a single key is [key, key + b"\\0")."""

    start: bytes
    end: bytes | None  # None: no upper bound

    def holds(self, key: bytes) -> bool:
        return self.start <= key and (self.end is None or key < self.end)


def _delete_interval(request: DeleteRangeRequest) -> _Interval:
    if not request.range_end:
        return _Interval(request.key, request.key + b"\x00")
    return _Interval(request.key, request.range_end)


def check_duplicate_keys(
    operations: Sequence[RequestOp],
) -> tuple[frozenset[bytes], tuple[_Interval, ...]] | EtcdError:
    """etcd `checkIntervals`: the puts and delete intervals of a branch, or DUPLICATE_KEY."""
    deletes = [_delete_interval(op) for op in operations if isinstance(op, DeleteRangeRequest)]
    puts: set[bytes] = set()
    for operation in operations:
        if not isinstance(operation, TxnRequest):
            continue
        then_result = check_duplicate_keys(operation.success)
        if isinstance(then_result, EtcdError):
            return then_result
        else_result = check_duplicate_keys(operation.failure)
        if isinstance(else_result, EtcdError):
            return else_result
        then_puts, then_deletes = then_result
        else_puts, else_deletes = else_result
        for key in then_puts:
            if key in puts or any(interval.holds(key) for interval in deletes):
                return EtcdError.DUPLICATE_KEY
            puts.add(key)
        for key in else_puts:
            if key in puts and key not in then_puts:
                return EtcdError.DUPLICATE_KEY
            if any(interval.holds(key) for interval in deletes):
                return EtcdError.DUPLICATE_KEY
            puts.add(key)
        deletes.extend(then_deletes)
        deletes.extend(else_deletes)
    for operation in operations:
        if not isinstance(operation, PutRequest):
            continue
        if operation.key in puts or any(interval.holds(operation.key) for interval in deletes):
            return EtcdError.DUPLICATE_KEY
        puts.add(operation.key)
    return frozenset(puts), tuple(deletes)


def validate_txn_request(
    request: TxnRequest, operations_max: int = constants.txn_operations_max
) -> EtcdError | None:
    """Everything etcd's API layer checks before proposing a Txn (rules 1-3)."""
    error = validate_txn(request, operations_max)
    if error is not None:
        return error
    for branch in (request.success, request.failure):
        result = check_duplicate_keys(branch)
        if isinstance(result, EtcdError):
            return result
    return None


# --- 4: compares ---------------------------------------------------------------------------
def compare_holds(view: KeyspaceView, compare: Compare) -> bool:
    """etcd `applyCompare`: true when the compare holds for every key in its range."""
    _, key_values = key_values_at(view, compare.key, compare.range_end, view.current_revision())
    if not key_values:
        if compare.target == CompareTarget.VALUE:
            return False
        return _compare_key_value(compare, KeyValue())
    return all(_compare_key_value(compare, kv) for kv in key_values)


def _compare_key_value(compare: Compare, kv: KeyValue) -> bool:
    """etcd `compareKV`: compare the key-value's field (left) with the compare's (right)."""
    sign: int
    match compare.target:
        case CompareTarget.VALUE:
            sign = (kv.value > compare.value) - (kv.value < compare.value)
        case CompareTarget.VERSION:
            sign = (kv.version > compare.version) - (kv.version < compare.version)
        case CompareTarget.CREATE:
            left, right = kv.create_revision, compare.create_revision
            sign = (left > right) - (left < right)
        case CompareTarget.MOD:
            sign = (kv.mod_revision > compare.mod_revision) - (
                kv.mod_revision < compare.mod_revision
            )
        case CompareTarget.LEASE:
            sign = (kv.lease > compare.lease) - (kv.lease < compare.lease)
    match compare.result:
        case CompareResult.EQUAL:
            return sign == 0
        case CompareResult.NOT_EQUAL:
            return sign != 0
        case CompareResult.GREATER:
            return sign > 0
        case CompareResult.LESS:
            return sign < 0


@attrs.frozen
class _Path:
    """The branch each txn on the chosen path takes: this txn's, then its nested txns' in order."""

    succeeded: bool
    nested: tuple[_Path, ...]


def choose_path(view: KeyspaceView, request: TxnRequest) -> _Path:
    """etcd `compareToPath`: decide every branch up front, against the pre-txn store."""
    succeeded = all(compare_holds(view, compare) for compare in request.compare)
    branch = request.success if succeeded else request.failure
    nested = tuple(choose_path(view, op) for op in branch if isinstance(op, TxnRequest))
    return _Path(succeeded, nested)


# --- 5: checks along the path ----------------------------------------------------------------
def _chosen_operations(request: TxnRequest, path: _Path) -> list[tuple[RequestOp, _Path | None]]:
    branch = request.success if path.succeeded else request.failure
    nested = iter(path.nested)
    return [(op, next(nested) if isinstance(op, TxnRequest) else None) for op in branch]


def check_path(view: KeyspaceView, request: TxnRequest, path: _Path) -> EtcdError | None:
    """etcd `checkRequests`: all puts on the path first, then all ranges (rule 5)."""
    return _check_puts(view, request, path) or _check_ranges(view, request, path)


def _check_puts(view: KeyspaceView, request: TxnRequest, path: _Path) -> EtcdError | None:
    for operation, nested in _chosen_operations(request, path):
        error: EtcdError | None = None
        if isinstance(operation, TxnRequest):
            assert nested is not None
            error = _check_puts(view, operation, nested)
        elif isinstance(operation, PutRequest):
            error = check_put_previous(view, operation) or check_put_lease(view, operation)
        if error is not None:
            return error
    return None


def _check_ranges(view: KeyspaceView, request: TxnRequest, path: _Path) -> EtcdError | None:
    for operation, nested in _chosen_operations(request, path):
        if isinstance(operation, TxnRequest):
            assert nested is not None
            error = _check_ranges(view, operation, nested)
            if error is not None:
                return error
        elif isinstance(operation, RangeRequest) and operation.revision != 0:
            if operation.revision > view.current_revision():
                return EtcdError.FUTURE_REVISION
            if operation.revision < view.compacted_revision():
                return EtcdError.COMPACTED
    return None


# --- 6: applying -----------------------------------------------------------------------------
def txn(view: KeyspaceView, request: TxnRequest) -> Outcome[TxnResponse]:
    """Apply a TxnRequest: validate, choose the path, check it, then run it at one revision."""
    error = validate_txn_request(request)
    if error is not None:
        return Rejected(error)
    path = choose_path(view, request)
    error = check_path(view, request, path)
    if error is not None:
        return Rejected(error)
    overlay = OverlayView(view)
    responses = _run(overlay, request, path)
    header = ResponseHeader(revision=overlay.current_revision())
    response = TxnResponse(header=header, succeeded=path.succeeded, responses=responses)
    changes = overlay.changes()
    return Applied(response, changes, events_for_changes(changes))


def _run(overlay: OverlayView, request: TxnRequest, path: _Path) -> tuple[ResponseOp, ...]:
    responses: list[ResponseOp] = []
    for operation, nested in _chosen_operations(request, path):
        match operation:
            case RangeRequest():
                outcome = read_range(overlay, operation)
                assert isinstance(outcome, Applied), "checked against the pre-txn store"
                responses.append(outcome.response)
            case PutRequest():
                responses.append(write_put(overlay, operation))
            case DeleteRangeRequest():
                responses.append(write_delete_range(overlay, operation))
            case TxnRequest():
                assert nested is not None
                inner = _run(overlay, operation, nested)
                responses.append(TxnResponse(succeeded=nested.succeeded, responses=inner))
            case EmptyRequestOp():
                raise AssertionError("validation refuses empty operations")
    return tuple(responses)


assert RANGE_FROM_KEY == b"\x00"
