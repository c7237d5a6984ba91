"""Plans: every limit a server gets. ``db.models.Plan`` is the table form of ``PlanBase``."""

from __future__ import annotations

from pydantic import ConfigDict
from sqlmodel import Field, SQLModel

__all__ = ["PLAN_NUMBERS", "PlanBase", "PlanCreate", "PlanPublic"]


class PlanBase(SQLModel):
    name: str = Field(max_length=63)
    description: str = Field(default="", max_length=255)
    vcpus: int = Field(ge=1)
    memory_mib: int = Field(ge=1)
    disk_gib: int = Field(ge=1)
    disk_read_iops: int = Field(ge=1)
    disk_write_iops: int = Field(ge=1)
    net_ingress_mbit: int = Field(ge=1)
    net_egress_mbit: int = Field(ge=1)
    max_processes: int = Field(ge=1)
    transfer_gib: int = Field(ge=1)  # monthly allowance (accounted, not throttled)


# The numeric limits of a plan, in catalogue order.
PLAN_NUMBERS = tuple(k for k, f in PlanBase.model_fields.items() if f.annotation is int)


class PlanCreate(PlanBase):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]


class PlanPublic(PlanBase):
    @classmethod
    def of(cls, plan: PlanBase) -> PlanPublic:
        return cls.model_validate(plan, from_attributes=True)
