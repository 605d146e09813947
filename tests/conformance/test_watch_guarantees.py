"""Each watch guarantee check passes on a correct recording and fails on a doctored one.

The doctored recordings model the broken servers the issue names: events reordered, an event
dropped or repeated, a field rewritten, a revision split across responses, events before the
created response, a filter ignored, a wrong prev_kv, progress sent too early.
"""

from __future__ import annotations

from dataclasses import replace

from conformance.watch import guarantees
from conformance.watch.recording import (
    DELETE,
    PUT,
    EventRecord,
    KeyValueRecord,
    WatchRecording,
    WatchResponseRecord,
)
from conformance.watch.reference import ReferenceHistory


def put(key: bytes, value: bytes, revision: int, created: int, version: int) -> EventRecord:
    return EventRecord(PUT, KeyValueRecord(key, value, created, revision, version, 0), None)


def delete(key: bytes, revision: int) -> EventRecord:
    return EventRecord(DELETE, KeyValueRecord(key, b"", 0, revision, 0, 0), None)


# Revision 2: put a; 3: put b; 4: txn put a, put c; 5: delete a; 6: put a again.
EVENTS = [
    put(b"a", b"1", 2, 2, 1),
    put(b"b", b"2", 3, 3, 1),
    put(b"a", b"3", 4, 2, 2),
    put(b"c", b"4", 4, 4, 1),
    delete(b"a", 5),
    put(b"a", b"5", 6, 6, 1),
]
REFERENCE = ReferenceHistory(EVENTS, first_revision=1, last_revision=6)


def response(*events: EventRecord, created: bool = False, revision: int = 6) -> WatchResponseRecord:
    return WatchResponseRecord(
        watch_id=0,
        header_revision=revision,
        created=created,
        canceled=False,
        compact_revision=0,
        cancel_reason="",
        fragment=False,
        events=tuple(events),
        received_ns=0,
    )


def progress(revision: int) -> WatchResponseRecord:
    return response(revision=revision)


def with_previous(event: EventRecord) -> EventRecord:
    return replace(event, previous=REFERENCE.key_before(event.key, event.revision))


def recording(*responses: WatchResponseRecord, **options: object) -> WatchRecording:
    watch = WatchRecording("test", b"\x00", b"\x00", 1, **options)  # type: ignore[arg-type]
    watch.watch_id = 0
    watch.responses = [response(created=True, revision=1), *responses]
    return watch


def correct() -> WatchRecording:
    return recording(
        response(EVENTS[0]), response(EVENTS[1]), response(EVENTS[2], EVENTS[3]), response(*EVENTS[4:5]),
        response(EVENTS[5]),
    )  # fmt: skip


def violations(watch: WatchRecording) -> dict[str, list[str]]:
    return {name: found for name, found in guarantees.check_all(watch, REFERENCE).items() if found}


def test_correct_recording_passes_every_check() -> None:
    assert violations(correct()) == {}


def test_reordered_events_fail_ordered_and_reliable() -> None:
    watch = recording(response(EVENTS[1]), response(EVENTS[0]), response(EVENTS[2], EVENTS[3]),
                      response(EVENTS[4]), response(EVENTS[5]))  # fmt: skip
    found = violations(watch)
    assert "ordered" in found
    assert "reliable" in found


def test_reordered_events_inside_a_txn_fail_reliable() -> None:
    watch = recording(response(EVENTS[0]), response(EVENTS[1]), response(EVENTS[3], EVENTS[2]),
                      response(EVENTS[4]), response(EVENTS[5]))  # fmt: skip
    assert "reliable" in violations(watch)


def test_dropped_event_fails_reliable() -> None:
    watch = recording(response(EVENTS[0]), response(EVENTS[2], EVENTS[3]), response(EVENTS[4]),
                      response(EVENTS[5]))  # fmt: skip
    assert set(violations(watch)) == {"reliable"}


def test_repeated_event_fails_unique() -> None:
    watch = correct()
    watch.responses.append(response(EVENTS[5]))
    assert "unique" in violations(watch)


def test_rewritten_value_fails_reliable() -> None:
    altered = replace(EVENTS[1], key_value=replace(EVENTS[1].key_value, value=b"rewritten"))
    watch = recording(response(EVENTS[0]), response(altered), response(EVENTS[2], EVENTS[3]),
                      response(EVENTS[4]), response(EVENTS[5]))  # fmt: skip
    assert set(violations(watch)) == {"reliable"}


