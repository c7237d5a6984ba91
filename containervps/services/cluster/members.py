"""Cluster members as hosts: record an LXD cluster member with its capacity, list, show.

With no member recorded the platform runs in single-host mode, as before; with members, each
create is placed on one of them (placement.py). Capacity is read from LXD for the member: CPU
threads and memory from ``/1.0/resources?target=<member>``; disk from the platform's storage
pool on that member (``/1.0/storage-pools/<pool>/resources?target=<member>``), or the member's
disks when the pool does not exist there.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import HostMember, Server, utcnow
from containervps.errors import Conflict, InvalidInput, LxdNotFound, NotFound
from containervps.lxd import Lxd
from containervps.services.cluster.states import MemberState, check_transition, observed_state
from containervps.services.servers.queries import validate_labels

__all__ = [
    "any_recorded",
    "get_host",
    "join_host",
    "list_hosts",
    "recorded",
    "server_counts",
    "set_state",
    "settle_drain",
]

MIB, GIB = 2**20, 2**30


def _disk_bytes(settings: Settings, lxd: Lxd, member: str) -> int:
    try:
        return lxd.cluster.pool_total_bytes(settings.storage_pool, member=member)
    except LxdNotFound:
        return lxd.cluster.resources(member).disk_bytes


def join_host(
    settings: Settings, lxd: Lxd, *, name: str, labels: dict[str, str] | None = None
) -> HostMember:
    """Record LXD cluster member ``name`` as a host (NotFound naming it when LXD has none)."""
    labels = dict(labels or {})
    validate_labels(labels)
    if not lxd.cluster.enabled():
        raise InvalidInput(
            f"LXD at {lxd.api.socket_path} is not a cluster: no member {name!r} to join",
            details={"field": "name", "value": name},
            resolution="point CONTAINERVPS_LXD_SOCKET at a cluster member's socket",
        )
    try:
        member = lxd.cluster.member(name)
    except LxdNotFound as exc:
        known = sorted(m.name for m in lxd.cluster.members())
        raise NotFound(
            f"LXD cluster has no member {name!r}",
            details={"host": name, "members": known},
            resolution=f"members are: {', '.join(known)}",
        ) from exc
    resources = lxd.cluster.resources(name)
    row = HostMember(
        name=name,
        url=member.url,
        state=observed_state(member.status).value,
        labels=labels,
        cpu=resources.cpu_threads,
        memory_mib=resources.memory_bytes // MIB,
        disk_gib=_disk_bytes(settings, lxd, name) // GIB,
    )
    with session_scope(settings, immediate=True) as session:
        if session.get(HostMember, name) is not None:
            raise Conflict(f"host {name!r} is already recorded", details={"host": name})
        session.add(row)
    return row


def any_recorded(settings: Settings) -> bool:
    """Whether any member is recorded (none: single-host mode)."""
    with session_scope(settings) as session:
        return session.exec(select(HostMember.name).limit(1)).first() is not None


def server_counts(settings: Settings) -> dict[str, int]:
    """Live servers placed on each member (members holding none are left out)."""
    with session_scope(settings) as session:
        rows = session.exec(
            select(Server.member, func.count(col(Server.id)))
            .where(col(Server.member).is_not(None), col(Server.deleted_at).is_(None))
            .group_by(col(Server.member))
        ).all()
    return {str(member): int(count) for member, count in rows}


def list_hosts(settings: Settings) -> list[HostMember]:
    """Every recorded member, by name."""
    with session_scope(settings) as session:
        return list(session.exec(select(HostMember).order_by(col(HostMember.name))).all())


def recorded(session: Session, name: str) -> HostMember:
    """The recorded member ``name`` (NotFound naming the recorded members)."""
    row = session.get(HostMember, name)
    if row is None:
        known = list(session.exec(select(HostMember.name).order_by(col(HostMember.name))).all())
        raise NotFound(
            f"host {name!r} not found",
            details={"host": name, "hosts": known},
            resolution=f"recorded hosts: {', '.join(known) or 'none (single-host mode)'}",
        )
    return row


def get_host(settings: Settings, name: str) -> HostMember:
    with session_scope(settings) as session:
        return recorded(session, name)


def set_state(settings: Settings, *, name: str, state: MemberState) -> HostMember:
    """Move a recorded member to ``state`` if the state machine allows it."""
    with session_scope(settings, immediate=True) as session:
        row = recorded(session, name)
        check_transition(name, current=MemberState(row.state), new=state)
        row.state = state.value
        row.updated_at = utcnow()
        session.add(row)
        return row


def settle_drain(settings: Settings, name: str) -> HostMember | None:
    """A draining member that holds no live server any more becomes ``evacuated`` (called
    after each server moved away; None: no such member)."""
    with session_scope(settings, immediate=True) as session:
        row = session.get(HostMember, name)
        if row is None or row.state != MemberState.DRAINING:
            return row
        left = session.exec(
            select(func.count(col(Server.id))).where(
                col(Server.member) == name, col(Server.deleted_at).is_(None)
            )
        ).one()
        if left == 0:
            row.state, row.updated_at = MemberState.EVACUATED.value, utcnow()
            session.add(row)
        return row
