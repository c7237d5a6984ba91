"""The one registry from command to the runner that does its LXD work."""

from __future__ import annotations

from containervps.services.actions.commands import Command
from containervps.services.actions.job import Runner
from containervps.services.servers import (
    create,
    delete,
    migrate,
    power,
    rebuild,
    resize,
    restore,
)

__all__ = ["RUNNERS"]

RUNNERS: dict[Command, Runner] = {
    Command.CREATE_SERVER: create.run,
    Command.DELETE_SERVER: delete.run,
    Command.POWERON: power.run,
    Command.SHUTDOWN: power.run,
    Command.POWEROFF: power.run,
    Command.REBOOT: power.run,
    Command.REBUILD_SERVER: rebuild.run,
    Command.RESIZE_SERVER: resize.run,
    Command.RESTORE_SNAPSHOT: restore.run,
    Command.MIGRATE_SERVER: migrate.run,
}
