"""Check 1: real etcd answers like the model; a server that rewrites a field does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.api_semantics.comparison import (
    SemanticsResult,
    differences_between,
    run_semantics_comparison,
    write_vectors,
)
from conformance.api_semantics.wire import RevisionShift
from conformance.client import EtcdClient
from conformance.launcher import LaunchedCluster
from tests.conformance.doctored_server import Breakage, DoctoredServer


def test_revision_shift_leaves_none_and_latest_alone() -> None:
    shift = RevisionShift(offset=10)
    assert shift.to_server(0) == 0
    assert shift.to_server(-1) == -1
    assert shift.to_server(3) == 13
    assert shift.to_model(13) == 3
    assert shift.to_model(0) == 0


def test_differences_name_the_field() -> None:
    expected = {"type": "RangeResponse", "kvs": [{"version": 1, "value": "a"}], "count": 1}
    actual = {"type": "RangeResponse", "kvs": [{"version": 2, "value": "a"}], "count": 1}
    assert list(differences_between(expected, actual, "response")) == [
        "response.kvs[0].version: expected 1, got 2"
    ]


@pytest.mark.etcd
@pytest.mark.parametrize("seed", [1, 2])
def test_real_etcd_answers_like_the_model(
    etcd_client: EtcdClient, key_prefix: bytes, seed: int, tmp_path: Path
) -> None:
    result = run_semantics_comparison(etcd_client, key_prefix, seed, 300)
    assert result.violations() == []
    assert len(result.steps) == 300
    assert result.compacted_delete_dropped == []
    write_vectors(tmp_path / "vectors.jsonl", result, seed)
    lines = (tmp_path / "vectors.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["format"] == "etcdref-api-vectors/1"
    assert len(lines) == 301


@pytest.mark.etcd
def test_rewritten_field_is_named(etcd_cluster: LaunchedCluster, key_prefix: bytes) -> None:
    broken = Breakage(rewrite_range_version=True)
    with (
        DoctoredServer(etcd_cluster.endpoints[0], broken) as server,
        EtcdClient(server.endpoint) as client,
    ):
        result: SemanticsResult = run_semantics_comparison(client, key_prefix, 1, 300)
    violations = result.violations()
    assert len(violations) == 1
    assert ".version: expected" in violations[0]
