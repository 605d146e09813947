"""Segment names and the file-system steps the WAL relies on, each one durable on return.

Segment files are named `%016x-%016x.wal` (sequence number, index of the first entry expected
in the segment), as in etcd. `.tmp` files are preallocated next segments and `.broken` files
are copies kept by repair; neither is a segment.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Final

import attrs

from impl.wal.errors import WalWriteError

_SEGMENT_NAME: Final = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.wal$")


@attrs.frozen(slots=True, order=True)
class SegmentName:
    """A segment's sequence number and the Raft index of the first entry it may hold."""

    sequence: int
    first_index: int

    def file_name(self) -> str:
        """etcd walName: `fmt.Sprintf("%016x-%016x.wal", seq, index)`."""
        return f"{self.sequence:016x}-{self.first_index:016x}.wal"


def parse_segment_name(name: str) -> SegmentName | None:
    """The segment a file name denotes, or None for anything else (.tmp, .broken, strays)."""
    match = _SEGMENT_NAME.match(name)
    if match is None:
        return None
    return SegmentName(int(match.group(1), 16), int(match.group(2), 16))


def list_segments(directory: Path) -> list[SegmentName]:
    """The directory's segments in sequence order (etcd readWALNames, which ignores others)."""
    names = (parse_segment_name(entry.name) for entry in os.scandir(directory))
    return sorted(name for name in names if name is not None)


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in `directory` durable (etcd fileutil.Fsync on the dir)."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_all(descriptor: int, data: bytes | memoryview, offset: int) -> None:
    """Write every byte at `offset`; a short write (disk full) raises instead of returning."""
    view = memoryview(data)
    while view:
        written = os.pwrite(descriptor, view, offset)
        if written <= 0:
            raise OSError(errno.ENOSPC, "short write")
        view = view[written:]
        offset += written


def preallocate(descriptor: int, size_bytes: int) -> None:
    """Reserve `size_bytes` for a segment so appends do not allocate (etcd fileutil.Preallocate
    with extendFile=true). Falls back to extending the file where fallocate is unsupported."""
    try:
        os.posix_fallocate(descriptor, 0, size_bytes)
    except OSError as error:
        if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        if os.fstat(descriptor).st_size < size_bytes:
            os.ftruncate(descriptor, size_bytes)


def describe_os_error(action: str, path: Path, error: OSError) -> WalWriteError:
    """A WalWriteError naming the step, the file and the system's reason (no traceback)."""
    return WalWriteError(f"wal: {action} {path}: {error.strerror or error}")
