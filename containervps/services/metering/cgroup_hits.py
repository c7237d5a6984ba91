"""A server's cgroups as limit hits: memory, pids, cpu and blkio (cgroup v1) and pressure (the
v2 hierarchy), each read where the kernel records it (cgroups.py)."""

from __future__ import annotations

from pathlib import Path

from containervps.schemas.limit_hits import (
    CpuHits,
    DiskHits,
    MemoryHits,
    PidsHits,
    Pressure,
    PressureHits,
)
from containervps.services.metering.cgroups import (
    keyed,
    pressure_file,
    read_int,
    subtree_sum,
    unified_root,
)
from containervps.services.metering.host_counters import failcnt, oom_kills

__all__ = ["cpu", "disk", "memory", "pids", "pressure"]

UNLIMITED = 2**62  # v1 files say "no limit" with PAGE_COUNTER_MAX pages in bytes (~2^63)

FAILCNT_MEMSW = (
    "counted at the cgroup whose limit was hit; the plan's limit is held on memory+swap, which "
    "the kernel charges first and (since 6.14) keeps no failcnt for: hits of the plan's limit "
    "show in limit_reached, oom_kills and pressure.memory; failures at limits set inside the "
    "server count here"
)
FAILCNT_MEMORY = "counted at the cgroup whose limit was hit, each failed charge once"
CPU_PINNED = (
    "no CFS quota on the server: a vCPU is a host core it is pinned to (limits.cpu) with "
    "cpu.shares per vCPU, so its plan is never throttled (nr_throttled counts quotas set "
    "inside the server); wait_usec is the time its tasks were runnable but waited for its "
    "cores (its own threads, or neighbours pinned to them)"
)
CPU_QUOTA = "throttled by the CFS quota; wait_usec is the time its tasks waited for a core"
DISK_V1 = (
    "cgroup v1's blk-throttle keeps no count of throttled I/O: read_ios/write_ios are what was "
    "serviced, the *_limit fields what is enforced, stall_usec the time its tasks waited for "
    "I/O (PSI; a task doing I/O at its IOPS limit waits nearly all the time)"
)


def _limit(value: int) -> int | None:
    return None if value <= 0 or value >= UNLIMITED else value


def memory(root: Path, cgroup: str, *, logged_kills: int) -> MemoryHits:
    """Limit, high-water mark, failed charges and OOM kills (``logged_kills``: those the
    kernel log names since the server started)."""
    memcg = root / "memory" / cgroup
    limit, memsw_limit = (
        read_int(memcg / "memory.limit_in_bytes"),
        read_int(memcg / "memory.memsw.limit_in_bytes"),
    )
    peak = read_int(memcg / "memory.max_usage_in_bytes")
    memsw_peak = read_int(memcg / "memory.memsw.max_usage_in_bytes")
    reached = (_limit(limit) is not None and peak >= limit) or (
        _limit(memsw_limit) is not None and memsw_peak >= memsw_limit
    )
    return MemoryHits(
        limit_bytes=_limit(limit) or 0,
        peak_bytes=max(peak, memsw_peak),
        limit_reached=reached,
        failcnt=failcnt(memcg),
        failcnt_reason=FAILCNT_MEMSW if 0 < memsw_limit <= limit else FAILCNT_MEMORY,
        # The subtree's counters lose the kills of cgroups removed since; the log is a ring
        # buffer with rate-limited lines: each is a lower bound.
        oom_kills=max(oom_kills(memcg), logged_kills),
        under_oom=keyed(memcg / "memory.oom_control").get("under_oom", 0) == 1,
    )


def pids(root: Path, cgroup: str) -> PidsHits:
    """The process limit, processes now and forks refused."""
    cg = root / "pids" / cgroup
    try:
        text = (cg / "pids.max").read_text().strip()
        limit = None if text == "max" else int(text)
    except (OSError, ValueError):
        limit = None
    return PidsHits(
        limit=limit,
        current=read_int(cg / "pids.current"),
        max_events=subtree_sum(cg, "pids.events", "max"),
    )


def pressure(root: Path, cgroup: str, *, running: bool) -> PressureHits:
    """PSI of the cgroup in the v2 hierarchy, or why there is none."""
    unified = unified_root(root)
    if not running:
        return PressureHits(available=False, reason="the server is not running")
    if unified is None:
        reason = "no cgroup v2 hierarchy is mounted: the kernel keeps PSI per cgroup only there"
        return PressureHits(available=False, reason=reason)
    found: dict[str, Pressure] = {}
    try:
        for kind in ("cpu", "memory", "io"):
            lines = pressure_file(unified / cgroup / f"{kind}.pressure")
            some, full = lines.get("some", {}), lines.get("full")
            found[kind] = Pressure(
                some_usec=int(some.get("total", 0)),
                full_usec=int(full["total"]) if full and "total" in full else None,
                some_avg10=some.get("avg10", 0.0),
            )
    except OSError as exc:
        reason = f"the kernel keeps no pressure for this cgroup ({exc.strerror or exc}; psi=1?)"
        return PressureHits(available=False, reason=reason)
    return PressureHits(available=True, cpu=found["cpu"], memory=found["memory"], io=found["io"])


def cpu(root: Path, cgroup: str, *, wait: Pressure | None) -> CpuHits:
    """CFS quota and throttling; ``wait``: the cgroup's CPU pressure."""
    cg = root / "cpu" / cgroup
    quota, period = read_int(cg / "cpu.cfs_quota_us"), read_int(cg / "cpu.cfs_period_us")
    return CpuHits(
        quota=f"{quota}/{period}" if quota > 0 else "none",
        nr_periods=subtree_sum(cg, "cpu.stat", "nr_periods"),
        nr_throttled=subtree_sum(cg, "cpu.stat", "nr_throttled"),
        throttled_usec=subtree_sum(cg, "cpu.stat", "throttled_time") // 1000,
        wait_usec=wait.some_usec if wait else None,
        reason=CPU_QUOTA if quota > 0 else CPU_PINNED,
    )


def _ops(path: Path) -> dict[str, int]:
    """Read and Write totals over devices of a blkio ``*_recursive`` file."""
    totals = {"Read": 0, "Write": 0}
    try:
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) == 3 and fields[1] in totals:
                totals[fields[1]] += int(fields[2])
    except (OSError, ValueError):
        pass
    return totals


def _device_limit(path: Path) -> int | None:
    """The lowest per-device limit of a blkio throttle file (None: none set)."""
    try:
        values = [int(line.split()[1]) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError, IndexError):
        return None
    return min(values) if values else None


def disk(root: Path, cgroup: str, *, stall: Pressure | None) -> DiskHits:
    """I/O serviced and the limits held; ``stall``: the cgroup's I/O pressure."""
    cg = root / "blkio" / cgroup
    ios = _ops(cg / "blkio.throttle.io_serviced_recursive")
    size = _ops(cg / "blkio.throttle.io_service_bytes_recursive")
    return DiskHits(
        read_ios=ios["Read"],
        write_ios=ios["Write"],
        read_bytes=size["Read"],
        write_bytes=size["Write"],
        read_iops_limit=_device_limit(cg / "blkio.throttle.read_iops_device"),
        write_iops_limit=_device_limit(cg / "blkio.throttle.write_iops_device"),
        read_bps_limit=_device_limit(cg / "blkio.throttle.read_bps_device"),
        write_bps_limit=_device_limit(cg / "blkio.throttle.write_bps_device"),
        throttled_ios=None,
        stall_usec=stall.some_usec if stall else None,
        reason=DISK_V1,
    )
