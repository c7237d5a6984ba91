"""Disk bandwidth (MB/s) of a running server, written by the platform into its blkio cgroup.

LXD's root-disk ``limits.read``/``limits.write`` take one value each, bytes/s or IOPS, and the
plans use them for IOPS; the byte rates go into the cgroup v1 throttle files of the container
(``blkio.throttle.{read,write}_bps_device``) for the block device under its storage pool (the
loop device of a btrfs pool). LXD creates a new cgroup on every start, so the limits are
written after every action and repaired by the reconciler (a reboot from inside too).

cgroup v1 throttles the I/O a task submits itself: reads, direct writes and the writeback an
fsync does; buffered writeback runs in the kernel's flusher threads outside the container's
cgroup and is not throttled (measured: 1 MiB direct writes 19.9 MB/s and fsync'd writes
19.0 MB/s at a 20 MB/s limit, buffered writes into the page cache ~590 MB/s either way, and
800 MiB buffered and synced in a 256 MiB container 525 MB/s).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from containervps.config import Settings
from containervps.db.models import Server
from containervps.errors import ContainerVpsError
from containervps.lxd import Lxd

log = logging.getLogger(__name__)

__all__ = [
    "WHAT_HOLDS",
    "BandwidthSupport",
    "apply",
    "bandwidth_support",
    "cgroup_dir",
    "enforce",
    "pool_device",
    "wanted",
]

WHAT_HOLDS = (
    "blkio throttle (cgroup v1): reads, direct and fsync'd writes; buffered writeback is not "
    "throttled on cgroup v1"
)
FILES = {"read": "blkio.throttle.read_bps_device", "write": "blkio.throttle.write_bps_device"}


@dataclass(frozen=True)
class BandwidthSupport:
    enforced: bool
    reason: str


def bandwidth_support(settings: Settings) -> BandwidthSupport:
    """Whether this host has the cgroup v1 blkio throttle the platform writes."""
    if (settings.cgroup_root / "blkio" / "blkio.throttle.write_bps_device").exists():
        return BandwidthSupport(True, WHAT_HOLDS)
    return BandwidthSupport(False, "no cgroup v1 blkio throttle on this host")


def cgroup_dir(settings: Settings, server: Server) -> Path:
    """The container's blkio cgroup (LXD names it lxc.payload.<project>_<name>)."""
    return settings.cgroup_root / "blkio" / f"lxc.payload.{server.lxd_project}_{server.lxd_name}"


def _loop_of(source: str, sys_block: Path) -> str | None:
    for backing in sys_block.glob("loop*/loop/backing_file"):
        try:
            if backing.read_text().strip() == source:
                return (backing.parent.parent / "dev").read_text().strip()
        except OSError:
            continue
    return None


def pool_device(lxd: Lxd, pool: str, *, sys_block: Path = Path("/sys/block")) -> str | None:
    """``major:minor`` of the block device under a storage pool: the loop device of a
    loop-file pool, or the device a pool was made on; None for a directory pool."""
    info = lxd.host.get_pool(pool)
    source = info.config.get("source", "") if info else ""
    if not source:
        return None
    if source.startswith("/dev/"):
        try:
            rdev = os.stat(source).st_rdev
        except OSError:
            return None
        return f"{os.major(rdev)}:{os.minor(rdev)}"
    return _loop_of(source, sys_block)


def wanted(limits: dict[str, Any]) -> dict[str, int] | None:
    """Bytes/s per direction from a server's limits block (None: the block has none)."""
    read, write = limits.get("disk_read_mb_s"), limits.get("disk_write_mb_s")
    if not read or not write or not read.get("enforced"):
        return None
    return {"read": int(read["value"]) * 10**6, "write": int(write["value"]) * 10**6}


def _rates(path: Path) -> list[int]:
    return [int(line.split()[1]) for line in path.read_text().splitlines() if line.strip()]


def _held(path: Path, device: str) -> int | None:
    for line in path.read_text().splitlines():
        dev, _, rate = line.partition(" ")
        if dev == device:
            return int(rate)
    return None


def apply(settings: Settings, lxd: Lxd, server: Server, *, pool: str) -> bool:
    """Write the server's bandwidth limits into its running container's cgroup unless held.

    Returns True when something was written; False when already held, not wanted, or the
    container has no cgroup (not running).
    """
    rates = wanted(server.limits)
    directory = cgroup_dir(settings, server)
    if rates is None or not directory.is_dir():
        return False
    if all(_rates(directory / FILES[d]) == [rate] for d, rate in rates.items()):
        return False  # held (the common case of a reconciler pass: no LXD request)
    device = pool_device(lxd, pool)
    if device is None:
        log.warning("no block device under pool", extra={"server": server.id, "pool": pool})
        return False
    changed = False
    for direction, rate in rates.items():
        path = directory / FILES[direction]
        if _held(path, device) != rate:
            path.write_text(f"{device} {rate}\n")
            changed = True
    return changed


def enforce(settings: Settings, lxd: Lxd, server: Server) -> bool:
    """Apply the server's bandwidth limits if its container runs (never raises: the
    reconciler tries again). Returns True when something was written."""
    try:
        inst = lxd.instances.get(name=server.lxd_name, project=server.lxd_project)
        if inst.status != "Running":
            return False
        pool = str(inst.devices.get("root", {}).get("pool") or settings.storage_pool)
        return apply(settings, lxd, server, pool=pool)
    except (ContainerVpsError, OSError, ValueError) as exc:
        log.warning("disk bandwidth not applied", extra={"server": server.id, "error": str(exc)})
        return False
