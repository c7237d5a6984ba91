"""Host memory sampling: used memory, page-cache drops, settling, PSS and cgroup memory."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CGROUP_V1_MEMORY = Path("/sys/fs/cgroup/memory")
CGROUP_V2 = Path("/sys/fs/cgroup/unified")
MIB = 1 << 20


@dataclass(frozen=True)
class HostMemory:
    total_bytes: int
    available_bytes: int

    @property
    def used_bytes(self) -> int:
        """MemTotal - MemAvailable: what the kernel could not hand out without swapping."""
        return self.total_bytes - self.available_bytes


def meminfo(path: Path = PROC / "meminfo") -> dict[str, int]:
    """/proc/meminfo as bytes per key."""
    values: dict[str, int] = {}
    for line in path.read_text().splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            values[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return values


def host_memory(path: Path = PROC / "meminfo") -> HostMemory:
    """MemTotal and MemAvailable now."""
    info = meminfo(path)
    return HostMemory(info["MemTotal"], info["MemAvailable"])


def drop_caches() -> bool:
    """Flush dirty pages and drop the page cache, dentries and inodes (root only)."""
    with contextlib.suppress(OSError):
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    return False


def settle(*, max_seconds: float, tolerance_mib: float = 4.0, window: float = 2.0) -> HostMemory:
    """Wait until used memory moves less than ``tolerance_mib`` over ``window`` seconds."""
    deadline = time.monotonic() + max_seconds
    previous = host_memory()
    while time.monotonic() < deadline:
        time.sleep(min(window, max(0.0, deadline - time.monotonic())))
        current = host_memory()
        if abs(current.used_bytes - previous.used_bytes) < tolerance_mib * MIB:
            return current
        previous = current
    return host_memory()


def pss_bytes(pid: int) -> int | None:
    """Proportional set size of one process (None when it is gone or unreadable)."""
    try:
        text = (PROC / str(pid) / "smaps_rollup").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return None


def total_pss(pids: Iterable[int]) -> int | None:
    """Summed PSS of processes (None when none could be read)."""
    values = [v for v in (pss_bytes(p) for p in pids) if v is not None]
    return sum(values) if values else None


def parent_pid(pid: int) -> int | None:
    """The parent of a process (None when it is gone)."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1])


def process_name(pid: int) -> str:
    """The process's comm (``lxc monitor`` helpers rename themselves; read cmdline too)."""
    try:
        cmdline = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").strip()
        return cmdline.decode(errors="replace") or (PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


def memory_cgroup(pid: int) -> Path | None:
    """The memory cgroup directory of a process (cgroup v1 memory controller, else v2)."""
    try:
        lines = (PROC / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return CGROUP_V1_MEMORY / path.lstrip("/")
    for line in lines:
        if line.startswith("0::"):
            return CGROUP_V2 / line[3:].lstrip("/")
    return None


def enclosing_cgroup(directory: Path | None, *, prefix: str) -> Path | None:
    """The nearest ancestor (or itself) whose name starts with ``prefix``.

    An LXD container's init can sit in a child cgroup (systemd puts itself in init.scope and its
    services in system.slice): the container's memory is charged to the whole subtree.
    """
    if directory is None:
        return None
    for candidate in (directory, *directory.parents):
        if candidate.name.startswith(prefix):
            return candidate
    return directory


def cgroup_memory_bytes(directory: Path | None) -> int | None:
    """Memory charged to a cgroup (v1 usage_in_bytes or v2 memory.current)."""
    if directory is None:
        return None
    for name in ("memory.usage_in_bytes", "memory.current"):
        with contextlib.suppress(OSError, ValueError):
            return int((directory / name).read_text().strip())
    return None


class BenchCgroup:
    """A memory cgroup (v1) we create to account processes that have none (QEMU)."""

    def __init__(self, name: str) -> None:
        self.path = CGROUP_V1_MEMORY / name

    def child(self, name: str) -> Path | None:
        """Create a child cgroup; return its directory (None when not possible)."""
        directory = self.path / name
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            return None
        return directory

    def remove(self) -> None:
        """Remove the child cgroups and then ours (they must be empty by now)."""
        if not self.path.is_dir():
            return
        for child in sorted(self.path.iterdir(), reverse=True):
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
        with contextlib.suppress(OSError):
            self.path.rmdir()
