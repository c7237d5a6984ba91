"""Find the lxcfs views that died inside running containers and re-attach them, no reboot.

LXC bind-mounts files of the host's lxcfs (``/var/lib/lxcfs/proc/meminfo``, ...) over the
container's ``/proc`` and ``/sys`` when it starts; when lxcfs stops, those mounts answer
"Transport endpoint is not connected" for good, and LXD 5.0 has no command to mount them again.
Here the host alone is read (cgroups and ``/proc/<pid>/mountinfo``), so a repair works while LXD
is down too; the mounts are replaced by ``ns_mounts`` in a child process. Every mount namespace
of a container is repaired, not only its init's: systemd services run in namespaces of their own
(slaves of init's, which mostly receive the repair by propagation; the rest are done one by one).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from containervps.errors import HostSetupError
from containervps.services.host.daemons import LXCFS_DIR

log = logging.getLogger(__name__)

__all__ = [
    "ContainerRepair",
    "ProcessNamespaces",
    "dead_views",
    "lxcfs_views",
    "repair",
    "running_containers",
]

# What LXC mounts from lxcfs (lxcfs 5.0's mount hook), at the same path inside the container.
LXCFS_VIEWS = frozenset(
    {
        "/proc/cpuinfo",
        "/proc/diskstats",
        "/proc/loadavg",
        "/proc/meminfo",
        "/proc/slabinfo",
        "/proc/stat",
        "/proc/swaps",
        "/proc/uptime",
        "/sys/devices/system/cpu",
    }
)
PAYLOAD_PREFIX = "lxc.payload."  # LXD's cgroup of a container: lxc.payload.<project>_<name>
# cgroup v1 (this project's hosts): the pids hierarchy has every container; v2: the root.
CGROUP_ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))
DEAD = {errno.ENOTCONN, errno.ECONNABORTED}
HELPER_TIMEOUT = 120.0


@dataclass(frozen=True)
class ProcessNamespaces:
    """A running container as the host sees it: one pid per mount namespace, init's first."""

    project: str
    name: str
    pids: tuple[int, ...]


@dataclass
class ContainerRepair:
    """What one repair pass did in one container."""

    project: str
    name: str
    init_pid: int
    replaced: list[str] = field(default_factory=list)  # view paths re-attached (all namespaces)
    namespaces: int = 0  # namespaces in which at least one view was re-attached
    errors: list[str] = field(default_factory=list)


def _owner(cgroup: str) -> tuple[str, str]:
    """(project, instance) of ``lxc.payload.<project>_<name>`` (instance names have no '_')."""
    full = cgroup.removeprefix(PAYLOAD_PREFIX)
    project, sep, name = full.rpartition("_")
    return (project, name) if sep else ("default", full)


def _cgroup_pids(directory: Path) -> list[int]:
    pids: list[int] = []
    for procs in directory.rglob("cgroup.procs"):
        try:
            pids.extend(int(p) for p in procs.read_text().split())
        except OSError:  # the cgroup went away meanwhile
            continue
    return pids


def _is_init(pid: int) -> bool:
    """pid 1 of its own pid namespace (the container's init)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            ids = line.split()[1:]
            return len(ids) > 1 and ids[-1] == "1"
    return False


def running_containers() -> list[ProcessNamespaces]:
    """Every running container of this host, from its cgroup (no LXD needed)."""
    root = next((r for r in CGROUP_ROOTS if any(r.glob(f"{PAYLOAD_PREFIX}*"))), None)
    if root is None:
        return []
    found: list[ProcessNamespaces] = []
    for directory in sorted(root.glob(f"{PAYLOAD_PREFIX}*")):
        by_ns: dict[str, int] = {}
        init, init_ns = 0, ""
        for pid in _cgroup_pids(directory):
            try:
                ns = os.readlink(f"/proc/{pid}/ns/mnt")
            except OSError:  # exited meanwhile
                continue
            by_ns.setdefault(ns, pid)
            if not init and _is_init(pid):
                init, init_ns = pid, ns
        if not init:  # starting or stopping: its next start mounts lxcfs afresh
            continue
        others = [p for ns, p in by_ns.items() if ns != init_ns]
        found.append(ProcessNamespaces(*_owner(directory.name), pids=(init, *others)))
    return found


def lxcfs_views(mountinfo: str) -> list[tuple[str, str]]:
    """(mount point, device) of the lxcfs views LXC made, from a mountinfo text. Other lxcfs
    mounts (a tenant could name its own FUSE file system "lxcfs") are never touched."""
    views: list[tuple[str, str]] = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        fstype = fields[fields.index("-") + 1]
        device, root, target = fields[2], fields[3], fields[4]
        if fstype == "fuse.lxcfs" and root == target and root in LXCFS_VIEWS:
            views.append((target, device))
    return views


def dead_views(pid: int, *, devices: set[str] | None = None) -> list[str]:
    """The lxcfs views in pid's mount namespace whose lxcfs is gone (only those of one of
    ``devices``, major:minor, when given)."""
    try:
        mountinfo = Path(f"/proc/{pid}/mountinfo").read_text()
    except OSError:
        return []
    dead: list[str] = []
    for target, device in lxcfs_views(mountinfo):
        if devices is not None and device not in devices:
            continue
        try:
            os.stat(f"/proc/{pid}/root{target}")  # resolved in the container's own mounts
        except OSError as exc:
            if exc.errno in DEAD:
                dead.append(target)
    return dead


def _run_helper(plan: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Replace mounts in other namespaces from a fresh, single-threaded interpreter."""
    if not plan:
        return {}
    done = subprocess.run(
        [sys.executable, "-m", "containervps.services.host.ns_mounts"],
        input=json.dumps(plan),
        capture_output=True,
        text=True,
        timeout=HELPER_TIMEOUT,
        check=False,
    )
    results = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0:
        log.error("lxcfs view helper failed: %s", done.stderr[-2000:])
        if not results:
            raise HostSetupError(
                f"re-attaching lxcfs views failed: {done.stderr.strip()[-300:]}",
                details={"stderr": done.stderr[-2000:]},
            )
    return {int(r["pid"]): r for r in results}


def _plan_for(pids: list[int], devices: set[str] | None) -> list[dict[str, Any]]:
    """The helper's work: each namespace's dead views, to be replaced by the host's files."""
    plan: list[dict[str, Any]] = []
    for pid in pids:
        dead = dead_views(pid, devices=devices)
        if dead:
            mounts = [{"source": f"{LXCFS_DIR}{v}", "target": v} for v in dead]
            plan.append({"pid": pid, "mounts": mounts})
    return plan


def repair(
    containers: list[ProcessNamespaces], *, devices: set[str] | None = None
) -> list[ContainerRepair]:
    """Re-attach the dead lxcfs views of ``containers`` (of ``devices`` only, when given) to
    the running lxcfs; only the containers touched are returned. Init's namespaces go first:
    their repair propagates to most of the others."""
    outcome = {c.pids[0]: ContainerRepair(c.project, c.name, c.pids[0]) for c in containers}
    owner = {pid: c.pids[0] for c in containers for pid in c.pids}
    for wave in ([c.pids[0] for c in containers], [p for c in containers for p in c.pids[1:]]):
        for pid, result in _run_helper(_plan_for(wave, devices)).items():
            entry = outcome[owner[pid]]
            replaced = [str(v) for v in result.get("replaced") or []]
            entry.replaced.extend(v for v in replaced if v not in entry.replaced)
            entry.namespaces += 1 if replaced else 0
            if result.get("error"):
                entry.errors.append(f"pid {pid}: {result['error']}")
    return [r for r in outcome.values() if r.replaced or r.errors]
