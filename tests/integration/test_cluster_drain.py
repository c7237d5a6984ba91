"""Draining a member of a real 3-member LXD cluster for maintenance, and restoring it.

Through the service the admin API and the CLI call (services/cluster/drain.py): member1 is
drained, each tenant gets its notice event before its server moves, every server lands on
member2/member3 with the same id, address, data, snapshot and power state, member1 ends
evacuated and takes no create until restored. Then the admin endpoints, in-process
(TestClient): 404 naming the hosts, 409 for transitions the state machine refuses, 403 for a
tenant token, the tenant's events, a restore, and a drain run by the API's worker.

The cluster has names of its own (cluster_support.py: prefix ``cvpsdr``, 10.214.3.0/24,
member network 10.215.3.0/24, its own nftables tables and route protocol), so that the other
cluster tests and a development cluster brought up by hand are left alone. Timings are
printed (``-s``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from containervps.api.app import create_app
from containervps.config import Settings, get_settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, Event, Server
from containervps.lxd import Lxd
from containervps.schemas.quota import QuotaUpdate
from containervps.services.actions.runner import run_action
from containervps.services.cluster import drain, members
from containervps.services.events import EventType
from containervps.services.servers.create import create_server
from containervps.services.servers.power import request_power
from containervps.services.servers.snapshots import create_snapshot
from containervps.services.tenancy import tenants, tokens
from tests.integration.cluster_support import MEMBERS, cluster_settings, running_cluster, small_plan

# Prompt moves and no background loops in the API app of the admin checks.
QUICK = {
    "shutdown_timeout": 5,
    "reconcile_interval": 0,
    "usage_sample_interval": 0,
    "lxcfs_watch_interval": 0,
}
MARK = "/etc/drain-check"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp("drain-data")
    base = cluster_settings(data_dir, name="drain", prefix="cvpsdr", number=3)
    return base.model_copy(update=QUICK)


@pytest.fixture(scope="module")
def lxd(settings: Settings) -> Iterator[Lxd]:
    with running_cluster(settings, image="busybox") as client:
        yield client


def _plan(settings: Settings) -> str:
    return small_plan(settings, f"dr-{secrets.token_hex(2)}")


def _run(settings: Settings, lxd: Lxd, action: Action) -> Action:
    assert action.id is not None
    done = run_action(settings, action.id, lxd=lxd)
    assert done.status == "success", done.error_message
    return done


def _create(settings: Settings, lxd: Lxd, *, tenant_id: int, name: str, plan: str) -> Server:
    accepted = create_server(
        settings, lxd, tenant_id=tenant_id, name=name, plan=plan, image="busybox"
    )
    _run(settings, lxd, accepted.action)
    return _server(settings, accepted.server.id or 0)


def _server(settings: Settings, server_id: int) -> Server:
    with session_scope(settings) as session:
        server = session.get(Server, server_id)
        assert server is not None
        return server


def _exec(lxd: Lxd, server: Server, command: list[str]) -> str:
    answer = lxd.instances.exec(name=server.lxd_name, project=server.lxd_project, command=command)
    assert answer.ok, answer.stderr
    return answer.stdout


def test_drain_moves_every_server_off_with_notice_first_and_restore_readmits(
    settings: Settings, lxd: Lxd
) -> None:
    plan = _plan(settings)
    quota = QuotaUpdate(
        max_servers=10,
        max_vcpus=10,
        max_memory_mib=640,
        max_disk_gib=10,
        max_processes=1000,
        max_snapshots=2,
    )
    tenant = tenants.create_tenant(settings, lxd, name=f"dr-{secrets.token_hex(3)}", quota=quota)
    tid = tenant.tenant.id
    assert tid is not None
    # Round robin over equal members: s0, s3 and s6 go to member1.
    servers = [_create(settings, lxd, tenant_id=tid, name=f"s{n}", plan=plan) for n in range(7)]
    on_member1 = [s for s in servers if s.member == "member1"]
    assert len(on_member1) == 3
    marks = {s.id: secrets.token_hex(8) for s in servers}
    for server in servers:
        _exec(lxd, server, ["sh", "-c", f"echo {marks[server.id]} > {MARK}"])
    running, stopped, _ = on_member1
    assert running.id is not None and stopped.id is not None
    snapshot = create_snapshot(settings, lxd, server_id=running.id, tenant_id=tid, name="before")
    _run(
        settings,
        lxd,
        request_power(settings, tenant_id=tid, server_id=stopped.id, command="poweroff").action,
    )

    started = time.monotonic()
    accepted = drain.request_drain(settings, name="member1")
    assert accepted.host.state == "draining"
    assert sorted(a.server_id or 0 for a in accepted.actions) == sorted(
        s.id or 0 for s in on_member1
    )
    seconds: dict[int, float] = {}
    for action in accepted.actions:
        began = time.monotonic()
        _run(settings, lxd, action)
        seconds[action.server_id or 0] = time.monotonic() - began
    total = time.monotonic() - started
    for server_id, took in seconds.items():
        power = "stopped" if server_id == stopped.id else "running"
        print(f"moved server {server_id} ({power}): {took:.1f}s")
    print(f"drain of member1 ({len(seconds)} servers): {total:.1f}s")

    with session_scope(settings) as session:
        for action in accepted.actions:
            done = session.get(Action, action.id)
            assert done is not None and done.command == "migrate_server"
            notices = session.exec(
                select(Event).where(
                    Event.server_id == action.server_id,
                    Event.type == EventType.MAINTENANCE_NOTICE,
                )
            ).all()
            assert len(notices) == 1 and notices[0].at <= done.started
            text = notices[0].message
            assert "host member1" in text
            assert ("CRIU" in text) == (action.server_id != stopped.id)
            moved = session.exec(
                select(Event).where(
                    Event.server_id == action.server_id,
                    Event.type == EventType.MAINTENANCE_MOVED,
                )
            ).one()
            assert moved.at > notices[0].at and moved.details["to"] in ("member2", "member3")
            if action.server_id != stopped.id:
                print(f"server {action.server_id} off for {moved.details['seconds']} s (its event)")
    for before in servers:
        after = _server(settings, before.id or 0)
        inst = lxd.instances.get(name=after.lxd_name, project=after.lxd_project)
        assert (after.id, after.ipv4, after.lxd_name) == (before.id, before.ipv4, before.lxd_name)
        assert after.member in ("member2", "member3") and inst.location == after.member
        assert inst.devices["eth0"]["ipv4.address"] == before.ipv4
        if before.id == stopped.id:
            assert inst.status == "Stopped" and after.status == "off"
            continue
        assert inst.status == "Running" and after.status == "running"
        assert _exec(lxd, after, ["cat", MARK]).strip() == marks[before.id]
        assert before.ipv4 in _exec(lxd, after, ["ip", "-4", "addr", "show", "eth0"])
    moved_running = _server(settings, running.id)
    names = lxd.snapshots.names(name=moved_running.lxd_name, project=moved_running.lxd_project)
    assert snapshot.name in names  # the btrfs snapshot went along
    assert members.get_host(settings, "member1").state == "evacuated"
    assert members.server_counts(settings).get("member1", 0) == 0

    # The stopped one starts on its new member with its data.
    _run(
        settings,
        lxd,
        request_power(settings, tenant_id=tid, server_id=stopped.id, command="poweron").action,
    )
    assert _exec(lxd, _server(settings, stopped.id), ["cat", MARK]).strip() == marks[stopped.id]

    # Evacuated: no create lands there (member1 would win the tie of empty members otherwise).
    assert _create(settings, lxd, tenant_id=tid, name="after", plan=plan).member != "member1"

    as_tenant = {"Authorization": f"Bearer {_tenant_token(settings, tid)}"}
    with _api(settings) as (client, admin):
        base = "/v1/admin/hosts"
        r = client.post(f"{base}/nosuch/actions/drain", headers=admin)
        assert r.status_code == 404, r.text
        assert r.json()["error"]["details"]["hosts"] == list(MEMBERS)
        r = client.post(f"{base}/member1/actions/drain", headers=admin)
        assert r.status_code == 409, r.text
        assert r.json()["error"]["details"]["state"] == "evacuated"
        r = client.post(f"{base}/member2/actions/restore", headers=admin)
        assert r.status_code == 409, r.text  # online: nothing to restore
        r = client.get(f"/v1/servers/{running.id}/events", headers=as_tenant)
        assert r.status_code == 200, r.text
        types = [e["type"] for e in r.json()["events"]]  # newest first
        assert types.index("server.maintenance_moved") < types.index("server.maintenance_notice")
        for verb in ("drain", "restore"):
            r = client.post(f"{base}/member1/actions/{verb}", headers=as_tenant)
            assert r.status_code == 403, r.text

        # Restored through the API: member1 is the emptiest, the next create lands there.
        r = client.post(f"{base}/member1/actions/restore", headers=admin)
        assert r.status_code == 200 and r.json()["host"]["state"] == "online", r.text
        back = _create(settings, lxd, tenant_id=tid, name="back", plan=plan)
        assert back.member == "member1"

        # A drain through the API: 202, the move runs on the API's worker, the tenant polls it.
        started = time.monotonic()
        r = client.post(f"{base}/member1/actions/drain", headers=admin)
        assert r.status_code == 202, r.text
        assert r.json()["host"]["state"] == "draining"
        (action,) = r.json()["actions"]
        assert action["command"] == "migrate_server" and action["resources"][0]["id"] == back.id
        deadline = time.monotonic() + 120
        while action["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.5)
            action = client.get(f"/v1/actions/{action['id']}", headers=as_tenant).json()["action"]
        assert action["status"] == "success", action
        print(f"drain through the API (1 running server): {time.monotonic() - started:.1f}s")
        r = client.get(f"{base}/member1", headers=admin)
        assert r.json()["host"]["state"] == "evacuated" and r.json()["host"]["servers"] == 0
        r = client.post(f"{base}/member1/actions/restore", headers=admin)
        assert r.status_code == 200, r.text
    after = _server(settings, back.id or 0)
    assert after.member != "member1" and after.status == "running"
    assert members.get_host(settings, "member1").state == "online"


def _tenant_token(settings: Settings, tenant_id: int) -> str:
    return tokens.create_token(settings, name="tenant", tenant_id=tenant_id)[1]


@contextmanager
def _api(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The API app in-process with this test's settings, and an admin's headers."""
    _, admin = tokens.create_token(settings, name="admin", is_admin=True)
    mp = pytest.MonkeyPatch()
    for key in settings.model_fields_set:
        mp.setenv(f"CONTAINERVPS_{key.upper()}", str(getattr(settings, key)))
    get_settings.cache_clear()
    try:
        with TestClient(create_app()) as client:
            yield client, {"Authorization": f"Bearer {admin}"}
    finally:
        mp.undo()
        get_settings.cache_clear()
