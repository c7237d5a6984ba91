"""Full VMs for the density benchmark: QEMU with Debian's kernel, KVM where it works, else TCG."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from containervps.bench import memory
from containervps.bench.model import DensitySpec, InstanceRecord
from containervps.bench.vm_image import VmArtifacts, vm_artifacts
from containervps.bench.workload import READY_MARKER
from containervps.config import Settings
from containervps.errors import ContainerVpsError, HostSetupError, VmError
from containervps.services.host import qemu
from containervps.shell import spawn


def choose_accel(requested: str, *, probe_timeout: float) -> tuple[str, str]:
    """The accelerator to use and why: KVM only when a real boot probe succeeded."""
    if requested in ("kvm", "tcg"):
        return requested, "requested"
    probe = qemu.boot_probe(accel="kvm", timeout=probe_timeout)
    if probe.booted:
        return "kvm", probe.detail
    return "tcg", f"KVM unusable ({probe.detail}); software emulation"


def agent_call(sock_path: Path, command: str, *, timeout: float) -> str:
    """Send one line to the guest agent on the VM's second serial port; return its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(sock_path))
        sock.sendall(command.encode() + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(256)
            if not chunk:
                break
            answer += chunk
    return answer.decode(errors="replace").strip()


def run_processes(marker: str) -> list[int]:
    """Pids whose command line contains ``marker`` (QEMU processes named after the run)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if marker.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
    return pids


class VmRunner:
    """One QEMU process per instance, in its own memory cgroup, named after the run."""

    kind = "vm"

    def __init__(self, *, settings: Settings, spec: DensitySpec, rootfs: Path) -> None:
        self.settings = settings
        self.spec = spec
        self.rootfs = rootfs
        self.prefix = f"cvps-bench-{spec.run_id}-vm"
        self.cgroups = memory.BenchCgroup(f"cvps-bench-{spec.run_id}")
        self.workdir = Path(tempfile.mkdtemp(prefix=f"cvps-bench-{spec.run_id}-"))
        self.accel = "tcg"
        self.artifacts: VmArtifacts | None = None
        self._lock = threading.Lock()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    def prepare(self) -> dict[str, Any]:
        kernel = qemu.guest_kernel()
        version = qemu.qemu_version()
        if kernel is None or version is None:
            raise HostSetupError(
                "QEMU or a guest kernel is missing",
                resolution="apt-get install qemu-system-x86 linux-image-amd64",
            )
        self.accel, why = choose_accel(
            self.spec.accel, probe_timeout=self.settings.bench_kvm_probe_timeout
        )
        self.artifacts = vm_artifacts(
            cache_dir=self.settings.cache_dir / "bench-vm",
            rootfs=self.rootfs,
            workload=self.spec.workload,
            kernel=kernel,
        )
        return {
            "accelerator": self.accel,
            "accelerator_reason": why,
            "tcg_tb_mib": self.spec.tcg_tb_mib if self.accel == "tcg" else None,
            "qemu": version,
            "kernel": str(kernel),
            "disk": str(self.artifacts.disk),
            "initrd": str(self.artifacts.initrd),
            "rootfs": str(self.rootfs),
            "guest_changes": list(self.artifacts.guest_changes),
            "network": "none",
            "limits": {"memory_mib": self.spec.memory_mib, "vcpus": self.spec.vcpus},
            "ready_means": f"guest agent printed {READY_MARKER} on ttyS0",
        }

    def _command(self, name: str, vm_dir: Path) -> list[str]:
        assert self.artifacts is not None
        return [
            qemu.QEMU,
            "-name",
            f"{name},process={name}",
            "-accel",
            self.accel
            if self.accel != "tcg" or not self.spec.tcg_tb_mib
            else f"tcg,tb-size={self.spec.tcg_tb_mib}",
            "-m",
            str(self.spec.memory_mib),
            "-smp",
            str(self.spec.vcpus),
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-nic",
            "none",
            "-no-reboot",
            "-kernel",
            str(self.artifacts.kernel),
            "-initrd",
            str(self.artifacts.initrd),
            "-append",
            "console=ttyS0 quiet panic=-1",
            "-drive",
            f"file={self.artifacts.disk},if=virtio,format=raw,snapshot=on",
            "-serial",
            f"file:{vm_dir / 'console.log'}",
            "-serial",
            f"unix:{vm_dir / 'agent.sock'},server=on,wait=off",
        ]

    def launch(self, index: int, *, batch: int) -> InstanceRecord:
        name = f"{self.prefix}{index}"
        rec = InstanceRecord(kind=self.kind, index=index, name=name, batch=batch)
        vm_dir = self.workdir / f"vm{index}"
        vm_dir.mkdir()
        cgroup = self.cgroups.child(f"vm{index}")
        # The shell joins the cgroup, then becomes QEMU: every page QEMU touches is charged there.
        wrapper = ["/bin/sh", "-c", 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"', "sh"]
        command = (
            [*wrapper, str(cgroup), *self._command(name, vm_dir)]
            if cgroup
            else (self._command(name, vm_dir))
        )
        started = time.perf_counter()
        with self._lock:
            proc = spawn(
                command,
                log_file=vm_dir / "qemu.log",
                detach=True,
                env={**os.environ, "TMPDIR": str(vm_dir)},
            )
            self._procs[name] = proc
        rec.host_pids = [proc.pid]
        try:
            self._wait(proc, vm_dir, started, rec)
        except ContainerVpsError as exc:
            rec.error = exc.one_line()
        return rec

    def _wait(
        self, proc: subprocess.Popen[bytes], vm_dir: Path, started: float, rec: InstanceRecord
    ) -> None:
        console = vm_dir / "console.log"
        while True:
            if proc.poll() is not None:
                tail = (vm_dir / "qemu.log").read_text(errors="replace").strip()[-300:]
                raise VmError(f"QEMU exited with {proc.returncode}: {tail or 'no output'}")
            if rec.running_s is None and (vm_dir / "agent.sock").exists():
                rec.running_s = time.perf_counter() - started
            if console.exists() and READY_MARKER.encode() in console.read_bytes():
                rec.ready_s = time.perf_counter() - started
                return
            if time.perf_counter() - started > self.spec.boot_timeout:
                raise VmError(f"guest not ready within {self.spec.boot_timeout:.0f}s")
            time.sleep(0.1)

    def _sock(self, rec: InstanceRecord) -> Path:
        return self.workdir / f"vm{rec.index}" / "agent.sock"

    def _call(self, rec: InstanceRecord, command: str, expect: str, *, timeout: float) -> float:
        started = time.perf_counter()
        answer = agent_call(self._sock(rec), command, timeout=timeout)
        if answer != expect:
            raise VmError(f"agent in {rec.name} answered {answer!r} to {command!r}")
        return time.perf_counter() - started

    def cgroup(self, rec: InstanceRecord) -> Path | None:
        path = self.cgroups.path / f"vm{rec.index}"
        return path if path.is_dir() else None

    def probe(self, rec: InstanceRecord) -> float:
        return self._call(rec, "ping", "pong", timeout=60)

    def cpu_job(self, rec: InstanceRecord, *, loops: int) -> float:
        return self._call(rec, f"cpu {loops}", "done", timeout=1800) - self.probe(rec)

    def iops(self, rec: InstanceRecord, *, writes: int) -> dict[str, Any] | None:
        return None  # the VM disk is a throw-away snapshot overlay; not comparable

    def start_activity(self, rec: InstanceRecord) -> None:
        self._call(rec, "active", "ok", timeout=60)

    def console_log(self, index: int) -> Path:
        return self.workdir / f"vm{index}" / "console.log"

    def cleanup(self) -> list[str]:
        removed = []
        with self._lock:
            procs = dict(self._procs)
        for name, proc in procs.items():
            if proc.poll() is None:
                proc.terminate()
            removed.append(f"qemu:{name}")
        deadline = time.monotonic() + 10
        for proc in procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        for pid in run_processes(self.prefix):  # anything of this run we lost track of
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                removed.append(f"qemu-pid:{pid}")
        self.cgroups.remove()
        shutil.rmtree(self.workdir, ignore_errors=True)
        return removed
