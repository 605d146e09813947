"""Measure the WAL against the disk, in one run, and print a table.

1. raw: a loop of `pwrite 4 KiB + fdatasync` appending to a preallocated file (the disk's
   limit for small durable writes; the WAL also writes into preallocated segments), and, for
   comparison, the same loop on a file that grows with each write and a loop of 304-byte
   writes (one batch-of-1 save's size);
2. WAL `save` with fdatasync at batch sizes 1, 10 and 100 entries of 256 bytes: saves/s,
   entries/s and the ratio of saves/s to the raw loop's fdatasyncs/s;
3. replay: write a log of `--replay-mb` MB (256-byte entries) and time reading it back with
   full checking (`read_wal`, as `Wal.open` does), in MB/s of segment data.

Target (issue 4): batch-of-1 saves at >= 80% of raw fdatasyncs/s; replay >= 100 MB/s.
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
RAW_WRITE_BYTES = 4096


def raw_fdatasync_per_second(
    directory: Path, seconds: float, preallocated: bool, write_bytes: int = RAW_WRITE_BYTES
) -> float:
    """Appending writes of `write_bytes`, each followed by fdatasync, for `seconds`."""
    path = directory / ("raw-preallocated" if preallocated else "raw-growing")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if preallocated:
            preallocate(descriptor, 64 * 1000 * 1000)
            os.fsync(descriptor)
        block = os.urandom(write_bytes)
        count, offset = 0, 0
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            os.pwrite(descriptor, block, offset)
            os.fdatasync(descriptor)
            offset += write_bytes
            count += 1
        return count / (time.perf_counter() - started)
    finally:
        os.close(descriptor)
        path.unlink()


def wal_saves_per_second(directory: Path, seconds: float, batch_size: int) -> float:
    """`Wal.save` of `batch_size` fresh 256-byte entries (each save synced) for `seconds`."""
    wal_directory = directory / f"wal-batch-{batch_size}"
    payload = os.urandom(ENTRY_BYTES)
    wal = Wal.create(wal_directory, METADATA)
    try:
        count, index = 0, 0
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            entries = [Entry(1, index + i + 1, data=payload) for i in range(batch_size)]
            index += batch_size
            wal.save(HardState(1, 1, index - batch_size), entries)
            count += 1
        return count / (time.perf_counter() - started)
    finally:
        wal.close()
        shutil.rmtree(wal_directory)


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.wal", description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.5, help="duration of each measurement")
    parser.add_argument("--rounds", type=int, default=12, help="rounds (medians reported)")
    parser.add_argument("--replay-mb", type=int, default=256, help="size of the replayed log")
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write (default: a temp dir)"
    )
    arguments = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="wal-bench-", dir=arguments.dir))
    seconds = arguments.seconds
    # The disk's fdatasync latency drifts a lot (other tenants). Every round measures each
    # loop once, in an order rotated from round to round; ratios are taken within a round,
    # where conditions are closest, and medians are reported.
    measurements: dict[str, Callable[[], float]] = {
        "raw": lambda: raw_fdatasync_per_second(base, seconds, preallocated=True),
        "raw-growing": lambda: raw_fdatasync_per_second(base, seconds, preallocated=False),
        "raw-304": lambda: raw_fdatasync_per_second(base, seconds, True, write_bytes=304),
        "1": lambda: wal_saves_per_second(base, seconds, 1),
        "10": lambda: wal_saves_per_second(base, seconds, 10),
        "100": lambda: wal_saves_per_second(base, seconds, 100),
    }
    names = list(measurements)
    samples: dict[str, list[float]] = {name: [] for name in names}
    try:
        for round_number in range(arguments.rounds):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(measurements[name]())
        print(f"directory: {base}; {arguments.rounds} rounds of {seconds} s per loop; medians")
        for name, label in (
            ("raw", "raw 4 KiB pwrite+fdatasync, preallocated file"),
            ("raw-growing", "raw 4 KiB pwrite+fdatasync, growing file     "),
            ("raw-304", "raw 304 B pwrite+fdatasync, preallocated file"),
        ):
            print(f"{label}: {statistics.median(samples[name]):8.0f} /s")
        for batch_size in (1, 10, 100):
            per_round = samples[str(batch_size)]
            saves = statistics.median(per_round)
            ratio = statistics.median(w / r for w, r in zip(per_round, samples["raw"], strict=True))
            print(
                f"WAL save, batch {batch_size:>3} x {ENTRY_BYTES} B: {saves:8.0f} saves/s "
                f"{saves * batch_size:10.0f} entries/s  ratio to raw (median per round) {ratio:5.2f}"
            )
        for name, values in samples.items():
            print(f"  samples {name:>11}: " + " ".join(f"{value:.0f}" for value in values))
        speed, elapsed, cpu_speed, entries = replay_megabytes_per_second(base, arguments.replay_mb)
        print(
            f"replay {arguments.replay_mb} MB ({entries} entries, page cache warm): {elapsed:.2f} s, "
            f"{speed:.0f} MB/s wall clock, {cpu_speed:.0f} MB/s of CPU time"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
