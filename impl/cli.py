"""`etcdref`: the command line. Each subcommand lives in the module that owns it.

This file is the composition root (the one place allowed to import every layer); it maps a
subcommand name to `module:function`, imports the module only when the command runs, and
passes the remaining arguments to a `main(argv) -> int` there, which parses its own flags.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple


class Command(NamedTuple):
    entry_point: str  # "package.module:function", the function taking argv and returning an exit code
    summary: str


COMMANDS: dict[str, Command] = {
    "explore": Command(
        "models.explore:main",
        "exhaustively explore a small Raft cluster, checking every safety invariant",
    ),
    "node": Command("impl.node.cli:node_main", "run one etcd member (etcd's flag names)"),
    "cluster": Command(
        "impl.node.cli:cluster_main", "run a local cluster on loopback (default 3 members)"
    ),
    "bench": Command("benchmarks.cli:main", "run a benchmark suite (raft, wal, mvcc, linearizability)"),
    "wal": Command("impl.wal.cli:main", "dump or verify an etcd-format WAL directory (etcd 3.4+ or etcdref)"),
    "conformance": Command("conformance.cli:main", "check an etcd v3 API server (or launched etcd) against etcd's guarantees"),
}


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: etcdref COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()]
    lines += ["", "Run `etcdref COMMAND --help` for a command's flags."]
    return "\n".join(lines)


def resolve(entry_point: str) -> Callable[[Sequence[str]], int]:
    module_name, function_name = entry_point.split(":")
    function: Callable[[Sequence[str]], int] = getattr(
        importlib.import_module(module_name), function_name
    )
    return function


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = arguments[0], arguments[1:]
    command = COMMANDS.get(name)
    if command is None:
        print(f"etcdref: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    return resolve(command.entry_point)(rest)


if __name__ == "__main__":
    sys.exit(main())
