"""lxcfs killed while servers run -> the API's watchdog restarts it and re-attaches the views.

Kills the shared lxcfs (hold /tmp/cvps-itest.lock): lxcfs is always running again at the end,
and every container of the host, the platform's or not, has its views re-attached.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from containervps.api.app import create_app
from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server
from containervps.lxd import Lxd
from containervps.services.host import daemons, lxcfs_mounts
from containervps.services.host.lxcfs_watchdog import lxcfs_device, repair_lxcfs
from tests.integration.api_support import make_tenant, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")

KILLS = int(os.environ.get("CVPS_TEST_LXCFS_KILLS", "3"))  # SIGKILL and SIGTERM in turn
REPAIR_WAIT = 30.0  # seconds; the repair is expected within a few (printed)


def _lxcfs_pid() -> int:
    """The lxcfs serving /var/lib/lxcfs (other lxcfs instances on the host are left alone)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if args and Path(args[0].decode()).name == "lxcfs" and b"/var/lib/lxcfs" in args:
            return int(cmdline.parent.name)
    raise AssertionError("no lxcfs serving /var/lib/lxcfs")


def _read(lxd: Lxd, server: Server, path: str) -> str:
    result = lxd.instances.exec(
        name=server.lxd_name, project=server.lxd_project, command=["cat", path], timeout=20
    )
    return result.stdout if result.exit_code == 0 else f"ERROR {result.stderr.strip()}"


def _mem_total_mib(meminfo: str) -> int:
    line = next(x for x in meminfo.splitlines() if x.startswith("MemTotal:"))
    return int(line.split()[1]) // 1024


def _uptime(lxd: Lxd, server: Server) -> float:
    return float(_read(lxd, server, "/proc/uptime").split()[0])


def test_lxcfs_killed_is_restarted_and_views_reattached_without_reboot(
    cp_settings: Settings, ready_host: Lxd
) -> None:
    lxd = ready_host
    t = make_tenant(cp_settings, lxd, "lxcfs")
    devices: set[str] = set()  # of the lxcfs mounts killed here
    try:
        with TestClient(create_app()) as client:
            ids = []
            for name, image in (("bb", "busybox"), ("deb", "debian-12")):
                r = client.post(
                    "/v1/servers",
                    json={"name": name, "plan": "nano", "image": image},
                    headers=t.headers,
                )
                assert r.status_code == 202, r.text
                assert wait_action(client, r.json()["action"]["id"], t.headers)["status"] == (
                    "success"
                )
                ids.append(r.json()["server"]["id"])
            with session_scope(cp_settings) as session:
                servers = list(session.exec(select(Server).where(Server.tenant_id == t.id)).all())
            inits = {
                s.id: lxd.instances.state(name=s.lxd_name, project=s.lxd_project).pid
                for s in servers
            }
            for s in servers:  # the plan, not the host (24 GiB), before any fault
                assert _mem_total_mib(_read(lxd, s, "/proc/meminfo")) == s.memory_mib
            for kill in range(KILLS):
                sig = signal.SIGKILL if kill % 2 == 0 else signal.SIGTERM
                uptimes = {s.id: _uptime(lxd, s) for s in servers}
                devices.add(str(lxcfs_device()))
                pid = _lxcfs_pid()
                os.kill(pid, sig)
                killed = time.monotonic()
                _wait_gone(pid)  # its FUSE connection is cut when it has exited
                # What a process inside sees right away (through the container's own mounts).
                dead = 0
                for s in servers:
                    try:
                        Path(f"/proc/{inits[s.id]}/root/proc/meminfo").read_text()
                    except OSError as exc:
                        dead += exc.errno == errno.ENOTCONN
                assert dead == len(servers), "the views did not die with lxcfs"
                waited = _wait_until_readable(lxd, servers)
                print(
                    f"\nkill {kill + 1}/{KILLS} ({sig.name}): /proc readable again in "
                    f"{waited - killed:.2f}s in {len(servers)} servers"
                )
                for s in servers:
                    meminfo = _read(lxd, s, "/proc/meminfo")
                    assert _mem_total_mib(meminfo) == s.memory_mib, meminfo[:200]
                    assert "processor" in _read(lxd, s, "/proc/cpuinfo")
                    assert _uptime(lxd, s) >= uptimes[s.id]  # not restarted: uptime went on
                    state = lxd.instances.state(name=s.lxd_name, project=s.lxd_project)
                    assert state.status == "Running"
                    assert state.pid == inits[s.id]  # same init: no reboot
                    assert not lxcfs_mounts.dead_views(state.pid)
            for sid in ids:
                events = client.get(f"/v1/servers/{sid}/events", headers=t.headers).json()
                repaired = [e for e in events["events"] if e["type"] == "server.lxcfs_repaired"]
                assert len(repaired) == KILLS, events
            # Every mount namespace of the Debian server (systemd's services have their own).
            deb = next(s for s in servers if s.name == "deb")
            (containers,) = [c for c in lxcfs_mounts.running_containers() if c.name == deb.lxd_name]
            assert len(containers.pids) > 1
            assert all(not lxcfs_mounts.dead_views(p) for p in containers.pids)
    finally:
        daemons.ensure_lxcfs(cp_settings)
        # Containers of others on this host lost their views too (not those of another lxcfs).
        left = repair_lxcfs(cp_settings, all_containers=True, devices=devices)
        print(f"cleanup: {len(left.repaired)} other containers re-attached")


def _wait_gone(pid: int) -> None:
    """Until every thread of lxcfs has exited (its FUSE device is closed with the last one)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        states = []
        for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
            try:
                states.append(stat.read_text().rsplit(")", 1)[1].split()[0])
            except OSError:
                continue
        if all(st in {"Z", "X"} for st in states) and not daemons.lxcfs_active():
            return
        time.sleep(0.005)
    raise AssertionError(f"lxcfs {pid} still running 10s after the signal")


def _wait_until_readable(lxd: Lxd, servers: list[Server]) -> float:
    """The moment /proc/meminfo read in every server again (the watchdog's work)."""
    deadline = time.monotonic() + REPAIR_WAIT
    pending = list(servers)
    while pending and time.monotonic() < deadline:
        pending = [s for s in pending if _read(lxd, s, "/proc/meminfo").startswith("ERROR")]
        if pending:
            time.sleep(0.1)
    assert not pending, [s.name for s in pending]
    return time.monotonic()
