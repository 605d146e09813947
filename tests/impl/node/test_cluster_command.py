"""`etcdref cluster`: starts three members, prints working etcdctl lines, stops cleanly on SIGINT."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.impl.node.harness import REPOSITORY

pytestmark = pytest.mark.etcd


def test_cluster_prints_etcdctl_lines_that_work_and_stops_on_sigint(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "impl.cli", "cluster", "--data-dir", str(tmp_path / "c")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPOSITORY,
        start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "Ctrl-C stops the cluster." in line or not line:
                break
        put_line = next(
            line.strip() for line in lines if line.strip().endswith("put greeting hello")
        )
        assert len(re.findall(r"127\.0\.0\.1:\d+", put_line)) == 3
        get_line = put_line.replace("put greeting hello", "get greeting")
        outcome = ""
        for _ in range(40):  # the members are still electing a leader at first
            put = subprocess.run(shlex.split(put_line), capture_output=True, text=True, timeout=20)
            if put.returncode == 0:
                outcome = subprocess.run(
                    shlex.split(get_line), capture_output=True, text=True, timeout=20
                ).stdout
                break
            time.sleep(0.25)
        assert outcome == "greeting\nhello\n"
        curl_line = next(line.strip() for line in lines if "/v3/kv/range" in line)
        answer = subprocess.run(shlex.split(curl_line), capture_output=True, text=True, timeout=20)
        assert '"value":"aGVsbG8="' in answer.stdout, "the JSON gateway answers on the client port"
        os.killpg(process.pid, signal.SIGINT)
        remaining, _ = process.communicate(timeout=20)
        assert process.returncode == 0
        assert "etcdref cluster: stopped" in remaining
        assert re.search(r"m[123] \| .* stopped", remaining), "members did not report a clean stop"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
