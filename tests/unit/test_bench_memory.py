"""Host memory parsing and the VM initramfs module order (no root or QEMU needed)."""

from __future__ import annotations

import os
from pathlib import Path

from containervps.bench import memory
from containervps.bench.vm_image import module_order

MEMINFO = """MemTotal:       24683520 kB
MemFree:        23000000 kB
MemAvailable:   24000000 kB
HugePages_Total:       0
"""


def test_used_memory_is_total_minus_available(tmp_path: Path) -> None:
    path = tmp_path / "meminfo"
    path.write_text(MEMINFO)
    mem = memory.host_memory(path)
    assert mem.used_bytes == (24683520 - 24000000) * 1024
    assert memory.meminfo(path)["HugePages_Total"] == 0


def test_own_process_has_pss_parent_and_cgroup() -> None:
    pid = os.getpid()
    assert (memory.pss_bytes(pid) or 0) > 0
    assert memory.parent_pid(pid) == os.getppid()
    assert memory.pss_bytes(2**22 + 7) is None  # no such process


def test_module_order_puts_dependencies_first(tmp_path: Path) -> None:
    release = tmp_path / "6.1.0-test"
    release.mkdir()
    (release / "modules.dep").write_text(
        "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/jbd2/jbd2.ko\n"
        "kernel/lib/crc16.ko:\n"
        "kernel/fs/jbd2/jbd2.ko:\n"
        "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko\n"
        "kernel/drivers/virtio/virtio.ko:\n"
    )
    order = module_order("6.1.0-test", ("virtio_blk", "ext4", "virtio_pci"), modules_dir=tmp_path)
    assert order == [
        "kernel/drivers/virtio/virtio.ko",
        "kernel/drivers/block/virtio_blk.ko",
        "kernel/lib/crc16.ko",
        "kernel/fs/jbd2/jbd2.ko",
        "kernel/fs/ext4/ext4.ko",
    ]


def test_a_systemd_containers_memory_is_its_whole_payload_cgroup() -> None:
    root = memory.CGROUP_V1_MEMORY
    leaf = root / "lxc.payload.p_web" / "init.scope"
    assert memory.enclosing_cgroup(leaf, prefix="lxc.payload.") == root / "lxc.payload.p_web"
    flat = root / "lxc.payload.p_bb"  # busybox: init sits in the container's own cgroup
    assert memory.enclosing_cgroup(flat, prefix="lxc.payload.") == flat
    other = root / "system.slice" / "x.service"
    assert memory.enclosing_cgroup(other, prefix="lxc.payload.") == other
    assert memory.enclosing_cgroup(None, prefix="lxc.payload.") is None
