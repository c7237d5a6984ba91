"""One member's LXD daemon: started inside the member's network namespace, stopped by pid.

``ip netns exec`` is not used: it remounts /sys for the namespace and so drops the cgroup
mounts under /sys/fs/cgroup, which LXD needs. Instead, as LXD's own test suite does, the
daemon gets a mount namespace of its own (``unshare --mount``), enters the member's network
namespace (``nsenter --net``), moves the cgroup tree aside, mounts a sysfs that shows the
namespace's interfaces (LXD reads its bridges from /sys/class/net), moves the cgroups back and
execs ``lxd`` with the member's LXD_DIR. The daemon's mounts (its pool, its containers) live in
that mount namespace only; its unix socket is a file in LXD_DIR, reachable from the host.

The daemon runs as ``cvps-cluster-lxd`` (argv[0]) so that nothing looking for the host's own
``lxd --group ...`` (services/host/daemons.py, the scale benchmark) mistakes a member for it.
Only recorded pids that are also inside the member's namespace are ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from containervps.errors import HostSetupError
from containervps.services.cluster.layout import MemberLayout
from containervps.services.cluster.netns import netns_pids
from containervps.services.host.daemons import process_running
from containervps.shell import probe, require_tool, run, spawn

__all__ = [
    "ARGV0",
    "alive_pid",
    "halt",
    "init",
    "rss_mib",
    "start",
    "stop",
]

ARGV0 = "cvps-cluster-lxd"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Runs inside the new mount namespace and the member's network namespace.
_ENTER = """set -e
keep=$(mktemp -d /run/cvps-cluster-cgroup.XXXXXX)
mount --move /sys/fs/cgroup "$keep"
umount -l /sys
mount -t sysfs sysfs /sys
mount --move "$keep" /sys/fs/cgroup
rmdir "$keep"
exec -a "$0" "$@"
"""


def _env(member: MemberLayout) -> dict[str, str]:
    return {"LXD_DIR": str(member.lxd_dir), "PATH": PATH}


def _lxd() -> str:
    return require_tool("lxd", package="lxd")


def start(member: MemberLayout, *, timeout: float) -> int:
    """Start the member's daemon, record its pid and wait until it answers; its pid."""
    member.lxd_dir.mkdir(parents=True, exist_ok=True)
    member.lxd_dir.chmod(0o711)
    cmd = [
        "unshare", "--mount", "--propagation", "private",
        "nsenter", f"--net=/run/netns/{member.netns}",
        "bash", "-c", _ENTER, ARGV0,
        _lxd(), "--group", "root", "--logfile", str(member.lxd_dir / "lxd.log"),
    ]  # fmt: skip
    # unshare, nsenter and bash all exec: the pid we get is the daemon's.
    proc = spawn(cmd, log_file=member.log_file, detach=True, env=_env(member))
    member.pid_file.write_text(f"{proc.pid}\n")
    run(
        [_lxd(), "waitready", "--timeout", str(int(timeout))],
        what=f"wait for {member.name}'s LXD",
        timeout=timeout + 10,
        env=_env(member),
    )
    return proc.pid


def init(member: MemberLayout, preseed: str, *, timeout: float) -> None:
    """``lxd init --preseed`` against the member's daemon (bootstrap or join)."""
    run(
        [_lxd(), "init", "--preseed"],
        what=f"lxd init --preseed on {member.name}",
        input_text=preseed,
        timeout=timeout,
        env=_env(member),
    )


def recorded_pid(member: MemberLayout) -> int | None:
    try:
        return int(member.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def alive_pid(member: MemberLayout) -> int | None:
    """The recorded daemon pid when that process still runs inside the member's namespace."""
    pid = recorded_pid(member)
    if pid is None or not process_running(pid) or pid not in netns_pids(member.netns):
        return None
    return pid


def rss_mib(pid: int) -> float:
    """Resident memory of a process (0 when it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _wait_gone(pids: list[int], *, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    left = [p for p in pids if process_running(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [p for p in left if process_running(p)]
    return left


def halt(member: MemberLayout, *, timeout: float) -> bool:
    """Stop only the member's daemon (SIGTERM: LXD exits without stopping its instances, which
    keep running, as on a machine whose LXD died); True if it was running. ``start`` brings it
    back and it finds its instances again."""
    pid = alive_pid(member)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _wait_gone([pid], seconds=timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if _wait_gone([pid], seconds=10):
            raise HostSetupError(f"{member.name}: LXD daemon {pid} did not exit")
    return True


def stop(member: MemberLayout, *, timeout: float) -> list[str]:
    """Stop the member: ``lxd shutdown`` (stops its instances), then SIGKILL its recorded
    daemon if still there, then every process left in its namespace (dnsmasq, forkdns,
    monitors). What was done, for the report."""
    done: list[str] = []
    pid = alive_pid(member)
    if pid is not None:
        result = probe(
            [_lxd(), "shutdown", "--timeout", str(int(timeout))],
            timeout=timeout + 10,
            env=_env(member),
        )
        done.append(f"lxd shutdown {member.name}: {'ok' if result.ok else 'failed'}")
        if _wait_gone([pid], seconds=10):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            done.append(f"SIGKILL {member.name} daemon {pid}")
    left = [p for p in netns_pids(member.netns) if process_running(p)]
    for other in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(other, signal.SIGKILL)
    if left:
        done.append(f"SIGKILL {len(left)} processes left in {member.netns}")
    stuck = _wait_gone([*([pid] if pid else []), *left], seconds=15)
    if stuck:
        raise HostSetupError(
            f"{member.name}: processes {stuck} did not exit", resolution="see ps and retry dev-down"
        )
    member.pid_file.unlink(missing_ok=True)
    return done
