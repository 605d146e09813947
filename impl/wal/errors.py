"""The WAL's errors: each one says what is wrong and, for damage, the file and byte offset.

Callers (the node, `etcdref wal`) print `str(error)` and stop; none of these is a bug in
etcdref, so none should ever surface as a traceback.
"""

from __future__ import annotations

from pathlib import Path


class WalError(Exception):
    """Base class: the WAL cannot be used as asked (missing, locked, damaged, disk full)."""


class WalNotFoundError(WalError):
    """No WAL in the directory, or the segment sequence has a hole (etcd: `wal: file not found`)."""


class WalExistsError(WalError):
    """Creating a WAL where one already exists (etcd: `os.ErrExist` from `wal.Create`)."""


class WalLockedError(WalError):
    """Another process holds the WAL directory open for writing."""


class WalCorruptError(WalError):
    """Damage that is not a torn tail: the WAL refuses to open rather than guess.

    Mirrors etcd's fatal decode errors (`wal: crc mismatch`, unmarshal failures, `unexpected
    block type`, `conflicting metadata found`), with the file and offset added.
    """

    def __init__(self, path: Path | str, offset: int, reason: str) -> None:
        """Damage at byte `offset` of `path`, for the reason given."""
        self.path = Path(path)
        self.offset = offset
        self.reason = reason
        super().__init__(f"wal: corrupt record in {self.path} at offset {offset}: {reason}")


class WalSnapshotError(WalError):
    """The snapshot the caller opens at is not recorded in the WAL, or with another term.

    etcd: `wal: snapshot not found` and `wal: snapshot mismatch`.
    """


class WalWriteError(WalError):
    """A write or fsync failed (disk full, read-only, I/O error); the WAL is closed for writing.

    Nothing written by the failed call is acknowledged; reopening the WAL discards the
    unacknowledged tail as a torn write, or refuses to open if the damage is elsewhere.
    """
