"""Watch: which responses a watcher receives, and when (etcd `mvcc/watchable_store.go`, `v3rpc/watch.go`).

A watcher watches a key, a range [key, range_end), or every key from `key` on
(`range_end == b"\\0"`), from a start revision (inclusive). Its life:

1. **Create.** An empty key means `b"\\0"`. A start revision of 0 means "from the next write"
   (current + 1). The answer is `created=True` with the current revision in the header; it is
   always sent before any event of the watch. Refusals are answered with `created=True,
   canceled=True` and a `cancel_reason`: a negative start revision (watch id -1, the
   compaction error's text), a range with key >= range_end (`mvcc: watcher range is empty`),
   an id already in use on the stream (`mvcc: duplicate watch ID provided on the WatchStream`).
   Watch id 0 asks the stream to choose: the lowest free id counting up from the last chosen.
   (The negative-start refusal is etcd 3.5's, from the facts file; etcd 3.4.23 was observed to
   accept a negative start and watch from the next write, see tests/spec/test_watch_against_etcd.py.)
2. **Catch up** (`unsynced` watchers, etcd's `syncWatchers`): a watcher whose start is at or
   before the current revision is first served from history. If its next revision is before the
   compaction point it gets one response with `compact_revision` set and `canceled=True` (no
   cancel reason, and header revision 0: etcd sends it without a revision) and is removed. Otherwise one response carries the events of up to
   `watch_batch_revisions_max` (1000) revisions; the header revision is the current one. When
   more remain it stays unsynced, else it becomes synced.
3. **Notify** (`synced` watchers): after each write, one response with that write's events in
   the watched range, in the order they were made, with the write's revision in the header.
4. **Filters** NOPUT and NODELETE drop events when sending; a response left with no events is not
   sent. **prev_kv** attaches the key's value at `mod_revision - 1` to each event that is not a
   creation (a PUT with version 1); if that revision is compacted, it is left out.
5. **Progress**: a synced watcher asked for progress gets a response with no events and the
   current revision; a stream-wide progress request is answered once with watch id -1. A
   watch created with `progress_notify` gets one at every progress tick (every 10 minutes by
   default) unless it was sent events since the previous tick.
6. **Fragment**: a response at or above the size limit with two or more events is split into
   several, all but the last with `fragment=True`.
7. **Slow clients**: when a stream already holds `watch_responses_queued_max` (128, etcd's
   `chanBufLen`) responses its client has not taken, a synced watcher on it is not sent the
   write: it falls behind (`fall_behind`: unsynced at its next revision, etcd's "victims") and
   catches up from history by rule 2 once the client has taken some, so memory stays bounded
   and no event is lost, repeated or reordered; a compaction in between cancels it as in rule 2.

Events come in revision order, each exactly once, in the order of changes inside a txn.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Sequence

import attrs

from spec import constants
from spec.errors import WatchCancelReason
from spec.mvcc.messages import Event, EventType, KeyValue, ResponseHeader
from spec.mvcc.outcome import event_for_record
from spec.mvcc.read import key_values_at, read_revision
from spec.mvcc.revision import Revision
from spec.mvcc.view import KeyspaceView

watch_id_automatic = 0
watch_id_none = -1


class FilterType(enum.IntEnum):
    NOPUT = 0
    NODELETE = 1


@attrs.frozen
class WatchCreateRequest:
    key: bytes = b""
    range_end: bytes = b""
    start_revision: Revision = Revision(0)
    progress_notify: bool = False
    filters: tuple[FilterType, ...] = ()
    prev_kv: bool = False
    watch_id: int = watch_id_automatic
    fragment: bool = False


@attrs.frozen
class WatchResponse:
    header: ResponseHeader = ResponseHeader()
    watch_id: int = 0
    created: bool = False
    canceled: bool = False
    compact_revision: Revision = Revision(0)
    cancel_reason: str = ""
    fragment: bool = False
    events: tuple[Event, ...] = ()


@attrs.frozen
class Watcher:
    """One watch on a stream: what it watches and the next revision it has not yet seen."""

    watch_id: int
    key: bytes
    range_end: bytes | None  # None: the single key; b"": every key from `key` on
    next_revision: Revision
    synced: bool
    filters: frozenset[FilterType] = frozenset()
    prev_kv: bool = False
    progress_notify: bool = False
    fragment: bool = False
    quiet_since_tick: bool = True  # no events sent since the last progress tick

    def watches(self, key: bytes) -> bool:
        """Whether a change of `key` concerns this watcher."""
        if self.range_end is None:
            return key == self.key
        return self.key <= key and (not self.range_end or key < self.range_end)


@attrs.frozen
class WatchIds:
    """The ids in use on one stream and where automatic assignment continues."""

    in_use: frozenset[int] = frozenset()
    next_automatic: int = 0

    def released(self, watch_id: int) -> WatchIds:
        """The ids after a watch is canceled: its id may be asked for again explicitly, but
        automatic assignment keeps counting up (etcd `watchStream.Cancel`)."""
        return WatchIds(self.in_use - {watch_id}, self.next_automatic)


def assign_watch_id(requested: int, ids: WatchIds) -> tuple[int, WatchIds] | WatchCancelReason:
    """etcd `watchStream.Watch`: id 0 takes the next free id; a used explicit id is refused."""
    if requested != watch_id_automatic:
        if requested in ids.in_use:
            return WatchCancelReason.DUPLICATE_WATCH_ID
        return requested, WatchIds(ids.in_use | {requested}, ids.next_automatic)
    candidate = ids.next_automatic
    while candidate in ids.in_use:
        candidate += 1
    return candidate, WatchIds(ids.in_use | {candidate}, candidate + 1)


def create_watcher(
    view: KeyspaceView, request: WatchCreateRequest, ids: WatchIds
) -> tuple[WatchResponse, Watcher | None, WatchIds]:
    """Answer a create request (rule 1): the created response, the watcher if accepted, the ids."""
    current = view.current_revision()
    header = ResponseHeader(revision=current)
    if request.start_revision < 0:
        reason = WatchCancelReason.COMPACTED.value
        refused = WatchResponse(
            header, watch_id_none, created=True, canceled=True, cancel_reason=reason
        )
        return refused, None, ids
    key = request.key or b"\x00"
    range_end: bytes | None = request.range_end or None
    if range_end == b"\x00":
        range_end = b""
    if range_end and key >= range_end:
        reason = WatchCancelReason.RANGE_EMPTY.value
        refused = WatchResponse(
            header, watch_id_none, created=True, canceled=True, cancel_reason=reason
        )
        return refused, None, ids
    assigned = assign_watch_id(request.watch_id, ids)
    if isinstance(assigned, WatchCancelReason):
        refused = WatchResponse(
            header, watch_id_none, created=True, canceled=True, cancel_reason=assigned.value
        )
        return refused, None, ids
    watch_id, ids = assigned
    start = request.start_revision if request.start_revision != 0 else Revision(current + 1)
    synced = start > current
    watcher = Watcher(
        watch_id=watch_id,
        key=key,
        range_end=range_end,
        next_revision=start,
        synced=synced,
        filters=frozenset(request.filters),
        prev_kv=request.prev_kv,
        progress_notify=request.progress_notify,
        fragment=request.fragment,
    )
    return WatchResponse(header, watch_id, created=True), watcher, ids


def catch_up(
    view: KeyspaceView,
    watcher: Watcher,
    batch_revisions_max: int = constants.watch_batch_revisions_max,
) -> tuple[WatchResponse | None, Watcher | None]:
    """Serve an unsynced watcher from history (rule 2): (response or None, watcher or None if removed)."""
    assert not watcher.synced, "only unsynced watchers catch up"
    current = view.current_revision()
    compacted = view.compacted_revision()
    if watcher.next_revision < compacted:
        canceled = WatchResponse(
            ResponseHeader(revision=Revision(0)),  # etcd leaves the revision unset here
            watcher.watch_id,
            canceled=True,
            compact_revision=compacted,
        )
        return canceled, None
    events: list[Event] = []
    revisions_seen = 0
    more_from: Revision | None = None
    for record in view.records_from(watcher.next_revision):
        if record.revision.main > current or not watcher.watches(record.key_value.key):
            continue
        if not events or record.revision.main > events[-1].kv.mod_revision:
            revisions_seen += 1
            if revisions_seen > batch_revisions_max:
                more_from = record.revision.main
                break
        events.append(event_for_record(record))
    if more_from is None:
        watcher = attrs.evolve(watcher, next_revision=Revision(current + 1), synced=True)
    else:
        watcher = attrs.evolve(watcher, next_revision=more_from)
    response = _response(view, watcher, current, events)
    return response, _after_send(watcher, response)


def notify(
    view: KeyspaceView, watcher: Watcher, revision: Revision, events: Sequence[Event]
) -> tuple[WatchResponse | None, Watcher]:
    """Deliver one write's events to a synced watcher (rule 3); `view` is the store after the write."""
    assert watcher.synced, "unsynced watchers catch up from history instead"
    if revision < watcher.next_revision:
        return None, watcher
    mine = [event for event in events if watcher.watches(event.kv.key)]
    watcher = attrs.evolve(watcher, next_revision=Revision(revision + 1))
    response = _response(view, watcher, revision, mine)
    return response, _after_send(watcher, response)


