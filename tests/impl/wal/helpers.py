"""Shared helpers for the WAL tests: a deterministic workload and file inspection."""

from __future__ import annotations

import random
from pathlib import Path

from impl.wal import Entry, HardState, Wal, WalMetadata

METADATA = WalMetadata(node_id=0x8E9E05C52164694D, cluster_id=0xCDF818194E3A8C32)


def entry_payload(index: int, size_bytes: int = 64) -> bytes:
    """A payload that depends only on the index, so any reader can check it."""
    return random.Random(index).randbytes(size_bytes)


def write_log(
    directory: Path, entry_count: int, batch_size: int = 7, segment_size_bytes: int = 16 * 1024
) -> list[Entry]:
    """Create a WAL and save `entry_count` entries in batches, one hard state per batch;
    return the entries written."""
    written: list[Entry] = []
    with Wal.create(directory, METADATA, segment_size_bytes=segment_size_bytes) as wal:
        index = 1
        while index <= entry_count:
            batch = [
                Entry(term=1 + (i // 50), index=i, data=entry_payload(i))
                for i in range(index, min(entry_count, index + batch_size - 1) + 1)
            ]
            wal.save(HardState(term=batch[-1].term, vote=1, commit=index - 1), batch)
            written.extend(batch)
            index += len(batch)
    return written
