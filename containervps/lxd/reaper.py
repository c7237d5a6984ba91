"""Killing every process a bounded exec started, from the host, by a mark in its environment.

LXD's exec can only signal the one process it started, and a process group is no fence: a
child that calls setsid(), or forks twice and is re-parented to the container's init, leaves
the group while it keeps the exec's output open (and LXD then holds the exec open too). So
each bounded exec carries a random mark in its environment, which children inherit through
setsid and double forks, and at its time or output limit the host kills every process of the
container that carries the mark, plus any descendant of those that cleared its environment.

From the host rather than through a second exec inside the container: that would need a
working shell in the guest, and could not even start once the exec's processes have used up
the container's process limit (a fork bomb is exactly what must be killed). Host-side reading
of /proc needs the API to run as root next to LXD, which is how it is deployed (unix socket).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MARK_VARIABLE", "Cgroup", "container_cgroup", "kill_marked", "sweep"]

log = logging.getLogger(__name__)

PROC = Path("/proc")
MARK_VARIABLE = "CONTAINERVPS_EXEC_MARK"
PAYLOAD_PREFIX = "lxc.payload."  # LXD's cgroup of a container's own processes
SWEEP_SECONDS = 0.5
ROUND_PAUSE = 0.01


@dataclass(frozen=True)
class Cgroup:
    hierarchy: str  # "0:" or "8:pids": the id and controllers of a /proc/PID/cgroup line
    path: str

    def holds(self, pid: int) -> bool:
        """Whether the process is in this cgroup or below it."""
        for hierarchy, path in _cgroups(pid):
            if hierarchy == self.hierarchy:
                return path == self.path or path.startswith(self.path.rstrip("/") + "/")
        return False


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # gone, a kernel thread, or not ours to read
        return b""


def _cgroups(pid: int) -> list[tuple[str, str]]:
    """(hierarchy, path) of each line of /proc/PID/cgroup ("8:pids:/lxc.payload.c1")."""
    found = []
    for line in _read(PROC / str(pid) / "cgroup").decode(errors="replace").splitlines():
        number, _, rest = line.partition(":")
        controllers, colon, path = rest.partition(":")
        if colon:
            found.append((f"{number}:{controllers}", path))
    return found


def container_cgroup(init_pid: int) -> Cgroup | None:
    """The cgroup that holds all of a container's processes, read from its init process."""
    entries = _cgroups(init_pid)
    if not entries:
        return None

    def payload(path: str) -> str | None:
        # systemd in a guest moves its init below LXD's cgroup (init.scope): go up to LXD's.
        parts = path.split("/")
        hit = next((i for i, part in enumerate(parts) if part.startswith(PAYLOAD_PREFIX)), None)
        return None if hit is None else "/".join(parts[: hit + 1])

    # Prefer a hierarchy that shows LXD's payload cgroup, the unified one (0::) first.
    hierarchy, path = min(entries, key=lambda e: (payload(e[1]) is None, e[0] != "0:"))
    return Cgroup(hierarchy=hierarchy, path=payload(path) or path)


def _parent(pid: str) -> int | None:
    stat = _read(PROC / pid / "stat")
    fields = stat.rpartition(b")")[2].split()  # the command name may hold spaces and ")"
    return int(fields[1]) if len(fields) > 1 else None


def _marked_tree(needle: bytes) -> set[int]:
    """Processes whose environment carries the mark, and all their descendants."""
    marked: list[int] = []
    children: dict[int, list[int]] = {}
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        parent = _parent(entry.name)
        if parent is None:
            continue
        children.setdefault(parent, []).append(int(entry.name))
        if needle in _read(PROC / entry.name / "environ"):
            marked.append(int(entry.name))
    found: set[int] = set()
    while marked:
        pid = marked.pop()
        if pid not in found:
            found.add(pid)
            marked.extend(children.get(pid, []))
    return found


def _kill(pid: int, cgroup: Cgroup) -> bool:
    """SIGKILL one process if it is in the cgroup; a pidfd pins it so a reused pid is safe."""
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except OSError:
        pidfd = None  # no pidfd_open here: a plain kill after the same check
    try:
        if not cgroup.holds(pid):
            return False
        if pidfd is None:
            os.kill(pid, signal.SIGKILL)
        else:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


def sweep(mark: str, cgroup: Cgroup, *, seconds: float = SWEEP_SECONDS) -> int:
    """Kill the mark's processes in the cgroup, round after round until none is left."""
    needle = f"{MARK_VARIABLE}={mark}".encode()
    deadline = time.monotonic() + seconds
    killed = 0
    while True:
        # A process forked between a scan and the kills carries the mark into the next round.
        hit = sum(_kill(pid, cgroup) for pid in _marked_tree(needle))
        killed += hit
        if not hit:
            return killed
        if time.monotonic() >= deadline:
            log.warning("exec processes still appearing after %.1fs", seconds)
            return killed
        time.sleep(ROUND_PAUSE)


def kill_marked(*, init_pid: int, mark: str) -> int:
    """Kill every process of the container (by its init's host pid) that carries the mark."""
    cgroup = container_cgroup(init_pid) if init_pid > 0 else None
    if cgroup is None:
        log.warning(
            "cannot see the processes of container init %s from here: only the exec's own "
            "process was killed (run the API as root on the LXD host)",
            init_pid,
        )
        return 0
    return sweep(mark, cgroup)
