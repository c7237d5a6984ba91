"""Runs an action: its command's runner from the registry, then the recorded outcome.

Runs after the intent (server row + action row) is committed; every branch ends the action
as success or error, and a failed create is rolled back so it holds no quota.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import OperationalError

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, Server
from containervps.errors import ContainerVpsError, NotFound
from containervps.lxd import Lxd, connect
from containervps.services.actions.commands import ActionStatus, Command
from containervps.services.actions.job import Job
from containervps.services.actions.registry import RUNNERS
from containervps.services.actions.store import finish
from containervps.services.events import EventType, record
from containervps.services.servers import bandwidth, boundaries
from containervps.services.servers.states import ServerState
from containervps.services.servers.teardown import instance_status, mark, rollback_create

log = logging.getLogger(__name__)

__all__ = ["run_action"]


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
    if action.status != ActionStatus.RUNNING:
        return action
    log.info("action started", extra={"action": action_id, "command": action.command})
    try:
        job = Job(settings, lxd or connect(settings), action, server, resume=resume)
        boundaries.before(job)
        done = RUNNERS[Command(action.command)](job)
        _host_limits(settings, job.lxd, action)
        if resume:
            _resumed_event(settings, done)
        return done
    except ContainerVpsError as exc:
        log.warning("action failed", extra={"action": action_id, "error": exc.one_line()})
        code, message = exc.code, exc.one_line()
    except Exception as exc:  # the worker thread must always close the action
        log.exception("action crashed", extra={"action": action_id})
        code, message = "internal_error", str(exc)
    for attempt in range(3):  # recording the failure must not be lost to a busy database
        try:
            failed = _failed(settings, lxd, action, server, code=code, message=message)
            if resume:
                _resumed_event(settings, failed)
            return failed
        except OperationalError:
            log.exception("could not record failure", extra={"action": action_id})
            time.sleep(1 + attempt)
    return action


def _host_limits(settings: Settings, lxd: Lxd, action: Action) -> None:
    """Limits LXD cannot hold, written into the container's cgroup: every start makes a new
    one (create, power, rebuild, restore), and a resize changes them."""
    if action.command == Command.DELETE_SERVER:
        return
    with session_scope(settings) as session:
        server = session.get(Server, action.server_id)
    if server is not None and server.deleted_at is None:
        bandwidth.enforce(settings, lxd, server)


# Commands whose failure puts the server back as it was before the action.
ROLLS_BACK = frozenset({Command.CREATE_SERVER, Command.RESIZE_SERVER, Command.RESTORE_SNAPSHOT})


def _resumed_event(settings: Settings, action: Action) -> None:
    """Tell the tenant the platform finished or undid an action its dying process left."""
    assert action.server_id is not None
    what = f"{action.command} (action {action.id}) was interrupted by a restart of the platform"
    if action.status == ActionStatus.SUCCESS:
        kind, message, severity = EventType.ACTION_FINISHED, f"{what}; it was finished", "info"
    elif Command(action.command) in ROLLS_BACK:
        kind, severity = EventType.ACTION_ROLLED_BACK, "warning"
        message = f"{what}; it was rolled back: {action.error_message}"
    else:
        kind, severity = EventType.ACTION_FAILED, "error"
        message = f"{what}; resuming it failed: {action.error_message}"
    record(
        settings,
        server_id=action.server_id,
        type=kind,
        message=message,
        severity=severity,
        details={"action_id": action.id, "command": action.command},
    )


def _failed(
    settings: Settings, lxd: Lxd | None, action: Action, server: Server, *, code: str, message: str
) -> Action:
    """Close a failed action: a create is rolled back, others get the state LXD shows."""
    assert action.id is not None
    if action.command == Command.CREATE_SERVER:
        try:
            client = lxd or connect(settings)
        except ContainerVpsError:
            detail = f"rollback pending: {message}"
            mark(settings, server.id, status=ServerState.ERROR, detail=detail)
        else:
            rollback_create(settings, client, server, reason=message)
        return finish(settings, action.id, error=(code, message))
    try:
        status = instance_status(lxd or connect(settings), server)
    except ContainerVpsError:
        status = ServerState.UNKNOWN
    if lxd is not None and action.command != Command.CREATE_SERVER:
        _host_limits(settings, lxd, action)  # a failed action may have left it running
    return finish(settings, action.id, error=(code, message), server_update={"status": status})
