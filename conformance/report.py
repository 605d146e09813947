"""The report directory: what a run leaves behind for a person and for CI.

    summary.json                  every result: check, outcome, seconds, messages
    junit.xml                     the same as JUnit XML (failed and error as <failure>/<error>,
                                  unsupported as <skipped>)
    client-N/operations.json      the linearizability workload's history, one operation a line
    linearizability.json          the checker's verdict, failures and minimal failing excerpts
    history.html                  for a history that is not linearizable: a timeline (timeline.py)
    watch/NAME.json               every recorded watch stream (the reference one included)
    api-vectors.jsonl             the API semantics run as replayable vectors (VECTORS.md)

Written after every check, so a run that dies midway keeps what it had.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from conformance.api_semantics.comparison import SemanticsResult, write_vectors
from conformance.checks import CheckContext, CheckResult, Outcome
from conformance.history import Operation, write_history
from conformance.linearizability.checker import LinearizabilityReport
from conformance.timeline import write_timeline
from conformance.watch.recording import WatchRecording


def write_report(directory: Path, results: Sequence[CheckResult], context: CheckContext) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    summary = {
        "endpoints": context.endpoints,
        "server_version": context.server_version,
        "results": [asdict(result) for result in results],
    }
    (directory / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (directory / "junit.xml").write_text(junit_xml(results))
    history = context.artifacts.get("history")
    if isinstance(history, list):
        write_history(
            directory, [operation for operation in history if isinstance(operation, Operation)]
        )
    verdict = context.artifacts.get("linearizability")
    if isinstance(verdict, LinearizabilityReport):
        (directory / "linearizability.json").write_text(
            json.dumps(verdict_json(verdict), indent=2) + "\n"
        )
        if verdict.verdict != "ok" and isinstance(history, list):
            stuck = [
                operation.identifier
                for parts in verdict.excerpts.values()
                for operation in parts.get("could_not_follow", [])
            ]
            title = "; ".join(verdict.failures[:3])
            write_timeline(directory / "history.html", history, stuck, title)
    semantics = context.artifacts.get("api semantics")
    if isinstance(semantics, SemanticsResult):
        write_vectors(directory / "api-vectors.jsonl", semantics, context.workload.seed)
    recordings: list[object] = []
    for name in ("reference", "watches", "compaction watch"):
        artifact = context.artifacts.get(name)
        recordings += artifact if isinstance(artifact, list) else [artifact]
    for recording in recordings:
        if isinstance(recording, WatchRecording):
            path = (
                directory / "watch" / (re.sub(r"[^a-z0-9]+", "-", recording.name.lower()) + ".json")
            )
            path.parent.mkdir(exist_ok=True)
            path.write_text(json.dumps(recording.to_json(), indent=1) + "\n")


def verdict_json(report: LinearizabilityReport) -> dict[str, object]:
    return {
        "verdict": str(report.verdict),
        "operations": report.operation_count,
        "seconds": report.seconds,
        "failures": report.failures,
        "excerpts": {
            key: {
                part: [operation.to_json() for operation in operations]
                for part, operations in parts.items()
            }
            for key, parts in report.excerpts.items()
        },
    }


def junit_xml(results: Sequence[CheckResult]) -> str:
    suite = ElementTree.Element(
        "testsuite",
        name="etcdref conformance",
        tests=str(len(results)),
        failures=str(sum(result.outcome == Outcome.FAILED for result in results)),
        errors=str(sum(result.outcome == Outcome.ERROR for result in results)),
        skipped=str(sum(result.outcome == Outcome.UNSUPPORTED for result in results)),
        time=f"{sum(result.seconds for result in results):.3f}",
    )
    for result in results:
        case = ElementTree.SubElement(
            suite,
            "testcase",
            classname="conformance",
            name=result.name,
            time=f"{result.seconds:.3f}",
        )
        text = "\n".join(result.messages)
        if result.outcome == Outcome.FAILED:
            ElementTree.SubElement(
                case, "failure", message=result.messages[0][:200] if result.messages else ""
            ).text = text
        elif result.outcome == Outcome.ERROR:
            ElementTree.SubElement(
                case, "error", message=result.messages[0][:200] if result.messages else ""
            ).text = text
        elif result.outcome == Outcome.UNSUPPORTED:
            ElementTree.SubElement(case, "skipped", message="unsupported: " + text[:200])
        elif result.outcome == Outcome.KNOWN_DEVIATION:
            ElementTree.SubElement(case, "system-out").text = "known deviation: " + text
    return ElementTree.tostring(suite, encoding="unicode") + "\n"
