"""The committed vectors are current with the expected side, read back exactly, and real etcd
(and etcdref) answer every one of them as the vectors say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.api_semantics.comparison import as_data
from conformance.api_semantics.vectors import (
    model_vectors,
    replay_vectors,
    request_from_data,
    write_model_vectors,
)
from conformance.client import EtcdClient
from conformance.launcher import LaunchedCluster
from tests.conformance.doctored_server import Breakage, DoctoredServer

VECTORS = Path(__file__).resolve().parents[2] / "conformance" / "vectors"
FILES = sorted(VECTORS.glob("*-seed-*.jsonl"))
API_FILES = [path for path in FILES if path.name.startswith("api-")]


def seed_of(path: Path) -> int:
    return int(path.stem.rsplit("-", 1)[1])


def with_leases_and_watches(path: Path) -> bool:
    return path.name.startswith("api-")


def test_vector_files_exist() -> None:
    assert [path.name for path in FILES] == [
        "api-seed-1.jsonl",
        "api-seed-2.jsonl",
        "kv-seed-1.jsonl",
        "kv-seed-2.jsonl",
    ]


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_committed_vectors_are_what_the_model_gives_now(path: Path, tmp_path: Path) -> None:
    fresh = tmp_path / path.name
    write_model_vectors(fresh, seed_of(path), 300, with_leases_and_watches(path))
    assert fresh.read_text() == path.read_text(), (
        "the expected answers changed: regenerate with "
        "conformance.api_semantics.vectors.write_model_vectors"
    )


def test_api_vectors_cover_every_lease_and_watch_request() -> None:
    kinds = {
        json.loads(line)["request"]["type"] for line in API_FILES[0].read_text().splitlines()[1:]
    }
    assert {
        "LeaseGrantRequest", "LeaseRevokeRequest", "LeaseKeepAliveRequest",
        "LeaseTimeToLiveRequest", "LeaseLeasesRequest", "WatchCreateRequest",
    } <= kinds  # fmt: skip


@pytest.mark.parametrize("leases_and_watches", [False, True])
def test_requests_read_back_exactly(leases_and_watches: bool) -> None:
    for step in model_vectors(1, 300, leases_and_watches=leases_and_watches).steps:
        data = json.loads(json.dumps(as_data(step.request)))
        assert request_from_data(data) == step.request


@pytest.mark.etcd
@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_real_etcd_replays_the_vectors(path: Path) -> None:
    known_bug_steps: list[int] = []
    with LaunchedCluster(size=1) as cluster, EtcdClient(cluster.endpoints[0]) as client:
        assert replay_vectors(client, path, known_bug_steps) == []
    assert known_bug_steps == []  # these seeds do not watch from a compacted delete


def test_etcdref_replays_the_api_vectors() -> None:
    """Seed 2 only: seed 1's requests are what the single-member etcdref run of
    test_etcdref.py sends anyway."""
    etcdref = LaunchedCluster(size=1, server="etcdref")
    with etcdref as cluster, EtcdClient(cluster.endpoints[0]) as client:
        assert replay_vectors(client, API_FILES[1]) == []


@pytest.mark.etcd
def test_replay_names_the_step_a_broken_server_gets_wrong(etcd_cluster: LaunchedCluster) -> None:
    broken = Breakage(rewrite_range_version=True)
    with (
        DoctoredServer(etcd_cluster.endpoints[0], broken) as server,
        EtcdClient(server.endpoint) as client,
    ):
        failures = replay_vectors(client, FILES[2])
    assert len(failures) == 1
    assert failures[0].startswith("step ")