def fall_behind(watcher: Watcher) -> Watcher:
    """A synced watcher whose stream is full stops being notified and catches up later (rule 7).

    Its next revision is the first write it was not sent, so catching up from history delivers
    exactly what it missed (etcd `watchableStore.notify` moving a blocked watcher to victims).
    """
    assert watcher.synced, "only a synced watcher is notified, so only it can fall behind"
    return attrs.evolve(watcher, synced=False)


def _after_send(watcher: Watcher, response: WatchResponse | None) -> Watcher:
    if response is None or not watcher.quiet_since_tick:
        return watcher
    return attrs.evolve(watcher, quiet_since_tick=False)


def _response(
    view: KeyspaceView, watcher: Watcher, header_revision: Revision, events: Sequence[Event]
) -> WatchResponse | None:
    """Filter, attach prev_kv, and build the response; nothing when no event is left (rule 4)."""
    kept = [event for event in events if not _filtered(watcher.filters, event)]
    if not kept:
        return None
    if watcher.prev_kv:
        kept = [attrs.evolve(event, prev_kv=previous_key_value(view, event)) for event in kept]
    return WatchResponse(
        ResponseHeader(revision=header_revision), watcher.watch_id, events=tuple(kept)
    )


def _filtered(filters: Collection[FilterType], event: Event) -> bool:
    if event.type == EventType.PUT:
        return FilterType.NOPUT in filters
    return FilterType.NODELETE in filters


