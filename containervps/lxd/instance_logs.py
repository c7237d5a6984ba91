"""LXD's per-instance log directories on a standalone host, which LXD 5.0.2 leaves behind.

LXD writes each instance's ``lxc.conf``, ``lxc.log`` and ``console.log`` under its log
directory (``/var/log/lxd/<project>_<name>``, the default project without the prefix) and
does not remove that directory when it deletes the instance (checked here: launch, delete,
the directory stays). A node that creates and deletes servers all day would collect one per
server ever made, so the platform removes it after each delete and sweeps the leftovers: a
read of the instance's state racing its delete (the usage sampler's bulk read) can make LXD
write an empty ``lxc.log`` there again just after.
Only for a standalone LXD (an instance's ``location`` is ``none``): a cluster member keeps
its logs on its own machine.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from containervps.lxd.names import storage_name
from containervps.lxd.types import STANDALONE

__all__ = ["InstanceLogs"]


class InstanceLogs:
    """The log directories under one standalone LXD's log directory."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir

    def path(self, *, project: str, name: str) -> Path:
        return self.log_dir / (name if project == "default" else storage_name(project, name))

    def remove(self, *, project: str, name: str, location: str = "none") -> None:
        """Remove a deleted instance's log directory (absent, or on a member: nothing to do)."""
        if location in STANDALONE:
            shutil.rmtree(self.path(project=project, name=name), ignore_errors=True)

    def tail(self, *, project: str, name: str, file: str, lines: int = 15) -> list[str]:
        """The last ``lines`` lines of one of the instance's logs (``console.log``: what its
        init printed; ``lxc.log``: LXC's own); empty if there is none."""
        try:
            text = (self.path(project=project, name=name) / file).read_bytes()[-16384:]
        except OSError:
            return []
        return text.decode(errors="replace").splitlines()[-lines:]

    def stale(
        self, *, owned: Callable[[str], bool], instances: set[tuple[str, str]], min_age: float
    ) -> list[tuple[str, str]]:
        """(project, name) of log directories of ``owned`` projects (live or deleted) with no
        instance in ``instances``, unchanged for ``min_age`` seconds (a create under way may
        make its directory after the listing was taken)."""
        if not self.log_dir.is_dir():
            return []
        now, found = time.time(), []
        for entry in self.log_dir.iterdir():
            project, sep, name = entry.name.partition("_")
            if not sep or not owned(project) or (project, name) in instances:
                continue
            try:
                if now - entry.stat().st_mtime >= min_age:
                    found.append((project, name))
            except FileNotFoundError:
                continue
        return sorted(found)

    def sweep(
        self, *, owned: Callable[[str], bool], instances: set[tuple[str, str]], min_age: float
    ) -> list[tuple[str, str]]:
        """Remove what ``stale`` finds; return it."""
        found = self.stale(owned=owned, instances=instances, min_age=min_age)
        for project, name in found:
            self.remove(project=project, name=name)
        return found
