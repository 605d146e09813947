"""A full disk or a read-only directory gives a clear error, and nothing half-written is valid.

Method: real file systems where this machine allows them: a small tmpfs (mounted for the test;
root only) fills up for real (ENOSPC), and the same tmpfs remounted read-only gives EROFS.
Without mount privileges the full-disk test is skipped and the read-only test falls back to a
directory without write permission (non-root) or is skipped (root, where permissions do not
bind). A fault-injecting pwrite covers a disk that fills up in the middle of a write, which
preallocation prevents on real file systems, so it cannot be produced there.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from impl.wal import Entry, HardState, Wal, WalError, WalWriteError, read_wal
from impl.wal.cli import VerifyStatus, verify
from tests.impl.wal.helpers import METADATA, entry_payload


def try_mount_tmpfs(mount_point: Path, size_bytes: int) -> bool:
    mount_point.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    completed = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(mount_point)],
        capture_output=True,
    )
    return completed.returncode == 0


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "small"
    if not try_mount_tmpfs(mount_point, 256 * 1024):
        pytest.skip("mounting a tmpfs needs root with mount privileges")
    try:
        yield mount_point
    finally:
        # Lazy, so a test that failed with files still open cannot leave the mount behind.
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def fill(wal: Wal) -> tuple[int, WalError]:
    """Save until the WAL fails; return the last acknowledged index and the error."""
    acknowledged = 0
    for index in range(1, 100_000):
        try:
            wal.save(HardState(1, 1, index - 1), [Entry(1, index, data=entry_payload(index, 200))])
        except WalError as error:
            return acknowledged, error
        acknowledged = index
    raise AssertionError("the disk never filled")


def assert_prefix_with_acknowledged(directory: Path, acknowledged: int) -> None:
    contents = read_wal(directory).contents
    indexes = [entry.index for entry in contents.entries]
    assert indexes == list(range(1, len(indexes) + 1))
    assert len(indexes) >= acknowledged
    assert all(e.data == entry_payload(e.index, 200) for e in contents.entries)


def test_full_disk_is_a_clear_error_and_keeps_what_was_acknowledged(small_tmpfs: Path) -> None:
    wal = Wal.create(small_tmpfs / "wal", METADATA, segment_size_bytes=48 * 1024)
    acknowledged, error = fill(wal)
    assert isinstance(error, WalWriteError)
    assert "No space left on device" in str(error), str(error)
    assert acknowledged > 100
    with pytest.raises(WalWriteError, match="refusing writes after an earlier failure"):
        wal.save(HardState(1, 1, 0), [Entry(1, acknowledged + 1)])
    wal.close()
    status, explanation = verify(small_tmpfs / "wal")
    assert status == VerifyStatus.VALID, explanation
    assert_prefix_with_acknowledged(small_tmpfs / "wal", acknowledged)


def test_create_on_a_full_disk_leaves_no_wal(small_tmpfs: Path) -> None:
    """Preallocating the first segment fails: the half-built `<dir>.tmp` is never opened."""
    with pytest.raises(WalWriteError, match="No space left on device"):
        Wal.create(small_tmpfs / "wal", METADATA, segment_size_bytes=10 * 1024 * 1024)
    with pytest.raises(WalError, match="does not exist"):
        Wal.open(small_tmpfs / "wal")


def test_read_only_file_system_is_a_clear_error(small_tmpfs: Path) -> None:
    with Wal.create(small_tmpfs / "wal", METADATA, segment_size_bytes=16 * 1024) as wal:
        wal.save(HardState(1, 1, 0), [Entry(1, 1, data=entry_payload(1, 200))])
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    with pytest.raises(WalWriteError, match="Read-only file system"):
        Wal.open(small_tmpfs / "wal", segment_size_bytes=16 * 1024)
    with pytest.raises(WalWriteError, match="Read-only file system"):
        Wal.create(small_tmpfs / "other", METADATA)
    assert verify(small_tmpfs / "wal")[0] == VerifyStatus.VALID, "reading needs no writes"
    assert_prefix_with_acknowledged(small_tmpfs / "wal", 1)


def test_unwritable_directory_without_root(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions; the tmpfs test covers read-only")
    with Wal.create(tmp_path / "wal", METADATA, segment_size_bytes=16 * 1024):
        pass
    (tmp_path / "wal" / "0.tmp").unlink()
    os.chmod(tmp_path / "wal", 0o555)
    try:
        with pytest.raises(WalWriteError, match="Permission denied"):
            Wal.open(tmp_path / "wal")
    finally:
        os.chmod(tmp_path / "wal", 0o755)


def fill_with_short_writes(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, WalError]:
    """Fill a WAL whose pwrite writes part of a batch, then reports ENOSPC."""
    wal = Wal.create(directory, METADATA, segment_size_bytes=1 << 20)
    real_pwrite = os.pwrite
    budget = [40_000]

    def pwrite(descriptor: int, data: bytes | memoryview, offset: int) -> int:
        if budget[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        allowed = bytes(data)[: budget[0]]
        budget[0] -= len(allowed)
        return real_pwrite(descriptor, allowed, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    acknowledged, error = fill(wal)
    monkeypatch.undo()
    wal.close()
    return acknowledged, error


def test_disk_full_in_the_middle_of_a_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the save fails, the WAL refuses more writes and cuts its tail back to
    the last whole record, so the log reopens valid holding exactly the acknowledged entries."""
    acknowledged, error = fill_with_short_writes(tmp_path / "wal", monkeypatch)
    assert "No space left on device" in str(error)
    status, explanation = verify(tmp_path / "wal")
    assert status == VerifyStatus.VALID, explanation
    reopened, contents = Wal.open(tmp_path / "wal")
    reopened.close()
    assert len(contents.entries) == acknowledged, "the unacknowledged partial batch is cut off"
    assert_prefix_with_acknowledged(tmp_path / "wal", acknowledged)


def test_a_writer_that_leaves_its_short_write_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seeded bug: without cutting the partial frame, the tail is torn inside a sector, which
    the reader must refuse (it cannot tell it from a damaged record)."""
    monkeypatch.setattr(Wal, "_discard_partial_write", lambda self: None)
    fill_with_short_writes(tmp_path / "wal", monkeypatch)
    assert verify(tmp_path / "wal")[0] == VerifyStatus.CORRUPT
