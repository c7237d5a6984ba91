"""Plans: the catalogue of server sizes and how a plan becomes LXD limits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Plan
from containervps.errors import Conflict, InvalidInput

__all__ = ["PlanSpec", "create_plan", "get_plan", "instance_limits", "list_plans", "plan_limits"]

PLAN_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class PlanSpec:
    name: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    disk_read_iops: int
    disk_write_iops: int
    net_ingress_mbit: int
    net_egress_mbit: int
    max_processes: int
    transfer_gib: int
    description: str = ""


def list_plans(settings: Settings) -> list[Plan]:
    """Every plan, smallest first."""
    with session_scope(settings) as session:
        query = select(Plan).order_by(col(Plan.vcpus), col(Plan.memory_mib), col(Plan.name))
        return list(session.exec(query).all())


def get_plan(session: Session, name: str) -> Plan:
    """The plan called ``name``, or InvalidInput."""
    plan = session.get(Plan, name)
    if plan is None:
        raise InvalidInput(f"unknown plan {name!r}", details={"field": "plan", "value": name})
    return plan


def create_plan(settings: Settings, spec: PlanSpec) -> Plan:
    """Add a plan to the catalogue."""
    if not PLAN_NAME.match(spec.name):
        raise InvalidInput(f"invalid plan name {spec.name!r}", details={"field": "name"})
    numbers = {k: v for k, v in vars(spec).items() if isinstance(v, int)}
    bad = [k for k, v in numbers.items() if v < 1]
    if bad:
        raise InvalidInput(f"plan values must be >= 1: {', '.join(bad)}", details={"fields": bad})
    with session_scope(settings, immediate=True) as session:
        if session.get(Plan, spec.name) is not None:
            raise Conflict(f"plan {spec.name!r} already exists")
        plan = Plan(**vars(spec))
        session.add(plan)
        return plan


def plan_limits(plan: Plan, *, egress_enforced: bool, egress_reason: str = "") -> dict[str, Any]:
    """Every limit of a plan and whether this host enforces it (shown in server details)."""

    def limit(value: int, unit: str, enforced: bool = True, reason: str = "") -> dict[str, Any]:
        entry: dict[str, Any] = {"value": value, "unit": unit, "enforced": enforced}
        if reason:
            entry["reason"] = reason
        return entry

    return {
        "vcpus": limit(plan.vcpus, "cpus"),
        "memory": limit(plan.memory_mib, "MiB"),
        "disk": limit(plan.disk_gib, "GiB"),
        "disk_read_iops": limit(plan.disk_read_iops, "iops"),
        "disk_write_iops": limit(plan.disk_write_iops, "iops"),
        "net_ingress": limit(plan.net_ingress_mbit, "Mbit/s"),
        "net_egress": limit(plan.net_egress_mbit, "Mbit/s", egress_enforced, egress_reason),
        "processes": limit(plan.max_processes, "processes"),
        "transfer": limit(
            plan.transfer_gib, "GiB/month", False, "metered (GET /v1/usage), not throttled"
        ),
    }


def instance_limits(
    limits: dict[str, Any], *, pool: str, network: str
) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """LXD instance config and devices enforcing ``limits`` (as stored on the server)."""
    config = {
        "limits.cpu": str(limits["vcpus"]["value"]),
        "limits.memory": f"{limits['memory']['value']}MiB",
        "limits.memory.enforce": "hard",
        "limits.processes": str(limits["processes"]["value"]),
    }
    nic = {
        "type": "nic",
        "network": network,
        "name": "eth0",
        "limits.ingress": f"{limits['net_ingress']['value']}Mbit",
    }
    if limits["net_egress"]["enforced"]:
        nic["limits.egress"] = f"{limits['net_egress']['value']}Mbit"
    devices = {
        "root": {
            "type": "disk",
            "path": "/",
            "pool": pool,
            "size": f"{limits['disk']['value']}GiB",
            "limits.read": f"{limits['disk_read_iops']['value']}iops",
            "limits.write": f"{limits['disk_write_iops']['value']}iops",
        },
        "eth0": nic,
    }
    return config, devices
