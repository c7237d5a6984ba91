"""Tenant server routes: create, list, show, delete, power actions."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request

from containervps.api.deps import IdempotencyKeyDep, LxdDep, SettingsDep, TenantDep, WorkerDep
from containervps.api.errors import request_id
from containervps.api.openapi import errors
from containervps.api.render import action_json, list_meta, server_json, started
from containervps.schemas.bounds import Id, Name, Page, PerPage
from containervps.schemas.responses import (
    ActionEnvelope,
    ActionList,
    ServerCreated,
    ServerEnvelope,
    ServerList,
)
from containervps.schemas.server import LabelSelector, ServerCreate, ServerUpdate
from containervps.services.actions import store as actions
from containervps.services.servers import create, delete, labels, power, queries
from containervps.services.servers.states import ServerState

router = APIRouter(prefix="/v1/servers", tags=["servers"])

PowerCommand = Literal["poweron", "shutdown", "poweroff", "reboot"]


@router.post("", status_code=202, response_model=ServerCreated, responses=errors(409))
def create_server(
    body: ServerCreate,
    request: Request,
    ident: TenantDep,
    settings: SettingsDep,
    lxd: LxdDep,
    worker: WorkerDep,
    idempotency_key: IdempotencyKeyDep,
) -> dict[str, Any]:
    """Admit and start creating a server; poll the returned action."""
    assert ident.tenant_id is not None
    accepted = create.create_server(
        settings,
        lxd,
        tenant_id=ident.tenant_id,
        name=body.name,
        plan=body.plan,
        image=body.image,
        labels=body.labels,
        ssh_keys=body.ssh_keys,
        request_id=request_id(request),
        idempotency_key=idempotency_key,
    )
    worker.start(accepted)
    request.state.audit_target = f"server:{accepted.server.id}"
    return {
        "server": server_json(accepted.server),
        "action": action_json(accepted.action),
        "root_password": accepted.root_password,  # shown once, stored nowhere
    }


@router.get("", response_model=ServerList)
def list_servers(
    ident: TenantDep,
    settings: SettingsDep,
    status: ServerState | None = None,
    label_selector: LabelSelector | None = None,
    name: Name | None = None,
    page: Page = 1,
    per_page: PerPage = 25,
) -> dict[str, Any]:
    """One page of the caller's servers."""
    rows, total = queries.list_servers(
        settings,
        tenant_id=ident.tenant_id,
        status=status,
        label_selector=label_selector,
        name=name,
        page=page,
        per_page=per_page,
    )
    return {
        "servers": [server_json(s) for s in rows],
        "meta": list_meta(page=page, per_page=per_page, total=total),
    }


@router.get("/{server_id}", response_model=ServerEnvelope)
def get_server(server_id: Id, ident: TenantDep, settings: SettingsDep) -> dict[str, Any]:
    """One server; another tenant's id answers 404."""
    return {
        "server": server_json(
            queries.get_server(settings, server_id=server_id, tenant_id=ident.tenant_id)
        )
    }


@router.put("/{server_id}", response_model=ServerEnvelope)
def update_server(
    server_id: Id, body: ServerUpdate, request: Request, ident: TenantDep, settings: SettingsDep
) -> dict[str, Any]:
    """Replace the server's labels (firewalls applied by label selector follow at once)."""
    server = labels.set_labels(
        settings, tenant_id=ident.tenant_id, server_id=server_id, labels=body.labels
    )
    request.state.audit_target = f"server:{server_id}"
    return {"server": server_json(server)}


@router.delete(
    "/{server_id}", status_code=202, response_model=ActionEnvelope, responses=errors(409)
)
def delete_server(
    server_id: Id,
    request: Request,
    ident: TenantDep,
    settings: SettingsDep,
    lxd: LxdDep,
    worker: WorkerDep,
    idempotency_key: IdempotencyKeyDep,
) -> dict[str, Any]:
    """Start deleting a server (frees its quota when done)."""
    accepted = delete.request_delete(
        settings,
        tenant_id=ident.tenant_id,
        server_id=server_id,
        request_id=request_id(request),
        idempotency_key=idempotency_key,
    )
    return started(request, worker, accepted)


@router.post(
    "/{server_id}/actions/{command}",
    status_code=202,
    response_model=ActionEnvelope,
    responses=errors(409),
)
def power_action(
    server_id: Id,
    command: PowerCommand,
    request: Request,
    ident: TenantDep,
    settings: SettingsDep,
    lxd: LxdDep,
    worker: WorkerDep,
    idempotency_key: IdempotencyKeyDep,
) -> dict[str, Any]:
    """poweron | shutdown (graceful, then hard after a timeout) | poweroff (hard) | reboot."""
    accepted = power.request_power(
        settings,
        tenant_id=ident.tenant_id,
        server_id=server_id,
        command=command,
        request_id=request_id(request),
        idempotency_key=idempotency_key,
    )
    return started(request, worker, accepted)


@router.get("/{server_id}/actions", response_model=ActionList)
def server_actions(server_id: Id, ident: TenantDep, settings: SettingsDep) -> dict[str, Any]:
    """The server's actions, newest first."""
    queries.get_server(settings, server_id=server_id, tenant_id=ident.tenant_id)
    rows = actions.list_actions(settings, tenant_id=ident.tenant_id, server_id=server_id)
    return {"actions": [action_json(a) for a in rows]}
