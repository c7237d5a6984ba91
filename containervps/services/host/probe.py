"""One line of `host check`: a capability, its status, and what a gap means for tenants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Probe", "Status"]

Status = Literal["ok", "degraded", "missing", "skipped"]


@dataclass(frozen=True)
class Probe:
    name: str
    status: Status
    detail: str
    impact: str = ""  # what a missing/degraded capability means for tenants
