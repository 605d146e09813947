"""Maintenance against a three-member etcdref cluster and real etcd 3.4, one script for both:
alarms (NOSPACE and CORRUPT, their appliers, `etcdctl alarm list / disarm`, Status errors),
Hash (equal on members with the same state), `etcdctl snapshot save` (the SHA-256 trailer) and
`etcdctl move-leader` (success and its errors). Member ids and endpoints are normalized; the
rest must be identical.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from conformance.launcher import LaunchedCluster
from etcdpb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.impl.api.cluster_tools import (
    etcdctl,
    leader_index,
    member_ids,
    normalize,
    sorted_lines,
)
from tests.impl.node.harness import EtcdrefCluster

pytestmark = pytest.mark.etcd

NOSPACE, CORRUPT = 1, 2
ACTIVATE, DEACTIVATE = 1, 2


def alarm(endpoint: str, action: int, member_id: int, alarm_type: int) -> str:
    with grpc.insecure_channel(endpoint) as channel:
        response = rpc_pb2_grpc.MaintenanceStub(channel).Alarm(
            rpc_pb2.AlarmRequest(action=action, memberID=member_id, alarm=alarm_type),  # type: ignore[arg-type]
            timeout=10,
        )
    members = [(item.memberID, rpc_pb2.AlarmType.Name(item.alarm)) for item in response.alarms]
    return f"alarm {action} {alarm_type}: {members} header={response.HasField('header')}"


def status_errors(endpoints: list[str]) -> str:
    lines = []
    for number, endpoint in enumerate(endpoints):
        with grpc.insecure_channel(endpoint) as channel:
            response = rpc_pb2_grpc.MaintenanceStub(channel).Status(
                rpc_pb2.StatusRequest(), timeout=5
            )
        lines += [f"member {number}: {error!r}" for error in response.errors]
    return "$ status errors\n-\n" + "\n".join(lines)


def hashes(endpoints: list[str]) -> list[int]:
    result = []
    for endpoint in endpoints:
        with grpc.insecure_channel(endpoint) as channel:
            response = rpc_pb2_grpc.MaintenanceStub(channel).Hash(rpc_pb2.HashRequest(), timeout=5)
        result.append(response.hash)
    return result


def settled_hashes(endpoints: list[str]) -> list[int]:
    """The members' hashes once they agree (followers apply a moment after the leader)."""
    deadline = time.monotonic() + 10
    values = hashes(endpoints)
    while len(set(values)) != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
        values = hashes(endpoints)
    return values


def move_leader_on(endpoint: str, target: int) -> str:
    with grpc.insecure_channel(endpoint) as channel:
        try:
            rpc_pb2_grpc.MaintenanceStub(channel).MoveLeader(
                rpc_pb2.MoveLeaderRequest(targetID=target), timeout=10
            )
        except grpc.RpcError as error:
            return f"MoveLeader: {error.code()} {error.details()}"  # type: ignore[attr-defined]
    return "MoveLeader: OK"


def snapshot(endpoint: str, directory: Path) -> str:
    path = directory / "snapshot.db"
    path.unlink(missing_ok=True)
    printed = etcdctl([endpoint], "snapshot", "save", str(path)).replace(str(path), "<file>")
    if not path.exists():
        return f"{printed}\nno file saved"
    data = path.read_bytes()
    body, trailer = data[:-32], data[-32:]
    return (
        f"{printed}\nsize % 512 = {len(data) % 512}; "
        f"trailer is sha256 of the rest: {hashlib.sha256(body).digest() == trailer}"
    )


