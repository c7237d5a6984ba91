"""Which limit did a server hit: the kernel's own counters of enforcing its slice, read live.

Where each is read (cgroup v1 with the v2 hierarchy mounted beside it, as LXD 5.0 runs here):
memory, pids, cpu and blkio from ``/sys/fs/cgroup/<controller>/lxc.payload.<project>_<name>``
(summed over the subtree where the kernel counts in the task's own cgroup, see cgroups.py);
pressure (PSI) from the same cgroup under ``/sys/fs/cgroup/unified``; the shaping queues from
one ``tc -s -j qdisc show`` of the host; OOM kills also from the kernel log (kernel_log.py).
For many servers it costs one LXD listing, one ``tc`` and one read of the kernel log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from containervps.config import Settings
from containervps.db.models import Server
from containervps.errors import LxdNotFound
from containervps.lxd import InstanceInfo, Lxd
from containervps.schemas.limit_hits import (
    CpuHits,
    DiskHits,
    LimitHits,
    MemoryHits,
    NetworkHits,
    PidsHits,
    Pressure,
    PressureHits,
    QdiscHits,
)
from containervps.services.host.capabilities import LXD, PLATFORM
from containervps.services.metering.cgroups import (
    keyed,
    payload,
    pressure_file,
    read_int,
    subtree_sum,
    unified_root,
)
from containervps.services.metering.host_counters import host_veth, oom_kills
from containervps.services.metering.kernel_log import OomKill, read_oom_kills
from containervps.services.servers.egress_shaping import ifb_name
from containervps.services.servers.limits import egress_mechanism
from containervps.shell import probe

__all__ = ["Host", "Target", "all_hits", "hits", "qdiscs", "read_host", "server_hits"]

UNLIMITED = 2**62  # v1 files say "no limit" with PAGE_COUNTER_MAX pages in bytes (~2^63)

FAILCNT_MEMSW = (
    "counted at the cgroup whose limit was hit; the plan's limit is held on memory+swap, which "
    "the kernel charges first and (since 6.14) keeps no failcnt for: hits of the plan's limit "
    "show in limit_reached, oom_kills and pressure.memory, limits set inside the server here"
)
FAILCNT_MEMORY = "counted at the cgroup whose limit was hit, each failed charge once"
CPU_PINNED = (
    "no CFS quota: a vCPU is a host core the server is pinned to (limits.cpu) with cpu.shares "
    "per vCPU, so the kernel never throttles it; wait_usec is the time its tasks were "
    "runnable but waited for its cores (its own threads, or neighbours pinned to them)"
)
CPU_QUOTA = "throttled by the CFS quota; wait_usec is the time its tasks waited for a core"
DISK_V1 = (
    "cgroup v1's blk-throttle keeps no count of throttled I/O: read_ios/write_ios are what was "
    "serviced, the *_limit fields what is enforced, stall_usec the time its tasks waited for "
    "I/O (PSI; a task doing I/O at its IOPS limit waits nearly all the time)"
)


@dataclass(frozen=True)
class Host:
    """What one pass reads once for every server: qdiscs, the kernel log, the boot time."""

    qdiscs: dict[str, list[dict[str, Any]]]
    kills: list[OomKill]
    booted: float  # the host's boot, in seconds since the epoch


@dataclass(frozen=True)
class Target:
    """Where one server's counters are."""

    cgroup: str  # lxc.payload.<project>_<name>
    since: datetime | None  # its last start; None: not running
    veth: str | None = None  # the host side of its eth0
    ifb: str | None = None  # the IFB shaping its upload (platform shaping)
    egress_by: str = ""  # who shapes its upload: LXD, PLATFORM or ""


