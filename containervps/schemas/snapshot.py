"""Snapshots of a server's disk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from containervps.schemas.bounds import Name
from containervps.schemas.common import Strict, timestamp

if TYPE_CHECKING:
    from containervps.db.models import Snapshot

__all__ = ["SnapshotCreate", "SnapshotPublic"]


class SnapshotCreate(Strict):
    name: Name | None = None


class SnapshotPublic(BaseModel):
    id: int
    name: str
    server: int
    status: str
    created: str | None

    @classmethod
    def of(cls, row: Snapshot) -> SnapshotPublic:
        assert row.id is not None
        return cls(
            id=row.id,
            name=row.name,
            server=row.server_id,
            status=row.status,
            created=timestamp(row.created_at),
        )
