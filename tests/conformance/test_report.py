"""The report directory holds what the README promises, for a failing run too."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from conformance.checks import CheckContext, CheckResult, Outcome
from conformance.history import read_history
from conformance.linearizability.checker import check_history
from conformance.linearizability.synthetic import simulate, stale_read
from conformance.report import write_report
from conformance.timeline import render_timeline
from conformance.workload import WorkloadSettings


def failing_context() -> CheckContext:
    history, reference = simulate(3, 120, 4, 3, 0.05)
    mutated = stale_read(history, random.Random(3))
    assert mutated is not None
    context = CheckContext(endpoints=["127.0.0.1:2379"], prefix=b"/p/", workload=WorkloadSettings())
    context.artifacts["history"] = mutated
    context.artifacts["linearizability"] = check_history(mutated, 5, reference)
    return context


def test_failing_run_leaves_history_verdict_timeline_and_junit(tmp_path: Path) -> None:
    context = failing_context()
    results = [
        CheckResult("linearizability", Outcome.FAILED, 1.5, ["key 'key2': no linearization"]),
        CheckResult("lease", Outcome.UNSUPPORTED, 0.1, ["LeaseGrant: UNIMPLEMENTED"]),
        CheckResult("watch: ordered", Outcome.PASSED, 0.2),
    ]
    write_report(tmp_path, results, context)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [result["outcome"] for result in summary["results"]] == ["failed", "unsupported", "passed"]
    suite = ElementTree.fromstring((tmp_path / "junit.xml").read_text())
    assert suite.get("failures") == "1"
    assert suite.get("skipped") == "1"
    assert read_history(tmp_path) == context.artifacts["history"]
    verdict = json.loads((tmp_path / "linearizability.json").read_text())
    assert verdict["verdict"] == "illegal"
    assert verdict["excerpts"]
    page = (tmp_path / "history.html").read_text()
    assert page.startswith("<!doctype html>")
    assert "outline:2px solid #d00" in page


def test_timeline_escapes_values_and_marks_unknown_completions() -> None:
    history, _ = simulate(1, 40, 2, 2, 0.3)
    page = render_timeline(history, [], "<title & test>")
    assert "&lt;title &amp; test&gt;" in page
    assert "repeating-linear-gradient" in page
    assert "<script" not in page
