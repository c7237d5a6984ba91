"""How a plan becomes a server's limits: what is enforced here, and LXD config and devices."""

from __future__ import annotations

from typing import Any

from containervps.db.models import Plan, Server
from containervps.services.host.capabilities import LXD, EgressSupport
from containervps.services.servers.addresses import mac_of
from containervps.services.servers.bandwidth import WHAT_HOLDS, BandwidthSupport

__all__ = [
    "CPU_GUARANTEE",
    "RESERVATION",
    "egress_mechanism",
    "instance_limits",
    "plan_limits",
    "reserve",
]

# What a vCPU is (README, "CPU and disk slices"). LXD pins each server to `vcpus` host cores
# and spreads pins over the cores by count, so no core carries more than ceil(R/C) of the R
# vCPUs of running servers (C host cores); cpu.shares of 1024 per vCPU (limits.cpu.allowance
# N*100%) give each vCPU an equal weight on its core, whatever the plan's size. Measured
# against CFS quota without pinning: a single-threaded victim got less (0.37 of a core next to
# three busy 1-vCPU servers instead of 0.47), and nproc inside showed every host core.
CPU_GUARANTEE = (
    "each vCPU is a host core shared at equal weight with the other running vCPUs pinned to "
    "it; with every server busy a server gets at least vcpus/ceil(R/C) cores (R: vCPUs of "
    "running servers, C: host cores) and at most vcpus cores; nproc inside shows vcpus"
)


def plan_limits(
    plan: Plan,
    *,
    egress_enforced: bool,
    egress_reason: str = "",
    bandwidth: BandwidthSupport | None = None,
    egress_mechanism: str = "",
    throttle_mbit: int | None = None,
) -> dict[str, Any]:
    """Every limit of a plan and whether this host enforces it (shown in server details);
    ``throttle_mbit``: the rate a server is held to past its monthly transfer (None: none)."""
    bandwidth = bandwidth or BandwidthSupport(True, WHAT_HOLDS)

    def limit(value: int, unit: str, enforced: bool = True, reason: str = "") -> dict[str, Any]:
        entry: dict[str, Any] = {"value": value, "unit": unit, "enforced": enforced}
        if reason:
            entry["reason"] = reason
        return entry

    egress = limit(plan.net_egress_mbit, "Mbit/s", egress_enforced, egress_reason)
    if egress_enforced and egress_mechanism:
        egress["mechanism"] = egress_mechanism
    if throttle_mbit is not None and egress_enforced:
        transfer = limit(
            plan.transfer_gib,
            "GiB/month",
            True,
            f"metered (GET /v1/usage); past it, egress is throttled to {throttle_mbit} Mbit/s "
            "until the month turns",
        )
        transfer["throttle_mbit"] = throttle_mbit
    else:
        transfer = limit(
            plan.transfer_gib, "GiB/month", False, "metered (GET /v1/usage), not throttled"
        )

    return {
        "vcpus": {**limit(plan.vcpus, "cpus"), "guarantee": CPU_GUARANTEE},
        "memory": limit(plan.memory_mib, "MiB"),
        "disk": limit(plan.disk_gib, "GiB"),
        "disk_read_iops": limit(plan.disk_read_iops, "iops"),
        "disk_write_iops": limit(plan.disk_write_iops, "iops"),
        "disk_read_mb_s": limit(plan.disk_read_mb_s, "MB/s", *_support(bandwidth)),
        "disk_write_mb_s": limit(plan.disk_write_mb_s, "MB/s", *_support(bandwidth)),
        "net_ingress": limit(plan.net_ingress_mbit, "Mbit/s"),
        "net_egress": egress,
        "processes": limit(plan.max_processes, "processes"),
        "transfer": transfer,
    }


def _support(support: BandwidthSupport) -> tuple[bool, str]:
    return support.enforced, support.reason


def egress_mechanism(limits: dict[str, Any]) -> str:
    """Who enforces the server's egress limit: LXD, PLATFORM, or "" (nobody)."""
    entry = limits.get("net_egress", {})
    if not entry.get("enforced"):
        return ""
    # Servers made before the platform could shape were enforced by LXD only.
    return str(entry.get("mechanism", LXD))


def instance_limits(
    limits: dict[str, Any],
    *,
    pool: str,
    network: str,
    ipv4: str | None = None,
    ipv6: str | None = None,
) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """LXD instance config and devices enforcing ``limits`` (as stored on the server), with the
    NIC's static addresses when given.

    With an IPv6 address the NIC gets the MAC it is formed from, and LXD's MAC, IPv4 and IPv6
    filtering: the server can send only from its own addresses (no spoofing on the bridge).
    Servers made before the platform fixed IPv6 addresses keep their NIC as it was (a new MAC
    would re-plug a running server's NIC) until a rebuild.
    """
    config = {
        "limits.cpu": str(limits["vcpus"]["value"]),
        # cpu.shares 1024 per vCPU: equal weight per vCPU on a shared core (CPU_GUARANTEE)
        "limits.cpu.allowance": f"{int(limits['vcpus']['value']) * 100}%",
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
    if ipv4:
        nic["ipv4.address"] = ipv4
    if ipv4 and ipv6:
        nic["hwaddr"] = mac_of(ipv6)
        nic["security.mac_filtering"] = "true"
        nic["security.ipv4_filtering"] = "true"
        nic["security.ipv6_filtering"] = "true"
    if egress_mechanism(limits) == LXD:
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


RESERVATION = ("plan", "vcpus", "memory_mib", "disk_gib", "processes", "limits")


def reserve(
    server: Server,
    plan: Plan,
    *,
    egress: EgressSupport,
    bandwidth: BandwidthSupport | None = None,
    throttle_mbit: int | None = None,
) -> None:
    """Give the server ``plan``: the reservation it holds and the limits it shows."""
    server.plan, server.vcpus, server.memory_mib = plan.name, plan.vcpus, plan.memory_mib
    server.disk_gib, server.processes = plan.disk_gib, plan.max_processes
    server.limits = plan_limits(
        plan,
        egress_enforced=egress.enforced,
        egress_reason=egress.reason,
        egress_mechanism=egress.mechanism,
        bandwidth=bandwidth,
        throttle_mbit=throttle_mbit,
    )
