"""The LXD side of actions: create, delete and power work, then the recorded outcome.

Runs after the intent (server row + action row) is committed; every branch ends the action
as success or error, and a failed create is rolled back so it holds no quota.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import OperationalError

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, Quota, Server, utcnow
from containervps.errors import Conflict, ContainerVpsError, LxdError, LxdNotFound, NotFound
from containervps.lxd import Lxd, connect
from containervps.services import changes, provision, server_disks
from containervps.services.actions import POWER_COMMANDS, finish, set_progress
from containervps.services.snapshots import forget_snapshots
from containervps.services.tenants import ensure_project

log = logging.getLogger(__name__)

__all__ = ["instance_status", "rollback_create", "run_action"]

STATUS_FROM_LXD = {"Running": "running", "Stopped": "off", "Frozen": "running"}


def _load(settings: Settings, action_id: int) -> tuple[Action, Server]:
    with session_scope(settings) as session:
        action = session.get(Action, action_id)
        if action is None or action.server_id is None:
            raise NotFound(f"action {action_id} not found")
        server = session.get(Server, action.server_id)
        assert server is not None
        return action, server


def run_action(
    settings: Settings, action_id: int, *, lxd: Lxd | None = None, resume: bool = False
) -> Action:
    """Do the LXD work of a running action and record its outcome (never raises)."""
    action, server = _load(settings, action_id)
    if action.status != "running":
        return action
    log.info("action started", extra={"action": action_id, "command": action.command})
    try:
        client = lxd or connect(settings)
        if action.command == "create_server":
            return _create(settings, client, action, server, resume=resume)
        if action.command == "delete_server":
            return _delete(settings, client, action, server)
        if action.command in changes.WORK:
            return changes.WORK[action.command](settings, client, action, server)
        return _power(settings, client, action, server)
    except ContainerVpsError as exc:
        log.warning("action failed", extra={"action": action_id, "error": exc.one_line()})
        code, message = exc.code, exc.one_line()
    except Exception as exc:  # the worker thread must always close the action
        log.exception("action crashed", extra={"action": action_id})
        code, message = "internal_error", str(exc)
    for attempt in range(3):  # recording the failure must not be lost to a busy database
        try:
            return _failed(settings, lxd, action, server, code=code, message=message)
        except OperationalError:
            log.exception("could not record failure", extra={"action": action_id})
            time.sleep(1 + attempt)
    return action


def _ours(lxd: Lxd, server: Server) -> bool | None:
    """True: the instance is this server's; False: another object has its name; None: absent."""
    try:
        inst = lxd.instances.get(name=server.lxd_name, project=server.lxd_project)
    except LxdNotFound:
        return None
    return inst.tag("server_id") == str(server.id)


def _create(
    settings: Settings, lxd: Lxd, action: Action, server: Server, *, resume: bool
) -> Action:
    assert action.id is not None and server.id is not None
    name, project = server.lxd_name, server.lxd_project
    if resume:
        _ensure_tenant_project(settings, lxd, server)
    mine = _ours(lxd, server) if resume else None
    if mine is False:
        raise Conflict(f"LXD already has an instance {name} in {project} that is not ours")
    if mine is None:
        try:
            status = _create_instance(settings, lxd, action, server)
        except LxdNotFound:
            # The tenant's project went missing (deleted by hand): recreate it and retry once.
            _ensure_tenant_project(settings, lxd, server)
            status = _create_instance(settings, lxd, action, server)
    else:
        # A create interrupted by a killed process may still be running inside LXD.
        lxd.operations.wait_idle(name=name, project=project)
        server_disks.drop_image_copies(lxd, server)
        status = lxd.instances.get(name=name, project=project).status
    set_progress(settings, action.id, 60)
    server_update = provision.bring_up(settings, lxd, server, action, status=status)
    return finish(settings, action.id, server_update=server_update)


def _ensure_tenant_project(settings: Settings, lxd: Lxd, server: Server) -> None:
    if lxd.host.get_project(server.lxd_project) is not None:
        return
    with session_scope(settings) as session:
        quota = session.get(Quota, server.tenant_id)
    assert quota is not None
    ensure_project(
        settings, lxd, tenant_id=server.tenant_id, project=server.lxd_project, quota=quota
    )


