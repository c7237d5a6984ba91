"""Names of LXD objects made per instance (one place builds and parses them)."""

from __future__ import annotations

__all__ = [
    "instance_pool",
    "pool_owner",
    "server_project",
    "server_projects_prefix",
    "storage_name",
]

SEPARATOR = "_"  # allowed in pool names, in neither project nor instance names


def instance_pool(project: str, instance: str) -> str:
    """The storage pool holding one instance's own disk: unique on the host."""
    return f"{project}{SEPARATOR}{instance}"


def pool_owner(pool: str) -> tuple[str, str] | None:
    """(project, instance) of a per-instance pool name, or None for any other pool."""
    project, sep, instance = pool.partition(SEPARATOR)
    return (project, instance) if sep and project and instance else None


def storage_name(project: str, instance: str) -> str:
    """How LXD itself names an instance of a project on disk (its volume and log dir)."""
    return f"{project}_{instance}"


def server_project(tenant_project: str, server_id: int) -> str:
    """The LXD project holding one server: its tenant's project name and the server id."""
    return f"{server_projects_prefix(tenant_project)}{server_id}"


def server_projects_prefix(tenant_project: str) -> str:
    """What the names of a tenant's server projects start with (and no other tenant's)."""
    return f"{tenant_project}-s"
