"""Named points where tests inject faults (``Settings.faults``): fail there, or pause there
so the test can kill the process at a known step. Empty in production: a dictionary lookup."""

from __future__ import annotations

import logging
import time

from containervps.config import Settings
from containervps.errors import LxdError

__all__ = ["PAUSE_SECONDS", "checkpoint"]

log = logging.getLogger(__name__)

PAUSE_SECONDS = 120.0  # bounded: a paused worker goes on by itself if nobody kills it


def checkpoint(settings: Settings, name: str) -> None:
    """Raise an LXD error ("fail") or sleep ("pause") when a test asked for it at ``name``."""
    mode = settings.faults.get(name)
    if mode == "fail":
        raise LxdError(f"injected fault at {name}", details={"fault": name})
    if mode == "pause":
        log.warning("paused at fault checkpoint", extra={"checkpoint": name})
        time.sleep(PAUSE_SECONDS)
