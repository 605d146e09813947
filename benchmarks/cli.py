"""`etcdref bench NAME [ARGS]`: run one benchmark suite; each lives in its own module under benchmarks/."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

SUITES: dict[str, tuple[str, str]] = {
    "raft": ("benchmarks.raft.__main__", "spec steps per second and explorer states per second"),
    "wal": ("benchmarks.wal.__main__", "WAL appends with fsync vs raw fdatasync, and replay speed"),
    "node": (
        "benchmarks.node.__main__",
        "etcdctl check perf against three etcdref members and three etcd members, CPU per write",
    ),
    "mvcc": ("benchmarks.mvcc_backend", "LMDB keyspace: puts, ranges, compaction with many keys"),
    "linearizability": (
        "benchmarks.linearizability_checker",
        "the conformance checker on large histories",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in SUITES:
        if arguments and arguments[0] not in ("-h", "--help"):
            print(f"etcdref bench: unknown suite {arguments[0]!r}", file=sys.stderr)
        print("usage: etcdref bench SUITE [ARGS]\n\nsuites:")
        for name, (_, summary) in SUITES.items():
            print(f"  {name:<16} {summary}")
        return 0 if not arguments or arguments[0] in ("-h", "--help") else 2
    module_name, _ = SUITES[arguments[0]]
    suite_main: Callable[..., int] = importlib.import_module(module_name).main
    return suite_main(arguments[1:])
