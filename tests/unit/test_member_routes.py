"""Routes to servers on cluster members: the wanted set from the database, the ``ip -batch``
plan that turns the kernel's routes into it, and the dev cluster namespace's fence (the real
routes and logins: tests/integration/test_cluster_ssh.py)."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import HostMember, Server
from containervps.errors import InvalidInput
from containervps.services.cluster import netns, routes
from containervps.services.cluster.layout import cluster_layout
from tests.unit.fakes import add_server, make_tenant


def _members(session: Session) -> None:
    for n in (1, 2):
        session.add(
            HostMember(
                name=f"member{n}",
                url=f"https://10.214.0.1{n}:8443",
                cpu=2,
                memory_mib=1024,
                disk_gib=5,
            )
        )


def test_a_member_address_is_the_ipv4_of_its_url() -> None:
    assert routes.member_address("https://10.214.0.12:8443") == "10.214.0.12"
    for bad in ("https://member2.example:8443", "", "https://[fd00::1]:8443"):
        with pytest.raises(InvalidInput):
            routes.member_address(bad)


def test_wanted_routes_each_server_on_a_member_through_it() -> None:
    urls = {
        "member1": "https://10.214.0.11:8443",
        "member2": "https://10.214.0.12:8443",
        "named": "https://member9.example:8443",
    }
    servers = [
        ("10.215.0.5", "member1"),
        ("10.215.0.6", "member2"),
        ("10.215.0.7", "gone"),
        ("10.215.0.8", "named"),
    ]
    assert routes.wanted_routes(servers, urls) == {
        "10.215.0.5": "10.214.0.11",
        "10.215.0.6": "10.214.0.12",
    }  # a member not recorded, or with no IPv4 address, has nothing to route through
    assert routes.wanted_routes([], urls) == {}


def test_wanted_reads_live_servers_on_members_only(db: Settings) -> None:
    tenant_id = make_tenant(db)
    with session_scope(db) as session:
        _members(session)
        add_server(session, tenant_id, "a", ipv4="10.215.0.5", member="member1")
        add_server(session, tenant_id, "b", ipv4="10.215.0.6", member="member2")
        add_server(session, tenant_id, "gone", ipv4="10.215.0.7", member="member1", deleted=True)
        add_server(session, tenant_id, "here", ipv4="10.213.0.8")  # on this host: no route
        add_server(session, tenant_id, "new", member="member1")  # no address yet
    assert routes.wanted(db) == {"10.215.0.5": "10.214.0.11", "10.215.0.6": "10.214.0.12"}
    with session_scope(db) as session:  # moved: the same address through another member
        row = session.exec(select(Server).where(Server.name == "a")).one()
        row.member = "member2"
        session.add(row)
    assert routes.wanted(db) == {"10.215.0.5": "10.214.0.12", "10.215.0.6": "10.214.0.12"}


def test_the_plan_replaces_changed_routes_and_deletes_only_unwanted_ones() -> None:
    want = {"10.215.0.5": "10.214.0.13", "10.215.0.6": "10.214.0.12", "10.215.0.9": "10.214.0.11"}
    have = {"10.215.0.5": "10.214.0.11", "10.215.0.6": "10.214.0.12", "10.215.0.7": "10.214.0.11"}
    assert routes.plan(want, have, protocol=214) == [
        "route replace 10.215.0.5/32 via 10.214.0.13 proto 214",  # moved to member3
        "route replace 10.215.0.9/32 via 10.214.0.11 proto 214",  # new
        "route del 10.215.0.7/32 proto 214",  # its server is gone
    ]
    assert routes.plan(want, want, protocol=214) == []  # nothing to change: no command at all
    assert routes.plan({}, {}, protocol=214) == []


def test_the_namespace_fence_lets_replies_out_and_new_connections_only_to_the_cluster(
    db: Settings,
) -> None:
    layout = cluster_layout(db.model_copy(update={"cluster_subnet": "10.214.4.1/24"}))
    script = netns.fence(layout)
    rule = 'oifname "eth0" ip daddr != 10.214.4.0/24 ct state new reject'
    assert script.count(rule) == 2  # forwarded (containers) and output (the member itself)
    assert "hook forward" in script and "hook output" in script and "policy accept" in script
