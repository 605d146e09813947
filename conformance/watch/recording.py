"""What a watcher received, as plain data: responses with their events and arrival times.

`record_responses` drains a `WatchStream` into `WatchResponseRecord`s; the validators in
`guarantees` read only these records and the reference history, so every check can be run on
a doctored recording to show that it fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from conformance.client import EtcdClient
from etcdpb.etcdserverpb import rpc_pb2
from etcdpb.mvccpb import kv_pb2

PUT = "PUT"
DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class KeyValueRecord:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int

    @staticmethod
    def from_message(message: kv_pb2.KeyValue) -> KeyValueRecord:
        return KeyValueRecord(
            message.key,
            message.value,
            message.create_revision,
            message.mod_revision,
            message.version,
            message.lease,
        )


@dataclass(frozen=True, slots=True)
class EventRecord:
    type: str  # PUT or DELETE
    key_value: KeyValueRecord
    previous: KeyValueRecord | None

    @property
    def revision(self) -> int:
        return self.key_value.mod_revision

    @property
    def key(self) -> bytes:
        return self.key_value.key

    @staticmethod
    def from_message(message: kv_pb2.Event) -> EventRecord:
        previous = (
            KeyValueRecord.from_message(message.prev_kv) if message.HasField("prev_kv") else None
        )
        return EventRecord(
            DELETE if message.type == kv_pb2.Event.DELETE else PUT,
            KeyValueRecord.from_message(message.kv),
            previous,
        )


@dataclass(frozen=True, slots=True)
class WatchResponseRecord:
    watch_id: int
    header_revision: int
    created: bool
    canceled: bool
    compact_revision: int
    cancel_reason: str
    fragment: bool
    events: tuple[EventRecord, ...]
    received_ns: int

    @property
    def is_progress(self) -> bool:
        """etcd's client test for a progress notification (clientv3 `IsProgressNotify`)."""
        return (
            not self.events
            and not self.canceled
            and not self.created
            and self.compact_revision == 0
            and self.header_revision != 0
        )

    @staticmethod
    def from_message(message: rpc_pb2.WatchResponse) -> WatchResponseRecord:
        return WatchResponseRecord(
            watch_id=message.watch_id,
            header_revision=message.header.revision,
            created=message.created,
            canceled=message.canceled,
            compact_revision=message.compact_revision,
            cancel_reason=message.cancel_reason,
            fragment=message.fragment,
            events=tuple(EventRecord.from_message(event) for event in message.events),
            received_ns=time.monotonic_ns(),
        )


@dataclass
class WatchRecording:
    """One watch: the create request's parameters and the responses for its id, in order."""

    name: str
    key: bytes
    range_end: bytes
    start_revision: int
    filters: tuple[str, ...] = ()  # "NOPUT", "NODELETE"
    prev_kv: bool = False
    progress_notify: bool = False
    responses: list[WatchResponseRecord] = field(default_factory=list)
    watch_id: int | None = None

    def events(self) -> list[EventRecord]:
        return [event for response in self.responses for event in response.events]

    def last_revision(self) -> int:
        """The highest revision this watch is known to be complete up to: its last event, or a
        progress notification for this very watch. A stream-wide progress answer (watch id -1)
        does not count: etcd before 3.5 sends it without waiting for the watch to catch up
        (etcd#15220)."""
        revisions = [event.revision for event in self.events()]
        revisions += [
            response.header_revision
            for response in self.responses
            if response.is_progress and response.watch_id == self.watch_id
        ]
        return max(revisions, default=0)

    def stream_progress(self) -> list[WatchResponseRecord]:
        return [
            response
            for response in self.responses
            if response.is_progress and response.watch_id == -1
        ]

    def create_request(self) -> rpc_pb2.WatchCreateRequest:
        filter_values = {
            "NOPUT": rpc_pb2.WatchCreateRequest.NOPUT,
            "NODELETE": rpc_pb2.WatchCreateRequest.NODELETE,
        }
        return rpc_pb2.WatchCreateRequest(
            key=self.key,
            range_end=self.range_end,
            start_revision=self.start_revision,
            filters=[filter_values[name] for name in self.filters],
            prev_kv=self.prev_kv,
            progress_notify=self.progress_notify,
        )

    def to_json(self) -> dict[str, Any]:
        converted: dict[str, Any] = bytes_to_text(asdict(self))
        return converted


def bytes_to_text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {key: bytes_to_text(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [bytes_to_text(item) for item in value]
    return value


class Watcher:
    """One watch on its own stream, so every response on the stream belongs to it (the
    stream-wide progress answers, watch id -1, included)."""

    def __init__(self, client: EtcdClient, recording: WatchRecording) -> None:
        self.recording = recording
        self.stream = client.open_watch_stream()
        self.stream.create(recording.create_request())

    def drain(self, wait_seconds: float = 0.0) -> None:
        """Move every response that has arrived (waiting up to `wait_seconds` for the first)
        into the recording."""
        message = self.stream.receive(timeout_seconds=wait_seconds)
        while message is not None:
            record = WatchResponseRecord.from_message(message)
            if record.created and self.recording.watch_id is None:
                self.recording.watch_id = record.watch_id
            self.recording.responses.append(record)
            message = self.stream.receive(timeout_seconds=0.0)

    def wait_until(
        self, condition: Callable[[WatchRecording], bool], timeout_seconds: float
    ) -> bool:
        """Drain until `condition(recording)` holds or the time is up."""
        deadline = time.monotonic() + timeout_seconds
        while not condition(self.recording):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.drain(wait_seconds=min(0.1, remaining))
        return True

    def close(self) -> None:
        self.stream.close()
