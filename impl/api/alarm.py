"""etcd's alarms: NOSPACE and CORRUPT, raised and cleared through Raft on every member.

An `AlarmRequest` (GET, ACTIVATE or DEACTIVATE) is proposed like a write and applied in log
order by every member, so all agree on the active alarms (etcd 3.4 `etcdserver/apply.go:Alarm`,
`etcdserver/api/v3alarm/alarms.go`). The active alarms are stored in the keyspace file with the
batch that changed them (`encode`, as etcd stores them in its backend's `alarm` bucket), and a
member that restarts or installs a snapshot takes them back with their applier (`restored`,
etcd restoreAlarms).

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

The space quota (`BackendQuota`, etcd 3.4 `etcdserver/quota.go`): a Put, a Txn or a LeaseGrant
is allowed only while the backend file's size plus the request's cost stays under
`--quota-backend-bytes`. It is checked twice, as etcd does: by the member a client asks, before
proposing (which then raises a NOSPACE alarm with its own id and answers `etcdserver: mvcc:
database space exceeded`), and by every member when it applies the request (the write is applied
all the same, its client gets the same error, and a member that sees no NOSPACE alarm yet
raises one). The check is approximate by nature: the file grows in pages.
"""

from __future__ import annotations

import enum
import json

import attrs

from spec import constants, lease
from spec.errors import EtcdError
from spec.mvcc import KeyValueRequest, PutRequest, TxnRequest, check_quota, write_cost_bytes
from spec.mvcc.limits import check_lease_grant_quota


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


def txn_cost(request: TxnRequest) -> int:
    """etcd quota.go costTxn: the larger branch's puts (nested transactions do not count)."""
    return write_cost_bytes(request)


class Alarms:
    """The active alarms and the applier they select. Changed only on the raft loop; `active`
    is an immutable tuple replaced whole, so other threads may read it at any time."""

    def __init__(self) -> None:
        self.active: tuple[AlarmMember, ...] = ()
        self.applier = Applier.NORMAL

    def encode(self) -> bytes:
        """The active alarms as stored in the keyspace file."""
        return json.dumps(
            [[member.member_id, member.alarm.name] for member in self.active]
        ).encode()

    @classmethod
    def restored(cls, stored: bytes | None) -> Alarms:
        """The alarms a keyspace file holds, with the applier they select at start (etcd
        restoreAlarms: any CORRUPT alarm selects the corrupt applier, else any NOSPACE alarm the
        capped one). ValueError when the stored text is damaged."""
        alarms = cls()
        try:
            pairs = json.loads(stored) if stored is not None else []
            alarms.active = tuple(AlarmMember(int(ident), AlarmType[name]) for ident, name in pairs)
        except (TypeError, KeyError, ValueError) as error:  # ValueError: bad JSON or id
            raise ValueError(f"damaged alarm record: {error}") from None
        if alarms.of_type(AlarmType.CORRUPT):
            alarms.applier = Applier.CORRUPT
        elif alarms.of_type(AlarmType.NOSPACE):
            alarms.applier = Applier.CAPPED
        return alarms

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


QuotaRequest = KeyValueRequest | lease.LeaseGrantRequest | lease.LeaseRevokeRequest


@attrs.frozen
class BackendQuota:
    """`--quota-backend-bytes`: 0 means etcd's default (2 GiB), a negative value no quota."""

    configured_bytes: int = 0

    @property
    def limit_bytes(self) -> int | None:
        if self.configured_bytes < 0:
            return None
        return self.configured_bytes or constants.backend_quota_bytes

    def available(self, request: QuotaRequest, backend_size_bytes: int) -> bool:
        """etcd backendQuota.Available, decided by spec.mvcc.limits: size + cost < quota for a
        Put, Txn or LeaseGrant; anything else is always allowed."""
        limit = self.limit_bytes
        if limit is None or isinstance(request, lease.LeaseRevokeRequest):
            return True
        if isinstance(request, lease.LeaseGrantRequest):
            return check_lease_grant_quota(backend_size_bytes, limit) is None
        return check_quota(request, backend_size_bytes, limit) is None
