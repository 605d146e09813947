"""Raft snapshot files in etcd's format (`member/snap/%016x-%016x.snap`, term then index).

A file holds a snappb.snapshot{crc, data}: `data` is a marshalled raftpb.Snapshot and `crc`
its plain CRC-32C (not chained). Files are written to a `.tmp` name, fsynced, renamed and the
directory fsynced, so a crash leaves the old set of snapshots or the new one, never half a file
under a snapshot's name. Loading takes the newest file that checks out; a damaged one is renamed
`.broken` (as etcd does) and the next older one is tried.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import attrs
from google.protobuf.message import DecodeError

from etcdpb.raftpb import raft_pb2
from etcdpb.snappb import snap_pb2
from impl.wal import SnapshotPoint
from impl.wal.files import fsync_directory
from impl.wal.record import crc32c
from spec import constants

_SNAPSHOT_NAME: Final = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.snap$")


class SnapshotError(Exception):
    """A snapshot file cannot be written or read; the message names the file."""


@attrs.frozen(slots=True)
class ConfState:
    """raftpb.ConfState: the voters and learners at the snapshot's index."""

    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()


@attrs.frozen(slots=True)
class RaftSnapshot:
    """raftpb.Snapshot: the state machine's bytes as of (index, term) and the membership then."""

    index: int
    term: int
    conf_state: ConfState
    data: bytes


def snapshot_file_name(term: int, index: int) -> str:
    """etcd: `fmt.Sprintf("%016x-%016x.snap", term, index)`."""
    return f"{term:016x}-{index:016x}.snap"


def encode_snapshot_file(snapshot: RaftSnapshot) -> bytes:
    """The bytes of a .snap file: snappb.snapshot{crc: CRC-32C(data), data: raftpb.Snapshot}."""
    message = raft_pb2.Snapshot(
        metadata=raft_pb2.SnapshotMetadata(
            # etcd writes auto_leave always (non-nullable), so set it to get its bytes.
            conf_state=raft_pb2.ConfState(
                voters=snapshot.conf_state.voters,
                learners=snapshot.conf_state.learners,
                auto_leave=False,
            ),
            index=snapshot.index,
            term=snapshot.term,
        )
    )
    if snapshot.data:
        message.data = snapshot.data
    data = message.SerializeToString()
    return snap_pb2.snapshot(crc=crc32c(data), data=data).SerializeToString()


def decode_snapshot_file(path: Path, content: bytes) -> RaftSnapshot:
    """Check and decode a .snap file's bytes (etcd snap.Read): empty file or zero crc or no data
    is `snap: empty snapshot`; a bad CRC is `snap: crc mismatch`."""
    envelope = snap_pb2.snapshot()
    try:
        envelope.ParseFromString(content)
    except DecodeError:
        raise SnapshotError(f"snap: unexpected data in {path}: not a snappb.snapshot") from None
    if not content or envelope.crc == 0 or not envelope.data:
        raise SnapshotError(f"snap: empty snapshot: {path}")
    if crc32c(envelope.data) != envelope.crc:
        raise SnapshotError(f"snap: crc mismatch: {path}")
    message = raft_pb2.Snapshot()
    try:
        message.ParseFromString(envelope.data)
    except DecodeError:
        raise SnapshotError(f"snap: unexpected data in {path}: not a raftpb.Snapshot") from None
    metadata = message.metadata
    conf_state = ConfState(tuple(metadata.conf_state.voters), tuple(metadata.conf_state.learners))
    return RaftSnapshot(metadata.index, metadata.term, conf_state, message.data)


class Snapshotter:
    """The snapshot directory of one member."""

    def __init__(self, directory: Path | str) -> None:
        """`directory` is `member/snap`; it is created on the first save."""
        self.directory = Path(directory)

    def save(self, snapshot: RaftSnapshot) -> Path:
        """Write a snapshot durably: temp file, fsync, rename, fsync the directory (etcd
        SaveSnap writes and syncs; the rename makes a torn file impossible)."""
        name = snapshot_file_name(snapshot.term, snapshot.index)
        final = self.directory / name
        temporary = self.directory / (name + ".tmp")
        content = encode_snapshot_file(snapshot)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                view = memoryview(content)
                while view:
                    view = view[os.write(descriptor, view) :]
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.rename(temporary, final)
            fsync_directory(self.directory)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise SnapshotError(f"snap: cannot write {final}: {error.strerror or error}") from None
        return final

    def snapshot_names(self) -> list[str]:
        """Snapshot file names, newest first (etcd snapNames sorts them in reverse)."""
        try:
            names = [entry.name for entry in os.scandir(self.directory)]
        except FileNotFoundError:
            return []
        return sorted((name for name in names if _SNAPSHOT_NAME.match(name)), reverse=True)

    def load(self) -> RaftSnapshot | None:
        """The newest snapshot that checks out, or None if there is none (etcd ErrNoSnapshot).
        Each damaged file on the way is renamed `<name>.broken` (etcd renames on crc
        mismatch; here on any failure to decode) so the next start does not trip on it."""
        return self.newest_valid(self.snapshot_names())

    def load_newest_available(self, points: Iterable[SnapshotPoint]) -> RaftSnapshot | None:
        """The newest snapshot whose (index, term) the WAL recorded, or None (etcd 3.5
        Snapshotter.LoadNewestAvailable with wal.ValidSnapshotEntries).

        A snapshot file is written before its WAL record (etcd storage.SaveSnap), so a crash
        between the two leaves a file the WAL cannot be opened at; it is passed over, not
        deleted. Damaged files on the way are renamed `.broken`, as in `load`.
        """
        wanted = {snapshot_file_name(point.term, point.index) for point in points}
        return self.newest_valid([name for name in self.snapshot_names() if name in wanted])

    def newest_valid(self, names: Iterable[str]) -> RaftSnapshot | None:
        """The first of `names` (newest first) that decodes; each that does not is renamed `.broken`."""
        for name in names:
            path = self.directory / name
            try:
                return decode_snapshot_file(path, path.read_bytes())
            except SnapshotError:
                os.rename(path, path.with_name(name + ".broken"))
                fsync_directory(self.directory)
        return None

    def purge(self, snapshots_kept_max: int = constants.snapshots_kept_max) -> list[Path]:
        """Delete the oldest snapshot files beyond `snapshots_kept_max` (etcd --max-snapshots,
        purged by fileutil.PurgeFile); return what was deleted."""
        removed = [self.directory / name for name in self.snapshot_names()[snapshots_kept_max:]]
        for path in removed:
            path.unlink()
        if removed:
            fsync_directory(self.directory)
        return removed
