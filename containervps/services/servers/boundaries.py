"""What every action does where a server's NIC comes and goes.

Metering reads the host side of the server's veth, whose counters vanish when it stops and
start from zero when it starts: a sample right before a stop, reboot, rebuild, restore or
delete, and one right after a start, keep a month's transfer exact across them. After a start
(a new veth) or a resize (LXD resets the veth's qdiscs) the egress limit is put on again.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from containervps.errors import ContainerVpsError
from containervps.services.actions.commands import Command
from containervps.services.actions.job import Job
from containervps.services.metering.allowance import is_throttled
from containervps.services.metering.sampling import sample_server
from containervps.services.servers import egress

log = logging.getLogger(__name__)

__all__ = ["after", "before"]

# Commands that may take the server's veth away (a restore restarts a running container).
NIC_ENDS = frozenset(
    {
        Command.SHUTDOWN,
        Command.POWEROFF,
        Command.REBOOT,
        Command.DELETE_SERVER,
        Command.REBUILD_SERVER,
        Command.RESTORE_SNAPSHOT,
        Command.MIGRATE_SERVER,  # stopped on one member, its counters start over on the next
    }
)


def before(job: Job) -> None:
    """Sample the server's counters before the command may end its NIC (never raises: a
    lost sample must not fail the action)."""
    if Command(job.action.command) not in NIC_ENDS:
        return
    try:
        sample_server(job.settings, job.lxd, job.server)
    except SQLAlchemyError:
        log.exception("boundary sample not stored", extra={"server": job.server_id})


def after(job: Job) -> None:
    """Hold the server's egress limit on its NIC as it is now and sample it (a stopped or
    deleted server's shaping is removed). Failures are logged: the reconciler repairs them."""
    try:
        held = egress.hold(
            job.settings,
            job.lxd,
            job.server,
            throttled=is_throttled(job.settings, job.server_id),
        )
    except (ContainerVpsError, SQLAlchemyError) as exc:
        log.warning("egress limit not held", extra={"server": job.server_id, "error": exc})
    else:
        if held.changed:
            what = "egress limit held" if held.mbit else "egress shaping removed"
            log.info(what, extra={"server": job.server_id, "mbit": held.mbit})
    if job.action.command == Command.DELETE_SERVER:
        return
    try:
        sample_server(job.settings, job.lxd, job.server)
    except SQLAlchemyError:
        log.exception("boundary sample not stored", extra={"server": job.server_id})
