"""`save` returns only after an fdatasync that follows the write of its records (Raft §5:
persist before answering), and concurrent saves share fdatasyncs (group commit).

Method: os.pwrite and os.fdatasync are wrapped to log every write (fd, bytes) and sync with a
global sequence number; threads save concurrently and, as each save returns, the test finds
the write that carried the save's last entry and checks that a sync of that fd came after it.
The seeded bug (a Wal whose fdatasync does nothing) must fail the same check.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from impl.wal import Entry, HardState, Wal
from tests.impl.wal.helpers import METADATA

THREADS = 6
SAVES_PER_THREAD = 40


class DiskLog:
    """Every pwrite and fdatasync, in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counter = itertools.count()
        self.writes: list[tuple[int, int, bytes]] = []  # (sequence, fd, data)
        self.syncs: list[tuple[int, int]] = []  # (sequence, fd)

    def wrap(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_pwrite, real_fdatasync = os.pwrite, os.fdatasync

        def pwrite(fd: int, data: bytes | memoryview, offset: int) -> int:
            written = real_pwrite(fd, data, offset)
            with self.lock:
                self.writes.append((next(self.counter), fd, bytes(data[:written])))
            return written

        def fdatasync(fd: int) -> None:
            with self.lock:
                sequence = next(self.counter)
            real_fdatasync(fd)
            with self.lock:
                self.syncs.append((sequence, fd))

        monkeypatch.setattr(os, "pwrite", pwrite)
        monkeypatch.setattr(os, "fdatasync", fdatasync)

    def unsynced_acknowledgement(self, marker: bytes, acknowledged_at: int) -> bool:
        """True if the write carrying `marker` had no later sync of its fd before the ack."""
        with self.lock:
            carrying = [(seq, fd) for seq, fd, data in self.writes if marker in data]
            assert carrying, f"no write carried {marker!r}"
            write_sequence, fd = carrying[-1]
            return not any(
                write_sequence < sync_sequence < acknowledged_at and sync_fd == fd
                for sync_sequence, sync_fd in self.syncs
            )


def run_concurrent_saves(
    directory: Path, log: DiskLog, make_wal: Callable[[Path], Wal]
) -> list[str]:
    """Threads queue saves in index order (under a lock) and wait for them outside it, as a
    Raft node would; each checks its own save was synced before it was acknowledged."""
    wal = make_wal(directory)
    violations: list[str] = []
    order_lock = threading.Lock()
    indexes = itertools.count(1)
    barrier = threading.Barrier(THREADS)

    def worker(thread_number: int) -> None:
        barrier.wait()
        for save_number in range(SAVES_PER_THREAD):
            marker = f"<thread {thread_number} save {save_number}>".encode()
            with order_lock:
                ticket = wal.queue_save(HardState(1, 1, 0), [Entry(1, next(indexes), data=marker)])
            wal.wait_durable(ticket)
            with log.lock:
                acknowledged_at = next(log.counter)
            if log.unsynced_acknowledgement(marker, acknowledged_at):
                violations.append(f"{marker.decode()} acknowledged before fdatasync")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wal.close()
    saves = THREADS * SAVES_PER_THREAD
    _, contents = Wal.open(directory)
    assert [e.index for e in contents.entries] == list(range(1, saves + 1))
    return violations


def create(directory: Path) -> Wal:
    return Wal.create(directory, METADATA, segment_size_bytes=256 * 1024)


class NoSyncWal(Wal):
    """The seeded bug: acknowledges after the write but never makes it durable."""

    def _fdatasync(self, descriptor: int) -> None:
        return None


def create_without_sync(directory: Path) -> Wal:
    return NoSyncWal.create(directory, METADATA, segment_size_bytes=256 * 1024)


def test_save_returns_only_after_fdatasync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = DiskLog()
    log.wrap(monkeypatch)
    assert run_concurrent_saves(tmp_path / "wal", log, create) == []


def test_the_check_catches_a_writer_that_skips_fdatasync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = DiskLog()
    log.wrap(monkeypatch)
    violations = run_concurrent_saves(tmp_path / "wal", log, create_without_sync)
    assert len(violations) == THREADS * SAVES_PER_THREAD


def test_concurrent_saves_share_fdatasyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Group commit: saves queued while a flush runs ride the next fdatasync together."""
    log = DiskLog()
    log.wrap(monkeypatch)
    assert run_concurrent_saves(tmp_path / "wal", log, create) == []
    saves = THREADS * SAVES_PER_THREAD
    print(f"{len(log.syncs)} fdatasyncs for {saves} saves")
    assert len(log.syncs) < saves * 0.9, f"{len(log.syncs)} fdatasyncs for {saves} saves"


class SerialWal(Wal):
    """The seeded bug: every save flushes on its own before the next can queue."""

    def queue_save(self, hard_state: HardState, entries: Sequence[Entry]) -> int:
        ticket = super().queue_save(hard_state, entries)
        self.wait_durable(ticket)
        return ticket


def test_the_grouping_check_catches_a_serial_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = DiskLog()
    log.wrap(monkeypatch)
    make = lambda directory: SerialWal.create(directory, METADATA, segment_size_bytes=256 * 1024)  # noqa: E731
    assert run_concurrent_saves(tmp_path / "wal", log, make) == []
    assert len(log.syncs) >= THREADS * SAVES_PER_THREAD
