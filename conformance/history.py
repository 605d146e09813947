"""A history of client operations: invocations and completions, as the checkers read them.

Each operation is one request by one client, recorded with the monotonic time just before it
was sent (`call_ns`) and just after its answer arrived (`return_ns`). What the checkers may
assume about an operation depends on how it ended:

* `ok`: the server answered; the response fields are recorded.
* `indeterminate`: a write that failed or timed out. etcd does not abort pending proposals on a
  leader change, so such a write may have taken effect at any later moment, or never; its
  completion time is unknown (infinite) and its response is unknown.
* `persisted`: an indeterminate write that the reference history (a watch from revision 1)
  shows took effect, at the recorded `revision`; its completion time is still unknown.
* `failed`: a read that failed. It changed nothing and told us nothing, so it is left out of
  the check (etcd's robustness tests do the same).

Keys and values are text: the workloads use short ASCII keys and unique values, so a history
stays readable in the JSON report.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class Kind(StrEnum):
    GET = "get"
    PUT = "put"
    DELETE = "delete"
    # Txn(If mod_revision(key) == expected Then Put(key, value) Else Get(key)), as Kubernetes
    # does its optimistic updates.
    COMPARE_AND_PUT = "compare_and_put"


WRITE_KINDS = frozenset({Kind.PUT, Kind.DELETE, Kind.COMPARE_AND_PUT})


class Status(StrEnum):
    OK = "ok"
    INDETERMINATE = "indeterminate"
    # An indeterminate write that the reference watch history shows took effect, at `revision`.
    PERSISTED = "persisted"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Found:
    """A key as a response showed it (the fields of mvccpb.KeyValue the checkers compare)."""

    value: str
    create_revision: int
    mod_revision: int
    version: int


@dataclass(frozen=True, slots=True)
class Operation:
    identifier: int
    client: int
    kind: Kind
    key: str
    call_ns: int
    status: Status
    return_ns: int | None = None  # None exactly when the operation is indeterminate or failed
    value: str = ""  # PUT and COMPARE_AND_PUT
    expected_mod_revision: int = 0  # COMPARE_AND_PUT
    revision: int = 0  # the response header's revision
    found: Found | None = None  # GET, and COMPARE_AND_PUT when the compare failed
    deleted: int = 0  # DELETE
    succeeded: bool = False  # COMPARE_AND_PUT
    error: str = ""  # "CODE: description" for indeterminate and failed operations

    def __post_init__(self) -> None:
        assert (self.return_ns is None) == (self.status != Status.OK), self
        if self.status == Status.PERSISTED:
            assert self.is_write and self.revision > 0, self
        if self.return_ns is not None:
            assert self.return_ns >= self.call_ns, self

    @property
    def is_write(self) -> bool:
        return self.kind in WRITE_KINDS

    @property
    def changed_the_store(self) -> bool:
        """A completed operation that created a new revision."""
        if self.status != Status.OK:
            return False
        if self.kind == Kind.PUT:
            return True
        if self.kind == Kind.DELETE:
            return self.deleted > 0
        return self.kind == Kind.COMPARE_AND_PUT and self.succeeded

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> Operation:
        found = data.get("found")
        return Operation(
            **{
                **data,
                "kind": Kind(data["kind"]),
                "status": Status(data["status"]),
                "found": Found(**found) if found is not None else None,
            }
        )


@dataclass
class HistoryRecorder:
    """Thread-safe collector: `begin` stamps the invocation, `finish*` stamps the completion."""

    operations: list[Operation] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_identifier: int = 0

    def begin(self) -> tuple[int, int]:
        """Reserve an identifier and take the invocation time (call just before sending)."""
        with self.lock:
            identifier = self.next_identifier
            self.next_identifier += 1
        return identifier, time.monotonic_ns()

    def add(self, operation: Operation) -> Operation:
        with self.lock:
            self.operations.append(operation)
        return operation

    def history(self) -> list[Operation]:
        with self.lock:
            return sorted(self.operations, key=lambda operation: operation.identifier)


def per_client(operations: Iterable[Operation]) -> dict[int, list[Operation]]:
    grouped: dict[int, list[Operation]] = {}
    for operation in operations:
        grouped.setdefault(operation.client, []).append(operation)
    return grouped


def checked_operations(operations: Iterable[Operation]) -> list[Operation]:
    """What the linearizability check reads: everything but failed reads."""
    return [operation for operation in operations if operation.status != Status.FAILED]


def write_history(directory: Path, operations: Sequence[Operation]) -> list[Path]:
    """One `client-N/operations.json` per client (one JSON operation per line), as etcd's
    robustness reports lay them out."""
    written = []
    for client, client_operations in sorted(per_client(operations).items()):
        path = directory / f"client-{client}" / "operations.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps(operation.to_json(), sort_keys=True) for operation in client_operations]
        path.write_text("\n".join(lines) + "\n")
        written.append(path)
    return written


def read_history(directory: Path) -> list[Operation]:
    operations = []
    for path in sorted(directory.glob("client-*/operations.json")):
        for line in path.read_text().splitlines():
            if line.strip():
                operations.append(Operation.from_json(json.loads(line)))
    return sorted(operations, key=lambda operation: operation.identifier)
