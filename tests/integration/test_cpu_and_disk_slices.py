"""The CPU and disk slices a plan states, measured on the real LXD with busy neighbours."""

from __future__ import annotations

import math
import os
import re
import statistics
import time
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from containervps.config import Settings
from containervps.lxd import Lxd
from containervps.services.reconcile.reconciler import Reconciler
from containervps.services.servers.bandwidth import pool_device
from tests.integration.api_support import ApiTenant, make_tenant, server_project, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")

NEIGHBOURS = 3  # with the victim: 4 busy 1-vCPU servers, two per core on a 2-core host
LOOP = 400_000  # shell loop iterations of the victim's job (about half a second alone)
BURN_SECONDS = 60  # neighbours' burners stop by themselves after this
TOLERANCE = 0.20
DIRECT_MIB = 60


def _cpuset(settings: Settings, project: str, name: str) -> set[int]:
    text = settings.cgroup_root / "cpuset" / f"lxc.payload.{project}_{name}" / "cpuset.cpus"
    cpus: set[int] = set()
    for part in text.read_text().strip().split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def _pins(settings: Settings) -> Counter[int]:
    """Running containers pinned to each host core (what LXD balances)."""
    pins: Counter[int] = Counter()
    for cg in (settings.cgroup_root / "cpuset").glob("lxc.payload.*/cpuset.cpus"):
        project, _, name = cg.parent.name.removeprefix("lxc.payload.").partition("_")
        pins.update(_cpuset(settings, project, name))
    return pins


def _sh(lxd: Lxd, project: str, name: str, script: str) -> str:
    result = lxd.instances.exec(name=name, project=project, command=["sh", "-c", script])
    assert result.ok, (script, result.stdout, result.stderr)
    return result.stdout + result.stderr


def _timed(lxd: Lxd, project: str, name: str, script: str) -> float:
    """Wall seconds of ``script`` inside, from busybox ``time``."""
    out = _sh(lxd, project, name, f"time sh -c '{script}' 2>&1")
    match = re.search(r"real\s+(\d+)m\s*([\d.]+)s", out)
    assert match, out
    return int(match.group(1)) * 60 + float(match.group(2))


def _create(client: TestClient, tenant: ApiTenant, name: str) -> int:
    body = {"name": name, "plan": "nano", "image": "busybox"}
    r = client.post("/v1/servers", json=body, headers=tenant.headers)
    assert r.status_code == 202, r.text
    assert wait_action(client, r.json()["action"]["id"], tenant.headers)["status"] == "success"
    return int(r.json()["server"]["id"])


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:  # the cgroup goes away while the container restarts
        return ""


