"""Addresses a test's servers must skip: every one LXD holds on this host, whichever database
numbered it (other test databases, the operator's, a server a failed test left behind)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from containervps.config import get_settings
from containervps.services.servers import addresses
from containervps.shell import run

HeldByLive = Callable[[Any, Any], set[Any]]


def bridge_addresses_in_use() -> set[str]:
    """IPv4 and IPv6 addresses LXD holds on any instance (every project), static or leased;
    a fixed MAC counts as the SLAAC address it forms (LXD refuses a second NIC with it)."""
    listing = json.loads(run(["lxc", "list", "--all-projects", "--format", "json"], what="list"))
    prefix = addresses.ipv6_subnet(get_settings()).network
    used = set()
    for inst in listing:
        for device in (inst.get("expanded_devices") or {}).values():
            if device.get("ipv4.address"):
                used.add(device["ipv4.address"])
            if device.get("hwaddr"):
                used.add(addresses.slaac_address(prefix, device["hwaddr"]))
        for nic in ((inst.get("state") or {}).get("network") or {}).values():
            used.update(
                a["address"] for a in nic.get("addresses", []) if a["family"] in ("inet", "inet6")
            )
    return used


def skipping_held(held: HeldByLive) -> HeldByLive:
    """``addresses.held_by_live`` that also counts what LXD holds."""

    def held_here_or_elsewhere(session: Any, column: Any) -> set[Any]:
        return set(held(session, column)) | bridge_addresses_in_use()

    return held_here_or_elsewhere
