"""etcdctl's lease commands print the same against etcdref as against real etcd 3.4 (ids and
remaining seconds normalized), including a lease that expires on the leader's clock."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.impl.api.cluster_tools import etcdctl, on_both

pytestmark = pytest.mark.etcd


def granted_lease(transcript: str) -> str:
    """The lease id in `etcdctl lease grant`'s answer."""
    found = re.search(r"lease ([0-9a-f]+) granted", transcript)
    assert found is not None, transcript
    return found.group(1)


def lease_script(endpoints: list[str]) -> list[str]:
    out = [etcdctl(endpoints, "lease", "grant", "60")]
    lease = granted_lease(out[0])
    out.append(etcdctl(endpoints, "put", "--lease", lease, "lk", "lv"))
    out.append(etcdctl(endpoints, "lease", "timetolive", lease, "--keys"))
    out.append(etcdctl(endpoints, "lease", "keep-alive", "--once", lease))
    out.append(etcdctl(endpoints, "lease", "list"))
    out.append(etcdctl(endpoints, "lease", "revoke", lease))
    out.append(etcdctl(endpoints, "get", "lk"))
    out.append(etcdctl(endpoints, "lease", "revoke", lease))
    out.append(etcdctl(endpoints, "put", "--lease", lease, "lk", "lv"))
    short = etcdctl(endpoints, "lease", "grant", "2")
    out.append(short)
    out.append(etcdctl(endpoints, "put", "--lease", granted_lease(short), "sk", "sv"))
    time.sleep(4.5)  # 2 s TTL on the leader's clock, plus time for the revoke to commit
    out.append(etcdctl(endpoints, "get", "sk"))
    out.append(etcdctl(endpoints, "lease", "timetolive", granted_lease(short)))
    return [
        re.sub(r"remaining\(\d+s\)", "remaining(Ns)", re.sub(r"\b[0-9a-f]{12,16}\b", "<id>", text))
        for text in out
    ]


def test_lease_commands_print_what_etcd_prints(tmp_path: Path) -> None:
    ours_text, etcd_text = on_both(tmp_path, lease_script)
    assert ours_text == etcd_text
    assert ours_text[3].endswith("\nlease <id> keepalived with TTL(60)\n")
    assert ours_text[-2] == "$ etcdctl get sk\nexit 0\n", "the expired lease's key is gone"
    assert "Error: etcdserver: requested lease not found" in ours_text[8]
