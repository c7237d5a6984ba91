"""Quota and host-capacity admission: what is used, what is allowed, and the checks."""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from containervps.config import Settings
from containervps.db.models import Plan, Quota, Server, Snapshot
from containervps.errors import ResourceLimitExceeded, ResourceUnavailable
from containervps.lxd import Lxd
from containervps.schemas.quota import Usage

__all__ = ["HostCapacity", "admit", "host_capacity", "reservation", "usage"]

CAPACITY_TTL = 300.0  # seconds a measured host capacity is reused


@dataclass(frozen=True)
class HostCapacity:
    """What the host may sell: real resources times the overcommit ratios."""

    servers: int
    vcpus: int
    memory_mib: int
    disk_gib: int


def reservation(plan: Plan | Server, *, servers: int = 1) -> Usage:
    """What ``servers`` servers of a plan (or what one server) hold against quota and host."""
    processes = plan.max_processes if isinstance(plan, Plan) else plan.processes
    return Usage(servers, plan.vcpus, plan.memory_mib, plan.disk_gib, processes)


def usage(session: Session, *, tenant_id: int | None = None) -> Usage:
    """Resources held by live servers and their snapshots (all tenants when ``tenant_id`` is
    None)."""
    live = col(Server.deleted_at).is_(None)
    servers = sa_select(
        func.count(col(Server.id)),
        func.coalesce(func.sum(Server.vcpus), 0),
        func.coalesce(func.sum(Server.memory_mib), 0),
        func.coalesce(func.sum(Server.disk_gib), 0),
        func.coalesce(func.sum(Server.processes), 0),
    ).where(live)
    snapshots = (
        sa_select(func.count(col(Snapshot.id)))
        .join(Server, col(Server.id) == col(Snapshot.server_id))
        .where(live)
    )
    if tenant_id is not None:
        servers = servers.where(col(Server.tenant_id) == tenant_id)
        snapshots = snapshots.where(col(Snapshot.tenant_id) == tenant_id)
    count, vcpus, memory_mib, disk_gib, processes = (int(v) for v in session.execute(servers).one())
    return Usage(
        count, vcpus, memory_mib, disk_gib, processes, int(session.execute(snapshots).scalar_one())
    )


def _mem_total_mib() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise OSError("MemTotal missing from /proc/meminfo")


def _server_disk_gib(settings: Settings, lxd: Lxd) -> int:
    """GiB that server disks can really fill: the shared pool (shared layout), or the disk
    holding LXD's pool loop files (per_server layout: sparse files there)."""
    if settings.disk_layout == "shared":
        total = lxd.host.pool_resources(settings.storage_pool).get("space", {}).get("total")
        if total:
            return int(total) // 2**30
    pool = lxd.host.get_pool(settings.storage_pool)
    source = Path(pool.config.get("source", "/")) if pool else Path("/")
    return shutil.disk_usage(source.parent if source.suffix == ".img" else source).total // 2**30


_cache: dict[str, tuple[float, HostCapacity]] = {}
_cache_lock = threading.Lock()


def host_capacity(settings: Settings, lxd: Lxd) -> HostCapacity:
    """Host CPUs, MemTotal and disk space times the overcommit ratios (cached a few minutes)."""
    key = f"{settings.storage_pool}:{settings.cpu_overcommit}:{settings.memory_overcommit}:"
    key += f"{settings.disk_overcommit}:{settings.max_containers}:{settings.disk_layout}"
    with _cache_lock:
        hit = _cache.get(key)
        if hit and time.monotonic() - hit[0] < CAPACITY_TTL:
            return hit[1]
    disk_gib = _server_disk_gib(settings, lxd)
    capacity = HostCapacity(
        servers=settings.max_containers,
        vcpus=int((os.cpu_count() or 1) * settings.cpu_overcommit),
        memory_mib=int(_mem_total_mib() * settings.memory_overcommit),
        disk_gib=int(disk_gib * settings.disk_overcommit),
    )
    with _cache_lock:
        _cache[key] = (time.monotonic(), capacity)
    return capacity


def admit(
    session: Session,
    *,
    tenant_id: int,
    quota: Quota,
    capacity: HostCapacity,
    want: Usage,
) -> None:
    """Refuse ``want`` more (a new server, or a resize's difference) past the tenant quota or
    the host capacity. A shrink is never refused.

    Call inside a BEGIN IMMEDIATE transaction so that concurrent admissions serialise.
    """
    mine = usage(session, tenant_id=tenant_id)
    for name, used in mine.items():
        limit, after = getattr(quota, f"max_{name}"), used + getattr(want, name)
        if after > limit and after > used:
            raise ResourceLimitExceeded(
                f"quota exceeded: {name} would be {after}, the limit is {limit}",
                details={"limit": name, "max": limit, "used": used, "requested": after - used},
                resolution="delete a server, pick a smaller plan or ask for a higher quota",
            )
    host = usage(session)
    for name, used in host.items():
        limit = getattr(capacity, name, None)
        after = used + getattr(want, name)
        if limit is not None and after > limit and after > used:
            raise ResourceUnavailable(
                f"host capacity exhausted: {name} free {limit - used}, requested {after - used}",
                details={"resource": name, "free": limit - used, "requested": after - used},
                resolution="try a smaller plan or later; the operator can add capacity",
            )
