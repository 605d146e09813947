"""The sequential specification of one etcd key, as the linearizability search steps it.

etcd's store is a single sequence of revisions shared by all keys, which would forbid
partitioning a history by key. Every response, however, carries the revision it was applied
or read at, and the revisions are unique and increase in real time; so this model checks each
key on its own *with the revisions in its state*, and `revision_order` checks the one
cross-key fact left: that revisions respect real time across keys. Together they say the
per-key orders merge, by revision, into one global linearization.

It is written independently of `models.kv` (the MVCC oracle); `tests/conformance/
test_key_model_against_kv_model.py` shows the two agree on sequential histories.

The state of a key (etcd `mvcc` semantics, see the project's wire notes §3.4):
* absent: value None, create/mod revision 0, version 0 (a delete ends a generation);
* present: the value, the revision of the last creation, the revision of the last change, and
  the version (1 on creation, +1 on each put);
* `revision_floor`: the largest revision any operation on this key has reported so far. A
  write linearized later must report a larger revision (revisions strictly increase) and a
  read a revision at least this large (a linearizable read sees the store at or after every
  earlier operation). This is what lets the responses' revisions prune the search.

An indeterminate write has an unknown revision u: its create/mod revision is recorded as the
open interval (low, high) that u must lie in. It starts as (revision_floor, infinity), since u
is above every revision seen before it; every later known revision on the key narrows it from
above (a later write's revision is larger; a later read's header revision is at least as
large); an empty interval rejects that order; the first read that shows the key adopts the
revision it reports, if it lies in the interval.
"""

from __future__ import annotations

from typing import NamedTuple

from conformance.history import Found, Kind, Operation, Status

INFINITE_REVISION = 1 << 62
Unknown = tuple[int, int]  # an unknown revision u with low < u < high
RevisionValue = int | Unknown


class KeyState(NamedTuple):
    value: str | None
    create_revision: RevisionValue  # an Unknown interval: set by a write with no answer
    mod_revision: RevisionValue
    version: int
    revision_floor: int


INITIAL_KEY_STATE = KeyState(None, 0, 0, 0, 0)
NOTHING: frozenset[KeyState] = frozenset()


def step(state: KeyState, operation: Operation) -> frozenset[KeyState]:
    """Every state the key can be in after `operation` with its recorded response."""
    if operation.status == Status.INDETERMINATE:
        return step_indeterminate(state, operation)
    if operation.status == Status.PERSISTED:
        return step_persisted(state, operation)
    match operation.kind:
        case Kind.GET:
            return step_read(state, operation.revision, operation.found)
        case Kind.PUT:
            return step_put(state, operation.value, operation.revision)
        case Kind.DELETE:
            return step_delete(state, operation.deleted, operation.revision)
        case Kind.COMPARE_AND_PUT:
            return step_compare_and_put(state, operation)
    raise AssertionError(operation.kind)


def step_read(state: KeyState, revision: int, found: Found | None) -> frozenset[KeyState]:
    """A read at header revision H returns the key as of the latest write, and H never goes
    below a revision an earlier operation on this key reported (KV-4, KV-5)."""
    if revision < state.revision_floor:
        return NOTHING
    narrowed = narrow(state, revision + 1)
    if narrowed is None:
        return NOTHING
    state = narrowed
    if state.value is None:
        if found is not None:
            return NOTHING
        return frozenset({state._replace(revision_floor=revision)})
    if found is None or found.value != state.value or found.version != state.version:
        return NOTHING
    if found.mod_revision > revision:
        return NOTHING
    create_revision = agree(state.create_revision, found.create_revision)
    mod_revision = agree(state.mod_revision, found.mod_revision)
    if create_revision is None or mod_revision is None:
        return NOTHING
    return frozenset(
        {KeyState(state.value, create_revision, mod_revision, state.version, revision)}
    )


def agree(known: RevisionValue, observed: int) -> int | None:
    """The recorded revision if it equals the observed one; the observed one if ours is an
    unknown interval that contains it; None if they disagree."""
    if isinstance(known, tuple):
        low, high = known
        return observed if low < observed < high else None
    return known if known == observed else None


