"""The writer: create a WAL, open (and repair) one, append with group commit, cut, release.

Durability rules, as in etcd (server/wal/wal.go) and the Raft paper §5 (Figure 2: currentTerm,
votedFor and the log are persisted before a server answers):

* `save` returns only once its records are on disk (one fdatasync covers every save that was
  waiting for it: group commit) whenever it carried entries or changed term or vote
  (etcd raft.MustSync). A commit-only hard state change is written without waiting.
* A new segment is built in a preallocated `.tmp` file, its header fsynced, then renamed into
  place and the directory fsynced, so a crash leaves either no segment or a whole header.
* A new WAL is built in `<dir>.tmp` and renamed, so a half-created WAL is never opened.
* After a failed write or fsync the WAL refuses further writes: the kernel may already have
  dropped the dirty pages, so retrying could acknowledge data that is not on disk.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import struct
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from etcdpb.etcdserverpb import etcdserver_pb2
from etcdpb.raftpb import raft_pb2
from etcdpb.walpb import record_pb2
from impl.wal.errors import WalError, WalExistsError, WalLockedError, WalWriteError
from impl.wal.files import (
    SegmentName,
    describe_os_error,
    fsync_directory,
    list_segments,
    preallocate,
    write_all,
)
from impl.wal.reader import TailState, WalReadResult, read_wal
from impl.wal.record import RecordType, crc32c, encode_frame
from impl.wal.types import (
    EMPTY_HARD_STATE,
    ZERO_SNAPSHOT,
    Entry,
    HardState,
    SnapshotPoint,
    WalContents,
    WalMetadata,
)
from spec import constants

log = logging.getLogger("etcdref.wal")
SLOW_SYNC_SECONDS = 1.0  # etcd wal warnSyncDuration
_PREALLOCATED_NAME = "0.tmp"  # the next segment, ready to be cut to (etcd filePipeline)


def _encode_metadata(metadata: WalMetadata) -> bytes:
    """etcdserverpb.Metadata with both fields always written, as etcd (non-nullable)."""
    return etcdserver_pb2.Metadata(
        NodeID=metadata.node_id, ClusterID=metadata.cluster_id
    ).SerializeToString()


def _encode_entry(entry: Entry) -> bytes:
    """raftpb.Entry as etcd writes it: Type, Term and Index always; Data only when non-empty."""
    message = raft_pb2.Entry(Term=entry.term, Index=entry.index, Type=entry.entry_type)  # type: ignore[arg-type]
    if entry.data:
        message.Data = entry.data
    return message.SerializeToString()


def _encode_hard_state(state: HardState) -> bytes:
    """raftpb.HardState with term, vote and commit always written, as etcd (non-nullable)."""
    return raft_pb2.HardState(
        term=state.term, vote=state.vote, commit=state.commit
    ).SerializeToString()


def _encode_snapshot(point: SnapshotPoint) -> bytes:
    """walpb.Snapshot{index, term} as etcd 3.4 writes it (3.5 adds conf_state)."""
    return record_pb2.Snapshot(index=point.index, term=point.term).SerializeToString()


def _lock_segment(path: Path) -> int:
    """Open a segment for writing and hold an exclusive lock on it, as etcd does on every
    segment it writes (fileutil.TryLockFile), so etcdref and a running etcd exclude each
    other. Returns the descriptor; a held lock is WalLockedError, other failures
    WalWriteError (a read-only file system ends here)."""
    try:
        descriptor = os.open(path, os.O_WRONLY)
    except OSError as error:
        raise describe_os_error("cannot open for writing", path, error) from None
    try:
        try_lock_whole_file(descriptor)
    except BlockingIOError:
        os.close(descriptor)
        raise WalLockedError(
            f"wal: {path} is locked by another process (a running etcd?)"
        ) from None
    except OSError as error:
        os.close(descriptor)
        raise describe_os_error("cannot lock", path, error) from None
    return descriptor


_WRITE_LOCK_WHOLE_FILE = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)


def try_lock_whole_file(descriptor: int) -> None:
    """Take an exclusive lock on the whole file or raise BlockingIOError, the way etcd does on
    Linux (fileutil.TryLockFile: an open-file-description lock, F_OFD_SETLK), so the two see
    each other's locks; it is held until the descriptor is closed. Elsewhere, flock."""
    if hasattr(fcntl, "F_OFD_SETLK"):
        try:
            fcntl.fcntl(descriptor, fcntl.F_OFD_SETLK, _WRITE_LOCK_WHOLE_FILE)
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.EACCES):
                raise BlockingIOError(error.errno, error.strerror) from None
            raise
    else:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _lock_directory(directory: Path) -> int:
    """Hold an exclusive flock on the WAL directory so two writers cannot interleave (etcd
    locks each segment file; one lock on the directory gives the same exclusion)."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise WalLockedError(f"wal: {directory} is open for writing by another process") from None
    return descriptor


@attrs.frozen(slots=True)
class _PendingSave:
    """One queued call: entries, then a hard state to write, then a snapshot point."""

    entries: tuple[Entry, ...]
    hard_state: HardState | None
    snapshot: SnapshotPoint | None


class Wal:
    """An open, writable WAL. Use `Wal.create` or `Wal.open`; close with `close`.

    Thread-safe: concurrent `save` calls are grouped into one write and one fdatasync.
    """

    def __init__(
        self,
        directory: Path,
        lock_descriptor: int,
        tail_descriptor: int,
        metadata: WalMetadata,
        tail: SegmentName,
        tail_bytes: int,
        running_crc: int,
        last_index: int,
        hard_state: HardState,
        segment_size_bytes: int,
    ) -> None:
        """Use `create` or `open`: they establish the tail state this takes on trust."""
        self.directory = directory
        self.metadata = metadata
        self.segment_size_bytes = segment_size_bytes
        self._lock_descriptor = lock_descriptor
        # Told each fdatasync's duration in seconds (the node's metrics histogram), if set.
        self.sync_observer: Callable[[float], None] | None = None
        self._metadata_bytes = _encode_metadata(metadata)
        self._tail = tail
        self._tail_descriptor = tail_descriptor
        self._written_bytes = tail_bytes  # offset in the tail after the last written frame
        # Touched only by the flusher (the thread holding the flushing flag):
        self._written_crc = running_crc  # the CRC chain after the last record written
        self._last_index = last_index  # etcd w.enti: the index of the last entry written
        self._written_hard_state = hard_state  # the last hard state written
        # Guarded by the condition's lock:
        self._condition = threading.Condition()
        self._queued_hard_state = hard_state  # the last hard state queued, for MustSync
        self._pending: list[_PendingSave] = []  # queued, not yet written
        self._pending_sync = False
        self._queued_ticket = 0  # one ticket per call that queued records
        self._durable_ticket = 0  # every call with a ticket up to this one is written
        self._flushing = False
        self._failure: WalError | None = None
        self._closed = False

    # --- creating and opening -----------------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: Path | str,
        metadata: WalMetadata,
        segment_size_bytes: int = constants.wal_segment_size_bytes,
    ) -> Wal:
        """Create a WAL: crc(0), metadata and an empty snapshot record in segment 0 of
        `<dir>.tmp`, fsynced, then the directory renamed into place and its parent fsynced
        (etcd wal.Create)."""
        final = Path(directory)
        if final.exists() and any(final.iterdir()):
            raise WalExistsError(f"wal: {final} already exists and is not empty")
        building = final.with_name(final.name + ".tmp")
        first = SegmentName(0, 0)
        try:
            if building.exists():
                shutil.rmtree(building)
            building.mkdir(parents=True)
            header = [
                encode_frame(RecordType.CRC, 0, None),
                encode_frame(
                    RecordType.METADATA,
                    crc := crc32c(_encode_metadata(metadata)),
                    _encode_metadata(metadata),
                ),
            ]
            snapshot_data = _encode_snapshot(ZERO_SNAPSHOT)
            crc = crc32c(snapshot_data, crc)
            header.append(encode_frame(RecordType.SNAPSHOT, crc, snapshot_data))
            _write_new_file(building / first.file_name(), b"".join(header), segment_size_bytes)
            fsync_directory(building)
            if final.exists():
                final.rmdir()
            os.rename(building, final)
            fsync_directory(final.parent)
        except OSError as error:
            raise describe_os_error("cannot create WAL in", building, error) from None
        lock = _lock_directory(final)
        header_bytes = sum(len(frame) for frame in header)
        wal = cls._start(
            final, lock, metadata, first, header_bytes, crc, 0, EMPTY_HARD_STATE, segment_size_bytes
        )
        return wal

    @classmethod
    def open(
        cls,
        directory: Path | str,
        snapshot: SnapshotPoint = ZERO_SNAPSHOT,
        segment_size_bytes: int = constants.wal_segment_size_bytes,
    ) -> tuple[Wal, WalContents]:
        """Open a WAL for appending at a snapshot point and return what it holds after it.

        A torn tail on the last segment is repaired first (etcd wal.Repair): the segment is
        copied to `<name>.broken`, cut at its last valid record, and the rest of its
        preallocated space zeroed (etcd ZeroToEnd). Any other damage raises WalCorruptError.
        """
        path = Path(directory)
        lock = _lock_directory(path) if path.is_dir() else -1
        tail_descriptor = -1
        try:
            segments = list_segments(path) if lock >= 0 else []
            if segments:
                tail_descriptor = _lock_segment(path / segments[-1].file_name())
            result = read_wal(path, snapshot)
            if result.tail_state is not TailState.CLEAN:
                _repair_tail(result)
        except BaseException:
            for descriptor in (tail_descriptor, lock):
                if descriptor >= 0:
                    os.close(descriptor)
            raise
        contents = result.contents
        wal = cls._start(
            path,
            lock,
            contents.metadata,
            result.segments[-1],
            result.tail_valid_bytes,
            result.running_crc,
            result.last_index,
            contents.hard_state,
            segment_size_bytes,
            tail_descriptor,
        )
        return wal, contents

    @classmethod
    def _start(
        cls,
        directory: Path,
        lock_descriptor: int,
        metadata: WalMetadata,
        tail: SegmentName,
        tail_bytes: int,
        running_crc: int,
        last_index: int,
        hard_state: HardState,
        segment_size_bytes: int,
        tail_descriptor: int = -1,
    ) -> Wal:
        """Open and lock the tail for writing (unless the caller already did) and preallocate
        the next segment; on failure release every descriptor and raise a WalError."""
        if tail_descriptor < 0:
            try:
                tail_descriptor = _lock_segment(directory / tail.file_name())
            except WalError:
                os.close(lock_descriptor)
                raise
        wal = cls(
            directory, lock_descriptor, tail_descriptor, metadata, tail, tail_bytes,
            running_crc, last_index, hard_state, segment_size_bytes,
        )  # fmt: skip
        try:
            wal._prepare_next_segment()
        except WalError:
            wal._closed = True
            os.close(tail_descriptor)
            os.close(lock_descriptor)
            raise
        return wal

    # --- writing ------------------------------------------------------------------------------

    def save(self, hard_state: HardState, entries: Sequence[Entry]) -> None:
        """Append entries then the hard state; return once they are durable (group commit).

        Mirrors etcd WAL.Save: nothing to do for no entries and an unchanged hard state; sync
        only when entries were written or term or vote changed (raft.MustSync); cut to a new
        segment once the tail reaches `segment_size_bytes`.
        """
        self.wait_durable(self.queue_save(hard_state, entries))

    def queue_save(self, hard_state: HardState, entries: Sequence[Entry]) -> int:
        """Queue a save without waiting and return its ticket for `wait_durable` (0: nothing
        to write). Saves reach the disk in the order they were queued. This lets a leader send
        its messages while its own write is in flight (etcd raft.go; Raft thesis §10.2.1);
        nothing may be acknowledged as durable before `wait_durable(ticket)` returns."""
        with self._condition:
            self._check_writable()
            previous = self._queued_hard_state
            write_state = hard_state != previous and not hard_state.is_empty()
            if not entries and not write_state:
                return 0
            must_sync = (
                bool(entries)
                or hard_state.term != previous.term
                or hard_state.vote != previous.vote
            )
            self._queued_hard_state = hard_state
            self._pending.append(
                _PendingSave(tuple(entries), hard_state if write_state else None, None)
            )
            return self._take_ticket(must_sync)

    def save_snapshot(self, point: SnapshotPoint) -> None:
        """Record that a snapshot at `point` exists; always synced (etcd WAL.SaveSnapshot).
        The snapshot file must already be durable (etcd storage.SaveSnap: file first)."""
        with self._condition:
            self._check_writable()
            self._pending.append(_PendingSave((), None, point))
            ticket = self._take_ticket(must_sync=True)
        self.wait_durable(ticket)

    def sync(self) -> None:
        """Write what is pending and fdatasync the tail (etcd WAL.Sync)."""
        with self._condition:
            self._check_writable()
            ticket = self._take_ticket(must_sync=True)
        self.wait_durable(ticket)

    def _take_ticket(self, must_sync: bool) -> int:
        """Number what was just queued; called with the lock held."""
        self._pending_sync = self._pending_sync or must_sync
        self._queued_ticket += 1
        return self._queued_ticket

    def wait_durable(self, ticket: int) -> None:
        """Block until the save holding `ticket` is written, and synced if it had to be.

        The first waiter that finds no flush running flushes everything queued; the lock is
        released while it writes, so saves queued meanwhile wait behind it and share the next
        fdatasync (group commit). A failed flush fails every save in it and all later ones.
        """
        with self._condition:
            while self._durable_ticket < ticket:
                self._check_writable()
                if self._flushing:
                    self._condition.wait()
                    continue
                batch, self._pending = self._pending, []
                batch_sync, self._pending_sync = self._pending_sync, False
                batch_ticket = self._queued_ticket
                self._flushing = True
                self._condition.release()
                try:
                    failure = self._flush(batch, batch_sync)
                finally:
                    self._condition.acquire()
                    self._flushing = False
                    self._condition.notify_all()
                if failure is not None:
                    self._failure = failure
                    raise failure
                self._durable_ticket = batch_ticket

    def _flush(self, batch: list[_PendingSave], must_sync: bool) -> WalError | None:
        """Encode a batch chaining from the last written record, write it with one write, sync
        it with one fdatasync, and cut if the tail is full. Runs with the flushing flag held,
        so it alone touches the tail; returns the failure instead of raising it."""
        frames: list[bytes] = []
        crc = self._written_crc
        last_index = self._last_index
        hard_state = self._written_hard_state
        for pending in batch:
            for entry in pending.entries:
                data = _encode_entry(entry)
                crc = crc32c(data, crc)
                frames.append(encode_frame(RecordType.ENTRY, crc, data))
                last_index = entry.index
            if pending.hard_state is not None:
                hard_state = pending.hard_state
                data = _encode_hard_state(hard_state)
                crc = crc32c(data, crc)
                frames.append(encode_frame(RecordType.STATE, crc, data))
            if pending.snapshot is not None:
                data = _encode_snapshot(pending.snapshot)
                crc = crc32c(data, crc)
                frames.append(encode_frame(RecordType.SNAPSHOT, crc, data))
                last_index = max(last_index, pending.snapshot.index)
        data = b"".join(frames)
        path = self.directory / self._tail.file_name()
        try:
            write_all(self._tail_descriptor, data, self._written_bytes)
            if must_sync:
                self._fdatasync(self._tail_descriptor)
        except OSError as error:
            self._discard_partial_write()
            return describe_os_error("cannot write", path, error)
        self._written_bytes += len(data)
        self._written_crc = crc
        self._last_index = last_index
        self._written_hard_state = hard_state
        if self._written_bytes >= self.segment_size_bytes:
            try:
                self._cut_exclusive()
            except WalError as error:
                return error
        return None

    def _discard_partial_write(self) -> None:
        """After a failed write, cut the tail back to its last whole record (best effort).

        A short write (disk full, file size limit) can stop at any byte, leaving a frame torn
        inside a sector, which a reader cannot tell from a damaged record; truncating always
        succeeds, even on a full disk. If it fails too, the next open reports the offset.
        """
        try:
            os.ftruncate(self._tail_descriptor, self._written_bytes)
            os.fsync(self._tail_descriptor)
        except OSError:
            pass

    def _fdatasync(self, descriptor: int) -> None:
        """The one place appends are made durable (a seam for the ack-before-fsync test).

        A sync slower than a second is logged, as etcd's WAL warns of a slow fdatasync: every
        write in the group waits for it, and a slow disk is the commonest cause of elections.
        """
        began = time.monotonic()
        os.fdatasync(descriptor)
        took = time.monotonic() - began
        if self.sync_observer is not None:
            self.sync_observer(took)
        if took > SLOW_SYNC_SECONDS:
            log.warning(
                "slow fdatasync: took %.3f s, expected under %.0f s", took, SLOW_SYNC_SECONDS
            )

    # --- segments -----------------------------------------------------------------------------

    def cut(self) -> None:
        """Close the tail and continue in a new segment (etcd WAL.cut)."""
        with self._condition:
            self._check_writable()
            self.wait_durable(self._queued_ticket)
            while self._flushing:
                self._condition.wait()
            self._flushing = True
            self._condition.release()
            try:
                self._cut_exclusive()
            except WalError as error:
                failure: WalError | None = error
            else:
                failure = None
            finally:
                self._condition.acquire()
                self._flushing = False
                self._condition.notify_all()
            if failure is not None:
                self._failure = failure
                raise failure

    def _cut_exclusive(self) -> None:
        """etcd cut: truncate the tail at its end and fsync it; write crc, metadata and hard
        state into the preallocated `.tmp`, fsync, rename it to the next segment's name and
        fsync the directory. Runs with the flushing flag held."""
        following = SegmentName(self._tail.sequence + 1, self._last_index + 1)
        new_path = self.directory / following.file_name()
        crc = self._written_crc
        header = [encode_frame(RecordType.CRC, crc, None)]
        crc = crc32c(self._metadata_bytes, crc)
        header.append(encode_frame(RecordType.METADATA, crc, self._metadata_bytes))
        if not self._written_hard_state.is_empty():
            state = _encode_hard_state(self._written_hard_state)
            crc = crc32c(state, crc)
            header.append(encode_frame(RecordType.STATE, crc, state))
        header_bytes = b"".join(header)
        prepared = self.directory / _PREALLOCATED_NAME
        try:
            os.ftruncate(self._tail_descriptor, self._written_bytes)
            os.fsync(self._tail_descriptor)
            if not prepared.exists():
                self._prepare_next_segment()
            descriptor = os.open(prepared, os.O_WRONLY)
            try:
                try_lock_whole_file(descriptor)
                write_all(descriptor, header_bytes, 0)
                os.fsync(descriptor)
                os.rename(prepared, new_path)
                fsync_directory(self.directory)
            except BaseException:
                os.close(descriptor)
                raise
        except OSError as error:
            raise describe_os_error("cannot cut to", new_path, error) from None
        os.close(self._tail_descriptor)
        self._tail_descriptor = descriptor
        self._tail = following
        self._written_bytes = len(header_bytes)
        self._written_crc = crc
        self._prepare_next_segment()

    def _prepare_next_segment(self) -> None:
        """Preallocate the next segment as `0.tmp` so a cut only writes a header and renames
        (etcd filePipeline; done in line here rather than in a background thread)."""
        prepared = self.directory / _PREALLOCATED_NAME
        try:
            descriptor = os.open(prepared, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                preallocate(descriptor, self.segment_size_bytes)
            finally:
                os.close(descriptor)
        except OSError as error:
            prepared.unlink(missing_ok=True)
            self._failure = describe_os_error("cannot preallocate", prepared, error)
            raise self._failure from None

    def release_to(
        self, index: int, segments_kept_max: int = constants.wal_files_kept_max
    ) -> list[Path]:
        """Allow segments wholly before `index` to go, then delete released ones beyond
        `segments_kept_max` segments, oldest first; return what was deleted.

        etcd ReleaseLockTo keeps the segment holding `index` and everything after it (they are
        needed to replay from the snapshot at `index`); the purge loop then removes released
        files while more than --max-wals remain. The tail is never released.
        """
        with self._condition:
            segments = list_segments(self.directory)
            holding = [
                position for position, name in enumerate(segments) if name.first_index <= index
            ]
            releasable = segments[: holding[-1]] if holding else []
            releasable = [name for name in releasable if name != self._tail]
            removed: list[Path] = []
            excess = len(segments) - segments_kept_max
            for name in releasable[: max(0, excess)]:
                path = self.directory / name.file_name()
                try:
                    path.unlink()
                except OSError as error:
                    raise describe_os_error("cannot remove", path, error) from None
                removed.append(path)
            if removed:
                fsync_directory(self.directory)
            return removed

    # --- state --------------------------------------------------------------------------------

    @property
    def last_index(self) -> int:
        """Index of the last entry written (etcd w.enti); names the next segment at a cut."""
        return self._last_index

    @property
    def tail_segment(self) -> SegmentName:
        """The segment appends go to."""
        return self._tail

    def _check_writable(self) -> None:
        """Refuse writes after close or after any failed write or sync (see module doc)."""
        if self._closed:
            raise WalError("wal: closed")
        if self._failure is not None:
            raise WalWriteError(f"wal: refusing writes after an earlier failure: {self._failure}")

    def close(self) -> None:
        """Flush what is pending (etcd WAL.Close syncs the tail), then release the files."""
        with self._condition:
            if self._closed:
                return
            try:
                if self._failure is None and self._pending:
                    self.wait_durable(self._take_ticket(must_sync=True))
            finally:
                self._closed = True
                os.close(self._tail_descriptor)
                os.close(self._lock_descriptor)

    def __enter__(self) -> Wal:
        """`with Wal.create(...) as wal:` closes the WAL on exit."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close, flushing anything queued."""
        self.close()


def _write_new_file(path: Path, data: bytes, preallocate_bytes: int) -> None:
    """Create `path` with `data` at its start and preallocated space after, fsynced."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        preallocate(descriptor, preallocate_bytes)
        write_all(descriptor, data, 0)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _repair_tail(result: WalReadResult) -> None:
    """Cut a torn tail at its last valid record, keeping a `.broken` copy (etcd wal.Repair),
    and zero what follows so later appends cannot meet stale bytes (etcd ZeroToEnd)."""
    path = result.tail_path
    broken = path.with_name(path.name + ".broken")
    try:
        size = path.stat().st_size
        shutil.copyfile(path, broken)
        with open(broken, "rb+") as copy:
            os.fsync(copy.fileno())
        descriptor = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(descriptor, result.tail_valid_bytes)
            preallocate(descriptor, size)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        fsync_directory(path.parent)
    except OSError as error:
        raise describe_os_error("cannot repair", path, error) from None
