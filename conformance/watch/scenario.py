"""The live watch scenario: watches of every kind around a small seeded workload, then checks.

Keys live under a prefix unique to the run, so other traffic on the server does not disturb
the checks (the reference watch sees it, and the range filters leave it out). The workload
includes multi-key transactions and range deletes so that one revision carries several events
(atomicity), deletes (filters, prev_kv) and re-creations (create revision, version).

After the checks, the scenario compacts the server at a revision inside the workload and
checks that a watch from before it is cancelled (W-9). Compaction destroys history on the
target, which is why it comes last and only in the profiles that include it.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from conformance.client import EtcdClient
from conformance.watch import guarantees
from conformance.watch.recording import Watcher, WatchRecording
from conformance.watch.reference import ReferenceHistory, ReferenceUnavailable, collect_reference
from etcdpb.etcdserverpb import rpc_pb2

DRAIN_TIMEOUT_SECONDS = 10.0


@dataclass
class WatchScenarioResult:
    violations: dict[str, list[str]] = field(default_factory=dict)  # guarantee -> messages
    recordings: list[WatchRecording] = field(default_factory=list)
    reference: ReferenceHistory | None = None
    workload_revisions: tuple[int, int] = (0, 0)

    def add(self, guarantee: str, messages: list[str]) -> None:
        self.violations.setdefault(guarantee, []).extend(messages)


def prefix_end(prefix: bytes) -> bytes:
    """The range_end that makes [prefix, range_end) the keys starting with `prefix`."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


def run_workload(
    client: EtcdClient, prefix: bytes, seed: int, operation_count: int
) -> dict[int, list[bytes]]:
    """Puts, deletes, range deletes and multi-put txns over six keys, with unique values.
    Returns, for each txn, its revision and the keys it put in request order."""
    txn_orders: dict[int, list[bytes]] = {}
    draw = random.Random(seed)
    keys = [prefix + f"k{index}".encode() for index in range(6)]
    for number in range(operation_count):
        choice = draw.random()
        key = draw.choice(keys)
        value = f"v{seed}-{number}".encode()
        if choice < 0.55:
            client.put(rpc_pb2.PutRequest(key=key, value=value))
        elif choice < 0.7:
            client.delete_range(rpc_pb2.DeleteRangeRequest(key=key))
        elif choice < 0.8:
            first = draw.choice(keys[:3])
            client.delete_range(rpc_pb2.DeleteRangeRequest(key=first, range_end=keys[-1]))
        else:
            chosen = draw.sample(keys, 3)
            response = client.txn(
                rpc_pb2.TxnRequest(
                    success=[
                        rpc_pb2.RequestOp(
                            request_put=rpc_pb2.PutRequest(
                                key=target, value=value + bytes([65 + i])
                            )
                        )
                        for i, target in enumerate(chosen)
                    ]
                )
            )
            txn_orders[response.header.revision] = chosen
    return txn_orders


def current_revision(client: EtcdClient) -> int:
    return client.range(rpc_pb2.RangeRequest(key=b"\x00", count_only=True)).header.revision


