"""Which limit did a server hit: the counters the kernel keeps while it enforces the slice.

Every counter counts since the server last started (its cgroups and host-side devices are
made at each start): ``since``. A stopped server has none (zeros, ``since`` null).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = [
    "CpuHits",
    "DiskHits",
    "HitsServer",
    "LimitHits",
    "MemoryHits",
    "NetworkHits",
    "PidsHits",
    "Pressure",
    "PressureHits",
    "QdiscHits",
    "ServerHits",
]


class MemoryHits(BaseModel):
    limit_bytes: int = Field(description="The plan's memory limit as the kernel holds it")
    peak_bytes: int = Field(description="The kernel's high-water mark of memory+swap use")
    limit_reached: bool = Field(description="The high-water mark reached the limit")
    failcnt: int = Field(description="memory.failcnt + memory.memsw.failcnt over the subtree")
    failcnt_reason: str
    oom_kills: int = Field(description="Processes the OOM killer killed in the server")
    under_oom: bool = Field(description="The server is at its limit with nothing to reclaim now")


class PidsHits(BaseModel):
    limit: int | None = Field(description="pids.max (None: no limit)")
    current: int
    max_events: int = Field(description="Forks refused at the limit (pids.events max)")


class CpuHits(BaseModel):
    quota: str = Field(description='CFS quota "quota_us/period_us", or "none"')
    nr_periods: int
    nr_throttled: int = Field(description="Periods the CFS quota throttled the server")
    throttled_usec: int
    wait_usec: int | None = Field(
        description="Time some of its tasks were runnable but waited for its cores (PSI)"
    )
    reason: str


class DiskHits(BaseModel):
    read_ios: int
    write_ios: int
    read_bytes: int
    write_bytes: int
    read_iops_limit: int | None
    write_iops_limit: int | None
    read_bps_limit: int | None
    write_bps_limit: int | None
    throttled_ios: int | None = Field(description="None: the kernel keeps no such counter here")
    stall_usec: int | None = Field(
        description="Time some of its tasks waited for I/O (PSI): at an IOPS limit, always"
    )
    reason: str


class QdiscHits(BaseModel):
    shaped_by: str = Field(description='"lxd", "platform" or "" (not shaped)')
    device: str | None
    sent_packets: int
    dropped: int = Field(description="Packets the shaping queue dropped")
    overlimits: int = Field(description="Times the shaper held a packet back over the rate")


class NetworkHits(BaseModel):
    egress: QdiscHits = Field(description="What the server sent (its upload)")
    ingress: QdiscHits = Field(description="What the server received (its download)")


class Pressure(BaseModel):
    some_usec: int = Field(description="Total time some tasks stalled on the resource")
    full_usec: int | None = Field(description="Total time all non-idle tasks stalled")
    some_avg10: float


class PressureHits(BaseModel):
    available: bool
    reason: str = ""
    cpu: Pressure | None = None
    memory: Pressure | None = None
    io: Pressure | None = None


class LimitHits(BaseModel):
    since: str | None = Field(description="When the server last started (RFC 3339)")
    memory: MemoryHits
    pids: PidsHits
    cpu: CpuHits
    disk: DiskHits
    network: NetworkHits
    pressure: PressureHits


class HitsServer(BaseModel):
    id: int
    name: str
    tenant_id: int


class ServerHits(BaseModel):
    """One server's counters in a listing of many."""

    server: HitsServer
    limit_hits: LimitHits
