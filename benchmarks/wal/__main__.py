"""Measure the WAL against the disk, in one run, and print a table.

1. raw: `pwrite` then `fdatasync`, appending to a preallocated file (the WAL also writes into
   preallocated segments), 4 KiB per write as issue 4 asks, and 304 bytes (one batch-of-1
   save's size) for comparison;
2. WAL `save` with fdatasync at batch sizes 1, 10 and 100 entries of 256 bytes;
3. replay: write a log of `--replay-mb` MB (256-byte entries) and time reading it back with
   every check (`read_wal`, as `Wal.open` does), in MB/s of segment data.

This disk's fdatasync latency swings several-fold within seconds (other tenants), so rates
measured one after another cannot be compared. Instead every comparison is made in pairs of
short blocks (`--block` operations each) run back to back on files that stay open, in
alternating order; the ratio is taken within each pair and the median over `--pairs` pairs
is reported, with the quartiles.

Target (issue 4): batch-of-1 saves at >= 80% of raw 4 KiB fdatasyncs/s; replay >= 100 MB/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from impl.wal import Entry, HardState, Wal, WalMetadata, read_wal
from impl.wal.files import list_segments, preallocate

METADATA = WalMetadata(node_id=1, cluster_id=2)
ENTRY_BYTES = 256


class RawLoop:
    """Appending `write_bytes` writes, each followed by fdatasync, to a preallocated file."""

    def __init__(self, path: Path, write_bytes: int) -> None:
        self.descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        preallocate(self.descriptor, 64 * 1000 * 1000)
        os.fsync(self.descriptor)
        self.block = os.urandom(write_bytes)
        self.offset = 0

    def run(self, operations: int) -> float:
        """Operations per second over `operations` write+fdatasync pairs."""
        started = time.perf_counter()
        for _ in range(operations):
            os.pwrite(self.descriptor, self.block, self.offset)
            os.fdatasync(self.descriptor)
            self.offset += len(self.block)
        return operations / (time.perf_counter() - started)

    def close(self) -> None:
        os.close(self.descriptor)


class WalLoop:
    """`Wal.save` of `batch_size` fresh 256-byte entries; every save carries entries, so
    every save is fdatasynced before it returns."""

    def __init__(self, directory: Path, batch_size: int) -> None:
        self.wal = Wal.create(directory, METADATA)
        self.batch_size = batch_size
        self.payload = os.urandom(ENTRY_BYTES)
        self.index = 0

    def run(self, operations: int) -> float:
        """Saves per second over `operations` saves."""
        started = time.perf_counter()
        for _ in range(operations):
            first = self.index + 1
            entries = [Entry(1, first + i, data=self.payload) for i in range(self.batch_size)]
            self.index += self.batch_size
            self.wal.save(HardState(1, 1, first - 1), entries)
        return operations / (time.perf_counter() - started)

    def close(self) -> None:
        self.wal.close()


def paired(
    first: Callable[[int], float], second: Callable[[int], float], pairs: int, block: int
) -> tuple[float, float, list[float]]:
    """(median rate of `first`, median rate of `second`, per-pair ratios second/first)."""
    first_rates: list[float] = []
    second_rates: list[float] = []
    for pair in range(pairs):
        if pair % 2:
            first_rates.append(first(block))
            second_rates.append(second(block))
        else:
            second_rates.append(second(block))
            first_rates.append(first(block))
    ratios = [b / a for a, b in zip(first_rates, second_rates, strict=True)]
    return statistics.median(first_rates), statistics.median(second_rates), ratios


def replay_megabytes_per_second(
    directory: Path, log_megabytes: int
) -> tuple[float, float, float, int]:
    """(MB/s wall clock, seconds, MB/s of CPU time, entries) reading back a log of about
    `log_megabytes` MB, best of three reads."""
    wal_directory = directory / "wal-replay"
    payload = os.urandom(ENTRY_BYTES)
    target_bytes = log_megabytes * 1000 * 1000
    with Wal.create(wal_directory, METADATA) as wal:
        index = 0
        written = 0
        while written < target_bytes:
            entries = [Entry(1, index + i + 1, data=payload) for i in range(1000)]
            index += 1000
            wal.save(HardState(1, 1, index), entries)
            written += 1000 * (ENTRY_BYTES + 32)
    segments = list_segments(wal_directory)
    data_bytes = sum((wal_directory / s.file_name()).stat().st_size for s in segments[:-1])
    result = read_wal(wal_directory)  # warm the page cache once; replay is CPU-bound
    data_bytes += result.tail_valid_bytes
    del result
    elapsed, cpu_seconds = float("inf"), float("inf")
    for _ in range(3):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = read_wal(wal_directory)
        elapsed = min(elapsed, time.perf_counter() - started)
        cpu_seconds = min(cpu_seconds, time.process_time() - cpu_started)
        assert len(result.contents.entries) == index
        del result
    shutil.rmtree(wal_directory)
    megabytes = data_bytes / 1e6
    return megabytes / elapsed, elapsed, megabytes / cpu_seconds, index


def quartiles(values: list[float]) -> str:
    low, middle, high = statistics.quantiles(values, n=4)
    return f"{middle:4.2f} (quartiles {low:4.2f} to {high:4.2f})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.wal", description=__doc__)
    parser.add_argument("--pairs", type=int, default=40, help="pairs of blocks per comparison")
    parser.add_argument("--block", type=int, default=40, help="operations per block")
    parser.add_argument("--replay-mb", type=int, default=256, help="size of the replayed log")
    parser.add_argument(
        "--replay-only", action="store_true", help="measure replay only (no fdatasync loops)"
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write (default: a temp dir)"
    )
    arguments = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="wal-bench-", dir=arguments.dir))
    pairs, block = arguments.pairs, arguments.block
    try:
        if not arguments.replay_only:
            measure_saves(base, pairs, block)
        speed, elapsed, cpu_speed, entries = replay_megabytes_per_second(base, arguments.replay_mb)
        print(
            f"replay {arguments.replay_mb} MB ({entries} entries, page cache warm): {elapsed:.2f} s, "
            f"{speed:.0f} MB/s wall clock, {cpu_speed:.0f} MB/s of CPU time"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


def measure_saves(base: Path, pairs: int, block: int) -> None:
    """Print the raw fdatasync rates and the WAL's save rates against them."""
    raw_4k = RawLoop(base / "raw-4k", 4096)
    raw_304 = RawLoop(base / "raw-304", 304)
    print(f"directory: {base}; {pairs} pairs of {block}-operation blocks per comparison")
    raw_rate, raw_small_rate, ratios = paired(raw_4k.run, raw_304.run, pairs, block)
    print(f"raw 4 KiB pwrite+fdatasync: {raw_rate:8.0f} /s (median of blocks)")
    print(
        f"raw 304 B pwrite+fdatasync: {raw_small_rate:8.0f} /s, ratio to 4 KiB {quartiles(ratios)}"
    )
    for batch_size in (1, 10, 100):
        loop = WalLoop(base / f"wal-{batch_size}", batch_size)
        raw_rate, saves, ratios = paired(raw_4k.run, loop.run, pairs, block)
        print(
            f"WAL save, batch {batch_size:>3} x {ENTRY_BYTES} B: {saves:7.0f} saves/s "
            f"{saves * batch_size:8.0f} entries/s; ratio to raw 4 KiB {quartiles(ratios)}"
        )
        if batch_size == 1:
            _, _, small_ratios = paired(raw_304.run, loop.run, pairs, block)
            print(f"  the same saves against raw 304 B: ratio {quartiles(small_ratios)}")
        loop.close()
    raw_4k.close()
    raw_304.close()


if __name__ == "__main__":
    raise SystemExit(main())
