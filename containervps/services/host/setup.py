"""`containervps host init`: storage pool, bridge, base profile and subordinate id ranges.

Idempotent: every step first looks at what exists and only creates or widens what is missing.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from containervps.config import Settings
from containervps.errors import HostSetupError, LxdError
from containervps.lxd import Lxd, connect
from containervps.services.capacity import disk_probe
from containervps.services.capacity.admission import pool_disk_dir
from containervps.services.capacity.kernel_limits import raise_kernel_limits
from containervps.services.host import daemons
from containervps.services.servers import addresses
from containervps.shell import probe

log = logging.getLogger(__name__)

IDMAP_SIZE = 65536  # ids per isolated container
MIN_BRIDGE_HOSTS = 1000
SUBID_FILES = (Path("/etc/subuid"), Path("/etc/subgid"))


def _keys(config: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items())


@dataclass(frozen=True)
class InitStep:
    name: str
    outcome: str  # created | exists | updated | warning
    detail: str


SPARE_IDMAPS = 8  # a 1000-server ramp got 998 isolated maps out of max_containers + 1 blocks


def required_subids(settings: Settings) -> int:
    """Subordinate ids for ``max_containers`` isolated idmaps, the shared default map and a
    few spare blocks (LXD 5.0.2 fitted fewer maps than the range holds)."""
    return (settings.max_containers + 1 + SPARE_IDMAPS) * IDMAP_SIZE


def widen_subids(settings: Settings, *, files: tuple[Path, ...] = SUBID_FILES) -> bool:
    """Make root's subuid/subgid range at least ``required_subids``; return True if changed."""
    need = required_subids(settings)
    changed = False
    for path in files:
        lines = path.read_text().splitlines() if path.exists() else []
        kept, start = [], settings.subid_start
        have = 0
        for line in lines:
            user, _, rest = line.partition(":")
            if user == "root" and rest.count(":") == 1:
                first, count = (int(x) for x in rest.split(":"))
                start, have = first, max(have, count)
                continue
            kept.append(line)
        if have >= need:
            continue
        path.write_text("\n".join([*kept, f"root:{start}:{need}"]) + "\n")
        changed = True
    return changed


def validate_subnet(subnet: str) -> ipaddress.IPv4Interface:
    """The bridge's gateway/prefix, checked for size and overlap with the host's routes."""
    try:
        iface = ipaddress.IPv4Interface(subnet)
    except ValueError as exc:
        raise HostSetupError(
            f"bridge subnet {subnet!r} is not an IPv4 gateway/prefix",
            resolution="set CONTAINERVPS_BRIDGE_SUBNET like 10.213.0.1/20",
        ) from exc
    hosts = iface.network.num_addresses - 3  # network, broadcast, gateway
    if hosts < MIN_BRIDGE_HOSTS:
        raise HostSetupError(
            f"bridge subnet {iface.network} holds only {hosts} VPSs (need {MIN_BRIDGE_HOSTS})",
            resolution="use a /22 or larger prefix in CONTAINERVPS_BRIDGE_SUBNET",
        )
    if iface.ip == iface.network.network_address or iface.ip == iface.network.broadcast_address:
        raise HostSetupError(
            f"bridge gateway {iface.ip} is not a usable host address",
            resolution="use the first address, e.g. 10.213.0.1/20",
        )
    return iface


