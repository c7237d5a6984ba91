"""Starting the host daemons the platform needs: lxcfs, then LXD; dockerd for benchmarks.

Uses systemd units where the host runs systemd; otherwise starts the daemons in the background
itself (this project's CI machines have no systemd).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from containervps.config import Settings
from containervps.errors import HostSetupError, LxdUnavailable
from containervps.lxd.client import LxdApi
from containervps.shell import probe, require_tool, run, spawn

log = logging.getLogger(__name__)

LXCFS_DIR = Path("/var/lib/lxcfs")
DOCKER_SOCKET = Path("/var/run/docker.sock")


@dataclass(frozen=True)
class DaemonStatus:
    name: str
    started: bool  # False: it was already running
    detail: str


def has_systemd() -> bool:
    return Path("/run/systemd/system").is_dir()


def lxcfs_active() -> bool:
    """lxcfs is mounted and answering (containers then see their own limits in /proc)."""
    try:
        return (LXCFS_DIR / "proc" / "meminfo").exists()
    except OSError as exc:
        if exc.errno == errno.ENOTCONN:  # the mount outlived its lxcfs process
            return False
        raise


# Short spellings lxcfs accepts for the options it is started with (`lxcfs --help`).
_LXCFS_SHORT = {"-l": "--enable-loadavg", "-u": "--disable-swap"}
_LXCFS_IGNORED = {"-f", "--foreground", "-d", "--debug"}  # how it runs, not what it shows


def normalise_lxcfs_options(options: list[str]) -> list[str]:
    """Options in one spelling, sorted, without those that do not change what VPSs see."""
    return sorted({_LXCFS_SHORT.get(o, o) for o in options if o not in _LXCFS_IGNORED})


def _lxcfs_process() -> tuple[int, list[str]] | None:
    """(pid, options) of the lxcfs process serving LXCFS_DIR, if any."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            raw = (proc / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
        if len(args) >= 2 and Path(args[0]).name == "lxcfs" and Path(args[-1]) == LXCFS_DIR:
            return int(proc.name), args[1:-1]
    return None


def lxcfs_running_options() -> list[str] | None:
    """The options of the lxcfs process serving LXCFS_DIR (None: no such process)."""
    found = _lxcfs_process()
    return found[1] if found else None


def lxcfs_options_differ(settings: Settings) -> bool:
    """An lxcfs we start runs with options other than ``lxcfs_options``."""
    found = _lxcfs_process()
    if has_systemd() or found is None:
        return False
    return normalise_lxcfs_options(found[1]) != normalise_lxcfs_options(settings.lxcfs_options)


def stop_lxcfs_with_other_options(settings: Settings) -> bool:
    """Stop an lxcfs we started whose options differ from ``lxcfs_options`` (its views in
    running containers then need re-attaching); whether it was stopped."""
    found = _lxcfs_process()
    if found is None or not lxcfs_options_differ(settings):
        return False
    pid, options = found
    log.warning(
        "lxcfs runs with %s, the settings ask for %s: restarting it",
        options,
        settings.lxcfs_options,
    )
    os.kill(pid, signal.SIGTERM)
    if not _wait_exit(pid, seconds=10):
        os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, seconds=10)
    return True


def _release_stale_lxcfs_mount() -> None:
    """Detach an lxcfs FUSE mount whose daemon died (a host restart without unmounting it)."""
    try:
        (LXCFS_DIR / "proc").exists()
    except OSError as exc:
        if exc.errno != errno.ENOTCONN:
            raise
        log.warning("lxcfs mount on %s is stale (its daemon is gone); detaching it", LXCFS_DIR)
        run(["umount", "-l", str(LXCFS_DIR)], what="detach the stale lxcfs mount")


def lxd_answers(settings: Settings) -> bool:
    try:
        LxdApi(socket=settings.lxd_socket, timeout=5).request("get", "/")
    except LxdUnavailable:
        return False
    return True


def docker_answers() -> bool:
    if not DOCKER_SOCKET.exists():
        return False
    return probe(["docker", "version", "--format", "{{.Server.Version}}"], timeout=20).ok


def _spawn(cmd: list[str], *, log_file: Path) -> None:
    """Start a daemon detached from us, its output appended to ``log_file``."""
    spawn(cmd, log_file=log_file, detach=True)