def qdiscs(text: str, *, device: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """``tc -s -j qdisc show [dev DEVICE]`` output by device (tc leaves "dev" out when it
    was asked for one)."""
    by_dev: dict[str, list[dict[str, Any]]] = {}
    for entry in json.loads(text or "[]"):
        by_dev.setdefault(device or str(entry.get("dev", "")), []).append(entry)
    return by_dev


def _booted() -> float:
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return time.time() - uptime


def _tc(device: str | None = None) -> dict[str, list[dict[str, Any]]]:
    command = ["tc", "-s", "-j", "qdisc", "show", *(("dev", device) if device else ())]
    out = probe(command, timeout=30)
    try:
        return qdiscs(out.stdout, device=device) if out.ok else {}
    except ValueError:
        return {}


def read_host(devices: Iterable[str | None] | None = None) -> Host:
    """The host-wide reads of a pass: the qdiscs (of every device, or of ``devices`` only: a
    host with 1000 servers lists 300 KB of them), one read of the kernel log."""
    found = _tc() if devices is None else {d: _tc(d).get(d, []) for d in devices if d}
    return Host(qdiscs=found, kills=read_oom_kills().kills, booted=_booted())


def _limit(value: int) -> int | None:
    return None if value <= 0 or value >= UNLIMITED else value


def _memory(root: Path, target: Target, host: Host) -> MemoryHits:
    memcg = root / "memory" / target.cgroup
    limit, memsw_limit = (
        read_int(memcg / "memory.limit_in_bytes"),
        read_int(memcg / "memory.memsw.limit_in_bytes"),
    )
    peak = read_int(memcg / "memory.max_usage_in_bytes")
    memsw_peak = read_int(memcg / "memory.memsw.max_usage_in_bytes")
    reached = (_limit(limit) is not None and peak >= limit) or (
        _limit(memsw_limit) is not None and memsw_peak >= memsw_limit
    )
    logged = 0
    if target.since is not None:
        start = target.since.timestamp()
        logged = sum(
            1
            for k in host.kills
            if k.memcg == f"/{target.cgroup}" and host.booted + k.usec / 1e6 >= start
        )
    return MemoryHits(
        limit_bytes=_limit(limit) or 0,
        peak_bytes=max(peak, memsw_peak),
        limit_reached=reached,
        failcnt=subtree_sum(memcg, "memory.failcnt") + subtree_sum(memcg, "memory.memsw.failcnt"),
        failcnt_reason=FAILCNT_MEMSW if 0 < memsw_limit <= limit else FAILCNT_MEMORY,
        # The subtree's counters lose the kills of cgroups removed since; the log is a ring
        # buffer with rate-limited lines: each is a lower bound.
        oom_kills=max(oom_kills(memcg), logged),
        under_oom=keyed(memcg / "memory.oom_control").get("under_oom", 0) == 1,
    )


def _pids(root: Path, target: Target) -> PidsHits:
    cg = root / "pids" / target.cgroup
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


def _pressure(root: Path, target: Target) -> tuple[PressureHits, dict[str, Pressure]]:
    unified = unified_root(root)
    if target.since is None:
        return PressureHits(available=False, reason="the server is not running"), {}
    if unified is None:
        reason = "no cgroup v2 hierarchy is mounted: the kernel keeps PSI per cgroup only there"
        return PressureHits(available=False, reason=reason), {}
    found: dict[str, Pressure] = {}
    try:
        for kind in ("cpu", "memory", "io"):
            lines = pressure_file(unified / target.cgroup / f"{kind}.pressure")
            some, full = lines.get("some", {}), lines.get("full")
            found[kind] = Pressure(
                some_usec=int(some.get("total", 0)),
                full_usec=int(full["total"]) if full and "total" in full else None,
                some_avg10=some.get("avg10", 0.0),
            )
    except OSError as exc:
        reason = f"the kernel keeps no pressure for this cgroup ({exc.strerror or exc}; psi=1?)"
        return PressureHits(available=False, reason=reason), {}
    pressure = PressureHits(
        available=True, cpu=found["cpu"], memory=found["memory"], io=found["io"]
    )
    return pressure, found


def _cpu(root: Path, target: Target, wait: Pressure | None) -> CpuHits:
    cg = root / "cpu" / target.cgroup
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


def _disk(root: Path, target: Target, stall: Pressure | None) -> DiskHits:
    cg = root / "blkio" / target.cgroup
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


def _qdisc(host: Host, device: str | None, *, ingress: bool, shaper: str) -> QdiscHits:
    """Counters of a device's root qdisc (or its ingress qdisc), if it shapes."""
    for q in host.qdiscs.get(device or "", []) if device else []:
        if (q.get("kind") == "ingress") == ingress and (ingress or q.get("root")):
            if q.get("kind") in ("noqueue", "pfifo_fast", "fq_codel", "mq"):
                break  # the default queue: nothing shapes here
            return QdiscHits(
                shaped_by=shaper,
                device=device,
                sent_packets=int(q.get("packets", 0)),
                dropped=int(q.get("drops", 0)),
                overlimits=int(q.get("overlimits", 0)),
            )
    return QdiscHits(shaped_by="", device=device, sent_packets=0, dropped=0, overlimits=0)


def _network(target: Target, host: Host) -> NetworkHits:
    if target.egress_by == PLATFORM:
        egress = _qdisc(host, target.ifb, ingress=False, shaper=PLATFORM)
    elif target.egress_by == LXD:  # LXD polices on the veth's ingress
        egress = _qdisc(host, target.veth, ingress=True, shaper=LXD)
    else:
        egress = _qdisc(host, None, ingress=False, shaper="")
    # The host side of the veth sends what the server receives: LXD's limits.ingress is an
    # HTB on that device's root.
    return NetworkHits(egress=egress, ingress=_qdisc(host, target.veth, ingress=False, shaper=LXD))


def hits(root: Path, target: Target, host: Host) -> LimitHits:
    """One server's counters (zeros where it has no cgroup: not running)."""
    pressure, found = _pressure(root, target)
    return LimitHits(
        since=target.since.isoformat().replace("+00:00", "Z") if target.since else None,
        memory=_memory(root, target, host),
        pids=_pids(root, target),
        cpu=_cpu(root, target, found.get("cpu")),
        disk=_disk(root, target, found.get("io")),
        network=_network(target, host),
        pressure=pressure,
    )


def _started(inst: InstanceInfo | None) -> datetime | None:
    if inst is None or inst.status != "Running" or not inst.last_used_at:
        return None
    try:
        return datetime.fromisoformat(inst.last_used_at).astimezone(UTC)
    except ValueError:
        return None


def _target(server: Server, inst: InstanceInfo | None) -> Target:
    assert server.id is not None
    project, name = server.lxd_project, server.lxd_name
    return Target(
        cgroup=payload(project, name),
        since=_started(inst),
        veth=host_veth(inst) if inst is not None else None,
        ifb=ifb_name(server_id=server.id, project=project, name=name),
        egress_by=egress_mechanism(server.limits),
    )


def server_hits(settings: Settings, lxd: Lxd, server: Server) -> LimitHits:
    """One server's counters now (one LXD request for its start time and veth)."""
    try:
        inst: InstanceInfo | None = lxd.instances.get(
            name=server.lxd_name, project=server.lxd_project
        )
    except LxdNotFound:
        inst = None
    target = _target(server, inst)
    return hits(settings.cgroup_root, target, read_host([target.veth, target.ifb]))


def all_hits(settings: Settings, lxd: Lxd, servers: Iterable[Server]) -> dict[int, LimitHits]:
    """Counters of many servers in one pass: one LXD listing, one ``tc``, one log read."""
    instances = {(i.project, i.name): i for i in lxd.instances.everywhere()}
    host = read_host()
    return {
        server.id: hits(
            settings.cgroup_root,
            _target(server, instances.get((server.lxd_project, server.lxd_name))),
            host,
        )
        for server in servers
        if server.id is not None
    }
