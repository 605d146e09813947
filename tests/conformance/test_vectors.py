"""The committed KV vectors are current with the model, read back exactly, and real etcd
answers every one of them as the vectors say."""

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
FILES = sorted(VECTORS.glob("kv-seed-*.jsonl"))


def seed_of(path: Path) -> int:
    return int(path.stem.removeprefix("kv-seed-"))


def test_vector_files_exist() -> None:
    assert [path.name for path in FILES] == ["kv-seed-1.jsonl", "kv-seed-2.jsonl"]


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_committed_vectors_are_what_the_model_gives_now(path: Path, tmp_path: Path) -> None:
    fresh = tmp_path / path.name
    write_model_vectors(fresh, seed_of(path), 300)
    assert fresh.read_text() == path.read_text(), (
        "the model's answers changed: regenerate with conformance.api_semantics.vectors.write_model_vectors"
    )


def test_requests_read_back_exactly() -> None:
    for step in model_vectors(1, 300).steps:
        data = json.loads(json.dumps(as_data(step.request)))
        assert request_from_data(data) == step.request


@pytest.mark.etcd
@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_real_etcd_replays_the_vectors(path: Path) -> None:
    with LaunchedCluster(size=1) as cluster, EtcdClient(cluster.endpoints[0]) as client:
        assert replay_vectors(client, path) == []


@pytest.mark.etcd
def test_replay_names_the_step_a_broken_server_gets_wrong(etcd_cluster: LaunchedCluster) -> None:
    broken = Breakage(rewrite_range_version=True)
    with DoctoredServer(etcd_cluster.endpoints[0], broken) as server, EtcdClient(server.endpoint) as client:
        failures = replay_vectors(client, FILES[0])
    assert len(failures) == 1
    assert failures[0].startswith("step ")
