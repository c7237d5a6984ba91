"""VM boot artifacts made from the same rootfs as the container image.

* ``disk.img``: an ext4 image of the image build's rootfs, plus the bench agent (the only
  change: it prints the readiness marker and answers probes on the second serial port; the
  busybox guest's DHCP client is dropped because the VM has no NIC).
* ``initrd.cpio.gz``: a tiny initramfs (busybox + the host kernel's virtio/ext4 modules) that
  mounts ``/dev/vda`` and hands over to the guest's own ``/sbin/init``. Debian's own initrd would
  also work but unpacks ~100 MiB into every guest's RAM.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from containervps.bench.workload import VM_AGENT
from containervps.errors import HostSetupError
from containervps.shell import require_tool, run, run_bytes

VM_BUILDER_VERSION = 1
ROOT_MODULES = ("virtio_pci", "virtio_blk", "crc32c_generic", "ext4")

INIT = """#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.order); do insmod "/modules/$m" 2>/dev/null; done
i=0
while [ ! -b /dev/vda ] && [ "$i" -lt 200 ]; do sleep 0.05; i=$((i+1)); done
mkdir -p /newroot
if ! mount -t ext4 /dev/vda /newroot; then
  echo "CVPS-INITRD: cannot mount /dev/vda" > /dev/ttyS0
  poweroff -f
fi
for d in dev proc sys; do mkdir -p "/newroot/$d"; mount --move "/$d" "/newroot/$d"; done
exec switch_root /newroot /sbin/init
"""

AGENT_UNIT = """[Unit]
Description=containervps density benchmark agent
After=ssh.service

[Service]
ExecStart=/usr/local/sbin/cvps-bench-agent ssh
Restart=always

[Install]
WantedBy=multi-user.target
"""


@dataclass(frozen=True)
class VmArtifacts:
    disk: Path
    initrd: Path
    kernel: Path
    guest_changes: tuple[str, ...]


def module_order(
    release: str, wanted: tuple[str, ...], *, modules_dir: Path = Path("/lib/modules")
) -> list[str]:
    """Module files (relative to /lib/modules/<release>) in load order, dependencies first."""
    base = modules_dir / release
    deps: dict[str, list[str]] = {}
    for line in (base / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
    by_name = {Path(p).name.split(".ko")[0].replace("-", "_"): p for p in deps}
    ordered: list[str] = []

    def visit(path: str) -> None:
        for dep in deps.get(path, []):
            visit(dep)
        if path not in ordered:
            ordered.append(path)

    for name in wanted:
        if name in by_name:  # absent: built into the kernel
            visit(by_name[name])
    return ordered


def _cpio_gz(source: Path, target: Path) -> None:
    files = run_bytes(["find", ".", "-mindepth", "1"], what=f"list {source}", cwd=source)
    archive = run_bytes(
        ["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"],
        what=f"pack {source}",
        cwd=source,
        input_bytes=files,
    )
    target.write_bytes(gzip.compress(archive, compresslevel=6))


def build_initrd(kernel: Path, target: Path) -> None:
    """A busybox initramfs that loads the root-disk modules of ``kernel`` and switches root."""
    release = kernel.name.removeprefix("vmlinuz-")
    busybox = Path(require_tool("busybox", package="busybox-static")).resolve()
    with tempfile.TemporaryDirectory(prefix="cvps-initrd-") as scratch:
        root = Path(scratch)
        for d in ("bin", "proc", "sys", "dev", "modules", "newroot"):
            (root / d).mkdir()
        shutil.copy2(busybox, root / "bin/busybox")
        for applet in ("sh", "mount", "insmod", "switch_root", "sleep", "mkdir", "cat", "poweroff"):
            (root / "bin" / applet).symlink_to("busybox")
        order = []
        for rel in module_order(release, ROOT_MODULES):
            src = Path("/lib/modules") / release / rel
            if not rel.endswith(".ko"):
                raise HostSetupError(f"compressed kernel module {src} is not supported")
            shutil.copy2(src, root / "modules" / src.name)
            order.append(src.name)
        (root / "modules.order").write_text("\n".join(order) + "\n")
        (root / "init").write_text(INIT)
        (root / "init").chmod(0o755)
        _cpio_gz(root, target)


def _add_agent(root: Path, workload: str) -> list[str]:
    """Install the bench agent in a copy of the rootfs; return what was changed."""
    agent = root / "usr/local/sbin/cvps-bench-agent"
    agent.parent.mkdir(parents=True, exist_ok=True)
    agent.write_text(VM_AGENT)
    agent.chmod(0o755)
    changes = ["added /usr/local/sbin/cvps-bench-agent (readiness marker, probe loop on ttyS1)"]
    inittab = root / "etc/inittab"
    if workload != "debian-12" and inittab.exists():
        lines = [ln for ln in inittab.read_text().splitlines() if "udhcpc" not in ln]
        lines.append("::respawn:/usr/local/sbin/cvps-bench-agent")
        inittab.write_text("\n".join(lines) + "\n")
        changes.append("inittab: udhcpc dropped (no NIC in the VM), agent respawned by init")
    else:
        units = root / "etc/systemd/system"
        (units / "cvps-bench-agent.service").write_text(AGENT_UNIT)
        wants = units / "multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        (wants / "cvps-bench-agent.service").symlink_to("../cvps-bench-agent.service")
        changes.append("systemd unit cvps-bench-agent.service (marker once sshd listens)")
    return changes


def _du_bytes(path: Path) -> int:
    out = run(["du", "-sb", str(path)], what="measure rootfs size")
    return int(out.split()[0])


def build_disk(rootfs: Path, workload: str, target: Path) -> list[str]:
    """An ext4 image of a copy of ``rootfs`` with the agent added."""
    require_tool("mkfs.ext4", package="e2fsprogs")
    with tempfile.TemporaryDirectory(prefix="cvps-vmroot-", dir=target.parent) as scratch:
        root = Path(scratch) / "root"
        run(["cp", "-a", str(rootfs), str(root)], what="copy rootfs for the VM disk")
        changes = _add_agent(root, workload)
        size_mib = int(_du_bytes(root) * 1.4 / 2**20) + 64
        run(
            [
                "mkfs.ext4",
                "-q",
                "-F",
                "-L",
                "cvpsroot",
                "-d",
                str(root),
                str(target),
                f"{size_mib}M",
            ],
            what="make the VM's ext4 disk",
        )
    return changes


def vm_artifacts(*, cache_dir: Path, rootfs: Path, workload: str, kernel: Path) -> VmArtifacts:
    """Build (or reuse) the disk and initramfs for ``workload`` from ``rootfs``."""
    key = hashlib.sha256(
        f"{workload}|{rootfs.resolve()}|{kernel}|{VM_BUILDER_VERSION}|{VM_AGENT}|{INIT}".encode()
    ).hexdigest()[:16]
    final = cache_dir / f"{workload}-{key}"
    if not (final / "done").exists():
        final.mkdir(parents=True, exist_ok=True)
        made = build_disk(rootfs, workload, final / "disk.img")
        build_initrd(kernel, final / "initrd.cpio.gz")
        (final / "changes.txt").write_text("\n".join(made) + "\n")
        (final / "done").write_text("ok\n")
    changes = tuple((final / "changes.txt").read_text().splitlines())
    return VmArtifacts(
        disk=final / "disk.img",
        initrd=final / "initrd.cpio.gz",
        kernel=kernel,
        guest_changes=changes,
    )
