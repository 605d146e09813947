"""The linearizability checker accepts linearizable histories and rejects the others.

Crafted histories pin down the classic cases; synthetic histories from a simulated correct
store must all be accepted, and every mutation (a known class of server bug) rejected, with
seeds printed by Hypothesis so a failure replays.
"""

from __future__ import annotations

import random
import time
from typing import NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.history import Found, Kind, Operation, Status
from conformance.linearizability.checker import check_history
from conformance.linearizability.search import Verdict, check_operations
from conformance.linearizability.synthetic import MUTATIONS, linearizable_history, simulate


def put(identifier: int, key: str, value: str, call: int, ret: int | None, revision: int = 0) -> Operation:
    status = Status.OK if ret is not None else Status.INDETERMINATE
    return Operation(identifier, 0, Kind.PUT, key, call, status, ret, value=value, revision=revision)


def get(
    identifier: int, key: str, call: int, ret: int, revision: int, found: Found | None
) -> Operation:
    return Operation(
        identifier, 1, Kind.GET, key, call, Status.OK, ret, revision=revision, found=found
    )


def verdict(*operations: Operation) -> Verdict:
    return check_history(list(operations), budget_seconds=5).verdict


# --- Crafted etcd histories --------------------------------------------------------------------


def test_read_after_completed_put_must_see_it() -> None:
    write = put(0, "x", "a", 0, 10, revision=2)
    assert verdict(write, get(1, "x", 20, 30, 2, Found("a", 2, 2, 1))) == Verdict.OK
    assert verdict(write, get(1, "x", 20, 30, 2, None)) == Verdict.ILLEGAL


def test_read_concurrent_with_put_may_see_either_state() -> None:
    write = put(0, "x", "a", 0, 100, revision=2)
    assert verdict(write, get(1, "x", 10, 20, 1, None)) == Verdict.OK
    assert verdict(write, get(1, "x", 10, 20, 2, Found("a", 2, 2, 1))) == Verdict.OK


def test_new_then_old_read_inversion_is_rejected() -> None:
    write = put(0, "x", "a", 0, 100, revision=2)
    saw_new = get(1, "x", 10, 20, 2, Found("a", 2, 2, 1))
    saw_old = Operation(2, 2, Kind.GET, "x", 30, Status.OK, 40, revision=1, found=None)
    assert verdict(write, saw_new, saw_old) == Verdict.ILLEGAL


def test_indeterminate_put_may_or_may_not_have_happened() -> None:
    lost = put(0, "x", "a", 0, None)
    assert verdict(lost, get(1, "x", 20, 30, 1, None)) == Verdict.OK
    assert verdict(lost, get(1, "x", 20, 30, 2, Found("a", 2, 2, 1))) == Verdict.OK
    # ...but not with fields the put could not have produced.
    assert verdict(lost, get(1, "x", 20, 30, 2, Found("a", 2, 2, 2))) == Verdict.ILLEGAL


def test_indeterminate_put_cannot_take_effect_before_it_was_invoked() -> None:
    lost = put(0, "x", "a", 50, None)
    assert verdict(lost, get(1, "x", 0, 10, 2, Found("a", 2, 2, 1))) == Verdict.ILLEGAL


def test_value_nobody_wrote_is_rejected() -> None:
    assert verdict(get(0, "x", 0, 10, 1, Found("ghost", 2, 2, 1))) == Verdict.ILLEGAL


def test_put_revisions_must_increase_along_real_time() -> None:
    first = put(0, "x", "a", 0, 10, revision=3)
    second = put(1, "x", "b", 20, 30, revision=2)
    assert verdict(first, second) == Verdict.ILLEGAL


def test_compare_and_put_follows_the_compare() -> None:
    write = put(0, "x", "a", 0, 10, revision=2)
    good = Operation(
        1, 1, Kind.COMPARE_AND_PUT, "x", 20, Status.OK, 30,
        value="b", expected_mod_revision=2, revision=3, succeeded=True,
    )  # fmt: skip
    wrong_branch = Operation(
        1, 1, Kind.COMPARE_AND_PUT, "x", 20, Status.OK, 30,
        value="b", expected_mod_revision=2, revision=2, succeeded=False,
        found=Found("a", 2, 2, 1),
    )  # fmt: skip
    assert verdict(write, good) == Verdict.OK
    assert verdict(write, wrong_branch) == Verdict.ILLEGAL


def test_delete_of_absent_key_creates_no_revision() -> None:
    delete = Operation(0, 0, Kind.DELETE, "x", 0, Status.OK, 10, revision=1, deleted=0)
    assert verdict(delete) == Verdict.OK
    assert verdict(delete, put(1, "x", "a", 20, 30, 2)) == Verdict.OK
    assert verdict(Operation(0, 0, Kind.DELETE, "x", 0, Status.OK, 10, revision=2, deleted=1)) == (
        Verdict.ILLEGAL
    )


