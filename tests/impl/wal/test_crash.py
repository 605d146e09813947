"""Crash safety: SIGKILL at random moments never loses an acknowledged entry.

Method: a child process appends batches with `Wal.save` and prints each acknowledged index; the
parent kills it with SIGKILL after a random delay, checks that `verify` calls the directory
valid or repairable (never corrupt), reopens it (repairing a torn tail) and checks that the
log is exactly entries 1..N with the payloads written, N at least the last acknowledged index.
The same directory is reused for 20 trials in a row, so later trials reopen repaired logs and
cross segment cuts. Seeds are printed; 20 trials by default, 300 with ETCDREF_DEEP=1.

SIGKILL keeps the page cache, so this catches acknowledging before the write reaches the
kernel (shown by the `ack-before-write` child) and any damage repair or reopen does; that
acknowledgement also waits for fdatasync is checked in test_durability_order.py.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from impl.wal import Wal, read_wal
from impl.wal.cli import VerifyStatus, verify
from tests.conftest import DEEP
from tests.impl.wal.crash_child import SEGMENT_SIZE_BYTES
from tests.impl.wal.helpers import entry_payload

TRIALS = 300 if DEEP else 20
REPO_ROOT = Path(__file__).resolve().parents[3]


def run_trial(
    directory: Path, seed: int, mode: str, acknowledged_before: int
) -> tuple[int, list[str]]:
    """Run one child until killed; return (highest index acknowledged so far, problems).

    A quarter of the kills land during the child's start (while it opens, and perhaps repairs,
    the log); half of the checks read without repairing, so the next child repairs the torn
    tail itself and may be killed doing it.
    """
    draw = random.Random(seed)
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.impl.wal.crash_child", str(directory), str(seed), mode],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    if draw.random() < 0.25:
        time.sleep(draw.uniform(0.0, 0.4))
    else:
        ready = child.stdout.readline()
        assert ready == b"ready\n", (ready, child.stderr.read() if child.stderr else b"")
        time.sleep(draw.uniform(0.0, 0.2))
    os.kill(child.pid, signal.SIGKILL)
    output, _ = child.communicate(timeout=30)
    lines = [
        line for line in output.split(b"\n")[:-1] if line != b"ready"
    ]  # a cut line has no newline
    acknowledged = max([acknowledged_before, *(int(line) for line in lines)])
    problems: list[str] = []
    status, explanation = verify(directory) if directory.exists() else (VerifyStatus.VALID, "")
    if status not in (VerifyStatus.VALID, VerifyStatus.REPAIRABLE_TAIL):
        problems.append(f"verify after kill: {explanation}")
        return acknowledged, problems
    if not directory.exists():
        return acknowledged, [f"acknowledged {acknowledged} but no WAL"] if acknowledged else []
    if draw.random() < 0.5:
        contents = read_wal(directory).contents  # leave any torn tail for the next child
    else:
        wal, contents = Wal.open(directory, segment_size_bytes=SEGMENT_SIZE_BYTES)
        wal.close()
    indexes = [entry.index for entry in contents.entries]
    if indexes != list(range(1, len(indexes) + 1)):
        problems.append("log is not entries 1..N in order")
    if indexes and indexes[-1] < acknowledged:
        problems.append(f"acknowledged {acknowledged} but the log ends at {indexes[-1]}")
    if not indexes and acknowledged:
        problems.append(f"acknowledged {acknowledged} but the log is empty")
    damaged = [e.index for e in contents.entries if e.data != entry_payload(e.index, len(e.data))]
    if damaged:
        problems.append(f"entries with wrong payloads: {damaged[:5]}")
    return acknowledged, problems


def run_trials(base: Path, mode: str, trials: int, base_seed: int) -> list[str]:
    """Trials in blocks of 20 sharing one log (a fresh one per block keeps reopening cheap)."""
    failures: list[str] = []
    acknowledged = 0
    for trial in range(trials):
        seed = base_seed + trial
        if trial % 20 == 0:
            acknowledged = 0
        directory = base / f"block-{trial // 20}"
        acknowledged, problems = run_trial(directory, seed, mode, acknowledged)
        failures += [f"seed {seed} (acknowledged {acknowledged}): {p}" for p in problems]
    return failures


@pytest.mark.slow
def test_sigkill_never_loses_an_acknowledged_entry(tmp_path: Path) -> None:
    base_seed = random.randrange(1 << 30)
    print(f"crash test base seed {base_seed}")
    failures = run_trials(tmp_path / "wal", "correct", TRIALS, base_seed)
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_crash_test_catches_a_writer_that_acknowledges_before_writing(tmp_path: Path) -> None:
    """The seeded bug: acknowledgements run ahead of writes, so a kill loses acknowledged data."""
    failures = run_trials(tmp_path / "wal", "ack-before-write", 5, base_seed=1)
    assert any("acknowledged" in failure for failure in failures), failures
