"""The API's periodic passes that need no action worker, in a child process of their own.

Usage sampling (every ``usage_sample_interval`` s: kernel counters of every server, a row each,
then roll-ups) and the lxcfs watchdog (every ``lxcfs_watch_interval`` s) run in one child
process. A sampling pass at 1000 servers is 0.7-0.9 s of mostly Python: on the GIL of the
process that serves requests, it delays every request that comes meanwhile (the suspected
cause of ``GET /v1/servers`` p99 of 10.5-78.8 ms over five samples at 999 servers, issue 9).
The reconciler stays in the API process: it resumes interrupted actions on the API's worker.

The child ends with the API (its stop event, or the kernel's parent-death signal when the API
is killed).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing.synchronize import Event as EventType
from typing import Any

from containervps.config import Settings
from containervps.errors import ContainerVpsError
from containervps.logs import configure_logging
from containervps.lxd import connect
from containervps.services.host.lxcfs_watchdog import LxcfsWatchdog
from containervps.services.metering import rollups
from containervps.services.metering import usage as usage_service

log = logging.getLogger(__name__)

__all__ = ["Periodic"]

PR_SET_PDEATHSIG = 1
STOP_GRACE = 10.0  # seconds a pass under way may take to finish when the API stops


def _sample(settings: Settings) -> None:
    """One usage sample of every server (transfer allowances checked on it), then retention."""
    usage_service.sample_pass(settings, connect(settings))
    rollups.compact(settings)


def _every(name: str, interval: float, tick: Callable[[], Any], stop: EventType) -> None:
    """``tick()`` every ``interval`` seconds until ``stop``; a failing pass is logged."""
    while not stop.wait(interval):
        try:
            tick()
        except ContainerVpsError as exc:
            log.warning(f"{name} pass failed", extra={"error": exc.one_line()})
        except Exception:
            log.exception(f"{name} pass crashed")


def _child(settings: Settings, stop: EventType, parent: int) -> None:
    """The child's body: the loops the settings turn on, until ``stop`` or the API is gone."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # the API killed: this child goes too
    if os.getppid() != parent:  # it died before the line above
        return
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    loops: list[tuple[str, float, Callable[[], Any]]] = []
    if settings.usage_sample_interval > 0:
        loops.append(("usage sample", settings.usage_sample_interval, lambda: _sample(settings)))
    if settings.lxcfs_watch_interval > 0:
        watchdog = LxcfsWatchdog(settings)
        loops.append(("lxcfs watch", settings.lxcfs_watch_interval, watchdog.tick))
    threads = [
        threading.Thread(target=_every, args=(*loop, stop), name=f"cvps-{loop[0]}", daemon=True)
        for loop in loops
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class Periodic:
    """The child process running the periodic passes (none started when all are off)."""

    def __init__(self, settings: Settings) -> None:
        context = multiprocessing.get_context("spawn")  # no copy of the API's threads and locks
        self.stop = context.Event()
        self.process: multiprocessing.process.BaseProcess | None = None
        if settings.usage_sample_interval > 0 or settings.lxcfs_watch_interval > 0:
            self.process = context.Process(
                target=_child,
                args=(settings, self.stop, os.getpid()),
                name="containervps-periodic",
                daemon=True,
            )

    def start(self) -> None:
        if self.process is not None:
            self.process.start()
            log.info("periodic passes started", extra={"pid": self.process.pid})

    def shutdown(self) -> None:
        """Let a pass under way finish (up to STOP_GRACE s), then end the child."""
        if self.process is None or self.process.pid is None:
            return
        self.stop.set()
        self.process.join(STOP_GRACE)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
