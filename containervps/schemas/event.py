"""Server events as the API shows them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from containervps.schemas.common import timestamp

if TYPE_CHECKING:
    from containervps.db.models import Event

__all__ = ["EventPublic", "Unthrottle"]


class EventPublic(BaseModel):
    id: int
    type: str
    severity: str
    server: int | None
    message: str
    details: dict[str, Any]
    created: str | None

    @classmethod
    def of(cls, row: Event) -> EventPublic:
        assert row.id is not None
        return cls(
            id=row.id,
            type=row.type,
            severity=row.severity,
            server=row.server_id,
            message=row.message,
            details=row.details,
            created=timestamp(row.at),
        )


class Unthrottle(BaseModel):
    """Lift a transfer throttle; ``reset`` also counts the month's allowance again from now."""

    model_config = ConfigDict(extra="forbid")
    reset: bool = False
