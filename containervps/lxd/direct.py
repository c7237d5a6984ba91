"""Plain pylxd create+start, without the control plane: the baseline of `bench api`."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from urllib.parse import quote

import pylxd

from containervps.lxd.client import DEFAULT_SOCKETS, translate_errors

__all__ = ["DirectPylxd"]


class DirectPylxd:
    """pylxd used the way a script would: one client per project, wait=True on every call."""

    def __init__(self, *, project: str, socket: Path | None = None, timeout: float = 30.0) -> None:
        path = socket or next((p for p in DEFAULT_SOCKETS if p.exists()), DEFAULT_SOCKETS[0])
        with translate_errors("connect to LXD"):
            self.client = pylxd.Client(
                endpoint="http+unix://" + quote(str(path), safe=""),
                project=project,
                timeout=timeout,
            )

    def create_and_start(
        self,
        *,
        name: str,
        image: str,
        config: dict[str, str],
        devices: dict[str, dict[str, str]],
        profiles: list[str],
        create_lock: AbstractContextManager[None] | None = None,
    ) -> None:
        """Create the container from a local image alias and start it, waiting for both.

        ``create_lock`` (optional) is held around the create only, as the control plane does.
        """
        with translate_errors(f"create and start {name}"), create_lock or nullcontext():
            inst = self.client.instances.create(
                {
                    "name": name,
                    "source": {"type": "image", "alias": image},
                    "profiles": profiles,
                    "config": config,
                    "devices": devices,
                },
                wait=True,
            )
        with translate_errors(f"start {name}"):
            inst.start(wait=True)

    def delete(self, name: str) -> None:
        """Stop and delete the container (absent is fine)."""
        with translate_errors(f"delete {name}"):
            if not self.client.instances.exists(name):
                return
            inst = self.client.instances.get(name)
            if inst.status != "Stopped":
                inst.stop(force=True, wait=True)
            inst.delete(wait=True)
