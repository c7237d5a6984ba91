"""Placement on recorded cluster members: the score, the reasons a member is skipped, the
race-free reservation, and what admins see (the real cluster: test_cluster_placement.py)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import cast

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select
from typer.testing import CliRunner

from containervps.api.app import create_app
from containervps.cli import app as cli_app
from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import HostMember, Quota, Server
from containervps.errors import ResourceUnavailable
from containervps.lxd import Lxd
from containervps.schemas.plan import PlanCreate
from containervps.services.actions import store
from containervps.services.cluster import members, placement
from containervps.services.cluster.placement import Candidate
from containervps.services.cluster.states import MemberState
from containervps.services.servers.resize import request_resize
from containervps.services.tenancy import plans, tokens
from tests.unit.fakes import FakeLxd, create, make_tenant

NANO_MIB, NANO_GIB = 256, 2  # the seeded nano plan's memory and disk


def _members(s: Settings, *, memory_mib: int = 10**5, disk_gib: int = 10**3, **states: str) -> None:
    with session_scope(s) as session:
        for n in (1, 2, 3):
            name = f"member{n}"
            session.add(
                HostMember(
                    name=name,
                    url=f"https://10.214.0.1{n}:8443",
                    state=states.get(name, "online"),
                    cpu=2,
                    memory_mib=memory_mib,
                    disk_gib=disk_gib,
                )
            )


def _placed(s: Settings) -> list[Server]:
    with session_scope(s) as session:
        query = select(Server).where(col(Server.deleted_at).is_(None)).order_by(col(Server.id))
        return list(session.exec(query).all())


def test_the_score_prefers_memory_then_disk_then_fewest_servers_then_name() -> None:
    def c(name: str, memory: int = 100, disk: int = 10, servers: int = 1) -> Candidate:
        return Candidate(name, memory_mib_free=memory, disk_gib_free=disk, servers=servers)

    def best(*candidates: Candidate) -> str | None:
        chosen = placement.choose(list(candidates))
        return chosen.name if chosen else None

    assert best(c("a"), c("b", memory=101, disk=0, servers=9)) == "b"
    assert best(c("a"), c("b", disk=11, servers=9)) == "b"
    assert best(c("a", servers=2), c("b")) == "b"
    assert best(c("b"), c("a")) == "a"
    assert best() is None


def test_member_capacity_is_its_resources_times_the_overcommit_ratios(db: Settings) -> None:
    row = HostMember(name="m", url="", cpu=2, memory_mib=1000, disk_gib=10)
    s = db.model_copy(update={"cpu_overcommit": 4.0, "memory_overcommit": 1.5})
    cap = placement.member_capacity(s, row)
    assert (cap.vcpus, cap.memory_mib, cap.disk_gib) == (8, 1500, int(10 * s.disk_overcommit))
    assert cap.servers == s.max_containers and cap.disk_read_iops is None


def test_creates_spread_over_members_and_record_the_member(db: Settings) -> None:
    _members(db)
    tenant_id = make_tenant(db, max_servers=6)
    for n in range(6):
        create(db, tenant_id, f"s{n}")
    placed = _placed(db)
    assert [s.member for s in placed] == ["member1", "member2", "member3"] * 2
    # an SSH port each from the one allocator (its address is routed to its member)
    assert len({s.ssh_port for s in placed}) == 6 and None not in {s.ssh_port for s in placed}
    for server in placed:
        # the host-side pieces that do not reach a member are left out, and say why
        assert server.ipv4
        for limit in ("net_egress", "disk_read_mb_s", "disk_write_mb_s"):
            entry = server.limits[limit]
            assert entry["enforced"] is False and server.member in entry["reason"]
    assert members.server_counts(db) == {"member1": 2, "member2": 2, "member3": 2}


def test_without_members_a_create_stays_on_the_single_host(db: Settings) -> None:
    create(db, make_tenant(db), "alone")
    (server,) = _placed(db)
    assert server.member is None and server.ssh_port is not None
    assert members.server_counts(db) == {}


def test_a_refusal_names_every_member_and_why_it_was_skipped(db: Settings) -> None:
    _members(db, memory_mib=NANO_MIB - 1, member1="draining", member2="offline")
    tenant_id = make_tenant(db)
    with pytest.raises(ResourceUnavailable) as refused:
        create(db, tenant_id, "nowhere")
    assert refused.value.details == {
        "resource": "host_member",
        "members": {
            "member1": {"reason": "draining"},
            "member2": {"reason": "offline"},
            "member3": {
                "reason": "memory_mib",
                "resource": "memory_mib",
                "free": NANO_MIB - 1,
                "requested": NANO_MIB,
            },
        },
    }
    assert "member1: draining" in refused.value.brief
    assert _placed(db) == []  # nothing half-created


def test_a_full_member_is_skipped_for_disk_and_a_draining_one_never_chosen(db: Settings) -> None:
    s = db.model_copy(update={"disk_overcommit": 1.0})
    _members(s, disk_gib=NANO_GIB, member2="draining")
    tenant_id = make_tenant(s)
    create(s, tenant_id, "a")
    create(s, tenant_id, "b")
    assert [x.member for x in _placed(s)] == ["member1", "member3"]
    with pytest.raises(ResourceUnavailable) as refused:
        create(s, tenant_id, "c")
    skipped = refused.value.details["members"]
    assert skipped["member2"] == {"reason": "draining"}
    assert skipped["member1"]["reason"] == skipped["member3"]["reason"] == "disk_gib"
    members.set_state(s, name="member2", state=MemberState.ONLINE)
    create(s, tenant_id, "c")
    assert _placed(s)[-1].member == "member2"


def test_concurrent_creates_never_overfill_a_member(db: Settings) -> None:
    _members(db, memory_mib=2 * NANO_MIB)  # room for two nano servers each
    tenant_id = make_tenant(db, max_servers=20)
    with session_scope(db) as session:  # quota past the members' room: they bind
        quota = session.get(Quota, tenant_id)
        assert quota is not None
        quota.max_memory_mib, quota.max_disk_gib = 100 * NANO_MIB, 100
        session.add(quota)
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        try:
            create(db, tenant_id, f"s{i}")
            outcomes.append("ok")
        except ResourceUnavailable:
            outcomes.append("full")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(outcomes) == {"ok": 6, "full": 6}
    assert Counter(s.member for s in _placed(db)) == {"member1": 2, "member2": 2, "member3": 2}


def _plan(s: Settings, name: str, memory_mib: int) -> str:
    plans.create_plan(
        s,
        PlanCreate(
            name=name,
            vcpus=1,
            memory_mib=memory_mib,
            disk_gib=NANO_GIB,
            disk_read_iops=100,
            disk_write_iops=50,
            net_ingress_mbit=10,
            net_egress_mbit=10,
            max_processes=100,
            transfer_gib=10,
        ),
    )
    return name


def test_a_resize_is_admitted_against_its_members_room(db: Settings) -> None:
    _members(db, memory_mib=2 * NANO_MIB)
    tenant_id = make_tenant(db)
    accepted = create(db, tenant_id, "a")
    store.finish(db, accepted.action.id or 0, server_update={"status": "running"})
    server_id, lxd = accepted.server.id or 0, cast(Lxd, FakeLxd())
    assert accepted.server.member == "member1"
    with pytest.raises(ResourceUnavailable) as full:
        big = _plan(db, "big", 768)
        request_resize(db, lxd, tenant_id=tenant_id, server_id=server_id, plan=big)
    assert full.value.details == {
        "resource": "memory_mib",
        "free": NANO_MIB,
        "requested": 512,
        "member": "member1",
    }
    request_resize(db, lxd, tenant_id=tenant_id, server_id=server_id, plan=_plan(db, "fits", 512))
    (resized,) = _placed(db)
    assert resized.plan == "fits" and resized.memory_mib == 512
    assert resized.limits["net_egress"]["enforced"] is False


def test_admins_see_the_member_on_servers_and_the_count_on_hosts(app_env: Settings) -> None:
    _members(app_env)
    tenant_id = make_tenant(app_env)
    create(app_env, tenant_id, "web")
    _, secret = tokens.create_token(app_env, name="ops", is_admin=True)
    a = {"Authorization": f"Bearer {secret}"}
    client = TestClient(create_app(), raise_server_exceptions=False)
    (server,) = client.get("/v1/admin/servers", headers=a).json()["servers"]
    assert server["member"] == "member1"
    host = client.get("/v1/admin/hosts/member1", headers=a).json()["host"]
    assert host["servers"] == 1
    hosts = client.get("/v1/admin/hosts", headers=a).json()["hosts"]
    assert [h["servers"] for h in hosts] == [1, 0, 0]
    # the tenant's own view has no member
    _, tenant_secret = tokens.create_token(app_env, name="t", tenant_id=tenant_id)
    mine = client.get("/v1/servers", headers={"Authorization": f"Bearer {tenant_secret}"})
    (own,) = mine.json()["servers"]
    assert "member" not in own
    assert own["ssh"] == {"host": app_env.ssh_address, "port": app_env.ssh_port_min, "user": "root"}
    # the CLI: a member column in `server list`, the count in `host show`
    runner = CliRunner()
    (listed,) = json.loads(runner.invoke(cli_app, ["server", "list", "--all", "--json"]).stdout)
    assert listed["member"] == "member1"
    table = runner.invoke(cli_app, ["server", "list", "--all"]).stdout
    assert "member" in table and "member1" in table
    shown = json.loads(runner.invoke(cli_app, ["host", "show", "member1", "--json"]).stdout)
    assert shown["servers"] == 1