def host_routes(*, exclude_dev: str) -> list[tuple[ipaddress.IPv4Network, str]]:
    """IPv4 routes of the host (other than on ``exclude_dev``) as (network, device)."""
    out = probe(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout
    routes = []
    for r in json.loads(out or "[]"):
        dst, dev = r.get("dst", ""), r.get("dev", "")
        if dev == exclude_dev or dst in ("default", "") or r.get("type") in ("local", "broadcast"):
            continue
        try:
            routes.append((ipaddress.IPv4Network(dst, strict=False), dev))
        except ValueError:
            continue
    return routes


def check_overlap(network: ipaddress.IPv4Network, *, bridge: str) -> None:
    for route, dev in host_routes(exclude_dev=bridge):
        if route.prefixlen > 0 and network.overlaps(route):
            raise HostSetupError(
                f"bridge subnet {network} overlaps the host route {route} on {dev}",
                resolution="pick a free range in CONTAINERVPS_BRIDGE_SUBNET",
            )


class HostSetup:
    """Prepares LXD on this host for containervps."""

    def __init__(self, settings: Settings, lxd: Lxd) -> None:
        self.settings = settings
        self.lxd = lxd

    def init(self) -> list[InitStep]:
        """Run every step (ids, pool, bridge, profile); return what each one did.

        Everything that can be checked beforehand is checked first, so bad settings fail
        before anything is created.
        """
        self.preflight()
        return [
            self.ensure_subids(),
            self.ensure_kernel_limits(),
            self.ensure_pool(),
            self.ensure_bridge(),
            self.ensure_profile(),
            self.ensure_disk_measured(),
        ]

    def preflight(self) -> None:
        """Validate settings and required tools without changing anything."""
        iface = validate_subnet(self.settings.bridge_subnet)
        addresses.ipv6_subnet(self.settings)  # a malformed or non-/64 IPv6 prefix fails here
        if self.lxd.host.get_network(self.settings.bridge) is None:
            check_overlap(iface.network, bridge=self.settings.bridge)
            if shutil.which("dnsmasq") is None:
                raise HostSetupError(
                    "dnsmasq is not installed (LXD needs it for bridge DHCP)",
                    resolution="apt-get install dnsmasq-base",
                )

    def ensure_subids(self) -> InitStep:
        """Widen root's subuid/subgid; LXD rereads them only at start, so restart it if idle."""
        need = required_subids(self.settings)
        if not widen_subids(self.settings):
            return InitStep("subuid/subgid", "exists", f">= {need} ids for root")
        running = [
            i.name
            for project in self.lxd.host.list_projects()
            for i in self.lxd.instances.all(project=project)
            if i.status == "Running"
        ]
        if running:
            return InitStep(
                "subuid/subgid",
                "warning",
                f"widened to {need} ids; restart LXD when the {len(running)} "
                "running instances can stop, to use them",
            )
        daemons.restart_lxd(self.settings)
        self.lxd = connect(self.settings)
        return InitStep("subuid/subgid", "updated", f"widened to {need} ids; LXD restarted")

    def ensure_kernel_limits(self) -> InitStep:
        """Raise kernel-wide limits a full node would hit (inotify, PIDs, keys) where lower."""
        changes = raise_kernel_limits()
        if not changes:
            return InitStep("kernel limits", "exists", "at or above the recommended values")
        return InitStep("kernel limits", "updated", "; ".join(changes))

    def ensure_disk_measured(self) -> InitStep:
        """Measure the pool disk's IOPS once (admission sells them; `host check` re-measures)."""
        known = disk_probe.stored(self.settings)
        if known is not None:
            return InitStep(
                "disk iops", "exists", f"read {known.read}, write {known.write} (measured before)"
            )
        directory = pool_disk_dir(self.settings, self.lxd)
        got = disk_probe.measure(self.settings, directory=directory)
        return InitStep(
            "disk iops", "created", f"read {got.read}, write {got.write} on {directory}"
        )

    def ensure_pool(self) -> InitStep:
        s = self.settings
        existing = self.lxd.host.get_pool(s.storage_pool)
        if existing:
            enforced = "" if existing.driver != "dir" else " (dir: disk sizes NOT enforced)"
            return InitStep(
                "storage pool", "exists", f"{s.storage_pool} ({existing.driver}){enforced}"
            )
        drivers = self.lxd.host.server_info().storage_drivers
        if s.storage_driver == "btrfs" and (
            "btrfs" not in drivers or not shutil.which("mkfs.btrfs")
        ):
            log.warning("btrfs unavailable; using dir", extra={"drivers": ",".join(drivers)})
            return self._create_dir_pool("btrfs is not available (install btrfs-progs)")
        if s.storage_driver == "dir":
            return self._create_dir_pool("configured storage_driver=dir")
        try:
            self.lxd.host.create_pool(
                name=s.storage_pool,
                driver=s.storage_driver,
                config={"size": f"{s.storage_size_gib}GiB"},
            )
        except LxdError as exc:
            raise HostSetupError(
                f"cannot create the {s.storage_size_gib} GiB {s.storage_driver} pool file: "
                f"{exc.details.get('lxd', exc.brief)}",
                resolution="free disk space under /var/lib/lxd or lower "
                "CONTAINERVPS_STORAGE_SIZE_GIB",
            ) from exc
        return InitStep(
            "storage pool",
            "created",
            f"{s.storage_pool} ({s.storage_driver}, {s.storage_size_gib} GiB loop file)",
        )

    def _create_dir_pool(self, why: str) -> InitStep:
        self.lxd.host.create_pool(name=self.settings.storage_pool, driver="dir", config={})
        return InitStep(
            "storage pool",
            "warning",
            f"{self.settings.storage_pool} (dir): {why}; disk sizes are NOT enforced",
        )

    def ensure_bridge(self) -> InitStep:
        s = self.settings
        iface = validate_subnet(s.bridge_subnet)
        first, last = addresses.dhcp_range(s)
        # DHCP hands out only the top of the subnet; servers hold fixed addresses below it.
        # No DNS: server names are unique per tenant, not per host, and bridge DNS records keyed
        # by instance name would make LXD refuse a second tenant's "web1" ("Instance DNS name
        # ... already used").
        # IPv6: router advertisements of a /64; each server forms the SLAAC address of the
        # MAC the platform fixed (addresses.py), so no DHCPv6 client is needed in the guest.
        managed = {
            "dns.mode": "none",
            "ipv4.dhcp.ranges": f"{first}-{last}",
            "ipv6.address": str(addresses.ipv6_subnet(s)),
            "ipv6.nat": "true",
            "ipv6.dhcp.stateful": "false",
        }
        existing = self.lxd.host.get_network(s.bridge)
        if existing:
            if not existing.managed:
                raise HostSetupError(
                    f"{s.bridge} exists but is not managed by LXD",
                    resolution="set CONTAINERVPS_BRIDGE to another name",
                )
            current = existing.config.get("ipv4.address", "")
            if current != str(iface):
                return InitStep(
                    "bridge",
                    "warning",
                    f"{s.bridge} keeps {current}; configured {iface} not applied to a live bridge",
                )
            stale = {k: v for k, v in managed.items() if existing.config.get(k) != v}
            if stale:
                self.lxd.host.patch_network(s.bridge, stale)
                return InitStep("bridge", "updated", f"{s.bridge} {current}: {_keys(stale)}")
            return InitStep("bridge", "exists", f"{s.bridge} {current}")
        self.lxd.host.create_network(
            name=s.bridge,
            description="containervps VPS bridge",
            config={
                "ipv4.address": str(iface),
                "ipv4.nat": "true",
                **managed,
                "raw.dnsmasq": f"dhcp-lease-max={iface.network.num_addresses}",
            },
        )
        capacity = iface.network.num_addresses - 3
        return InitStep("bridge", "created", f"{s.bridge} {iface} ({capacity} addresses)")

    def ensure_profile(self) -> InitStep:
        s = self.settings
        config = {"security.idmap.isolated": "true"}
        devices = {
            "root": {"type": "disk", "path": "/", "pool": s.storage_pool},
            "eth0": {"type": "nic", "network": s.bridge, "name": "eth0"},
        }
        existing = self.lxd.host.get_profile(s.profile)
        if existing and existing.config == config and existing.devices == devices:
            # Rewriting an unchanged profile would touch every running instance using it.
            return InitStep("profile", "exists", s.profile)
        self.lxd.host.put_profile(
            name=s.profile,
            description="containervps VPS base: root disk, NIC on the VPS bridge, isolated idmap",
            config=config,
            devices=devices,
        )
        return InitStep("profile", "updated" if existing else "created", s.profile)
