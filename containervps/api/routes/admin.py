"""Admin routes (admin token): tenants, quotas, tokens, plans, all servers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from containervps.api.deps import AdminDep, LxdDep, SettingsDep
from containervps.api.openapi import errors
from containervps.api.render import admin_server_json, list_meta
from containervps.schemas.access import TokenCreate, TokenPublic
from containervps.schemas.bounds import Id, Name, Page, PerPage
from containervps.schemas.capacity import CapacityPublic
from containervps.schemas.event import EventPublic, Unthrottle
from containervps.schemas.plan import PlanCreate, PlanPublic
from containervps.schemas.quota import QuotaUpdate
from containervps.schemas.responses import (
    AdminServerList,
    CapacityEnvelope,
    EventEnvelope,
    LimitHitsEnvelope,
    LimitHitsList,
    PlanEnvelope,
    PlanList,
    TenantEnvelope,
    TenantList,
    TokenEnvelope,
)
from containervps.schemas.tenant import TenantCreate
from containervps.services.capacity import planner
from containervps.services.capacity.advice import advise as advise_ratios
from containervps.services.metering import allowance, limit_hits
from containervps.services.servers import queries
from containervps.services.servers.states import ServerState
from containervps.services.tenancy import plans, tenants, tokens

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.get("/tenants", response_model=TenantList)
def list_tenants(_: AdminDep, settings: SettingsDep) -> dict[str, Any]:
    return {"tenants": [v.public.model_dump() for v in tenants.list_tenants(settings)]}


@router.post("/tenants", status_code=201, response_model=TenantEnvelope, responses=errors(409))
def create_tenant(
    body: TenantCreate, request: Request, _: AdminDep, settings: SettingsDep, lxd: LxdDep
) -> dict[str, Any]:
    quota = body.quota or tenants.default_quota(settings)
    view = tenants.create_tenant(settings, lxd, name=body.name, quota=quota)
    request.state.audit_target = f"tenant:{view.tenant.id}"
    return {"tenant": view.public.model_dump()}


@router.get("/tenants/{tenant_id}", response_model=TenantEnvelope)
def get_tenant(tenant_id: Id, _: AdminDep, settings: SettingsDep) -> dict[str, Any]:
    return {"tenant": tenants.get_tenant(settings, tenant_id).public.model_dump()}


@router.put("/tenants/{tenant_id}/quota", response_model=TenantEnvelope, responses=errors(409))
def set_quota(
    tenant_id: Id,
    body: QuotaUpdate,
    request: Request,
    _: AdminDep,
    settings: SettingsDep,
    lxd: LxdDep,
) -> dict[str, Any]:
    view = tenants.set_quota(settings, lxd, tenant_id=tenant_id, quota=body)
    request.state.audit_target = f"tenant:{tenant_id}"
    return {"tenant": view.public.model_dump()}


@router.delete("/tenants/{tenant_id}", status_code=204, responses=errors(409))
def delete_tenant(
    tenant_id: Id, request: Request, _: AdminDep, settings: SettingsDep, lxd: LxdDep
) -> None:
    request.state.audit_target = f"tenant:{tenant_id}"
    tenants.delete_tenant(settings, lxd, tenant_id=tenant_id)


@router.post("/tenants/{tenant_id}/tokens", status_code=201, response_model=TokenEnvelope)
def create_token(
    tenant_id: Id, body: TokenCreate, request: Request, _: AdminDep, settings: SettingsDep
) -> dict[str, Any]:
    row, secret = tokens.create_token(settings, name=body.name, tenant_id=tenant_id)
    request.state.audit_target = f"token:{row.id}"
    return {"token": TokenPublic.of(row, secret=secret).model_dump()}


# The secret is shown once, when the token is made: this answer leaves the key out.
@router.delete(
    "/tokens/{token_id}", response_model=TokenEnvelope, response_model_exclude_unset=True
)
def revoke_token(
    token_id: Id, request: Request, _: AdminDep, settings: SettingsDep
) -> dict[str, Any]:
    request.state.audit_target = f"token:{token_id}"
    token = tokens.revoke_token(settings, token_id)
    return {"token": TokenPublic.of(token).model_dump(exclude={"secret"})}


@router.get("/plans", response_model=PlanList)
def list_plans(_: AdminDep, settings: SettingsDep) -> dict[str, Any]:
    """Every plan, retired ones too."""
    listing = plans.list_plans(settings, include_retired=True)
    return {"plans": [PlanPublic.of(p).model_dump() for p in listing]}


@router.post("/plans", status_code=201, response_model=PlanEnvelope, responses=errors(409))
def create_plan(
    body: PlanCreate, request: Request, _: AdminDep, settings: SettingsDep
) -> dict[str, Any]:
    request.state.audit_target = f"plan:{body.name}"
    return {"plan": PlanPublic.of(plans.create_plan(settings, body)).model_dump()}


@router.post("/plans/{name}/actions/retire", response_model=PlanEnvelope)
def retire_plan(
    name: Annotated[str, Path(max_length=63)], request: Request, _: AdminDep, settings: SettingsDep
) -> dict[str, Any]:
    """Take a plan out of the catalogue (no new servers, no resizes to it); servers keep it."""
    request.state.audit_target = f"plan:{name}"
    return {"plan": PlanPublic.of(plans.retire_plan(settings, name=name)).model_dump()}


@router.post("/plans/{name}/actions/unretire", response_model=PlanEnvelope)
def unretire_plan(
    name: Annotated[str, Path(max_length=63)], request: Request, _: AdminDep, settings: SettingsDep
) -> dict[str, Any]:
    """Put a retired plan back into the catalogue."""
    request.state.audit_target = f"plan:{name}"
    return {"plan": PlanPublic.of(plans.unretire_plan(settings, name=name)).model_dump()}


@router.get("/servers", response_model=AdminServerList)
def list_all_servers(
    _: AdminDep,
    settings: SettingsDep,
    tenant_id: Id | None = None,
    status: ServerState | None = None,
    page: Page = 1,
    per_page: PerPage = 25,
) -> dict[str, Any]:
    rows, total = queries.list_servers(
        settings, tenant_id=tenant_id, status=status, page=page, per_page=per_page
    )
    return {
        "servers": [admin_server_json(s) for s in rows],
        "meta": list_meta(page=page, per_page=per_page, total=total),
    }


@router.get("/servers/{server_id}/limits/hits", response_model=LimitHitsEnvelope)
def server_limit_hits(
    server_id: Id, _: AdminDep, settings: SettingsDep, lxd: LxdDep
) -> dict[str, Any]:
    """Any server's counters of the kernel enforcing its slice (as the tenant sees them)."""
    server = queries.get_server(settings, server_id=server_id, tenant_id=None)
    return {"limit_hits": limit_hits.server_hits(settings, lxd, server).model_dump()}


