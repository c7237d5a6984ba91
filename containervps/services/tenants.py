"""Tenants: a DB row, a quota and a restricted LXD project mirroring that quota."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import ApiToken, Quota, Server, Tenant, utcnow
from containervps.errors import Conflict, ContainerVpsError, InvalidInput, NotFound
from containervps.lxd import TAG_PREFIX, Lxd
from containervps.services.capacity import Usage, usage

log = logging.getLogger(__name__)

__all__ = [
    "QuotaSpec",
    "TenantView",
    "create_tenant",
    "delete_tenant",
    "ensure_project",
    "get_tenant",
    "list_tenants",
    "project_config",
    "set_quota",
]

TENANT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class QuotaSpec:
    max_servers: int
    max_vcpus: int
    max_memory_mib: int
    max_disk_gib: int
    max_processes: int
    max_snapshots: int = 10

    @classmethod
    def defaults(cls, settings: Settings) -> QuotaSpec:
        """The quota a tenant gets unless told otherwise."""
        return cls(
            max_servers=settings.default_max_servers,
            max_vcpus=settings.default_max_vcpus,
            max_memory_mib=settings.default_max_memory_mib,
            max_disk_gib=settings.default_max_disk_gib,
            max_processes=settings.default_max_processes,
            max_snapshots=settings.default_max_snapshots,
        )


@dataclass(frozen=True)
class TenantView:
    tenant: Tenant
    quota: Quota
    usage: Usage


def project_config(tenant_id: int, quota: QuotaSpec | Quota) -> dict[str, str]:
    """Restricted-project config: unprivileged only, no nesting/low-level, quota as limits."""
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
        "limits.instances": str(quota.max_servers),
        "limits.cpu": str(quota.max_vcpus),
        "limits.memory": f"{quota.max_memory_mib}MiB",
        "limits.disk": f"{quota.max_disk_gib}GiB",
        "limits.processes": str(quota.max_processes),
        TAG_PREFIX + "tenant_id": str(tenant_id),
    }


def ensure_project(
    settings: Settings, lxd: Lxd, *, tenant_id: int, project: str, quota: Quota
) -> None:
    """Create or update the tenant's project and its default profile (root disk, NIC)."""
    # Merge into what LXD holds: a PUT replaces the config, and LXD refuses to flip defaults
    # such as features.storage.volumes back on a non-empty project.
    existing = lxd.host.get_project(project) or {}
    lxd.host.put_project(
        name=project,
        config={**existing, **project_config(tenant_id, quota)},
        description=f"containervps tenant {tenant_id}",
    )
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


def _validate_quota(quota: QuotaSpec) -> None:
    bad = [k for k, v in vars(quota).items() if v < 1]
    if bad:
        raise InvalidInput(f"quota values must be >= 1: {', '.join(bad)}", details={"fields": bad})


def create_tenant(settings: Settings, lxd: Lxd, *, name: str, quota: QuotaSpec) -> TenantView:
    """Insert the tenant, then create its LXD project; undo the row if LXD fails."""
    if not TENANT_NAME.match(name):
        raise InvalidInput(
            f"invalid tenant name {name!r}: 1-63 of a-z, 0-9, '-', not at either end",
            details={"field": "name"},
        )
    _validate_quota(quota)
    with session_scope(settings, immediate=True) as session:
        if session.exec(
            select(Tenant).where(Tenant.name == name, col(Tenant.deleted_at).is_(None))
        ).first():
            raise Conflict(f"tenant {name!r} already exists")
        tenant = Tenant(name=name, lxd_project="")
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        tenant.lxd_project = f"{settings.tenant_project_prefix}{tenant.id}"
        row = Quota(tenant_id=tenant.id, **vars(quota))
        session.add_all([tenant, row])
    try:
        ensure_project(settings, lxd, tenant_id=tenant.id, project=tenant.lxd_project, quota=row)
    except ContainerVpsError:
        with session_scope(settings, immediate=True) as session:
            session.delete(session.get(Quota, tenant.id))
            session.delete(session.get(Tenant, tenant.id))
        raise
    return TenantView(tenant, row, Usage(0, 0, 0, 0, 0))