def test_illegal_verdict_names_the_operations_that_could_not_be_placed() -> None:
    write = put(0, "x", "a", 0, 10, revision=2)
    stale = get(1, "x", 20, 30, 2, None)
    report = check_history([write, stale], budget_seconds=5)
    assert report.verdict == Verdict.ILLEGAL
    excerpt = report.excerpts["x"]
    placed = {operation.identifier for operation in excerpt["longest_accepted_prefix"]}
    stuck = {operation.identifier for operation in excerpt["could_not_follow"]}
    assert placed | stuck == {0, 1}


# --- Synthetic histories: accepted as generated, rejected after each mutation ------------------


@settings(max_examples=40)
@given(
    seed=st.integers(0, 2**32),
    clients=st.integers(1, 8),
    keys=st.integers(1, 4),
    indeterminate=st.sampled_from([0.0, 0.05, 0.2]),
)
def test_simulated_correct_store_histories_are_linearizable(
    seed: int, clients: int, keys: int, indeterminate: float
) -> None:
    history = linearizable_history(seed, 150, clients, keys, indeterminate)
    report = check_history(history, budget_seconds=20)
    assert report.verdict == Verdict.OK, report.failures


@settings(max_examples=60)
@given(
    seed=st.integers(0, 2**32),
    mutation=st.sampled_from(sorted(MUTATIONS)),
    indeterminate=st.sampled_from([0.0, 0.05, 0.2]),
)
def test_every_mutation_of_a_correct_history_is_rejected(
    seed: int, mutation: str, indeterminate: float
) -> None:
    """With indeterminate writes resolved from the reference history, every mutation is
    rejected (and without any indeterminate write, without the reference too)."""
    history, persisted = simulate(seed, 150, 4, 3, indeterminate)
    mutated = MUTATIONS[mutation](history, random.Random(seed))
    if mutated is None:
        return  # the mutation found nothing to change in this history
    assert check_history(history, 20, persisted).verdict == Verdict.OK
    assert check_history(mutated, 20, persisted).verdict == Verdict.ILLEGAL, mutation
    if indeterminate == 0.0:
        # With unresolved indeterminate writes a mutation can be explained by one of them
        # taking effect late, so only a history without any is judged alone.
        assert check_history(mutated, 5).verdict == Verdict.ILLEGAL, mutation


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32), clients=st.integers(1, 8))
def test_histories_patched_from_the_reference_are_linearizable(seed: int, clients: int) -> None:
    history, persisted = simulate(seed, 300, clients, 3, 0.2)
    assert check_history(history, 20, persisted).verdict == Verdict.OK


def test_each_mutation_applies_to_some_history() -> None:
    """Guard against a mutation that silently never fires (and so proves nothing)."""
    for name, mutation in MUTATIONS.items():
        fired = any(
            mutation(linearizable_history(seed, 150, 4, 3, 0.05), random.Random(seed)) is not None
            for seed in range(20)
        )
        assert fired, name


# --- The search itself, on a plain register without revisions --------------------------------


class RegisterOperation(NamedTuple):
    call_ns: int
    return_ns: int | None
    write: str | None  # written value, or None for a read
    read: str | None  # value a read returned


def register_step(state: str, operation: RegisterOperation) -> frozenset[str]:
    if operation.write is not None:
        return frozenset({operation.write})
    return frozenset({state}) if operation.read == state else frozenset()


def search(operations: list[RegisterOperation]) -> Verdict:
    return check_operations(operations, "", register_step, time.monotonic() + 5).verdict


def test_search_finds_an_order_that_real_time_allows() -> None:
    # Two overlapping writes; reads after both see the one linearized last, consistently.
    history = [
        RegisterOperation(0, 10, "a", None),
        RegisterOperation(5, 15, "b", None),
        RegisterOperation(20, 30, None, "a"),
        RegisterOperation(40, 50, None, "a"),
    ]
    assert search(history) == Verdict.OK


def test_search_rejects_flip_flopping_reads() -> None:
    history = [
        RegisterOperation(0, 10, "a", None),
        RegisterOperation(5, 15, "b", None),
        RegisterOperation(20, 30, None, "a"),
        RegisterOperation(40, 50, None, "b"),
    ]
    assert search(history) == Verdict.ILLEGAL


def test_search_with_many_concurrent_writers_is_memoized() -> None:
    """10 fully concurrent writes then two reads: 10! orders, but only 2^10 x 10 cached states."""
    history = [RegisterOperation(0, 100, f"v{index}", None) for index in range(10)]
    history.append(RegisterOperation(200, 210, None, "v7"))
    history.append(RegisterOperation(220, 230, None, "v8"))
    started = time.monotonic()
    assert search(history) == Verdict.ILLEGAL
    assert time.monotonic() - started < 5


def test_search_gives_up_at_the_deadline() -> None:
    history = [RegisterOperation(0, 100, f"v{index}", None) for index in range(18)]
    history.append(RegisterOperation(200, 210, None, "missing"))
    result = check_operations(history, "", register_step, time.monotonic() - 1)
    assert result.verdict in (Verdict.UNKNOWN, Verdict.ILLEGAL)
