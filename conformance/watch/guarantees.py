"""The documented watch guarantees, each a pure check of one recording against the reference.

Every function returns the violations it found (empty: the guarantee held) and says which
documented guarantee it enforces; the labels W-1 .. W-11 are those of the conformance notes
(§2), taken from etcd's `learning/api_guarantees.md` and `learning/api.md`.
"""

from __future__ import annotations

from conformance.watch.recording import EventRecord, WatchRecording, WatchResponseRecord
from conformance.watch.reference import ReferenceHistory, key_in_range, passes_filters


def describe(event: EventRecord) -> str:
    return f"{event.type} {event.key!r}@{event.revision}"


def first_expected_revision(recording: WatchRecording) -> int:
    """start_revision is inclusive; without one, the watch starts after the revision in the
    header of its created response (W-8)."""
    if recording.start_revision > 0:
        return recording.start_revision
    created = next((response for response in recording.responses if response.created), None)
    return 0 if created is None else created.header_revision + 1


def check_created_before_events(recording: WatchRecording) -> list[str]:
    """The created response comes before any event of the watch (etcd buffers events for a
    watch id until its created response has been sent; wire notes §3.7)."""
    for index, response in enumerate(recording.responses):
        if response.created:
            return (
                []
                if index == 0 or not any(r.events for r in recording.responses[:index])
                else [f"{recording.name}: events arrived before the created response"]
            )
        if response.events:
            return [f"{recording.name}: event {describe(response.events[0])} before created"]
    return [f"{recording.name}: no created response"]


def check_ordered(recording: WatchRecording) -> list[str]:
    """W-1 Ordered: events are ordered by revision; an event never follows a later one."""
    violations = []
    previous: EventRecord | None = None
    for event in recording.events():
        if previous is not None and event.revision < previous.revision:
            violations.append(
                f"{recording.name}: {describe(event)} arrived after {describe(previous)}"
            )
        previous = event
    return violations


def check_unique(recording: WatchRecording) -> list[str]:
    """W-2 Unique: no event is delivered twice (no repeated key at one revision)."""
    seen: set[tuple[int, bytes]] = set()
    violations = []
    for event in recording.events():
        identity = (event.revision, event.key)
        if identity in seen:
            violations.append(f"{recording.name}: {describe(event)} delivered twice")
        seen.add(identity)
    return violations


def check_filters(recording: WatchRecording) -> list[str]:
    """W-10 Filters: NOPUT drops PUT events and NODELETE drops DELETE events, on the server;
    and every event is inside the watched key range."""
    violations = []
    for event in recording.events():
        if not passes_filters(event, recording.filters):
            violations.append(
                f"{recording.name}: {describe(event)} passed filters {recording.filters}"
            )
        if not key_in_range(event.key, recording.key, recording.range_end):
            violations.append(f"{recording.name}: {describe(event)} outside the watched range")
    return violations


def check_atomic(recording: WatchRecording, reference: ReferenceHistory) -> list[str]:
    """W-4 Atomic: the events of one revision arrive together in one response, never split
    across responses (unless the watch asked for fragments)."""
    violations = []
    last_revision_of_previous = None
    for response in recording.responses:
        if not response.events:
            continue
        if response.events[0].revision == last_revision_of_previous and not response.fragment:
            violations.append(
                f"{recording.name}: revision {last_revision_of_previous} split across responses"
            )
        for revision in sorted({event.revision for event in response.events}):
            expected = [
                event
                for event in reference.at_revision(revision)
                if key_in_range(event.key, recording.key, recording.range_end)
                and passes_filters(event, recording.filters)
            ]
            received = [event for event in response.events if event.revision == revision]
            if reference.first_revision <= revision <= reference.last_revision and len(
                received
            ) != len(expected):
                violations.append(
                    f"{recording.name}: revision {revision} has {len(expected)} matching events "
                    f"but the response carried {len(received)}"
                )
        last_revision_of_previous = response.events[-1].revision
    return violations


def strip_previous(event: EventRecord) -> EventRecord:
    return EventRecord(event.type, event.key_value, None)


def check_reliable(recording: WatchRecording, reference: ReferenceHistory) -> list[str]:
    """W-3 Reliable (and W-1 within a txn): between the watch's first revision and the last
    revision it is known to be complete up to, it received exactly the reference's matching
    events, in the same order, with the same key-value fields."""
    first = max(first_expected_revision(recording), reference.first_revision)
    last = min(recording.last_revision(), reference.last_revision)
    if first == 0 or last < first:
        return []
    expected = reference.events_in(
        recording.key, recording.range_end, first, last, recording.filters
    )
    received = [
        strip_previous(event) for event in recording.events() if first <= event.revision <= last
    ]
    if received == expected:
        return []
    expected_set, received_set = set(expected), set(received)
    missing = [describe(event) for event in expected if event not in received_set]
    extra = [describe(event) for event in received if event not in expected_set]
    detail = []
    if missing:
        detail.append(f"missing {missing[:5]}")
    if extra:
        detail.append(f"unexpected or altered {extra[:5]}")
    if not detail:
        detail.append("same events in a different order")
    return [f"{recording.name}: revisions {first}..{last}: " + ", ".join(detail)]


