"""What a command's runner gets: the action to do, its server, and the clients to do it with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from containervps.config import Settings
from containervps.db.models import Action, Server
from containervps.lxd import Lxd

__all__ = ["Job", "Runner"]


@dataclass(frozen=True)
class Job:
    settings: Settings
    lxd: Lxd
    action: Action
    server: Server
    resume: bool = False  # the process that started it died; parts may be done already

    @property
    def action_id(self) -> int:
        assert self.action.id is not None
        return self.action.id

    @property
    def server_id(self) -> int:
        assert self.server.id is not None
        return self.server.id


# Does the LXD work of a running action and closes it (``store.finish``); raises on failure.
Runner = Callable[[Job], Action]
