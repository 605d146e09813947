"""Check 1 for leases and watches: the expected side (spec.lease and spec.watch checked against
models/kv), the tolerated differences (a lease's remaining TTL, etcd#18089), and a server that
breaks one lease or watch field is named by the API semantics check with the field."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest

from conformance.api_semantics.comparison import (
    Session,
    as_data,
    awaited_from,
    compacted_delete_dropped,
    lease_id_base_for,
    reconcile,
    send_request,
)
from conformance.api_semantics.oracle import ApiRequest, ExpectedStore, OracleDisagreement
from conformance.api_semantics.wire import RevisionShift
from conformance.checks import (
    CHECKS,
    CheckContext,
    CheckResult,
    Outcome,
    api_semantics_known_deviations,
    run_check,
)
from conformance.client import EtcdClient
from conformance.launcher import LaunchedCluster, Server
from conformance.workload import WorkloadSettings
from spec.errors import EtcdError
from spec.lease import LeaseGrantRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest
from spec.mvcc import (
    CompactionRequest,
    DeleteRangeRequest,
    LeaseId,
    PutRequest,
    RangeRequest,
    Revision,
)
from spec.watch import WatchCreateRequest
from tests.conformance.doctored_server import Breakage, DoctoredServer

LEASE = LeaseId(0x1234)


def ttl_answer(ttl: int) -> dict[str, Any]:
    return {"type": "LeaseTimeToLiveResponse", "ID": LEASE, "TTL": ttl, "grantedTTL": 600}


def session_granted_seconds_ago(seconds: float) -> Session:
    session = Session(client=None, shift=RevisionShift(0))  # type: ignore[arg-type]
    session.grant_sent_seconds[LEASE] = time.monotonic() - seconds
    return session


@pytest.mark.parametrize(
    ("seconds_since_grant", "remaining", "tolerated"),
    [
        (0.2, 600, True),  # no time counted yet
        (0.2, 599, True),  # truncation
        (0.2, 598, True),  # one second for the clocks
        (0.2, 597, False),  # more time than has passed
        (5.5, 593, True),  # ceil(5.5) + 1 = 7 seconds
        (5.5, 592, False),
        (0.2, 601, False),  # more than granted
    ],
)
def test_remaining_ttl_is_tolerated_only_within_the_time_that_passed(
    seconds_since_grant: float, remaining: int, tolerated: bool
) -> None:
    session = session_granted_seconds_ago(seconds_since_grant)
    reconciled = reconcile(ttl_answer(600), ttl_answer(remaining), session)
    assert (reconciled == ttl_answer(600)) == tolerated


def test_remaining_ttl_of_a_lease_never_granted_by_the_run_is_compared_exactly() -> None:
    session = session_granted_seconds_ago(0.2)
    other = {**ttl_answer(599), "ID": 99}
    assert reconcile({**ttl_answer(600), "ID": 99}, other, session) == other


def watch_answer(*events: tuple[str, int]) -> dict[str, Any]:
    created = {"header": {"revision": 9}, "created": True, "events": []}
    listed = [
        {"type": kind, "kv": {"key": "k", "mod_revision": revision}} for kind, revision in events
    ]
    caught_up = [{"header": {"revision": 9}, "created": False, "events": listed}] if listed else []
    return {"type": "WatchResponses", "responses": [created, *caught_up]}


def test_etcd_18089_is_recognized_exactly() -> None:
    request = {"type": "WatchCreateRequest", "start_revision": 5}
    expected = watch_answer(("DELETE", 5), ("PUT", 6))
    assert compacted_delete_dropped(request, expected, watch_answer(("PUT", 6)), 5)
    assert compacted_delete_dropped(
        request, watch_answer(("DELETE", 5)), watch_answer(), compacted=5
    )
    # Any other difference is not this bug.
    assert not compacted_delete_dropped(request, expected, watch_answer(("DELETE", 5)), 5)
    assert not compacted_delete_dropped(request, expected, watch_answer(("PUT", 6)), 4)
    assert not compacted_delete_dropped(
        {**request, "start_revision": 4}, expected, watch_answer(("PUT", 6)), 5
    )
    put_dropped = watch_answer(("PUT", 5), ("PUT", 6))
    assert not compacted_delete_dropped(request, put_dropped, watch_answer(("PUT", 6)), 5)


@pytest.mark.parametrize(
    ("version", "known"),
    [("3.4.23", True), ("3.4.34", False), ("3.5.0", True), ("3.5.16", False), ("3.6.1", False),
     ("", False)],
)  # fmt: skip
def test_etcd_18089_is_a_known_deviation_only_for_versions_with_the_bug(
    version: str, known: bool
) -> None:
    context = CheckContext([], b"/", WorkloadSettings(), server_version=version)
    deviations = api_semantics_known_deviations(context)
    assert ("delete at the compaction revision" in deviations) == known


def test_lease_id_ranges_of_runs_differ_and_stay_positive_int64() -> None:
    bases = {lease_id_base_for(f"/run/{index}/".encode()) for index in range(1000)}
    assert len(bases) == 1000
    assert all(base > 0 and base + (1 << 24) < 1 << 63 for base in bases)


def test_expected_side_refuses_when_spec_and_model_disagree() -> None:
    """The lease answers come from spec.lease only after the model agrees: a model that
    grants another TTL (a broken oracle) stops the run instead of judging the server."""
    store = ExpectedStore()
    assert store.answer(LeaseGrantRequest(TTL=600, ID=LEASE)) is not None
    store.model.leases[LeaseId(LEASE + 1)] = 5  # the model alone believes in another lease
    with pytest.raises(OracleDisagreement):
        store.answer(LeaseGrantRequest(TTL=600, ID=LeaseId(LEASE + 1)))


def test_expected_side_answers_lease_and_watch_requests() -> None:
    store = ExpectedStore()
    requests: list[ApiRequest] = [
        LeaseGrantRequest(TTL=600, ID=LEASE),
        LeaseGrantRequest(TTL=600, ID=LEASE),
        PutRequest(key=b"/a", value=b"1", lease=LEASE),
        PutRequest(key=b"/b", value=b"2", lease=LEASE),
        LeaseTimeToLiveRequest(ID=LEASE, keys=True),
        LeaseRevokeRequest(ID=LEASE),
        LeaseRevokeRequest(ID=LEASE),
        WatchCreateRequest(key=b"/a", range_end=b"/c", start_revision=Revision(2), prev_kv=True),
    ]
    answers = [as_data(store.answer(request)) for request in requests]
    assert answers[1] == as_data(EtcdError.LEASE_EXISTS)
    assert answers[4]["keys"] == ["/a", "/b"] and answers[4]["TTL"] == 600
    assert answers[5]["header"]["revision"] == 4  # both keys deleted at one revision
    assert answers[6] == as_data(EtcdError.LEASE_NOT_FOUND)
    events = answers[7]["responses"][1]["events"]
    assert [
        (event["type"], event["kv"]["key"], event["kv"]["mod_revision"]) for event in events
    ] == [
        ("PUT", "/a", 2),
        ("PUT", "/b", 3),
        ("DELETE", "/a", 4),
        ("DELETE", "/b", 4),
    ]
    assert events[2]["prev_kv"]["value"] == "1"


@pytest.mark.parametrize(
    "server", [pytest.param("etcd", marks=pytest.mark.etcd), pytest.param("etcdref")]
)
def test_watch_from_a_compacted_delete(server: Server) -> None:
    """The reproduction of etcd#18089 (etcd PR 18457): put, put, delete, put, compact at the
    delete, watch from it. etcd 3.4.23 misses the DELETE (the suite names the bug); etcdref
    sends it, as spec.watch says."""
    prefix = f"/compacted-delete/{uuid.uuid4().hex[:8]}/".encode()
    key = prefix + b"k"
    requests: list[ApiRequest] = [
        PutRequest(key=key, value=b"2"),
        PutRequest(key=key, value=b"3"),
        DeleteRangeRequest(key=key),
        PutRequest(key=key, value=b"5"),
        CompactionRequest(revision=Revision(4), physical=True),
        WatchCreateRequest(key=key, start_revision=Revision(4)),
        RangeRequest(key=key),
    ]
    with (
        LaunchedCluster(size=1, server=server) as cluster,
        EtcdClient(cluster.endpoints[0]) as client,
    ):
        session = Session.at_current_revision(client)
        store = ExpectedStore()
        for request in requests:
            expected = as_data(store.answer(request))
            actual = as_data(send_request(session, request, awaited_from(expected)))
            if actual == expected:
                continue
            assert server == "etcd", f"{request}: expected {expected}, got {actual}"
            assert compacted_delete_dropped(as_data(request), expected, actual, 4)
            return
    assert server == "etcdref", "etcd 3.4.23 sent the DELETE at the compaction revision"


def run_api_semantics(endpoint: str) -> dict[str, CheckResult]:
    context = CheckContext(
        endpoints=[endpoint],
        prefix=f"/broken-api/{uuid.uuid4().hex[:8]}/".encode(),
        workload=WorkloadSettings(seed=1),
        server_version="3.4.23",
    )
    return {result.name: result for result in run_check(CHECKS["api semantics"], context)}


@pytest.mark.etcd
@pytest.mark.parametrize(
    ("breakage", "field"),
    [
        (Breakage(rewrite_granted_ttl=True), r"response\.grantedTTL: expected \d+, got \d+"),
        (Breakage(shorten_remaining_ttl_seconds=30), r"response\.TTL: expected (\d+), got \d+$"),
        (Breakage(hide_first_lease=True), r"response\.leases: expected \[\{'type': 'LeaseStatus'"),
        (Breakage(drop_watch_prev_kv=True), r"\.prev_kv: expected \{'type': 'KeyValue'.*got None"),
    ],
    ids=["granted TTL", "remaining TTL", "lease list", "watch prev_kv"],
)
def test_broken_lease_or_watch_field_is_named(
    etcd_cluster: LaunchedCluster, breakage: Breakage, field: str
) -> None:
    with DoctoredServer(etcd_cluster.endpoints[0], breakage) as server:
        results = run_api_semantics(server.endpoint)
    verdict = results["api semantics: responses equal the model's"]
    assert verdict.outcome == Outcome.FAILED, verdict
    assert re.search(field, verdict.messages[0]), verdict.messages[0]


@pytest.mark.etcd
def test_faithful_forwarding_passes_the_api_semantics_check(etcd_cluster: LaunchedCluster) -> None:
    with DoctoredServer(etcd_cluster.endpoints[0], Breakage()) as server:
        results = run_api_semantics(server.endpoint)
    assert {name: result.outcome for name, result in results.items()} == {
        "api semantics: responses equal the model's": Outcome.PASSED,
        "api semantics: delete at the compaction revision": Outcome.PASSED,
    }
