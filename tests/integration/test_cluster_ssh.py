"""SSH into servers on a real 3-member LXD cluster through this host's forwarded ports.

Each server on a member gets an SSH port from the same allocator as on one host, the same DNAT
forward (the test's own nftables table), and a host route ``<ipv4>/32 via <member>``
(services/cluster/routes.py) marked with the test's own routing protocol number. A server is
then moved off its member by a drain of that member (stopped, moved by LXD under the same
name, started), its route follows, and it answers SSH on the same port and address, with its
files.

The cluster has names of its own (prefix ``cvpsnt``, bridge ``cvpsntbr0``, 10.214.4.0/24,
member network ``cvpsntnet0`` 10.215.4.0/24), so that other cluster tests and a development
cluster brought up by hand are left alone. The client is the real OpenSSH client on this host,
connecting to the platform's ``ssh_address`` (here this host's address on the cluster bridge),
once also from a source address outside the cluster's subnets (the single-host platform's own
SSH address), whose replies take the member's default route back. Timings are printed
(``-s``).
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from containervps.api.render import server_json
from containervps.config import Settings, get_settings
from containervps.db.engine import session_scope
from containervps.db.models import Server
from containervps.lxd import Lxd
from containervps.schemas.plan import PlanCreate
from containervps.schemas.quota import QuotaUpdate
from containervps.services.actions.runner import run_action
from containervps.services.cluster import drain, members, routes
from containervps.services.servers import ssh_forwards
from containervps.services.servers.create import create_server
from containervps.services.servers.delete import request_delete
from containervps.services.tenancy import plans, ssh_keys, tenants
from containervps.shell import probe
from tests.integration.cluster_support import cluster_settings, running_cluster
from tests.integration.ssh_support import make_key, ssh, wait_for_ssh

IMAGE = "debian-12"  # has sshd (test_ssh_access.py)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp("cluster-ssh-data")
    return cluster_settings(data_dir, name="net", prefix="cvpsnt", number=4)


@pytest.fixture(scope="module")
def lxd(settings: Settings) -> Iterator[Lxd]:
    with running_cluster(settings, image=IMAGE) as client:
        yield client


def _tenant_with_key(settings: Settings, lxd: Lxd, key: Path) -> int:
    plans.create_plan(
        settings,
        PlanCreate(
            name="nt-small",
            vcpus=1,
            memory_mib=256,
            disk_gib=2,
            disk_read_iops=500,
            disk_write_iops=500,
            net_ingress_mbit=100,
            net_egress_mbit=100,
            max_processes=500,
            transfer_gib=10,
        ),
    )
    quota = QuotaUpdate(
        max_servers=4,
        max_vcpus=4,
        max_memory_mib=1024,
        max_disk_gib=8,
        max_processes=2000,
        max_snapshots=1,
    )
    tenant = tenants.create_tenant(settings, lxd, name=f"nt-{secrets.token_hex(3)}", quota=quota)
    tid = tenant.tenant.id
    assert tid is not None
    public = key.with_suffix(".pub").read_text()
    ssh_keys.add_key(settings, tenant_id=tid, name="laptop", public_key=public)
    return tid


def _create(settings: Settings, lxd: Lxd, *, tenant_id: int, name: str) -> Server:
    accepted = create_server(
        settings,
        lxd,
        tenant_id=tenant_id,
        name=name,
        plan="nt-small",
        image=IMAGE,
        ssh_keys=["laptop"],
    )
    assert accepted.action.id is not None
    done = run_action(settings, accepted.action.id, lxd=lxd)
    assert done.status == "success", done.error_message
    with session_scope(settings) as session:
        server = session.get(Server, accepted.server.id)
        assert server is not None
        return server


def _member_addresses(settings: Settings) -> dict[str, str]:
    return {h.name: routes.member_address(h.url) for h in members.list_hosts(settings)}


def _login(settings: Settings, server: Server, key: Path, command: str) -> list[str]:
    """A real SSH login with the key through the server's forwarded port; its output words."""
    assert server.ssh_port is not None
    done = ssh(server.ssh_port, command, key=key, host=settings.ssh_address)
    assert done.returncode == 0, done.stderr.decode()[-500:]
    return done.stdout.decode().split()


