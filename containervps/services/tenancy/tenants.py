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
from containervps.lxd import Lxd
from containervps.schemas.bounds import as_id
from containervps.schemas.quota import QuotaBase, QuotaUpdate, Usage
from containervps.schemas.tenant import TenantPublic
from containervps.services.capacity.admission import usage
from containervps.services.tenancy.projects import ensure_project, tenant_projects

log = logging.getLogger(__name__)

__all__ = [
    "TenantView",
    "create_tenant",
    "default_quota",
    "delete_tenant",
    "get_tenant",
    "list_tenants",
    "resolve",
    "set_quota",
]

TENANT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class TenantView:
    tenant: Tenant
    quota: Quota
    usage: Usage

    @property
    def public(self) -> TenantPublic:
        return TenantPublic.of(self.tenant, self.quota, self.usage)


def default_quota(settings: Settings) -> QuotaUpdate:
    """The quota a tenant gets unless told otherwise."""
    return QuotaUpdate(
        max_servers=settings.default_max_servers,
        max_vcpus=settings.default_max_vcpus,
        max_memory_mib=settings.default_max_memory_mib,
        max_disk_gib=settings.default_max_disk_gib,
        max_processes=settings.default_max_processes,
        max_snapshots=settings.default_max_snapshots,
    )


def _validate_quota(quota: QuotaBase) -> None:
    bad = [k for k, v in quota.limits().items() if v < 1]
    if bad:
        raise InvalidInput(f"quota values must be >= 1: {', '.join(bad)}", details={"fields": bad})


def create_tenant(settings: Settings, lxd: Lxd, *, name: str, quota: QuotaBase) -> TenantView:
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
        row = Quota(tenant_id=tenant.id, **quota.limits())
        session.add_all([tenant, row])
    try:
        ensure_project(settings, lxd, tenant_id=tenant.id, project=tenant.lxd_project, quota=row)
    except ContainerVpsError:
        with session_scope(settings, immediate=True) as session:
            session.delete(session.get(Quota, tenant.id))
            session.delete(session.get(Tenant, tenant.id))
        raise
    return TenantView(tenant, row, Usage.zero())


def _live_tenant(session: Session, tenant_id: int) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None or tenant.deleted_at is not None:
        raise NotFound(f"tenant {tenant_id} not found")
    return tenant


def resolve(settings: Settings, ref: str) -> int:
    """A tenant id from an id or a name (CLI convenience)."""
    with session_scope(settings) as session:
        tenant_id = as_id(ref)
        if tenant_id is not None:
            return _live_tenant(session, tenant_id).id or 0
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


def set_quota(settings: Settings, lxd: Lxd, *, tenant_id: int, quota: QuotaBase) -> TenantView:
    """Change a quota (never below what the tenant holds now) and mirror it into LXD."""
    _validate_quota(quota)
    with session_scope(settings, immediate=True) as session:
        tenant = _live_tenant(session, tenant_id)
        held = usage(session, tenant_id=tenant_id)
        too_low = {
            f"max_{name}": used
            for name, used in held.items()
            if getattr(quota, f"max_{name}") < used
        }
        if too_low:
            raise Conflict(
                "the new quota is below what the tenant holds now",
                details={"in_use": too_low},
                resolution="delete servers first or choose higher values",
            )
        row = session.get(Quota, tenant_id)
        assert row is not None
        for key, value in quota.limits().items():
            setattr(row, key, value)
        session.add(row)
        # Inside the transaction: if LXD refuses, the quota change rolls back too.
        for project in {tenant.lxd_project, *tenant_projects(lxd, tenant.lxd_project)}:
            ensure_project(settings, lxd, tenant_id=tenant_id, project=project, quota=row)
        return TenantView(tenant, row, held)


def delete_tenant(settings: Settings, lxd: Lxd, *, tenant_id: int) -> None:
    """Delete a tenant with no servers: revoke its tokens, delete its LXD projects."""
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
        projects = tenant_projects(lxd, tenant.lxd_project)
        for project in projects:
            if lxd.instances.all(project=project):
                raise Conflict(
                    f"LXD project {project} still holds instances",
                    resolution="run `containervps reconcile` and delete them first",
                )
        for project in projects:
            lxd.host.delete_project(project)
        now = utcnow()
        for token in session.exec(select(ApiToken).where(ApiToken.tenant_id == tenant_id)).all():
            token.revoked_at = token.revoked_at or now
            session.add(token)
        tenant.status, tenant.deleted_at = "deleted", now
        session.add(tenant)
