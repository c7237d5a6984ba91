"""What the density loop needs from each kind of instance (LXD, Docker, VM)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

from containervps.bench.model import InstanceRecord
from containervps.bench.workload import cpu_command
from containervps.shell import probe, run


class Runner(Protocol):
    """Launches, measures and removes the instances of one kind for one run."""

    kind: str

    def prepare(self) -> dict[str, Any]:
        """Make images/disks ready; return facts for the report (image, accelerator...)."""
        ...

    def launch(self, index: int, *, batch: int) -> InstanceRecord:
        """Create and start instance ``index``, wait until ready; errors go in the record."""
        ...

    def cgroup(self, rec: InstanceRecord) -> Path | None:
        """The memory cgroup that accounts the instance."""
        ...

    def probe(self, rec: InstanceRecord) -> float:
        """Seconds for a trivial command to be answered inside the instance."""
        ...

    def cpu_job(self, rec: InstanceRecord, *, loops: int) -> float:
        """Seconds the fixed CPU job takes inside (minus the probe round trip)."""
        ...

    def iops(self, rec: InstanceRecord, *, writes: int) -> dict[str, Any] | None:
        """4 KiB direct writes per second inside vs on the host's same file system."""
        ...

    def start_activity(self, rec: InstanceRecord) -> None:
        """Start the active load inside the instance."""
        ...

    def cleanup(self) -> list[str]:
        """Remove everything this run created (tracked or not); return what was removed."""
        ...


def timed(func: Any, *args: Any, **kwargs: Any) -> float:
    """Seconds ``func(*args, **kwargs)`` took."""
    started = time.perf_counter()
    func(*args, **kwargs)
    return time.perf_counter() - started


def host_cpu_job(rootfs: Path, *, loops: int, timeout: float = 600) -> float:
    """The CPU job on the host, run by the guest image's own shell (chroot into its rootfs)."""
    started = time.perf_counter()
    run(
        ["chroot", str(rootfs), *cpu_command(loops)],
        what="the CPU job on the host",
        timeout=timeout,
    )
    return time.perf_counter() - started


def host_iops(directory: Path, *, writes: int, timeout: float = 600) -> float | None:
    """4 KiB O_DIRECT writes per second into ``directory`` on the host (busybox dd)."""
    target = directory / ".cvps-bench-iops"
    started = time.perf_counter()
    dd = ["busybox", "dd", "if=/dev/zero", f"of={target}", "bs=4096", f"count={writes}"]
    try:
        done = probe([*dd, "oflag=direct"], timeout=timeout)
    finally:
        target.unlink(missing_ok=True)
    if not done.ok:
        return None
    return writes / max(time.perf_counter() - started, 1e-6)


def iops_result(*, inside_seconds: float, writes: int, host_dir: Path) -> dict[str, Any]:
    """The IOPS job inside an instance beside the same writes into ``host_dir`` on the host."""
    return {
        "inside_iops": writes / max(inside_seconds, 1e-6),
        "host_iops": host_iops(host_dir, writes=writes) if host_dir.is_dir() else None,
        "host_path": str(host_dir),
        "writes": writes,
    }
