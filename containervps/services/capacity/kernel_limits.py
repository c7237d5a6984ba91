"""Kernel-wide limits a full node hits before its memory runs out, what servers use of them,
and the safe values `host init` raises them to.

Inotify instances of every container count against root's limit in the initial user
namespace too (the kernel charges each user namespace up to its creator), so the default of
128 caps a host at a few dozen systemd guests.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RECOMMENDED", "KernelLimit", "kernel_limits", "raise_kernel_limits"]

PROC_SYS = Path("/proc/sys")
PIDS_CGROUP = Path("/sys/fs/cgroup/pids")
CONTAINER_PREFIX = "lxc.payload."

# Raised by `host init` when lower (never lowered): LXD's production-setup values, and the
# largest PID space of a 64-bit kernel.
RECOMMENDED: dict[str, int] = {
    "kernel/pid_max": 4194304,
    "kernel/keys/maxkeys": 2000,
    "kernel/keys/maxbytes": 2000000,
    "fs/inotify/max_user_instances": 1048576,
    "fs/inotify/max_user_watches": 1048576,
    "fs/inotify/max_queued_events": 1048576,
    "fs/aio-max-nr": 524288,
    "vm/max_map_count": 262144,
}


@dataclass(frozen=True)
class KernelLimit:
    name: str
    sysctl: str
    limit: int
    used: int  # host-wide, now
    per_server: float | None  # the average running server's use (None: no server running)


def _sysctl(key: str) -> int:
    return int((PROC_SYS / key).read_text().split()[0])


def _container_pids() -> tuple[int, set[int]]:
    """(running containers, the PIDs of every process in them)."""
    containers, pids = 0, set[int]()
    if not PIDS_CGROUP.is_dir():
        return 0, pids
    for top in PIDS_CGROUP.iterdir():
        if not top.name.startswith(CONTAINER_PREFIX):
            continue
        containers += 1
        for procs in top.rglob("cgroup.procs"):
            try:
                pids.update(int(p) for p in procs.read_text().split())
            except OSError:
                continue  # the cgroup went away while we read it
    return containers, pids


def _watches(pid: str, fd: str) -> int:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}") as fh:
            return sum(line.startswith("inotify wd:") for line in fh)
    except OSError:
        return 0


def _fds(pid: str) -> tuple[int, int, int]:
    """(open descriptors, inotify instances, inotify watches) of one process."""
    fd_dir = f"/proc/{pid}/fd"
    files = inotify = watches = 0
    try:
        for fd in os.listdir(fd_dir):
            files += 1
            try:
                if os.readlink(f"{fd_dir}/{fd}") == "anon_inode:inotify":
                    inotify += 1
                    watches += _watches(pid, fd)
            except OSError:
                continue
    except OSError:
        pass
    return files, inotify, watches


def kernel_limits(*, mounts_per_server: int = 0) -> list[KernelLimit]:
    """Each limit with its host-wide use and the average running server's share of it
    (``mounts_per_server``: what the disk layout adds to the host's mount table)."""
    containers, in_containers = _container_pids()
    total, boxed = Counter[str](), Counter[str]()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            threads = len(os.listdir(f"/proc/{entry}/task"))
        except OSError:
            continue
        files, inotify, watches = _fds(entry)
        counts = {"processes": threads, "files": files, "inotify": inotify, "watches": watches}
        total.update(counts)
        if int(entry) in in_containers:
            boxed.update(counts)

    def share(key: str) -> float | None:
        return boxed[key] / containers if containers else None

    keys_used = 0
    try:
        for line in Path("/proc/key-users").read_text().splitlines():
            uid, _, rest = line.partition(":")
            if uid.strip() == "0":
                keys_used = int(rest.split()[2].split("/")[0])
    except (OSError, IndexError, ValueError):
        pass
    pid_limit = min(_sysctl("kernel/pid_max"), _sysctl("kernel/threads-max"))
    return [
        KernelLimit(
            "processes",
            "kernel.pid_max, kernel.threads-max",
            pid_limit,
            total["processes"],
            share("processes"),
        ),
        KernelLimit(
            "open_files", "fs.file-max", _sysctl("fs/file-max"), total["files"], share("files")
        ),
        KernelLimit(
            "inotify_instances",
            "fs.inotify.max_user_instances",
            _sysctl("fs/inotify/max_user_instances"),
            total["inotify"],
            share("inotify"),
        ),
        KernelLimit(
            "inotify_watches",
            "fs.inotify.max_user_watches",
            _sysctl("fs/inotify/max_user_watches"),
            total["watches"],
            share("watches"),
        ),
        KernelLimit(
            "mounts",
            "fs.mount-max",
            _sysctl("fs/mount-max"),
            len(Path("/proc/self/mountinfo").read_text().splitlines()),
            float(mounts_per_server) or None,
        ),
        KernelLimit(
            "root_keys",
            "kernel.keys.root_maxkeys",
            _sysctl("kernel/keys/root_maxkeys"),
            keys_used,
            None,
        ),
    ]


def raise_kernel_limits(*, proc_sys: Path = PROC_SYS) -> list[str]:
    """Raise each RECOMMENDED sysctl that is lower; the changes made ("key: old -> new")."""
    changes = []
    for key, value in RECOMMENDED.items():
        path = proc_sys / key
        try:
            current = int(path.read_text().split()[0])
            if current < value:
                path.write_text(str(value))
                changes.append(f"{key.replace('/', '.')}: {current} -> {value}")
        except (OSError, ValueError):
            continue  # not on this kernel, or not writable here: reported by the planner
    return changes
