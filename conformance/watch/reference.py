"""The reference event history: every change to the store, as a whole-keyspace watch saw it.

A watch on every key (`key = range_end = "\\0"`) opened at revision 1 receives every event the
server ever produced (W-8: "the whole history from the last compaction revision can be
watched"), so it reconstructs the store's history without reading the server's disk; this is
what lets every other watch be checked against any server (the black-box path of etcd's
robustness tests before they switched to reading the WAL).

The reference stream is itself checked by the same guarantees as any watch, and cross-checked
against the clients' acknowledged writes (`durability`).
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field

from conformance.client import EtcdClient
from conformance.watch.recording import (
    DELETE,
    PUT,
    EventRecord,
    KeyValueRecord,
    Watcher,
    WatchRecording,
)

WHOLE_KEYSPACE = b"\x00"


def key_in_range(key: bytes, start: bytes, range_end: bytes) -> bool:
    """etcd's range rule: empty range_end is the single key; "\\0" is every key >= start;
    otherwise the half-open interval [start, range_end). An empty start means "\\0"."""
    start = start or WHOLE_KEYSPACE
    if not range_end:
        return key == start
    if range_end == WHOLE_KEYSPACE:
        return key >= start
    return start <= key < range_end


def passes_filters(event: EventRecord, filters: tuple[str, ...]) -> bool:
    if event.type == PUT and "NOPUT" in filters:
        return False
    return not (event.type == DELETE and "NODELETE" in filters)


@dataclass
class ReferenceHistory:
    events: list[EventRecord]
    first_revision: int  # the history is complete from this revision on
    last_revision: int  # ... up to this one
    by_key: dict[bytes, list[EventRecord]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for event in self.events:
            self.by_key.setdefault(event.key, []).append(event)

    def events_in(
        self,
        key: bytes,
        range_end: bytes,
        first_revision: int,
        last_revision: int,
        filters: tuple[str, ...] = (),
    ) -> list[EventRecord]:
        """The events a watch on [key, range_end) with `filters` must deliver between two
        revisions (inclusive), in order."""
        return [
            event
            for event in self.events
            if first_revision <= event.revision <= last_revision
            and key_in_range(event.key, key, range_end)
            and passes_filters(event, filters)
        ]

    def at_revision(self, revision: int) -> list[EventRecord]:
        return [event for event in self.events if event.revision == revision]

    def key_before(self, key: bytes, revision: int) -> KeyValueRecord | None:
        """The key as of `revision - 1` (what prev_kv must carry), None if it did not exist."""
        history = self.by_key.get(key, [])
        revisions = [event.revision for event in history]
        position = bisect.bisect_left(revisions, revision)
        if position == 0:
            return None
        event = history[position - 1]
        return None if event.type == DELETE else event.key_value

    def puts_by_value(self) -> dict[tuple[bytes, bytes], list[EventRecord]]:
        found: dict[tuple[bytes, bytes], list[EventRecord]] = {}
        for event in self.events:
            if event.type == PUT:
                found.setdefault((event.key, event.key_value.value), []).append(event)
        return found


class ReferenceUnavailable(Exception):
    """The server could not replay its history from the requested revision."""


def collect_reference(
    client: EtcdClient, until_revision: int, timeout_seconds: float = 15.0, start_revision: int = 1
) -> tuple[ReferenceHistory, WatchRecording]:
    """Watch every key from `start_revision` until the events of every revision up to
    `until_revision` have arrived (every revision after 1 has at least one event), within the
    timeout."""
    recording = WatchRecording(
        name="reference",
        key=WHOLE_KEYSPACE,
        range_end=WHOLE_KEYSPACE,
        start_revision=start_revision,
    )
    watcher = Watcher(client, recording)
    try:
        deadline = time.monotonic() + timeout_seconds
        while recording.last_revision() < until_revision:
            if any(response.canceled for response in recording.responses):
                cancel = next(response for response in recording.responses if response.canceled)
                raise ReferenceUnavailable(
                    f"watch from revision {start_revision} was cancelled "
                    f"(compact_revision={cancel.compact_revision}, reason={cancel.cancel_reason!r})"
                )
            if time.monotonic() > deadline:
                raise ReferenceUnavailable(
                    f"watch from revision {start_revision} reached only revision "
                    f"{recording.last_revision()} of {until_revision} in {timeout_seconds:.0f} s"
                )
            watcher.drain(wait_seconds=0.2)
    finally:
        watcher.close()
    events = [event for event in recording.events() if event.revision <= until_revision]
    return ReferenceHistory(events, start_revision, until_revision), recording