def narrow(state: KeyState, high: int) -> KeyState | None:
    """Every unknown revision in the state is below `high`; None if one can no longer exist."""
    fields = []
    for value in (state.create_revision, state.mod_revision):
        if isinstance(value, tuple):
            value = (value[0], min(value[1], high))
            if value[1] <= value[0] + 1:
                return None
        fields.append(value)
    return state._replace(create_revision=fields[0], mod_revision=fields[1])


def put_result(state: KeyState, value: str, revision: int | None) -> KeyState:
    written: RevisionValue = (
        (state.revision_floor, INFINITE_REVISION) if revision is None else revision
    )
    floor = state.revision_floor if revision is None else revision
    if state.value is None:
        return KeyState(value, written, written, 1, floor)
    return KeyState(value, state.create_revision, written, state.version + 1, floor)


def step_put(state: KeyState, value: str, revision: int) -> frozenset[KeyState]:
    """A put creates exactly one new revision, above every revision seen before (KV-5, KV-6)."""
    if revision <= state.revision_floor:
        return NOTHING
    narrowed = narrow(state, revision)
    if narrowed is None:
        return NOTHING
    return frozenset({put_result(narrowed, value, revision)})


def step_delete(state: KeyState, deleted: int, revision: int) -> frozenset[KeyState]:
    """Deleting a present key creates a revision and a tombstone; deleting an absent key
    deletes nothing and creates no revision (wire notes §0.4)."""
    if state.value is None:
        if deleted != 0 or revision < state.revision_floor:
            return NOTHING
        return frozenset({state._replace(revision_floor=revision)})
    if deleted != 1 or revision <= state.revision_floor or narrow(state, revision) is None:
        return NOTHING
    return frozenset({KeyState(None, 0, 0, 0, revision)})


def compare_can_hold(state: KeyState, expected: int) -> bool:
    """Can the key's mod_revision (0 when absent) equal `expected`?"""
    if isinstance(state.mod_revision, tuple):
        return agree(state.mod_revision, expected) is not None
    return state.mod_revision == expected


def compare_can_fail(state: KeyState, expected: int) -> bool:
    return isinstance(state.mod_revision, tuple) or state.mod_revision != expected


def step_compare_and_put(state: KeyState, operation: Operation) -> frozenset[KeyState]:
    """Txn(If mod_revision == expected Then Put Else Get): the compare decides the branch
    (KV-9); an absent key compares with mod_revision 0."""
    expected = operation.expected_mod_revision
    if operation.succeeded:
        if not compare_can_hold(state, expected):
            return NOTHING
        return step_put(state, operation.value, operation.revision)
    if not compare_can_fail(state, expected):
        return NOTHING
    if operation.found is not None and operation.found.mod_revision == expected:
        return NOTHING
    return step_read(state, operation.revision, operation.found)


def step_persisted(state: KeyState, operation: Operation) -> frozenset[KeyState]:
    """A write without an answer that the reference history shows applied at `revision`."""
    match operation.kind:
        case Kind.PUT:
            return step_put(state, operation.value, operation.revision)
        case Kind.COMPARE_AND_PUT:
            if not compare_can_hold(state, operation.expected_mod_revision):
                return NOTHING
            return step_put(state, operation.value, operation.revision)
        case Kind.DELETE:
            return step_delete(state, 1, operation.revision)
        case Kind.GET:
            raise AssertionError("reads are never persisted")
    raise AssertionError(operation.kind)


def step_indeterminate(state: KeyState, operation: Operation) -> frozenset[KeyState]:
    """A write with no answer took effect (at some revision we do not know) or did not; the
    "did not" case is the same as taking effect after every other operation, which the search
    reaches by placing it last, so only the "took effect" states are produced here."""
    match operation.kind:
        case Kind.PUT:
            return frozenset({put_result(state, operation.value, None)})
        case Kind.DELETE:
            return frozenset({KeyState(None, 0, 0, 0, state.revision_floor)})
        case Kind.COMPARE_AND_PUT:
            outcomes = set()
            if compare_can_hold(state, operation.expected_mod_revision):
                outcomes.add(put_result(state, operation.value, None))
            if compare_can_fail(state, operation.expected_mod_revision):
                outcomes.add(state)
            return frozenset(outcomes)
        case Kind.GET:
            raise AssertionError("a failed read is left out of the history, not indeterminate")
    raise AssertionError(operation.kind)
