"""The platform's own IPv4 addresses: each server gets a fixed address of the bridge subnet at
create, kept across reboot, rebuild and resize, freed when the server is deleted.

The bridge's DHCP hands out only a small dynamic range at the top of the subnet (scratch and
benchmark containers); servers get static DHCP leases from the rest, so a create never waits
for DHCP to learn the address, and the SSH forward can use NAT mode (it needs a static address).
"""

from __future__ import annotations

import ipaddress

from sqlmodel import Session

from containervps.config import Settings
from containervps.db.models import Server
from containervps.errors import ResourceUnavailable
from containervps.services.servers.queries import held_by_live

__all__ = ["allocate_ipv4", "dhcp_range", "static_range"]

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
