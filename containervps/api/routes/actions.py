"""Action polling, with an optional long poll (``?wait=seconds``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from containervps.api.deps import SettingsDep, TenantDep
from containervps.api.render import action_json
from containervps.services.actions import store as actions

router = APIRouter(prefix="/v1/actions", tags=["actions"])


@router.get("")
def list_actions(ident: TenantDep, settings: SettingsDep) -> dict[str, Any]:
    """The caller's latest actions, newest first."""
    return {
        "actions": [
            action_json(a) for a in actions.list_actions(settings, tenant_id=ident.tenant_id)
        ]
    }


@router.get("/{action_id}")
async def get_action(
    action_id: int,
    ident: TenantDep,
    settings: SettingsDep,
    wait: float = Query(0.0, ge=0.0, le=3600.0, description="Long poll: wait up to N seconds"),
) -> dict[str, Any]:
    """One action; with ``wait`` the answer comes when it finishes or the wait ends."""
    action = await run_in_threadpool(
        actions.wait_action,
        settings,
        action_id=action_id,
        tenant_id=ident.tenant_id,
        timeout=min(wait, settings.api_max_wait_seconds),
    )
    return {"action": action_json(action)}
