"""Quotas: what one tenant may hold at once, and what it holds (``Usage``)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from pydantic import ConfigDict
from sqlmodel import Field, SQLModel

__all__ = ["QuotaBase", "QuotaUpdate", "Usage", "limits_block"]


class QuotaBase(SQLModel):
    max_servers: int = Field(ge=1)
    max_vcpus: int = Field(ge=1)
    max_memory_mib: int = Field(ge=1)
    max_disk_gib: int = Field(ge=1)
    max_processes: int = Field(ge=1)
    max_snapshots: int = Field(default=10, ge=1)

    def limits(self) -> dict[str, int]:
        """The quota's values alone (a ``Quota`` row also holds its tenant id)."""
        return self.model_dump(include=set(QuotaBase.model_fields))


class QuotaUpdate(QuotaBase):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]


@dataclass(frozen=True)
class Usage:
    """Resources held by live servers; each field has its ``max_<field>`` in the quota."""

    servers: int
    vcpus: int
    memory_mib: int
    disk_gib: int
    processes: int
    snapshots: int = 0  # of live servers; a new server or a resize asks for none

    @classmethod
    def zero(cls) -> Usage:
        return cls(0, 0, 0, 0, 0, 0)

    def items(self) -> list[tuple[str, int]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]

    def minus(self, other: Usage) -> Usage:
        """What is needed to go from ``other`` to this."""
        return Usage(
            *(
                mine - theirs
                for (_, mine), (_, theirs) in zip(self.items(), other.items(), strict=True)
            )
        )


def limits_block(quota: QuotaBase, usage: Usage) -> dict[str, dict[str, int]]:
    """``{resource: {max, used}}`` for every quota the usage counts."""
    return {
        name: {"max": getattr(quota, f"max_{name}"), "used": used} for name, used in usage.items()
    }
