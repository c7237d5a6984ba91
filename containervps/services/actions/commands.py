"""The vocabulary of actions: their commands and statuses."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["PASSWORD_HASH", "POWER_COMMANDS", "ActionStatus", "Command"]


class Command(StrEnum):
    """What an action does (stored in ``action.command``)."""

    CREATE_SERVER = "create_server"
    DELETE_SERVER = "delete_server"
    POWERON = "poweron"
    SHUTDOWN = "shutdown"
    POWEROFF = "poweroff"
    REBOOT = "reboot"
    REBUILD_SERVER = "rebuild_server"
    RESIZE_SERVER = "resize_server"
    RESTORE_SNAPSHOT = "restore_snapshot"
    MIGRATE_SERVER = "migrate_server"  # moved to another cluster member (a host drain)


POWER_COMMANDS = frozenset({Command.POWERON, Command.SHUTDOWN, Command.POWEROFF, Command.REBOOT})


class ActionStatus(StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"


# Action parameter holding a new root password's crypt hash until the action ends.
PASSWORD_HASH = "root_password_hash"
