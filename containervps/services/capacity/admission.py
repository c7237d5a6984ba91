"""Quota and host-capacity admission: what is used, what is allowed, and the checks."""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import ColumnElement, and_, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from containervps.config import Settings
from containervps.db.models import Plan, Quota, Server, Snapshot
from containervps.errors import ResourceLimitExceeded, ResourceUnavailable
from containervps.lxd import Lxd
from containervps.schemas.quota import Usage
from containervps.services.capacity import disk_probe

__all__ = [
    "HostCapacity",
    "Iops",
    "Shortfall",
    "admit_host",
    "admit_quota",
    "host_capacity",
    "host_shortfall",
    "iops_held",
    "mem_total_mib",
    "pool_disk_dir",
    "reservation",
    "usage",
]

CAPACITY_TTL = 300.0  # seconds a measured host capacity is reused


@dataclass(frozen=True)
class HostCapacity:
    """What the host may sell: real resources times the overcommit ratios."""

    servers: int
    vcpus: int
    memory_mib: int
    disk_gib: int
    disk_read_iops: int | None = None  # None: the disk was never measured (host init does it)
    disk_write_iops: int | None = None


@dataclass(frozen=True)
class Iops:
    """Disk operations per second sold to servers (read, write)."""

    read: int = 0
    write: int = 0

    @classmethod
    def of(cls, plan: Plan | Server) -> Iops:
        if isinstance(plan, Plan):
            return cls(plan.disk_read_iops, plan.disk_write_iops)
        limits = plan.limits
        return cls(limits["disk_read_iops"]["value"], limits["disk_write_iops"]["value"])

    def minus(self, other: Iops) -> Iops:
        return Iops(self.read - other.read, self.write - other.write)


def reservation(plan: Plan | Server, *, servers: int = 1) -> Usage:
    """What ``servers`` servers of a plan (or what one server) hold against quota and host."""
    processes = plan.max_processes if isinstance(plan, Plan) else plan.processes
    return Usage(servers, plan.vcpus, plan.memory_mib, plan.disk_gib, processes)


def _live(member: str | None) -> ColumnElement[bool]:
    """Live servers (of one cluster member when given)."""
    live = col(Server.deleted_at).is_(None)
    return live if member is None else and_(live, col(Server.member) == member)


def usage(session: Session, *, tenant_id: int | None = None, member: str | None = None) -> Usage:
    """Resources held by live servers and their snapshots (all tenants when ``tenant_id`` is
    None; only servers placed on cluster member ``member`` when given)."""
    live = _live(member)
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


def iops_held(session: Session, *, member: str | None = None) -> Iops:
    """Disk IOPS sold to live servers (from the limits each one holds), of one cluster member
    when ``member`` is given."""
    read, write = (
        func.coalesce(func.sum(func.json_extract(Server.limits, f"$.{key}.value")), 0)
        for key in ("disk_read_iops", "disk_write_iops")
    )
    row = session.execute(sa_select(read, write).where(_live(member))).one()
    return Iops(int(row[0]), int(row[1]))


def mem_total_mib() -> int:
    """The host's MemTotal in MiB."""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise OSError("MemTotal missing from /proc/meminfo")


def pool_disk_dir(settings: Settings, lxd: Lxd) -> Path:
    """The host directory holding the storage pool's loop file (or the pool itself)."""
    pool = lxd.host.get_pool(settings.storage_pool)
    source = Path(pool.config.get("source", "/")) if pool else Path("/")
    return source.parent if source.suffix == ".img" else source


def _server_disk_gib(settings: Settings, lxd: Lxd) -> int:
    """GiB that server disks can really fill: the shared pool (shared layout), or the disk
    holding LXD's pool loop files (per_server layout: sparse files there)."""
    if settings.disk_layout == "shared":
        total = lxd.host.pool_resources(settings.storage_pool).get("space", {}).get("total")
        if total:
            return int(total) // 2**30
    return shutil.disk_usage(pool_disk_dir(settings, lxd)).total // 2**30


