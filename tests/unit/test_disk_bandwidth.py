"""Disk bandwidth limits written into a container's blkio cgroup (a fake cgroup tree)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from containervps.config import Settings
from containervps.db.models import Server
from containervps.lxd import StoragePoolInfo
from containervps.services.servers import bandwidth


def _lxd(source: str) -> Any:
    pool = StoragePoolInfo(name="p", driver="btrfs", config={"source": source})
    return SimpleNamespace(host=SimpleNamespace(get_pool=lambda name: pool))


def _server(read: int, write: int, *, enforced: bool = True) -> Server:
    def entry(value: int) -> dict[str, Any]:
        return {"value": value, "unit": "MB/s", "enforced": enforced}

    return Server(
        id=7,
        tenant_id=1,
        name="web",
        plan="nano",
        image="busybox",
        status="running",
        lxd_project="cvps-t-1",
        lxd_name="web",
        vcpus=1,
        memory_mib=256,
        disk_gib=2,
        processes=256,
        limits={"disk_read_mb_s": entry(read), "disk_write_mb_s": entry(write)},
    )


def test_limits_are_written_once_for_the_pool_device(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, cgroup_root=tmp_path / "cg")
    server = _server(50, 25)
    directory = bandwidth.cgroup_dir(settings, server)
    directory.mkdir(parents=True)
    for name in bandwidth.FILES.values():
        (directory / name).write_text("")
    rdev = os.stat("/dev/null").st_rdev  # a device node stands in for the pool's disk
    device = f"{os.major(rdev)}:{os.minor(rdev)}"
    lxd = _lxd("/dev/null")

    assert bandwidth.apply(settings, lxd, server, pool="p") is True
    assert (directory / bandwidth.FILES["read"]).read_text() == f"{device} 50000000\n"
    assert (directory / bandwidth.FILES["write"]).read_text() == f"{device} 25000000\n"
    assert bandwidth.apply(settings, lxd, server, pool="p") is False  # held: nothing written
    assert bandwidth.apply(settings, lxd, _server(60, 25), pool="p") is True  # a resize


def test_nothing_is_written_without_a_cgroup_or_when_not_enforced(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, cgroup_root=tmp_path / "cg")
    assert bandwidth.apply(settings, _lxd("/dev/null"), _server(50, 25), pool="p") is False
    unenforced = _server(50, 25, enforced=False)
    assert bandwidth.wanted(unenforced.limits) is None
    assert bandwidth.wanted({}) is None  # a server whose limits block predates bandwidth
    support = bandwidth.bandwidth_support(settings)  # no blkio hierarchy under tmp_path
    assert support.enforced is False and "blkio" in support.reason


def test_a_loop_file_pool_resolves_to_its_loop_device(tmp_path: Path) -> None:
    loop = tmp_path / "block" / "loop3"
    (loop / "loop").mkdir(parents=True)
    (loop / "loop" / "backing_file").write_text("/var/lib/lxd/disks/p.img\n")
    (loop / "dev").write_text("7:3\n")
    lxd = _lxd("/var/lib/lxd/disks/p.img")
    assert bandwidth.pool_device(lxd, "p", sys_block=tmp_path / "block") == "7:3"
    assert bandwidth.pool_device(_lxd(""), "p", sys_block=tmp_path / "block") is None
