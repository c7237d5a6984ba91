"""The settings a scale ramp needs: overcommit ratios that admit ``target`` servers of the
plan (the ramp measures cost, not admission), and room for their SSH ports."""

from __future__ import annotations

import math

from containervps.config import Settings
from containervps.db.models import Plan
from containervps.lxd import Lxd
from containervps.services.capacity import admission

__all__ = ["ramp_env"]

MARGIN = 1.25  # other servers on the host, and the failed creates a ramp tolerates


def ramp_env(settings: Settings, lxd: Lxd, *, plan: Plan, target: int) -> dict[str, str]:
    """CONTAINERVPS_* variables for the API child (each ratio only ever raised)."""
    raw = admission.host_capacity(
        settings.model_copy(
            update={"cpu_overcommit": 1.0, "memory_overcommit": 1.0, "disk_overcommit": 1.0}
        ),
        lxd,
    )
    want = math.ceil(target * MARGIN)

    def ratio(current: float, per_server: int, host: int) -> str:
        return f"{max(current, want * per_server / max(host, 1)):.2f}"

    return {
        "CONTAINERVPS_DISK_LAYOUT": settings.disk_layout,
        "CONTAINERVPS_CPU_OVERCOMMIT": ratio(settings.cpu_overcommit, plan.vcpus, raw.vcpus),
        "CONTAINERVPS_MEMORY_OVERCOMMIT": ratio(
            settings.memory_overcommit, plan.memory_mib, raw.memory_mib
        ),
        "CONTAINERVPS_DISK_OVERCOMMIT": ratio(
            settings.disk_overcommit, plan.disk_gib, raw.disk_gib
        ),
        "CONTAINERVPS_SSH_PORT_MAX": str(max(settings.ssh_port_max, settings.ssh_port_min + want)),
        "CONTAINERVPS_API_RATE_LIMIT_PER_HOUR": "0",
    }
