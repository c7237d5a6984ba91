"""Host networking of the development cluster: one bridge, one namespace and veth per member.

Measured on this host before choosing (10.214.9.0/24, busybox ping, 2 of 2 answered each): a
bare veth pair host <-> namespace passed ARP, and so did veths on a bridge host <-> namespace
and namespace <-> namespace. Members must reach each other (dqlite, image copies), so they
share one bridge, as LXD's own test suite does. The bridge does not pass its frames through
iptables (``nf_call_iptables 0``: br_netfilter is loaded here, and a FORWARD policy of DROP,
as dockerd sets, would cut members apart).

Each namespace forwards IPv4 (``net.ipv4.ip_forward=1`` there) between its ``eth0`` and the
member's managed bridge, and its default route is the host's bridge address: the host routes
each server's /32 to its member (services/cluster/routes.py) and DNATs SSH ports to it, and
the server's replies go back the same way, whatever the client's address. New connections
out of a namespace to anything beyond the cluster subnet are rejected in that namespace (its
own nftables table ``cvps_dev``): the default route carries replies, never traffic of the
members or their containers to the outside (the dev cluster has no uplink by design).

A real multi-machine cluster needs the same three things from its network instead: each
member's address reachable from the platform's host; each member forwarding IPv4 between that
address and its managed bridge (no NAT: a server keeps its address when moved); and the
server subnet's replies routed back to the clients (a default route, or the platform's host
as their gateway). The platform's side, a /32 route per server through its member, is what
routes.py keeps.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from containervps.config import Settings
from containervps.services.cluster.layout import ClusterLayout, MemberLayout
from containervps.shell import probe, run

__all__ = [
    "add_bridge",
    "add_member_netns",
    "bridge_exists",
    "delete_bridge",
    "delete_member_netns",
    "fence",
    "link_exists",
    "local_namespace",
    "netns_exists",
    "netns_pids",
]

SYS_NET = Path("/sys/class/net")
NETNS_DIR = Path("/run/netns")
UPLINK = "eth0"  # a member namespace's end of its veth to the host's cluster bridge


def link_exists(name: str) -> bool:
    return (SYS_NET / name).exists()


def bridge_exists(layout: ClusterLayout) -> bool:
    return link_exists(layout.bridge)


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def local_namespace(settings: Settings, member: str) -> Path | None:
    """The network namespace of cluster member ``member`` when it runs on this host (the
    development cluster: ``<cluster_prefix>-<member>``); None on another machine."""
    path = NETNS_DIR / f"{settings.cluster_prefix}-{member}"
    return path if path.exists() else None


def netns_pids(name: str) -> list[int]:
    """Every process in the namespace (none when it does not exist)."""
    if not netns_exists(name):
        return []
    done = probe(["ip", "netns", "pids", name], timeout=10)
    return [int(p) for p in done.stdout.split() if p.isdigit()]


def add_bridge(layout: ClusterLayout) -> None:
    """The members' bridge with the host's address on it."""
    bridge = layout.bridge
    run(["ip", "link", "add", bridge, "type", "bridge"], what=f"add bridge {bridge}")
    run(
        ["ip", "link", "set", bridge, "type", "bridge", "nf_call_iptables", "0"],
        what=f"keep {bridge} out of iptables",
    )
    run(
        ["ip", "addr", "add", f"{layout.gateway}/{layout.prefix_len}", "dev", bridge],
        what=f"address {bridge}",
    )
    run(["ip", "link", "set", bridge, "up"], what=f"bring {bridge} up")


def add_member_netns(layout: ClusterLayout, member: MemberLayout) -> None:
    """The member's namespace with ``eth0`` (its address) wired to the bridge by a veth."""
    ns, veth = member.netns, member.veth
    run(["ip", "netns", "add", ns], what=f"add network namespace {ns}")
    run(
        ["ip", "link", "add", veth, "type", "veth", "peer", "name", UPLINK, "netns", ns],
        what=f"add veth {veth}",
    )
    run(["ip", "link", "set", veth, "master", layout.bridge, "up"], what=f"attach {veth}")
    inside = ["ip", "-n", ns]
    run(
        [*inside, "addr", "add", f"{member.address}/{member.prefix_len}", "dev", UPLINK],
        what=f"address {member.name}",
    )
    run([*inside, "link", "set", UPLINK, "up"], what=f"bring up {UPLINK} of {member.name}")
    run([*inside, "link", "set", "lo", "up"], what=f"bring up lo of {member.name}")
    run([*inside, "route", "add", "default", "via", layout.gateway], what=f"route {member.name}")
    in_ns = ["ip", "netns", "exec", ns]
    run([*in_ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"], what=f"forward IPv4 in {ns}")
    run([*in_ns, "nft", "-f", "-"], what=f"fence {ns}", input_text=fence(layout))


FENCE_TABLE = "cvps_dev"


def fence(layout: ClusterLayout) -> str:
    """The nftables table of a member's namespace: new connections out of ``eth0`` only to the
    cluster subnet (replies to any client pass: they belong to a connection made from there)."""
    subnet = ipaddress.IPv4Interface(f"{layout.gateway}/{layout.prefix_len}").network
    rule = f'oifname "{UPLINK}" ip daddr != {subnet} ct state new reject'
    return f"""table inet {FENCE_TABLE} {{
  chain forward {{
    type filter hook forward priority filter; policy accept;
    {rule}
  }}
  chain output {{
    type filter hook output priority filter; policy accept;
    {rule}
  }}
}}
"""


def delete_member_netns(member: MemberLayout) -> list[str]:
    """Remove the member's namespace (its veth pair goes with it); what was removed."""
    removed = []
    if netns_exists(member.netns):
        run(["ip", "netns", "del", member.netns], what=f"delete namespace {member.netns}")
        removed.append(f"netns {member.netns}")
    # The kernel removes the veth with the namespace, but asynchronously: it may still be
    # listed here and gone a moment later.
    if link_exists(member.veth) and probe(["ip", "link", "del", member.veth], timeout=10).ok:
        removed.append(f"veth {member.veth}")
    return removed


def delete_bridge(layout: ClusterLayout) -> list[str]:
    if not bridge_exists(layout):
        return []
    run(["ip", "link", "del", layout.bridge], what=f"delete bridge {layout.bridge}")
    return [f"bridge {layout.bridge}"]
