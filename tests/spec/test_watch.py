"""spec.watch rules that the model comparison does not reach: refusals, id assignment,
progress, cancel, catch-up batching over many revisions, fragmenting, and falling behind."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from spec.errors import WatchCancelReason
from spec.mvcc import (
    Applied,
    DeleteRangeRequest,
    EventType,
    MemoryKeyspace,
    PutRequest,
    Revision,
    apply_request,
)
from spec.watch import (
    WatchCreateRequest,
    WatchIds,
    WatchResponse,
    assign_watch_id,
    cancel,
    catch_up,
    create_watcher,
    fall_behind,
    fragment,
    notify,
    progress,
    progress_all,
    progress_tick,
)


def store_with(*requests: Any) -> MemoryKeyspace:
    store = MemoryKeyspace()
    for request in requests:
        outcome = apply_request(store, request)
        assert isinstance(outcome, Applied)
        store.apply(outcome.changes)
    return store


def test_refusals_are_created_and_canceled() -> None:
    store = store_with(PutRequest(key=b"a"))
    negative, watcher, _ = create_watcher(
        store, WatchCreateRequest(key=b"a", start_revision=Revision(-1)), WatchIds()
    )
    assert watcher is None
    assert (negative.created, negative.canceled, negative.watch_id) == (True, True, -1)
    assert negative.cancel_reason == "etcdserver: mvcc: required revision has been compacted"
    empty, watcher, _ = create_watcher(
        store, WatchCreateRequest(key=b"b", range_end=b"a"), WatchIds()
    )
    assert watcher is None and empty.cancel_reason == WatchCancelReason.RANGE_EMPTY.value
    taken = WatchIds(frozenset({3}), 0)
    duplicate, watcher, _ = create_watcher(store, WatchCreateRequest(key=b"a", watch_id=3), taken)
    assert (
        watcher is None
        and duplicate.cancel_reason == "mvcc: duplicate watch ID provided on the WatchStream"
    )


def test_automatic_ids_skip_used_ones() -> None:
    ids = WatchIds(frozenset({0, 1, 3}), 0)
    first = assign_watch_id(0, ids)
    assert not isinstance(first, WatchCancelReason) and first[0] == 2
    second = assign_watch_id(0, first[1])
    assert not isinstance(second, WatchCancelReason) and second[0] == 4
    after_cancel = second[1].released(2)
    third = assign_watch_id(0, after_cancel)
    assert not isinstance(third, WatchCancelReason) and third[0] == 5  # no reuse of 2
    again = assign_watch_id(2, after_cancel)
    assert not isinstance(again, WatchCancelReason) and again[0] == 2


def test_empty_key_watches_everything_from_zero_byte_and_start_zero_means_next() -> None:
    store = store_with(PutRequest(key=b"a"))
    response, watcher, _ = create_watcher(store, WatchCreateRequest(range_end=b"\x00"), WatchIds())
    assert response == WatchResponse(response.header, 0, created=True)
    assert watcher is not None and watcher.synced and watcher.next_revision == 3
    assert watcher.watches(b"\x00") and watcher.watches(b"\xff\xff")


def test_catch_up_batches_revisions_and_then_syncs() -> None:
    store = store_with(
        *(PutRequest(key=b"k%d" % number) for number in range(5)), DeleteRangeRequest(key=b"k0")
    )
    _, watcher, _ = create_watcher(
        store, WatchCreateRequest(key=b"k", range_end=b"l", start_revision=Revision(2)), WatchIds()
    )
    assert watcher is not None and not watcher.synced
    first, watcher = catch_up(store, watcher, batch_revisions_max=4)
    assert first is not None and [event.kv.mod_revision for event in first.events] == [2, 3, 4, 5]
    assert first.header.revision == 7
    assert watcher is not None and not watcher.synced and watcher.next_revision == 6
    second, watcher = catch_up(store, watcher, batch_revisions_max=4)
    assert second is not None and [event.type for event in second.events] == [
        EventType.PUT,
        EventType.DELETE,
    ]
    assert watcher is not None and watcher.synced and watcher.next_revision == 8


def test_progress_and_cancel() -> None:
    store = store_with(PutRequest(key=b"a"))
    _, synced, _ = create_watcher(store, WatchCreateRequest(key=b"a"), WatchIds())
    _, behind, _ = create_watcher(
        store, WatchCreateRequest(key=b"a", start_revision=Revision(2), watch_id=7), WatchIds()
    )
    assert synced is not None and behind is not None
    assert progress(store, synced) == WatchResponse(
        WatchResponse().header.__class__(revision=Revision(2)), 0
    )
    assert progress(store, behind) is None
    assert progress_all(store, [synced, behind]) is None
    everyone = progress_all(store, [synced])
    assert everyone is not None and everyone.watch_id == -1
    assert cancel(7, [synced, behind]) == WatchResponse(watch_id=7, canceled=True)
    assert cancel(8, [synced, behind]) is None


def test_notify_skips_revisions_before_the_start() -> None:
    store = store_with(PutRequest(key=b"a"))
    _, watcher, _ = create_watcher(
        store, WatchCreateRequest(key=b"a", start_revision=Revision(4)), WatchIds()
    )
    assert watcher is not None and watcher.synced
    outcome = apply_request(store, PutRequest(key=b"a"))
    assert isinstance(outcome, Applied)
    store.apply(outcome.changes)
    assert notify(store, watcher, Revision(3), outcome.events) == (None, watcher)


def test_fragment_splits_big_responses_keeping_one_event_at_least() -> None:
    store = store_with(*(PutRequest(key=b"k%d" % number, value=b"x" * 10) for number in range(5)))
    _, watcher, _ = create_watcher(
        store, WatchCreateRequest(key=b"k", range_end=b"l", start_revision=Revision(2)), WatchIds()
    )
    assert watcher is not None
    whole, _ = catch_up(store, watcher)
    assert whole is not None and len(whole.events) == 5

    def size(response: WatchResponse) -> int:
        return 10 * len(response.events)

    pieces = fragment(whole, size, size_bytes_max=25)
    assert [len(piece.events) for piece in pieces] == [2, 2, 1]
    assert [piece.fragment for piece in pieces] == [True, True, False]
    assert tuple(event for piece in pieces for event in piece.events) == whole.events
    assert fragment(whole, size, size_bytes_max=51) == (whole,)
    assert [len(piece.events) for piece in fragment(whole, size, size_bytes_max=50)] == [4, 1]
    assert [len(piece.events) for piece in fragment(whole, size, size_bytes_max=5)] == [
        1,
        1,
        1,
        1,
        1,
    ]


def test_progress_ticks_only_for_quiet_watches_that_asked() -> None:
    store = store_with(PutRequest(key=b"a"))
    request = WatchCreateRequest(key=b"a", progress_notify=True)
    _, watcher, _ = create_watcher(store, request, WatchIds())
    _, silent, _ = create_watcher(store, WatchCreateRequest(key=b"a"), WatchIds())
    assert watcher is not None and silent is not None
    tick, watcher = progress_tick(store, watcher)
    assert tick is not None and tick.header.revision == 2 and tick.events == ()
    assert progress_tick(store, silent) == (None, silent)
    outcome = apply_request(store, PutRequest(key=b"a"))
    assert isinstance(outcome, Applied)
    store.apply(outcome.changes)
    sent, watcher = notify(store, watcher, Revision(3), outcome.events)
    assert sent is not None and not watcher.quiet_since_tick
    skipped, watcher = progress_tick(store, watcher)
    assert skipped is None and watcher.quiet_since_tick  # events went out since the last tick
    again, watcher = progress_tick(store, watcher)
    assert again is not None and again.header.revision == 3


@given(
    st.lists(
        st.tuples(st.sampled_from([b"a", b"b", b"c"]), st.booleans(), st.booleans(), st.booleans()),
        max_size=30,
    )
)
def test_a_watcher_that_falls_behind_gets_the_same_events_as_one_that_never_does(
    steps: list[tuple[bytes, bool, bool, bool]],
) -> None:
    """Rule 7: falling behind at any write and catching up at any later point loses, repeats
    and reorders nothing (compared with a watcher notified of every write)."""
    store = MemoryKeyspace()
    request = WatchCreateRequest(key=b"a", range_end=b"c", prev_kv=True)
    _, steady, _ = create_watcher(store, request, WatchIds())
    _, slow, _ = create_watcher(store, request, WatchIds())
    assert steady is not None and slow is not None
    expected: list[Any] = []
    received: list[Any] = []

    def catch_up_once() -> None:
        nonlocal slow
        assert slow is not None
        response, slow = catch_up(store, slow, batch_revisions_max=2)
        if response is not None:
            received.extend(response.events)

    for key, delete, stream_full, reads_now in steps:
        outcome = apply_request(store, DeleteRangeRequest(key=key) if delete else PutRequest(key=key))
        if not isinstance(outcome, Applied) or not outcome.events:
            continue
        store.apply(outcome.changes)
        revision = outcome.events[-1].kv.mod_revision
        sent, steady = notify(store, steady, revision, outcome.events)
        expected.extend(sent.events if sent else ())
        assert slow is not None
        if slow.synced and stream_full:
            slow = fall_behind(slow)
        elif slow.synced:
            sent, slow = notify(store, slow, revision, outcome.events)
            received.extend(sent.events if sent else ())
        elif reads_now:
            catch_up_once()
    while slow is not None and not slow.synced:
        catch_up_once()
    assert received == expected
