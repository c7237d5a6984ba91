"""Unit tests of the control plane's pure logic, on a migrated SQLite file (no LXD)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from containervps.config import Settings
from containervps.db import migrate
from containervps.db.backup import backup_database
from containervps.db.engine import session_scope
from containervps.db.models import Action, Plan, Quota, Server, Tenant
from containervps.errors import (
    Conflict,
    InvalidInput,
    Locked,
    NotFound,
    ResourceLimitExceeded,
    ResourceUnavailable,
    Unauthorized,
)
from containervps.services import actions, capacity, plans, servers, tokens
from containervps.services.capacity import HostCapacity, Request


class FakeHost:
    def server_info(self) -> None:
        return None

    def get_pool(self, name: str) -> None:
        return None  # capacity then measures the root filesystem


class FakeLxd:
    """Only what admission touches: LXD answers and where pools live."""

    host = FakeHost()


@pytest.fixture
def db(tmp_path: Path) -> Settings:
    s = Settings(data_dir=tmp_path, nic_egress_limit="skip")
    migrate.upgrade(s)
    return s


def _tenant(s: Settings, *, max_servers: int = 3) -> int:
    with session_scope(s) as session:
        t = Tenant(name=f"t{time.monotonic_ns()}", lxd_project="p")
        session.add(t)
        session.flush()
        assert t.id is not None
        t.lxd_project = f"cvps-t-{t.id}"
        room = max(4, max_servers)
        session.add(
            Quota(
                tenant_id=t.id,
                max_servers=max_servers,
                max_vcpus=room,
                max_memory_mib=256 * room,
                max_disk_gib=2 * room + 2,
                max_processes=256 * room,
            )
        )
        from containervps.db.models import Image, utcnow

        if session.get(Image, "busybox") is None:
            session.add(
                Image(
                    name="busybox",
                    os="busybox",
                    release="1",
                    description="",
                    source="busybox",
                    fingerprint="f" * 64,
                    size_bytes=1,
                    build_seconds=0.1,
                    built_at=utcnow(),
                )
            )
        return t.id


def _create(s: Settings, tenant_id: int, name: str, **kw: Any) -> servers.Accepted:
    args: dict[str, Any] = {"plan": "nano", "image": "busybox", **kw}
    return servers.create_server(s, FakeLxd(), tenant_id=tenant_id, name=name, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["a", "web-1", "x" * 63, "0abc"])
def test_valid_hostnames(name: str) -> None:
    servers.validate_name(name)


@pytest.mark.parametrize("name", ["", "-a", "a-", "A", "a_b", "a.b", "x" * 64, "a b", "é"])
def test_invalid_hostnames(name: str) -> None:
    with pytest.raises(InvalidInput):
        servers.validate_name(name)


def test_seeded_plans_and_limits_show_unenforced_egress(db: Settings) -> None:
    names = [p.name for p in plans.list_plans(db)]
    assert names[:4] == ["nano", "micro", "small", "medium"]
    with session_scope(db) as session:
        nano = session.get(Plan, "nano")
    assert nano is not None
    limits = plans.plan_limits(nano, egress_enforced=False, egress_reason="no tc police")
    assert limits["net_egress"] == {
        "value": 50,
        "unit": "Mbit/s",
        "enforced": False,
        "reason": "no tc police",
    }
    config, devices = plans.instance_limits(limits, pool="cvps", network="br")
    assert config == {
        "limits.cpu": "1",
        "limits.memory": "256MiB",
        "limits.memory.enforce": "hard",
        "limits.processes": "256",
    }
    assert devices["root"]["limits.read"] == "500iops" and devices["root"]["size"] == "2GiB"
    assert "limits.egress" not in devices["eth0"] and devices["eth0"]["limits.ingress"] == "50Mbit"
    enforced = plans.plan_limits(nano, egress_enforced=True)
    assert (
        plans.instance_limits(enforced, pool="p", network="n")[1]["eth0"]["limits.egress"]
        == "50Mbit"
    )


def test_create_plan_validates(db: Settings) -> None:
    spec = plans.PlanSpec("tiny", 1, 64, 1, 10, 10, 1, 1, 64, 1)
    plans.create_plan(db, spec)
    with pytest.raises(Conflict):
        plans.create_plan(db, spec)
    with pytest.raises(InvalidInput):
        plans.create_plan(db, plans.PlanSpec("Bad Name", 1, 64, 1, 10, 10, 1, 1, 64, 1))
    with pytest.raises(InvalidInput):
        plans.create_plan(db, plans.PlanSpec("zero", 0, 64, 1, 10, 10, 1, 1, 64, 1))


def test_admission_quota_then_capacity(db: Settings) -> None:
    tenant_id = _tenant(db)
    with session_scope(db) as session:
        quota = session.get(Quota, tenant_id)
        assert quota is not None
        roomy = HostCapacity(servers=100, vcpus=100, memory_mib=10**6, disk_gib=10**4)
        capacity.admit(
            session, tenant_id=tenant_id, quota=quota, capacity=roomy, want=Request(1, 256, 2, 256)
        )
        with pytest.raises(ResourceLimitExceeded) as over:
            capacity.admit(
                session,
                tenant_id=tenant_id,
                quota=quota,
                capacity=roomy,
                want=Request(5, 256, 2, 256),
            )
        assert over.value.details["limit"] == "vcpus"
        tight = HostCapacity(servers=100, vcpus=100, memory_mib=100, disk_gib=10**4)
        with pytest.raises(ResourceUnavailable) as full:
            capacity.admit(
                session,
                tenant_id=tenant_id,
                quota=quota,
                capacity=tight,
                want=Request(1, 256, 2, 256),
            )
        assert full.value.details == {"resource": "memory_mib", "free": 100, "requested": 256}


def test_concurrent_admissions_never_overshoot(db: Settings) -> None:
    tenant_id = _tenant(db, max_servers=3)
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        try:
            _create(db, tenant_id, f"s{i}")
            outcomes.append("ok")
        except ResourceLimitExceeded:
            outcomes.append("quota")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 3 and outcomes.count("quota") == 17
    with session_scope(db) as session:
        assert len(session.exec(select(Server).where(Server.tenant_id == tenant_id)).all()) == 3


def test_idempotency_key_replays_and_rejects_a_different_request(db: Settings) -> None:
    tenant_id = _tenant(db)
    first = _create(db, tenant_id, "one", idempotency_key="k1")
    again = _create(db, tenant_id, "one", idempotency_key="k1")
    assert again.replayed and (again.server.id, again.action.id) == (
        first.server.id,
        first.action.id,
    )
    with pytest.raises(Conflict):
        _create(db, tenant_id, "two", idempotency_key="k1")
    with pytest.raises(Conflict):
        _create(db, tenant_id, "one")  # the name is taken


def test_actions_lock_and_tenant_scoping(db: Settings) -> None:
    tenant_id, other = _tenant(db), _tenant(db)
    accepted = _create(db, tenant_id, "box")
    sid = accepted.server.id or 0
    with pytest.raises(Locked) as locked:
        servers.request_action(db, tenant_id=tenant_id, server_id=sid, command="reboot")
    assert locked.value.details["action_id"] == accepted.action.id
    with pytest.raises(NotFound):
        servers.request_action(db, tenant_id=other, server_id=sid, command="reboot")
    with pytest.raises(NotFound):
        actions.get_action(db, action_id=accepted.action.id or 0, tenant_id=other)
    actions.finish(db, accepted.action.id or 0, server_update={"status": "running"})
    reboot = servers.request_action(db, tenant_id=tenant_id, server_id=sid, command="reboot")
    assert reboot.server.status == "rebooting"
    with pytest.raises(InvalidInput):
        servers.request_action(db, tenant_id=tenant_id, server_id=sid, command="explode")


def test_list_filters_and_pagination(db: Settings) -> None:
    tenant_id = _tenant(db, max_servers=10)
    for i in range(5):
        _create(db, tenant_id, f"n{i}", labels={"env": "prod" if i % 2 else "dev", "tier": "web"})
    rows, total = servers.list_servers(db, tenant_id=tenant_id, per_page=2, page=2)
    assert total == 5 and [r.name for r in rows] == ["n2", "n3"]
    assert servers.list_servers(db, tenant_id=tenant_id, label_selector="env=prod")[1] == 2
    assert servers.list_servers(db, tenant_id=tenant_id, label_selector="tier,env=dev")[1] == 3
    assert servers.list_servers(db, tenant_id=tenant_id, label_selector="missing")[1] == 0
    with pytest.raises(InvalidInput):
        servers.list_servers(db, tenant_id=tenant_id, label_selector="bad key")


def test_tokens_hash_only_and_revocation(db: Settings) -> None:
    tenant_id = _tenant(db)
    row, secret = tokens.create_token(db, name="ci", tenant_id=tenant_id)
    assert secret not in row.token_hash and row.token_hash == tokens.hash_token(secret)
    ident = tokens.authenticate(db, secret)
    assert ident.tenant_id == tenant_id and not ident.is_admin
    tokens.revoke_token(db, row.id or 0)
    for bad in (secret, "", None, "cvps_nope"):
        with pytest.raises(Unauthorized):
            tokens.authenticate(db, bad)
    with pytest.raises(InvalidInput):
        tokens.create_token(db, name="x", tenant_id=tenant_id, is_admin=True)


def test_wait_action_wakes_when_finished_here(db: Settings) -> None:
    tenant_id = _tenant(db)
    accepted = _create(db, tenant_id, "w")
    aid = accepted.action.id or 0
    threading.Timer(0.2, lambda: actions.finish(db, aid, error=("lxd_error", "boom"))).start()
    started = time.monotonic()
    done = actions.wait_action(db, action_id=aid, tenant_id=tenant_id, timeout=5)
    assert done.status == "error" and done.error_code == "lxd_error"
    assert time.monotonic() - started < 1.0
    with session_scope(db) as session:
        action = session.get(Action, aid)
        assert action is not None and action.finished is not None


def test_runner_liveness() -> None:
    me = actions.this_runner()
    assert actions.runner_alive(me)
    pid, started = me.split(":")
    assert not actions.runner_alive(f"{pid}:{started}0")
    assert not actions.runner_alive(None) and not actions.runner_alive("garbage")


def test_db_backup_is_a_consistent_copy(db: Settings, tmp_path: Path) -> None:
    _tenant(db)
    target = tmp_path / "backups" / "copy.db"
    size = backup_database(db, target)
    assert size > 0 and target.exists()
    copy = Settings(data_dir=tmp_path, database_url=f"sqlite:///{target}")
    with session_scope(copy) as session:
        assert session.exec(select(Tenant)).first() is not None
    with pytest.raises(InvalidInput):
        backup_database(db, Path(db.db_url.removeprefix("sqlite:///")))
