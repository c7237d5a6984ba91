"""Action polling, with an optional long poll (``?wait=seconds``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from containervps.api.deps import FairShareDep, SettingsDep, TenantDep
from containervps.api.fair_share import LONG_POLLS
from containervps.api.render import action_json
from containervps.schemas.bounds import Id
from containervps.schemas.responses import ActionEnvelope, ActionList
from containervps.services.actions import store as actions

router = APIRouter(prefix="/v1/actions", tags=["actions"])


@router.get("", response_model=ActionList)
def list_actions(ident: TenantDep, settings: SettingsDep) -> dict[str, Any]:
    """The caller's latest actions, newest first."""
    return {
        "actions": [
            action_json(a) for a in actions.list_actions(settings, tenant_id=ident.tenant_id)
        ]
    }


@router.get("/{action_id}", response_model=ActionEnvelope)
async def get_action(
    action_id: Id,
    ident: TenantDep,
    settings: SettingsDep,
    fair: FairShareDep,
    wait: float = Query(0.0, ge=0.0, le=3600.0, description="Long poll: wait up to N seconds"),
) -> dict[str, Any]:
    """One action; with ``wait`` the answer comes when it finishes or the wait ends."""
    timeout = min(wait, settings.api_max_wait_seconds)
    if timeout <= 0:  # a plain show is not a long poll: no cap
        action = await run_in_threadpool(
            actions.get_action, settings, action_id=action_id, tenant_id=ident.tenant_id
        )
    else:
        with fair.hold(ident, limit=LONG_POLLS):
            action = await actions.wait_action(
                settings, action_id=action_id, tenant_id=ident.tenant_id, timeout=timeout
            )
    return {"action": action_json(action)}
