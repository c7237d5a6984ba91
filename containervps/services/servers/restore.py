"""Restore a server's disk from one of its snapshots (an action: it holds the server).

A restore never leaves a server broken: it first takes a safety snapshot (a name tenants
cannot give, no quota, not listed), restores with the instance's own idmap (lxd/idmaps.py),
starts a server that was running and checks it stays up; on any failure it restores the
safety snapshot, brings the power state back and says so in the action and an event. A run
resumed after the API process died does the same from the start: the safety snapshot it finds
is the way back.
"""

from __future__ import annotations

import logging
import time

from sqlmodel import Session

from containervps.config import Settings
from containervps.db.models import Action, Server
from containervps.errors import ContainerVpsError, LxdError
from containervps.faults import checkpoint
from containervps.lxd import Lxd
from containervps.services.actions.commands import Command
from containervps.services.actions.intake import Accepted, ActionRequest, Prepared, submit
from containervps.services.actions.job import Job
from containervps.services.actions.store import finish, merge_params, set_progress
from containervps.services.events import EventType, record
from containervps.services.servers import boundaries
from containervps.services.servers.limits import instance_limits
from containervps.services.servers.snapshots import available_snapshot
from containervps.services.servers.states import ServerState

log = logging.getLogger(__name__)

__all__ = ["SAFETY_PREFIX", "request_restore", "run", "safety_name"]

# Tenants' snapshot names are [a-z0-9-] only (snapshots.SNAPSHOT_NAME): "_" cannot collide.
SAFETY_PREFIX = "cvps_safety_"
WAS_RUNNING = "was_running"


def safety_name(action_id: int) -> str:
    """The safety snapshot of one restore action."""
    return f"{SAFETY_PREFIX}{action_id}"


