"""Fixtures for the conformance tests: one real single-member etcd shared by the module's tests.

Tests that use it are marked `etcd` (skipped without etcd on PATH, failing under
REQUIRE_ETCD=1). Each test writes under its own key prefix, so they do not disturb each other;
tests that compact get a cluster of their own.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import pytest

from conformance.client import EtcdClient
from conformance.launcher import LaunchedCluster


@pytest.fixture(scope="session")
def etcd_cluster() -> Iterator[LaunchedCluster]:
    if shutil.which("etcd") is None:
        pytest.skip("real etcd not on PATH")
    with LaunchedCluster(size=1) as cluster:
        yield cluster


@pytest.fixture
def etcd_client(etcd_cluster: LaunchedCluster) -> Iterator[EtcdClient]:
    with EtcdClient(etcd_cluster.endpoints[0]) as client:
        yield client


@pytest.fixture
def key_prefix() -> bytes:
    return f"/conformance-test/{uuid.uuid4().hex[:8]}/".encode()
