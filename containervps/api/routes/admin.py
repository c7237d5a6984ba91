"""Admin routes (admin token): tenants, quotas, tokens, plans, all servers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from containervps.api.deps import AdminDep, LxdDep, SettingsDep
from containervps.api.render import list_meta, server_json
from containervps.schemas.access import TokenCreate, TokenPublic
from containervps.schemas.plan import PlanCreate, PlanPublic
from containervps.schemas.quota import QuotaUpdate
from containervps.schemas.tenant import TenantCreate
from containervps.services.servers import queries
from containervps.services.tenancy import plans, tenants, tokens

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.get("/tenants")
def list_tenants(_: AdminDep, settings: SettingsDep) -> dict[str, Any]:
    return {"tenants": [v.public.model_dump() for v in tenants.list_tenants(settings)]}


@router.post("/tenants", status_code=201)
def create_tenant(
    body: TenantCreate, request: Request, _: AdminDep, settings: SettingsDep, lxd: LxdDep
) -> dict[str, Any]:
    quota = body.quota or tenants.default_quota(settings)
    view = tenants.create_tenant(settings, lxd, name=body.name, quota=quota)
    request.state.audit_target = f"tenant:{view.tenant.id}"
    return {"tenant": view.public.model_dump()}


@router.get("/tenants/{tenant_id}")
def get_tenant(tenant_id: int, _: AdminDep, settings: SettingsDep) -> dict[str, Any]:
    return {"tenant": tenants.get_tenant(settings, tenant_id).public.model_dump()}


@router.put("/tenants/{tenant_id}/quota")
def set_quota(
    tenant_id: int,
    body: QuotaUpdate,
    request: Request,
    _: AdminDep,
    settings: SettingsDep,
    lxd: LxdDep,
) -> dict[str, Any]:
    view = tenants.set_quota(settings, lxd, tenant_id=tenant_id, quota=body)
    request.state.audit_target = f"tenant:{tenant_id}"
    return {"tenant": view.public.model_dump()}


@router.delete("/tenants/{tenant_id}", status_code=204)
def delete_tenant(
    tenant_id: int, request: Request, _: AdminDep, settings: SettingsDep, lxd: LxdDep
) -> None:
    request.state.audit_target = f"tenant:{tenant_id}"
    tenants.delete_tenant(settings, lxd, tenant_id=tenant_id)


@router.post("/tenants/{tenant_id}/tokens", status_code=201)
def create_token(
    tenant_id: int, body: TokenCreate, request: Request, _: AdminDep, settings: SettingsDep
) -> dict[str, Any]:
    row, secret = tokens.create_token(settings, name=body.name, tenant_id=tenant_id)
    request.state.audit_target = f"token:{row.id}"
    return {"token": TokenPublic.of(row, secret=secret).model_dump()}


@router.delete("/tokens/{token_id}")
def revoke_token(
    token_id: int, request: Request, _: AdminDep, settings: SettingsDep
) -> dict[str, Any]:
    request.state.audit_target = f"token:{token_id}"
    token = tokens.revoke_token(settings, token_id)
    return {"token": TokenPublic.of(token).model_dump(exclude={"secret"})}


@router.get("/plans")
def list_plans(_: AdminDep, settings: SettingsDep) -> dict[str, Any]:
    return {"plans": [PlanPublic.of(p).model_dump() for p in plans.list_plans(settings)]}


@router.post("/plans", status_code=201)
def create_plan(
    body: PlanCreate, request: Request, _: AdminDep, settings: SettingsDep
) -> dict[str, Any]:
    request.state.audit_target = f"plan:{body.name}"
    return {"plan": PlanPublic.of(plans.create_plan(settings, body)).model_dump()}


@router.get("/servers")
def list_all_servers(
    _: AdminDep,
    settings: SettingsDep,
    tenant_id: int | None = None,
    status: str | None = None,
    page: int = Query(1, ge=1),
    per_page: int = Query(25, ge=1, le=100),
) -> dict[str, Any]:
    rows, total = queries.list_servers(
        settings, tenant_id=tenant_id, status=status, page=page, per_page=per_page
    )
    return {
        "servers": [server_json(s) for s in rows],
        "meta": list_meta(page=page, per_page=per_page, total=total),
    }
