"""Quotas: what one tenant may hold at once, and what it holds (``Usage``)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Annotated

from pydantic import ConfigDict
from sqlmodel import Field, SQLModel

from containervps.schemas.bounds import Between

__all__ = ["QuotaBase", "QuotaUpdate", "Usage", "limits_block"]


class QuotaBase(SQLModel):
    """Maxima are far past one host yet inside what LXD's project limits.* parse (bytes and
    counts as 64-bit integers): a value past them is a 422, not LXD's own error."""

    max_servers: Annotated[int, Between(1, 10_000)]
    max_vcpus: Annotated[int, Between(1, 100_000)]
    max_memory_mib: Annotated[int, Between(1, 2**30)]  # 1 PiB
    max_disk_gib: Annotated[int, Between(1, 2**20)]  # 1 PiB
    max_processes: Annotated[int, Between(1, 10**9)]
    max_snapshots: Annotated[int, Between(1, 100_000)] = Field(default=10)

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
