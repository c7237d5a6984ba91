"""Names of LXD objects made per instance (one place builds and parses them)."""

from __future__ import annotations

__all__ = [
    "group_project",
    "instance_pool",
    "is_tenant_project",
    "pool_owner",
    "storage_name",
]

SEPARATOR = "_"  # allowed in pool names, in neither project nor instance names
GROUP_MARK = "-g"  # between a tenant's project name and the number of a further group


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


def group_project(tenant_project: str, group: int) -> str:
    """The LXD project of one group of a tenant's servers: group 0 is the tenant's project."""
    return tenant_project if group == 0 else f"{tenant_project}{GROUP_MARK}{group}"


def is_tenant_project(tenant_project: str, project: str) -> bool:
    """Whether ``project`` is the tenant's own project or one of its group projects (no other
    tenant's: "cvps-t-1-g2" is tenant 1's, "cvps-t-10" is not)."""
    return project == tenant_project or project.startswith(f"{tenant_project}{GROUP_MARK}")
