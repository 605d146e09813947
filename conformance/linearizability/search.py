"""Wing–Gong/Lowe linearizability search with memoization, as porcupine implements it.

Given the operations of one partition (each with an invocation time and a completion time,
infinite for an indeterminate operation) and a sequential model, decide whether some total
order of the operations (1) respects real time: an operation that completed before another
was invoked comes first, and (2) is accepted by the model step by step.

The search walks a doubly linked list of call and return events in time order. At a call
event it tries to linearize that operation now: if the model accepts it, the operation's call
and return events are "lifted" out of the list, the choice is pushed on a stack and the walk
restarts from the head. Reaching a return event means the operation it ends should already
have been linearized, so the last choice is undone ("unlifted") and the walk continues after
it. A cache of (set of linearized operations, model state) pairs already explored prunes the
search (Lowe, "Testing for linearizability", 2017; Horn & Kroening, FORTE 2015). The walk is
iterative, and bounded by a deadline: running out of time gives `Verdict.UNKNOWN`, never a
guess.

Model states are sets of possible states (a nondeterministic model turned deterministic, as
porcupine's `NondeterministicModel`), so an operation whose effect is unknown simply keeps
several candidates alive.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

INFINITE_TIME = 1 << 62
DEADLINE_CHECK_INTERVAL = 1024


class Timed(Protocol):
    @property
    def call_ns(self) -> int: ...

    @property
    def return_ns(self) -> int | None: ...


OperationType = TypeVar("OperationType", bound=Timed)
State = TypeVar("State", bound=Hashable)


class Verdict(StrEnum):
    OK = "ok"
    ILLEGAL = "illegal"
    UNKNOWN = "unknown"  # the deadline passed first


@dataclass
class SearchResult(Generic[OperationType]):
    verdict: Verdict
    # For ILLEGAL: the longest order of operations the model accepted, and the operations
    # that could not be placed after it (those whose calls precede the first pending return).
    longest_prefix: list[OperationType] = field(default_factory=list)
    stuck: list[OperationType] = field(default_factory=list)
    steps: int = 0


def check_operations(
    operations: Sequence[OperationType],
    initial_state: State,
    step: Callable[[State, OperationType], frozenset[State]],
    deadline: float,
) -> SearchResult[OperationType]:
    """Search for a linearization of `operations` (see the module docstring).

    `step(state, operation)` returns every state the model may be in after applying
    `operation` to `state` with its recorded response; an empty set means the model rejects it.
    """
    count = len(operations)
    if count == 0:
        return SearchResult(Verdict.OK)
    # Events: 2*i is operation i's call, 2*i + 1 its return. Sorted by time, calls first on ties
    # (operations that touch at one instant count as concurrent, which only accepts more).
    events = sorted(
        range(2 * count),
        key=lambda event: (
            operations[event // 2].call_ns
            if event % 2 == 0
            else return_time(operations[event // 2]),
            event % 2,
        ),
    )
    head = -1
    next_event = {head: events[0]}
    previous_event = {events[0]: head}
    for before, after in itertools.pairwise(events):
        next_event[before] = after
        previous_event[after] = before
    next_event[events[-1]] = -2  # the list's end
    states: frozenset[State] = frozenset({initial_state})
    linearized = 0
    stack: list[tuple[int, frozenset[State]]] = []
    cache: set[tuple[int, frozenset[State]]] = set()
    longest: list[int] = []
    stuck_event = -2
    steps = 0

    def lift(event: int) -> None:
        for removed in (event, event + 1):
            before, after = previous_event[removed], next_event[removed]
            next_event[before] = after
            if after != -2:
                previous_event[after] = before

    def unlift(event: int) -> None:
        for restored in (event + 1, event):
            before, after = previous_event[restored], next_event[restored]
            next_event[before] = restored
            if after != -2:
                previous_event[after] = restored

    event = next_event[head]
    while next_event[head] != -2:
        steps += 1
        if steps % DEADLINE_CHECK_INTERVAL == 0 and time.monotonic() > deadline:
            return SearchResult(Verdict.UNKNOWN, steps=steps)
        if event % 2 == 0:
            index = event // 2
            successors = frozenset(
                successor for state in states for successor in step(state, operations[index])
            )
            if successors:
                candidate = linearized | (1 << index)
                if (candidate, successors) not in cache:
                    cache.add((candidate, successors))
                    stack.append((event, states))
                    states, linearized = successors, candidate
                    lift(event)
                    if len(stack) > len(longest):
                        longest = [entry for entry, _ in stack]
                    event = next_event[head]
                    continue
            event = next_event[event]
            continue
        # A return event: its operation must come before everything still unplaced.
        if len(stack) == len(longest):
            stuck_event = event
        if not stack:
            return illegal_result(operations, longest, stuck_event, steps)
        event, states = stack.pop()
        linearized &= ~(1 << (event // 2))
        unlift(event)
        event = next_event[event]
    return SearchResult(Verdict.OK, steps=steps)


def return_time(operation: Timed) -> int:
    return INFINITE_TIME if operation.return_ns is None else operation.return_ns


def illegal_result(
    operations: Sequence[OperationType],
    longest: list[int],
    stuck_event: int,
    steps: int,
) -> SearchResult[OperationType]:
    """Name the longest accepted prefix and the operations that could not follow it."""
    prefix = [operations[event // 2] for event in longest]
    placed = {event // 2 for event in longest}
    stuck_return = stuck_event // 2 if stuck_event >= 0 else None
    stuck: list[OperationType] = []
    if stuck_return is not None:
        blocking = operations[stuck_return]
        limit = return_time(blocking)
        stuck = [
            operation
            for index, operation in enumerate(operations)
            if index not in placed and operation.call_ns <= limit
        ]
    return SearchResult(Verdict.ILLEGAL, longest_prefix=prefix, stuck=stuck, steps=steps)
