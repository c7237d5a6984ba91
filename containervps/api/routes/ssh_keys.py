"""Tenant SSH keys: add, list, show, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from containervps.api.deps import SettingsDep, TenantDep
from containervps.api.openapi import errors
from containervps.schemas.access import SshKeyCreate, SshKeyPublic
from containervps.schemas.bounds import Id
from containervps.schemas.responses import SshKeyEnvelope, SshKeyList
from containervps.services.tenancy import ssh_keys

router = APIRouter(prefix="/v1/ssh_keys", tags=["ssh_keys"])


@router.post("", status_code=201, response_model=SshKeyEnvelope, responses=errors(409))
def add_key(
    body: SshKeyCreate, request: Request, ident: TenantDep, settings: SettingsDep
) -> dict[str, Any]:
    """Store a validated OpenSSH public key (a malformed one is 422)."""
    assert ident.tenant_id is not None
    key = ssh_keys.add_key(
        settings, tenant_id=ident.tenant_id, name=body.name, public_key=body.public_key
    )
    request.state.audit_target = f"ssh_key:{key.id}"
    return {"ssh_key": SshKeyPublic.of(key).model_dump()}


@router.get("", response_model=SshKeyList)
def list_keys(ident: TenantDep, settings: SettingsDep) -> dict[str, Any]:
    """The caller's keys."""
    assert ident.tenant_id is not None
    return {
        "ssh_keys": [
            SshKeyPublic.of(k).model_dump()
            for k in ssh_keys.list_keys(settings, tenant_id=ident.tenant_id)
        ]
    }


@router.get("/{key_id}", response_model=SshKeyEnvelope)
def get_key(key_id: Id, ident: TenantDep, settings: SettingsDep) -> dict[str, Any]:
    """One key; another tenant's id answers 404."""
    assert ident.tenant_id is not None
    key = ssh_keys.get_key(settings, tenant_id=ident.tenant_id, key_id=key_id)
    return {"ssh_key": SshKeyPublic.of(key).model_dump()}


@router.delete("/{key_id}", status_code=204)
def delete_key(key_id: Id, request: Request, ident: TenantDep, settings: SettingsDep) -> Response:
    """Forget a key (servers keep what they were given)."""
    assert ident.tenant_id is not None
    ssh_keys.delete_key(settings, tenant_id=ident.tenant_id, key_id=key_id)
    request.state.audit_target = f"ssh_key:{key_id}"
    return Response(status_code=204)
