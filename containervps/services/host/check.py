"""`containervps host check`: probe, for real, what this host can enforce for tenants.

Host-wide facts are read here; each plan limit is applied to a scratch container and its
effect measured (scratch_probes.py).
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
from pathlib import Path

from containervps.config import Settings
from containervps.errors import ContainerVpsError
from containervps.lxd import Lxd, connect
from containervps.services.capacity import disk_probe
from containervps.services.capacity.admission import pool_disk_dir
from containervps.services.capacity.kernel_limits import kernel_limits
from containervps.services.host import daemons, lxcfs_mounts, qemu
from containervps.services.host.probe import Probe, Status
from containervps.services.host.scratch_probes import ScratchProbes
from containervps.services.host.setup import IDMAP_SIZE
from containervps.shell import probe

log = logging.getLogger(__name__)


def lxcfs_options_probe(*, want: list[str], running: list[str] | None) -> Probe:
    """Whether the running lxcfs has the options the settings ask for (e.g. load average)."""
    where = f"mounted on {daemons.LXCFS_DIR}"
    if running is None:
        return Probe("lxcfs", "ok", f"{where} (its process is not visible: options unknown)")
    shown = " ".join(running) or "no options"
    if daemons.normalise_lxcfs_options(running) == daemons.normalise_lxcfs_options(want):
        return Probe("lxcfs", "ok", f"{where}, running with {shown}")
    return Probe(
        "lxcfs",
        "degraded",
        f"{where}, running with {shown}; settings ask for {' '.join(want) or 'no options'}",
        "VPSs do not get what CONTAINERVPS_LXCFS_OPTIONS promises (e.g. their own load "
        "average) until lxcfs restarts with them; a restart breaks /proc in running VPSs "
        "unless their lxcfs mounts are re-attached",
    )


class HostCheck:
    """Runs every probe; never raises for a missing capability (it reports it)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def run(self) -> list[Probe]:
        probes: list[Probe] = []
        lxd = self._lxd(probes)
        probes.append(self._lxcfs_host())
        probes.append(self._lxcfs_views())
        probes.append(self._subids())
        probes.extend(self._kernel_limits())
        if lxd is not None:
            probes.append(self._bridge(lxd))
            probes.append(self._disk_iops(lxd))
            probes.extend(ScratchProbes(self.settings, lxd).run())
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
        if not daemons.lxcfs_active():
            return Probe(
                "lxcfs",
                "missing",
                "not mounted",
                "free/top/nproc inside a VPS show the host's totals, not the plan",
            )
        return lxcfs_options_probe(
            want=self.settings.lxcfs_options, running=daemons.lxcfs_running_options()
        )

    def _lxcfs_views(self) -> Probe:
        """Every running container's /proc views answer (none left dead by an lxcfs restart)."""
        containers = lxcfs_mounts.running_containers()
        dead = [
            f"{c.project}/{c.name}"
            for c in containers
            if any(lxcfs_mounts.dead_views(pid) for pid in c.pids)
        ]
        if not dead:
            return Probe("lxcfs views", "ok", f"alive in all {len(containers)} running containers")
        return Probe(
            "lxcfs views",
            "degraded",
            f"dead in {len(dead)} of {len(containers)} running containers: {', '.join(dead[:5])}",
            "reading /proc/meminfo etc. fails inside them; `serve` repairs this within seconds, "
            "or run `containervps host repair-lxcfs`",
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

    def _kernel_limits(self) -> list[Probe]:
        probes = []
        for limit in kernel_limits():
            share = f", {limit.per_server:.1f} per running server" if limit.per_server else ""
            status: Status = "ok" if limit.used < 0.8 * limit.limit else "degraded"
            impact = "" if status == "ok" else "new servers may fail to start or to run; host init"
            probes.append(
                Probe(
                    f"kernel {limit.name}",
                    status,
                    f"{limit.used} of {limit.limit} ({limit.sysctl}){share}",
                    impact,
                )
            )
        return probes

    def _disk_iops(self, lxd: Lxd) -> Probe:
        directory = pool_disk_dir(self.settings, lxd)
        got = disk_probe.measure(self.settings, directory=directory)
        sold = self.settings.iops_overcommit
        return Probe(
            "disk iops",
            "ok",
            f"4 KiB random direct I/O on {directory}: read {got.read}, write {got.write} IOPS "
            f"(stored; admission sells {sold:g}x)",
        )

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
