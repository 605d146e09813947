"""The expected side of check 1: the full-history model and the spec, run in lock step.

Every request of the seeded workload is applied to both
* `models.kv.KeyValueModel`, the naive full-history oracle (KV answers, lease ids and their
  keys, the events of every revision), and
* the spec: `spec.mvcc` on a `MemoryKeyspace`, with the lessor table of `spec.lease` and the
  watch rules of `spec.watch`.

KV answers are the model's; lease answers are `spec.lease`'s and watch answers `spec.watch`'s,
each checked against the model before it is used (granted TTLs and errors, the revision a
revoke leaves, a lease's keys, the list of leases, a watch's events). If the two ever disagree
the run stops with `OracleDisagreement`: the suite's own expected answer would be in doubt.

Time: the expected side has no clock. Leases are granted as on a member that never expires
them (`now_seconds=None`), so `time_to_live` answers the full granted TTL; the comparison
allows the seconds that really passed (`comparison.reconcile`). Keep-alive does not change
the lessor table here (on a server it only moves an expiry time, which is not modelled).
"""

from __future__ import annotations

import attrs

from models.kv import KeyValueModel
from spec.lease import (
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseLeasesResponse,
    LeaseRevokeRequest,
    Leases,
    LeaseTimeToLiveRequest,
    grant,
    keep_alive,
    lease_list,
    revoke,
    time_to_live,
)
from spec.mvcc import (
    Applied,
    KeyValueRequest,
    LeaseId,
    MemoryKeyspace,
    ResponseHeader,
    Revision,
    apply_request,
)
from spec.watch import WatchCreateRequest, WatchIds, WatchResponse, catch_up, create_watcher


@attrs.frozen
class LeaseLeasesRequest:
    """etcdserverpb.LeaseLeasesRequest (no fields; spec.lease has only the response)."""


@attrs.frozen
class WatchResponses:
    """What a new watch stream receives for one create request until the watch has caught up
    with the current revision: the created response, then the catch-up response (its events
    up to now) or the compaction cancel, in order."""

    responses: tuple[WatchResponse, ...] = ()


LeaseRequest = (
    LeaseGrantRequest
    | LeaseRevokeRequest
    | LeaseKeepAliveRequest
    | LeaseTimeToLiveRequest
    | LeaseLeasesRequest
)
ApiRequest = KeyValueRequest | LeaseRequest | WatchCreateRequest


class OracleDisagreement(AssertionError):
    """The spec and the model answered one request differently (a bug of the suite's oracle)."""


class ExpectedStore:
    """The model and the spec, fed the same requests; `answer` gives the expected answer."""

    def __init__(self) -> None:
        self.model = KeyValueModel()
        self.view = MemoryKeyspace()
        self.leases = Leases()

    @property
    def current_revision(self) -> int:
        return self.model.current_revision

    @property
    def compacted_revision(self) -> int:
        return self.model.compacted_revision

    def live_leases(self) -> tuple[LeaseId, ...]:
        return tuple(sorted(self.model.leases))

    def lease_key_counts(self) -> dict[LeaseId, int]:
        """Every live lease with the number of keys attached to it now."""
        return {lease: len(self.model.lease_keys(lease)) for lease in self.live_leases()}

    def answer(self, request: ApiRequest) -> object:
        """The answer etcd gives: a response (spec message class), an `EtcdError`, or
        `WatchResponses`."""
        match request:
            case LeaseGrantRequest():
                return self.grant(request)
            case LeaseRevokeRequest():
                return self.revoke(request)
            case LeaseKeepAliveRequest():
                return self.keep_alive(request)
            case LeaseTimeToLiveRequest():
                return self.time_to_live(request)
            case LeaseLeasesRequest():
                return self.lease_list()
            case WatchCreateRequest():
                return self.watch(request)
            case _:
                return self.key_value(request)

    def agree(self, request: object, spec_answer: object, model_answer: object) -> None:
        if spec_answer != model_answer:
            raise OracleDisagreement(
                f"spec and model disagree on {request}: spec {spec_answer}, model {model_answer}"
            )

    def header(self) -> ResponseHeader:
        return ResponseHeader(revision=Revision(self.current_revision))

    # --- KV: the model answers; the spec keeps its keyspace in step -----------------------------
    def key_value(self, request: KeyValueRequest) -> object:
        expected = self.model.apply(request)
        outcome = apply_request(self.view, request)
        if isinstance(outcome, Applied):
            self.view.apply(outcome.changes)
            self.agree(request, outcome.response, expected)
        else:
            self.agree(request, outcome.error, expected)
        return expected

    # --- Leases: spec.lease answers, the model confirms -----------------------------------------
    def grant(self, request: LeaseGrantRequest) -> object:
        assert request.ID != 0, "the workload names its lease ids (etcd's own choice is random)"
        granted = self.model.lease_grant(request.ID, request.TTL)
        outcome, self.leases = grant(self.view, self.leases, request, request.ID, None)
        if not isinstance(outcome, Applied):
            self.agree(request, outcome.error, granted)
            return outcome.error
        self.view.apply(outcome.changes)
        self.agree(request, outcome.response.TTL, granted)
        return outcome.response

    def revoke(self, request: LeaseRevokeRequest) -> object:
        revision_after = self.model.lease_revoke(request.ID)
        outcome, self.leases = revoke(self.view, self.leases, request)
        if not isinstance(outcome, Applied):
            self.agree(request, outcome.error, revision_after)
            return outcome.error
        self.view.apply(outcome.changes)
        self.agree(request, outcome.response.header.revision, revision_after)
        return outcome.response

    def keep_alive(self, request: LeaseKeepAliveRequest) -> object:
        response, _ = keep_alive(self.leases, request, now_seconds=0.0)
        self.agree(request, response.TTL, self.model.leases.get(request.ID, 0))
        # etcd fills every response's header on the member that answers (v3rpc header.fill).
        return attrs.evolve(response, header=self.header())

    def time_to_live(self, request: LeaseTimeToLiveRequest) -> object:
        response = time_to_live(self.view, self.leases, request, now_seconds=0.0)
        known = request.ID in self.model.leases
        model_keys = self.model.lease_keys(request.ID) if known and request.keys else ()
        self.agree(request, (response.TTL > 0, response.keys), (known, model_keys))
        return response

    def lease_list(self) -> LeaseLeasesResponse:
        response = lease_list(self.view, self.leases)
        self.agree(
            "LeaseLeases", tuple(status.ID for status in response.leases), self.live_leases()
        )
        return response

    # --- Watch: spec.watch answers, the model's events confirm ----------------------------------
    def watch(self, request: WatchCreateRequest) -> WatchResponses:
        created, watcher, _ = create_watcher(self.view, request, WatchIds())
        responses = [created]
        if watcher is not None and not watcher.synced:
            caught_up, _ = catch_up(self.view, watcher)
            if caught_up is not None:
                responses.append(caught_up)
        canceled = any(response.compact_revision for response in responses)
        self.agree(request, canceled, 0 < request.start_revision < self.model.compacted_revision)
        if not canceled:
            events = [event for response in responses for event in response.events]
            model_events = self.model.watch_events(
                request.key,
                request.range_end,
                request.start_revision or self.current_revision + 1,
                self.current_revision,
                request.filters,
                request.prev_kv,
            )
            self.agree(request, events, model_events)
        return WatchResponses(tuple(responses))
