"""Size limits etcd applies to KV requests before they reach the keyspace.

* **Request size** (etcd `v3_server.go:processInternalRaftRequestOnce`): a request whose
  marshalled Raft entry is larger than `--max-request-bytes` (1.5 MiB) is refused with
  `request is too large`. The size is measured by the caller, which holds the encoding.
* **Quota** (etcd `etcdserver/quota.go`, checked for Put, Txn and LeaseGrant): a Put costs
  256 bytes plus its key and value; a Txn the sum of the puts directly in its success or
  failure branch, whichever is larger (nested txns are not counted); a LeaseGrant 64 bytes.
  Such a request is allowed only while backend size + cost < quota, even when its cost is 0;
  otherwise it is refused with `mvcc: database space exceeded` (and etcd raises the NOSPACE
  alarm). Range, DeleteRange and Compaction are never refused for space.
"""

from __future__ import annotations

from spec import constants
from spec.errors import EtcdError
from spec.mvcc.messages import KeyValueRequest, PutRequest, RequestOp, TxnRequest


def check_request_size(
    encoded_size_bytes: int, size_bytes_max: int = constants.request_size_bytes_max
) -> EtcdError | None:
    """A request larger than `--max-request-bytes` once encoded is refused."""
    if encoded_size_bytes > size_bytes_max:
        return EtcdError.REQUEST_TOO_LARGE
    return None


def write_cost_bytes(request: KeyValueRequest | RequestOp) -> int:
    """etcd `quota.go:costPut`/`costTxn`: what a request adds to the backend, for the quota."""
    if isinstance(request, PutRequest):
        return constants.put_cost_overhead_bytes + len(request.key) + len(request.value)
    if isinstance(request, TxnRequest):
        success = sum(_put_cost_bytes(operation) for operation in request.success)
        failure = sum(_put_cost_bytes(operation) for operation in request.failure)
        return max(success, failure)
    return 0


def _put_cost_bytes(operation: RequestOp) -> int:
    return write_cost_bytes(operation) if isinstance(operation, PutRequest) else 0


def check_quota(
    request: KeyValueRequest,
    backend_size_bytes: int,
    quota_bytes: int = constants.backend_quota_bytes,
) -> EtcdError | None:
    """Refuse a Put or Txn that would take the backend to or past its quota."""
    if not isinstance(request, PutRequest | TxnRequest):
        return None
    if backend_size_bytes + write_cost_bytes(request) >= quota_bytes:
        return EtcdError.NO_SPACE
    return None


def check_lease_grant_quota(
    backend_size_bytes: int, quota_bytes: int = constants.backend_quota_bytes
) -> EtcdError | None:
    """A LeaseGrant costs `lease_cost_bytes` against the quota."""
    if backend_size_bytes + constants.lease_cost_bytes >= quota_bytes:
        return EtcdError.NO_SPACE
    return None