def check_previous_key_values(recording: WatchRecording, reference: ReferenceHistory) -> list[str]:
    """W-10 prev_kv: with prev_kv, each event carries the key as of the revision just before
    it; it may only be missing when there was no previous value (or it was compacted)."""
    if not recording.prev_kv:
        return []
    violations = []
    for event in recording.events():
        if event.revision <= reference.first_revision:
            continue
        expected = reference.key_before(event.key, event.revision)
        if event.previous is not None and event.previous != expected:
            violations.append(
                f"{recording.name}: {describe(event)} prev_kv {event.previous} != {expected}"
            )
        if event.previous is None and expected is not None:
            violations.append(f"{recording.name}: {describe(event)} lacks prev_kv {expected}")
    return violations


def check_progress(recording: WatchRecording) -> list[str]:
    """W-6 Bookmarkable, for the watch's own progress notifications (progress_notify): a
    notification at revision R means every event up to R was already delivered (no event at or
    below R follows it), and progress never goes back."""
    return progress_violations(
        recording.name,
        [
            response
            for response in recording.responses
            if response.events or (response.is_progress and response.watch_id == recording.watch_id)
        ],
    )


def check_stream_progress(recording: WatchRecording) -> list[str]:
    """W-6 Bookmarkable, for answers to a stream-wide progress request (watch id -1). etcd 3.4
    answers at once with the current revision even while a watch is still catching up, so this
    fails against 3.4 by a documented bug (etcd#15220, fixed in 3.5): a known deviation there."""
    return progress_violations(
        recording.name + " (stream-wide progress)",
        [
            response
            for response in recording.responses
            if response.events or (response.is_progress and response.watch_id == -1)
        ],
    )


def progress_violations(name: str, responses: list[WatchResponseRecord]) -> list[str]:
    violations = []
    highest_progress = 0
    highest_event = 0
    for response in responses:
        if response.is_progress:
            if response.header_revision < highest_progress:
                violations.append(
                    f"{name}: progress went back from {highest_progress} to {response.header_revision}"
                )
            if response.header_revision < highest_event:
                violations.append(
                    f"{name}: progress {response.header_revision} below delivered event "
                    f"revision {highest_event}"
                )
            highest_progress = max(highest_progress, response.header_revision)
        for event in response.events:
            if event.revision <= highest_progress:
                violations.append(f"{name}: {describe(event)} after progress at {highest_progress}")
            highest_event = max(highest_event, event.revision)
    return violations


def check_resumed(
    first: WatchRecording, resumed: WatchRecording, reference: ReferenceHistory
) -> list[str]:
    """W-5 Resumable: a watch reopened at (last revision received + 1) continues with the very
    next matching event: together the two watches miss nothing and repeat nothing."""
    violations = []
    if resumed.start_revision != first.last_revision() + 1:
        violations.append(
            f"{resumed.name}: resumed at {resumed.start_revision}, not after {first.last_revision()}"
        )
    last = min(resumed.last_revision(), reference.last_revision)
    start = max(first_expected_revision(first), reference.first_revision)
    expected = reference.events_in(first.key, first.range_end, start, last, first.filters)
    combined = [
        strip_previous(event)
        for event in first.events() + resumed.events()
        if start <= event.revision <= last
    ]
    if combined != expected:
        violations.append(
            f"{resumed.name}: the first and resumed watches together do not replay revisions "
            f"{start}..{last} exactly ({len(combined)} events, {len(expected)} expected)"
        )
    return violations


def check_txn_order(recording: WatchRecording, txn_orders: dict[int, list[bytes]]) -> list[str]:
    """W-1 Ordered, within a txn: the events of one txn come in the order of the txn's
    operations (`txn_orders`: revision -> the keys the txn put, in request order)."""
    violations = []
    for revision, keys in txn_orders.items():
        received = [event.key for event in recording.events() if event.revision == revision]
        expected = [key for key in keys if key in received]
        if received and received != expected:
            violations.append(
                f"{recording.name}: txn at revision {revision} put {keys}, events came as {received}"
            )
    return violations


def check_compaction_cancel(recording: WatchRecording, compacted_revision: int) -> list[str]:
    """W-9 Compaction: a watch from a compacted revision is created, then cancelled with
    compact_revision set to the compaction revision, and delivers no events."""
    violations = check_created_before_events(recording)
    cancels = [response for response in recording.responses if response.canceled]
    if not cancels:
        return [
            *violations,
            f"{recording.name}: not cancelled after compaction at {compacted_revision}",
        ]
    if cancels[0].compact_revision != compacted_revision:
        violations.append(
            f"{recording.name}: cancelled with compact_revision {cancels[0].compact_revision}, "
            f"expected {compacted_revision}"
        )
    if recording.events():
        violations.append(f"{recording.name}: delivered events from a compacted revision")
    return violations


def check_all(recording: WatchRecording, reference: ReferenceHistory) -> dict[str, list[str]]:
    """Every per-watch guarantee, by name."""
    return {
        "created before events": check_created_before_events(recording),
        "ordered": check_ordered(recording),
        "unique": check_unique(recording),
        "filters": check_filters(recording),
        "atomic": check_atomic(recording, reference),
        "reliable": check_reliable(recording, reference),
        "prev_kv": check_previous_key_values(recording, reference),
        "progress": check_progress(recording),
    }
