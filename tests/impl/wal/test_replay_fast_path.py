"""Replay's fast path (`reader._replay_run`) reads exactly what the rules read, and is used.

The fast path takes a normal entry by comparing its bytes with the layout etcd writes for its
frame length, crc width, term and index width. These tests write logs that cross every edge
of those layouts (index and payload varint widths, crcs of 5, 4 and fewer varint bytes, new
terms, conf changes, empty payloads written both ways, overwrites, state records between
entries) and require the same result with the fast path on and off. Damage is compared the
same way in `test_corruption.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import impl.wal.reader as reader
from etcdpb.raftpb import raft_pb2
from impl.wal import Entry, EntryType, HardState, Wal, WalError, read_wal
from impl.wal.files import list_segments
from impl.wal.record import RecordType, crc32c, encode_frame, scan_segment
from tests.impl.wal.helpers import METADATA, entry_payload


def read_both_ways(directory: Path) -> object:
    """The result of reading with the fast path, after checking the rules give the same."""
    results: list[object] = []
    for fast in (True, False):
        saved = reader.FAST_REPLAY
        reader.FAST_REPLAY = fast
        try:
            result = read_wal(directory)
            results.append((result.contents, result.tail_state, result.tail_valid_bytes,
                            result.running_crc, result.last_index))  # fmt: skip
        except WalError as error:
            results.append(f"{type(error).__name__}: {error}")
        finally:
            reader.FAST_REPLAY = saved
    assert results[0] == results[1]
    return results[0]


PAYLOAD_SIZES = [0, 1, 100, 117, 118, 127, 128, 129, 300, 16_370, 16_383, 16_384, 20_000]


def test_layout_edges_read_the_same_both_ways(tmp_path: Path) -> None:
    """Index varints of 1 to 3 bytes, payload lengths around each varint width, conf changes,
    new terms, batches with one state record each, and an overwrite of the last entries."""
    expected: dict[int, Entry] = {}
    term = 1
    with Wal.create(tmp_path / "wal", METADATA, segment_size_bytes=1 << 20) as wal:
        index = 1
        while index <= 16_500:
            batch: list[Entry] = []
            for _ in range(1 + index % 37):
                size = PAYLOAD_SIZES[index % len(PAYLOAD_SIZES)] if index % 5 == 0 else index % 7
                kind = EntryType.CONF_CHANGE if index % 997 == 0 else EntryType.NORMAL
                if index % 1500 == 0:
                    term += 1
                batch.append(
                    Entry(term, index, kind, entry_payload(index, max(size, 1) if kind else size))
                )
                index += 1
            wal.save(HardState(term, 1, batch[0].index), batch)
            expected.update((entry.index, entry) for entry in batch)
        # A new leader overwrites the last 20 entries.
        overwrite = [Entry(term + 1, i, data=b"new") for i in range(index - 20, index - 10)]
        wal.save(HardState(term + 1, 2, index - 21), overwrite)
        for entry in overwrite:
            expected[entry.index] = entry
        for stale in range(index - 10, index):
            del expected[stale]
    outcome = read_both_ways(tmp_path / "wal")
    assert isinstance(outcome, tuple)
    assert list(outcome[0].entries) == [expected[i] for i in sorted(expected)]
    crc_varint_widths = {
        len(_varint(crc))
        for segment in list_segments(tmp_path / "wal")
        for _, _, crc, _ in scan_segment((tmp_path / "wal" / segment.file_name()).read_bytes(), 0, tail=True).records
    }  # fmt: skip
    assert {3, 4, 5} <= crc_varint_widths, "the log should hold crcs of 3, 4 and 5 varint bytes"


def _varint(value: int) -> bytes:
    return raft_pb2.Entry(Term=value).SerializeToString()[1:]


def write_segment(directory: Path, entry_data: list[bytes]) -> None:
    """A one-segment WAL, written by hand: etcd's header records, then these entry records
    (raftpb.Entry bytes), one state record, then preallocated zeros."""
    Wal.create(directory, METADATA).close()
    (segment,) = list_segments(directory)
    path = directory / segment.file_name()
    header = scan_segment(path.read_bytes(), 0, tail=True)
    frames = [path.read_bytes()[: header.end_offset]]
    crc = header.running_crc
    state = raft_pb2.HardState(term=1, vote=1, commit=0).SerializeToString()
    for record_type, data in [(RecordType.ENTRY, d) for d in entry_data] + [
        (RecordType.STATE, state)
    ]:
        crc = crc32c(data, crc)
        frames.append(encode_frame(record_type, crc, data))
    path.write_bytes(b"".join(frames) + bytes(4096))


def test_empty_payload_written_as_etcd_does(tmp_path: Path) -> None:
    """etcd writes Data for a non-nil empty slice (tag 22, length 0); we leave it out; both
    read as an empty payload, both ways."""
    with_field = [
        raft_pb2.Entry(Type=raft_pb2.EntryNormal, Term=1, Index=i, Data=b"").SerializeToString()
        for i in (1, 2, 3)
    ]
    without_field = [
        raft_pb2.Entry(Type=raft_pb2.EntryNormal, Term=1, Index=i).SerializeToString()
        for i in (4, 5)
    ]
    assert with_field[0].endswith(b"\x22\x00") and not without_field[0].endswith(b"\x22\x00")
    write_segment(tmp_path / "wal", with_field + without_field)
    outcome = read_both_ways(tmp_path / "wal")
    assert isinstance(outcome, tuple)
    assert list(outcome[0].entries) == [Entry(1, i) for i in range(1, 6)]


@pytest.mark.parametrize(
    "message",
    [
        raft_pb2.Entry(
            Type=raft_pb2.EntryNormal, Term=1, Index=3, Data=b"x"
        ),  # a hole after index 1
        raft_pb2.Entry(
            Type=raft_pb2.EntryConfChange, Term=1, Index=2
        ),  # a conf change without data
        raft_pb2.Entry(Type=raft_pb2.EntryNormal, Term=0, Index=2, Data=b"x"),  # the term falls
    ],
)
def test_entries_the_rules_refuse_are_refused_both_ways(
    tmp_path: Path, message: raft_pb2.Entry
) -> None:
    first = raft_pb2.Entry(
        Type=raft_pb2.EntryNormal, Term=1, Index=1, Data=b"x"
    ).SerializeToString()
    write_segment(tmp_path / "wal", [first, message.SerializeToString()])
    outcome = read_both_ways(tmp_path / "wal")
    assert isinstance(outcome, str) and outcome.startswith("WalCorruptError")


def test_the_fast_path_takes_plain_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the entries the fast path cannot take (the first of each term, and 1 in 2048 whose
    crc varint is 3 bytes or shorter) reach `_apply_entry`, the rule-by-rule path."""
    with Wal.create(tmp_path / "wal", METADATA) as wal:
        for first in range(1, 4001, 100):
            term = 1 + first // 2000
            wal.save(
                HardState(term, 1, first),
                [Entry(term, i, data=bytes(40)) for i in range(first, first + 100)],
            )
    calls: list[int] = []
    original = reader._apply_entry

    def counting(*args: Any) -> None:
        calls.append(args[2])  # the record's offset
        original(*args)

    monkeypatch.setattr(reader, "_apply_entry", counting)
    assert len(read_wal(tmp_path / "wal").contents.entries) == 4000
    assert len(calls) <= 2 + 10, f"{len(calls)} of 4000 entries took the rules path"
