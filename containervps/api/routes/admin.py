"""Admin routes (admin token): tenants, quotas, tokens, plans, all servers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from containervps.api.deps import AdminDep, LxdDep, SettingsDep
from containervps.api.schemas import (
    PlanCreate,
    QuotaUpdate,
    TenantCreate,
    TokenCreate,
    pagination,
    render_plan,
    render_server,
    render_tenant,
    render_token,
)
from containervps.services import plans, servers, tenants, tokens

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.get("/tenants")
def list_tenants(_: AdminDep, settings: SettingsDep) -> dict[str, Any]:
    return {"tenants": [render_tenant(v) for v in tenants.list_tenants(settings)]}


@router.post("/tenants", status_code=201)
def create_tenant(
    body: TenantCreate, request: Request, _: AdminDep, settings: SettingsDep, lxd: LxdDep
) -> dict[str, Any]:
    quota = (
        tenants.QuotaSpec(**body.quota.model_dump())
        if body.quota
        else tenants.QuotaSpec.defaults(settings)
    )
    view = tenants.create_tenant(settings, lxd, name=body.name, quota=quota)
    request.state.audit_target = f"tenant:{view.tenant.id}"
    return {"tenant": render_tenant(view)}


@router.get("/tenants/{tenant_id}")
def get_tenant(tenant_id: int, _: AdminDep, settings: SettingsDep) -> dict[str, Any]:
    return {"tenant": render_tenant(tenants.get_tenant(settings, tenant_id))}


@router.put("/tenants/{tenant_id}/quota")
def set_quota(
    tenant_id: int,
    body: QuotaUpdate,
    request: Request,
    _: AdminDep,
    settings: SettingsDep,
    lxd: LxdDep,
) -> dict[str, Any]:
    view = tenants.set_quota(
        settings, lxd, tenant_id=tenant_id, quota=tenants.QuotaSpec(**body.model_dump())
    )
    request.state.audit_target = f"tenant:{tenant_id}"
    return {"tenant": render_tenant(view)}


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
    return {"token": render_token(row, secret=secret)}


@router.delete("/tokens/{token_id}")
def revoke_token(
    token_id: int, request: Request, _: AdminDep, settings: SettingsDep
) -> dict[str, Any]:
    request.state.audit_target = f"token:{token_id}"
    return {"token": render_token(tokens.revoke_token(settings, token_id))}


@router.get("/plans")
def list_plans(_: AdminDep, settings: SettingsDep) -> dict[str, Any]:
    return {"plans": [render_plan(p) for p in plans.list_plans(settings)]}


@router.post("/plans", status_code=201)
def create_plan(
    body: PlanCreate, request: Request, _: AdminDep, settings: SettingsDep
) -> dict[str, Any]:
    request.state.audit_target = f"plan:{body.name}"
    return {"plan": render_plan(plans.create_plan(settings, plans.PlanSpec(**body.model_dump())))}


@router.get("/servers")
def list_all_servers(
    _: AdminDep,
    settings: SettingsDep,
    tenant_id: int | None = None,
    status: str | None = None,
    page: int = Query(1, ge=1),
    per_page: int = Query(25, ge=1, le=100),
) -> dict[str, Any]:
    rows, total = servers.list_servers(
        settings, tenant_id=tenant_id, status=status, page=page, per_page=per_page
    )
    return {
        "servers": [{**render_server(s), "tenant_id": s.tenant_id} for s in rows],
        "meta": {"pagination": pagination(page=page, per_page=per_page, total=total)},
    }
