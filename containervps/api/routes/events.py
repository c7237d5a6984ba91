"""Server events: what the platform saw or did to a tenant's servers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from containervps.api.deps import SettingsDep, TenantDep
from containervps.api.openapi import errors
from containervps.api.render import list_meta
from containervps.schemas.bounds import Id, Page, PerPage
from containervps.schemas.event import EventPublic
from containervps.schemas.responses import EventList
from containervps.services.events import EventType, list_events

router = APIRouter(tags=["events"])


@router.get("/v1/events", response_model=EventList, responses=errors(404))
def tenant_events(
    ident: TenantDep,
    settings: SettingsDep,
    server_id: Id | None = None,
    type: EventType | None = None,
    page: Page = 1,
    per_page: PerPage = 25,
) -> dict[str, Any]:
    """The caller's events, newest first (an OOM kill, an lxcfs repair, a rolled-back restore);
    a ``server_id`` that is not the caller's answers 404."""
    rows, total = list_events(
        settings,
        tenant_id=ident.tenant_id,
        server_id=server_id,
        type=type.value if type else None,
        page=page,
        per_page=per_page,
    )
    return {
        "events": [EventPublic.of(r).model_dump(mode="json") for r in rows],
        "meta": list_meta(page=page, per_page=per_page, total=total),
    }


@router.get("/v1/servers/{server_id}/events", response_model=EventList)
def server_events(
    server_id: Id,
    ident: TenantDep,
    settings: SettingsDep,
    type: EventType | None = None,
    page: Page = 1,
    per_page: PerPage = 25,
) -> dict[str, Any]:
    """One server's events, newest first; another tenant's server answers 404."""
    return tenant_events(ident, settings, server_id, type, page, per_page)
