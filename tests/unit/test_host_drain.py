"""Draining a cluster member: the checks before anything moves, the notice before the move,
the target never the drained member, a failed move left in place, restore (the real
cluster: tests/integration/test_cluster_drain.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, cast

import pytest
from sqlmodel import col, select
from typer.testing import CliRunner

from containervps.cli import app as cli_app
from containervps.cli import common as cli_common
from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, Event, HostMember, Server
from containervps.errors import Conflict, LxdError
from containervps.lxd import Lxd
from containervps.lxd.types import InstanceInfo
from containervps.services.actions import store
from containervps.services.actions.job import Job
from containervps.services.cluster import drain, members
from containervps.services.servers import boundaries, migrate, ssh_forwards
from tests.unit.fakes import create, make_tenant

NANO_MIB = 256


class FakeCluster:
    """Instances by name with their member and status; records what was done, in order."""

    def __init__(self, settings: Settings, where: dict[str, str], *, fail: bool = False) -> None:
        self.settings, self.fail = settings, fail
        self.info = {
            name: InstanceInfo(name, "p", "Running", {}, {}, (), location=member)
            for name, member in where.items()
        }
        self.calls: list[tuple[str, str]] = []
        self.notice_seen_at_move: list[bool] = []
        self.instances, self.operations, self.cluster = self, self, self

    def wait_idle(self, *, name: str, project: str) -> None:
        return None

    def get(self, *, name: str, project: str) -> InstanceInfo:
        return self.info[name]

    def set_state(self, *, name: str, project: str, action: str, **_: Any) -> None:
        self.calls.append((action, name))
        status = "Running" if action == "start" else "Stopped"
        self.info[name] = replace(self.info[name], status=status)

    def move_to_member(self, *, name: str, project: str, member: str) -> None:
        self.calls.append((f"move:{member}", name))
        with session_scope(self.settings) as session:  # the tenant was told before this
            server = session.exec(select(Server).where(Server.lxd_name == name)).one()
            notices = session.exec(
                select(Event).where(
                    Event.server_id == server.id, Event.type == "server.maintenance_notice"
                )
            ).all()
        self.notice_seen_at_move.append(len(notices) == 1)
        if self.fail:
            raise LxdError(f"move instance {name}: the target refused it")
        self.info[name] = replace(self.info[name], location=member)


@pytest.fixture(autouse=True)
def _no_host_side(monkeypatch: pytest.MonkeyPatch) -> None:
    """No nftables and no NIC work in unit tests."""
    monkeypatch.setattr(ssh_forwards, "sync", lambda settings: None)
    monkeypatch.setattr(boundaries, "after", lambda job: None)


def _members(s: Settings, *, memory_mib: int = 10**5) -> None:
    with session_scope(s) as session:
        for n in (1, 2, 3):
            session.add(
                HostMember(name=f"member{n}", url="", cpu=2, memory_mib=memory_mib, disk_gib=10**3)
            )


def _servers(s: Settings, count: int) -> list[Server]:
    """``count`` running servers placed round robin (member1, member2, member3, member1...)."""
    tenant_id = make_tenant(s, max_servers=count)
    out = []
    for n in range(count):
        accepted = create(s, tenant_id, f"s{n}")
        store.finish(s, accepted.action.id or 0, server_update={"status": "running"})
        out.append(accepted.server)
    return out


def _state(s: Settings, name: str) -> str:
    return members.get_host(s, name).state


def _move(s: Settings, lxd: FakeCluster, action: Action) -> Server:
    with session_scope(s) as session:
        row = session.get(Action, action.id)
        server = session.get(Server, action.server_id)
        assert row is not None and server is not None
    migrate.run(Job(s, cast(Lxd, lxd), row, server))
    with session_scope(s) as session:
        moved = session.get(Server, action.server_id)
        assert moved is not None
        return moved


def test_notice_first_then_stop_move_start_off_the_drained_member(db: Settings) -> None:
    _members(db)
    servers = _servers(db, 4)  # s0 and s3 on member1
    lxd = FakeCluster(db, {s.lxd_name: s.member or "" for s in servers})
    accepted = drain.request_drain(db, name="member1")
    assert accepted.host.state == "draining" and _state(db, "member1") == "draining"
    with session_scope(db) as session:
        notices = session.exec(select(Event).order_by(col(Event.id))).all()
    assert [e.server_id for e in notices] == [servers[0].id, servers[3].id]
    assert "move 1 of 2" in notices[0].message and "CRIU" in notices[0].message
    for event, action in zip(notices, accepted.actions, strict=True):
        assert event.at <= action.started and action.command == "migrate_server"
    moved = [_move(db, lxd, a) for a in accepted.actions]
    assert lxd.notice_seen_at_move == [True, True]
    assert all(m.member in ("member2", "member3") and m.status == "running" for m in moved)
    for server in moved:
        verbs = [verb for verb, name in lxd.calls if name == server.lxd_name]
        assert verbs == ["stop", f"move:{server.member}", "start"]
    assert _state(db, "member1") == "evacuated"
    # restore puts it back online; the servers stay where they went
    assert drain.restore_member(db, name="member1").state == "online"
    assert members.server_counts(db).get("member1", 0) == 0


def test_a_drain_that_does_not_fit_elsewhere_is_refused_naming_what_and_writes_nothing(
    db: Settings,
) -> None:
    _members(db, memory_mib=2 * NANO_MIB)  # sellable: room for a few nano servers each
    servers = _servers(db, 6)
    with session_scope(db) as session:  # fill member2 and member3 up to their sellable room
        for server in session.exec(select(Server)).all():
            if server.member != "member1":
                server.memory_mib = int(2 * NANO_MIB * db.memory_overcommit) // 2
                session.add(server)
    with pytest.raises(Conflict) as refused:
        drain.request_drain(db, name="member1")
    unfit = refused.value.details["unfit"]
    assert sorted(unfit) == sorted(s.id or 0 for s in servers if s.member == "member1")
    for entry in unfit.values():
        assert entry["members"]["member1"] == {"reason": "moving away from it"}
        assert entry["members"]["member2"]["reason"] == "memory_mib"
    assert _state(db, "member1") == "online"
    with session_scope(db) as session:
        assert session.exec(select(Event)).all() == []
        assert session.exec(select(Action).where(Action.command == "migrate_server")).all() == []
        assert {s.member for s in session.exec(select(Server)).all()} == {
            "member1",
            "member2",
            "member3",
        }


def test_busy_servers_and_invalid_transitions_are_refused(db: Settings) -> None:
    _members(db)
    tenant_id = make_tenant(db)
    busy = create(db, tenant_id, "creating")  # its create action still runs
    assert busy.server.member == "member1"
    with pytest.raises(Conflict) as refused:
        drain.request_drain(db, name="member1")
    assert refused.value.details["busy"][0]["command"] == "create_server"
    assert _state(db, "member1") == "online"
    # an empty member is evacuated at once; evacuated cannot drain; online cannot restore
    assert drain.request_drain(db, name="member2").host.state == "evacuated"
    with pytest.raises(Conflict) as again:
        drain.request_drain(db, name="member2")
    assert again.value.details["state"] == "evacuated"
    with pytest.raises(Conflict):
        drain.restore_member(db, name="member3")


def test_a_failed_move_leaves_the_server_running_where_it_was(db: Settings) -> None:
    _members(db)
    servers = _servers(db, 1)
    lxd = FakeCluster(db, {servers[0].lxd_name: "member1"}, fail=True)
    (action,) = drain.request_drain(db, name="member1").actions
    with pytest.raises(LxdError) as failed:
        _move(db, lxd, action)
    assert "not moved off host member1" in failed.value.brief
    assert "the target refused it" in failed.value.brief
    with session_scope(db) as session:
        server = session.get(Server, servers[0].id)
        assert server is not None and server.member == "member1"
        kinds = [e.type for e in session.exec(select(Event).order_by(col(Event.id))).all()]
    assert kinds == ["server.maintenance_notice", "server.maintenance_not_moved"]
    assert lxd.info[servers[0].lxd_name].status == "Running"  # started again where it was
    assert _state(db, "member1") == "draining"
    with pytest.raises(Conflict):  # its action still runs here (the runner closes it)
        drain.restore_member(db, name="member1")


def test_a_resumed_move_finds_the_instance_moved_and_finishes(db: Settings) -> None:
    _members(db)
    (server,) = _servers(db, 1)
    (action,) = drain.request_drain(db, name="member1").actions
    # The process died after LXD moved the stopped instance, before anything was recorded.
    store.merge_params(db, action.id or 0, {"was_running": True, "to": "member3"})
    lxd = FakeCluster(db, {server.lxd_name: "member3"})
    lxd.info[server.lxd_name] = replace(lxd.info[server.lxd_name], status="Stopped")
    moved = _move(db, lxd, action)
    assert moved.member == "member3" and moved.status == "running"
    assert lxd.calls == [("start", server.lxd_name)]  # no second stop, no second move
    assert _state(db, "member1") == "evacuated"


def test_the_cli_drains_and_restores(app_env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    _members(app_env)
    monkeypatch.setattr(cli_common, "lxd", lambda: FakeCluster(app_env, {}))
    runner = CliRunner()
    drained = runner.invoke(cli_app, ["host", "drain", "member2", "--json"])
    assert drained.exit_code == 0, drained.output
    out = json.loads(drained.stdout)
    assert out["host"]["state"] == "evacuated" and out["moves"] == []
    again = runner.invoke(cli_app, ["host", "drain", "member2"])
    assert again.exit_code == 1 and "evacuated" in again.output
    restored = runner.invoke(cli_app, ["host", "restore", "member2", "--json"])
    assert restored.exit_code == 0 and json.loads(restored.stdout)["state"] == "online"
