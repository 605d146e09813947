"""Benchmark of the MVCC spec over the LMDB keyspace: puts, point ranges, 1,000-key prefix
ranges and compaction with a million keys, in operations per second, plus resident memory.

Everything runs in one process through the same functions a node uses (spec.mvcc operations,
`LmdbKeyspace.apply` and `commit`), without Raft or gRPC, so the figures are the keyspace's
own ceiling. Keys are `dddd/dddd` (1,000 prefixes of 1,000 keys each, loaded in key order like
etcd's `benchmark put --sequential-keys`); values are 256 bytes, as in etcd's published
benchmarks. Puts are committed in batches (`--batch`), one LMDB commit each.

    .venv/bin/python -m benchmarks.mvcc_backend --keys 1000000 --directory /tmp/etcdref-bench
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from impl.backend.keyspace import LmdbKeyspace
from spec.mvcc import (
    Applied,
    CompactionRequest,
    PutRequest,
    RangeRequest,
    compact,
    put,
    range_keys,
)

PREFIX_KEYS = 1000
VALUE_BYTES = 256


def resident_memory_bytes() -> int:
    """The process's resident set size, from /proc (Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def key_of(number: int) -> bytes:
    return b"%04d/%04d" % divmod(number, PREFIX_KEYS)


def timed(label: str, count: int, action: Callable[[], None], results: dict[str, Any]) -> None:
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    results[label] = {
        "operations": count,
        "seconds": round(seconds, 3),
        "per_second": round(count / seconds),
    }
    print(
        f"{label:<28} {count:>9} ops in {seconds:8.2f} s  = {count / seconds:>10,.0f} ops/s",
        flush=True,
    )


def run(keys: int, directory: Path, batch: int, sync: bool, seed: int) -> dict[str, Any]:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    store = LmdbKeyspace(directory / "db", sync=sync)
    random_numbers = random.Random(seed)
    value = bytes(random_numbers.getrandbits(8) for _ in range(VALUE_BYTES))
    results: dict[str, Any] = {
        "keys": keys,
        "value_bytes": VALUE_BYTES,
        "batch": batch,
        "sync": sync,
    }
    memory_before = resident_memory_bytes()

    def put_all(numbers: range | list[int]) -> None:
        for position, number in enumerate(numbers, 1):
            outcome = put(store, PutRequest(key=key_of(number), value=value))
            assert isinstance(outcome, Applied)
            store.apply(outcome.changes)
            if position % batch == 0:
                store.commit(store.current_revision())
        store.commit(store.current_revision())

    timed("put (new keys)", keys, lambda: put_all(range(keys)), results)
    memory_loaded = resident_memory_bytes()
    results["resident_memory_bytes"] = memory_loaded
    results["resident_memory_bytes_per_key"] = round((memory_loaded - memory_before) / keys)
    results["file_bytes_after_load"] = store.size_bytes()
    print(
        f"resident memory: {memory_loaded / 2**20:,.0f} MiB, {results['resident_memory_bytes_per_key']} bytes per key"
    )

    point_reads = min(100_000, keys)
    chosen = [random_numbers.randrange(keys) for _ in range(point_reads)]

    def read_points() -> None:
        for number in chosen:
            outcome = range_keys(store, RangeRequest(key=key_of(number)))
            assert isinstance(outcome, Applied) and outcome.response.count == 1

    timed("range (one key)", point_reads, read_points, results)

    prefixes = max(1, min(200, keys // PREFIX_KEYS))

    def read_prefixes() -> None:
        for _ in range(prefixes):
            prefix = b"%04d/" % random_numbers.randrange(max(1, keys // PREFIX_KEYS))
            end = prefix[:-1] + bytes([prefix[-1] + 1])
            outcome = range_keys(store, RangeRequest(key=prefix, range_end=end))
            assert isinstance(outcome, Applied) and len(outcome.response.kvs) == min(
                PREFIX_KEYS, keys
            )

    timed("range (1,000-key prefix)", prefixes, read_prefixes, results)

    rewrites = keys // 10
    timed(
        "put (overwrite 10%)",
        rewrites,
        lambda: put_all(random_numbers.sample(range(keys), rewrites)),
        results,
    )

    def compact_all() -> None:
        outcome = compact(store, CompactionRequest(revision=store.current_revision()))
        assert isinstance(outcome, Applied)
        results["compaction_records_removed"] = len(outcome.changes.records_removed)
        store.apply(outcome.changes)
        store.commit(store.current_revision())

    timed("compact (one, over every key)", 1, compact_all, results)
    size_before = store.size_bytes()
    timed("defragment", 1, store.defragment, results)
    results["file_bytes_before_defragment"] = size_before
    results["file_bytes_after_defragment"] = store.size_bytes()
    print(
        f"file: {size_before / 2**20:,.1f} MiB before defragment, {store.size_bytes() / 2**20:,.1f} MiB after"
    )
    store.close()
    shutil.rmtree(directory, ignore_errors=True)
    return results


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--directory", type=Path, default=Path("/tmp/etcdref-mvcc-bench"))
    parser.add_argument("--batch", type=int, default=1000, help="puts per LMDB commit")
    parser.add_argument("--no-sync", action="store_true", help="skip fsync on commit")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args(arguments)
    results = run(options.keys, options.directory, options.batch, not options.no_sync, options.seed)
    results["python"] = sys.version.split()[0]
    results["cpus"] = os.cpu_count()
    if options.json:
        options.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
