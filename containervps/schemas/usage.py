"""Usage: a server's metric samples over a window, and a tenant's month against allowances."""

from __future__ import annotations

from pydantic import BaseModel

__all__ = [
    "LimitUsage",
    "MetricSample",
    "MetricTotals",
    "MetricsPublic",
    "MonthlyUsage",
    "ServerMonth",
    "UsageTotals",
]


class LimitUsage(BaseModel):
    """One quota: its maximum and what live servers hold now."""

    max: int
    used: int


class MetricSample(BaseModel):
    at: str
    cpu_seconds: float
    memory_bytes: int
    disk_bytes: int
    net_rx_bytes: int
    net_tx_bytes: int


class MetricTotals(BaseModel):
    """Counter growth over the window (restarts that reset counters are accounted for)."""

    cpu_seconds: float
    net_rx_bytes: int
    net_tx_bytes: int
    samples: int


class MetricsPublic(BaseModel):
    start: str
    end: str
    samples: list[MetricSample]
    totals: MetricTotals


class ServerRef(BaseModel):
    id: int
    name: str
    plan: str


class Transfer(BaseModel):
    """Outbound transfer against the plan's monthly allowance (accounted, not throttled)."""

    counted: str
    used_bytes: int
    allowance_bytes: int
    exceeded: bool


class ServerMonth(BaseModel):
    server: ServerRef
    cpu_seconds: float
    net_rx_bytes: int
    net_tx_bytes: int
    transfer: Transfer


class UsageTotals(BaseModel):
    cpu_seconds: float
    net_rx_bytes: int
    net_tx_bytes: int


class MonthlyUsage(BaseModel):
    month: str
    servers: list[ServerMonth]
    totals: UsageTotals
