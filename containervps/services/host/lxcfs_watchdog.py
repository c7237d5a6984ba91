"""Notice lxcfs stopping, start it again and re-attach the /proc views of running servers.

A pass is cheap (a stat of the lxcfs mount); the containers are only scanned when lxcfs was
down or is another mount than at the last pass (restarted by someone else), and at start-up.
Every server whose views were re-attached gets an ``LXCFS_REPAIRED`` event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server
from containervps.lxd.locks import file_lock
from containervps.services.events import EventType, record
from containervps.services.host import daemons
from containervps.services.host.lxcfs_mounts import ContainerRepair, repair, running_containers

log = logging.getLogger(__name__)

__all__ = ["LxcfsRepair", "LxcfsWatchdog", "lxcfs_device", "repair_lxcfs"]


@dataclass(frozen=True)
class LxcfsRepair:
    """One repair pass: whether lxcfs was started, what was re-attached where, how long."""

    restarted: bool
    scanned: int  # running containers looked at
    repaired: list[ContainerRepair]
    server_ids: dict[str, int]  # "project/name" -> server id, for the repaired servers
    seconds: float


def lxcfs_device() -> str | None:
    """major:minor of the lxcfs mount on the host (a new one after each lxcfs start)."""
    device = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(daemons.LXCFS_DIR) and "fuse.lxcfs" in fields:
            device = fields[2]  # the last one listed is the one on top
    return device


@contextmanager
def _repair_lock(settings: Settings) -> Iterator[None]:
    """One repair at a time on the host (the API and the CLI could both notice)."""
    with file_lock(settings.data_dir / "lxcfs-repair.lock"):
        yield


def _live_servers(settings: Settings) -> dict[tuple[str, str], int]:
    try:
        with session_scope(settings) as session:
            rows = session.exec(
                select(Server.lxd_project, Server.lxd_name, Server.id).where(
                    col(Server.deleted_at).is_(None)
                )
            ).all()
    except SQLAlchemyError:  # `host start` on a host whose database is not migrated yet
        log.warning("no servers known (database not ready): repairing by container only")
        return {}
    return {(project, name): int(sid) for project, name, sid in rows if sid is not None}


def repair_lxcfs(
    settings: Settings, *, all_containers: bool = False, devices: set[str] | None = None
) -> LxcfsRepair:
    """Start lxcfs if it is down (or restart it when it runs with options other than
    ``lxcfs_options``), then re-attach dead views in the servers' containers (in every
    running container with ``all_containers``; only views of ``devices``, the major:minor of
    earlier lxcfs mounts, when given) and record an event per repaired server."""
    started = time.monotonic()
    with _repair_lock(settings):
        # Every view on the host dies with an lxcfs stopped for its options: re-attach all.
        all_containers |= daemons.stop_lxcfs_with_other_options(settings)
        restarted = not daemons.lxcfs_active()
        if restarted:
            log.warning("lxcfs is not answering; starting it again")
            daemons.ensure_lxcfs(settings)
        servers = _live_servers(settings)
        containers = [
            c for c in running_containers() if all_containers or (c.project, c.name) in servers
        ]
        repaired = repair(containers, devices=devices)
    ids: dict[str, int] = {}
    for r in repaired:
        sid = servers.get((r.project, r.name))
        if sid is None:
            continue
        ids[f"{r.project}/{r.name}"] = sid
        if r.errors:
            log.error("lxcfs views of %s/%s not re-attached: %s", r.project, r.name, r.errors)
        if r.replaced:
            record(
                settings,
                server_id=sid,
                type=EventType.LXCFS_REPAIRED,
                message="The host's lxcfs stopped and was restarted: /proc and /sys views "
                "(memory, CPUs, uptime) were re-attached without restarting the server.",
                severity="warning" if r.errors else "info",
                details={"views": r.replaced, "namespaces": r.namespaces, "errors": r.errors},
            )
    result = LxcfsRepair(restarted, len(containers), repaired, ids, time.monotonic() - started)
    if restarted or repaired:
        log.warning(
            "lxcfs repair: restarted=%s, %d of %d containers re-attached in %.2fs",
            restarted,
            len(repaired),
            len(containers),
            result.seconds,
        )
    return result


class LxcfsWatchdog:
    """Call ``tick`` every few seconds: repairs when lxcfs is down or was restarted."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.device: str | None = None
        self.first = True

    def tick(self) -> LxcfsRepair | None:
        """A repair pass if one is due, else None."""
        if not self.first and daemons.lxcfs_active() and lxcfs_device() == self.device:
            return None
        self.first = False
        result = repair_lxcfs(self.settings)
        self.device = lxcfs_device()
        return result
