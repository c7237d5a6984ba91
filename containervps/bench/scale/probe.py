"""What the host spends as it fills: memory, slab, processes, loop devices, mounts, the CPU and
RSS of a daemon, and the errors LXD logs."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from containervps.bench import memory

__all__ = ["HostFigures", "LogWatch", "ProcessMeter", "host_figures", "lxd_daemon_pid"]

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")
TRANSACTION_TIMEOUT = "Failed to begin transaction"


@dataclass(frozen=True)
class HostFigures:
    used_mib: float
    slab_unreclaimable_mib: float
    processes: int
    loop_devices: int
    mounts: int


def host_figures(*, settle_s: float = 5.0) -> HostFigures:
    """After dropping the page cache (and letting memory settle), the host-wide figures."""
    memory.drop_caches()
    used = memory.settle(max_seconds=settle_s).used_bytes
    info = memory.meminfo()
    loops = sum(
        1 for dev in Path("/sys/block").glob("loop*") if (dev / "loop" / "backing_file").exists()
    )
    return HostFigures(
        used_mib=used / memory.MIB,
        slab_unreclaimable_mib=info.get("SUnreclaim", 0) / memory.MIB,
        processes=sum(1 for p in PROC.iterdir() if p.name.isdigit()),
        loop_devices=loops,
        mounts=len((PROC / "self" / "mountinfo").read_text().splitlines()),
    )


def lxd_daemon_pid() -> int | None:
    """The LXD daemon (not its fork* helpers, which share the command name)."""
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if Path(argv[0].decode()).name == "lxd" and (
                len(argv) < 2 or argv[1][:1] in (b"-", b"")
            ):
                return int(entry.name)
    return None


class ProcessMeter:
    """CPU share between two reads, and resident memory, of one process."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self._cpu = self._cpu_seconds()
        self._at = _uptime()

    def _cpu_seconds(self) -> float:
        if self.pid is None:
            return 0.0
        with contextlib.suppress(OSError):
            fields = (PROC / str(self.pid) / "stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
        return 0.0

    def read(self) -> tuple[float, float]:
        """(CPU % of one core since the last read, RSS in MiB now)."""
        cpu, at = self._cpu_seconds(), _uptime()
        share = 100 * (cpu - self._cpu) / max(at - self._at, 1e-6)
        self._cpu, self._at = cpu, at
        rss = 0.0
        with contextlib.suppress(OSError):
            for line in (PROC / str(self.pid) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
        return share, rss


def _uptime() -> float:
    return float((PROC / "uptime").read_text().split()[0])


class LogWatch:
    """New error lines of a log file since the last read (LXD's log, in logfmt)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = path.stat().st_size if path.exists() else 0

    def read(self) -> tuple[int, int]:
        """(error lines, transaction timeouts) written since the last read."""
        if not self.path.exists():
            return 0, 0
        with self.path.open("rb") as log:
            log.seek(self._offset if self._offset <= self.path.stat().st_size else 0)
            lines = log.read().decode(errors="replace").splitlines()
            self._offset = log.tell()
        errors = sum("level=error" in ln for ln in lines)
        return errors, sum(TRANSACTION_TIMEOUT in ln for ln in lines)
