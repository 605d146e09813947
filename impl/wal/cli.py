"""`etcdref wal dump DIR` and `etcdref wal verify DIR`: read any etcd 3.4+ WAL directory.

Neither command changes the directory. `dump` prints one line per record, like etcd's
etcd-dump-logs; `verify` checks framing, the CRC chain and the log's shape and says, in its
exit status, whether the WAL is valid, has a tail a restart would repair, or is corrupt.
"""

from __future__ import annotations

import argparse
import enum
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from impl.wal.describe import describe_record
from impl.wal.errors import WalCorruptError, WalError
from impl.wal.reader import TailState, read_wal, select_segments
from impl.wal.record import FrameEnd, scan_segment


class VerifyStatus(enum.IntEnum):
    """Exit statuses of `etcdref wal verify` (2 stays argparse's for a usage error)."""

    VALID = 0
    REPAIRABLE_TAIL = 1
    CORRUPT = 3
    UNREADABLE = 4


def dump(directory: Path, out: TextIO | None = None) -> int:
    """Print every record of every segment, oldest first, then how the last one ends.

    Returns VALID, REPAIRABLE_TAIL or CORRUPT, with the same meaning as `verify`, judged by
    framing and CRC only (`verify` also checks the log's shape).
    """
    stream = sys.stdout if out is None else out
    segments = select_segments(directory, -1, every_segment=True)
    running_crc = 0
    for position, segment in enumerate(segments):
        path = directory / segment.file_name()
        is_tail = position == len(segments) - 1
        print(f"# {path}", file=stream)
        buffer = path.read_bytes()
        scan = scan_segment(buffer, running_crc, tail=is_tail)
        for offset, record_type, crc, data in scan.records:
            name, term, index, summary = describe_record(record_type, data, crc)
            print(f"{offset:>10} {name:<8} term={term:<4} index={index:<8} {summary}", file=stream)
        running_crc = scan.running_crc
        if scan.end is FrameEnd.CORRUPT:
            print(f"CORRUPT at {path} offset {scan.end_offset}: {scan.reason}", file=stream)
            return VerifyStatus.CORRUPT
        if scan.end is FrameEnd.TORN:
            print(f"TORN TAIL at {path} offset {scan.end_offset}: {scan.reason}", file=stream)
            return VerifyStatus.REPAIRABLE_TAIL
    return VerifyStatus.VALID


def verify(directory: Path) -> tuple[VerifyStatus, str]:
    """Judge a WAL directory as a restart would: (status, one-line explanation)."""
    try:
        result = read_wal(directory, None)
    except WalCorruptError as error:
        return VerifyStatus.CORRUPT, str(error)
    except WalError as error:
        return VerifyStatus.UNREADABLE, str(error)
    contents = result.contents
    entries = contents.entries
    span = f"entries {entries[0].index}..{entries[-1].index}" if entries else "no entries"
    state = contents.hard_state
    summary = (
        f"{len(result.segments)} segment(s), {span}, hard state term={state.term} "
        f"vote={state.vote:x} commit={state.commit}"
    )
    if result.tail_state is TailState.TORN:
        return VerifyStatus.REPAIRABLE_TAIL, (
            f"repairable torn tail in {result.tail_path} at offset {result.tail_valid_bytes} "
            f"({result.tail_reason}); {summary}"
        )
    if result.tail_state is TailState.GARBAGE:
        return VerifyStatus.REPAIRABLE_TAIL, (
            f"repairable tail: {result.tail_reason} in {result.tail_path} after offset "
            f"{result.tail_valid_bytes}; {summary}"
        )
    return VerifyStatus.VALID, f"valid: {summary}"


def main(argv: Sequence[str]) -> int:
    """`etcdref wal dump|verify DIR`; bad flags exit 2 (argparse), never a traceback."""
    parser = argparse.ArgumentParser(prog="etcdref wal", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dump_parser = commands.add_parser("dump", help="print one line per record")
    dump_parser.add_argument("directory", type=Path, help="a WAL directory (e.g. DATA/member/wal)")
    verify_parser = commands.add_parser(
        "verify", help="exit 0 valid, 1 repairable tail, 3 corrupt, 4 unreadable"
    )
    verify_parser.add_argument(
        "directory", type=Path, help="a WAL directory (e.g. DATA/member/wal)"
    )
    arguments = parser.parse_args(argv)
    directory: Path = arguments.directory
    if arguments.command == "dump":
        try:
            return dump(directory)
        except (WalError, OSError) as error:
            print(f"etcdref wal dump: {getattr(error, 'strerror', None) or error}", file=sys.stderr)
            return VerifyStatus.UNREADABLE
    status, explanation = verify(directory)
    print(explanation, file=sys.stdout if status is VerifyStatus.VALID else sys.stderr)
    return status