def request_restore(
    settings: Settings,
    *,
    server_id: int,
    tenant_id: int | None,
    snapshot_id: int,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> Accepted:
    """Write a restore action; LXD work runs later."""
    request = ActionRequest(
        command=Command.RESTORE_SNAPSHOT,
        tenant_id=tenant_id,
        server_id=server_id,
        payload={"c": "restore", "s": server_id, "n": snapshot_id},
        request_id=request_id,
        idempotency_key=idempotency_key,
    )

    def prepare(session: Session, server: Server | None) -> Prepared:
        assert server is not None
        row = available_snapshot(session, server=server, snapshot_id=snapshot_id)
        return Prepared(params={"snapshot_id": row.id, "snapshot": row.name})

    return submit(settings, request, prepare)


def run(job: Job) -> Action:
    """Restore the disk; on failure roll back to the state before (see the module doc)."""
    lxd, server = job.lxd, job.server
    name, project = server.lxd_name, server.lxd_project
    snapshot, safety = job.action.params["snapshot"], safety_name(job.action_id)
    job.lxd.operations.wait_idle(name=name, project=project)  # a killed run's LXD work
    was_running = job.action.params.get(WAS_RUNNING)
    if was_running is None:  # a resumed run keeps what the first one saw
        was_running = lxd.instances.get(name=name, project=project).status == "Running"
        merge_params(job.settings, job.action_id, {WAS_RUNNING: was_running})
    try:
        _stop(lxd, server)
        if safety not in lxd.snapshots.names(name=name, project=project):
            lxd.snapshots.create(name=name, project=project, snapshot=safety)
        set_progress(job.settings, job.action_id, 30)
        checkpoint(job.settings, "restore.before_restore")
        lxd.snapshots.restore(name=name, project=project, snapshot=snapshot)
        checkpoint(job.settings, "restore.after_restore")
        _reapply_limits(job)
        set_progress(job.settings, job.action_id, 70)
        if was_running:
            _start_and_settle(job.settings, lxd, server)
    except ContainerVpsError as exc:
        raise _roll_back(job, was_running=bool(was_running), cause=exc) from exc
    try:
        lxd.snapshots.delete(name=name, project=project, snapshot=safety)
    except ContainerVpsError as exc:  # the restore did succeed: a leftover is only clutter
        log.warning("safety snapshot left", extra={"server": server.id, "error": exc.one_line()})
    boundaries.after(job)
    state = ServerState.RUNNING if was_running else ServerState.OFF
    return finish(job.settings, job.action_id, server_update={"status": state})


def _stop(lxd: Lxd, server: Server) -> None:
    """A hard stop: the disk is replaced anyway, and LXD's own restore stops this way too."""
    name, project = server.lxd_name, server.lxd_project
    if lxd.instances.get(name=name, project=project).status != "Stopped":
        lxd.instances.set_state(name=name, project=project, action="stop", force=True)


def _reapply_limits(job: Job) -> None:
    """A restore also puts back the snapshot's config: the plan's limits win (a resize after
    the snapshot stays)."""
    lxd, server = job.lxd, job.server
    name, project = server.lxd_name, server.lxd_project
    pool = lxd.instances.get(name=name, project=project).devices["root"]["pool"]
    config, devices = instance_limits(
        server.limits,
        pool=pool,
        network=job.settings.bridge,
        ipv4=server.ipv4,
        ipv6=server.ipv6,
    )
    lxd.instances.update(name=name, project=project, config=config, devices=devices)


def _start_and_settle(settings: Settings, lxd: Lxd, server: Server) -> None:
    """Start the server, then check it is still running and has a sane idmap."""
    name, project = server.lxd_name, server.lxd_project
    lxd.snapshots.repair_idmap(name=name, project=project)
    lxd.instances.set_state(name=name, project=project, action="start")
    deadline = time.monotonic() + settings.restore_settle_seconds
    while True:
        status = lxd.instances.get(name=name, project=project).status
        if status != "Running":
            raise LxdError(f"{name} did not stay up after the restore (LXD says {status})")
        if time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    ran = lxd.instances.exec(name=name, project=project, command=["true"], timeout=30)
    if ran.exit_code != 0:
        raise LxdError(f"{name} runs but a command in it failed (exit code {ran.exit_code})")


def _roll_back(job: Job, *, was_running: bool, cause: ContainerVpsError) -> ContainerVpsError:
    """Put the server back as before the restore; the error the action ends with says how."""
    lxd, server = job.lxd, job.server
    name, project = server.lxd_name, server.lxd_project
    snapshot, safety = job.action.params["snapshot"], safety_name(job.action_id)
    why = cause.one_line()
    try:
        _stop(lxd, server)
        if safety in lxd.snapshots.names(name=name, project=project):
            lxd.snapshots.restore(name=name, project=project, snapshot=safety)
            _reapply_limits(job)
        if was_running:
            _start_and_settle(job.settings, lxd, server)
        lxd.snapshots.delete(name=name, project=project, snapshot=safety)
    except ContainerVpsError as again:
        message = (
            f"restore from {snapshot} failed: {why}; rolling back also failed: "
            f"{again.one_line()} (safety snapshot {safety} kept)"
        )
        log.error("restore rollback failed", extra={"server": server.id, "error": message})
        _event(job, message, severity="error")
        return LxdError(message, details={"snapshot": snapshot, "safety_snapshot": safety})
    power = "running" if was_running else "off"
    message = (
        f"restore from {snapshot} failed: {why}; rolled back to the state before the restore "
        f"(disk as before, server {power})"
    )
    _event(job, message, severity="warning")
    return LxdError(message, details={"snapshot": snapshot, "rolled_back": True})


def _event(job: Job, message: str, *, severity: str) -> None:
    record(
        job.settings,
        server_id=job.server_id,
        type=EventType.RESTORE_ROLLED_BACK,
        message=message,
        severity=severity,
        details={"action_id": job.action_id, "snapshot": job.action.params["snapshot"]},
    )
