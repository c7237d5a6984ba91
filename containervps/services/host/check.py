"""`containervps host check`: probe, for real, what this host can enforce for tenants.

Each probe applies the capability to a scratch container (or runs the tool) and verifies the
effect; the scratch container is always deleted.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from containervps.config import Settings
from containervps.errors import ContainerVpsError
from containervps.lxd import Lxd, connect
from containervps.services.host import daemons, qemu
from containervps.services.host.capabilities import egress_refusal
from containervps.services.host.setup import IDMAP_SIZE
from containervps.shell import probe

log = logging.getLogger(__name__)

Status = Literal["ok", "degraded", "missing", "skipped"]

PROBE_MEMORY_MIB = 128
PROBE_DISK_MIB = 48
PROBE_POOL_MIB = 128  # the scratch container gets its own pool, as every server does
PROBE_WRITE_IOPS = 20
PROBE_WRITES = 40  # at 20 iops: about 2 s when the limit holds
PROBE_INGRESS_MBIT = 8
# LXD lets a 1 MiB burst through at line rate; 4 MiB at 8 Mbit/s then takes about 3 s, while an
# unlimited veth moves it in milliseconds.
PROBE_TRANSFER_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Probe:
    name: str
    status: Status
    detail: str
    impact: str = ""  # what a missing/degraded capability means for tenants


class HostCheck:
    """Runs every probe; never raises for a missing capability (it reports it)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def run(self) -> list[Probe]:
        probes: list[Probe] = []
        lxd = self._lxd(probes)
        probes.append(self._lxcfs_host())
        probes.append(self._subids())
        if lxd is not None:
            probes.append(self._bridge(lxd))
            probes.extend(self._scratch_probes(lxd))
        probes.extend(self._vm_probes())
        probes.append(self._docker())
        return probes

    def _lxd(self, probes: list[Probe]) -> Lxd | None:
        try:
            lxd = connect(self.settings)
            info = lxd.host.server_info()
        except ContainerVpsError as exc:
            probes.append(Probe("lxd", "missing", exc.one_line(), "no VPS can be created"))
            return None
        probes.append(Probe("lxd", "ok", f"LXD {info.version}, kernel {info.kernel_version}"))
        return lxd

    def _lxcfs_host(self) -> Probe:
        if daemons.lxcfs_active():
            return Probe("lxcfs", "ok", f"mounted on {daemons.LXCFS_DIR}")
        return Probe(
            "lxcfs",
            "missing",
            "not mounted",
            "free/top/nproc inside a VPS show the host's totals, not the plan",
        )

    def _subids(self) -> Probe:
        try:
            lines = Path("/etc/subuid").read_text().splitlines()
            line = next(ln for ln in lines if ln.startswith("root:"))
        except (OSError, StopIteration):
            return Probe(
                "subuid range",
                "missing",
                "no root entry in /etc/subuid",
                "LXD falls back to a small id map; isolated idmaps are impossible",
            )
        count = int(line.split(":")[2])
        fits = count // IDMAP_SIZE - 1
        status: Status = "ok" if fits >= self.settings.max_containers else "degraded"
        return Probe(
            "subuid range",
            status,
            f"{count} ids: {fits} isolated containers (host sized for "
            f"{self.settings.max_containers})",
            "" if status == "ok" else "creates fail past that count; run host init",
        )

    def _bridge(self, lxd: Lxd) -> Probe:
        net = lxd.host.get_network(self.settings.bridge)
        if net is None:
            return Probe(
                "bridge",
                "missing",
                f"{self.settings.bridge} does not exist",
                "VPSs get no network; run `containervps host init`",
            )
        iface = ipaddress.IPv4Interface(net.config.get("ipv4.address", "0.0.0.0/32"))
        return Probe(
            "bridge", "ok", f"{net.name} {iface}: {iface.network.num_addresses - 3} VPS addresses"
        )

    # --- probes on a scratch container -------------------------------------------------
    def _scratch_probes(self, lxd: Lxd) -> list[Probe]:
        s = self.settings
        pool = lxd.host.get_pool(s.storage_pool)
        if pool is None or lxd.images.by_alias("busybox") is None:
            why = "storage pool missing" if pool is None else "busybox image missing"
            return [
                Probe(name, "skipped", f"{why}: run host init and image build busybox")
                for name in (
                    "disk size view",
                    "disk size quota",
                    "disk IOPS limit",
                    "memory/CPU view",
                    "NIC ingress limit",
                    "NIC egress limit",
                )
            ]
        name = f"cvps-probe-{secrets.token_hex(3)}"
        try:
            lxd.host.create_pool(
                name=name,
                driver=pool.driver,
                config={"size": f"{PROBE_POOL_MIB}MiB"} if pool.driver == "btrfs" else {},
            )
            lxd.instances.create(
                name=name,
                project="default",
                image="busybox",
                profiles=[s.profile],
                config={"limits.memory": f"{PROBE_MEMORY_MIB}MiB", "limits.cpu": "1"},
                devices={
                    "root": {
                        "type": "disk",
                        "path": "/",
                        "pool": name,
                        "size": f"{PROBE_DISK_MIB}MiB",
                        "limits.write": f"{PROBE_WRITE_IOPS}iops",
                    },
                    "eth0": {
                        "type": "nic",
                        "network": s.bridge,
                        "name": "eth0",
                        "limits.ingress": f"{PROBE_INGRESS_MBIT}Mbit",
                    },
                },
                tags={"probe": "host-check"},
                start=True,
            )
            address = lxd.instances.wait_for_ipv4(name=name, project="default", timeout=30)
            return [
                self._disk_view(lxd, name),
                self._iops(lxd, name, pool.driver),
                self._disk_quota(lxd, name, pool.driver),
                self._memory_cpu_view(lxd, name),
                self._ingress(lxd, name, address),
                self._egress(lxd, name),
            ]
        except ContainerVpsError as exc:
            return [
                Probe(
                    "scratch container",
                    "missing",
                    exc.one_line(),
                    "VPS creation with plan limits fails on this host",
                )
            ]
        finally:
            lxd.instances.delete(name=name, project="default")
            lxd.host.delete_pool(name)

    def _disk_view(self, lxd: Lxd, name: str) -> Probe:
        df = lxd.instances.exec(name=name, project="default", command=["df", "-k", "/"])
        fields = df.stdout.splitlines()[-1].split() if df.ok else []
        shown = int(fields[1]) // 1024 if len(fields) > 1 and fields[1].isdigit() else 0
        if abs(shown - PROBE_POOL_MIB) <= PROBE_POOL_MIB * 0.02:
            return Probe(
                "disk size view",
                "ok",
                f"inside: df / shows {shown} MiB (its own {PROBE_POOL_MIB} MiB pool)",
            )
        return Probe(
            "disk size view",
            "missing",
            f"inside: df / shows {shown} MiB, not its {PROBE_POOL_MIB} MiB disk",
            "tenants see the host's disk size in df; sizes are still enforced if quota is ok",
        )

    def _iops(self, lxd: Lxd, name: str, driver: str) -> Probe:
        started = time.monotonic()
        res = lxd.instances.exec(
            name=name,
            project="default",
            command=[
                "dd",
                "if=/dev/zero",
                "of=/iops.test",
                "bs=4k",
                f"count={PROBE_WRITES}",
                "oflag=direct",
            ],
            timeout=60,
        )
        seconds = time.monotonic() - started
        lxd.instances.exec(name=name, project="default", command=["rm", "-f", "/iops.test"])
        expected = PROBE_WRITES / PROBE_WRITE_IOPS
        detail = (
            f"{PROBE_WRITES} direct 4k writes at {PROBE_WRITE_IOPS} iops took "
            f"{seconds:.1f}s (limit implies >= {expected * 0.75:.1f}s)"
        )
        if res.exit_code != 0:
            return Probe(
                "disk IOPS limit",
                "missing",
                f"dd failed: {res.stderr.strip()}",
                "noisy neighbours can saturate the disk",
            )
        if seconds >= expected * 0.75:
            return Probe("disk IOPS limit", "ok", f"{detail}; driver {driver}")
        return Probe(
            "disk IOPS limit",
            "missing",
            detail,
            "IOPS limits are not enforced: one VPS can slow its neighbours' disks",
        )

    def _disk_quota(self, lxd: Lxd, name: str, driver: str) -> Probe:
        fill_mib = PROBE_DISK_MIB * 2
        res = lxd.instances.exec(
            name=name,
            project="default",
            command=["dd", "if=/dev/zero", "of=/fill", "bs=1M", f"count={fill_mib}"],
            timeout=60,
        )
        size = (
            lxd.instances.exec(
                name=name, project="default", command=["stat", "-c", "%s", "/fill"]
            ).stdout.strip()
            or "0"
        )
        written = int(size) // 2**20
        lxd.instances.exec(name=name, project="default", command=["rm", "-f", "/fill"])
        if res.exit_code != 0 and written <= PROBE_DISK_MIB:
            return Probe(
                "disk size quota",
                "ok",
                f"{driver}: a {PROBE_DISK_MIB} MiB root disk stopped a "
                f"{fill_mib} MiB write at {written} MiB",
            )
        return Probe(
            "disk size quota",
            "missing",
            f"{driver}: wrote {written} MiB into a {PROBE_DISK_MIB} MiB root disk",
            "disk sizes are not enforced: a VPS can fill the host's pool",
        )

    def _memory_cpu_view(self, lxd: Lxd, name: str) -> Probe:
        free = lxd.instances.exec(name=name, project="default", command=["free", "-m"]).stdout
        nproc = lxd.instances.exec(name=name, project="default", command=["nproc"]).stdout.strip()
        total = next((int(ln.split()[1]) for ln in free.splitlines() if ln.startswith("Mem:")), 0)
        if total <= PROBE_MEMORY_MIB and nproc == "1":
            return Probe(
                "memory/CPU view",
                "ok",
                f"inside: free shows {total} MiB (limit {PROBE_MEMORY_MIB}), nproc {nproc}",
            )
        return Probe(
            "memory/CPU view",
            "degraded",
            f"inside: free shows {total} MiB (limit {PROBE_MEMORY_MIB}), nproc {nproc}",
            "limits hold, but tools in the VPS show the host's totals (lxcfs)",
        )

    def _ingress(self, lxd: Lxd, name: str, address: str) -> Probe:
        port = 5201
        lxd.instances.exec(
            name=name,
            project="default",
            command=["sh", "-c", f"nc -l -p {port} > /dev/null 2>&1 &"],
        )
        time.sleep(0.3)
        try:
            seconds = _send(address, port, PROBE_TRANSFER_BYTES, timeout=15)
        except OSError as exc:
            return Probe(
                "NIC ingress limit",
                "missing",
                f"transfer to the VPS failed: {exc}",
                "inbound bandwidth limits could not be verified",
            )
        mbit = PROBE_TRANSFER_BYTES * 8 / seconds / 1e6
        detail = (
            f"{PROBE_TRANSFER_BYTES >> 20} MiB host->VPS at {mbit:.1f} Mbit/s "
            f"(limit {PROBE_INGRESS_MBIT} Mbit/s)"
        )
        if mbit <= PROBE_INGRESS_MBIT * 2:
            return Probe("NIC ingress limit", "ok", detail)
        return Probe(
            "NIC ingress limit",
            "missing",
            detail,
            "inbound bandwidth is not limited: a VPS can take the host's link",
        )

    def _egress(self, lxd: Lxd, name: str) -> Probe:
        reason = egress_refusal(lxd, name=name, project="default", network=self.settings.bridge)
        if reason is not None:
            return Probe(
                "NIC egress limit",
                "missing",
                f"LXD refused limits.egress: {reason}",
                "outbound bandwidth of a VPS cannot be limited on this kernel; plans "
                "show their egress limit as not enforced",
            )
        return Probe("NIC egress limit", "ok", "limits.egress accepted by LXD and the kernel")

    # --- VMs and Docker -------------------------------------------------------------------
    def _vm_probes(self) -> list[Probe]:
        version = qemu.qemu_version()
        if version is None:
            return [
                Probe(
                    "qemu",
                    "missing",
                    "qemu-system-x86_64 not installed",
                    "the density benchmark cannot compare against full VMs",
                )
            ]
        kvm = qemu.boot_probe(accel="kvm", timeout=20)
        probes = [Probe("qemu", "ok", version)]
        if kvm.booted:
            probes.append(Probe("kvm", "ok", kvm.detail))
            return probes
        probes.append(
            Probe(
                "kvm",
                "missing",
                kvm.detail,
                "full VMs run under TCG (software emulation), far slower than KVM",
            )
        )
        tcg = qemu.boot_probe(accel="tcg", timeout=60)
        probes.append(
            Probe(
                "tcg",
                "ok" if tcg.booted else "missing",
                tcg.detail,
                "" if tcg.booted else "no full VMs on this host",
            )
        )
        return probes

    def _docker(self) -> Probe:
        if shutil.which("docker") is None or shutil.which("dockerd") is None:
            return Probe(
                "docker",
                "missing",
                "docker.io not installed",
                "the density benchmark cannot compare against app containers",
            )
        out = probe(["docker", "version", "--format", "{{.Server.Version}}"], timeout=20)
        if not out.ok:
            return Probe(
                "docker",
                "degraded",
                "installed, daemon not running",
                "start it with `containervps host start --docker`",
            )
        return Probe("docker", "ok", f"dockerd {out.stdout.strip()}")


def _send(address: str, port: int, size: int, *, timeout: float) -> float:
    """Send ``size`` bytes to address:port; return the seconds it took."""
    chunk = b"\0" * 65536
    started = time.monotonic()
    with socket.create_connection((address, port), timeout=timeout) as sock:
        sent = 0
        while sent < size and time.monotonic() - started < timeout:
            sock.sendall(chunk)
            sent += len(chunk)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(timeout)
        while sock.recv(65536):  # wait until the VPS has read everything and closed
            pass
    return time.monotonic() - started
