"""A cut makes the new segment durable before it has its name, and its name durable before
appends go on (etcd wal.cut): fsync the old tail, fsync the new header in the `.tmp` file,
rename, fsync the directory.

Method: os.fsync, os.rename and the directory fsync are wrapped to log what they touched;
after saves that force several cuts, the log must show that order for every new segment.
The seeded bug (no directory fsync) must fail the same check.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import impl.wal.wal as wal_module
from impl.wal import Entry, HardState, Wal, files
from impl.wal.files import list_segments
from tests.impl.wal.helpers import METADATA


def record_file_steps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    steps: list[tuple[str, str]] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(descriptor: int) -> None:
        steps.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def rename(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        steps.append(("rename", f"{os.fspath(source)} -> {os.fspath(target)}"))
        real_rename(source, target)

    def fsync_directory(directory: Path) -> None:
        steps.append(("fsync-directory", str(directory)))
        files.fsync_directory(directory)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(wal_module, "fsync_directory", fsync_directory)
    return steps


def cut_order_violations(directory: Path, steps: list[tuple[str, str]]) -> list[str]:
    """For every segment after the first, the steps etcd's cut takes, in order."""
    violations: list[str] = []
    for segment in list_segments(directory)[1:]:
        name = segment.file_name()
        renames = [
            i for i, (kind, what) in enumerate(steps) if kind == "rename" and what.endswith(name)
        ]
        if len(renames) != 1:
            violations.append(f"{name}: renamed {len(renames)} times")
            continue
        at = renames[0]
        source = steps[at][1].split(" -> ")[0]
        if ("fsync", source) not in steps[:at]:
            violations.append(f"{name}: header not fsynced before the rename")
        if ("fsync-directory", str(directory)) not in steps[at + 1 : at + 2]:
            violations.append(f"{name}: directory not fsynced right after the rename")
    return violations


def write_with_cuts(directory: Path) -> None:
    with Wal.create(directory, METADATA, segment_size_bytes=4096) as wal:
        for index in range(1, 120):
            wal.save(HardState(1, 1, index - 1), [Entry(1, index, data=bytes(100))])
    assert len(list_segments(directory)) >= 3


def test_cut_makes_the_header_then_the_name_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = record_file_steps(monkeypatch)
    write_with_cuts(tmp_path / "wal")
    assert cut_order_violations(tmp_path / "wal", steps) == []


def test_the_check_catches_a_cut_without_directory_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = record_file_steps(monkeypatch)
    monkeypatch.setattr(wal_module, "fsync_directory", lambda directory: None)
    write_with_cuts(tmp_path / "wal")
    assert cut_order_violations(tmp_path / "wal", steps) != []
