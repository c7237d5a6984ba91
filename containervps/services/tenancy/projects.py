"""Restricted LXD projects: one per tenant (its quota as limits) and one per server (its plan
as limits, one instance).

A server has a project of its own because LXD checks a restricted project's limits on every
create, snapshot and device change by loading every instance of the project: in one project
that check grew with the tenant's servers (44% of LXD's CPU at 150-200 servers, creates/s 1.8
-> 0.5 from the first to the second hundred). In a project of one it stays constant.
"""

from __future__ import annotations

from typing import Any

from containervps.config import Settings
from containervps.db.models import Server
from containervps.lxd import TAG_PREFIX, Lxd
from containervps.schemas.quota import QuotaBase

__all__ = ["delete_server_project", "ensure_project", "ensure_server_project", "project_config"]


def _restrictions() -> dict[str, str]:
    """Unprivileged only, no nesting or low-level options, the devices the platform adds."""
    return {
        "features.images": "false",  # share the default project's images
        "features.profiles": "true",  # LXD requires own profiles for a restricted project
        "restricted": "true",
        "restricted.containers.nesting": "block",
        "restricted.containers.privilege": "unprivileged",
        "restricted.containers.lowlevel": "block",
        # The platform adds one proxy device per server (its forwarded SSH port); tenants have
        # no LXD access, so they cannot add their own.
        "restricted.devices.proxy": "allow",
        # Blocked by default in restricted projects; the platform counts them per tenant.
        "restricted.snapshots": "allow",
    }


def project_config(tenant_id: int, quota: QuotaBase) -> dict[str, str]:
    """The tenant's project: restricted, its quota as limits."""
    return {
        **_restrictions(),
        "limits.instances": str(quota.max_servers),
        "limits.cpu": str(quota.max_vcpus),
        "limits.memory": f"{quota.max_memory_mib}MiB",
        "limits.disk": f"{quota.max_disk_gib}GiB",
        "limits.processes": str(quota.max_processes),
        TAG_PREFIX + "tenant_id": str(tenant_id),
    }


def ensure_project(
    settings: Settings, lxd: Lxd, *, tenant_id: int, project: str, quota: QuotaBase
) -> None:
    """Create or update the tenant's project and its default profile (root disk, NIC)."""
    _put(
        settings, lxd, project, project_config(tenant_id, quota), f"containervps tenant {tenant_id}"
    )


def server_project_config(server: Server, limits: list[dict[str, Any]]) -> dict[str, str]:
    """A server's project: restricted, one instance, limits that admit each of ``limits`` (a
    resize passes the old and the new plan's while it moves between them)."""

    def most(key: str) -> int:
        return max(int(entry[key]["value"]) for entry in limits)

    return {
        **_restrictions(),
        "limits.instances": "1",
        "limits.cpu": str(most("vcpus")),
        "limits.memory": f"{most('memory')}MiB",
        "limits.disk": f"{most('disk')}GiB",
        "limits.processes": str(most("processes")),
        TAG_PREFIX + "tenant_id": str(server.tenant_id),
        TAG_PREFIX + "server_id": str(server.id),
    }


def ensure_server_project(
    settings: Settings, lxd: Lxd, server: Server, *, limits: list[dict[str, Any]] | None = None
) -> None:
    """Create the server's project (or set its limits) unless it already holds them; a
    server made before servers had projects (in its tenant's) is left as it is."""
    wanted = server_project_config(server, limits or [server.limits])
    current = lxd.host.get_project(server.lxd_project)
    if current is not None and current.get(TAG_PREFIX + "server_id") != str(server.id):
        return
    if current is not None and all(current.get(k) == v for k, v in wanted.items()):
        return
    _put(settings, lxd, server.lxd_project, wanted, f"containervps server {server.id}")


def delete_server_project(lxd: Lxd, server: Server) -> None:
    """Delete the server's own project once it is empty (absent, or a tenant's, is left)."""
    current = lxd.host.get_project(server.lxd_project)
    if current is not None and current.get(TAG_PREFIX + "server_id") == str(server.id):
        lxd.host.delete_project(server.lxd_project)


def _put(settings: Settings, lxd: Lxd, project: str, config: dict[str, str], about: str) -> None:
    """Create or update a project and its default profile (root disk, NIC, isolated idmap)."""
    # Merge into what LXD holds: a PUT replaces the config, and LXD refuses to flip defaults
    # such as features.storage.volumes back on a non-empty project.
    existing = lxd.host.get_project(project) or {}
    lxd.host.put_project(name=project, config={**existing, **config}, description=about)
    lxd.host.put_profile(
        name="default",
        project=project,
        description="containervps tenant base: root disk, NIC on the VPS bridge, isolated idmap",
        config={"security.idmap.isolated": "true"},
        devices={
            "root": {"type": "disk", "path": "/", "pool": settings.storage_pool},
            # Restricted projects only allow NICs on managed networks, named by `network`.
            "eth0": {"type": "nic", "network": settings.bridge, "name": "eth0"},
        },
    )