def test_ssh_reaches_servers_on_members_and_follows_a_move(
    settings: Settings, lxd: Lxd, tmp_path: Path
) -> None:
    key = make_key(tmp_path, "laptop")
    tid = _tenant_with_key(settings, lxd, key)
    started = time.monotonic()
    a = _create(settings, lxd, tenant_id=tid, name="nt-a")
    b = _create(settings, lxd, tenant_id=tid, name="nt-b")
    print(f"2 {IMAGE} creates on members: {time.monotonic() - started:.1f}s")
    assert (a.member, b.member) == ("member1", "member2")  # placement spreads them
    addresses = _member_addresses(settings)

    # Each has a port from the one allocator, shown to the tenant; the same DNAT forward as
    # on one host; and its address routed to its member.
    for server in (a, b):
        shown = server_json(server)["ssh"]  # the host is the API process's ssh_address
        assert shown == {"host": shown["host"], "port": server.ssh_port, "user": "root"}
        assert settings.ssh_port_min <= (server.ssh_port or 0) <= settings.ssh_port_max
    assert a.ssh_port != b.ssh_port
    assert ssh_forwards.forwards(settings) == {a.ssh_port: a.ipv4, b.ssh_port: b.ipv4}
    assert routes.held(settings) == {a.ipv4: addresses["member1"], b.ipv4: addresses["member2"]}

    for server in (a, b):
        assert server.ssh_port is not None
        started = time.monotonic()
        wait_for_ssh(server.ssh_port, key=key, host=settings.ssh_address)
        first = time.monotonic() - started
        started = time.monotonic()
        who = _login(settings, server, key, "id -u; hostname")
        login = time.monotonic() - started
        assert who == ["0", server.name]
        print(
            f"{server.name} on {server.member}: sshd answered {first:.1f}s after the create, "
            f"a login running a command took {login:.2f}s"
        )
        # The forward listens on the SSH address only, as on one host: not on loopback.
        with pytest.raises(ConnectionRefusedError), socket.socket() as probe_socket:
            probe_socket.settimeout(5)
            probe_socket.connect(("127.0.0.1", server.ssh_port))
    # A client whose address is outside the cluster's subnets: the server's replies go back
    # through its member's default route to this host.
    outside = get_settings().ssh_address  # the single-host platform's, on its own bridge
    cluster_net = ipaddress.ip_interface(settings.cluster_subnet).network
    assert ipaddress.ip_address(outside) not in cluster_net
    far = ssh(b.ssh_port or 0, "hostname", key=key, host=settings.ssh_address, bind=outside)
    assert far.returncode == 0 and far.stdout.split() == [b"nt-b"], far.stderr[-500:]
    _login(settings, a, key, "echo kept-across-the-move > /root/marker && sync")

    # Drain member1 for maintenance (services/cluster/drain.py): a is stopped, moved to the
    # member with the most room (member3; member2 holds b), its route follows, it starts again.
    started = time.monotonic()
    accepted = drain.request_drain(settings, name="member1")
    assert [action.server_id for action in accepted.actions] == [a.id]
    for migration in accepted.actions:
        assert migration.id is not None
        moved_done = run_action(settings, migration.id, lxd=lxd)
        assert moved_done.status == "success", moved_done.error_message
    moved = time.monotonic() - started
    assert members.get_host(settings, "member1").state == "evacuated"
    with session_scope(settings) as session:
        row = session.get(Server, a.id)
        assert row is not None and row.member == "member3" and row.ssh_port == a.ssh_port
    assert routes.held(settings) == {a.ipv4: addresses["member3"], b.ipv4: addresses["member2"]}
    assert routes.sync(settings) == 0  # the move re-synced it already
    inst = lxd.instances.get(name=a.lxd_name, project=a.lxd_project)
    assert inst.location == "member3" and inst.devices["eth0"]["ipv4.address"] == a.ipv4
    assert a.ssh_port is not None
    started = time.monotonic()
    wait_for_ssh(a.ssh_port, key=key, host=settings.ssh_address)
    back = time.monotonic() - started
    assert _login(settings, a, key, "hostname; cat /root/marker") == [
        "nt-a",
        "kept-across-the-move",
    ]
    print(
        f"drain of member1 (one running {IMAGE} server to member3): {moved:.1f}s; "
        f"sshd answered {back:.1f}s after the drain"
    )

    # The sync owns its routes only: a lost one comes back, a stale one of its protocol goes,
    # and with nothing to change it changes nothing.
    stale = str(ipaddress.ip_interface(settings.bridge_subnet).network[250])
    probe(["ip", "route", "del", f"{a.ipv4}/32", "proto", str(settings.cluster_route_protocol)])
    probe(
        [
            "ip",
            "route",
            "add",
            f"{stale}/32",
            "via",
            addresses["member1"],
            "proto",
            str(settings.cluster_route_protocol),
        ]
    )
    assert routes.sync(settings) == 2
    started = time.monotonic()
    assert routes.sync(settings) == 0
    print(f"route sync with nothing to change: {(time.monotonic() - started) * 1000:.0f}ms")
    assert routes.held(settings) == {a.ipv4: addresses["member3"], b.ipv4: addresses["member2"]}

    # Deleting the servers takes their forwards and routes away.
    for server in (a, b):
        assert server.id is not None
        action = request_delete(settings, tenant_id=tid, server_id=server.id)
        assert action.action.id is not None
        done = run_action(settings, action.action.id, lxd=lxd)
        assert done.status == "success", done.error_message
    assert routes.held(settings) == {}
    assert ssh_forwards.forwards(settings) == {}
