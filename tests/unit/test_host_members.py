"""Cluster members as hosts: state transitions, join with capacity from LXD, list, show;
through the services, the admin API and the CLI, with a fake cluster (the real one:
tests/integration/test_dev_cluster.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from containervps.api import deps
from containervps.api.app import create_app
from containervps.cli import app as cli_app
from containervps.cli import common
from containervps.config import Settings
from containervps.errors import Conflict, InvalidInput, LxdNotFound, NotFound
from containervps.lxd import ClusterMemberInfo, MemberResources
from containervps.services.cluster import members
from containervps.services.cluster.states import (
    TRANSITIONS,
    MemberState,
    check_transition,
    observed_state,
)
from containervps.services.tenancy import tokens

GIB = 2**30


@dataclass
class FakeCluster:
    clustered: bool = True
    status: dict[str, str] = field(
        default_factory=lambda: {"member1": "Online", "member2": "Online", "member3": "Offline"}
    )
    pools: set[str] = field(default_factory=lambda: {"member1", "member2"})

    def enabled(self) -> bool:
        return self.clustered

    def members(self) -> list[ClusterMemberInfo]:
        return [self.member(n) for n in self.status]

    def member(self, name: str) -> ClusterMemberInfo:
        if name not in self.status:
            raise LxdNotFound(f"read cluster member {name}: not found")
        n = name[-1]
        return ClusterMemberInfo(
            name=name,
            url=f"https://10.214.0.1{n}:8443",
            status=self.status[name],
            message="",
            roles=(),
            groups=("default",),
            config={},
        )

    def resources(self, member: str) -> MemberResources:
        return MemberResources(cpu_threads=2, memory_bytes=24 * GIB, disk_bytes=252 * GIB)

    def pool_total_bytes(self, pool: str, *, member: str) -> int:
        if member not in self.pools:
            raise LxdNotFound(f"read pool {pool} on {member}: not found")
        return 5 * GIB


@dataclass
class FakeApi:
    socket_path: Path = Path("/srv/cl/member1/unix.socket")


@dataclass
class FakeLxd:
    cluster: FakeCluster = field(default_factory=FakeCluster)
    api: FakeApi = field(default_factory=FakeApi)


def _lxd(fake: FakeLxd) -> Any:
    return fake


@pytest.mark.parametrize("current", list(MemberState))
def test_every_state_allows_exactly_its_transitions(current: MemberState) -> None:
    for new in MemberState:
        if new == current or new in TRANSITIONS[current]:
            check_transition("m", current=current, new=new)
            continue
        with pytest.raises(Conflict) as refused:
            check_transition("m", current=current, new=new)
        assert refused.value.details == {
            "host": "m",
            "state": current.value,
            "allowed": sorted(s.value for s in TRANSITIONS[current]),
        }


def test_only_online_admits_and_an_evacuated_member_restores_to_online() -> None:
    assert [s for s in MemberState if s.admits] == [MemberState.ONLINE]
    with pytest.raises(Conflict, match="host m is evacuated: it cannot become draining"):
        check_transition("m", current=MemberState.EVACUATED, new=MemberState.DRAINING)
    check_transition("m", current=MemberState.EVACUATED, new=MemberState.ONLINE)


@pytest.mark.parametrize(
    ("lxd_status", "recorded", "expected"),
    [
        ("Online", None, MemberState.ONLINE),
        ("Online", MemberState.OFFLINE, MemberState.ONLINE),  # came back
        ("Online", MemberState.DRAINING, MemberState.DRAINING),  # the platform's intent holds
        ("Online", MemberState.EVACUATED, MemberState.EVACUATED),
        ("Evacuated", None, MemberState.EVACUATED),
        ("Offline", MemberState.ONLINE, MemberState.OFFLINE),
        # drained for maintenance, then away: still not admitting when it comes back
        ("Offline", MemberState.DRAINING, MemberState.DRAINING),
        ("Offline", MemberState.EVACUATED, MemberState.EVACUATED),
        ("Blocked", None, MemberState.OFFLINE),
    ],
)
def test_observed_state_maps_lxd_status(
    lxd_status: str, recorded: MemberState | None, expected: MemberState
) -> None:
    assert observed_state(lxd_status, recorded=recorded) is expected


def test_join_records_capacity_state_and_labels(db: Settings) -> None:
    lxd = _lxd(FakeLxd())
    assert members.list_hosts(db) == []  # single-host mode: nothing recorded
    row = members.join_host(db, lxd, name="member2", labels={"rack": "r1"})
    assert (row.url, row.state, row.labels) == (
        "https://10.214.0.12:8443",
        "online",
        {"rack": "r1"},
    )
    assert (row.cpu, row.memory_mib, row.disk_gib) == (2, 24 * 1024, 5)  # disk: the pool
    third = members.join_host(db, lxd, name="member3")
    assert third.state == "offline" and third.disk_gib == 252  # no pool there: its disks
    assert [h.name for h in members.list_hosts(db)] == ["member2", "member3"]
    assert members.get_host(db, "member2").labels == {"rack": "r1"}


def test_join_refuses_unknown_duplicate_bad_labels_and_a_lone_lxd(db: Settings) -> None:
    lxd = _lxd(FakeLxd())
    with pytest.raises(NotFound) as unknown:
        members.join_host(db, lxd, name="member9")
    assert "no member 'member9'" in unknown.value.brief
    assert unknown.value.details["members"] == ["member1", "member2", "member3"]
    members.join_host(db, lxd, name="member1")
    with pytest.raises(Conflict, match="host 'member1' is already recorded"):
        members.join_host(db, lxd, name="member1")
    with pytest.raises(InvalidInput, match="invalid label key"):
        members.join_host(db, lxd, name="member2", labels={"Bad Key": "x"})
    lone = _lxd(FakeLxd(cluster=FakeCluster(clustered=False)))
    with pytest.raises(InvalidInput, match="is not a cluster"):
        members.join_host(db, lone, name="member2")
    assert [h.name for h in members.list_hosts(db)] == ["member1"]  # nothing half-recorded
    with pytest.raises(NotFound):
        members.get_host(db, "member2")


def test_set_state_follows_the_state_machine(db: Settings) -> None:
    members.join_host(db, _lxd(FakeLxd()), name="member1")
    first = members.get_host(db, "member1").updated_at
    assert members.set_state(db, name="member1", state=MemberState.DRAINING).state == "draining"
    assert members.set_state(db, name="member1", state=MemberState.EVACUATED).state == "evacuated"
    with pytest.raises(Conflict):
        members.set_state(db, name="member1", state=MemberState.DRAINING)
    assert members.get_host(db, "member1").state == "evacuated"
    assert members.get_host(db, "member1").updated_at >= first
    with pytest.raises(NotFound):
        members.set_state(db, name="nope", state=MemberState.ONLINE)


def test_admin_api_joins_lists_and_shows_hosts(
    app_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deps, "connect", lambda settings: FakeLxd())
    _, secret = tokens.create_token(app_env, name="ops", is_admin=True)
    a = {"Authorization": f"Bearer {secret}"}
    client = TestClient(create_app(), raise_server_exceptions=False)

    assert client.get("/v1/admin/hosts", headers=a).json() == {"hosts": []}
    r = client.post("/v1/admin/hosts", headers=a, json={"name": "member1", "labels": {"z": "1"}})
    assert r.status_code == 201, r.text
    host = r.json()["host"]
    assert host["name"] == "member1" and host["state"] == "online" and host["cpu"] == 2
    assert host["created"].endswith("Z") and host["labels"] == {"z": "1"}
    assert client.get("/v1/admin/hosts/member1", headers=a).json()["host"] == host
    assert [h["name"] for h in client.get("/v1/admin/hosts", headers=a).json()["hosts"]] == [
        "member1"
    ]
    again = client.post("/v1/admin/hosts", headers=a, json={"name": "member1"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    unknown = client.post("/v1/admin/hosts", headers=a, json={"name": "member7"})
    assert unknown.status_code == 404 and "member7" in unknown.json()["error"]["message"]
    missing = client.get("/v1/admin/hosts/member7", headers=a)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    extra = client.post("/v1/admin/hosts", headers=a, json={"name": "member2", "x": 1})
    assert extra.status_code == 422


def test_cli_host_join_list_show(app_env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "lxd", lambda: FakeLxd())
    runner = CliRunner()
    out = runner.invoke(cli_app, ["host", "join", "member2", "--label", "rack=r2", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["labels"] == {"rack": "r2"}
    listed = json.loads(runner.invoke(cli_app, ["host", "list", "--json"]).stdout)
    assert [(h["name"], h["state"]) for h in listed] == [("member2", "online")]
    shown = runner.invoke(cli_app, ["host", "show", "member2"])
    assert shown.exit_code == 0 and "member2" in shown.stdout
    out = runner.invoke(cli_app, ["host", "join", "member9"])
    assert out.exit_code == 1 and "no member 'member9'" in out.stderr
    out = runner.invoke(cli_app, ["host", "show", "member9"])
    assert out.exit_code == 1 and "host 'member9' not found" in out.stderr
