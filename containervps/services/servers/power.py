"""Power a server on, shut it down (graceful, then hard), power it off, reboot it."""

from __future__ import annotations

import logging

from sqlmodel import Session

from containervps.config import Settings
from containervps.db.models import Action, Server
from containervps.errors import InvalidInput, LxdError
from containervps.lxd import Lxd, retry_while_busy
from containervps.lxd.idmaps import ISOLATED, in_subuid_range
from containervps.services.actions.commands import POWER_COMMANDS, Command
from containervps.services.actions.intake import Accepted, ActionRequest, Prepared, submit
from containervps.services.actions.job import Job
from containervps.services.actions.store import finish
from containervps.services.servers import boundaries
from containervps.services.servers.states import TRANSITIONS

log = logging.getLogger(__name__)

__all__ = ["request_power", "run", "shut_down"]


def request_power(
    settings: Settings,
    *,
    tenant_id: int | None,
    server_id: int,
    command: str,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> Accepted:
    """Write a power action; Locked while another action runs."""
    if command not in POWER_COMMANDS:
        raise InvalidInput(
            f"unknown action {command!r}", details={"allowed": sorted(POWER_COMMANDS)}
        )
    request = ActionRequest(
        command=Command(command),
        tenant_id=tenant_id,
        server_id=server_id,
        payload={"c": command, "s": server_id},
        request_id=request_id,
        idempotency_key=idempotency_key,
    )

    def prepare(session: Session, server: Server | None) -> Prepared:
        return Prepared()

    return submit(settings, request, prepare)


def shut_down(lxd: Lxd, *, name: str, project: str, timeout: int) -> None:
    """Stop cleanly within ``timeout`` seconds, then hard."""
    try:
        lxd.instances.set_state(name=name, project=project, action="stop", timeout=timeout)
    except LxdError:
        log.info("graceful shutdown timed out; stopping hard", extra={"instance": name})
        lxd.instances.set_state(name=name, project=project, action="stop", force=True)


def run(job: Job) -> Action:
    """Bring the container to the state the command asks for."""
    name, project = job.server.lxd_name, job.server.lxd_project
    timeout = job.settings.shutdown_timeout

    def state(verb: str, *, force: bool = False, timeout: int = 30) -> None:
        job.lxd.instances.set_state(
            name=name, project=project, action=verb, force=force, timeout=timeout
        )

    def start() -> None:
        retry_while_busy(lambda: state("start"))

    info = job.lxd.instances.get(name=name, project=project)
    current = info.status
    if current != "Running" and not in_subuid_range({**info.config, ISOLATED: "true"}):
        # A restore made before the fix could leave a map LXD cannot start (lxd/idmaps.py).
        job.lxd.snapshots.repair_idmap(name=name, project=project)
    command = job.action.command
    if command == Command.POWERON and current != "Running":
        start()
    elif command == Command.POWEROFF and current != "Stopped":
        state("stop", force=True)
    elif command == Command.SHUTDOWN and current != "Stopped":
        shut_down(job.lxd, name=name, project=project, timeout=timeout)
    elif command == Command.REBOOT:
        if current == "Running":
            try:
                state("restart", timeout=timeout)
            except LxdError:
                state("restart", force=True)
        else:
            start()
    boundaries.after(job)
    final = TRANSITIONS[Command(command)].after
    return finish(
        job.settings, job.action_id, server_update={"status": final, "status_detail": None}
    )
