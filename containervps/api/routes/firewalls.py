"""Tenant firewalls: create, list, show, replace fields, delete (Hetzner Cloud's shape)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from containervps.api.deps import SettingsDep, TenantDep
from containervps.api.openapi import errors
from containervps.api.render import list_meta
from containervps.schemas.bounds import Id, Page, PerPage
from containervps.schemas.firewall import FirewallCreate, FirewallUpdate
from containervps.schemas.responses import FirewallEnvelope, FirewallList
from containervps.services.firewalls import crud

router = APIRouter(prefix="/v1/firewalls", tags=["firewalls"])


def _one(settings: Any, firewall: Any) -> dict[str, Any]:
    return {"firewall": crud.public(settings, [firewall])[0].model_dump(mode="json")}


@router.post("", status_code=201, response_model=FirewallEnvelope, responses=errors(404, 409))
def create_firewall(
    body: FirewallCreate, request: Request, ident: TenantDep, settings: SettingsDep
) -> dict[str, Any]:
    """Create a firewall; it is enforced on the servers it applies to when this answers."""
    assert ident.tenant_id is not None
    firewall = crud.create_firewall(settings, tenant_id=ident.tenant_id, body=body)
    request.state.audit_target = f"firewall:{firewall.id}"
    return _one(settings, firewall)


@router.get("", response_model=FirewallList)
def list_firewalls(
    ident: TenantDep, settings: SettingsDep, page: Page = 1, per_page: PerPage = 25
) -> dict[str, Any]:
    """One page of the caller's firewalls."""
    rows, total = crud.list_firewalls(
        settings, tenant_id=ident.tenant_id, page=page, per_page=per_page
    )
    return {
        "firewalls": [f.model_dump(mode="json") for f in crud.public(settings, rows)],
        "meta": list_meta(page=page, per_page=per_page, total=total),
    }


@router.get("/{firewall_id}", response_model=FirewallEnvelope)
def get_firewall(firewall_id: Id, ident: TenantDep, settings: SettingsDep) -> dict[str, Any]:
    """One firewall; another tenant's id answers 404."""
    firewall = crud.get_firewall(settings, tenant_id=ident.tenant_id, firewall_id=firewall_id)
    return _one(settings, firewall)


@router.put("/{firewall_id}", response_model=FirewallEnvelope, responses=errors(409))
def update_firewall(
    firewall_id: Id,
    body: FirewallUpdate,
    request: Request,
    ident: TenantDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Replace the fields given (name, labels, rules, apply_to); enforced when this answers."""
    firewall = crud.update_firewall(
        settings, tenant_id=ident.tenant_id, firewall_id=firewall_id, body=body
    )
    request.state.audit_target = f"firewall:{firewall_id}"
    return _one(settings, firewall)


@router.delete("/{firewall_id}", status_code=204)
def delete_firewall(
    firewall_id: Id, request: Request, ident: TenantDep, settings: SettingsDep
) -> Response:
    """Delete a firewall; its servers fall back to the other firewalls applied to them."""
    crud.delete_firewall(settings, tenant_id=ident.tenant_id, firewall_id=firewall_id)
    request.state.audit_target = f"firewall:{firewall_id}"
    return Response(status_code=204)