def _wait_bps(path: Path, expected: str, *, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = _read(path)
        if expected in held.splitlines():
            return held
        time.sleep(0.2)
    return _read(path)


def test_victim_keeps_its_cpu_share_and_disk_bandwidth_holds(
    client: TestClient, cp_settings: Settings, ready_host: Lxd
) -> None:
    lxd, s = ready_host, cp_settings
    tenant = make_tenant(s, lxd, "slices")
    names = ["victim", *(f"busy-{i}" for i in range(NEIGHBOURS))]
    ids: list[int] = []
    try:
        for name in names:
            ids.append(_create(client, tenant, name))
        shown = client.get(f"/v1/servers/{ids[0]}", headers=tenant.headers).json()["server"]
        limits = shown["limits"]
        assert "vcpus/ceil(R/C)" in limits["vcpus"]["guarantee"]
        project = server_project(s, tenant, "victim")
        inst = lxd.instances.get(name="victim", project=project)
        assert inst.config["limits.cpu"] == "1" and inst.config["limits.cpu.allowance"] == "100%"

        # --- CPU: the victim's job alone, then with every neighbour burning two threads.
        job = f"i=0; while [ $i -lt {LOOP} ]; do i=$((i+1)); done"
        alone = statistics.median(_timed(lxd, project, "victim", job) for _ in range(3))
        burner = f'timeout {BURN_SECONDS} sh -c "while :; do :; done" >/dev/null 2>&1 </dev/null &'
        for name in names[1:]:
            _sh(lxd, server_project(s, tenant, name), name, f"{burner} {burner} true")
        time.sleep(1)
        busy = statistics.median(_timed(lxd, project, "victim", job) for _ in range(3))
        share = alone / busy  # cores the single-threaded job got, as a share of one core
        pins, cores = _pins(s), os.cpu_count() or 1
        running_vcpus = sum(pins.values())
        floor = 1 / math.ceil(running_vcpus / cores)  # the stated guarantee for 1 vCPU
        mine = _cpuset(s, project, "victim")
        sharing = sum(1 for n in names if mine & _cpuset(s, server_project(s, tenant, n), n))
        nproc = _sh(lxd, project, "victim", "nproc").strip()
        print(
            f"\nCPU: victim job alone {alone:.2f}s, with {NEIGHBOURS} busy neighbours {busy:.2f}s"
            f" = {share:.2f} of a core; guarantee {floor:.2f} (R={running_vcpus} running vCPUs,"
            f" C={cores}); busy servers on its core {sharing}; pins per core {dict(pins)};"
            f" nproc inside {nproc}"
        )
        # LXD spreads pins by count: no core carries more than ceil(R/C).
        assert max(pins.values()) <= math.ceil(running_vcpus / cores)
        assert nproc == "1"
        assert share >= floor * (1 - TOLERANCE), (share, floor)
        assert share <= 1 + TOLERANCE  # at most its one vCPU

        # --- Disk: the plan's write bandwidth holds for direct writes.
        write_mb_s = limits["disk_write_mb_s"]["value"]
        assert limits["disk_write_mb_s"]["enforced"] is True
        assert "buffered writeback is not throttled" in limits["disk_write_mb_s"]["reason"]
        device = pool_device(lxd, inst.devices["root"]["pool"])
        assert device is not None
        cg = s.cgroup_root / "blkio" / f"lxc.payload.{project}_victim"
        wanted = f"{device} {write_mb_s * 10**6}"
        assert wanted in _wait_bps(cg / "blkio.throttle.write_bps_device", wanted).splitlines()
        direct = f"dd if=/dev/zero of=/direct bs=1M count={DIRECT_MIB} oflag=direct 2>/dev/null"
        seconds = _timed(lxd, project, "victim", direct)
        buffered_s = _timed(lxd, project, "victim", "dd if=/dev/zero of=/buf bs=1M count=100")
        _sh(lxd, project, "victim", "rm -f /direct /buf")
        rate = DIRECT_MIB * 2**20 / 10**6 / seconds
        print(
            f"disk: direct 1 MiB writes {rate:.1f} MB/s at a {write_mb_s} MB/s limit; buffered"
            f" writes {100 * 2**20 / 10**6 / buffered_s:.0f} MB/s (page cache, not throttled)"
        )
        assert rate <= write_mb_s * (1 + TOLERANCE), (rate, write_mb_s)

        # A reboot from inside makes a new cgroup without the limits; the reconciler repairs it.
        _sh(lxd, project, "victim", "reboot")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            lxd.instances.get(name="victim", project=project).status != "Running"
            or not cg.is_dir()
            or wanted in _read(cg / "blkio.throttle.write_bps_device")
        ):
            time.sleep(0.5)
        assert wanted not in _read(cg / "blkio.throttle.write_bps_device")
        findings = Reconciler(s, lxd).run()
        assert any(f.kind == "host_limits" and f.target == f"server:{ids[0]}" for f in findings)
        assert wanted in (cg / "blkio.throttle.write_bps_device").read_text().splitlines()
    finally:
        for sid in ids:
            r = client.delete(f"/v1/servers/{sid}", headers=tenant.headers)
            if r.status_code == 202:
                wait_action(client, r.json()["action"]["id"], tenant.headers)