@router.get("/limits/hits", response_model=LimitHitsList)
def all_limit_hits(
    _: AdminDep,
    settings: SettingsDep,
    lxd: LxdDep,
    tenant_id: Id | None = None,
    page: Page = 1,
    per_page: PerPage = 25,
) -> dict[str, Any]:
    """One page of servers with their counters, read in one pass: which presses on its
    neighbours."""
    rows, total = queries.list_servers(settings, tenant_id=tenant_id, page=page, per_page=per_page)
    read = limit_hits.all_hits(settings, lxd, rows)
    return {
        "servers": [
            {
                "server": {"id": s.id, "name": s.name, "tenant_id": s.tenant_id},
                "limit_hits": read[s.id].model_dump(),
            }
            for s in rows
            if s.id in read
        ],
        "meta": list_meta(page=page, per_page=per_page, total=total),
    }


@router.post(
    "/servers/{server_id}/actions/unthrottle",
    response_model=EventEnvelope,
    responses=errors(404),
)
def unthrottle_server(
    server_id: Id,
    body: Unthrottle,
    request: Request,
    _: AdminDep,
    settings: SettingsDep,
    lxd: LxdDep,
) -> dict[str, Any]:
    """Lift a server's transfer throttle for the rest of the month (or reset its allowance)."""
    request.state.audit_target = f"server:{server_id}"
    event = allowance.unthrottle(settings, lxd, server_id=server_id, reset=body.reset, by="admin")
    return {"event": EventPublic.of(event).model_dump(mode="json")}


@router.get("/capacity", response_model=CapacityEnvelope)
def capacity(
    _: AdminDep,
    settings: SettingsDep,
    lxd: LxdDep,
    plan: Name | None = None,
    advise: bool = False,
) -> dict[str, Any]:
    """How many more servers of each plan fit, which resource binds first, and (``advise``)
    the overcommit ratios the measured use supports."""
    report = planner.capacity_report(settings, lxd, plan=plan)
    advice = (
        advise_ratios(settings, per_server_mib=report.measured_mib_per_server) if advise else None
    )
    return {"capacity": CapacityPublic.of(report, advice).model_dump()}
