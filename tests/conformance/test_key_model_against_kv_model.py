"""The checker's per-key model agrees with the project's MVCC oracle (`models.kv`).

A sequential single-client history whose responses come from `KeyValueModel` must be
accepted by the linearizability checker, and changing any one response field (value,
version, create or mod revision, header revision, deleted count, txn outcome) must make it
rejected. This ties the checker's sequential specification to the spec's model.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.history import Found, Kind, Operation, Status
from conformance.linearizability.checker import check_history
from conformance.linearizability.search import Verdict
from models.kv import KeyValueModel
from spec.mvcc import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResponse,
    KeyValue,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    Revision,
    TxnRequest,
    TxnResponse,
)

KEYS = ["a", "b"]
Step = tuple[Kind, str, int]  # kind, key, expected mod revision offset for compare-and-put


def found(kvs: tuple[KeyValue, ...]) -> Found | None:
    if not kvs:
        return None
    kv = kvs[0]
    return Found(kv.value.decode(), kv.create_revision, kv.mod_revision, kv.version)


def run_sequentially(steps: list[Step]) -> list[Operation]:
    """Apply the steps to KeyValueModel one after another, recording them as a history."""
    model = KeyValueModel()
    operations = []
    last_mod: dict[str, int] = {}
    for number, (kind, key, stale) in enumerate(steps):
        encoded = key.encode()
        value = f"v{number}"
        base = Operation(number, 0, kind, key, 10 * number, Status.OK, 10 * number + 5, value=value)
        if kind == Kind.GET:
            ranged = model.range(RangeRequest(key=encoded))
            assert isinstance(ranged, RangeResponse)
            operation = replace(
                base, value="", revision=ranged.header.revision, found=found(ranged.kvs)
            )
            last_mod[key] = operation.found.mod_revision if operation.found else 0
        elif kind == Kind.PUT:
            put = model.put(PutRequest(key=encoded, value=value.encode()))
            assert isinstance(put, PutResponse)
            operation = replace(base, revision=put.header.revision)
        elif kind == Kind.DELETE:
            deleted = model.delete_range(DeleteRangeRequest(key=encoded))
            assert isinstance(deleted, DeleteRangeResponse)
            operation = replace(
                base, value="", revision=deleted.header.revision, deleted=deleted.deleted
            )
        else:
            expected = max(0, last_mod.get(key, 0) - stale)
            compare = Compare(
                CompareResult.EQUAL, CompareTarget.MOD, encoded, mod_revision=Revision(expected)
            )
            txn = model.txn(
                TxnRequest(
                    compare=(compare,),
                    success=(PutRequest(key=encoded, value=value.encode()),),
                    failure=(RangeRequest(key=encoded),),
                )
            )
            assert isinstance(txn, TxnResponse)
            failed_read = None
            if not txn.succeeded:
                response = txn.responses[0]
                assert isinstance(response, RangeResponse)
                failed_read = found(response.kvs)
            operation = replace(
                base, expected_mod_revision=expected, revision=txn.header.revision,
                succeeded=txn.succeeded, found=failed_read,
            )  # fmt: skip
        operations.append(operation)
    return operations


steps_strategy = st.lists(
    st.tuples(st.sampled_from(list(Kind)), st.sampled_from(KEYS), st.integers(0, 1)),
    min_size=1,
    max_size=30,
)


@settings(max_examples=80)
@given(steps=steps_strategy)
def test_histories_from_the_mvcc_model_are_accepted(steps: list[Step]) -> None:
    assert check_history(run_sequentially(steps), budget_seconds=10).verdict == Verdict.OK


def mutations(operation: Operation) -> list[Operation]:
    changed = [replace(operation, revision=operation.revision + 1)]
    if operation.found is not None:
        changed += [
            replace(operation, found=replace(operation.found, value="other")),
            replace(operation, found=replace(operation.found, version=operation.found.version + 1)),
            replace(
                operation,
                found=replace(operation.found, mod_revision=operation.found.mod_revision - 1),
            ),
            replace(operation, found=None),
        ]
    if operation.kind == Kind.DELETE:
        changed.append(replace(operation, deleted=1 - operation.deleted))
    if operation.kind == Kind.COMPARE_AND_PUT:
        changed.append(replace(operation, succeeded=not operation.succeeded))
    return changed


@settings(max_examples=80)
@given(steps=steps_strategy, data=st.data())
def test_one_changed_response_field_is_rejected(steps: list[Step], data: st.DataObject) -> None:
    history = run_sequentially(steps)
    index = data.draw(st.integers(0, len(history) - 1))
    operation = history[index]
    mutated = data.draw(st.sampled_from(mutations(operation)))
    # Revisions may have gaps (the notes' KV-5: only "increasing" is promised), so a larger
    # revision on the very last operation contradicts nothing; every other change does.
    if mutated.revision > operation.revision and index == len(history) - 1:
        return
    changed = [mutated if item.identifier == operation.identifier else item for item in history]
    assert check_history(changed, budget_seconds=10).verdict == Verdict.ILLEGAL, (
        operation,
        mutated,
    )
