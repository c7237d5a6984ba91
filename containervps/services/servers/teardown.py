"""Taking a server's container apart: only what is tagged as ours, then its disk; the state
LXD implies; rolling a failed create back so it holds no quota."""

from __future__ import annotations

import logging

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server, utcnow
from containervps.errors import ContainerVpsError, LxdNotFound
from containervps.lxd import Lxd
from containervps.services.cluster import routes
from containervps.services.firewalls import enforce
from containervps.services.servers import disks, ssh_forwards
from containervps.services.servers.states import STATUS_FROM_LXD, ServerState

log = logging.getLogger(__name__)

__all__ = ["delete_instance_and_disk", "instance_status", "is_ours", "mark", "rollback_create"]


def is_ours(lxd: Lxd, server: Server) -> bool | None:
    """True: the instance is this server's; False: another object has its name; None: absent."""
    try:
        inst = lxd.instances.get(name=server.lxd_name, project=server.lxd_project)
    except LxdNotFound:
        return None
    return inst.tag("server_id") == str(server.id)


def delete_instance_and_disk(settings: Settings, lxd: Lxd, server: Server) -> None:
    """Delete the server's instance (only if tagged as ours), its disk pool and SSH forward."""
    if is_ours(lxd, server):
        lxd.operations.wait_idle(name=server.lxd_name, project=server.lxd_project)
        lxd.instances.delete(name=server.lxd_name, project=server.lxd_project, force=True)
    disks.delete_disk(lxd, server)
    if server.ssh_port:
        ssh_forwards.remove(settings, port=server.ssh_port)


def instance_status(lxd: Lxd, server: Server) -> ServerState:
    """The server status LXD implies (missing when the instance is gone)."""
    try:
        inst = lxd.instances.get(name=server.lxd_name, project=server.lxd_project)
    except LxdNotFound:
        return ServerState.MISSING
    return STATUS_FROM_LXD.get(inst.status, ServerState.UNKNOWN)


def mark(settings: Settings, server_id: int | None, *, status: ServerState, detail: str) -> None:
    """Record a server's status and why."""
    with session_scope(settings, immediate=True) as session:
        row = session.get(Server, server_id)
        if row is not None:
            row.status, row.status_detail = status, detail[:500]
            session.add(row)


def rollback_create(settings: Settings, lxd: Lxd, server: Server, *, reason: str) -> bool:
    """Delete this server's instance (only if tagged as ours) and free its quota."""
    try:
        delete_instance_and_disk(settings, lxd, server)
    except ContainerVpsError as exc:
        log.warning("rollback pending", extra={"server": server.id, "error": exc.one_line()})
        mark(settings, server.id, status=ServerState.ERROR, detail=f"rollback pending: {reason}")
        return False
    enforce.forget(settings, server.id)  # before its addresses are free (delete.py says why)
    with session_scope(settings, immediate=True) as session:
        row = session.get(Server, server.id)
        if row is not None:
            row.status, row.deleted_at = ServerState.DELETED, utcnow()
            row.status_detail = f"create failed: {reason}"[:500]
            session.add(row)
    if server.member:
        routes.refresh(settings)
    return True
