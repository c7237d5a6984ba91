"""Server snapshots: create, list and delete, within a snapshot quota (restore: restore.py)."""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Quota, Server, Snapshot, utcnow
from containervps.errors import (
    Conflict,
    ContainerVpsError,
    InvalidInput,
    NotFound,
    ResourceLimitExceeded,
)
from containervps.lxd import Lxd
from containervps.services.actions.intake import ensure_idle
from containervps.services.capacity.admission import usage
from containervps.services.servers.queries import live_server
from containervps.services.servers.states import ACTIVE, check_state

__all__ = [
    "available_snapshot",
    "create_snapshot",
    "delete_snapshot",
    "forget_snapshots",
    "list_snapshots",
]

SNAPSHOT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def _usable(session: Session, *, server_id: int, tenant_id: int | None) -> Server:
    server = live_server(session, server_id=server_id, tenant_id=tenant_id)
    ensure_idle(session, server_id)
    check_state(server, ACTIVE)
    return server


def create_snapshot(
    settings: Settings, lxd: Lxd, *, server_id: int, tenant_id: int | None, name: str | None
) -> Snapshot:
    """Snapshot the server's disk; ResourceLimitExceeded past the tenant's snapshot quota."""
    name = name or utcnow().strftime("snap-%Y%m%d-%H%M%S")
    if not SNAPSHOT_NAME.match(name):
        raise InvalidInput(
            f"invalid snapshot name {name!r}: 1-63 of a-z, 0-9 and '-'", details={"field": "name"}
        )
    with session_scope(settings, immediate=True) as session:
        server = _usable(session, server_id=server_id, tenant_id=tenant_id)
        quota = session.get(Quota, server.tenant_id)
        assert quota is not None
        held = usage(session, tenant_id=server.tenant_id).snapshots
        if held + 1 > quota.max_snapshots:
            raise ResourceLimitExceeded(
                f"quota exceeded: {held + 1} snapshots, the limit is {quota.max_snapshots}",
                details={"limit": "snapshots", "max": quota.max_snapshots, "used": held},
                resolution="delete a snapshot first",
            )
        if session.exec(
            select(Snapshot).where(Snapshot.server_id == server_id, Snapshot.name == name)
        ).first():
            raise Conflict(f"snapshot {name!r} already exists", details={"field": "name"})
        row = Snapshot(tenant_id=server.tenant_id, server_id=server_id, name=name)
        session.add(row)  # intent first: the quota holds while LXD works
    try:
        lxd.snapshots.create(name=server.lxd_name, project=server.lxd_project, snapshot=name)
    except ContainerVpsError:
        with session_scope(settings, immediate=True) as session:
            session.delete(session.get(Snapshot, row.id))
        raise
    with session_scope(settings, immediate=True) as session:
        stored = session.get(Snapshot, row.id)
        assert stored is not None
        stored.status = "available"
        session.add(stored)
        return stored


def list_snapshots(settings: Settings, *, server_id: int, tenant_id: int | None) -> list[Snapshot]:
    """The server's snapshots, oldest first."""
    with session_scope(settings) as session:
        live_server(session, server_id=server_id, tenant_id=tenant_id)
        query = select(Snapshot).where(Snapshot.server_id == server_id).order_by(col(Snapshot.id))
        return list(session.exec(query).all())


def available_snapshot(session: Session, *, server: Server, snapshot_id: int) -> Snapshot:
    """An available snapshot of the server (NotFound otherwise)."""
    row = session.get(Snapshot, snapshot_id)
    if row is None or row.server_id != server.id or row.status != "available":
        raise NotFound(f"snapshot {snapshot_id} of server {server.id} not found")
    return row


def delete_snapshot(
    settings: Settings, lxd: Lxd, *, server_id: int, tenant_id: int | None, snapshot_id: int
) -> None:
    """Delete a snapshot and give its quota back."""
    with session_scope(settings) as session:
        server = _usable(session, server_id=server_id, tenant_id=tenant_id)
        row = available_snapshot(session, server=server, snapshot_id=snapshot_id)
    lxd.snapshots.delete(name=server.lxd_name, project=server.lxd_project, snapshot=row.name)
    with session_scope(settings, immediate=True) as session:
        stored = session.get(Snapshot, snapshot_id)
        if stored is not None:
            session.delete(stored)


def forget_snapshots(settings: Settings, server_id: int) -> None:
    """Drop the rows of snapshots LXD deleted with the container (delete, rebuild)."""
    with session_scope(settings, immediate=True) as session:
        for row in session.exec(select(Snapshot).where(Snapshot.server_id == server_id)).all():
            session.delete(row)
