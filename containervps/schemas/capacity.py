"""The host's capacity report as the admin API and `containervps capacity --json` show it."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:
    from containervps.services.capacity.advice import Advice
    from containervps.services.capacity.planner import CapacityReport

__all__ = ["CapacityPublic"]


class ResourcePublic(BaseModel):
    name: str
    unit: str
    sellable: int | None
    used: int
    free: int | None
    enforced: bool  # admission refuses past it; otherwise reported only
    basis: str


class PlanFitPublic(BaseModel):
    plan: str
    fits: int | None
    binding: str | None
    by_resource: dict[str, int]


class AdvicePublic(BaseModel):
    setting: str
    current: float
    proposed: float | None
    basis: str


class CapacityPublic(BaseModel):
    resources: list[ResourcePublic]
    plans: list[PlanFitPublic]
    measured_mib_per_server: float | None
    measured_source: str
    advice: list[AdvicePublic] | None = None

    @classmethod
    def of(cls, report: CapacityReport, advice: list[Advice] | None = None) -> CapacityPublic:
        return cls(
            resources=[ResourcePublic(**asdict(r), free=r.free) for r in report.resources],
            plans=[PlanFitPublic(**asdict(p)) for p in report.plans],
            measured_mib_per_server=report.measured_mib_per_server,
            measured_source=report.measured_source,
            advice=[AdvicePublic(**asdict(a)) for a in advice] if advice is not None else None,
        )
