"""Each offline image launches on the real LXD and its plan-style limits hold inside."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable

import pytest

from containervps.config import Settings
from containervps.lxd import Lxd

MEMORY_MIB = 256
# Root disk per image: big enough for the image, small enough to fill quickly.
DISK_MIB = {"busybox": 64, "debian-12": 1024}
WRITE_IOPS = 20
WRITES = 40  # at 20 iops: >= 2 s when enforced


def _launch(lxd: Lxd, settings: Settings, project: str, image: str) -> str:
    name = f"img-{image.replace('.', '')}"
    lxd.instances.create(
        name=name,
        project=project,
        image=image,
        profiles=[settings.profile],
        config={"limits.cpu": "1", "limits.memory": f"{MEMORY_MIB}MiB"},
        devices={
            "root": {
                "type": "disk",
                "path": "/",
                "pool": settings.storage_pool,
                "size": f"{DISK_MIB[image]}MiB",
                "limits.write": f"{WRITE_IOPS}iops",
            }
        },
        tags={"test": "images"},
        start=True,
    )
    return name


def _timed_direct_writes(lxd: Lxd, name: str, project: str) -> float:
    started = time.monotonic()
    res = lxd.instances.exec(
        name=name,
        project=project,
        command=[
            "dd",
            "if=/dev/zero",
            "of=/root/iops.test",
            "bs=4k",
            f"count={WRITES}",
            "oflag=direct",
        ],
    )
    assert res.exit_code == 0, res.stderr
    return time.monotonic() - started


@pytest.mark.parametrize("image", ["busybox", "debian-12"])
def test_image_runs_with_enforced_limits(
    image: str, ready_host: Lxd, settings: Settings, project_factory: Callable[[str], str]
) -> None:
    lxd = ready_host
    project = project_factory(f"img-{image}")
    name = _launch(lxd, settings, project, image)
    run = lambda *cmd: lxd.instances.exec(name=name, project=project, command=list(cmd))  # noqa: E731

    # It runs its own userland, and DHCP gave it an address on the platform's bridge.
    assert lxd.instances.get(name=name, project=project).status == "Running"
    os_release = run("cat", "/etc/os-release").stdout
    assert ("ID=busybox" if image == "busybox" else "ID=debian") in os_release
    address = ipaddress.IPv4Address(lxd.instances.wait_for_ipv4(name=name, project=project))
    bridge = lxd.host.get_network(settings.bridge)
    assert bridge is not None
    assert address in ipaddress.IPv4Interface(bridge.config["ipv4.address"]).network

    # free and nproc show the limits, not the host (lxcfs + cpuset).
    mem_line = next(ln for ln in run("free", "-m").stdout.splitlines() if ln.startswith("Mem:"))
    assert int(mem_line.split()[1]) == MEMORY_MIB
    assert run("nproc").stdout.strip() == "1"

    if image == "debian-12":  # a full OS: systemd up and sshd listening
        deadline = time.monotonic() + 60
        while ":22 " not in run("ss", "-ltn").stdout and time.monotonic() < deadline:
            time.sleep(0.5)
        assert ":22 " in run("ss", "-ltn").stdout

    # The IOPS limit slows direct writes; raising it live makes them fast again.
    throttled = _timed_direct_writes(lxd, name, project)
    assert throttled >= WRITES / WRITE_IOPS * 0.75
    lxd.instances.update(
        name=name,
        project=project,
        devices={
            "root": {
                "type": "disk",
                "path": "/",
                "pool": settings.storage_pool,
                "size": f"{DISK_MIB[image]}MiB",
                "limits.write": f"{WRITE_IOPS * 100}iops",
            }
        },
    )
    unthrottled = _timed_direct_writes(lxd, name, project)
    assert unthrottled < throttled / 2, (throttled, unthrottled)

    # The root-disk quota stops writes before they pass the disk size.
    fill = run("dd", "if=/dev/zero", "of=/root/fill", "bs=1M", f"count={DISK_MIB[image] * 2}")
    assert fill.exit_code != 0
    assert "space" in fill.stderr.lower() or "quota" in fill.stderr.lower(), fill.stderr
    written_mib = int(run("stat", "-c", "%s", "/root/fill").stdout.strip()) // 2**20
    assert written_mib <= DISK_MIB[image]

    # A VPS whose disk is full can still be deleted (LXD's post-stop chown may hit the quota).
    lxd.instances.delete(name=name, project=project)
    assert not lxd.instances.exists(name=name, project=project)
