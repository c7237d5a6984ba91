"""A server's usage counters read from the host kernel, for every server in one pass.

LXD's state API computes the same figures per instance, and for the disk it runs a `btrfs`
process per instance: at ~400 servers its all-projects state read took longer than the LXD
timeout (30 s) on this host while creates ran. Here the pass costs one instance listing (config
only), a few small file reads per server and one `btrfs qgroup show` for the shared pool.

Servers on LXD cluster members have no veth, cgroup or pool mount on this host: with members
recorded the one listing asks for state too (``recursion=2``: each member answers for its own
instances) and their counters come from it. An instance on a member LXD cannot reach has no
state and gets no reading (a zero would pass for a counter reset and count twice).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from containervps.config import Settings
from containervps.errors import LxdNotFound
from containervps.lxd import InstanceInfo, InstanceState, Lxd, instance_pool, storage_name
from containervps.services.cluster.members import any_recorded
from containervps.services.metering.cgroups import payload, read_int, subtree_sum
from containervps.shell import run

__all__ = [
    "Counters",
    "counter_growth",
    "failcnt",
    "host_veth",
    "oom_kills",
    "read_counters",
    "read_one",
]

NET = Path("/sys/class/net")


@dataclass(frozen=True)
class Counters:
    cpu_seconds: float
    memory_bytes: int
    disk_bytes: int
    rx_bytes: int  # received by the server
    tx_bytes: int  # sent by the server
    status: str = ""  # LXD's status of the instance when it was listed
    oom_kills: int = 0  # OOM kills in its memory cgroups (those that still exist)
    memory_failcnt: int = 0  # times its memory cgroup hit the limit (as the kernel counts)


def counter_growth(before: float, after: float) -> float:
    """How much a cumulative counter grew; a drop means it restarted from zero."""
    return after - before if after >= before else after


def oom_kills(memcg: Path) -> int:
    """OOM kills counted in a memory cgroup and every cgroup below it. On cgroup v1 the kernel
    counts a kill only in the victim's own cgroup (a Debian server's are its services' and
    sessions'), and a count goes with its cgroup when systemd removes it: a lower bound."""
    return subtree_sum(memcg, "memory.oom_control", "oom_kill")


def failcnt(memcg: Path) -> int:
    """Failed charges of a memory cgroup and every cgroup below it (v1 counts one at the
    cgroup whose limit was hit), of memory and of memory+swap."""
    return subtree_sum(memcg, "memory.failcnt") + subtree_sum(memcg, "memory.memsw.failcnt")


def host_veth(inst: InstanceInfo) -> str | None:
    """The host side of the instance's eth0 (LXD names it when the instance starts)."""
    return inst.config.get("volatile.eth0.host_name")


def _shared_pool_usage(settings: Settings, lxd: Lxd) -> dict[str, int]:
    """Referenced bytes of every volume of the shared btrfs pool, by its path in the pool."""
    mount = lxd.host.pool_dir(settings.storage_pool)
    out = run(["btrfs", "qgroup", "show", "-r", "--raw", str(mount)], what="read disk usage")
    usage = {}
    for line in out.splitlines()[2:]:  # qgroupid, referenced, exclusive, max referenced, path
        fields = line.split()
        if len(fields) >= 5 and fields[1].isdigit():
            usage[fields[4]] = int(fields[1])
    return usage


def _own_pool_usage(lxd: Lxd, pool: str) -> int:
    """Bytes used on a per-server pool's filesystem (statvfs of its mount)."""
    with contextlib.suppress(OSError):
        st = os.statvfs(lxd.host.pool_dir(pool))
        return (st.f_blocks - st.f_bfree) * st.f_frsize
    return 0


def _counters(inst: InstanceInfo, disk: int, *, root: Path) -> Counters:
    cgroup = payload(inst.project, inst.name)
    veth = NET / (host_veth(inst) or "-") / "statistics"
    memcg = root / "memory" / cgroup
    return Counters(
        cpu_seconds=read_int(root / "cpuacct" / cgroup / "cpuacct.usage") / 1e9,
        memory_bytes=read_int(memcg / "memory.usage_in_bytes"),
        disk_bytes=disk,
        rx_bytes=read_int(veth / "tx_bytes"),  # the host side of the veth sends what it receives
        tx_bytes=read_int(veth / "rx_bytes"),
        status=inst.status,
        oom_kills=oom_kills(memcg),
        memory_failcnt=failcnt(memcg),
    )


def _from_state(inst: InstanceInfo, state: InstanceState) -> Counters:
    """Counters as LXD reports them (eth0's counters are the instance's own view)."""
    return Counters(
        cpu_seconds=state.cpu_usage_ns / 1e9,
        memory_bytes=state.memory_usage_bytes,
        disk_bytes=state.disk_usage_bytes,
        rx_bytes=state.net_rx_bytes,
        tx_bytes=state.net_tx_bytes,
        status=inst.status,
    )


def read_counters(settings: Settings, lxd: Lxd) -> dict[tuple[str, str], Counters]:
    """(project, name) -> counters of every instance LXD has (and can reach)."""
    result, here = {}, []
    for inst in lxd.instances.everywhere(state=any_recorded(settings)):
        if not inst.clustered:
            here.append(inst)
        elif inst.state is not None:
            result[(inst.project, inst.name)] = _from_state(inst, inst.state)
    if not here:
        return result
    pools = {p.name: p.driver for p in lxd.host.list_pools()}
    btrfs = pools.get(settings.storage_pool) == "btrfs"
    shared = _shared_pool_usage(settings, lxd) if btrfs else {}
    for inst in here:
        own = instance_pool(inst.project, inst.name)
        if own in pools:
            disk = _own_pool_usage(lxd, own)
        else:
            disk = shared.get(f"containers/{storage_name(inst.project, inst.name)}", 0)
        result[(inst.project, inst.name)] = _counters(inst, disk, root=settings.cgroup_root)
    return result


def read_one(settings: Settings, lxd: Lxd, *, project: str, name: str) -> Counters | None:
    """One instance's counters (None when LXD has no such instance)."""
    try:
        inst = lxd.instances.get(name=name, project=project)
    except LxdNotFound:
        return None
    if inst.clustered:
        return _from_state(inst, lxd.instances.state(name=name, project=project))
    own = instance_pool(project, name)
    pools = {p.name: p.driver for p in lxd.host.list_pools()}
    if own in pools:
        disk = _own_pool_usage(lxd, own)
    elif pools.get(settings.storage_pool) == "btrfs":
        disk = _shared_pool_usage(settings, lxd).get(f"containers/{storage_name(project, name)}", 0)
    else:
        disk = 0
    return _counters(inst, disk, root=settings.cgroup_root)
