"""The platform's filter table as an nftables script (pure): tenant firewalls and isolation.

One ``inet`` table, replaced whole in one ``nft -f`` transaction. The bridge runs
br_netfilter (``net.bridge.bridge-nf-call-ip[6]tables=1``), so frames between two VPSs pass the
inet ``forward`` hook with conntrack; traffic from the host to a VPS passes ``output``, from a VPS
to the host ``input``, routed traffic ``forward``. A server is recognised by its fixed addresses:
LXD's MAC/IPv4/IPv6 filtering on its NIC stops it from sending from any other.

Per server, inbound (``in4``/``in6`` maps, by destination address):
- no firewall applies: the tenant's isolation chain, which drops new connections from another
  tenant's VPS and lets everything else in (the host, the outside, the tenant's own VPSs);
- firewalls apply: established/related, the platform's needs (the SSH forward, DHCP, neighbour
  discovery), the union of their inbound rules, then drop. A rule's sources may be anything,
  another tenant's VPS too.
Outbound (``out4``/``out6`` maps, by source address) only for servers with an outbound rule:
established/related, DHCP and neighbour discovery, the rules, then drop.

A server no firewall applies to is added and removed alone (``add_plain``/``remove_plain``: its
elements, and its tenant's sets and isolation chain made or refreshed), so a create or delete
costs the same whatever the number of servers; any other change rebuilds the table.

The SSH forward (services/servers/ssh_forwards.py) DNATs the host's port to the VPS's port 22:
such connections (``ct status dnat``, tcp/22) are the platform's way in and pass every
firewall and the isolation; a direct connection to the VPS's address on tcp/22 is filtered.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FilterServer", "add_plain", "remove_plain", "render"]

ESTABLISHED = "ct state established,related"
SSH_FORWARD = "ct status dnat tcp dport 22"  # the platform's SSH forward (a DNAT to port 22)
ND_NEIGHBOUR = "{ nd-neighbor-solicit, nd-neighbor-advert }"
ND_IN = "{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert, nd-redirect }"
ND_OUT = "{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit }"


@dataclass(frozen=True)
class FilterServer:
    """A live server as the filter sees it; ``rules`` is None when no firewall applies."""

    id: int
    tenant_id: int
    ipv4: str | None
    ipv6: str | None
    rules: list[dict[str, Any]] | None = field(default=None)
    member: str | None = None  # the cluster member it runs on (None: this host)

    @property
    def outbound(self) -> list[dict[str, Any]]:
        return [r for r in self.rules or [] if r["direction"] == "out"]


def _elements(items: Iterable[str]) -> str:
    items = list(items)
    return f"elements = {{ {', '.join(items)} }}" if items else ""


def _networks(values: list[str]) -> tuple[list[str], list[str]]:
    """IPv4 and IPv6 networks, overlaps merged (nftables refuses overlapping intervals)."""
    nets = [ipaddress.ip_network(v, strict=False) for v in values]
    v4 = ipaddress.collapse_addresses(n for n in nets if n.version == 4)
    v6 = ipaddress.collapse_addresses(n for n in nets if n.version == 6)
    return [str(n) for n in v4], [str(n) for n in v6]


def _l4(rule: dict[str, Any]) -> str:
    protocol, port = rule["protocol"], rule.get("port")
    if protocol in ("tcp", "udp"):
        return f"{protocol} dport {port}" if port else f"meta l4proto {protocol}"
    return {"icmp": "meta l4proto icmp", "icmpv6": "meta l4proto ipv6-icmp"}.get(protocol, "")


def rule_lines(rule: dict[str, Any], *, verdict: str) -> list[str]:
    """One line per address family a rule covers (icmp is IPv4's, icmpv6 IPv6's)."""
    inbound = rule["direction"] == "in"
    where = "saddr" if inbound else "daddr"
    v4, v6 = _networks(rule["source_ips"] if inbound else rule["destination_ips"])
    lines = []
    if v4 and rule["protocol"] != "icmpv6":
        lines.append(f"ip {where} {{ {', '.join(v4)} }} {_l4(rule)} {verdict}")
    if v6 and rule["protocol"] != "icmp":
        lines.append(f"ip6 {where} {{ {', '.join(v6)} }} {_l4(rule)} {verdict}")
    return [" ".join(line.split()) for line in lines]


def _chain(name: str, lines: Iterable[str]) -> str:
    body = "".join(f"    {line}\n" for line in lines)
    return f"  chain {name} {{\n{body}  }}\n"


def _isolation(tenant_id: int) -> list[str]:
    # Neighbour discovery between tenants stays: without it an IPv6 connection that another
    # tenant's firewall allows could not resolve its peer (LXD's filter stops forged adverts).
    return [
        f"{ESTABLISHED} accept",
        f"{SSH_FORWARD} accept",
        f"icmpv6 type {ND_NEIGHBOUR} ip6 hoplimit 255 accept",
        f"ip saddr @vps_4 ip saddr != @t{tenant_id}_4 drop",
        f"ip6 saddr @vps_6 ip6 saddr != @t{tenant_id}_6 drop",
    ]


def _inbound(server: FilterServer, *, gateway4: str) -> list[str]:
    rules = [r for r in server.rules or [] if r["direction"] == "in"]
    return [
        f"{ESTABLISHED} accept",
        f"{SSH_FORWARD} accept",
        f"ip saddr {gateway4} udp sport 67 udp dport 68 accept",
        "ip6 saddr fe80::/10 udp sport 547 udp dport 546 accept",
        f"icmpv6 type {ND_IN} ip6 hoplimit 255 accept",
        *dict.fromkeys(line for r in rules for line in rule_lines(r, verdict="accept")),
        "drop",
    ]


def _outbound(server: FilterServer) -> list[str]:
    return [
        f"{ESTABLISHED} return",
        "udp sport 68 udp dport 67 return",
        "udp sport 546 udp dport 547 return",
        f"icmpv6 type {ND_OUT} ip6 hoplimit 255 return",
        *dict.fromkeys(line for r in server.outbound for line in rule_lines(r, verdict="return")),
        "drop",
    ]


def _plain_elements(server: FilterServer) -> list[tuple[str, str, str]]:
    """(set or map, key, element) of a server no firewall applies to."""
    t, found = server.tenant_id, []
    for v, address in ((4, server.ipv4), (6, server.ipv6)):
        if address:
            found += [
                (f"vps_{v}", address, address),
                (f"t{t}_{v}", address, address),
                (f"in{v}", address, f"{address} : jump iso_{t}"),
            ]
    return found


def add_plain(*, table: str, server: FilterServer) -> str:
    """Commands adding one server no firewall applies to, to a table ``render`` made."""
    assert server.rules is None, "a server with firewalls needs the whole table rendered"
    t = server.tenant_id
    lines = [f"add set inet {table} t{t}_{v} {{ type ipv{v}_addr; }}" for v in (4, 6)]
    lines += [f"add chain inet {table} iso_{t}", f"flush chain inet {table} iso_{t}"]
    lines += [f"add rule inet {table} iso_{t} {rule}" for rule in _isolation(t)]
    lines += [
        f"add element inet {table} {name} {{ {element} }}"
        for name, _, element in _plain_elements(server)
    ]
    return "".join(f"{line}\n" for line in lines)


def remove_plain(*, table: str, server: FilterServer) -> str:
    """Commands removing what ``add_plain`` added for the server (its tenant's chain stays)."""
    return "".join(
        f"delete element inet {table} {name} {{ {key} }}\n"
        for name, key, _ in _plain_elements(server)
    )


def render(
    *, table: str, gateway4: str, servers: list[FilterServer], uplink: str | None = None
) -> str:
    """The whole table: created if missing, deleted and rebuilt in the same transaction.
    ``uplink``: the interface of a cluster member's namespace towards the platform's host."""
    tenants = sorted({s.tenant_id for s in servers})
    # name -> elements; every set and map is declared, empty or not (the chains name them)
    sets: dict[str, list[str]] = {
        f"{n}_{v}": [] for n in ("vps", *map("t{}".format, tenants)) for v in (4, 6)
    }
    maps: dict[str, list[str]] = {f"{d}{v}": [] for d in ("in", "out") for v in (4, 6)}
    for s in servers:
        target = f"jump in_{s.id}" if s.rules is not None else f"jump iso_{s.tenant_id}"
        for v, address in ((4, s.ipv4), (6, s.ipv6)):
            if not address:
                continue
            sets[f"vps_{v}"].append(address)
            sets[f"t{s.tenant_id}_{v}"].append(address)
            maps[f"in{v}"].append(f"{address} : {target}")
            if s.outbound:
                maps[f"out{v}"].append(f"{address} : jump out_{s.id}")
    parts = [f"add table inet {table}\ndelete table inet {table}\ntable inet {table} {{\n"]
    for name, elements in sets.items():
        kind = f"ipv{name[-1]}_addr"
        parts.append(f"  set {name} {{\n    type {kind}\n    {_elements(elements)}\n  }}\n")
    for name, elements in maps.items():
        kind = f"ipv{name[-1]}_addr : verdict"
        parts.append(f"  map {name} {{\n    type {kind}\n    {_elements(elements)}\n  }}\n")
    hook = "type filter hook {} priority filter; policy accept;"
    parts.append(
        _chain(
            "forward",
            [
                hook.format("forward"),
                # in a member's namespace: what goes through its uplink is routed through the
                # platform's host, whose own table filters it; only traffic between servers on
                # the member's bridge is left to this one
                *([f'iifname "{uplink}" accept', f'oifname "{uplink}" accept'] if uplink else []),
                "ip saddr vmap @out4",
                "ip6 saddr vmap @out6",
                "ip daddr vmap @in4",
                "ip6 daddr vmap @in6",
            ],
        )
    )
    parts.append(
        _chain("input", [hook.format("input"), "ip saddr vmap @out4", "ip6 saddr vmap @out6"])
    )
    parts.append(
        _chain("output", [hook.format("output"), "ip daddr vmap @in4", "ip6 daddr vmap @in6"])
    )
    parts += [_chain(f"iso_{t}", _isolation(t)) for t in tenants]
    for s in servers:
        if s.rules is not None:
            parts.append(_chain(f"in_{s.id}", _inbound(s, gateway4=gateway4)))
        if s.outbound:
            parts.append(_chain(f"out_{s.id}", _outbound(s)))
    parts.append("}\n")
    return "".join(parts)
