"""Plans: every limit a server gets. ``db.models.Plan`` is the table form of ``PlanBase``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import ConfigDict, model_validator
from sqlmodel import Field, SQLModel

from containervps.schemas.bounds import Between, Line, Name
from containervps.schemas.common import timestamp

if TYPE_CHECKING:
    from containervps.db.models import Plan

__all__ = ["PLAN_NUMBERS", "PlanBase", "PlanCreate", "PlanPublic"]

MbPerS = Annotated[int, Between(1, 10**5)]  # disk bandwidth, MB/s; 100 GB/s at most


class PlanBase(SQLModel):
    """Maxima are past any one host and inside what LXD's limits.* and device keys parse."""

    name: Name
    description: Line = Field(default="", max_length=255)
    vcpus: Annotated[int, Between(1, 1024)]
    memory_mib: Annotated[int, Between(1, 2**22)]  # 4 TiB
    disk_gib: Annotated[int, Between(1, 2**16)]  # 64 TiB
    disk_read_iops: Annotated[int, Between(1, 10**6)]
    disk_write_iops: Annotated[int, Between(1, 10**6)]
    # Bandwidth in MB/s (10**6 bytes), on top of IOPS: large operations pass an IOPS cap fast.
    disk_read_mb_s: MbPerS
    disk_write_mb_s: MbPerS
    net_ingress_mbit: Annotated[int, Between(1, 10**6)]  # 1 Tbit/s
    net_egress_mbit: Annotated[int, Between(1, 10**6)]
    max_processes: Annotated[int, Between(1, 2**22)]  # the kernel's PID_MAX_LIMIT
    # Monthly allowance (accounted, not throttled); 1 PiB.
    transfer_gib: Annotated[int, Between(1, 2**20)]


# The numeric limits of a plan, in catalogue order.
PLAN_NUMBERS = tuple(k for k, f in PlanBase.model_fields.items() if f.annotation is int)


# A plan given without disk bandwidth gets a tenth of its IOPS as MB/s (nano: 500/250 iops ->
# 50/25 MB/s): the rule of the seeded plans and of migration 0010.
MB_S_PER_IOPS = 0.1


class PlanCreate(PlanBase):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    disk_read_mb_s: MbPerS | None = None  # type: ignore[assignment]
    disk_write_mb_s: MbPerS | None = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _default_bandwidth(self) -> PlanCreate:
        if self.disk_read_mb_s is None:
            self.disk_read_mb_s = max(1, int(self.disk_read_iops * MB_S_PER_IOPS))
        if self.disk_write_mb_s is None:
            self.disk_write_mb_s = max(1, int(self.disk_write_iops * MB_S_PER_IOPS))
        return self


class PlanPublic(PlanBase):
    retired: str | None = None  # when it left the catalogue; servers on it keep it

    @classmethod
    def of(cls, plan: Plan) -> PlanPublic:
        public = cls.model_validate(plan, from_attributes=True)
        public.retired = timestamp(plan.retired_at)
        return public
