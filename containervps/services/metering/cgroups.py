"""A container's cgroup files on the host, read where the kernel records each figure.

LXD puts a container in ``lxc.payload.<project>_<name>`` in every hierarchy. Processes inside
may make child cgroups (systemd does: init.scope, system.slice, ...), and on cgroup v1 several
counters live in the cgroup of the task concerned, not in the one whose limit was hit: an OOM
kill counts in the victim's cgroup, a refused fork in the forking task's. Those are summed over
the subtree; a child cgroup removed meanwhile takes its counts with it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from containervps.lxd import storage_name

__all__ = [
    "keyed",
    "payload",
    "pressure_file",
    "read_int",
    "subtree_sum",
    "unified_root",
]


def payload(project: str, name: str) -> str:
    """The container's cgroup name, the same in every hierarchy."""
    return f"lxc.payload.{storage_name(project, name)}"


def read_int(path: Path) -> int:
    """A one-number file's value; 0 when it is absent (a stopped instance has no cgroup)."""
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().split()[0])
    return 0


def keyed(path: Path) -> dict[str, int]:
    """A "key value" per line file (cpu.stat, pids.events, memory.oom_control); {} if absent."""
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                values[key] = int(value.split()[0])
    return values


def subtree_sum(top: Path, filename: str, key: str | None = None) -> int:
    """``filename`` (its ``key`` line, or its one number) summed over ``top`` and every
    cgroup below it."""
    total = 0
    for directory, _, _ in os.walk(top):
        path = Path(directory) / filename
        total += read_int(path) if key is None else keyed(path).get(key, 0)
    return total


def unified_root(root: Path) -> Path | None:
    """The cgroup v2 hierarchy: ``<root>/unified`` on a hybrid (v1) host, ``root`` on a v2
    host; None when there is none. Pressure (PSI) is kept there, per cgroup, whatever the
    controllers."""
    if (root / "unified" / "cgroup.procs").exists():
        return root / "unified"
    if (root / "cgroup.controllers").exists():
        return root
    return None


def pressure_file(path: Path) -> dict[str, dict[str, float]]:
    """A PSI file: {"some": {"avg10": .., "avg60": .., "avg300": .., "total": usec}, "full":
    ...}. Raises OSError when the kernel keeps no pressure (psi=0: EOPNOTSUPP)."""
    lines: dict[str, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        kind, *fields = line.split()
        lines[kind] = {k: float(v) for k, _, v in (f.partition("=") for f in fields)}
    return lines
