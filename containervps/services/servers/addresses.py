"""The platform's own addresses: each server gets a fixed IPv4 and IPv6 address of the bridge
subnets at create, kept across reboot, rebuild and resize, freed when the server is deleted.

The bridge's DHCP hands out only a small dynamic range at the top of the subnet (scratch and
benchmark containers); servers get static DHCP leases from the rest, so a create never waits
for DHCP to learn the address, and the SSH forward can use NAT mode (it needs a static address).

IPv6 needs no client in the guest: the bridge advertises its /64 and the guest's kernel (or
systemd-networkd) forms the SLAAC address from the NIC's MAC (EUI-64). The platform fixes the
MAC, so the address is known at create: the platform's own MAC prefix plus a 24-bit index, the
lowest one no live server holds. Busybox and Debian 12 both form that address.
"""

from __future__ import annotations

import hashlib
import ipaddress
from pathlib import Path

from sqlmodel import Session

from containervps.config import Settings
from containervps.db.models import Server
from containervps.errors import HostSetupError, ResourceUnavailable
from containervps.services.servers.queries import held_by_live

__all__ = [
    "allocate_ipv4",
    "allocate_ipv6",
    "dhcp_range",
    "ipv6_subnet",
    "mac_of",
    "slaac_address",
    "static_range",
]

Address = ipaddress.IPv4Address
DYNAMIC_MAX = 254  # addresses left to DHCP for containers that are not servers


def _subnet(settings: Settings) -> ipaddress.IPv4Interface:
    return ipaddress.IPv4Interface(settings.bridge_subnet)


def dhcp_range(settings: Settings) -> tuple[Address, Address]:
    """First and last address of the bridge's dynamic DHCP range (the top of the subnet)."""
    net = _subnet(settings).network
    size = min(DYNAMIC_MAX, net.num_addresses // 4)
    last = net.broadcast_address - 1
    return last - (size - 1), last


def static_range(settings: Settings) -> tuple[Address, Address]:
    """First and last address servers are given (the gateway is skipped when inside)."""
    net = _subnet(settings).network
    return net.network_address + 1, dhcp_range(settings)[0] - 1


def allocate_ipv4(session: Session, settings: Settings) -> str:
    """The lowest address of the static range that no live server holds.

    Call inside the BEGIN IMMEDIATE transaction that inserts the server; a unique index on
    live servers' addresses backs this up.
    """
    taken = held_by_live(session, Server.ipv4)
    taken.add(str(_subnet(settings).ip))
    first, last = static_range(settings)
    for value in range(int(first), int(last) + 1):
        address = str(Address(value))
        if address not in taken:
            return address
    raise ResourceUnavailable(
        "no free IPv4 address on the VPS bridge",
        details={"resource": "ipv4_addresses", "free": 0, "range": [str(first), str(last)]},
        resolution="the operator can give the bridge a larger CONTAINERVPS_BRIDGE_SUBNET",
    )


# Locally administered unicast (bit 1 of the first octet set): no vendor's MAC can clash.
MAC_PREFIX = bytes((0x0A, 0x63, 0x76))
MAX_MAC_INDEX = 2**24 - 1
MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))


def _machine_id(files: tuple[Path, ...] = MACHINE_ID_FILES) -> str:
    for path in files:
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
    return "containervps"  # no machine id: still a stable ULA


def default_ipv6_subnet(machine_id: str) -> str:
    """A ULA /64 derived stably from the host's machine id: fdXX:XXXX:XXXX:1::1/64."""
    digest = hashlib.sha256(machine_id.encode()).hexdigest()
    return f"fd{digest[:2]}:{digest[2:6]}:{digest[6:10]}:1::1/64"


def ipv6_subnet(settings: Settings) -> ipaddress.IPv6Interface:
    """The bridge's IPv6 gateway/prefix (``bridge_ipv6_subnet``, or the derived ULA)."""
    value = settings.bridge_ipv6_subnet or default_ipv6_subnet(_machine_id())
    try:
        iface = ipaddress.IPv6Interface(value)
    except ValueError as exc:
        raise HostSetupError(f"bridge IPv6 subnet {value!r} is not an IPv6 gateway/prefix") from exc
    if iface.network.prefixlen != 64:
        raise HostSetupError(
            f"bridge IPv6 subnet {value!r} is not a /64",
            resolution="SLAAC needs a /64: set CONTAINERVPS_BRIDGE_IPV6_SUBNET to one",
        )
    return iface


def _slaac(network: ipaddress.IPv6Network, index: int) -> str:
    return slaac_address(network, (MAC_PREFIX + index.to_bytes(3, "big")).hex(":"))


def slaac_address(network: ipaddress.IPv6Network, mac: str) -> str:
    """The EUI-64 SLAAC address ``mac`` forms in ``network``."""
    raw = bytes.fromhex(mac.replace(":", ""))
    eui64 = bytes((raw[0] ^ 0x02,)) + raw[1:3] + b"\xff\xfe" + raw[3:]
    return str(network.network_address + int.from_bytes(eui64, "big"))


def mac_of(ipv6: str) -> str:
    """The MAC whose EUI-64 SLAAC address is ``ipv6`` (the NIC's fixed ``hwaddr``)."""
    iid = ipaddress.IPv6Address(ipv6).packed[8:]
    mac = bytes((iid[0] ^ 0x02,)) + iid[1:3] + iid[5:]
    return ":".join(f"{b:02x}" for b in mac)


def allocate_ipv6(session: Session, settings: Settings) -> str:
    """The SLAAC address of the lowest MAC index no live server holds (inside the create's
    BEGIN IMMEDIATE transaction; a unique index on live servers' addresses backs this up)."""
    taken = held_by_live(session, Server.ipv6)
    network = ipv6_subnet(settings).network
    for index in range(1, MAX_MAC_INDEX + 1):
        address = _slaac(network, index)
        if address not in taken:
            return address
    raise ResourceUnavailable(
        "no free IPv6 address on the VPS bridge",
        details={"resource": "ipv6_addresses", "free": 0},
    )
