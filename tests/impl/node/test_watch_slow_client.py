"""A watch client that reads slowly: the member holds a bounded queue for it and loses nothing.

spec.watch rule 7 (etcd's victims): once a stream holds 128 responses its client has not
taken, its watchers fall behind and later catch up from the keyspace's history.
"""

from __future__ import annotations

from pathlib import Path

from impl.node.node import Node, WatchStream
from spec import constants
from spec.mvcc import Event
from spec.watch import WatchCreateRequest, WatchResponse
from tests.impl.node.test_node import (
    WAIT_SECONDS,
    put_all,
    single_member_config,
    wait_for_leadership,
)

WRITES = 1000


def test_a_slow_watch_client_gets_every_event_once_from_a_bounded_queue(tmp_path: Path) -> None:
    node = Node(single_member_config(tmp_path / "solo.etcd"))
    node.start()
    try:
        wait_for_leadership(node)
        stream = node.call(node.open_watch_stream).result(timeout=WAIT_SECONDS)
        assert isinstance(stream, WatchStream)
        node.call(
            lambda: node.create_watch(stream, WatchCreateRequest(key=b"k", range_end=b"l"))
        ).result(timeout=WAIT_SECONDS)
        put_all(node, WRITES)  # nobody reads the stream meanwhile
        queued = stream.responses.qsize()
        assert queued <= constants.watch_responses_queued_max + 1, f"{queued} responses queued"

        events: list[Event] = []
        while len(events) < WRITES:
            response = stream.responses.get(timeout=WAIT_SECONDS)
            assert isinstance(response, WatchResponse)
            assert not response.canceled
            events.extend(response.events)
        assert [event.kv.key for event in events] == [b"k%04d" % number for number in range(WRITES)]
        revisions = [event.kv.mod_revision for event in events]
        assert revisions == sorted(set(revisions)), "an event repeated or out of order"
    finally:
        node.stop()