def maintenance_script(endpoints: list[str], directory: Path) -> list[str]:
    # Index 0 is the leader, 1 the member leadership moves to, 2 the other one, on both clusters.
    lead = leader_index(endpoints)
    endpoints = [endpoints[(lead + offset) % 3] for offset in range(3)]
    ids = member_ids(endpoints)
    lead, follower = 0, 1
    leader_endpoint = endpoints[lead]
    steps: list[Callable[[], str]] = [
        lambda: etcdctl(endpoints, "put", "foo", "bar"),
        lambda: etcdctl(endpoints, "alarm", "list"),
        lambda: alarm(leader_endpoint, ACTIVATE, ids[0], NOSPACE),
        lambda: alarm(endpoints[follower], ACTIVATE, ids[0], NOSPACE),
        lambda: etcdctl(endpoints, "alarm", "list"),
        lambda: etcdctl(endpoints, "put", "a", "b"),
        lambda: etcdctl(endpoints, "txn", stdin="\nput a b\n\n\n"),
        lambda: etcdctl(endpoints, "get", "foo"),
        lambda: etcdctl(endpoints, "del", "foo"),
        lambda: status_errors(endpoints),
        lambda: alarm(leader_endpoint, ACTIVATE, ids[1], CORRUPT),
        lambda: etcdctl(endpoints, "put", "a", "b"),
        lambda: etcdctl(endpoints, "del", "a"),
        lambda: etcdctl(endpoints, "alarm", "list"),
        lambda: status_errors(endpoints),
        # etcd: clearing the last NOSPACE alarm restores the normal applier although CORRUPT is on.
        lambda: alarm(leader_endpoint, DEACTIVATE, ids[0], NOSPACE),
        lambda: alarm(leader_endpoint, DEACTIVATE, ids[0], NOSPACE),
        lambda: etcdctl(endpoints, "put", "a", "b"),
        lambda: etcdctl(endpoints, "alarm", "disarm"),
        lambda: etcdctl(endpoints, "alarm", "list"),
        lambda: etcdctl(endpoints, "put", "a", "c"),
        lambda: f"hashes agree: {len(set(settled_hashes(endpoints))) == 1}",
        lambda: etcdctl(endpoints, "move-leader", f"{ids[follower]:x}"),
        lambda: f"leader is now the target: {leader_index(endpoints) == follower}",
        lambda: etcdctl(endpoints, "move-leader", "1234"),
        lambda: etcdctl([endpoints[lead]], "move-leader", f"{ids[lead]:x}"),
        lambda: move_leader_on(endpoints[lead], ids[follower]),
        lambda: etcdctl(endpoints, "move-leader", f"{ids[follower]:x}"),
        lambda: snapshot(endpoints[lead], directory),
    ]
    transcript = []
    for step in steps:
        # etcd lists alarms in Go map order: compare those lines sorted, after normalizing.
        text = normalize(step(), endpoints, ids)
        if text.startswith(("$ etcdctl alarm", "$ status errors")):
            text = sorted_lines(text)
        transcript.append(text)
    before = settled_hashes(endpoints)
    etcdctl(endpoints, "put", "hash", "changes")
    after = settled_hashes(endpoints)
    transcript.append(f"a write changes the hash: {before[0] != after[0]}")
    return transcript


@pytest.fixture(scope="module")
def transcripts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], list[str]]]:
    with EtcdrefCluster(tmp_path_factory.mktemp("etcdref")) as ours:
        ours_text = maintenance_script(ours.endpoints, tmp_path_factory.mktemp("ours"))
    with LaunchedCluster(size=3, extra_flags=()) as etcd:
        etcd_text = maintenance_script(etcd.endpoints, tmp_path_factory.mktemp("etcd"))
    yield ours_text, etcd_text


STEP_COUNT = 30


@pytest.mark.parametrize("step", range(STEP_COUNT))
def test_maintenance_prints_what_etcd_prints(
    transcripts: tuple[list[str], list[str]], step: int
) -> None:
    ours, etcd = transcripts
    assert len(ours) == len(etcd) == STEP_COUNT
    assert ours[step] == etcd[step]


def test_the_script_reaches_the_interesting_answers(
    transcripts: tuple[list[str], list[str]],
) -> None:
    ours, _ = transcripts
    joined = "\n".join(ours)
    for expected in (
        "Error: etcdserver: mvcc: database space exceeded",
        "Error: etcdserver: corrupt cluster",
        "memberID:<id0> alarm:NOSPACE",
        "Leadership transferred from <id",
        "Error: etcdserver: bad leader transferee",
        "StatusCode.FAILED_PRECONDITION etcdserver: not leader",
        "Snapshot saved at <file>",
        "size % 512 = 32; trailer is sha256 of the rest: True",
        "hashes agree: True",
        "a write changes the hash: True",
    ):
        assert expected in joined