def _wait_until(check: object, *, seconds: float, what: str, log_file: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise HostSetupError(
        f"{what} did not come up within {seconds:.0f}s", resolution=f"see {log_file}"
    )


def ensure_lxcfs(settings: Settings) -> DaemonStatus:
    """Start lxcfs unless it is mounted already (it must run before LXD)."""
    if lxcfs_active():
        return DaemonStatus("lxcfs", False, f"mounted on {LXCFS_DIR}")
    log_file = settings.log_dir / "lxcfs.log"
    _release_stale_lxcfs_mount()
    if has_systemd():
        run(["systemctl", "start", "lxcfs"], what="start lxcfs")
    else:
        LXCFS_DIR.mkdir(parents=True, exist_ok=True)
        lxcfs = require_tool("lxcfs", package="lxcfs")
        _spawn([lxcfs, *settings.lxcfs_options, str(LXCFS_DIR)], log_file=log_file)
    _wait_until(lxcfs_active, seconds=15, what="lxcfs", log_file=log_file)
    return DaemonStatus("lxcfs", True, f"mounted on {LXCFS_DIR}")


def ensure_lxd(settings: Settings) -> DaemonStatus:
    """Start LXD unless it answers already."""
    if lxd_answers(settings):
        return DaemonStatus("lxd", False, "answering")
    log_file = settings.log_dir / "lxd.log"
    lxd = require_tool("lxd", package="lxd")
    if has_systemd():
        run(["systemctl", "start", "lxd"], what="start lxd")
    else:
        _spawn([lxd, "--group", "root", "--logfile", str(log_file)], log_file=log_file)
    run([lxd, "waitready", "--timeout", "120"], what="wait for LXD", timeout=130)
    return DaemonStatus("lxd", True, "started")


def lxd_daemon_pid() -> int | None:
    """The pid of the LXD daemon we started (``lxd --group ...``), or None."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:  # exited meanwhile
            continue
        if Path(args[0].decode(errors="replace")).name == "lxd" and args[1:2] == [b"--group"]:
            return int(cmdline.parent.name)
    return None


def stop_lxd_keeping_instances(settings: Settings, *, grace: float = 30) -> str:
    """Stop the LXD daemon and leave every container running; returns how ("SIGTERM" or
    "SIGKILL").

    SIGTERM means "LXD will be back" (LXD's daemon-behavior doc): containers, their monitors
    and forkproxies go on, where ``lxd shutdown`` and SIGPWR stop every container first. But
    LXD then waits for running operations (an open ``exec`` or console) up to
    ``core.shutdown_timeout``, 5 minutes by default, refusing every change meanwhile (measured:
    173 s with other tests' execs open). After ``grace`` seconds it is killed instead: the
    containers still run on (LXD re-attaches them at start), only the open operations end.
    """
    pid = lxd_daemon_pid()
    if pid is None:
        raise HostSetupError("no LXD daemon started by `lxd --group ...` found")
    os.kill(pid, signal.SIGTERM)
    if _wait_exit(pid, seconds=grace):
        return "SIGTERM"
    log.warning("LXD still waiting for operations after %.0fs; killing it", grace)
    os.kill(pid, signal.SIGKILL)
    if not _wait_exit(pid, seconds=30):
        raise HostSetupError(f"LXD (pid {pid}) did not exit after SIGKILL")
    return "SIGKILL"


def _wait_exit(pid: int, *, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while process_running(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def process_running(pid: int) -> bool:
    """Running and not a zombie (an exited child of ours that nobody waited for yet is
    reaped here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    if state not in {"Z", "X"}:
        return True
    with contextlib.suppress(ChildProcessError):  # started by us (`ensure_lxd`)
        os.waitpid(pid, os.WNOHANG)
    return False


def restart_lxd(settings: Settings) -> None:
    """Restart LXD so that it rereads /etc/subuid and /etc/subgid; VPSs keep running."""
    if has_systemd():
        run(["systemctl", "restart", "lxd"], what="restart lxd")
        return
    if lxd_answers(settings):
        stop_lxd_keeping_instances(settings)
    ensure_lxd(settings)


def ensure_dockerd(settings: Settings) -> DaemonStatus:
    """Start dockerd unless it answers already (needed by the density benchmark)."""
    if docker_answers():
        return DaemonStatus("dockerd", False, "answering")
    log_file = settings.log_dir / "dockerd.log"
    dockerd = require_tool("dockerd", package="docker.io")
    if has_systemd():
        run(["systemctl", "start", "docker"], what="start docker")
    else:
        _spawn([dockerd], log_file=log_file)
    _wait_until(docker_answers, seconds=60, what="dockerd", log_file=log_file)
    return DaemonStatus("dockerd", True, "started")
