"""Server snapshots: create, list, restore, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from containervps.api.deps import IdempotencyKeyDep, LxdDep, SettingsDep, TenantDep, WorkerDep
from containervps.api.errors import request_id
from containervps.api.openapi import errors
from containervps.api.render import started
from containervps.schemas.bounds import Id
from containervps.schemas.responses import ActionEnvelope, SnapshotEnvelope, SnapshotList
from containervps.schemas.snapshot import SnapshotCreate, SnapshotPublic
from containervps.services.servers import snapshots
from containervps.services.servers.restore import request_restore

router = APIRouter(prefix="/v1/servers", tags=["snapshots"])


@router.post(
    "/{server_id}/snapshots",
    status_code=201,
    response_model=SnapshotEnvelope,
    responses=errors(409),
)
def create(
    server_id: Id,
    body: SnapshotCreate,
    request: Request,
    ident: TenantDep,
    settings: SettingsDep,
    lxd: LxdDep,
) -> dict[str, Any]:
    """Snapshot the server's disk (counted against the tenant's snapshot quota)."""
    request.state.audit_target = f"server:{server_id}"
    row = snapshots.create_snapshot(
        settings, lxd, server_id=server_id, tenant_id=ident.tenant_id, name=body.name
    )
    return {"snapshot": SnapshotPublic.of(row).model_dump()}


@router.get("/{server_id}/snapshots", response_model=SnapshotList)
def list_(server_id: Id, ident: TenantDep, settings: SettingsDep) -> dict[str, Any]:
    """The server's snapshots, oldest first."""
    rows = snapshots.list_snapshots(settings, server_id=server_id, tenant_id=ident.tenant_id)
    return {"snapshots": [SnapshotPublic.of(r).model_dump() for r in rows]}


@router.post(
    "/{server_id}/snapshots/{snapshot_id}/actions/restore",
    status_code=202,
    response_model=ActionEnvelope,
    responses=errors(409),
)
def restore(
    server_id: Id,
    snapshot_id: Id,
    request: Request,
    ident: TenantDep,
    settings: SettingsDep,
    lxd: LxdDep,  # LXD down: 503 at once, before an action is written
    worker: WorkerDep,
    idempotency_key: IdempotencyKeyDep,
) -> dict[str, Any]:
    """Put the disk back exactly as it was at the snapshot (an action, like power actions)."""
    request.state.audit_target = f"server:{server_id}"
    accepted = request_restore(
        settings,
        server_id=server_id,
        tenant_id=ident.tenant_id,
        snapshot_id=snapshot_id,
        request_id=request_id(request),
        idempotency_key=idempotency_key,
    )
    return started(request, worker, accepted)


@router.delete("/{server_id}/snapshots/{snapshot_id}", status_code=204, responses=errors(409))
def delete(
    server_id: Id,
    snapshot_id: Id,
    request: Request,
    ident: TenantDep,
    settings: SettingsDep,
    lxd: LxdDep,
) -> Response:
    """Delete a snapshot (its quota is freed)."""
    request.state.audit_target = f"server:{server_id}"
    snapshots.delete_snapshot(
        settings, lxd, server_id=server_id, tenant_id=ident.tenant_id, snapshot_id=snapshot_id
    )
    return Response(status_code=204)
