"""Table models. Every schema change comes with an Alembic migration in migrations/versions."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class Image(SQLModel, table=True):
    """An OS image offered to tenants (built on this host or copied from a remote)."""

    name: str = Field(primary_key=True, max_length=63)
    os: str
    release: str
    description: str
    source: str  # busybox | debootstrap | remote
    fingerprint: str = Field(index=True)
    size_bytes: int
    build_seconds: float
    built_at: datetime