def test_split_revision_fails_atomic() -> None:
    watch = recording(response(EVENTS[0]), response(EVENTS[1]), response(EVENTS[2]), response(EVENTS[3]),
                      response(EVENTS[4]), response(EVENTS[5]))  # fmt: skip
    assert set(violations(watch)) == {"atomic"}


def test_events_before_created_fail() -> None:
    watch = correct()
    watch.responses.insert(0, watch.responses.pop(1))
    assert "created before events" in violations(watch)


def test_ignored_filter_fails_filters_and_reliable() -> None:
    watch = correct()
    watch.filters = ("NODELETE",)
    found = violations(watch)
    assert "filters" in found
    assert "reliable" in found


def test_event_outside_range_fails_filters() -> None:
    watch = correct()
    watch.key, watch.range_end = b"a", b""
    assert "filters" in violations(watch)


def test_prev_kv_must_be_the_previous_revision() -> None:
    good = recording(*(response(with_previous(event)) for event in [EVENTS[0], EVENTS[1]]),
                     response(with_previous(EVENTS[2]), with_previous(EVENTS[3])),
                     response(with_previous(EVENTS[4])), response(with_previous(EVENTS[5])),
                     prev_kv=True)  # fmt: skip
    assert violations(good) == {}
    wrong = replace(with_previous(EVENTS[4]), previous=EVENTS[0].key_value)  # the older value
    bad = recording(*(response(with_previous(event)) for event in [EVENTS[0], EVENTS[1]]),
                    response(with_previous(EVENTS[2]), with_previous(EVENTS[3])),
                    response(wrong), response(with_previous(EVENTS[5])), prev_kv=True)  # fmt: skip
    assert set(violations(bad)) == {"prev_kv"}
    missing = recording(response(EVENTS[0]), response(EVENTS[1]), response(EVENTS[2], EVENTS[3]),
                        response(EVENTS[4]), response(EVENTS[5]), prev_kv=True)  # fmt: skip
    assert set(violations(missing)) == {"prev_kv"}


def test_progress_before_its_events_fails_progress() -> None:
    watch = recording(response(EVENTS[0]), progress(4), response(EVENTS[1]),
                      response(EVENTS[2], EVENTS[3]), response(EVENTS[4]), response(EVENTS[5]))  # fmt: skip
    assert "progress" in violations(watch)
    honest = recording(response(EVENTS[0]), progress(2), response(EVENTS[1]),
                       response(EVENTS[2], EVENTS[3]), progress(4), response(EVENTS[4]),
                       response(EVENTS[5]))  # fmt: skip
    assert violations(honest) == {}


def test_stream_wide_progress_is_checked_separately() -> None:
    early = replace(progress(5), watch_id=-1)
    watch = recording(response(EVENTS[0]), early, response(EVENTS[1]), response(EVENTS[2], EVENTS[3]),
                      response(EVENTS[4]), response(EVENTS[5]))  # fmt: skip
    assert violations(watch) == {}
    assert guarantees.check_stream_progress(watch)


def test_resumed_watch_must_continue_without_gap() -> None:
    first = recording(response(EVENTS[0]), response(EVENTS[1]))
    resumed = WatchRecording("resumed", b"\x00", b"\x00", 4)
    resumed.responses = [response(created=True), response(EVENTS[2], EVENTS[3]), response(EVENTS[4]),
                         response(EVENTS[5])]  # fmt: skip
    assert guarantees.check_resumed(first, resumed, REFERENCE) == []
    gap = WatchRecording("resumed", b"\x00", b"\x00", 4)
    gap.responses = [response(created=True), response(EVENTS[4]), response(EVENTS[5])]
    assert guarantees.check_resumed(first, gap, REFERENCE)
    late = WatchRecording("resumed", b"\x00", b"\x00", 5)
    late.responses = [response(created=True), response(EVENTS[4]), response(EVENTS[5])]
    assert guarantees.check_resumed(first, late, REFERENCE)


def test_compaction_cancel_must_name_the_compaction_revision() -> None:
    watch = WatchRecording("compacted", b"\x00", b"\x00", 2)
    cancel = replace(response(revision=0), canceled=True, compact_revision=4)
    watch.responses = [response(created=True), cancel]
    assert guarantees.check_compaction_cancel(watch, 4) == []
    assert guarantees.check_compaction_cancel(watch, 5)
    watch.responses = [response(created=True), response(EVENTS[0])]
    assert guarantees.check_compaction_cancel(watch, 4)


def test_txn_events_follow_the_request_order() -> None:
    assert guarantees.check_txn_order(correct(), {4: [b"a", b"c"]}) == []
    assert guarantees.check_txn_order(correct(), {4: [b"c", b"a"]})
