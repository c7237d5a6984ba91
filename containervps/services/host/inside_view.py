"""What a VPS's own tools see of its plan: memory, CPUs, uptime, load average, /dev/shm.

One shell command reads every figure inside the VPS (BusyBox and Debian alike); ``judge``
compares them with the plan. Used by `host check` on its scratch container and by tests on
servers made through the API.
"""

from __future__ import annotations

from dataclasses import dataclass

from containervps.services.images.guest_tmpfs import SHARES

__all__ = ["INSIDE_VIEW_COMMAND", "InsideView", "judge", "loadavg_virtualised", "parse"]

# /usr/bin/free by path: BusyBox's sh would run its own applet, which asks sysinfo(2) (not
# virtualised); the images' free reads /proc/meminfo like procps does.
INSIDE_VIEW_COMMAND = (
    "echo \"mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)\"; "
    "echo \"free_mib=$(/usr/bin/free -m | awk '/^Mem:/ {print $2}')\"; "
    'echo "nproc=$(nproc)"; '
    'echo "cpuinfo=$(grep -c ^processor /proc/cpuinfo)"; '
    'echo "uptime=$(cut -d " " -f 1 /proc/uptime)"; '
    'echo "loadavg=$(cat /proc/loadavg)"; '
    'echo "tasks=$(ls -d /proc/[0-9]*/task/[0-9]* | wc -l)"; '
    "echo \"shm_kib=$(df -k /dev/shm | awk 'NR == 2 {print $2}')\"; "
    "echo \"root_kib=$(df -k / | awk 'NR == 2 {print $2}')\""
)

# The loadavg's task total may lag the live count by one lxcfs refresh (5 s).
TASK_SLACK = 5


@dataclass(frozen=True)
class InsideView:
    mem_kib: int
    free_mib: int
    nproc: int
    cpuinfo: int
    uptime: float
    loadavg: str
    tasks: int
    shm_kib: int
    root_kib: int

    def summary(self) -> str:
        return (
            f"MemTotal {self.mem_kib // 1024} MiB, free {self.free_mib} MiB, nproc "
            f"{self.nproc}, cpuinfo {self.cpuinfo} CPUs, uptime {self.uptime:.0f}s, "
            f"loadavg {self.loadavg!r} ({self.tasks} tasks inside), /dev/shm "
            f"{self.shm_kib // 1024} MiB, / {self.root_kib // 1024} MiB"
        )


def parse(stdout: str) -> InsideView:
    """The figures printed by INSIDE_VIEW_COMMAND (missing ones read as 0)."""
    raw = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)

    def num(key: str) -> int:
        value = raw.get(key, "").strip()
        return int(value) if value.isdigit() else 0

    try:
        uptime = float(raw.get("uptime", "0"))
    except ValueError:
        uptime = 0.0
    return InsideView(
        mem_kib=num("mem_kib"),
        free_mib=num("free_mib"),
        nproc=num("nproc"),
        cpuinfo=num("cpuinfo"),
        uptime=uptime,
        loadavg=raw.get("loadavg", "").strip(),
        tasks=num("tasks"),
        shm_kib=num("shm_kib"),
        root_kib=num("root_kib"),
    )


def loadavg_virtualised(view: InsideView) -> bool:
    """The load average counts the VPS's own tasks (lxcfs --enable-loadavg), not the host's.

    lxcfs's line ends "running/total last_pid" over the VPS's cgroup; the host's total counts
    every task on the host, far more than any one VPS runs.
    """
    fields = view.loadavg.split()
    if len(fields) < 4 or "/" not in fields[3]:
        return False
    total = fields[3].split("/")[1]
    return total.isdigit() and int(total) <= view.tasks + TASK_SLACK


def judge(
    view: InsideView,
    *,
    memory_mib: int,
    vcpus: int,
    max_uptime: float,
    loadavg: bool,
    disk_mib: int | None = None,
) -> list[str]:
    """What the VPS shows that differs from its plan (empty: all as planned).

    ``max_uptime``: seconds since the VPS last started, at most; ``loadavg``: whether lxcfs
    runs with --enable-loadavg; ``disk_mib``: the root disk size `df /` should show, when the
    disk layout gives it.
    """
    problems = []
    if view.mem_kib != memory_mib * 1024:
        problems.append(f"MemTotal is {view.mem_kib // 1024} MiB, the plan has {memory_mib}")
    if abs(view.free_mib - memory_mib) > 1:
        problems.append(f"free shows {view.free_mib} MiB, the plan has {memory_mib}")
    if view.nproc != vcpus or view.cpuinfo != vcpus:
        problems.append(f"nproc {view.nproc} and cpuinfo {view.cpuinfo}, the plan has {vcpus}")
    if not 0 < view.uptime <= max_uptime:
        problems.append(f"uptime is {view.uptime:.0f}s, the VPS is at most {max_uptime:.0f}s up")
    if loadavg_virtualised(view) != loadavg:
        problems.append(
            f"load average {view.loadavg!r} with {view.tasks} tasks inside is "
            f"{'not ' if loadavg else ''}the VPS's own"
        )
    shm_kib = memory_mib * 1024 * SHARES["/dev/shm"] // 100
    if abs(view.shm_kib - shm_kib) > 64:
        problems.append(f"/dev/shm is {view.shm_kib // 1024} MiB, expected {shm_kib // 1024}")
    if disk_mib is not None and abs(view.root_kib // 1024 - disk_mib) > disk_mib * 0.02:
        problems.append(f"df / shows {view.root_kib // 1024} MiB, the disk is {disk_mib}")
    return problems
