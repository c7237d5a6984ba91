"""A throw-away tenant for benchmarks that go through the platform, and its complete removal."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlmodel import col, select

from containervps.config import Settings
from containervps.db import migrate
from containervps.db.engine import session_scope
from containervps.db.models import Plan, Server, utcnow
from containervps.errors import ContainerVpsError, HostSetupError
from containervps.lxd import Lxd, pool_owner
from containervps.schemas.common import build
from containervps.schemas.quota import QuotaUpdate
from containervps.services.capacity.admission import reservation
from containervps.services.servers.states import ServerState
from containervps.services.tenancy import tenants, tokens

__all__ = ["BenchTenant", "make_bench_tenant", "ready_plan", "remove_bench_tenant"]


@dataclass(frozen=True)
class BenchTenant:
    id: int
    project: str
    token: str


def ready_plan(settings: Settings, lxd: Lxd, *, image: str, plan: str) -> Plan:
    """The plan to create, once the database and the image are there."""
    if migrate.current_revision(settings) is None:
        raise HostSetupError(
            "the database is not set up", resolution="run `containervps db upgrade`"
        )
    if lxd.images.by_alias(image) is None:
        raise HostSetupError(
            f"image {image} is not in LXD", resolution=f"run `containervps image build {image}`"
        )
    with session_scope(settings) as session:
        the_plan = session.get(Plan, plan)
    if the_plan is None:
        raise HostSetupError(f"plan {plan} does not exist")
    return the_plan


def make_bench_tenant(settings: Settings, lxd: Lxd, *, plan: Plan, servers: int) -> BenchTenant:
    """A tenant whose quota holds ``servers`` of ``plan``, and an API token for it."""
    quota = build(QuotaUpdate, **{f"max_{k}": servers * v for k, v in reservation(plan).items()})
    view = tenants.create_tenant(settings, lxd, name=f"bench-{secrets.token_hex(3)}", quota=quota)
    tenant_id = view.tenant.id or 0
    _, token = tokens.create_token(settings, name="bench", tenant_id=tenant_id)
    return BenchTenant(id=tenant_id, project=view.tenant.lxd_project, token=token)


def remove_bench_tenant(settings: Settings, lxd: Lxd, tenant_id: int) -> list[str]:
    """Delete every container and disk pool in the tenant's project, mark its rows deleted,
    then delete the tenant; return what could not be removed."""
    left: list[str] = []
    project = tenants.get_tenant(settings, tenant_id).tenant.lxd_project
    for inst in lxd.instances.all(project=project):
        try:
            lxd.instances.delete(name=inst.name, project=project)
        except ContainerVpsError as exc:
            left.append(f"instance {project}/{inst.name}: {exc.one_line()}")
    for pool in lxd.host.list_pools():
        owner = pool_owner(pool.name)
        if owner is not None and owner[0] == project:
            try:
                lxd.host.delete_pool(pool.name)
            except ContainerVpsError as exc:
                left.append(f"pool {pool.name}: {exc.one_line()}")
    with session_scope(settings, immediate=True) as session:
        for row in session.exec(
            select(Server).where(Server.tenant_id == tenant_id, col(Server.deleted_at).is_(None))
        ).all():
            row.status, row.deleted_at = ServerState.DELETED, utcnow()
            session.add(row)
    if not left:
        tenants.delete_tenant(settings, lxd, tenant_id=tenant_id)
    return left
