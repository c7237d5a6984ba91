"""The server state vocabulary, what each command moves a server through, and which states
allow it (as OpenStack Nova's ``vm_states`` and ``check_instance_state``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from containervps.db.models import Server
from containervps.errors import Conflict
from containervps.services.actions.commands import Command
from containervps.services.servers import on_member

__all__ = [
    "ACTIVE",
    "BROKEN",
    "SAMPLED",
    "SETTLED",
    "STATUS_FROM_LXD",
    "TRANSITIONS",
    "ServerState",
    "Transition",
    "check_state",
]


class ServerState(StrEnum):
    INITIALIZING = "initializing"
    RUNNING = "running"
    OFF = "off"
    STARTING = "starting"
    STOPPING = "stopping"
    REBOOTING = "rebooting"
    REBUILDING = "rebuilding"
    DELETING = "deleting"
    DELETED = "deleted"
    MISSING = "missing"  # the container vanished from LXD
    ERROR = "error"  # a failed create whose rollback is pending
    UNKNOWN = "unknown"  # LXD reports a state we do not map


S = ServerState
# LXD instance status -> ours.
STATUS_FROM_LXD = {"Running": S.RUNNING, "Stopped": S.OFF, "Frozen": S.RUNNING}
BROKEN = frozenset({S.MISSING, S.ERROR})
ANY = frozenset(S) - {S.DELETED}
USABLE = ANY - BROKEN
# States in which the disk is there and no create, rebuild or delete replaces it.
ACTIVE = frozenset({S.RUNNING, S.OFF, S.STARTING, S.STOPPING, S.REBOOTING, S.UNKNOWN})
# States the reconciler may correct from what LXD says.
SETTLED = frozenset({S.RUNNING, S.OFF, S.MISSING, S.UNKNOWN, S.STARTING, S.STOPPING, S.REBOOTING})
# States whose counters the usage sampler reads.
SAMPLED = frozenset({S.RUNNING, S.OFF, S.STARTING, S.STOPPING, S.REBOOTING})


@dataclass(frozen=True)
class Transition:
    """A command's allowed starting states, its state while it runs and when it succeeds."""

    allowed: frozenset[ServerState]
    during: ServerState | None  # None: the status stays as it is
    after: ServerState | None  # None: the status stays as it is


TRANSITIONS: dict[Command, Transition] = {
    Command.CREATE_SERVER: Transition(frozenset(), S.INITIALIZING, S.RUNNING),
    Command.DELETE_SERVER: Transition(ANY, S.DELETING, S.DELETED),
    Command.POWERON: Transition(USABLE, S.STARTING, S.RUNNING),
    Command.SHUTDOWN: Transition(USABLE, S.STOPPING, S.OFF),
    Command.POWEROFF: Transition(USABLE, S.STOPPING, S.OFF),
    Command.REBOOT: Transition(USABLE, S.REBOOTING, S.RUNNING),
    Command.REBUILD_SERVER: Transition(USABLE, S.REBUILDING, S.RUNNING),
    Command.RESIZE_SERVER: Transition(USABLE, None, None),  # live: the power state stays
    Command.RESTORE_SNAPSHOT: Transition(ACTIVE, None, None),
    # the power state before the move is the one after it
    Command.MIGRATE_SERVER: Transition(ACTIVE, None, None),
}


def check_state(server: Server, allowed: frozenset[ServerState]) -> None:
    """Conflict unless the server is in one of the ``allowed`` states (and LXD can reach
    its cluster member: nothing is asked of an offline member)."""
    if on_member.unreachable(server):
        raise Conflict(
            f"server {server.id} is on cluster member {server.member}, which is offline",
            details={"status": server.status, "member": server.member},
            resolution="retry when the member is back online",
        )
    if server.status in allowed:
        return
    if server.status in BROKEN:
        detail = f": {server.status_detail}" if server.status_detail else ""
        raise Conflict(
            f"server {server.id} is {server.status}{detail}",
            details={"status": server.status},
            resolution="delete it",
        )
    raise Conflict(f"server {server.id} is {server.status}", details={"status": server.status})
