"""etcdctl watch prints the same against etcdref as against real etcd 3.4: history from a
revision, a prefix with previous values, and live events of later writes."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.impl.api.cluster_tools import ENVIRONMENT, etcdctl, on_both

pytestmark = pytest.mark.etcd

def watch_for(endpoints: list[str], seconds: float, *arguments: str) -> str:
    """What `etcdctl watch ARGUMENTS` prints within `seconds` (it never exits by itself)."""
    process = subprocess.Popen(
        ["etcdctl", f"--endpoints={endpoints[0]}", "watch", *arguments],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENVIRONMENT,
    )  # fmt: skip
    time.sleep(seconds)
    process.terminate()
    output, _ = process.communicate(timeout=10)
    return output


def watch_script(endpoints: list[str]) -> list[str]:
    for arguments in (
        ["put", "foo", "1"],
        ["put", "foo", "2"],
        ["del", "foo"],
        ["put", "fob", "x"],
    ):
        etcdctl(endpoints, *arguments)
    transcript = [
        watch_for(endpoints, 1.5, "foo", "--rev", "2"),
        watch_for(endpoints, 1.5, "fo", "--prefix", "--rev", "2", "--prev-kv"),
    ]
    live = subprocess.Popen(
        ["etcdctl", f"--endpoints={endpoints[-1]}", "watch", "live", "--prefix", "--prev-kv"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENVIRONMENT,
    )  # fmt: skip
    time.sleep(1.5)
    for arguments in (["put", "live/a", "1"], ["put", "live/a", "2"], ["del", "live/a"]):
        etcdctl(endpoints, *arguments)
    time.sleep(1.5)
    live.terminate()
    transcript.append(live.communicate(timeout=10)[0])
    return transcript


def test_watch_prints_what_etcd_prints(tmp_path: Path) -> None:
    ours_text, etcd_text = on_both(tmp_path, watch_script)
    assert ours_text == etcd_text
    assert ours_text[0] == "PUT\nfoo\n1\nPUT\nfoo\n2\nDELETE\nfoo\n\n"
    assert ours_text[2].endswith("DELETE\nlive/a\n2\nlive/a\n\n"), "delete shows its previous value"
