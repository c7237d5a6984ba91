"""Detecting what full VMs can use on this host: QEMU, KVM or TCG, and a guest kernel."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from containervps.shell import probe

QEMU = "qemu-system-x86_64"


@dataclass(frozen=True)
class BootProbe:
    accel: str  # "kvm" or "tcg"
    booted: bool
    seconds: float
    detail: str


def guest_kernel() -> Path | None:
    """The newest Debian kernel image on the host (linux-image-amd64), if any."""
    kernels = sorted(Path("/boot").glob("vmlinuz-*"))
    return kernels[-1] if kernels else None


def qemu_version() -> str | None:
    if shutil.which(QEMU) is None:
        return None
    out = probe([QEMU, "--version"])
    return out.stdout.splitlines()[0] if out.stdout else None


def boot_probe(*, accel: str, timeout: float) -> BootProbe:
    """Boot the host's kernel (no root fs) under ``accel`` and see that it prints its banner.

    The kernel panics without a root file system, which -no-reboot turns into an exit; a
    hypervisor that hangs (nested KVM on some machine types) is caught by the timeout.
    """
    kernel = guest_kernel()
    if shutil.which(QEMU) is None or kernel is None:
        return BootProbe(accel, False, 0.0, "qemu-system-x86 or linux-image-amd64 missing")
    if accel == "kvm" and not Path("/dev/kvm").exists():
        return BootProbe(accel, False, 0.0, "/dev/kvm does not exist")
    cmd = [
        QEMU,
        "-accel",
        accel,
        "-m",
        "256",
        "-nographic",
        "-no-reboot",
        "-nodefaults",
        "-serial",
        "stdio",
        "-kernel",
        str(kernel),
        "-append",
        "console=ttyS0 panic=-1 loglevel=4",
    ]
    started = time.monotonic()
    done = probe(cmd, timeout=timeout)  # a hang is killed at the timeout
    seconds = time.monotonic() - started
    text = done.stdout + done.stderr
    booted = "Kernel panic" in text or "VFS:" in text or "Run /init" in text
    if booted:
        return BootProbe(
            accel, True, seconds, f"kernel booted to its first panic in {seconds:.1f}s"
        )
    last = text.strip().splitlines()[-1:] or ["no output"]
    reason = f"no boot within {timeout:.0f}s" if seconds >= timeout else f"failed: {last[0]}"
    return BootProbe(accel, False, seconds, reason)
