"""Check 1, live: a seeded single-client workload sent to the target and to the expected side,
compared response by response, field by field.

Expected results come from `oracle.ExpectedStore`: `models.kv.KeyValueModel` (the full-history
oracle for `spec.mvcc`) for KV, `spec.lease` and `spec.watch` checked against that model for
leases and watches, and expected errors from `spec.errors`: the server's gRPC code and
description must equal the expected error byte for byte. Headers are compared by revision
only (cluster_id, member_id and raft_term are the server's). The run stops at the first
mismatch, since the expected side and the server disagree on the state from then on.

What is compared loosely, and why (`reconcile`, and the wire conversions in `wire.py`):
* `LeaseTimeToLiveResponse.TTL` (the remaining seconds) depends on the server's clock. The
  expected side answers the granted TTL; the server's answer passes when
  `granted - (ceil(s) + 1) <= TTL <= granted`, where s is the seconds from sending the grant
  (or the last successful grant of that id) to receiving the answer: the server cannot have
  counted more time than that, truncating to whole seconds costs at most one more, and one
  second is allowed for the two clocks' rates. TTLs are 10 minutes or more, so no lease
  expires during a run.
* `LeaseTimeToLiveResponse.keys` are compared as a set (etcd lists them in Go map order).
* `LeaseLeasesResponse.leases` are compared as a set of the run's own ids (etcd sorts them by
  expiry on the leader, arbitrarily on followers; other leases on the server are not the run's).
* A watch step opens a new stream, creates the watch, and collects what arrives until the
  expected number of events (or a cancel) has come, then for a short quiet time more; all of
  it is compared, response by response.

It needs exclusive use of the target while it runs (revisions are compared exactly), and its
compactions compact the target's history. Its leases (ids of its own) are revoked at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import attrs

from conformance.api_semantics.generator import RequestGenerator
from conformance.api_semantics.oracle import (
    ApiRequest,
    ExpectedStore,
    LeaseLeasesRequest,
    WatchResponses,
)
from conformance.api_semantics.wire import RevisionShift
from conformance.client import EtcdClient, RequestFailed
from etcdpb.etcdserverpb import rpc_pb2
from spec.errors import EtcdError, error_for_message
from spec.lease import (
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    LeaseTimeToLiveRequest,
)
from spec.mvcc import (
    CompactionRequest,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    TxnRequest,
)
from spec.watch import WatchCreateRequest

Answer = object  # a spec response, an EtcdError, or a description of an unknown error
VECTOR_FORMAT_KV = "etcdref-kv-vectors/1"
VECTOR_FORMAT_API = "etcdref-api-vectors/1"
WATCH_WAIT_SECONDS = 3.0  # at most, for the expected events of one watch step
WATCH_QUIET_SECONDS_AFTER_EVENTS = 0.05  # then listen this long for anything unexpected
WATCH_QUIET_SECONDS_WITHOUT_EVENTS = 0.2  # etcd serves unsynced watchers every 100 ms
WatchAwaited = tuple[int, int]  # (responses, events) a watch step waits for


@dataclass
class Step:
    number: int
    request: ApiRequest
    expected: Answer
    actual: Answer
    actual_data: Any = None  # the actual answer as data, tolerated differences taken out

    @property
    def agrees(self) -> bool:
        return bool(as_data(self.expected) == self.actual_data)


@dataclass
class SemanticsResult:
    steps: list[Step] = field(default_factory=list)
    mismatch: Step | None = None
    vector_format: str = VECTOR_FORMAT_KV
    # Steps whose difference a documented etcd bug explains exactly (the run went on: only
    # read-only watch steps qualify), one message each.
    compacted_delete_dropped: list[str] = field(default_factory=list)

    def violations(self) -> list[str]:
        if self.mismatch is None:
            return []
        step = self.mismatch
        differences = list(
            differences_between(as_data(step.expected), step.actual_data, "response")
        )
        return [
            f"step {step.number}: {type(step.request).__name__} {as_data(step.request)}: "
            + "; ".join(differences[:6])
        ]


def as_data(value: object) -> Any:
    """A response, request or error as plain data for diffs and vectors."""
    if isinstance(value, EtcdError):
        return {"error": value.message, "code": value.grpc_code.name}
    if attrs.has(type(value)):
        data = {"type": type(value).__name__}
        for attribute in attrs.fields(type(value)):  # type: ignore[arg-type]
            data[attribute.name] = as_data(getattr(value, attribute.name))
        return data
    if isinstance(value, tuple | list):
        return [as_data(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if hasattr(value, "name") and hasattr(value, "value"):
        return value.name
    return value


def differences_between(expected: Any, actual: Any, path: str) -> Iterator[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for name in sorted(set(expected) | set(actual)):
            yield from differences_between(expected.get(name), actual.get(name), f"{path}.{name}")
    elif isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            yield from differences_between(left, right, f"{path}[{index}]")
    elif expected != actual:
        yield f"{path}: expected {expected!r}, got {actual!r}"


@dataclass
class Session:
    """One run against one target: the revision shift, every lease id the run asked to grant,
    and when the last successful grant of each was sent (for the TTL tolerance)."""

    client: EtcdClient
    shift: RevisionShift
    lease_ids: set[int] = field(default_factory=set)
    grant_sent_seconds: dict[int, float] = field(default_factory=dict)

    @staticmethod
    def at_current_revision(client: EtcdClient) -> Session:
        """Model revision 1 is the target's revision now (its store may not be empty)."""
        start = client.range(rpc_pb2.RangeRequest(key=b"\x00", count_only=True)).header.revision
        return Session(client, RevisionShift(offset=start - 1))


