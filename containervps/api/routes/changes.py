"""Server changes: rebuild, resize, protection (registered before the generic power route)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from containervps.api.deps import IdempotencyKeyDep, LxdDep, SettingsDep, TenantDep, WorkerDep
from containervps.api.errors import request_id
from containervps.api.openapi import errors
from containervps.api.render import server_json, started
from containervps.schemas.bounds import Id
from containervps.schemas.responses import ActionEnvelope, ActionWithPassword, ServerEnvelope
from containervps.schemas.server import ProtectionUpdate, ServerRebuild, ServerResize
from containervps.services.servers.protection import change_protection as protect
from containervps.services.servers.rebuild import request_rebuild
from containervps.services.servers.resize import request_resize

router = APIRouter(prefix="/v1/servers", tags=["servers"])


@router.post(
    "/{server_id}/actions/rebuild",
    status_code=202,
    response_model=ActionWithPassword,
    responses=errors(409),
)
def rebuild(
    server_id: Id,
    body: ServerRebuild,
    request: Request,
    ident: TenantDep,
    settings: SettingsDep,
    lxd: LxdDep,
    worker: WorkerDep,
    idempotency_key: IdempotencyKeyDep,
) -> dict[str, Any]:
    """A fresh disk from ``image``; id, name, port, plan and SSH keys stay."""
    request.state.audit_target = f"server:{server_id}"
    accepted = request_rebuild(
        settings,
        tenant_id=ident.tenant_id,
        server_id=server_id,
        image=body.image,
        request_id=request_id(request),
        idempotency_key=idempotency_key,
    )
    return {**started(request, worker, accepted), "root_password": accepted.root_password}


@router.post(
    "/{server_id}/actions/resize",
    status_code=202,
    response_model=ActionEnvelope,
    responses=errors(409),
)
def resize(
    server_id: Id,
    body: ServerResize,
    request: Request,
    ident: TenantDep,
    settings: SettingsDep,
    lxd: LxdDep,
    worker: WorkerDep,
    idempotency_key: IdempotencyKeyDep,
) -> dict[str, Any]:
    """Another plan: quota and capacity checked first, limits changed live."""
    request.state.audit_target = f"server:{server_id}"
    accepted = request_resize(
        settings,
        lxd,
        tenant_id=ident.tenant_id,
        server_id=server_id,
        plan=body.plan,
        request_id=request_id(request),
        idempotency_key=idempotency_key,
    )
    return started(request, worker, accepted)


@router.post("/{server_id}/actions/change_protection", response_model=ServerEnvelope)
def change_protection(
    server_id: Id,
    body: ProtectionUpdate,
    request: Request,
    ident: TenantDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Turn delete and/or rebuild protection on or off."""
    request.state.audit_target = f"server:{server_id}"
    server = protect(
        settings,
        tenant_id=ident.tenant_id,
        server_id=server_id,
        delete=body.delete,
        rebuild=body.rebuild,
    )
    return {"server": server_json(server)}
