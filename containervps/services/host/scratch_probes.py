"""The plan-limit probes of `host check`, each applied to a scratch container and measured:
disk size view and quota, disk IOPS, the memory/CPU view, NIC ingress and egress. The
scratch container and its pool are always deleted."""

from __future__ import annotations

import secrets
import socket
import threading
import time

from containervps.config import Settings
from containervps.errors import ContainerVpsError
from containervps.lxd import Lxd
from containervps.services.host import daemons, inside_view
from containervps.services.host.capabilities import egress_refusal
from containervps.services.host.probe import Probe
from containervps.services.servers import egress_shaping

__all__ = ["ScratchProbes", "measure_upload", "push", "sink_inside"]

PROBE_MEMORY_MIB = 128
PROBE_DISK_MIB = 48
PROBE_POOL_MIB = 128  # the scratch container gets its own pool, as every server does
PROBE_WRITE_IOPS = 20
PROBE_WRITES = 40  # at 20 iops: about 2 s when the limit holds
PROBE_INGRESS_MBIT = 8
PROBE_EGRESS_MBIT = 8
# LXD lets a 1 MiB burst through at line rate; 4 MiB at 8 Mbit/s then takes about 3 s, while an
# unlimited veth moves it in milliseconds.
PROBE_TRANSFER_BYTES = 4 * 1024 * 1024