def send(client: EtcdClient, shift: RevisionShift, request: ApiRequest) -> Answer:
    """Send one request (no watch steps: see `send_request`) with a given revision shift."""
    return send_request(Session(client, shift), request)


def send_request(session: Session, request: ApiRequest, awaited: WatchAwaited = (1, 0)) -> Answer:
    """Send one request to the target and translate its answer into the model's terms.
    `awaited` tells a watch step how many responses and events to wait for."""
    client, shift = session.client, session.shift
    try:
        match request:
            case RangeRequest():
                return shift.range_response(client.range(shift.range_request(request)))
            case PutRequest():
                return shift.put_response(client.put(shift.put_request(request)))
            case DeleteRangeRequest():
                return shift.delete_response(client.delete_range(shift.delete_request(request)))
            case TxnRequest():
                return shift.txn_response(client.txn(shift.txn_request(request)))
            case CompactionRequest():
                return shift.compaction_response(
                    client.compact(shift.compaction_request(request), timeout_seconds=10)
                )
            case LeaseGrantRequest():
                session.lease_ids.add(request.ID)
                sent = time.monotonic()
                granted = client.lease_grant(shift.lease_grant_request(request))
                session.grant_sent_seconds[request.ID] = sent
                return shift.lease_grant_response(granted)
            case LeaseRevokeRequest():
                revoked = client.lease_revoke(rpc_pb2.LeaseRevokeRequest(ID=request.ID))
                return shift.lease_revoke_response(revoked)
            case LeaseKeepAliveRequest():
                return shift.lease_keep_alive_response(client.lease_keep_alive_once(request.ID))
            case LeaseTimeToLiveRequest():
                message = rpc_pb2.LeaseTimeToLiveRequest(ID=request.ID, keys=request.keys)
                return shift.lease_time_to_live_response(client.lease_time_to_live(message))
            case LeaseLeasesRequest():
                return shift.lease_leases_response(client.lease_leases(), session.lease_ids)
            case WatchCreateRequest():
                return watch_once(session, request, awaited)
    except RequestFailed as failure:
        if failure.unsupported:
            raise
        known = error_for_message(failure.details)
        if known is not None and known.grpc_code.value == failure.code.value[0]:
            return known
        return {"error": failure.details, "code": failure.code.name}
    raise AssertionError(request)


def watch_once(session: Session, request: WatchCreateRequest, awaited: WatchAwaited) -> Answer:
    """Create one watch on a new stream; collect its responses until as many responses and
    events as expected (or a cancel) have come, then for a quiet time more, so that extra
    responses are seen too (longer when only the created response was expected)."""
    responses_awaited, events_awaited = awaited
    received: list[rpc_pb2.WatchResponse] = []
    with session.client.open_watch_stream() as stream:
        stream.create(session.shift.watch_create_request(request))
        deadline = time.monotonic() + WATCH_WAIT_SECONDS
        events = 0
        while (remaining := deadline - time.monotonic()) > 0:
            message = stream.receive(remaining)
            if message is None:
                break
            received.append(message)
            events += len(message.events)
            if message.canceled or (
                len(received) >= responses_awaited and events >= events_awaited
            ):
                break
        quiet = (
            WATCH_QUIET_SECONDS_AFTER_EVENTS
            if responses_awaited > 1
            else WATCH_QUIET_SECONDS_WITHOUT_EVENTS
        )
        while (message := stream.receive(quiet)) is not None:
            received.append(message)
    return WatchResponses(tuple(session.shift.watch_response(message) for message in received))


