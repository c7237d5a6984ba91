"""Everything else works on a real 3-member LXD cluster, for servers on a member that is not
the one whose socket the platform uses: power, exec, the console, resize (disk too),
snapshots, rebuild, usage samples from LXD's state, delete; and the reconciler across members:
a member whose daemon stops is marked offline with its servers, the others keep serving, and
all is restored when it is back; a server found on another member is adopted.

The cluster has names of its own (prefix ``cvpsop``, bridge ``cvpsopbr0``, 10.214.5.0/24,
member network ``cvpsopnet0`` 10.215.5.0/24, nftables tables ``cvpsoptest`` and
``cvpsop_filter``), so that the other cluster tests and a cluster brought up by hand are left
alone. The settings go through the environment, as the API app in-process reads them. Timings
are printed (``-s``).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from containervps.api.app import create_app
from containervps.config import Settings, get_settings
from containervps.db import migrate
from containervps.db.engine import session_scope
from containervps.db.models import Event, Server, UsageSample
from containervps.lxd import Lxd, connect_socket
from containervps.schemas.quota import QuotaUpdate
from containervps.services.actions.runner import run_action
from containervps.services.cluster import members, routes
from containervps.services.cluster.dev import DevCluster
from containervps.services.events.journal import EventType
from containervps.services.firewalls import enforce
from containervps.services.images.service import ImageService
from containervps.services.metering.sampling import sample_all
from containervps.services.metering.usage import monthly_usage
from containervps.services.reconcile.reconciler import Reconciler
from containervps.services.servers import guest, snapshots
from containervps.services.servers.create import create_server
from containervps.services.servers.delete import request_delete
from containervps.services.servers.power import request_power
from containervps.services.servers.rebuild import request_rebuild
from containervps.services.servers.resize import request_resize
from containervps.services.servers.restore import request_restore
from containervps.services.servers.ssh_forwards import drop_table
from tests.integration.api_support import TEST_ENV, ApiTenant, make_tenant
from tests.integration.cluster_support import small_plan

MEMBERS = ("member1", "member2", "member3")
CLUSTER_DIR = Path("/var/lib/containervps-cluster-ops")
GATEWAY = "10.215.5.1"  # the member network's bridge (inside each member's namespace)
PINGS, PING_BYTES = 40, 1000


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    data_dir = tmp_path_factory.mktemp("member-ops-data")
    env = {
        **TEST_ENV,
        "CONTAINERVPS_DATA_DIR": str(data_dir),
        "CONTAINERVPS_LOG_DIR": str(data_dir / "log"),
        "CONTAINERVPS_CLUSTER_DIR": str(CLUSTER_DIR),
        "CONTAINERVPS_CLUSTER_PREFIX": "cvpsop",
        "CONTAINERVPS_CLUSTER_BRIDGE": "cvpsopbr0",
        "CONTAINERVPS_CLUSTER_SUBNET": "10.214.5.1/24",
        "CONTAINERVPS_CLUSTER_NETWORK": "cvpsopnet0",
        "CONTAINERVPS_CLUSTER_NETWORK_SUBNET": "10.215.5.1/24",
        # LXD reports a silent member offline after this many seconds (it must be above 10).
        "CONTAINERVPS_CLUSTER_OFFLINE_THRESHOLD": "11",
        # The platform's servers live on the cluster's managed network, numbered in its subnet.
        "CONTAINERVPS_BRIDGE": "cvpsopnet0",
        "CONTAINERVPS_BRIDGE_SUBNET": "10.215.5.1/24",
        "CONTAINERVPS_SSH_LISTEN_ADDRESS": "10.214.5.1",  # this host's cluster bridge address
        "CONTAINERVPS_CLUSTER_ROUTE_PROTOCOL": "225",  # the test's own routes to members
        "CONTAINERVPS_CLUSTER_ROUTE_LOCK": str(data_dir / "routes.lock"),
        "CONTAINERVPS_LXD_SOCKET": str(CLUSTER_DIR / "member1" / "unix.socket"),
        "CONTAINERVPS_LXD_CREATE_LOCK": str(data_dir / "create.lock"),
        # Host-global kernel objects: never the platform's own.
        "CONTAINERVPS_SSH_FORWARD_TABLE": "cvpsoptest",
        "CONTAINERVPS_NET_FILTER_TABLE": "cvpsop_filter",
        "CONTAINERVPS_NET_FILTER_LOCK": str(data_dir / "net-filter.lock"),
        "CONTAINERVPS_TENANT_PROJECT_PREFIX": "cvpsop-t-",
    }
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)
    get_settings.cache_clear()
    s = get_settings()
    migrate.upgrade(s)
    yield s
    mp.undo()
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def cluster(settings: Settings) -> Iterator[DevCluster]:
    dev = DevCluster(settings, members=len(MEMBERS))
    dev.down()  # what a killed run of this test left (only this test's names)
    try:
        started = time.monotonic()
        dev.up()
        print(f"\ndev-up: {time.monotonic() - started:.1f}s")
        yield dev
    finally:
        started = time.monotonic()
        dev.down()  # every instance and project goes with the cluster
        drop_table(settings)
        enforce.drop_table(settings)
        routes.drop_all(settings)
        print(f"dev-down: {time.monotonic() - started:.1f}s")


@pytest.fixture(scope="module")
def lxd(settings: Settings, cluster: DevCluster) -> Lxd:
    assert settings.lxd_socket is not None
    client = connect_socket(settings, settings.lxd_socket)
    ImageService(settings, client).build("busybox")  # the catalogue row; LXD has it
    for name in MEMBERS:
        members.join_host(settings, client, name=name)
    return client


@pytest.fixture(scope="module")
def tenant(settings: Settings, lxd: Lxd) -> ApiTenant:
    quota = QuotaUpdate(
        max_servers=8,
        max_vcpus=8,
        max_memory_mib=2048,
        max_disk_gib=20,
        max_processes=2000,
        max_snapshots=4,
    )
    return make_tenant(settings, lxd, "op", quota=quota)


def _plan(settings: Settings, *, memory_mib: int, disk_gib: int) -> str:
    name = f"op-{memory_mib}-{disk_gib}-{secrets.token_hex(2)}"
    return small_plan(settings, name, memory_mib=memory_mib, disk_gib=disk_gib)


def _server(settings: Settings, server_id: int) -> Server:
    with session_scope(settings) as session:
        server = session.get(Server, server_id)
        assert server is not None
        return server


def _done(settings: Settings, lxd: Lxd, action_id: int | None) -> None:
    assert action_id is not None
    done = run_action(settings, action_id, lxd=lxd)
    assert done.status == "success", done.error_message


def _create(settings: Settings, lxd: Lxd, tenant: ApiTenant, name: str, plan: str) -> Server:
    accepted = create_server(
        settings, lxd, tenant_id=tenant.id, name=name, plan=plan, image="busybox"
    )
    _done(settings, lxd, accepted.action.id)
    assert accepted.server.id is not None
    return _server(settings, accepted.server.id)


def _exec(settings: Settings, lxd: Lxd, server: Server, command: str) -> str:
    assert server.id is not None
    out = guest.run_command(
        settings,
        lxd,
        server_id=server.id,
        tenant_id=server.tenant_id,
        command=["sh", "-c", command],
    )
    assert out.exit_code == 0, out.stderr
    return out.stdout


def _power(settings: Settings, lxd: Lxd, server: Server, command: str) -> float:
    assert server.id is not None
    started = time.monotonic()
    accepted = request_power(
        settings, tenant_id=server.tenant_id, server_id=server.id, command=command
    )
    _done(settings, lxd, accepted.action.id)
    return time.monotonic() - started


def _located(lxd: Lxd, server: Server) -> tuple[str, str]:
    inst = lxd.instances.get(name=server.lxd_name, project=server.lxd_project)
    return inst.location, inst.status


def _samples(settings: Settings, server_id: int) -> list[UsageSample]:
    with session_scope(settings) as session:
        query = select(UsageSample).where(UsageSample.server_id == server_id)
        return list(session.exec(query.order_by(col(UsageSample.id))).all())


def _events(settings: Settings, server_id: int, kind: EventType) -> list[Event]:
    with session_scope(settings) as session:
        query = select(Event).where(Event.server_id == server_id, Event.type == kind.value)
        return list(session.exec(query).all())


def _console(settings: Settings, tenant: ApiTenant, server_id: int) -> float:
    """A root shell through the API's console websocket; seconds to the shell's answer."""
    started = time.monotonic()
    with TestClient(create_app()) as client:
        url = f"/v1/servers/{server_id}/console"
        with client.websocket_connect(url, headers=tenant.headers) as ws:
            ws.send_text(json.dumps({"resize": {"width": 100, "height": 30}}))
            ws.send_bytes(b"echo cvps-$((6*7)); hostname\n")
            seen = b""
            for _ in range(200):
                seen += ws.receive_bytes()
                if b"cvps-42" in seen.replace(b"cvps-$((6*7))", b""):
                    break
            assert b"cvps-42" in seen.replace(b"cvps-$((6*7))", b"")
            ws.send_bytes(b"exit\n")
    return time.monotonic() - started


def test_everything_works_on_a_member(settings: Settings, lxd: Lxd, tenant: ApiTenant) -> None:
    small = _plan(settings, memory_mib=64, disk_gib=1)
    grown = _plan(settings, memory_mib=128, disk_gib=2)
    # An empty cluster: placement goes by name, member1, member2, member3.
    made = [_create(settings, lxd, tenant, f"m{n}", small) for n in range(3)]
    assert [s.member for s in made] == list(MEMBERS)
    box = made[2]  # on member3: not the member whose socket the platform uses
    assert box.id is not None and box.member == "member3"
    timings: dict[str, float] = {}

    # Power.
    timings["poweroff"] = _power(settings, lxd, box, "poweroff")
    assert _located(lxd, box) == ("member3", "Stopped")
    assert _server(settings, box.id).status == "off"
    timings["poweron"] = _power(settings, lxd, box, "poweron")
    assert _located(lxd, box) == ("member3", "Running")
    timings["reboot"] = _power(settings, lxd, box, "reboot")
    assert _located(lxd, box) == ("member3", "Running")
    assert _server(settings, box.id).status == "running"

    # Exec and the console.
    assert _exec(settings, lxd, box, "hostname").strip() == box.lxd_name
    timings["console"] = _console(settings, tenant, box.id)

    # Resize up and down, disk too (the root disk's size on the member's pool).
    for plan, memory, disk in ((grown, "128MiB", "2GiB"), (small, "64MiB", "1GiB")):
        started = time.monotonic()
        accepted = request_resize(settings, lxd, tenant_id=tenant.id, server_id=box.id, plan=plan)
        _done(settings, lxd, accepted.action.id)
        timings[f"resize to {memory}/{disk}"] = time.monotonic() - started
        inst = lxd.instances.get(name=box.lxd_name, project=box.lxd_project)
        assert inst.location == "member3" and inst.config["limits.memory"] == memory
        assert inst.devices["root"]["size"] == disk
        assert _server(settings, box.id).plan == plan

    # Snapshot, change, restore, delete the snapshot.
    _exec(settings, lxd, box, "echo before > /root/mark")
    started = time.monotonic()
    snap = snapshots.create_snapshot(
        settings, lxd, server_id=box.id, tenant_id=tenant.id, name="s1"
    )
    _exec(settings, lxd, box, "echo after > /root/mark")
    assert snap.id is not None
    accepted = request_restore(settings, server_id=box.id, tenant_id=tenant.id, snapshot_id=snap.id)
    _done(settings, lxd, accepted.action.id)
    assert _exec(settings, lxd, box, "cat /root/mark").strip() == "before"
    snapshots.delete_snapshot(
        settings, lxd, server_id=box.id, tenant_id=tenant.id, snapshot_id=snap.id
    )
    assert lxd.snapshots.names(name=box.lxd_name, project=box.lxd_project) == []
    timings["snapshot+restore+delete"] = time.monotonic() - started

    # Rebuild: a fresh container, on the same member.
    started = time.monotonic()
    accepted = request_rebuild(settings, tenant_id=tenant.id, server_id=box.id, image="busybox")
    _done(settings, lxd, accepted.action.id)
    timings["rebuild"] = time.monotonic() - started
    assert _located(lxd, box) == ("member3", "Running")
    assert _exec(settings, lxd, box, "cat /root/mark 2>/dev/null || echo gone").strip() == "gone"

    # Usage: every member's servers sampled from LXD's state in one pass, with real counters.
    started = time.monotonic()
    assert sample_all(settings, lxd) >= len(made)
    timings["sample pass"] = time.monotonic() - started
    first = _samples(settings, box.id)[-1]
    _exec(settings, lxd, box, f"ping -c {PINGS} -i 0.05 -s {PING_BYTES} -W 1 {GATEWAY} >/dev/null")
    _exec(settings, lxd, box, "dd if=/dev/zero of=/root/fill bs=1M count=20 && sync")
    assert sample_all(settings, lxd) >= len(made)
    last = _samples(settings, box.id)[-1]
    print(
        f"samples of {box.name} on member3: tx {first.net_tx_bytes} -> {last.net_tx_bytes} B, "
        f"rx {first.net_rx_bytes} -> {last.net_rx_bytes} B, cpu {last.cpu_seconds:.3f}s, "
        f"memory {last.memory_bytes / 2**20:.1f} MiB, disk {last.disk_bytes / 2**20:.1f} MiB"
    )
    assert last.tx_delta >= PINGS * PING_BYTES and last.rx_delta >= PINGS * PING_BYTES
    assert last.cpu_seconds > 0 and last.cpu_delta > 0
    assert last.memory_bytes > 0 and last.disk_bytes >= 20 * 2**20
    for server in made:  # every member's servers, member1's too
        assert server.id is not None and _samples(settings, server.id)
    month = last.at.strftime("%Y-%m")
    usage = {s.id: t for s, t in monthly_usage(settings, tenant_id=tenant.id, month=month)}
    # Monthly transfer is the sum of the recorded growths (boundary samples included).
    assert usage[box.id].net_tx_bytes == sum(s.tx_delta for s in _samples(settings, box.id))
    assert usage[box.id].net_tx_bytes >= PINGS * PING_BYTES

    # Delete: nothing left in LXD on any member.
    started = time.monotonic()
    for server in made:
        assert server.id is not None
        _done(
            settings,
            lxd,
            request_delete(settings, tenant_id=tenant.id, server_id=server.id).action.id,
        )
    timings["delete x3"] = time.monotonic() - started
    left = [i for i in lxd.instances.everywhere() if i.project.startswith(tenant.project)]
    assert left == []
    for what, seconds in timings.items():
        print(f"{what}: {seconds:.1f}s")


def _wait_member(lxd: Lxd, name: str, status: str, *, timeout: float = 90) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if lxd.cluster.member(name).status == status:
            return time.monotonic() - started
        time.sleep(1)
    raise AssertionError(f"{name} not {status} after {timeout}s")


def test_member_offline_marks_its_servers_and_the_others_keep_serving(
    settings: Settings, lxd: Lxd, tenant: ApiTenant, cluster: DevCluster
) -> None:
    small = _plan(settings, memory_mib=64, disk_gib=1)
    made = [_create(settings, lxd, tenant, f"o{n}", small) for n in range(3)]
    assert [s.member for s in made] == list(MEMBERS)
    _, on2, on3 = made
    assert on2.id is not None and on3.id is not None
    on2_id = on2.id

    # Adoption: an instance moved behind the platform's back (member2 -> member1).
    _power(settings, lxd, on2, "poweroff")
    lxd.api.request(
        "post",
        f"/instances/{on2.lxd_name}",
        project=on2.lxd_project,
        params={"target": "member1"},
        json={"name": on2.lxd_name, "migration": True},
        what="move by hand",
    )
    assert _located(lxd, on2) == ("member1", "Stopped")
    found = Reconciler(settings, lxd).run()
    assert any(f.kind == "adopted" and f.target == f"server:{on2.id}" for f in found), found
    assert _server(settings, on2_id).member == "member1"
    assert _events(settings, on2.id, EventType.MEMBER_CHANGED)
    _power(settings, lxd, on2, "poweron")
    on2 = _server(settings, on2_id)

    # member3's daemon stops; its container keeps running, LXD cannot reach it.
    assert cluster.stop_member("member3")
    offline_after = _wait_member(lxd, "member3", "Offline")
    started = time.monotonic()
    found = Reconciler(settings, lxd).run()
    pass_seconds = time.monotonic() - started
    assert members.get_host(settings, "member3").state == "offline"
    marked = _server(settings, on3.id)
    assert marked.status == "unknown" and marked.deleted_at is None
    assert "cluster member member3 is offline" in (marked.status_detail or "")
    assert _events(settings, on3.id, EventType.MEMBER_OFFLINE)
    assert not any(f.kind.startswith("orphan") or f.kind == "vanished" for f in found), found
    with TestClient(create_app()) as client:  # as its tenant sees it
        shown = client.get(f"/v1/servers/{on3.id}", headers=tenant.headers).json()["server"]
        assert shown["status"] == "unknown" and "member3" in shown["status_detail"]
        refused = client.post(f"/v1/servers/{on3.id}/actions/poweroff", headers=tenant.headers)
        assert refused.status_code == 409, refused.text
        assert "member3" in refused.json()["error"]["message"]
    again = Reconciler(settings, lxd).run()  # nothing more to do, nothing deleted
    assert not any(f.target == f"server:{on3.id}" for f in again), again
    assert _server(settings, on3.id).status == "unknown"

    # The others keep serving: a create lands elsewhere, power and exec on member2's server.
    started = time.monotonic()
    fresh = _create(settings, lxd, tenant, "o-new", small)
    create_seconds = time.monotonic() - started
    assert fresh.member in ("member1", "member2")
    assert _located(lxd, fresh) == (fresh.member, "Running")
    on2 = _server(settings, on2_id)
    off_on = _power(settings, lxd, on2, "poweroff") + _power(settings, lxd, on2, "poweron")
    assert _exec(settings, lxd, on2, "hostname").strip() == on2.lxd_name
    assert sample_all(settings, lxd) >= 2  # the reachable members' servers

    # Back: the daemon restarts, finds its running container; the reconciler restores.
    cluster.start_member("member3")
    online_after = _wait_member(lxd, "member3", "Online")
    found = Reconciler(settings, lxd).run()
    assert members.get_host(settings, "member3").state == "online"
    back = _server(settings, on3.id)
    assert back.status == "running" and back.status_detail is None
    assert _events(settings, on3.id, EventType.MEMBER_ONLINE)
    assert _exec(settings, lxd, back, "hostname").strip() == on3.lxd_name
    print(
        f"member3 offline reported after {offline_after:.1f}s; reconcile pass {pass_seconds:.1f}s;"
        f" create elsewhere {create_seconds:.1f}s; poweroff+on on member2 {off_on:.1f}s;"
        f" online again after {online_after:.1f}s"
    )
    for server in (*made, fresh):
        assert server.id is not None
        _done(
            settings,
            lxd,
            request_delete(settings, tenant_id=tenant.id, server_id=server.id).action.id,
        )
    assert [i for i in lxd.instances.everywhere() if i.project.startswith(tenant.project)] == []