class ScratchProbes:
    """Runs the probes that need a container with plan limits."""

    def __init__(self, settings: Settings, lxd: Lxd) -> None:
        self.settings = settings
        self.lxd = lxd
        self._made_at = time.monotonic()  # reset when the scratch container is made

    def run(self) -> list[Probe]:
        """Every probe on one scratch container (skipped when the host is not set up)."""
        s, lxd = self.settings, self.lxd
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
                    "inside view",
                    "NIC ingress limit",
                    "NIC egress limit",
                )
            ]
        name = f"cvps-probe-{secrets.token_hex(3)}"
        try:
            address = self._make(name, driver=pool.driver)
            return [
                self._disk_view(lxd, name),
                self._iops(lxd, name, pool.driver),
                self._disk_quota(lxd, name, pool.driver),
                self._memory_cpu_view(lxd, name),
                self._inside_view(lxd, name),
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

    def _make(self, name: str, *, driver: str) -> str:
        """The scratch container, on its own pool as every server is; returns its address."""
        s, lxd = self.settings, self.lxd
        self._made_at = time.monotonic()
        lxd.host.create_pool(
            name=name,
            driver=driver,
            config={"size": f"{PROBE_POOL_MIB}MiB"} if driver == "btrfs" else {},
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
        return lxd.instances.wait_for_ipv4(name=name, project="default", timeout=30)

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

    def _inside_view(self, lxd: Lxd, name: str) -> Probe:
        """Uptime, load average, /proc/cpuinfo and /dev/shm as the VPS's own tools show them."""
        out = lxd.instances.exec(
            name=name, project="default", command=["sh", "-c", inside_view.INSIDE_VIEW_COMMAND]
        )
        view = inside_view.parse(out.stdout)
        running = daemons.lxcfs_running_options()
        options = self.settings.lxcfs_options if running is None else running
        loadavg = "--enable-loadavg" in daemons.normalise_lxcfs_options(options)
        problems = inside_view.judge(
            view,
            memory_mib=PROBE_MEMORY_MIB,
            vcpus=1,
            max_uptime=time.monotonic() - self._made_at + 1,
            loadavg=loadavg,
        )
        detail = f"inside: {view.summary()}"
        if not problems:
            return Probe("inside view", "ok", detail)
        return Probe(
            "inside view",
            "degraded",
            f"{detail}; differs from the plan: {'; '.join(problems)}",
            "limits hold, but tools in the VPS show figures that are not the plan's (a "
            "/dev/shm sized from the host fills the VPS's memory until the OOM killer acts; "
            "rebuild the images for the boot step that sizes it)",
        )

    def _ingress(self, lxd: Lxd, name: str, address: str) -> Probe:
        port = 5201
        sink_inside(lxd, name=name, project="default", port=port)
        try:
            seconds = push(address, port, PROBE_TRANSFER_BYTES, timeout=15)
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
        if reason is None:
            return Probe("NIC egress limit", "ok", "limits.egress accepted by LXD and the kernel")
        usable, detail = egress_shaping.available()
        if not usable:
            return Probe(
                "NIC egress limit",
                "missing",
                f"LXD refused limits.egress ({reason}); platform shaping unavailable: {detail}",
                "outbound bandwidth of a VPS cannot be limited on this kernel; plans "
                "show their egress limit as not enforced",
            )
        return self._platform_egress(lxd, name, refusal=reason)

    def _platform_egress(self, lxd: Lxd, name: str, *, refusal: str) -> Probe:
        """The platform's IFB shaping on the scratch container's veth, measured from inside."""
        veth = lxd.instances.get(name=name, project="default").config["volatile.eth0.host_name"]
        ifb = egress_shaping.ifb_name(server_id=0, project="default", name=name)
        gateway = self.settings.bridge_subnet.split("/")[0]
        try:
            egress_shaping.apply(
                ifb=ifb, veth=veth, mbit=PROBE_EGRESS_MBIT, project="default", name=name
            )
            mbit = measure_upload(
                lxd, name=name, project="default", address=gateway, size=PROBE_TRANSFER_BYTES
            )
        except (OSError, ContainerVpsError) as exc:
            return Probe(
                "NIC egress limit",
                "missing",
                f"LXD refused limits.egress; platform shaping failed: {exc}",
                "outbound bandwidth of a VPS is not limited",
            )
        finally:
            egress_shaping.remove(ifb=ifb, veth=veth)
        # LXD wraps the kernel's answer: keep the part after the last "Error: ".
        why = refusal.splitlines()[0].rsplit("Error: ", 1)[-1].rstrip(".")
        detail = (
            f"{PROBE_TRANSFER_BYTES >> 20} MiB VPS->host at {mbit:.1f} Mbit/s (platform shaping "
            f"at {PROBE_EGRESS_MBIT} Mbit/s: IFB + mirred + HTB; LXD's limit failed: {why})"
        )
        if PROBE_EGRESS_MBIT * 0.5 <= mbit <= PROBE_EGRESS_MBIT * 1.25:
            return Probe("NIC egress limit", "ok", detail)
        return Probe(
            "NIC egress limit",
            "missing",
            detail,
            "outbound bandwidth does not hold at the shaped rate",
        )


def measure_upload(
    lxd: Lxd, *, name: str, project: str, address: str, size: int, timeout: float = 60
) -> float:
    """Mbit/s at which ``size`` bytes sent from inside the container arrive at a listener on
    ``address`` (a host address on the VPS bridge), from the first byte to the last."""
    with socket.create_server((address, 0)) as server:
        server.settimeout(timeout)
        port = server.getsockname()[1]
        result: dict[str, float] = {}

        def receive() -> None:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(timeout)
                got, first = 0, 0.0
                while chunk := conn.recv(65536):
                    if not got:
                        first = time.monotonic()
                    got += len(chunk)
                result["bytes"], result["seconds"] = got, time.monotonic() - first

        thread = threading.Thread(target=receive, daemon=True)
        thread.start()
        blocks = max(1, size // 65536)
        # Just after a start the guest may not have its address yet (DHCP under load): nc is
        # tried again, every 0.5 s for half the timeout, until it connects.
        send = f"dd if=/dev/zero bs=65536 count={blocks} 2>/dev/null | nc {address} {port}"
        tries = int(timeout)
        lxd.instances.exec(
            name=name,
            project=project,
            command=[
                "sh",
                "-c",
                f"i=0; until {send}; do i=$((i+1)); [ $i -ge {tries} ] && exit 1; sleep 0.5; done",
            ],
            timeout=timeout,
        )
        thread.join(timeout)
    if result.get("bytes", 0) < blocks * 65536:
        raise OSError(f"received {int(result.get('bytes', 0))} of {blocks * 65536} bytes")
    return result["bytes"] * 8 / result["seconds"] / 1e6


def sink_inside(lxd: Lxd, *, name: str, project: str, port: int, seconds: int = 60) -> None:
    """A one-shot listener on ``port`` inside the container, in the background, reading what
    arrives. busybox nc shuts its side of the connection as soon as its stdin ends, before the
    data arrived: the sleep keeps stdin open, so the close means everything was read."""
    lxd.instances.exec(
        name=name,
        project=project,
        command=["sh", "-c", f"sleep {seconds} | nc -l -p {port} > /dev/null 2>&1 &"],
    )
    time.sleep(0.3)


def push(address: str, port: int, size: int, *, timeout: float) -> float:
    """Send ``size`` bytes to address:port; the seconds until the far end had read them all."""
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
