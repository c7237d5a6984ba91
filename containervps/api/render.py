"""Resources as the API prints them: the public schema of each, as plain JSON values."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from containervps.config import get_settings
from containervps.db.models import Action, Server
from containervps.schemas.action import ActionPublic
from containervps.schemas.common import Pagination
from containervps.schemas.server import ServerAdmin, ServerPublic
from containervps.services.actions.intake import Accepted
from containervps.services.actions.worker import ActionWorker

__all__ = ["action_json", "admin_server_json", "list_meta", "server_json", "started"]


def server_json(server: Server) -> dict[str, Any]:
    return ServerPublic.of(server, ssh_host=get_settings().ssh_address).model_dump(mode="json")


def admin_server_json(server: Server) -> dict[str, Any]:
    """A server for the admin API: the tenant's view and the cluster member it runs on."""
    ssh_host = get_settings().ssh_address
    return ServerAdmin.of_admin(server, ssh_host=ssh_host).model_dump(mode="json")


def action_json(action: Action) -> dict[str, Any]:
    return ActionPublic.of(action).model_dump(mode="json")


def list_meta(*, page: int, per_page: int, total: int) -> dict[str, Any]:
    """The ``meta`` block of a paginated list."""
    return {"pagination": Pagination.of(page=page, per_page=per_page, total=total).model_dump()}


def started(request: Request, worker: ActionWorker, accepted: Accepted) -> dict[str, Any]:
    """Run an accepted action and answer with it (the LXD dependency already proved LXD
    answers: a 503 leaves no action behind)."""
    worker.start(accepted)
    request.state.audit_target = f"server:{accepted.server.id}"
    return {"action": action_json(accepted.action)}
