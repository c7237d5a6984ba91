"""Which limit did a server hit: the kernel's own counters of enforcing its slice, read live.

Where each is read (cgroup v1 with the v2 hierarchy mounted beside it, as LXD 5.0 runs here):
memory, pids, cpu and blkio from ``/sys/fs/cgroup/<controller>/lxc.payload.<project>_<name>``
and pressure (PSI) from the same cgroup under ``/sys/fs/cgroup/unified`` (cgroup_hits.py);
the shaping queues from
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
from containervps.schemas.limit_hits import LimitHits, NetworkHits, QdiscHits
from containervps.services.host.capabilities import LXD, PLATFORM
from containervps.services.metering import cgroup_hits
from containervps.services.metering.cgroups import payload
from containervps.services.metering.host_counters import host_veth
from containervps.services.metering.kernel_log import OomKill, read_oom_kills
from containervps.services.servers.egress_shaping import ifb_name
from containervps.services.servers.limits import egress_mechanism
from containervps.shell import probe

__all__ = ["Host", "Target", "all_hits", "hits", "qdiscs", "read_host", "server_hits"]


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


def _logged_kills(target: Target, host: Host) -> int:
    """Kills the kernel log names at the server's memory cgroup since it started."""
    if target.since is None:
        return 0
    start = target.since.timestamp()
    memcg = f"/{target.cgroup}"
    return sum(1 for k in host.kills if k.memcg == memcg and host.booted + k.usec / 1e6 >= start)


def hits(root: Path, target: Target, host: Host) -> LimitHits:
    """One server's counters (zeros where it has no cgroup: not running)."""
    cg = target.cgroup
    psi = cgroup_hits.pressure(root, cg, running=target.since is not None)
    return LimitHits(
        since=target.since.isoformat().replace("+00:00", "Z") if target.since else None,
        memory=cgroup_hits.memory(root, cg, logged_kills=_logged_kills(target, host)),
        pids=cgroup_hits.pids(root, cg),
        cpu=cgroup_hits.cpu(root, cg, wait=psi.cpu),
        disk=cgroup_hits.disk(root, cg, stall=psi.io),
        network=_network(target, host),
        pressure=psi,
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
    by_id = {s.id: s for s in servers if s.id is not None}
    if not by_id:
        return {}
    instances = {(i.project, i.name): i for i in lxd.instances.everywhere()}
    host = read_host()
    return {
        sid: hits(
            settings.cgroup_root,
            _target(server, instances.get((server.lxd_project, server.lxd_name))),
            host,
        )
        for sid, server in by_id.items()
    }
