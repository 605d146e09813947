"""etcdctl lock and elect (client recipes over leases, txn and watch) behave against a
three-member etcdref cluster as against real etcd 3.4: a second locker waits until the first
releases, a second candidate until the leader resigns, and an observer prints each leader's
value. Lease ids in the printed keys are normalized.
"""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.impl.api.cluster_tools import ENVIRONMENT, on_both

pytestmark = pytest.mark.etcd
QUIET_SECONDS = 2.0  # how long a waiting locker must stay silent
LINE_TIMEOUT_SECONDS = 10.0


class Etcdctl:
    """A long-running etcdctl whose stdout lines arrive on a queue."""

    def __init__(self, endpoints: list[str], *arguments: str) -> None:
        self.process = subprocess.Popen(
            ["etcdctl", f"--endpoints={','.join(endpoints)}", *arguments],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENVIRONMENT,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def next_lines(self, count: int) -> list[str]:
        lines = []
        for _ in range(count):
            try:
                lines.append(self.lines.get(timeout=LINE_TIMEOUT_SECONDS))
            except queue.Empty:
                lines.append("<nothing>")
        return lines

    def quiet_for(self, seconds: float) -> bool:
        time.sleep(seconds)
        return self.lines.empty()

    def release(self) -> int:
        """SIGINT, as Ctrl-C: etcdctl unlocks or resigns, then exits."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=15)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def normalize(lines: list[str]) -> list[str]:
    return [re.sub(r"/[0-9a-f]{8,16}$", "/<lease>", line) for line in lines]


def lock_and_elect_script(endpoints: list[str]) -> list[str]:
    transcript: list[str] = []
    running: list[Etcdctl] = []
    try:
        first = Etcdctl(endpoints[:1], "lock", "door")
        running.append(first)
        transcript += ["first locker:", *normalize(first.next_lines(1))]
        second = Etcdctl(endpoints[1:2], "lock", "door")
        running.append(second)
        transcript.append(f"second locker waits: {second.quiet_for(QUIET_SECONDS)}")
        transcript.append(f"first releases, exit {first.release()}")
        transcript += ["second locker:", *normalize(second.next_lines(1))]
        transcript.append(f"second releases, exit {second.release()}")
        with_command = subprocess.run(
            ["etcdctl", f"--endpoints={endpoints[2]}", "lock", "door", "echo", "inside"],
            capture_output=True, text=True, timeout=30, env=ENVIRONMENT,
        )  # fmt: skip
        transcript.append(
            f"lock with a command: {with_command.stdout!r} exit {with_command.returncode}"
        )

        leader = Etcdctl(endpoints[:1], "elect", "chair", "alice")
        running.append(leader)
        transcript += ["leader:", *normalize(leader.next_lines(2))]
        observer = Etcdctl(endpoints[2:3], "elect", "--listen", "chair")
        running.append(observer)
        transcript += ["observer:", *normalize(observer.next_lines(2))]
        candidate = Etcdctl(endpoints[1:2], "elect", "chair", "bob")
        running.append(candidate)
        transcript.append(f"candidate waits: {candidate.quiet_for(QUIET_SECONDS)}")
        transcript.append(f"leader resigns, exit {leader.release()}")
        transcript += ["candidate:", *normalize(candidate.next_lines(2))]
        transcript += ["observer:", *normalize(observer.next_lines(2))]
        transcript.append(f"candidate resigns, exit {candidate.release()}")
    finally:
        for process in running:
            process.kill()
    return transcript


def test_lock_and_elect_behave_as_with_etcd(tmp_path: Path) -> None:
    ours_text, etcd_text = on_both(tmp_path, lock_and_elect_script)
    assert ours_text == etcd_text
    assert "second locker waits: True" in ours_text
    assert "door/<lease>" in ours_text
    assert ours_text[ours_text.index("candidate:") + 2] == "bob"