_cache: dict[str, tuple[float, HostCapacity]] = {}
_cache_lock = threading.Lock()


def host_capacity(settings: Settings, lxd: Lxd) -> HostCapacity:
    """Host CPUs, MemTotal and disk space times the overcommit ratios (cached a few minutes)."""
    key = f"{settings.storage_pool}:{settings.cpu_overcommit}:{settings.memory_overcommit}:"
    key += f"{settings.disk_overcommit}:{settings.max_containers}:{settings.disk_layout}:"
    key += f"{settings.iops_overcommit}"
    with _cache_lock:
        hit = _cache.get(key)
        if hit and time.monotonic() - hit[0] < CAPACITY_TTL:
            return hit[1]
    disk_gib = _server_disk_gib(settings, lxd)
    measured = disk_probe.stored(settings)
    capacity = HostCapacity(
        servers=settings.max_containers,
        vcpus=int((os.cpu_count() or 1) * settings.cpu_overcommit),
        memory_mib=int(mem_total_mib() * settings.memory_overcommit),
        disk_gib=int(disk_gib * settings.disk_overcommit),
        disk_read_iops=int(measured.read * settings.iops_overcommit) if measured else None,
        disk_write_iops=int(measured.write * settings.iops_overcommit) if measured else None,
    )
    with _cache_lock:
        _cache[key] = (time.monotonic(), capacity)
    return capacity


@dataclass(frozen=True)
class Shortfall:
    """A sold resource a request does not fit in: what is free of it and what was asked."""

    resource: str
    free: int
    requested: int
    direction: str = ""  # "read" or "write" for disk_iops

    @property
    def what(self) -> str:
        return f"{self.resource} ({self.direction})" if self.direction else self.resource

    def details(self) -> dict[str, str | int]:
        extra = {"direction": self.direction} if self.direction else {}
        return {"resource": self.resource, **extra, "free": self.free, "requested": self.requested}


def host_shortfall(
    capacity: HostCapacity, *, used: Usage, held: Iops, want: Usage, want_iops: Iops = Iops()
) -> Shortfall | None:
    """The first sold resource of ``capacity`` that ``want`` more does not fit in, given what
    ``used`` and ``held`` already take (None: it fits). A shrink always fits."""
    checks: list[tuple[str, str, int, int | None, int]] = [
        (name, "", amount, getattr(capacity, name, None), getattr(want, name))
        for name, amount in used.items()
    ]
    checks += [
        ("disk_iops", "read", held.read, capacity.disk_read_iops, want_iops.read),
        ("disk_iops", "write", held.write, capacity.disk_write_iops, want_iops.write),
    ]
    for name, direction, amount, limit, asked in checks:
        after = amount + asked
        if limit is not None and after > limit and after > amount:
            return Shortfall(name, limit - amount, asked, direction)
    return None


def admit_quota(session: Session, *, tenant_id: int, quota: Quota, want: Usage) -> None:
    """Refuse ``want`` more past the tenant's quota (a shrink is never refused)."""
    mine = usage(session, tenant_id=tenant_id)
    for name, used in mine.items():
        limit, after = getattr(quota, f"max_{name}"), used + getattr(want, name)
        if after > limit and after > used:
            raise ResourceLimitExceeded(
                f"quota exceeded: {name} would be {after}, the limit is {limit}",
                details={"limit": name, "max": limit, "used": used, "requested": after - used},
                resolution="delete a server, pick a smaller plan or ask for a higher quota",
            )


def admit_host(
    session: Session, *, capacity: HostCapacity, want: Usage, want_iops: Iops = Iops()
) -> None:
    """Refuse ``want`` more past what the host may sell (every live server counts)."""
    short = host_shortfall(
        capacity, used=usage(session), held=iops_held(session), want=want, want_iops=want_iops
    )
    if short is not None:
        raise ResourceUnavailable(
            f"host capacity exhausted: {short.what} free {short.free}, requested {short.requested}",
            details=short.details(),
            resolution="try a smaller plan or later; the operator can add capacity",
        )
