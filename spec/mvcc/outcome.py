"""Typed outcomes: an operation either applies (response, changes, events) or is rejected.

Rejections are protocol answers, not failures of the program (DESIGN.md principle 3): a
compacted revision, an unknown lease, a malformed request. They carry an `EtcdError`, whose
message and gRPC code the API layer sends unchanged.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import attrs

from spec.errors import EtcdError
from spec.mvcc.messages import Event, EventType, KeyValue
from spec.mvcc.view import Changes, Record

ResponseT = TypeVar("ResponseT")


@attrs.frozen
class Applied(Generic[ResponseT]):
    """The operation succeeded: answer `response`, write `changes`, tell watchers `events`."""

    response: ResponseT
    changes: Changes = Changes()
    events: tuple[Event, ...] = ()


@attrs.frozen
class Rejected:
    """The operation was refused with one of etcd's errors; nothing is written."""

    error: EtcdError


Outcome = Applied[ResponseT] | Rejected


def event_for_record(record: Record) -> Event:
    """The watch event of one history record (etcd `watchable_store_txn.go`).

    A put's event carries the stored key-value; a delete's carries only the key, with
    `mod_revision` set to the deletion's main revision and every other field zero.
    """
    if record.tombstone:
        deleted = KeyValue(key=record.key_value.key, mod_revision=record.revision.main)
        return Event(type=EventType.DELETE, kv=deleted)
    return Event(type=EventType.PUT, kv=record.key_value)


def events_for_changes(changes: Changes) -> tuple[Event, ...]:
    """The events of a write, in the order its changes were made (sub revision order)."""
    return tuple(map(event_for_record, changes.records))
