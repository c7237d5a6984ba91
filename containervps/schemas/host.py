"""Hosts: LXD cluster members the platform records. ``db.models.HostMember`` is the table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from containervps.schemas.bounds import Name, Short
from containervps.schemas.common import Strict, timestamp

if TYPE_CHECKING:
    from containervps.db.models import HostMember

__all__ = ["HostJoin", "HostPublic"]


class HostJoin(Strict):
    """Record an existing LXD cluster member as a host."""

    name: Name
    labels: dict[Name, Short] = Field(default_factory=dict, max_length=32)


class HostPublic(BaseModel):
    name: str
    url: str
    state: str  # online | draining | evacuated | offline
    labels: dict[str, str]
    cpu: int  # CPU threads
    memory_mib: int
    disk_gib: int
    servers: int  # live servers placed on it
    created: str | None
    updated: str | None

    @classmethod
    def of(cls, row: HostMember, *, servers: int = 0) -> HostPublic:
        return cls(
            name=row.name,
            url=row.url,
            state=row.state,
            labels=dict(row.labels),
            cpu=row.cpu,
            memory_mib=row.memory_mib,
            disk_gib=row.disk_gib,
            servers=servers,
            created=timestamp(row.created_at),
            updated=timestamp(row.updated_at),
        )
