"""etcd's alarms: NOSPACE and CORRUPT, raised and cleared through Raft on every member.

An `AlarmRequest` (GET, ACTIVATE or DEACTIVATE) is proposed like a write and applied in log
order by every member, so all agree on the active alarms (etcd 3.4 `etcdserver/apply.go:Alarm`,
`etcdserver/api/v3alarm/alarms.go`). Alarms are kept in memory only: unlike etcd, which stores
them in the backend's `alarm` bucket, a restarted etcdref member has none (a known gap).

Applying an alarm switches the member's *applier*, exactly when etcd does:

* the first NOSPACE alarm (no NOSPACE alarm was active) selects the capped applier: Put, a Txn
  whose larger branch puts something, and LeaseGrant fail with `etcdserver: mvcc: database
  space exceeded`; reads, deletes, compaction and revokes still apply;
* the first CORRUPT alarm selects the corrupt applier: every KV write, compaction, lease grant
  and lease revoke fails with `etcdserver: corrupt cluster`;
* when the last alarm of a type is deactivated the normal applier returns, even if an alarm of
  the other type is still active (etcd's own behaviour; a restart would restore the capped or
  corrupt applier from the stored alarms).

Reads are served outside the applier in etcd (serializable or after ReadIndex), so an alarm never
refuses them.
"""

from __future__ import annotations

import enum

import attrs

from spec import lease
from spec.errors import EtcdError
from spec.mvcc import KeyValueRequest, PutRequest, RequestOp, TxnRequest

KV_OVERHEAD_BYTES = 256  # etcd quota.go kvOverhead: the cost of a put beyond its key and value


class AlarmType(enum.IntEnum):
    NONE = 0
    NOSPACE = 1
    CORRUPT = 2


class AlarmAction(enum.IntEnum):
    GET = 0
    ACTIVATE = 1
    DEACTIVATE = 2


@attrs.frozen
class AlarmRequest:
    action: AlarmAction
    member_id: int
    alarm: AlarmType


@attrs.frozen
class AlarmMember:
    member_id: int
    alarm: AlarmType

    def text(self) -> str:
        """gogoproto's compact text of etcd's AlarmMember, as Status `errors` shows it."""
        parts = []
        if self.member_id:
            parts.append(f"memberID:{self.member_id} ")
        if self.alarm:
            parts.append(f"alarm:{self.alarm.name} ")
        return "".join(parts)


@attrs.frozen
class AlarmResponse:
    """etcd answers an alarm request without a response header."""

    alarms: tuple[AlarmMember, ...]


class Applier(enum.Enum):
    NORMAL = "normal"
    CAPPED = "capped"  # NOSPACE
    CORRUPT = "corrupt"


def _put_cost(operation: RequestOp) -> int:
    if isinstance(operation, PutRequest):
        return KV_OVERHEAD_BYTES + len(operation.key) + len(operation.value)
    return 0


def txn_cost(request: TxnRequest) -> int:
    """etcd quota.go costTxn: the larger branch's puts (nested transactions do not count)."""
    success = sum(_put_cost(operation) for operation in request.success)
    failure = sum(_put_cost(operation) for operation in request.failure)
    return max(success, failure)


class Alarms:
    """The active alarms and the applier they select. Changed only on the raft loop; `active`
    is an immutable tuple replaced whole, so other threads may read it at any time."""

    def __init__(self) -> None:
        self.active: tuple[AlarmMember, ...] = ()
        self.applier = Applier.NORMAL

    def of_type(self, alarm: AlarmType) -> tuple[AlarmMember, ...]:
        """etcd AlarmStore.Get: alarms of one type, or all of them for NONE."""
        if alarm is AlarmType.NONE:
            return self.active
        return tuple(member for member in self.active if member.alarm is alarm)

    def apply(self, request: AlarmRequest) -> AlarmResponse:
        """Carry out one committed alarm request (etcd applierV3backend.Alarm)."""
        old_count = len(self.of_type(request.alarm))
        if request.action is AlarmAction.GET:
            return AlarmResponse(self.of_type(request.alarm))
        member = AlarmMember(request.member_id, request.alarm)
        if request.action is AlarmAction.ACTIVATE:
            if member not in self.active:
                self.active = (*self.active, member)
            if old_count == 0 and len(self.of_type(request.alarm)) == 1:
                if request.alarm is AlarmType.CORRUPT:
                    self.applier = Applier.CORRUPT
                elif request.alarm is AlarmType.NOSPACE:
                    self.applier = Applier.CAPPED
            return AlarmResponse((member,))
        if member not in self.active:
            return AlarmResponse(())
        self.active = tuple(item for item in self.active if item != member)
        cleared = old_count > 0 and not self.of_type(request.alarm)
        if cleared and request.alarm in (AlarmType.NOSPACE, AlarmType.CORRUPT):
            self.applier = Applier.NORMAL
        return AlarmResponse((member,))

    def refusal(
        self, request: KeyValueRequest | lease.LeaseGrantRequest | lease.LeaseRevokeRequest
    ) -> EtcdError | None:
        """The error the current applier gives `request` instead of applying it, if any."""
        if self.applier is Applier.CORRUPT:
            return EtcdError.CORRUPT
        if self.applier is Applier.CAPPED:
            if isinstance(request, PutRequest | lease.LeaseGrantRequest):
                return EtcdError.NO_SPACE
            if isinstance(request, TxnRequest) and txn_cost(request) > 0:
                return EtcdError.NO_SPACE
        return None