def awaited_from(expected: Any) -> WatchAwaited:
    """How many responses and events an expected answer (as data) holds: what a watch step
    waits for before its quiet time."""
    if isinstance(expected, dict) and expected.get("type") == "WatchResponses":
        responses = expected["responses"]
        return len(responses), sum(len(response["events"]) for response in responses)
    return 1, 0


def reconcile(expected: Any, actual: Any, session: Session) -> Any:
    """`actual` (as data) with the differences the comparison tolerates taken out: a lease's
    remaining TTL within the seconds that passed since its grant (see the module docstring)."""
    if (
        isinstance(expected, dict)
        and isinstance(actual, dict)
        and expected.get("type") == actual.get("type") == "LeaseTimeToLiveResponse"
        and expected["TTL"] > 0
        and actual["ID"] in session.grant_sent_seconds
    ):
        elapsed = time.monotonic() - session.grant_sent_seconds[actual["ID"]]
        slack = math.ceil(elapsed) + 1
        if expected["TTL"] - slack <= actual["TTL"] <= expected["TTL"]:
            return {**actual, "TTL": expected["TTL"]}
    return actual


def without_deletes_at(expected: Any, revision: int) -> Any:
    """Expected `WatchResponses` (as data) without the DELETE events of `revision`; a response
    that had events and is left with none is not sent."""
    responses = []
    for response in expected["responses"]:
        events = [
            event
            for event in response["events"]
            if not (event["type"] == "DELETE" and event["kv"]["mod_revision"] == revision)
        ]
        if events or not response["events"]:
            responses.append({**response, "events": events})
    return {**expected, "responses": responses}


def compacted_delete_dropped(request: Any, expected: Any, actual: Any, compacted: int) -> bool:
    """Whether a watch step's difference is exactly etcd#18089 (etcd 3.4 and 3.5 before their
    2024 fixes): a watch from the compaction revision misses the DELETE events of that
    revision, whose tombstones compaction removed. All as data, in the model's revisions."""
    return (
        request.get("type") == "WatchCreateRequest"
        and compacted > 0
        and request["start_revision"] == compacted
        and actual == without_deletes_at(expected, compacted)
    )


def lease_id_base_for(prefix: bytes) -> int:
    """A lease id range of the run's own (2^24 ids from a base drawn from its key prefix), so
    its grants meet no lease already on the server."""
    return (int.from_bytes(hashlib.sha256(prefix).digest()[:3], "big") + 1) << 24


def run_semantics_comparison(
    client: EtcdClient,
    prefix: bytes,
    seed: int,
    step_count: int,
    leases_and_watches: bool = True,
) -> SemanticsResult:
    session = Session.at_current_revision(client)
    expected_store = ExpectedStore()
    generator = RequestGenerator(seed, prefix, leases_and_watches, lease_id_base_for(prefix))
    result = SemanticsResult(
        vector_format=VECTOR_FORMAT_API if leases_and_watches else VECTOR_FORMAT_KV
    )
    try:
        for number in range(step_count):
            request = generator.request(
                expected_store.current_revision,
                expected_store.compacted_revision,
                expected_store.lease_key_counts(),
            )
            expected = expected_store.answer(request)
            actual = send_request(session, request, awaited_from(as_data(expected)))
            actual_data = reconcile(as_data(expected), as_data(actual), session)
            step = Step(number, request, expected, actual, actual_data)
            result.steps.append(step)
            if step.agrees:
                continue
            compacted = expected_store.compacted_revision
            if compacted_delete_dropped(
                as_data(request), as_data(expected), actual_data, compacted
            ):
                result.compacted_delete_dropped.append(
                    f"step {number}: a watch from the compaction revision {compacted} was not "
                    f"sent the DELETE events of that revision"
                )
                continue
            result.mismatch = step
            break
    finally:
        revoke_quietly(client, expected_store.live_leases())
    return result


def revoke_quietly(client: EtcdClient, lease_ids: tuple[int, ...]) -> None:
    """Clean up the run's leases; a failure here is not the check's business."""
    for lease_id in lease_ids:
        with contextlib.suppress(RequestFailed):
            client.lease_revoke(rpc_pb2.LeaseRevokeRequest(ID=lease_id))


def write_vectors(path: Path, result: SemanticsResult, seed: int) -> None:
    """The run as replayable vectors (see `conformance/VECTORS.md`): one JSON object a line,
    each a request and the expected answer, applied in order to an empty store."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": result.vector_format, "seed": seed, "initial_revision": 1}
    lines = [json.dumps(header)]
    lines += [
        json.dumps(
            {
                "step": step.number,
                "request": as_data(step.request),
                "expected": as_data(step.expected),
            }
        )
        for step in result.steps
    ]
    path.write_text("\n".join(lines) + "\n")
