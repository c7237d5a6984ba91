"""Servers on cluster members without LXD: the listing's shapes (an unreachable member's
instance, state with recursion=2), usage counters from LXD's state, and the reconciler's
member pass (offline, back, adopted) with a fake cluster (the real one:
tests/integration/test_cluster_member_ops.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from sqlmodel import select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Event, HostMember, Server
from containervps.errors import Conflict
from containervps.lxd import ClusterMemberInfo, InstanceInfo, Lxd
from containervps.lxd.instances import _info
from containervps.services.metering import host_counters
from containervps.services.reconcile.members import MemberPass
from containervps.services.servers.states import ServerState, check_state
from tests.unit.fakes import add_server, make_tenant

RUNNING_ON_MEMBER2 = {
    "name": "s1",
    "status": "Running",
    "location": "member2",
    "config": {"user.containervps.server_id": "1"},
    "devices": {},
    "profiles": ["default"],
    "state": {
        "cpu": {"usage": 2_500_000_000},
        "memory": {"usage": 3 * 2**20},
        "disk": {"root": {"usage": 20 * 2**20}},
        "network": {"eth0": {"counters": {"bytes_received": 700, "bytes_sent": 42_000}}},
    },
}
# As LXD 5.0.2 lists an instance of a member it cannot reach (measured).
UNREACHABLE = {
    "name": "s3",
    "status": "Error",
    "location": "member3",
    "config": None,
    "devices": None,
    "profiles": None,
    "state": None,
}


def test_listing_shapes_of_members_instances() -> None:
    reached = _info(RUNNING_ON_MEMBER2, "p")
    assert reached.clustered and reached.state is not None
    assert reached.state.net_tx_bytes == 42_000 and reached.state.disk_usage_bytes == 20 * 2**20
    lost = _info(UNREACHABLE, "p")
    assert lost.clustered and lost.state is None and lost.config == {} and lost.status == "Error"
    single = _info({**RUNNING_ON_MEMBER2, "location": "none", "state": None}, "p")
    assert not single.clustered


@dataclass
class FakeInstances:
    listed: list[dict[str, Any]]
    asked_state: list[bool] = field(default_factory=list)

    def everywhere(self, *, state: bool = False) -> list[InstanceInfo]:
        self.asked_state.append(state)
        return [_info(m, "p") for m in self.listed]


class NoHost:
    def list_pools(self) -> list[Any]:
        raise AssertionError("a member's servers need nothing of this host")


@dataclass
class FakeLxd:
    instances: FakeInstances
    host: NoHost = field(default_factory=NoHost)


def test_counters_of_members_servers_come_from_lxds_state(
    db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host_counters, "any_recorded", lambda settings: True)
    lxd = FakeLxd(FakeInstances([RUNNING_ON_MEMBER2, UNREACHABLE]))
    read = host_counters.read_counters(db, lxd)  # type: ignore[arg-type]
    assert lxd.instances.asked_state == [True]  # one listing, with state
    assert set(read) == {("p", "s1")}  # no reading of an unreachable member's instance
    counters = read[("p", "s1")]
    assert counters.rx_bytes == 700 and counters.tx_bytes == 42_000
    assert counters.cpu_seconds == 2.5 and counters.memory_bytes == 3 * 2**20
    assert counters.disk_bytes == 20 * 2**20 and counters.status == "Running"


@dataclass
class FakeCluster:
    status: dict[str, str]

    def members(self) -> list[ClusterMemberInfo]:
        return [
            ClusterMemberInfo(name=n, url="", status=s, message="", roles=(), groups=(), config={})
            for n, s in self.status.items()
        ]


@dataclass
class ClusterLxd:
    cluster: FakeCluster


def _setup(db: Settings) -> tuple[int, int]:
    tenant = make_tenant(db)
    with session_scope(db) as session:
        for name in ("member1", "member2", "member3"):
            session.add(HostMember(name=name, url="", cpu=2, memory_mib=1024, disk_gib=5))
        on3 = add_server(session, tenant, "s3", member="member3")
        moved = add_server(session, tenant, "s1", member="member1")
        assert on3.id is not None and moved.id is not None
        return on3.id, moved.id


def _servers(db: Settings) -> list[Server]:
    with session_scope(db) as session:
        return list(session.exec(select(Server)).all())


def _row(db: Settings, server_id: int) -> Server:
    with session_scope(db) as session:
        row = session.get(Server, server_id)
        assert row is not None
        return row


def test_member_pass_marks_offline_restores_and_adopts(db: Settings) -> None:
    on3, moved = _setup(db)
    listed = {
        ("p", "s3"): _info(UNREACHABLE, "p"),
        ("p", "s1"): _info(
            {**RUNNING_ON_MEMBER2, "config": {"user.containervps.server_id": str(moved)}}, "p"
        ),
    }
    cluster = FakeCluster({"member1": "Online", "member2": "Online", "member3": "Offline"})
    lxd = cast(Lxd, ClusterLxd(cluster))

    dry = MemberPass(db, lxd, dry_run=True)
    assert {f.kind for f in dry.run(listed, _servers(db))} == {
        "member",
        "member_offline",
        "adopted",
    }
    assert _row(db, on3).status == "running" and _row(db, moved).member == "member1"

    first = MemberPass(db, lxd, dry_run=False)
    found = first.run(listed, _servers(db))
    assert first.offline == {"member3"}
    assert {(f.kind, f.applied) for f in found} == {
        ("member", True),
        ("member_offline", True),
        ("adopted", True),
    }
    with session_scope(db) as session:
        assert session.get(HostMember, "member3").state == "offline"  # type: ignore[union-attr]
        kinds = sorted(e.type for e in session.exec(select(Event)).all())
    assert kinds == ["server.member_changed", "server.member_offline"]
    marked = _row(db, on3)
    assert marked.status == ServerState.UNKNOWN and "member3" in (marked.status_detail or "")
    assert _row(db, moved).member == "member2"
    with pytest.raises(Conflict, match="member3, which is offline"):
        check_state(marked, frozenset(ServerState))
    assert MemberPass(db, lxd, dry_run=False).run(listed, _servers(db)) == []  # idempotent

    # Back: the member's state follows LXD, the server takes LXD's status again.
    cluster.status["member3"] = "Online"
    listed[("p", "s3")] = _info(
        {**RUNNING_ON_MEMBER2, "name": "s3", "location": "member3", "status": "Stopped"}, "p"
    )
    found = MemberPass(db, lxd, dry_run=False).run(listed, _servers(db))
    assert {f.kind for f in found} == {"member", "member_online"}
    back = _row(db, on3)
    assert back.status == ServerState.OFF and back.status_detail is None
    with session_scope(db) as session:
        assert session.get(HostMember, "member3").state == "online"  # type: ignore[union-attr]
