"""Move a server to another cluster member (one server of a host drain, as an action).

Containers cannot move live on LXD 5.0.2 here (no CRIU: LXD's stateful migration and live
evacuation are for VMs), so a running server is shut down (cleanly, then hard after
``shutdown_timeout``), moved while stopped with the same instance name and project (its
volume, snapshots and config, with the NIC's static ``ipv4.address``, go along), and started
again on the new member. The target is chosen by placement inside a BEGIN IMMEDIATE
transaction that also records it as the server's member, so the room is held while it moves;
a failed move puts the member back, starts the server again where it was and says why.
A run resumed after the API process died finds where LXD has the instance and goes on.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import SQLAlchemyError

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, Server
from containervps.errors import ContainerVpsError, LxdError
from containervps.lxd import retry_while_busy
from containervps.services.actions.job import Job
from containervps.services.actions.store import finish, merge_params, set_progress
from containervps.services.cluster import members, placement, routes
from containervps.services.events import EventType, record
from containervps.services.firewalls import enforce
from containervps.services.servers import boundaries
from containervps.services.servers.power import shut_down
from containervps.services.servers.states import ServerState

log = logging.getLogger(__name__)

__all__ = ["FROM", "TO", "run"]

# Action parameters: the member it leaves, the one it goes to, its power state before.
FROM, TO, WAS_RUNNING = "from", "to", "was_running"


def _reserve(settings: Settings, server_id: int, *, source: str) -> str:
    """Choose the target by placement (never ``source``) and record it as the server's member
    in the same transaction: its room there is held from now on."""
    with session_scope(settings, immediate=True) as session:
        server = session.get(Server, server_id)
        assert server is not None
        target = placement.place_server(session, settings, server, exclude=source)
        server.member = target
        session.add(server)
        return target


def _set_member(settings: Settings, server_id: int, member: str) -> None:
    """Record where LXD has the server and route its address there (the SSH forward's
    target address is unchanged). A database failure is logged, not raised: the server must
    still be started, and the reconciler adopts the member LXD reports."""
    try:
        with session_scope(settings, immediate=True) as session:
            server = session.get(Server, server_id)
            assert server is not None
            server.member = member
            session.add(server)
    except SQLAlchemyError as exc:
        log.error("moved server's member not recorded", extra={"server": server_id, "error": exc})
    routes.refresh(settings)
    enforce.refresh(settings)  # its filter entries move to the member's table


def _start(job: Job) -> None:
    name, project = job.server.lxd_name, job.server.lxd_project
    retry_while_busy(
        lambda: job.lxd.instances.set_state(name=name, project=project, action="start")
    )


def run(job: Job) -> Action:
    """Stop, move to the member placement picks, start again (see the module doc)."""
    lxd, server, params = job.lxd, job.server, job.action.params
    name, project, source = server.lxd_name, server.lxd_project, params[FROM]
    try:
        lxd.operations.wait_idle(name=name, project=project)  # a killed run's LXD work
        info = lxd.instances.get(name=name, project=project)
    except ContainerVpsError as exc:  # unknown before: this run has not stopped it
        was = bool(params.get(WAS_RUNNING))
        raise _stay(job, source=source, was_running=was, cause=exc) from exc
    was_running = params.get(WAS_RUNNING)
    if was_running is None:  # a resumed run keeps what the first one saw
        was_running = info.status == "Running"
        merge_params(job.settings, job.action_id, {WAS_RUNNING: was_running})
    target, began = info.location, time.monotonic()
    if info.location == source:
        try:
            target = params.get(TO) or _reserve(job.settings, job.server_id, source=source)
            merge_params(job.settings, job.action_id, {TO: target})
            set_progress(job.settings, job.action_id, 10)
            if info.status != "Stopped":
                shut_down(lxd, name=name, project=project, timeout=job.settings.shutdown_timeout)
            set_progress(job.settings, job.action_id, 30)
            lxd.cluster.move_to_member(name=name, project=project, member=target)
        except ContainerVpsError as exc:
            raise _stay(job, source=source, was_running=bool(was_running), cause=exc) from exc
    _set_member(job.settings, job.server_id, target)  # a resumed run: where LXD has it
    set_progress(job.settings, job.action_id, 70)
    moved = f"moved to another host for maintenance of host {source}"
    try:
        if was_running:
            _start(job)
    except ContainerVpsError as exc:
        _event(
            job,
            EventType.MAINTENANCE_MOVED,
            f"{moved} but did not start there: {exc.one_line()}; power it on again",
            severity="error",
            to=target,
        )
        members.settle_drain(job.settings, source)  # it did leave the member
        raise
    boundaries.after(job)
    state = ServerState.RUNNING if was_running else ServerState.OFF
    done = finish(
        job.settings, job.action_id, server_update={"status": state, "status_detail": None}
    )
    seconds = round(time.monotonic() - began, 1)
    _event(
        job,
        EventType.MAINTENANCE_MOVED,
        f"{moved} and started again after {seconds} s off"
        if was_running
        else f"{moved}; it stays off as it was",
        severity="info",
        to=target,
        seconds=seconds,
    )
    members.settle_drain(job.settings, source)
    return done


def _stay(job: Job, *, source: str, was_running: bool, cause: ContainerVpsError) -> LxdError:
    """Leave the server on ``source`` as it was; the error the action ends with says why."""
    why = cause.one_line()
    try:
        info = job.lxd.instances.get(name=job.server.lxd_name, project=job.server.lxd_project)
        _set_member(job.settings, job.server_id, info.location or source)  # where LXD has it
        if was_running and info.status != "Running":
            _start(job)
    except (ContainerVpsError, SQLAlchemyError) as again:
        log.error("server not put back after a failed move", extra={"server": job.server_id})
        why = f"{why}; putting it back also failed: {again}"
    power = "running" if was_running else "off"
    message = f"not moved off host {source}: {why}; it stays there ({power})"
    _event(job, EventType.MAINTENANCE_NOT_MOVED, message, severity="warning", to=None)
    return LxdError(message, details={"member": source, "cause": cause.code})


def _event(
    job: Job,
    kind: EventType,
    message: str,
    *,
    severity: str,
    to: str | None,
    seconds: float | None = None,
) -> None:
    """A move's outcome for the tenant (``seconds``: from the stop to the start there)."""
    details = {"action_id": job.action_id, "from": job.action.params[FROM], "to": to}
    if seconds is not None:
        details["seconds"] = seconds
    record(
        job.settings,
        server_id=job.server_id,
        type=kind,
        message=message,
        severity=severity,
        details=details,
    )
