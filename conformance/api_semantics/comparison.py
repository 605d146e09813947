"""Check 1, live: a seeded single-client workload sent to the target and to the model, compared
response by response, field by field.

Expected results come from `models.kv.KeyValueModel` (the full-history oracle for
`spec.mvcc`) and expected errors from `spec.errors`: the server's gRPC code and description
must equal the model's error byte for byte. Headers are compared by revision only
(cluster_id, member_id and raft_term are the server's). The run stops at the first mismatch,
since the model and the server disagree on the state from then on.

It needs exclusive use of the target while it runs (revisions are compared exactly), and its
compactions compact the target's history.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import attrs

from conformance.api_semantics.generator import RequestGenerator
from conformance.api_semantics.wire import RevisionShift
from conformance.client import EtcdClient, RequestFailed
from etcdpb.etcdserverpb import rpc_pb2
from models.kv import KeyValueModel
from spec.errors import EtcdError, error_for_message
from spec.mvcc import (
    CompactionRequest,
    DeleteRangeRequest,
    KeyValueRequest,
    PutRequest,
    RangeRequest,
    TxnRequest,
)

Answer = object  # a spec response, an EtcdError, or a description of an unknown error


@dataclass
class Step:
    number: int
    request: KeyValueRequest
    expected: Answer
    actual: Answer

    @property
    def agrees(self) -> bool:
        return self.expected == self.actual


@dataclass
class SemanticsResult:
    steps: list[Step] = field(default_factory=list)
    mismatch: Step | None = None

    def violations(self) -> list[str]:
        if self.mismatch is None:
            return []
        step = self.mismatch
        differences = list(
            differences_between(as_data(step.expected), as_data(step.actual), "response")
        )
        return [
            f"step {step.number}: {type(step.request).__name__} {as_data(step.request)}: "
            + "; ".join(differences[:6])
        ]


def as_data(value: object) -> Any:
    """A response, request or error as plain data for diffs and vectors."""
    if isinstance(value, EtcdError):
        return {"error": value.message, "code": value.grpc_code.name}
    if attrs.has(type(value)):
        data = {"type": type(value).__name__}
        for attribute in attrs.fields(type(value)):  # type: ignore[arg-type]
            data[attribute.name] = as_data(getattr(value, attribute.name))
        return data
    if isinstance(value, tuple | list):
        return [as_data(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if hasattr(value, "name") and hasattr(value, "value"):
        return value.name
    return value


def differences_between(expected: Any, actual: Any, path: str) -> Iterator[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for name in sorted(set(expected) | set(actual)):
            yield from differences_between(expected.get(name), actual.get(name), f"{path}.{name}")
    elif isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            yield from differences_between(left, right, f"{path}[{index}]")
    elif expected != actual:
        yield f"{path}: expected {expected!r}, got {actual!r}"


def send(client: EtcdClient, shift: RevisionShift, request: KeyValueRequest) -> Answer:
    """Send one request to the target and translate its answer into the model's terms."""
    try:
        match request:
            case RangeRequest():
                return shift.range_response(client.range(shift.range_request(request)))
            case PutRequest():
                return shift.put_response(client.put(shift.put_request(request)))
            case DeleteRangeRequest():
                return shift.delete_response(client.delete_range(shift.delete_request(request)))
            case TxnRequest():
                return shift.txn_response(client.txn(shift.txn_request(request)))
            case CompactionRequest():
                return shift.compaction_response(
                    client.compact(shift.compaction_request(request), timeout_seconds=10)
                )
    except RequestFailed as failure:
        if failure.unsupported:
            raise
        known = error_for_message(failure.details)
        if known is not None and known.grpc_code.value == failure.code.value[0]:
            return known
        return {"error": failure.details, "code": failure.code.name}
    raise AssertionError(request)


def run_semantics_comparison(
    client: EtcdClient, prefix: bytes, seed: int, step_count: int
) -> SemanticsResult:
    start = client.range(rpc_pb2.RangeRequest(key=b"\x00", count_only=True)).header.revision
    shift = RevisionShift(offset=start - 1)
    model = KeyValueModel()
    generator = RequestGenerator(seed, prefix)
    result = SemanticsResult()
    for number in range(step_count):
        request = generator.request(model.current_revision, model.compacted_revision)
        expected = model.apply(request)
        actual = send(client, shift, request)
        step = Step(number, request, expected, actual)
        result.steps.append(step)
        if not step.agrees:
            result.mismatch = step
            break
    return result


def write_vectors(path: Path, result: SemanticsResult, seed: int) -> None:
    """The run as replayable vectors (see `conformance/VECTORS.md`): one JSON object a line,
    each a request and the model's expected answer, applied in order to an empty store."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"format": "etcdref-kv-vectors/1", "seed": seed, "initial_revision": 1})]
    lines += [
        json.dumps(
            {
                "step": step.number,
                "request": as_data(step.request),
                "expected": as_data(step.expected),
            }
        )
        for step in result.steps
    ]
    path.write_text("\n".join(lines) + "\n")
