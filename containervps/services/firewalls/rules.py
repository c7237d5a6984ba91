"""Checking firewall rules and targets (pure): each problem is an InvalidInput naming the field,
e.g. ``rules[2].port``; what passes is stored normalised (CIDRs in network form, sorted)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from containervps.errors import InvalidInput
from containervps.services.servers.queries import parse_selector

__all__ = ["PORT_PROTOCOLS", "check_rules", "check_targets", "port_range"]

PORT_PROTOCOLS = ("tcp", "udp")
PORT = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?")  # ASCII digits only
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _bad(field: str, message: str, value: Any = None) -> InvalidInput:
    details: dict[str, Any] = {"field": field}
    if value is not None:
        details["value"] = str(value)[:100]
    return InvalidInput(f"{field}: {message}", details=details)


def port_range(port: str) -> tuple[int, int]:
    """``"80"`` -> (80, 80), ``"1000-2000"`` -> (1000, 2000); ValueError when malformed."""
    found = PORT.fullmatch(port)
    if found is None:
        raise ValueError("not a port or port range")
    low, high = found.group(1), found.group(2) or found.group(1)
    return int(low), int(high)


def _check_port(field: str, protocol: str, port: str | None) -> str | None:
    if port is None:
        return None
    if protocol not in PORT_PROTOCOLS:
        raise _bad(field, f"a port is only allowed with tcp or udp, not {protocol}", port)
    try:
        low, high = port_range(port)
    except ValueError:
        raise _bad(field, 'a port ("80") or a port range ("1000-2000")', port) from None
    for value in (low, high):
        if not 1 <= value <= 65535:
            raise _bad(field, "ports are 1-65535", port)
    if low > high:
        raise _bad(field, "the range's first port is above its last", port)
    return str(low) if low == high else f"{low}-{high}"


def _check_cidrs(field: str, values: list[str]) -> list[str]:
    networks: list[Network] = []
    for i, value in enumerate(values):
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise _bad(f"{field}.{i}", "not an IPv4 or IPv6 address or CIDR", value) from None
    return sorted({str(n) for n in networks})


def check_rules(rules: list[dict[str, Any]], *, max_rules: int) -> list[dict[str, Any]]:
    """The rules as stored, or InvalidInput naming the first bad field."""
    if len(rules) > max_rules:
        raise InvalidInput(
            f"rules: at most {max_rules} rules per firewall, {len(rules)} given",
            details={"field": "rules", "max": max_rules},
        )
    checked = []
    for i, rule in enumerate(rules):
        at = f"rules.{i}"
        direction, protocol = rule["direction"], rule["protocol"]
        # Hetzner's shape: inbound rules name sources, outbound rules destinations.
        wanted, unwanted = (
            ("source_ips", "destination_ips")
            if direction == "in"
            else ("destination_ips", "source_ips")
        )
        if rule.get(unwanted):
            raise _bad(f"{at}.{unwanted}", f"not allowed on a rule with direction {direction}")
        if not rule.get(wanted):
            raise _bad(f"{at}.{wanted}", f"required on a rule with direction {direction}")
        entry: dict[str, Any] = {
            "direction": direction,
            "protocol": protocol,
            "port": _check_port(f"{at}.port", protocol, rule.get("port")),
            "source_ips": [],
            "destination_ips": [],
            "description": rule.get("description"),
        }
        entry[wanted] = _check_cidrs(f"{at}.{wanted}", rule[wanted])
        checked.append(entry)
    return checked


def check_targets(apply_to: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets as stored (server ids are checked against the database by the caller)."""
    checked: list[dict[str, Any]] = []
    for i, target in enumerate(apply_to):
        at = f"apply_to.{i}"
        kind = target["type"]
        ref = target.get(kind)
        other = "label_selector" if kind == "server" else "server"
        if ref is None:
            raise _bad(f"{at}.{kind}", f"required with type {kind}")
        if target.get(other) is not None:
            raise _bad(f"{at}.{other}", f"not allowed with type {kind}")
        if kind == "server":
            entry: dict[str, Any] = {"type": kind, "server": {"id": int(ref["id"])}}
        else:
            selector = str(ref["selector"])
            if not parse_selector(selector, field=f"{at}.label_selector.selector"):
                raise _bad(f"{at}.label_selector.selector", "an empty selector selects nothing")
            entry = {"type": kind, "label_selector": {"selector": selector}}
        if entry not in checked:
            checked.append(entry)
    return checked
