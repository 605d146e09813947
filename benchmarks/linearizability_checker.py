"""Benchmark: how long the conformance suite's linearizability checker takes on a large history.

Target from issue 5: a 10,000-operation history from 8 clients checked in under 5 seconds on
the project machine (2 cores). The history comes from the simulated correct store in
`conformance.linearizability.synthetic` (10 keys, 1% of writes indeterminate, resolved from the simulated reference history as a
real run resolves them from a watch from revision 1), so the verdict must be "ok"; a mutated copy (one stale read) must be "illegal" and is timed too.

Run: `.venv/bin/python -m benchmarks.linearizability_checker [--operations N] [--clients N]`
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence

from conformance.linearizability.checker import check_history
from conformance.linearizability.search import Verdict
from conformance.linearizability.synthetic import simulate, stale_read


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--operations", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--indeterminate", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--without-reference",
        action="store_true",
        help="do not resolve indeterminate writes from the simulated reference history",
    )
    arguments = parser.parse_args(argv)
    history, persisted = simulate(
        arguments.seed, arguments.operations, arguments.clients, arguments.keys, arguments.indeterminate
    )
    reference = None if arguments.without_reference else persisted
    started = time.perf_counter()
    report = check_history(history, budget_seconds=120, reference=reference)
    correct_seconds = time.perf_counter() - started
    mutated = stale_read(history, random.Random(arguments.seed))
    assert mutated is not None
    started = time.perf_counter()
    mutated_report = check_history(mutated, budget_seconds=120, reference=reference)
    mutated_seconds = time.perf_counter() - started
    print(
        f"{arguments.operations} operations, {arguments.clients} clients, {arguments.keys} keys, "
        f"{arguments.indeterminate:.0%} indeterminate writes (seed {arguments.seed}), "
        + ("unresolved" if reference is None else "resolved from the reference history")
    )
    print(f"  correct history: {report.verdict} in {correct_seconds:.2f} s")
    print(f"  one stale read:  {mutated_report.verdict} in {mutated_seconds:.2f} s")
    ok = report.verdict == Verdict.OK and mutated_report.verdict == Verdict.ILLEGAL
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
