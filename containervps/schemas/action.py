"""Actions: long work and its outcome, as the API and the CLI print it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from containervps.schemas.common import timestamp

if TYPE_CHECKING:
    from containervps.db.models import Action

__all__ = ["ActionError", "ActionPublic", "ResourceRef"]


class ActionError(BaseModel):
    code: str | None
    message: str | None


class ResourceRef(BaseModel):
    id: int
    type: str


class ActionPublic(BaseModel):
    """``{id, command, status, progress, started, finished, resources, error}``."""

    id: int
    command: str
    status: str
    progress: int
    started: str | None
    finished: str | None
    resources: list[ResourceRef]
    error: ActionError | None

    @classmethod
    def of(cls, action: Action) -> ActionPublic:
        assert action.id is not None
        error = None
        if action.status == "error":
            error = ActionError(code=action.error_code, message=action.error_message)
        resources = [ResourceRef(id=action.server_id, type="server")] if action.server_id else []
        return cls(
            id=action.id,
            command=action.command,
            status=action.status,
            progress=action.progress,
            started=timestamp(action.started),
            finished=timestamp(action.finished),
            resources=resources,
            error=error,
        )
