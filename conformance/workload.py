"""The concurrent key-value workload whose history the linearizability checker reads.

Several clients, each strictly sequential (one request in flight, as etcd's robustness tests
require), issue gets, puts, deletes and compare-and-puts over a small key set, with a unique
value per write, until each has done its share of operations or the deadline passes. After a
failed request a client's next request is a read, so failed writes never come back to back.
Nothing is retried: a failed write is recorded as indeterminate.

Keys are written under a prefix unique to the run and recorded by their short names.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from conformance.client import EtcdClient, RequestFailed
from conformance.history import Found, HistoryRecorder, Kind, Operation, Status
from etcdpb.etcdserverpb import rpc_pb2
from etcdpb.mvccpb import kv_pb2

# Weights per kind: reads dominate, as in etcd's EtcdPutDeleteLease traffic.
KIND_WEIGHTS = ((Kind.GET, 40), (Kind.PUT, 30), (Kind.DELETE, 10), (Kind.COMPARE_AND_PUT, 20))


@dataclass(frozen=True)
class WorkloadSettings:
    client_count: int = 4
    operations_per_client: int = 100
    key_count: int = 5
    request_timeout_seconds: float = 1.0
    duration_seconds_max: float = 30.0
    seed: int = 1
    # Pause after a failed request, so a client facing a dead member does not spin.
    failure_backoff_seconds: float = 0.05


def found_from(message: kv_pb2.KeyValue) -> Found:
    return Found(
        message.value.decode("utf-8", "backslashreplace"),
        message.create_revision,
        message.mod_revision,
        message.version,
    )


class WorkloadClient:
    """One sequential client: draws its next operation, sends it once, records the outcome."""

    def __init__(
        self,
        number: int,
        client: EtcdClient,
        prefix: bytes,
        settings: WorkloadSettings,
        recorder: HistoryRecorder,
    ) -> None:
        self.number = number
        self.client = client
        self.prefix = prefix
        self.settings = settings
        self.recorder = recorder
        self.draw = random.Random(settings.seed * 1000 + number)
        self.last_mod_revision: dict[str, int] = {}
        self.must_read = False

    def full_key(self, key: str) -> bytes:
        return self.prefix + key.encode()

    def run(self, deadline: float, keep_going: threading.Event | None = None) -> None:
        """Do this client's share of operations; with `keep_going`, go on past that share
        (but never past the deadline) until the event is cleared."""
        done = 0
        while time.monotonic() < deadline:
            if done >= self.settings.operations_per_client and (
                keep_going is None or not keep_going.is_set()
            ):
                return
            if self.step().status != Status.OK:
                time.sleep(self.settings.failure_backoff_seconds)
            done += 1

    def choose_kind(self) -> Kind:
        if self.must_read:
            return Kind.GET
        kinds = [kind for kind, _ in KIND_WEIGHTS]
        weights = [weight for _, weight in KIND_WEIGHTS]
        return self.draw.choices(kinds, weights)[0]

    def step(self) -> Operation:
        kind = self.choose_kind()
        key = f"key{self.draw.randrange(self.settings.key_count)}"
        identifier, call_ns = self.recorder.begin()
        value = f"c{self.number}-{identifier}" if kind in (Kind.PUT, Kind.COMPARE_AND_PUT) else ""
        expected = self.last_mod_revision.get(key, 0)
        base = Operation(
            identifier, self.number, kind, key, call_ns, Status.FAILED,
            value=value, expected_mod_revision=expected if kind == Kind.COMPARE_AND_PUT else 0,
        )  # fmt: skip
        try:
            operation = self.send(base)
            self.must_read = False
        except RequestFailed as failure:
            status = Status.INDETERMINATE if kind != Kind.GET else Status.FAILED
            operation = Operation(
                **{
                    **base.to_json(),
                    "status": status,
                    "error": f"{failure.code.name}: {failure.details}",
                }
            )
            self.must_read = True
        return self.recorder.add(operation)

    def send(self, base: Operation) -> Operation:
        timeout = self.settings.request_timeout_seconds
        key = self.full_key(base.key)
        fields: dict[str, Any] = {}
        if base.kind == Kind.GET:
            response = self.client.range(rpc_pb2.RangeRequest(key=key), timeout)
            found = found_from(response.kvs[0]) if response.kvs else None
            fields = {"revision": response.header.revision, "found": found}
            self.remember(base.key, found)
        elif base.kind == Kind.PUT:
            put = self.client.put(rpc_pb2.PutRequest(key=key, value=base.value.encode()), timeout)
            fields = {"revision": put.header.revision}
            self.last_mod_revision[base.key] = put.header.revision
        elif base.kind == Kind.DELETE:
            deleted = self.client.delete_range(rpc_pb2.DeleteRangeRequest(key=key), timeout)
            fields = {"revision": deleted.header.revision, "deleted": deleted.deleted}
            self.last_mod_revision[base.key] = 0
        else:
            fields = self.compare_and_put(base, key, timeout)
        return_ns = time.monotonic_ns()
        return Operation(
            **{**base.to_json(), **fields, "status": Status.OK, "return_ns": return_ns}
        )

    def compare_and_put(self, base: Operation, key: bytes, timeout: float) -> dict[str, Any]:
        request = rpc_pb2.TxnRequest(
            compare=[
                rpc_pb2.Compare(
                    result=rpc_pb2.Compare.EQUAL,
                    target=rpc_pb2.Compare.MOD,
                    key=key,
                    mod_revision=base.expected_mod_revision,
                )
            ],
            success=[
                rpc_pb2.RequestOp(
                    request_put=rpc_pb2.PutRequest(key=key, value=base.value.encode())
                )
            ],
            failure=[rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=key))],
        )
        response = self.client.txn(request, timeout)
        if response.succeeded:
            self.last_mod_revision[base.key] = response.header.revision
            return {"revision": response.header.revision, "succeeded": True}
        kvs = response.responses[0].response_range.kvs if response.responses else []
        found = found_from(kvs[0]) if kvs else None
        self.remember(base.key, found)
        return {"revision": response.header.revision, "succeeded": False, "found": found}

    def remember(self, key: str, found: Found | None) -> None:
        self.last_mod_revision[key] = 0 if found is None else found.mod_revision


def run_workload(
    endpoints: Sequence[str],
    prefix: bytes,
    settings: WorkloadSettings,
    during: Callable[[], object] | None = None,
) -> list[Operation]:
    """Run the clients (spread over the endpoints) to completion; returns the history.

    With `during` (a fault injection), it runs on its own thread while the clients work, and
    the clients keep working until it has returned (bounded by the deadline)."""
    recorder = HistoryRecorder()
    deadline = time.monotonic() + settings.duration_seconds_max
    keep_going = threading.Event()
    if during is not None:
        keep_going.set()
    clients = [
        EtcdClient(endpoints[number % len(endpoints)], settings.request_timeout_seconds)
        for number in range(settings.client_count)
    ]
    try:
        threads = [
            threading.Thread(
                target=WorkloadClient(number, client, prefix, settings, recorder).run,
                args=(deadline, keep_going),
                daemon=True,
            )
            for number, client in enumerate(clients)
        ]
        for thread in threads:
            thread.start()
        if during is not None:
            try:
                during()
            finally:
                keep_going.clear()
        for thread in threads:
            thread.join(timeout=settings.duration_seconds_max + 10)
    finally:
        for client in clients:
            client.close()
    return recorder.history()