def _create_instance(settings: Settings, lxd: Lxd, action: Action, server: Server) -> str:
    """Create the server's container from its image; return its LXD status."""
    assert action.id is not None
    return provision.create_instance(settings, lxd, server, action_id=action.id, image=server.image)


def _delete(settings: Settings, lxd: Lxd, action: Action, server: Server) -> Action:
    assert action.id is not None and server.id is not None
    _delete_instance_and_disk(lxd, server)
    forget_snapshots(settings, server.id)
    return finish(
        settings,
        action.id,
        server_update={"status": "deleted", "deleted_at": utcnow(), "status_detail": None},
    )


def _delete_instance_and_disk(lxd: Lxd, server: Server) -> None:
    """Delete the server's instance (only if tagged as ours), then its disk pool."""
    if _ours(lxd, server):
        lxd.operations.wait_idle(name=server.lxd_name, project=server.lxd_project)
        lxd.instances.delete(name=server.lxd_name, project=server.lxd_project, force=True)
    server_disks.delete_disk(lxd, server)


def _power(settings: Settings, lxd: Lxd, action: Action, server: Server) -> Action:
    assert action.id is not None
    name, project = server.lxd_name, server.lxd_project

    def state(verb: str, *, force: bool = False, timeout: int = 30) -> None:
        lxd.instances.set_state(
            name=name, project=project, action=verb, force=force, timeout=timeout
        )

    current = lxd.instances.get(name=name, project=project).status
    command = action.command
    if command == "poweron" and current != "Running":
        state("start")
    elif command == "poweroff" and current != "Stopped":
        state("stop", force=True)
    elif command == "shutdown" and current != "Stopped":
        try:
            state("stop", timeout=settings.shutdown_timeout)
        except LxdError:
            log.info("graceful shutdown timed out; stopping hard", extra={"server": server.id})
            state("stop", force=True)
    elif command == "reboot":
        if current == "Running":
            try:
                state("restart", timeout=settings.shutdown_timeout)
            except LxdError:
                state("restart", force=True)
        else:
            state("start")
    final = POWER_COMMANDS[command][1]
    return finish(settings, action.id, server_update={"status": final, "status_detail": None})


def instance_status(lxd: Lxd, server: Server) -> str:
    """The server status LXD implies ("missing" when the instance is gone)."""
    try:
        inst = lxd.instances.get(name=server.lxd_name, project=server.lxd_project)
    except LxdNotFound:
        return "missing"
    return STATUS_FROM_LXD.get(inst.status, "unknown")


def rollback_create(settings: Settings, lxd: Lxd, server: Server, *, reason: str) -> bool:
    """Delete this server's instance (only if tagged as ours) and free its quota."""
    try:
        _delete_instance_and_disk(lxd, server)
    except ContainerVpsError as exc:
        log.warning("rollback pending", extra={"server": server.id, "error": exc.one_line()})
        _update_server(settings, server.id, status="error", detail=f"rollback pending: {reason}")
        return False
    with session_scope(settings, immediate=True) as session:
        row = session.get(Server, server.id)
        if row is not None:
            row.status, row.deleted_at = "deleted", utcnow()
            row.status_detail = f"create failed: {reason}"[:500]
            session.add(row)
    return True


def _update_server(settings: Settings, server_id: int | None, *, status: str, detail: str) -> None:
    with session_scope(settings, immediate=True) as session:
        row = session.get(Server, server_id)
        if row is not None:
            row.status, row.status_detail = status, detail[:500]
            session.add(row)


def _failed(
    settings: Settings, lxd: Lxd | None, action: Action, server: Server, *, code: str, message: str
) -> Action:
    assert action.id is not None
    if action.command == "create_server":
        try:
            client = lxd or connect(settings)
        except ContainerVpsError:
            _update_server(
                settings, server.id, status="error", detail=f"rollback pending: {message}"
            )
        else:
            rollback_create(settings, client, server, reason=message)
        return finish(settings, action.id, error=(code, message))
    try:
        status = instance_status(lxd or connect(settings), server)
    except ContainerVpsError:
        status = "unknown"
    return finish(settings, action.id, error=(code, message), server_update={"status": status})
