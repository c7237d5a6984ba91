"""Admin routes for hosts: LXD cluster members the platform records (services/cluster)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from containervps.api.deps import AdminDep, LxdDep, SettingsDep, WorkerDep
from containervps.api.errors import request_id
from containervps.api.openapi import errors
from containervps.api.render import action_json
from containervps.schemas.bounds import Name
from containervps.schemas.host import HostJoin, HostPublic
from containervps.schemas.responses import HostDrain, HostEnvelope, HostList
from containervps.services.cluster import drain, members

router = APIRouter(prefix="/v1/admin/hosts", tags=["admin"])


@router.get("", response_model=HostList)
def list_hosts(_: AdminDep, settings: SettingsDep) -> dict[str, Any]:
    """Every recorded cluster member (none: the platform runs on one host)."""
    counts = members.server_counts(settings)
    rows = members.list_hosts(settings)
    return {"hosts": [HostPublic.of(h, servers=counts.get(h.name, 0)).model_dump() for h in rows]}


@router.get("/{name}", response_model=HostEnvelope, responses=errors(404))
def get_host(name: Name, _: AdminDep, settings: SettingsDep) -> dict[str, Any]:
    row = members.get_host(settings, name)
    servers = members.server_counts(settings).get(name, 0)
    return {"host": HostPublic.of(row, servers=servers).model_dump()}


@router.post("", status_code=201, response_model=HostEnvelope, responses=errors(404, 409))
def join_host(
    body: HostJoin, request: Request, _: AdminDep, settings: SettingsDep, lxd: LxdDep
) -> dict[str, Any]:
    """Record an existing LXD cluster member as a host, with its capacity read from LXD."""
    request.state.audit_target = f"host:{body.name}"
    row = members.join_host(settings, lxd, name=body.name, labels=body.labels)
    return {"host": HostPublic.of(row).model_dump()}


@router.post(
    "/{name}/actions/drain", status_code=202, response_model=HostDrain, responses=errors(404, 409)
)
def drain_host(
    name: Name,
    request: Request,
    _: AdminDep,
    settings: SettingsDep,
    lxd: LxdDep,  # LXD answers: a 503 leaves no drain half-started
    worker: WorkerDep,
) -> dict[str, Any]:
    """Stop admitting on the member, tell each affected tenant, then move every server off it
    one after another (409 naming what has no room elsewhere: nothing moves)."""
    request.state.audit_target = f"host:{name}"
    accepted = drain.request_drain(settings, name=name, request_id=request_id(request))
    if accepted.actions:
        worker.submit_in_order([a.id or 0 for a in accepted.actions])
    servers = members.server_counts(settings).get(name, 0)
    return {
        "host": HostPublic.of(accepted.host, servers=servers).model_dump(),
        "actions": [action_json(a) for a in accepted.actions],
    }


@router.post("/{name}/actions/restore", response_model=HostEnvelope, responses=errors(404, 409))
def restore_host(
    name: Name, request: Request, _: AdminDep, settings: SettingsDep
) -> dict[str, Any]:
    """Admit new servers on the member again (servers moved off it stay where they are)."""
    request.state.audit_target = f"host:{name}"
    row = drain.restore_member(settings, name=name)
    servers = members.server_counts(settings).get(name, 0)
    return {"host": HostPublic.of(row, servers=servers).model_dump()}
