"""The kernel holds what the database says: the filter table rebuilt from it in one transaction.

Called after every change that moves it (a firewall written or deleted, a server's labels, a
server created or deleted), by the reconciler and by ``host start`` (a rebooted host lost the
table). The database is read inside a host-wide file lock, so the last rebuild to run always
renders the newest state, whichever process wrote it. A server no firewall applies to is put
in and taken out alone (``admit``/``forget``): creates and deletes stay flat as the host fills.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Firewall, HostMember, Server
from containervps.errors import ContainerVpsError
from containervps.lxd.locks import file_lock
from containervps.services.cluster import netns
from containervps.services.firewalls.render import (
    FilterServer,
    add_plain,
    remove_plain,
    render,
)
from containervps.services.servers.queries import LIVE, parse_selector, selector_matches
from containervps.shell import probe, run

log = logging.getLogger(__name__)

__all__ = [
    "admit",
    "applied",
    "drop_table",
    "filter_servers",
    "forget",
    "present",
    "refresh",
    "scripts",
    "sync",
]


def applied(firewalls: list[Firewall], servers: list[Server]) -> dict[int, list[int]]:
    """Firewall id -> ids of the live servers (of its tenant) it applies to now."""
    by_id = {s.id: s for s in servers}
    found: dict[int, list[int]] = {}
    for fw in firewalls:
        assert fw.id is not None
        ids: set[int] = set()
        for target in fw.apply_to:
            if target["type"] == "server":
                server = by_id.get(target["server"]["id"])
                if server is not None and server.tenant_id == fw.tenant_id:
                    ids.add(target["server"]["id"])
            else:
                terms = parse_selector(target["label_selector"]["selector"])
                ids |= {
                    s.id
                    for s in servers
                    if s.id is not None
                    and s.tenant_id == fw.tenant_id
                    and selector_matches(terms, s.labels)
                }
        found[fw.id] = sorted(ids)
    return found


def filter_servers(session: Session) -> list[FilterServer]:
    """Every live server with an address, with the rules of the firewalls applied to it."""
    servers = list(
        session.exec(
            select(Server).where(LIVE, col(Server.ipv4).is_not(None)).order_by(col(Server.id))
        ).all()
    )
    firewalls = list(session.exec(select(Firewall).order_by(col(Firewall.id))).all())
    rules_of = {fw.id: fw.rules for fw in firewalls}
    rules: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for fw_id, server_ids in applied(firewalls, servers).items():
        for server_id in server_ids:
            rules[server_id] += rules_of[fw_id]
    return [
        FilterServer(
            id=s.id or 0,
            tenant_id=s.tenant_id,
            ipv4=s.ipv4,
            ipv6=s.ipv6,
            rules=rules[s.id or 0] if s.id in rules else None,
            member=s.member,
        )
        for s in servers
    ]


def scripts(settings: Settings) -> dict[Path | None, str]:
    """The nft scripts that make the kernel's tables the database's: this host's (key None,
    every server) and, for each recorded cluster member whose network namespace is on this
    host (the development cluster), one in that namespace with the member's own servers:
    traffic between servers on one member's bridge never passes this host's table."""
    with session_scope(settings) as session:
        servers = filter_servers(session)
        names = session.exec(select(HostMember.name).order_by(col(HostMember.name))).all()
    table = settings.net_filter_table
    gateway = str(ipaddress.IPv4Interface(settings.bridge_subnet).ip)
    found: dict[Path | None, str] = {None: render(table=table, gateway4=gateway, servers=servers)}
    for name in names:
        namespace = netns.local_namespace(settings, name)
        if namespace is not None:
            mine = [s for s in servers if s.member == name]
            found[namespace] = render(
                table=table, gateway4=gateway, servers=mine, uplink=netns.UPLINK
            )
    return found


# Bridged frames reach the inet hooks (and conntrack) only through br_netfilter.
BRIDGE_NF = tuple(
    Path(f"/proc/sys/net/bridge/bridge-nf-call-{t}") for t in ("iptables", "ip6tables")
)


def _bridged_frames_filtered(files: tuple[Path, ...] = BRIDGE_NF) -> None:
    for path in files:
        if path.exists() and path.read_text().strip() != "1":
            path.write_text("1\n")


def _rebuild(settings: Settings) -> None:
    for namespace, text in scripts(settings).items():
        enter = [] if namespace is None else ["nsenter", f"--net={namespace}"]
        where = "" if namespace is None else f" in {namespace.name}"
        run([*enter, "nft", "-f", "-"], what=f"load the tenant firewalls{where}", input_text=text)


def sync(settings: Settings) -> None:
    """Rebuild the table from the database (host-wide lock, one nft transaction)."""
    _bridged_frames_filtered()
    with file_lock(settings.net_filter_lock):
        _rebuild(settings)


def _plain(settings: Settings, server_id: int | None) -> FilterServer | None:
    """The server as the filter sees it when no firewall applies to it (None: one does, or
    it has no address)."""
    with session_scope(settings) as session:
        row = session.get(Server, server_id)
        if row is None or row.ipv4 is None or row.member is not None:
            return None  # a member's table is its own: rebuilt whole
        tenant = Firewall.tenant_id == row.tenant_id
        if any(applied(list(session.exec(select(Firewall).where(tenant)).all()), [row]).values()):
            return None
        return FilterServer(id=row.id or 0, tenant_id=row.tenant_id, ipv4=row.ipv4, ipv6=row.ipv6)


def _patch(settings: Settings, server_id: int | None, *, commands: Callable[..., str]) -> None:
    """Apply ``commands`` for a server no firewall applies to; otherwise, or when the table is
    not as expected (missing, an element absent), rebuild it whole."""
    _bridged_frames_filtered()
    with file_lock(settings.net_filter_lock):
        server = _plain(settings, server_id)
        if server is not None:
            table = settings.net_filter_table
            if probe(["nft", "-f", "-"], input_text=commands(table=table, server=server)).ok:
                return
        _rebuild(settings)


def admit(settings: Settings, server_id: int | None) -> None:
    """Put a new server in the table, before it starts."""
    _patch(settings, server_id, commands=add_plain)


def refresh(settings: Settings) -> None:
    """Rebuild after a server moved between members: a failure is logged and the
    reconciler's next pass rebuilds."""
    try:
        sync(settings)
    except ContainerVpsError as exc:
        log.warning("filter tables not rebuilt", extra={"error": exc.one_line()})


def forget(settings: Settings, server_id: int | None) -> None:
    """Take a server that is being deleted out of the table, while its row is still live (its
    addresses are not free yet). A rebuild meanwhile may put it back until the next one; when
    even the rebuild fails (nft itself failing), that is logged and the reconciler's next pass
    rebuilds the table."""
    try:
        _patch(settings, server_id, commands=remove_plain)
    except ContainerVpsError as exc:
        log.warning("filter table not updated", extra={"error": exc.one_line()})


def present(settings: Settings) -> bool:
    """Whether the kernel holds the table (a host reboot drops it)."""
    return probe(["nft", "list", "chain", "inet", settings.net_filter_table, "forward"]).ok


def drop_table(settings: Settings) -> None:
    """Remove the table (test and benchmark clean-up)."""
    with file_lock(settings.net_filter_lock):
        probe(["nft", "delete", "table", "inet", settings.net_filter_table])