def run_watch_scenario(
    client: EtcdClient,
    run_prefix: bytes,
    seed: int = 1,
    operation_count: int = 60,
    progress_notify_seconds: float | None = None,
) -> WatchScenarioResult:
    """Run the scenario and check every watch. With `progress_notify_seconds` (the server's
    progress-notify interval, when known), the progress_notify watch must also receive a
    notification of its own at the final revision within a few intervals."""
    result = WatchScenarioResult()
    prefix = run_prefix + b"watch/"
    end = prefix_end(prefix)
    start_revision = current_revision(client)
    specifications = [
        WatchRecording("prefix with prev_kv", prefix, end, 0, prev_kv=True),
        WatchRecording("prefix without PUT", prefix, end, 0, filters=("NOPUT",)),
        WatchRecording("prefix without DELETE", prefix, end, 0, filters=("NODELETE",)),
        WatchRecording("one key", prefix + b"k1", b"", 0),
        WatchRecording("progress notify", prefix, end, 0, progress_notify=True),
        WatchRecording("from explicit revision", prefix, end, start_revision + 1, prev_kv=True),
    ]
    watchers = [Watcher(client, recording) for recording in specifications]
    resumable = Watcher(
        client, WatchRecording("resumable (first half)", prefix, end, start_revision + 1)
    )
    try:
        for watcher in [*watchers, resumable]:
            watcher.wait_until(lambda recording: bool(recording.responses), DRAIN_TIMEOUT_SECONDS)
        txn_orders = run_workload(client, prefix, seed, operation_count // 2)
        middle = current_revision(client)
        resumable.wait_until(
            lambda recording: recording.last_revision() >= middle, DRAIN_TIMEOUT_SECONDS
        )
        resumable.close()
        resumed_recording = WatchRecording(
            "resumable (resumed)", prefix, end, resumable.recording.last_revision() + 1
        )
        resumed = Watcher(client, resumed_recording)
        watchers.append(resumed)
        for watcher in watchers:
            watcher.stream.request_progress()
        txn_orders |= run_workload(client, prefix, seed + 1, operation_count - operation_count // 2)
        # Sentinels: a put then a delete of one key, so that every watch, whatever its filter,
        # sees an event at (or one before) the final revision and can be known complete.
        sentinel = prefix + b"k1"
        client.put(rpc_pb2.PutRequest(key=sentinel, value=b"sentinel"))
        client.delete_range(rpc_pb2.DeleteRangeRequest(key=sentinel))
        final = current_revision(client)
        result.workload_revisions = (start_revision + 1, final)
        for watcher in watchers:
            watcher.stream.request_progress()
            watcher.wait_until(
                lambda recording: recording.last_revision() >= final - 1, DRAIN_TIMEOUT_SECONDS
            )
            watcher.stream.request_progress()
            watcher.drain(wait_seconds=0.2)
        if progress_notify_seconds is not None:
            progress_watcher = watchers[4]
            assert progress_watcher.recording.progress_notify
            notified = progress_watcher.wait_until(
                lambda recording: any(
                    response.is_progress
                    and response.watch_id == recording.watch_id
                    and response.header_revision >= final
                    for response in recording.responses
                ),
                max(5.0, 20 * progress_notify_seconds),
            )
            if not notified:
                result.add(
                    "progress",
                    [f"progress notify: no notification at revision {final} for the watch"],
                )
    finally:
        for watcher in watchers:
            watcher.close()
    try:
        reference, reference_recording = collect_reference(client, final)
    except ReferenceUnavailable:
        # The server's history before this run was compacted: the reference starts where the
        # scenario did (its keys did not exist before, so nothing is lost for the checks).
        reference, reference_recording = collect_reference(
            client, final, start_revision=start_revision
        )
    result.reference = reference
    result.recordings = [reference_recording, resumable.recording, *(w.recording for w in watchers)]
    for recording in result.recordings:
        if recording.last_revision() < final - 1 and recording is not resumable.recording:
            result.add(
                "reliable",
                [f"{recording.name}: complete only up to {recording.last_revision()} of {final}"],
            )
        for guarantee, messages in guarantees.check_all(recording, reference).items():
            result.add(guarantee, messages)
        result.add("progress (stream-wide request)", guarantees.check_stream_progress(recording))
        result.add("txn order", guarantees.check_txn_order(recording, txn_orders))
    result.add(
        "resumable", guarantees.check_resumed(resumable.recording, resumed_recording, reference)
    )
    return result


def run_compaction_scenario(
    client: EtcdClient, compact_at: int
) -> tuple[list[str], WatchRecording]:
    """Compact at `compact_at`, then watch from the revision before it: W-9."""
    client.compact(
        rpc_pb2.CompactionRequest(revision=compact_at, physical=True), timeout_seconds=10
    )
    recording = WatchRecording("from a compacted revision", b"\x00", b"\x00", compact_at - 1)
    watcher = Watcher(client, recording)
    try:
        watcher.wait_until(
            lambda current: any(response.canceled for response in current.responses), 5.0
        )
        time.sleep(0.1)
        watcher.drain()
    finally:
        watcher.close()
    return guarantees.check_compaction_cancel(recording, compact_at), recording