def _live_tenant(session: Session, tenant_id: int) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None or tenant.deleted_at is not None:
        raise NotFound(f"tenant {tenant_id} not found")
    return tenant


def resolve(settings: Settings, ref: str) -> int:
    """A tenant id from an id or a name (CLI convenience)."""
    with session_scope(settings) as session:
        if ref.isdigit():
            return _live_tenant(session, int(ref)).id or 0
        row = session.exec(
            select(Tenant).where(Tenant.name == ref, col(Tenant.deleted_at).is_(None))
        ).first()
        if row is None or row.id is None:
            raise NotFound(f"tenant {ref!r} not found")
        return row.id


def get_tenant(settings: Settings, tenant_id: int) -> TenantView:
    """A live tenant with its quota and usage."""
    with session_scope(settings) as session:
        tenant = _live_tenant(session, tenant_id)
        quota = session.get(Quota, tenant_id)
        assert quota is not None
        return TenantView(tenant, quota, usage(session, tenant_id=tenant_id))


def list_tenants(settings: Settings) -> list[TenantView]:
    """Every live tenant with quota and usage."""
    with session_scope(settings) as session:
        tenants = session.exec(
            select(Tenant).where(col(Tenant.deleted_at).is_(None)).order_by(col(Tenant.id))
        ).all()
        views = []
        for t in tenants:
            assert t.id is not None
            quota = session.get(Quota, t.id)
            assert quota is not None
            views.append(TenantView(t, quota, usage(session, tenant_id=t.id)))
        return views


def set_quota(settings: Settings, lxd: Lxd, *, tenant_id: int, quota: QuotaSpec) -> TenantView:
    """Change a quota (never below what the tenant holds now) and mirror it into LXD."""
    _validate_quota(quota)
    with session_scope(settings, immediate=True) as session:
        tenant = _live_tenant(session, tenant_id)
        held = usage(session, tenant_id=tenant_id)
        below = {
            "max_servers": held.servers,
            "max_vcpus": held.vcpus,
            "max_memory_mib": held.memory_mib,
            "max_disk_gib": held.disk_gib,
            "max_processes": held.processes,
        }
        too_low = {k: used for k, used in below.items() if getattr(quota, k) < used}
        if too_low:
            raise Conflict(
                "the new quota is below what the tenant holds now",
                details={"in_use": too_low},
                resolution="delete servers first or choose higher values",
            )
        row = session.get(Quota, tenant_id)
        assert row is not None
        for key, value in vars(quota).items():
            setattr(row, key, value)
        session.add(row)
        # Inside the transaction: if LXD refuses, the quota change rolls back too.
        ensure_project(settings, lxd, tenant_id=tenant_id, project=tenant.lxd_project, quota=row)
        return TenantView(tenant, row, held)


def delete_tenant(settings: Settings, lxd: Lxd, *, tenant_id: int) -> None:
    """Delete a tenant with no servers: revoke its tokens, delete its LXD project."""
    with session_scope(settings, immediate=True) as session:
        tenant = _live_tenant(session, tenant_id)
        live = session.exec(
            select(Server).where(Server.tenant_id == tenant_id, col(Server.deleted_at).is_(None))
        ).first()
        if live is not None:
            raise Conflict(
                f"tenant {tenant_id} still has servers",
                details={"server_id": live.id},
                resolution="delete its servers first",
            )
        project = tenant.lxd_project
        if lxd.host.get_project(project) is not None:
            if lxd.instances.all(project=project):
                raise Conflict(
                    f"LXD project {project} still holds instances",
                    resolution="run `containervps reconcile` and delete them first",
                )
            lxd.host.delete_project(project)
        now = utcnow()
        for token in session.exec(select(ApiToken).where(ApiToken.tenant_id == tenant_id)).all():
            token.revoked_at = token.revoked_at or now
            session.add(token)
        tenant.status, tenant.deleted_at = "deleted", now
        session.add(tenant)
