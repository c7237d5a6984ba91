"""SSH forwards: the host's SSH address and a server's port -> that server's address, port 22.

One nftables table the platform owns (``ip containervps``, the ``ssh_forward_table`` setting)
holds every forward as an element of one map, looked up by a single DNAT rule: a create or a
delete changes one element, whatever the number of servers; there is no LXD device and no
process per server, so tenant projects can block proxy devices altogether. The database is the
source of truth: ``sync`` rebuilds the whole table from it (start-up, reconciler passes, a host
that lost its rules on reboot). Traffic is DNATed to the server's own address, so it crosses
the VPS's interface (shaped and metered like any other); replies to another VPS on the bridge
are masqueraded (hairpin). A server on a cluster member is forwarded the same way: its address
is routed to its member (services/cluster/routes.py, synced with the forwards).
"""

from __future__ import annotations

import ipaddress
import json

from sqlmodel import col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server
from containervps.services.cluster import routes
from containervps.shell import probe, run

__all__ = ["drop_table", "forwards", "put", "remove", "sync", "wanted"]

MAP = "ssh_forwards"
SSH_PORT = 22


def _nft(script: str, *, what: str) -> None:
    run(["nft", "-f", "-"], what=what, input_text=script)


def _table(settings: Settings, elements: dict[int, str]) -> str:
    table = settings.ssh_forward_table
    subnet = ipaddress.IPv4Interface(settings.bridge_subnet).network
    listen = settings.ssh_address
    dnat = f"ip daddr {listen} dnat ip to tcp dport map @{MAP}"
    items = ", ".join(f"{port} : {ipv4} . {SSH_PORT}" for port, ipv4 in sorted(elements.items()))
    return f"""
add table ip {table}
delete table ip {table}
table ip {table} {{
  map {MAP} {{
    type inet_service : ipv4_addr . inet_service
    {f"elements = {{ {items} }}" if items else ""}
  }}
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    {dnat}
  }}
  chain output {{
    type nat hook output priority -100; policy accept;
    {dnat}
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ct status dnat ip saddr {subnet} ip daddr {subnet} masquerade
  }}
}}
"""


def wanted(settings: Settings) -> dict[int, str]:
    """SSH port -> address of every live server, from the database."""
    with session_scope(settings) as session:
        rows = session.exec(
            select(Server.ssh_port, Server.ipv4).where(
                col(Server.deleted_at).is_(None),
                col(Server.ssh_port).is_not(None),
                col(Server.ipv4).is_not(None),
            )
        ).all()
    return {int(port): str(ipv4) for port, ipv4 in rows if port and ipv4}


def sync(settings: Settings) -> None:
    """Replace the table with the forwards of every live server, in one nft transaction; and
    the routes to the addresses of servers on cluster members (routes.py)."""
    _nft(_table(settings, wanted(settings)), what="load the SSH forwards")
    routes.sync(settings)


def forwards(settings: Settings) -> dict[int, str] | None:
    """The forwards the kernel holds (port -> address), None when the table is missing."""
    done = probe(["nft", "-j", "list", "map", "ip", settings.ssh_forward_table, MAP])
    if not done.ok:
        return None
    found: dict[int, str] = {}
    for item in json.loads(done.stdout)["nftables"]:
        for port, target in item.get("map", {}).get("elem", []):
            found[int(port)] = str(target["concat"][0])
    return found


def put(settings: Settings, *, port: int, ipv4: str) -> None:
    """Forward ``port`` to ``ipv4``:22, replacing an older target; one element changes (the
    table is built from the database first if the host lost it)."""
    table, element = settings.ssh_forward_table, f"{{ {port} : {ipv4} . {SSH_PORT} }}"
    added = probe(["nft", "add", "element", "ip", table, MAP, element])
    if added.ok:
        return
    if "File exists" in added.stderr:  # the port pointed elsewhere: swap in one transaction
        drop = f"delete element ip {table} {MAP} {{ {port} }}\n"
        _nft(f"{drop}add element ip {table} {MAP} {element}\n", what=f"forward SSH port {port}")
    else:
        sync(settings)  # no table: the server's row is live already, so it is included


def remove(settings: Settings, *, port: int) -> None:
    """Stop forwarding ``port``; a port not forwarded is fine (the reconciler's sync repairs
    anything else)."""
    probe(["nft", "delete", "element", "ip", settings.ssh_forward_table, MAP, f"{{ {port} }}"])


def drop_table(settings: Settings) -> None:
    """Remove the table and every forward in it (test and benchmark clean-up)."""
    probe(["nft", "delete", "table", "ip", settings.ssh_forward_table])
