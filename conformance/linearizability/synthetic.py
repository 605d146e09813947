"""Synthetic histories for testing the checker and measuring it: a simulated etcd.

`linearizable_history` simulates a correct store: each operation of each (sequential) client
gets an invocation time, a linearization point inside its interval, and a completion time;
applying the operations in linearization-point order to a single-revision-counter store gives
every response. The result is linearizable by construction. Optionally some writes become
indeterminate (their answer is lost), and some of those never take effect.

The mutations turn such a history into one that is not linearizable, each modelling a known
class of server bug; `tests/conformance` shows the checker rejects every one.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, replace

from conformance.history import Found, Kind, Operation, Status
from conformance.linearizability.patch import ReferenceWrites


@dataclass
class SimulatedStore:
    revision: int = 1
    keys: dict[str, Found] | None = None

    def __post_init__(self) -> None:
        self.keys = {}

    def apply(self, operation: Operation, take_effect: bool = True) -> Operation:
        """The operation with the response a correct etcd would give at this point."""
        assert self.keys is not None
        current = self.keys.get(operation.key)
        match operation.kind:
            case Kind.GET:
                return replace(operation, revision=self.revision, found=current)
            case Kind.PUT:
                return replace(operation, revision=self.write(operation, current, take_effect))
            case Kind.DELETE:
                if current is None or not take_effect:
                    return replace(operation, revision=self.revision, deleted=0)
                self.revision += 1
                del self.keys[operation.key]
                return replace(operation, revision=self.revision, deleted=1)
            case Kind.COMPARE_AND_PUT:
                mod_revision = 0 if current is None else current.mod_revision
                if mod_revision != operation.expected_mod_revision:
                    return replace(
                        operation, revision=self.revision, found=current, succeeded=False
                    )
                revision = self.write(operation, current, take_effect)
                return replace(operation, revision=revision, succeeded=True)
        raise AssertionError(operation.kind)

    def write(self, operation: Operation, current: Found | None, take_effect: bool) -> int:
        assert self.keys is not None
        if not take_effect:
            return self.revision
        self.revision += 1
        if current is None:
            self.keys[operation.key] = Found(operation.value, self.revision, self.revision, 1)
        else:
            self.keys[operation.key] = Found(
                operation.value, current.create_revision, self.revision, current.version + 1
            )
        return self.revision


def linearizable_history(
    seed: int,
    operation_count: int,
    client_count: int,
    key_count: int = 5,
    indeterminate_probability: float = 0.0,
) -> list[Operation]:
    """A linearizable history of `operation_count` operations (see the module docstring)."""
    return simulate(seed, operation_count, client_count, key_count, indeterminate_probability)[0]


def simulate(
    seed: int,
    operation_count: int,
    client_count: int,
    key_count: int = 5,
    indeterminate_probability: float = 0.0,
) -> tuple[list[Operation], ReferenceWrites]:
    """The history, and the revision of every put that took effect by (key, value): what a
    reference watch from revision 1 would show."""
    draw = random.Random(seed)
    keys = [f"key{index}" for index in range(key_count)]
    planned: list[tuple[int, Operation, bool]] = []  # (linearization point, operation, lost?)
    clock = [0] * client_count
    last_mod_revision: dict[tuple[int, str], int] = {}
    for identifier in range(operation_count):
        client = draw.randrange(client_count)
        call_ns = clock[client] + draw.randint(1, 50)
        point = call_ns + draw.randint(1, 100)
        return_ns = point + draw.randint(1, 100)
        clock[client] = return_ns
        kind = draw.choice(
            [Kind.GET, Kind.GET, Kind.PUT, Kind.PUT, Kind.DELETE, Kind.COMPARE_AND_PUT]
        )
        key = draw.choice(keys)
        lost = kind != Kind.GET and draw.random() < indeterminate_probability
        operation = Operation(
            identifier=identifier,
            client=client,
            kind=kind,
            key=key,
            call_ns=call_ns,
            return_ns=return_ns,
            status=Status.OK,
            value=f"value-{identifier}" if kind in (Kind.PUT, Kind.COMPARE_AND_PUT) else "",
            expected_mod_revision=last_mod_revision.get((client, key), 0),
        )
        planned.append((point, operation, lost))
    store = SimulatedStore()
    answered: list[Operation] = []
    persisted: dict[tuple[str, str], int] = {}
    deletes: dict[str, list[int]] = {}
    for _, operation, lost in sorted(planned, key=lambda entry: entry[0]):
        take_effect = not lost or draw.random() < 0.5
        before = store.revision
        result = store.apply(operation, take_effect)
        if store.revision != before and operation.kind == Kind.DELETE:
            deletes.setdefault(operation.key, []).append(store.revision)
        elif store.revision != before:
            persisted[(operation.key, operation.value)] = store.revision
        if lost:
            result = replace(
                operation, status=Status.INDETERMINATE, return_ns=None, error="DEADLINE_EXCEEDED"
            )
        answered.append(result)
        if result.found is not None:
            last_mod_revision[(result.client, result.key)] = result.found.mod_revision
        elif result.status == Status.OK and result.kind != Kind.DELETE:
            last_mod_revision[(result.client, result.key)] = result.revision
    history = sorted(answered, key=lambda operation: operation.identifier)
    return history, ReferenceWrites(persisted, deletes)


# --- Mutations: each returns a non-linearizable variant, or None when it does not apply -----


def stale_read(history: list[Operation], draw: random.Random) -> list[Operation] | None:
    """A read returns the value a completed, overwritten put wrote (a stale read)."""
    puts = [op for op in history if op.kind == Kind.PUT and op.status == Status.OK]
    for read in draw.sample(history, len(history)):
        if read.kind != Kind.GET or read.status != Status.OK or read.found is None:
            continue
        older = [
            put
            for put in puts
            if put.key == read.key
            and put.revision < read.found.mod_revision
            and put.value != read.found.value
        ]
        if older:
            put = older[-1]
            stale = Found(put.value, read.found.create_revision, put.revision, read.found.version)
            return substitute(history, replace(read, found=stale))
    return None


def lost_acknowledged_write(
    history: list[Operation], draw: random.Random
) -> list[Operation] | None:
    """A read after an acknowledged put, with nothing else in between, does not see it."""
    ordered = sorted(history, key=lambda op: op.call_ns)
    candidates = []
    for put in ordered:
        if put.kind != Kind.PUT or put.status != Status.OK or put.return_ns is None:
            continue
        for read in ordered:
            if (
                read.kind == Kind.GET
                and read.key == put.key
                and read.status == Status.OK
                and read.call_ns > put.return_ns
                and read.found is not None
                and read.found.value == put.value
                and not could_write_between(history, put, read)
            ):
                candidates.append((put, read))
                break
    if not candidates:
        return None
    put, read = draw.choice(candidates)
    return substitute(history, replace(read, found=None))


def could_write_between(history: list[Operation], first: Operation, last: Operation) -> bool:
    """Some other write on the key (acknowledged or not) might fall between the two operations."""
    assert last.return_ns is not None
    return any(
        other.is_write
        and other.key == first.key
        and other.identifier != first.identifier
        and other.call_ns < last.return_ns
        and (other.return_ns is None or other.return_ns > first.call_ns)
        for other in history
    )


def duplicate_revision(history: list[Operation], draw: random.Random) -> list[Operation] | None:
    """Two acknowledged writes to different keys report the same revision."""
    writes = [op for op in history if op.changed_the_store]
    pairs = [(a, b) for a, b in itertools.pairwise(writes) if a.key != b.key]
    if not pairs:
        return None
    first, second = draw.choice(pairs)
    return substitute(history, replace(second, revision=first.revision))


def rewritten_value(history: list[Operation], draw: random.Random) -> list[Operation] | None:
    """A read returns a value that no client ever wrote (one response field rewritten)."""
    reads = [op for op in history if op.kind == Kind.GET and op.found is not None]
    if not reads:
        return None
    read = draw.choice(reads)
    assert read.found is not None
    return substitute(history, replace(read, found=replace(read.found, value="never-written")))


def revision_going_back(history: list[Operation], draw: random.Random) -> list[Operation] | None:
    """A read invoked after a write completed reports a revision before that write."""
    ordered = sorted((op for op in history if op.status == Status.OK), key=lambda op: op.call_ns)
    for write in draw.sample(ordered, len(ordered)):
        if not write.changed_the_store or write.return_ns is None:
            continue
        for read in ordered:
            if read.kind == Kind.GET and read.call_ns > write.return_ns and read.key != write.key:
                return substitute(history, replace(read, revision=write.revision - 1))
    return None


MUTATIONS = {
    "stale read": stale_read,
    "lost acknowledged write": lost_acknowledged_write,
    "duplicate revision": duplicate_revision,
    "rewritten value": rewritten_value,
    "revision going back": revision_going_back,
}


def substitute(history: list[Operation], changed: Operation) -> list[Operation]:
    return [changed if op.identifier == changed.identifier else op for op in history]
