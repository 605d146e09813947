"""`etcdref conformance`: run the suite against servers someone else runs, or launch a cluster.

    etcdref conformance --endpoints 127.0.0.1:2379[,...] [--profile kubernetes|kv-watch-lease|full]
    etcdref conformance --launch etcd|etcdref --size 1|3 [--faults kill|kill-leader|pause|rolling-restart|blackhole|delay|drop] [--profile ...]

Prints a progress bar while the checks run and a summary table at the end (check, result,
seconds), writes the report directory (see `conformance.report`), and exits 0 when nothing
failed (unsupported RPCs and known deviations do not fail a run), 1 when a check failed or
could not finish, 2 when the target could not be used at all.

The compaction check compacts the target's history; point the suite at a server whose data
you do not need.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from conformance.checks import CHECKS, PROFILES, CheckContext, CheckResult, Outcome, run_check
from conformance.faults import NETWORK_FAULTS, Fault, FaultRecord
from conformance.launcher import LaunchedCluster, LaunchFailed
from conformance.preflight import probe
from conformance.report import write_report
from conformance.workload import WorkloadSettings
from spec import constants

STYLES = {
    Outcome.PASSED: "green",
    Outcome.FAILED: "bold red",
    Outcome.ERROR: "bold red",
    Outcome.UNSUPPORTED: "yellow",
    Outcome.KNOWN_DEVIATION: "cyan",
}


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="etcdref conformance",
        description="Check an etcd v3 API server against etcd's documented guarantees.",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--endpoints", help="comma-separated host:port (or http://host:port) list")
    target.add_argument("--launch", choices=["etcd", "etcdref"], help="start a cluster on loopback")
    parser.add_argument("--size", type=int, choices=[1, 3], default=1, help="members to launch")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument(
        "--report", type=Path, help="report directory (default: conformance-report/TIME)"
    )
    parser.add_argument("--clients", type=int, default=4, help="concurrent workload clients")
    parser.add_argument("--operations", type=int, default=100, help="operations per client")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--duration", type=float, default=30.0, help="longest the workload may run, in seconds"
    )
    parser.add_argument(
        "--faults",
        choices=[str(fault) for fault in Fault],
        help="with --launch: inject this fault once during the linearizability workload",
    )
    parser.add_argument("--etcd-binary", default="etcd", help="etcd executable for --launch etcd")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(list(sys.argv[1:] if argv is None else argv))
    console = Console(highlight=False, soft_wrap=True)
    if arguments.faults and not arguments.launch:
        console.print(
            "[red]--faults needs --launch: the suite only injects faults into clusters it started[/red]"
        )
        return 2
    cluster: LaunchedCluster | None = None
    try:
        if arguments.launch:
            console.print(
                f"launching a {arguments.size}-member {arguments.launch} cluster on 127.0.0.1 ..."
            )
            cluster = LaunchedCluster(
                size=arguments.size,
                executable=arguments.etcd_binary,
                server=arguments.launch,
                peer_proxies=arguments.faults in {str(fault) for fault in NETWORK_FAULTS},
            )
            cluster.start()
            endpoints = cluster.endpoints
        else:
            endpoints = [
                endpoint.strip() for endpoint in arguments.endpoints.split(",") if endpoint.strip()
            ]
        return run(arguments, endpoints, cluster, console)
    except LaunchFailed as failure:
        console.print(f"[red]could not launch {arguments.launch}:[/red] {failure}")
        return 2
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]")
        return 130
    finally:
        if cluster is not None:
            cluster.stop()


def run(
    arguments: argparse.Namespace,
    endpoints: list[str],
    cluster: LaunchedCluster | None,
    console: Console,
) -> int:
    probes = [probe(endpoint) for endpoint in endpoints]
    problems = [result.problem for result in probes if result.problem]
    if problems:
        for problem in problems:
            console.print(f"[red]error:[/red] {problem}")
        return 2
    context = CheckContext(
        endpoints=[result.endpoint for result in probes],
        prefix=f"/etcdref-conformance/{uuid.uuid4().hex[:10]}/".encode(),
        workload=WorkloadSettings(
            client_count=arguments.clients,
            operations_per_client=arguments.operations,
            seed=arguments.seed,
            duration_seconds_max=arguments.duration,
        ),
        server_version=probes[0].version,
        cluster=cluster,
        minimum_ttl_seconds=constants.lease_ttl_seconds_min if cluster is not None else None,
        # Launched etcd sends progress notifications every 100 ms (launcher.DEFAULT_FLAGS);
        # etcdref's node has no such setting, so the periodic notification is not required.
        progress_notify_seconds=0.1 if cluster is not None and cluster.server == "etcd" else None,
        fault=Fault(arguments.faults) if arguments.faults else None,
    )
    report_directory = arguments.report or Path("conformance-report") / time.strftime(
        "%Y%m%dT%H%M%S"
    )
    console.print(
        f"target: {', '.join(context.endpoints)} (version {context.server_version or 'unknown'}), "
        f"profile {arguments.profile}, report in {report_directory}"
    )
    results: list[CheckResult] = []
    names = PROFILES[arguments.profile]
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("checks", total=len(names))
        for name in names:
            progress.update(task, description=f"running {name}")
            results += run_check(CHECKS[name], context)
            write_report(report_directory, results, context)
            progress.advance(task)
    console.print(summary_table(results))
    fault = context.artifacts.get("fault")
    if isinstance(fault, FaultRecord):
        console.print(f"fault injected: {fault.describe()}")
    failed = [result for result in results if result.outcome in (Outcome.FAILED, Outcome.ERROR)]
    console.print(
        f"{len(results)} results: {len(results) - len(failed)} without failure, {len(failed)} failed; "
        f"report: {report_directory}"
    )
    return 1 if failed else 0


def summary_table(results: Sequence[CheckResult]) -> Table:
    table = Table(title="etcd conformance")
    table.add_column("check")
    table.add_column("result")
    table.add_column("seconds", justify="right")
    table.add_column("detail", overflow="fold")
    for result in results:
        detail = result.messages[0] if result.messages else ""
        if len(result.messages) > 1:
            detail += f" (+{len(result.messages) - 1} more)"
        table.add_row(
            result.name,
            f"[{STYLES[result.outcome]}]{result.outcome}[/]",
            f"{result.seconds:.1f}",
            detail[:300],
        )
    return table
