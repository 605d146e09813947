"""Shared test configuration: Hypothesis profiles and the real-etcd requirement.

Profiles: `ci` (the default, fast enough for `make test`) and `deep` (ETCDREF_DEEP=1 or
`make test-deep`): more examples and longer runs. Failures print the Hypothesis blob so
any failing example replays with @reproduce_failure.
"""

from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import HealthCheck, settings

DEEP = os.environ.get("ETCDREF_DEEP", "") not in ("", "0")
REQUIRE_ETCD = os.environ.get("REQUIRE_ETCD", "") not in ("", "0")

settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "deep",
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("deep" if DEEP else "ci")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked `etcd` need the real etcd and etcdctl: skip without them, or fail under REQUIRE_ETCD=1."""
    if item.get_closest_marker("etcd") is None:
        return
    missing = [name for name in ("etcd", "etcdctl") if shutil.which(name) is None]
    if not missing:
        return
    message = f"real etcd needed but not on PATH: {', '.join(missing)} (apt-get install etcd-server etcd-client)"
    if REQUIRE_ETCD:
        pytest.fail(message)
    pytest.skip(message)
