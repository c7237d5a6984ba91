"""The settings a scale ramp needs: overcommit ratios that admit ``target`` servers of the
plan (the ramp measures cost, not admission), and room for their SSH ports."""

from __future__ import annotations

import math
from typing import Any

from containervps.config import Settings
from containervps.db.models import Plan
from containervps.lxd import Lxd
from containervps.services.capacity import admission
from containervps.services.capacity.planner import capacity_report

__all__ = ["predicted_fit", "ramp_env"]

MARGIN = 1.25  # other servers on the host, and the failed creates a ramp tolerates


def ramp_env(
    settings: Settings, lxd: Lxd, *, plan: Plan, target: int, until_full: bool = False
) -> dict[str, str]:
    """CONTAINERVPS_* variables for the API child (each ratio only ever raised; none with
    ``until_full``, which measures the operator's own limits)."""
    fixed = {
        "CONTAINERVPS_DISK_LAYOUT": settings.disk_layout,
        "CONTAINERVPS_API_RATE_LIMIT_PER_HOUR": "0",
    }
    if until_full:
        return fixed
    raw = admission.host_capacity(
        settings.model_copy(
            update={
                "cpu_overcommit": 1.0,
                "memory_overcommit": 1.0,
                "disk_overcommit": 1.0,
                "iops_overcommit": 1.0,
            }
        ),
        lxd,
    )
    want = math.ceil(target * MARGIN)

    def ratio(current: float, per_server: int, host: int) -> str:
        return f"{max(current, want * per_server / max(host, 1)):.2f}"

    return {
        **fixed,
        "CONTAINERVPS_CPU_OVERCOMMIT": ratio(settings.cpu_overcommit, plan.vcpus, raw.vcpus),
        "CONTAINERVPS_MEMORY_OVERCOMMIT": ratio(
            settings.memory_overcommit, plan.memory_mib, raw.memory_mib
        ),
        "CONTAINERVPS_DISK_OVERCOMMIT": ratio(
            settings.disk_overcommit, plan.disk_gib, raw.disk_gib
        ),
        "CONTAINERVPS_IOPS_OVERCOMMIT": ratio(
            settings.iops_overcommit, plan.disk_write_iops, raw.disk_write_iops or 0
        ),
        "CONTAINERVPS_SSH_PORT_MAX": str(max(settings.ssh_port_max, settings.ssh_port_min + want)),
    }


def predicted_fit(settings: Settings, lxd: Lxd, plan: str) -> dict[str, Any]:
    """What `containervps capacity` predicts for ``plan`` before the ramp starts."""
    (fit,) = capacity_report(settings, lxd, plan=plan).plans
    return {"fits": fit.fits, "binding": fit.binding, "by_resource": fit.by_resource}
