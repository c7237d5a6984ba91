"""How many more servers of each plan fit on this host, over every resource that can run out,
and which one binds first. Admission (admission.py) enforces the sold resources of the same
model; the measured ones (host memory per server, kernel-wide limits) are reported.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import BenchRun, Plan, Server, UsageSample
from containervps.lxd import Lxd
from containervps.lxd.idmaps import MAP_SIZE, root_range
from containervps.services.capacity import admission, disk_probe
from containervps.services.capacity.kernel_limits import kernel_limits
from containervps.services.servers.addresses import static_range
from containervps.services.servers.queries import LIVE, held_by_live
from containervps.services.servers.states import ServerState

__all__ = ["CapacityReport", "PlanFit", "Resource", "capacity_report"]

IDMAP_SPARE = 1 + 8  # LXD's shared default map and the spare blocks host init keeps


@dataclass(frozen=True)
class Resource:
    """One thing servers use up: what the host may sell of it and what is taken."""

    name: str
    unit: str
    sellable: int | None  # None: not known on this host (basis says why)
    used: int
    basis: str
    enforced: bool  # admission refuses past it (sold resources) or only reports it

    @property
    def free(self) -> int | None:
        return None if self.sellable is None else max(0, self.sellable - self.used)


@dataclass(frozen=True)
class PlanFit:
    plan: str
    fits: int | None  # more servers of the plan that fit; None: nothing bounds it here
    binding: str | None  # the resource that runs out first
    by_resource: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CapacityReport:
    resources: list[Resource]
    plans: list[PlanFit]
    measured_mib_per_server: float | None
    measured_source: str


def _mem_available_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 0


def _measured_cost(session: Session) -> tuple[float | None, str]:
    """Host memory per server from the latest finished `bench scale` run on this host."""
    runs = session.exec(
        select(BenchRun)
        .where(BenchRun.kind == "scale", BenchRun.status == "success")
        .order_by(col(BenchRun.started_at).desc())
    ).all()
    for run in runs:
        ramp = (run.summary or {}).get("ramps", {}).get("api") or {}
        if ramp.get("mib_per_server"):
            return float(ramp["mib_per_server"]), f"bench scale {run.id} ({run.workload})"
    return None, "no bench scale run on this host yet"


def _working_set_mib(session: Session, plan: str) -> float | None:
    """The mean memory use of running servers of ``plan`` at their latest sample."""
    latest = (
        select(UsageSample.server_id, func.max(UsageSample.id).label("last"))
        .group_by(col(UsageSample.server_id))
        .subquery()
    )
    query = (
        select(func.avg(UsageSample.memory_bytes))
        .join(latest, col(UsageSample.id) == latest.c.last)
        .join(Server, col(Server.id) == col(UsageSample.server_id))
        .where(LIVE, Server.plan == plan, Server.status == ServerState.RUNNING)
    )
    mean = session.exec(query).one()
    return float(mean) / 2**20 if mean else None


def _sold(session: Session, host: admission.HostCapacity, settings: Settings) -> list[Resource]:
    used = admission.usage(session)
    iops = admission.iops_held(session)
    measured = disk_probe.stored(settings)
    iops_basis = (
        f"{{}} IOPS measured {measured.measured_at[:16]} x iops_overcommit "
        f"{settings.iops_overcommit:g}"
        if measured
        else "host disk not measured (run `containervps host init` or `host check`)"
    )
    return [
        Resource(
            "servers",
            "servers",
            host.servers,
            used.servers,
            "max_containers (isolated idmaps host init reserved)",
            True,
        ),
        Resource(
            "vcpus",
            "vCPUs",
            host.vcpus,
            used.vcpus,
            f"host CPUs x cpu_overcommit {settings.cpu_overcommit:g}",
            True,
        ),
        Resource(
            "memory_mib",
            "MiB",
            host.memory_mib,
            used.memory_mib,
            f"MemTotal x memory_overcommit {settings.memory_overcommit:g}",
            True,
        ),
        Resource(
            "disk_gib",
            "GiB",
            host.disk_gib,
            used.disk_gib,
            f"pool size x disk_overcommit {settings.disk_overcommit:g}",
            True,
        ),
        Resource(
            "disk_read_iops",
            "IOPS",
            host.disk_read_iops,
            iops.read,
            iops_basis.format(measured.read if measured else ""),
            True,
        ),
        Resource(
            "disk_write_iops",
            "IOPS",
            host.disk_write_iops,
            iops.write,
            iops_basis.format(measured.write if measured else ""),
            True,
        ),
    ]


def _addressing(session: Session, settings: Settings) -> list[Resource]:
    first, last = static_range(settings)
    gateway = ipaddress.IPv4Interface(settings.bridge_subnet).ip
    addresses = int(last) - int(first) + 1 - (first <= gateway <= last)
    bounds = root_range()
    idmaps = bounds[1] // MAP_SIZE - IDMAP_SPARE if bounds else None
    servers = len(held_by_live(session, Server.id))
    return [
        Resource(
            "ssh_ports",
            "ports",
            settings.ssh_port_max - settings.ssh_port_min + 1,
            len(held_by_live(session, Server.ssh_port)),
            f"ssh_port_min..ssh_port_max ({settings.ssh_port_min}-{settings.ssh_port_max})",
            True,
        ),
        Resource(
            "ipv4_addresses",
            "addresses",
            addresses,
            len(held_by_live(session, Server.ipv4)),
            f"static range {first}-{last} of {settings.bridge_subnet}",
            True,
        ),
        Resource(
            "idmaps",
            "maps",
            idmaps,
            servers,
            "root's /etc/subuid range / 65536, less LXD's default map and spares",
            False,
        ),
    ]


def _measured(settings: Settings, source: str) -> list[Resource]:
    available, headroom = _mem_available_mib(), settings.capacity_headroom_mib
    basis = f"MemAvailable now ({available} MiB) less {headroom} MiB headroom; per server: "
    return [
        Resource("host_memory_mib", "MiB", max(0, available - headroom), 0, basis + source, False)
    ]


def _kernel(settings: Settings) -> tuple[list[Resource], dict[str, float | None]]:
    resources, per_server = [], {}
    # A server of the per_server layout mounts a pool of its own on the host.
    for limit in kernel_limits(mounts_per_server=int(settings.disk_layout == "per_server")):
        resources.append(
            Resource(limit.name, "", limit.limit, limit.used, f"kernel: {limit.sysctl}", False)
        )
        per_server[limit.name] = limit.per_server
    return resources, per_server


def _needs(
    plan: Plan, *, cost: float | None, working_set: float | None, kernel: dict[str, float | None]
) -> dict[str, float]:
    """What one more server of ``plan`` takes of each resource (unknown needs left out)."""
    needs: dict[str, float] = {
        "servers": 1,
        "vcpus": plan.vcpus,
        "memory_mib": plan.memory_mib,
        "disk_gib": plan.disk_gib,
        "disk_read_iops": plan.disk_read_iops,
        "disk_write_iops": plan.disk_write_iops,
        "ssh_ports": 1,
        "ipv4_addresses": 1,
        "idmaps": 1,
    }
    host_cost = max(filter(None, (cost, working_set)), default=None)
    if host_cost:
        needs["host_memory_mib"] = host_cost
    needs.update({name: value for name, value in kernel.items() if value})
    return needs


def _fit(plan: Plan, resources: list[Resource], needs: dict[str, float]) -> PlanFit:
    by_resource = {
        r.name: math.floor(r.free / needs[r.name])
        for r in resources
        if r.free is not None and needs.get(r.name)
    }
    if not by_resource:
        return PlanFit(plan.name, None, None)
    binding = min(by_resource, key=lambda name: by_resource[name])
    return PlanFit(plan.name, by_resource[binding], binding, by_resource)


def capacity_report(settings: Settings, lxd: Lxd, *, plan: str | None = None) -> CapacityReport:
    """Every resource with what is sellable and used, and per plan how many more fit."""
    host = admission.host_capacity(settings, lxd)
    kernel, per_server = _kernel(settings)
    with session_scope(settings) as session:
        cost, source = _measured_cost(session)
        resources = [
            *_sold(session, host, settings),
            *_addressing(session, settings),
            *_measured(settings, source),
            *kernel,
        ]
        query = select(Plan).where(col(Plan.retired_at).is_(None)).order_by(col(Plan.memory_mib))
        if plan:
            query = select(Plan).where(Plan.name == plan)
        plans = list(session.exec(query).all())
        fits = [
            _fit(
                p,
                resources,
                _needs(
                    p, cost=cost, working_set=_working_set_mib(session, p.name), kernel=per_server
                ),
            )
            for p in plans
        ]
    return CapacityReport(resources, fits, cost, source)
