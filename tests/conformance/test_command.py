"""`etcdref conformance`: clear errors within seconds, a passing run against real etcd, a report."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.checks import CHECKS, CheckContext, Outcome, run_check
from conformance.cli import main
from conformance.launcher import LaunchedCluster
from conformance.workload import WorkloadSettings
from tests.conformance.doctored_server import empty_grpc_server


def run_command(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, float]:
    started = time.monotonic()
    code = main(arguments)
    captured = capsys.readouterr()
    return code, captured.out + captured.err, time.monotonic() - started


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_unreachable_endpoint_is_named_within_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    code, output, seconds = run_command(["--endpoints", "127.0.0.1:1"], capsys)
    assert code == 2
    assert "cannot reach 127.0.0.1:1" in output
    assert "Traceback" not in output
    assert seconds < 10


def test_http1_server_is_not_an_etcd_server(
    http_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output, seconds = run_command(["--endpoints", http_server], capsys)
    assert code == 2
    assert "not gRPC" in output
    assert seconds < 10


def test_grpc_server_without_etcd_services_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    server, endpoint = empty_grpc_server()
    try:
        code, output, seconds = run_command(["--endpoints", endpoint], capsys)
    finally:
        server.stop(grace=None)
    assert code == 2
    assert "not an etcd v3 API server" in output
    assert seconds < 10


def test_faults_need_a_launched_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    code, output, _ = run_command(["--endpoints", "127.0.0.1:2379", "--faults", "kill"], capsys)
    assert code == 2
    assert "--faults needs --launch" in output


@pytest.mark.etcd
def test_launched_etcd_passes_and_leaves_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report"
    code, output, _ = run_command(
        ["--launch", "etcd", "--size", "1", "--profile", "full", "--report", str(report),
         "--clients", "3", "--operations", "50"],
        capsys,
    )  # fmt: skip
    assert code == 0, output
    assert "etcd conformance" in output
    summary = json.loads((report / "summary.json").read_text())
    outcomes = {result["name"]: result["outcome"] for result in summary["results"]}
    assert outcomes["linearizability"] == "passed"
    assert outcomes["watch: reliable"] == "passed"
    assert outcomes["lease: expiry deletes keys"] == "passed"
    assert set(outcomes.values()) <= {"passed", "known deviation"}
    assert (report / "junit.xml").read_text().startswith("<testsuite")
    assert len(list(report.glob("client-*/operations.json"))) == 3
    assert (report / "watch" / "reference.json").exists()
    assert json.loads((report / "linearizability.json").read_text())["verdict"] == "ok"


@pytest.mark.etcd
def test_target_that_dies_gives_an_error_result_not_a_traceback() -> None:
    cluster = LaunchedCluster(size=1)
    cluster.start()
    context = CheckContext(
        endpoints=cluster.endpoints,
        prefix=b"/dies/",
        workload=WorkloadSettings(),
        server_version="",
    )
    cluster.stop()
    started = time.monotonic()
    results = run_check(CHECKS["lease"], context)
    assert [result.outcome for result in results] == [Outcome.ERROR]
    assert "UNAVAILABLE" in results[0].messages[0] or "DEADLINE" in results[0].messages[0]
    assert time.monotonic() - started < 20
