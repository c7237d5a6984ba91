"""Host routes to servers on cluster members: ``<server ipv4>/32 via <its member's address>``.

The SSH forward (services/servers/ssh_forwards.py) DNATs a host port to the server's own
address, wherever it runs. On one host that address is on the host's bridge; on a member it
is on the member's managed bridge, which this host reaches only through the member: so each
live server on a member gets a host route to its /32 through the member's address (from its
``host_member.url``). The database is the source of truth: ``sync`` makes the kernel's routes
of the platform's own routing protocol number (``cluster_route_protocol``) exactly the wanted
set, in one ``ip -batch``; routes of any other protocol are never touched. A server moved to
another member (server.member changed) has its route replaced by the next sync.

The development cluster's members are on a bridge of this host; in a real multi-machine
cluster the member addresses must be reachable from the platform's host the same way (one L2
segment or routed), and each member must forward IPv4 between its address and its bridge and
route replies back (the dev cluster does both in netns.py). Servers' addresses then move with
them: no NAT on the members, one /32 per server here.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from sqlmodel import col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import HostMember, Server
from containervps.errors import ContainerVpsError, InvalidInput
from containervps.lxd.locks import file_lock
from containervps.shell import probe, run

log = logging.getLogger(__name__)

__all__ = [
    "drop_all",
    "held",
    "member_address",
    "plan",
    "refresh",
    "sync",
    "wanted",
    "wanted_routes",
]


def member_address(url: str) -> str:
    """The IPv4 address in a member's URL (``https://10.214.0.12:8443`` -> ``10.214.0.12``)."""
    host = urlsplit(url).hostname or ""
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError as exc:
        raise InvalidInput(
            f"member URL {url!r} has no IPv4 address to route servers through",
            details={"url": url},
        ) from exc


def wanted_routes(servers: Iterable[tuple[str, str]], members: Mapping[str, str]) -> dict[str, str]:
    """Server address -> gateway, from (ipv4, member name) pairs and member name -> URL.

    A server on a member that is not recorded, or whose URL names no IPv4 address, gets no
    route (nothing to route it through; logged), and the others still do."""
    found: dict[str, str] = {}
    for ipv4, member in servers:
        try:
            found[str(ipaddress.IPv4Address(ipv4))] = member_address(members[member])
        except (KeyError, InvalidInput):
            log.warning("no route to a server's member", extra={"member": member, "ipv4": ipv4})
    return found


def plan(want: Mapping[str, str], have: Mapping[str, str], *, protocol: int) -> list[str]:
    """The ``ip -batch`` lines that turn ``have`` into ``want`` (address -> gateway)."""
    lines = [
        f"route replace {ip}/32 via {gw} proto {protocol}"
        for ip, gw in sorted(want.items())
        if have.get(ip) != gw
    ]
    lines += [f"route del {ip}/32 proto {protocol}" for ip in sorted(set(have) - set(want))]
    return lines


def wanted(settings: Settings) -> dict[str, str]:
    """Address -> member address of every live server on a member, from the database."""
    with session_scope(settings) as session:
        rows = session.exec(
            select(Server.ipv4, Server.member).where(
                col(Server.deleted_at).is_(None),
                col(Server.member).is_not(None),
                col(Server.ipv4).is_not(None),
            )
        ).all()
        urls = {m.name: m.url for m in session.exec(select(HostMember)).all()}
    return wanted_routes(((str(ip), str(m)) for ip, m in rows if ip and m), urls)


def held(settings: Settings) -> dict[str, str]:
    """The platform's routes the kernel holds now (address -> gateway)."""
    protocol = str(settings.cluster_route_protocol)
    out = run(
        ["ip", "-4", "-j", "route", "show", "table", "main", "proto", protocol],
        what="list the routes to servers on members",
        timeout=30,
    )
    found = {}
    for route in json.loads(out or "[]"):
        address, _, length = str(route.get("dst", "")).partition("/")
        if route.get("gateway") and length in ("", "32"):  # ours are /32s through a member
            found[address] = str(route["gateway"])
    return found


def sync(settings: Settings) -> int:
    """Make the kernel's platform routes the database's (host-wide lock); changes applied."""
    with file_lock(settings.cluster_route_lock):
        lines = plan(wanted(settings), held(settings), protocol=settings.cluster_route_protocol)
        if lines:
            script = "\n".join(lines) + "\n"
            run(["ip", "-force", "-batch", "-"], what="route servers to members", input_text=script)
    if lines:
        log.info("routes to members synced", extra={"changes": len(lines)})
    return len(lines)


def refresh(settings: Settings) -> None:
    """Sync after a server on a member went away: a failure only leaves a stale route, so it
    is logged and the reconciler's next pass repairs it."""
    try:
        sync(settings)
    except ContainerVpsError as exc:
        log.warning("routes to members not synced", extra={"error": exc.one_line()})


def drop_all(settings: Settings) -> None:
    """Remove every route of the platform's protocol (test clean-up)."""
    protocol = str(settings.cluster_route_protocol)
    probe(["ip", "-4", "route", "flush", "table", "main", "proto", protocol])
