"""A throw-away tenant for benchmarks that go through the platform, and its complete removal."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from sqlmodel import col, select

from containervps.config import Settings
from containervps.db import migrate
from containervps.db.engine import session_scope
from containervps.db.models import Plan, Server, utcnow
from containervps.errors import ContainerVpsError, HostSetupError
from containervps.lxd import Lxd, is_tenant_project, pool_owner
from containervps.schemas.common import build
from containervps.schemas.quota import QuotaUpdate
from containervps.services.capacity.admission import reservation
from containervps.services.servers import ssh_forwards
from containervps.services.servers.states import ServerState
from containervps.services.tenancy import tenants, tokens

__all__ = [
    "BenchTenant",
    "make_bench_tenant",
    "ready_plan",
    "remove_bench_tenant",
    "remove_bench_tenants",
]

NAME_PREFIX = "bench-"


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
    held = {f"max_{k}": servers * v for k, v in reservation(plan).items()}
    quota = build(QuotaUpdate, **{**held, "max_snapshots": 1})  # a benchmark takes none
    view = tenants.create_tenant(
        settings, lxd, name=f"{NAME_PREFIX}{secrets.token_hex(3)}", quota=quota
    )
    tenant_id = view.tenant.id or 0
    _, token = tokens.create_token(settings, name="bench", tenant_id=tenant_id)
    return BenchTenant(id=tenant_id, project=view.tenant.lxd_project, token=token)


def remove_bench_tenant(settings: Settings, lxd: Lxd, tenant_id: int) -> list[str]:
    """Delete every container and disk pool in the tenant's projects, mark its rows deleted,
    then delete the tenant (and its projects); return what could not be removed."""
    left: list[str] = []
    project = tenants.get_tenant(settings, tenant_id).tenant.lxd_project

    def attempt(what: str, remove: Callable[[], None]) -> None:
        try:
            remove()
        except ContainerVpsError as exc:
            left.append(f"{what}: {exc.one_line()}")

    ours = partial(is_tenant_project, project)
    for inst in lxd.instances.everywhere():
        if ours(inst.project):
            attempt(
                f"instance {inst.project}/{inst.name}",
                partial(lxd.instances.delete, name=inst.name, project=inst.project),
            )
    # the log directories LXD writes again when a state read races a delete (instance_logs.py)
    live = {(i.project, i.name) for i in lxd.instances.everywhere()}
    lxd.instances.logs.sweep(owned=ours, instances=live, min_age=0)
    for pool in lxd.host.list_pools():
        owner = pool_owner(pool.name)
        if owner is not None and ours(owner[0]):
            attempt(f"pool {pool.name}", partial(lxd.host.delete_pool, pool.name))
    with session_scope(settings, immediate=True) as session:
        for row in session.exec(
            select(Server).where(Server.tenant_id == tenant_id, col(Server.deleted_at).is_(None))
        ).all():
            row.status, row.deleted_at = ServerState.DELETED, utcnow()
            session.add(row)
            if row.ssh_port:  # a create dropped after its forward was put
                ssh_forwards.remove(settings, port=row.ssh_port)
    if not left:
        tenants.delete_tenant(settings, lxd, tenant_id=tenant_id)
    return left


def remove_bench_tenants(settings: Settings, lxd: Lxd) -> list[str]:
    """Remove the tenants that killed `bench api`/`bench scale` runs left; return their names."""
    left = [t.tenant for t in tenants.list_tenants(settings)]
    left = [t for t in left if t.name.startswith(NAME_PREFIX) and t.id is not None]
    return [f"tenant:{t.name}" for t in left if not remove_bench_tenant(settings, lxd, t.id or 0)]
