"""Each tenant's restricted LXD projects: its config and its default profile.

A tenant's servers fill projects of ``servers_per_project`` each: the tenant's project, then
`<tenant project>-g1`, `-g2`, ... all with the same config (the quota as limits). LXD checks a
restricted project's limits on every create, snapshot and device change by loading every
instance of that project, so in one project that check grew with the tenant's servers (44% of
LXD's CPU at 150-200 servers, creates/s 1.8 -> 0.5 from the first to the second hundred). A
project per server instead made every host-wide instance listing (the NIC address check, the
isolated idmap search) load one project per instance. Groups bound both.
"""

from __future__ import annotations

from containervps.config import Settings
from containervps.lxd import TAG_PREFIX, Lxd, is_tenant_project
from containervps.schemas.quota import QuotaBase

__all__ = ["ensure_project", "project_config", "tenant_projects"]


def project_config(tenant_id: int, quota: QuotaBase, *, network: str) -> dict[str, str]:
    """Restricted-project config: what the platform itself uses and nothing else, the quota
    as limits. Tenants have no LXD access; these are the kernel-side second layer."""
    return {
        "features.images": "false",  # share the default project's images
        "features.profiles": "true",  # LXD requires own profiles for a restricted project
        "restricted": "true",
        "restricted.containers.nesting": "block",
        # Containers only, each with an idmap of its own: LXD refuses
        # security.idmap.isolated=false, privileged containers and VMs.
        "restricted.containers.privilege": "isolated",
        "limits.virtual-machines": "0",
        "restricted.containers.lowlevel": "block",
        "restricted.containers.interception": "block",
        # SSH forwards are the platform's own nftables map (ssh_forwards.py), not devices.
        "restricted.devices.proxy": "block",
        "restricted.devices.disk": "managed",  # root disks on a pool; no host paths
        "restricted.devices.nic": "managed",
        "restricted.backups": "block",
        "restricted.cluster.target": "block",
        # Blocked by default in restricted projects; the platform counts them per tenant.
        "restricted.snapshots": "allow",
        "limits.instances": str(quota.max_servers),
        "limits.cpu": str(quota.max_vcpus),
        "limits.memory": f"{quota.max_memory_mib}MiB",
        "limits.disk": f"{quota.max_disk_gib}GiB",
        "limits.processes": str(quota.max_processes),
        "restricted.networks.access": network,  # the VPS bridge only
        TAG_PREFIX + "tenant_id": str(tenant_id),
    }


def ensure_project(
    settings: Settings, lxd: Lxd, *, tenant_id: int, project: str, quota: QuotaBase
) -> None:
    """Create or update the tenant's project and its default profile (root disk, NIC)."""
    # Merge into what LXD holds: a PUT replaces the config, and LXD refuses to flip defaults
    # such as features.storage.volumes back on a non-empty project.
    existing = lxd.host.get_project(project) or {}
    lxd.host.put_project(
        name=project,
        config={**existing, **project_config(tenant_id, quota, network=settings.bridge)},
        description=f"containervps tenant {tenant_id}",
    )
    config = {"security.idmap.isolated": "true"}
    devices = {
        "root": {"type": "disk", "path": "/", "pool": settings.storage_pool},
        # Restricted projects only allow NICs on managed networks, named by `network`.
        "eth0": {"type": "nic", "network": settings.bridge, "name": "eth0"},
    }
    current = lxd.host.get_profile("default", project=project)
    if current is not None and (current.config, current.devices) == (config, devices):
        return  # a profile change makes LXD update every instance of the project
    lxd.host.put_profile(
        name="default",
        project=project,
        description="containervps tenant base: root disk, NIC on the VPS bridge, isolated idmap",
        config=config,
        devices=devices,
    )


def tenant_projects(lxd: Lxd, tenant_project: str, *, listed: list[str] | None = None) -> list[str]:
    """The tenant's projects in LXD (of ``listed``, when given): its own and its servers'
    group projects."""
    names = lxd.host.list_projects() if listed is None else listed
    return [p for p in names if is_tenant_project(tenant_project, p)]
