"""Resizing a running server's tmpfs mounts (/dev/shm, /run, ...) to its memory limit, live."""

from __future__ import annotations

import logging

from containervps.db.models import Server
from containervps.errors import LxdError
from containervps.lxd import Lxd
from containervps.services.images.guest_tmpfs import SCRIPT_PATH

log = logging.getLogger(__name__)

__all__ = ["apply"]

# Images built before the script existed (and remote images) lack it: nothing to do then.
_RUN_IF_PRESENT = f"[ ! -x {SCRIPT_PATH} ] || exec {SCRIPT_PATH}"


def apply(lxd: Lxd, server: Server) -> bool:
    """Run the image's sizing script in the running server; False (logged) when it failed.

    The new limits hold either way (they are the memory cgroup's); a failure only leaves a
    tmpfs sized for the old plan until the next boot, so it does not fail the resize.
    """
    try:
        result = lxd.instances.exec(
            name=server.lxd_name,
            project=server.lxd_project,
            command=["/bin/sh", "-c", _RUN_IF_PRESENT],
            timeout=30,
        )
    except LxdError as exc:
        log.warning("tmpfs sizing failed in server %s: %s", server.id, exc)
        return False
    if not result.ok:
        output = (result.stderr or result.stdout).strip()[:300]
        log.warning(
            "tmpfs sizing failed in server %s (exit %s): %s", server.id, result.exit_code, output
        )
    return result.ok