def previous_key_value(view: KeyspaceView, event: Event) -> KeyValue | None:
    """The key's value just before the event, unless it is a creation or that revision is compacted."""
    if event.type == EventType.PUT and event.kv.version == 1:
        return None
    at_revision = read_revision(view, Revision(event.kv.mod_revision - 1))
    if not isinstance(at_revision, int):
        return None
    _, key_values = key_values_at(view, event.kv.key, b"", at_revision)
    return key_values[0] if key_values else None


def progress(view: KeyspaceView, watcher: Watcher) -> WatchResponse | None:
    """A progress notification for one watcher: only when it is synced (rule 5)."""
    if not watcher.synced:
        return None
    return WatchResponse(ResponseHeader(revision=view.current_revision()), watcher.watch_id)


def progress_tick(view: KeyspaceView, watcher: Watcher) -> tuple[WatchResponse | None, Watcher]:
    """The periodic progress notification (`--experimental-watch-progress-notify-interval`, etcd
    `v3rpc/watch.go` sendLoop): a watch created with progress_notify that was sent no events
    since the previous tick gets a progress response (if synced); every tick starts quiet again."""
    if not watcher.progress_notify:
        return None, watcher
    response = progress(view, watcher) if watcher.quiet_since_tick else None
    return response, attrs.evolve(watcher, quiet_since_tick=True)


def progress_all(view: KeyspaceView, watchers: Collection[Watcher]) -> WatchResponse | None:
    """The answer to a WatchProgressRequest: watch id -1, only when every watcher is synced."""
    if not all(watcher.synced for watcher in watchers):
        return None
    return WatchResponse(ResponseHeader(revision=view.current_revision()), watch_id_none)


def cancel(watch_id: int, watchers: Collection[Watcher]) -> WatchResponse | None:
    """The answer to a cancel request: canceled for a known id, nothing for an unknown one."""
    if not any(watcher.watch_id == watch_id for watcher in watchers):
        return None
    return WatchResponse(watch_id=watch_id, canceled=True)


def fragment(
    response: WatchResponse,
    size_bytes: Callable[[WatchResponse], int],
    size_bytes_max: int = constants.watch_fragment_size_bytes,
) -> tuple[WatchResponse, ...]:
    """etcd `sendFragments`: split a big response, keeping at least one event per piece (rule 6)."""
    if size_bytes(response) < size_bytes_max or len(response.events) < 2:
        return (response,)
    pieces: list[WatchResponse] = []
    position = 0
    while position < len(response.events):
        taken: list[Event] = []
        while position < len(response.events):
            candidate = attrs.evolve(
                response, events=(*taken, response.events[position]), fragment=True
            )
            if taken and size_bytes(candidate) >= size_bytes_max:
                break
            taken.append(response.events[position])
            position += 1
        last = position == len(response.events)
        pieces.append(attrs.evolve(response, events=tuple(taken), fragment=not last))
    return tuple(pieces)
