"""Placement on a real 3-member LXD cluster: the platform's create path picks each server's
member by the score (services/cluster/placement.py), passes it to LXD as the target of the
create in the tenant's restricted project, and records it; draining and full members are
skipped with the reason in the refusal.

The cluster has names of its own (prefix ``cvpspl``, bridge ``cvpsplbr0``, 10.214.2.0/24,
member network ``cvpsplnet0`` 10.215.2.0/24), so that test_dev_cluster.py's and a development
cluster brought up by hand are left alone. The platform's VPS bridge setting points at the
cluster's managed network: addresses are numbered in its subnet. Timings are printed (``-s``).
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlmodel import col, select

from containervps.api.render import server_json
from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server
from containervps.errors import ResourceUnavailable
from containervps.lxd import Lxd
from containervps.schemas.quota import QuotaUpdate
from containervps.services.actions.runner import run_action
from containervps.services.cluster import members, placement
from containervps.services.cluster.states import MemberState
from containervps.services.metering.sampling import sample_server
from containervps.services.servers.create import create_server
from containervps.services.servers.delete import request_delete
from containervps.services.servers.power import request_power
from containervps.services.servers.resize import request_resize
from containervps.services.tenancy import tenants
from tests.integration.cluster_support import MEMBERS, cluster_settings, running_cluster, small_plan

SMALL_SERVERS = 9


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp("placement-data")
    return cluster_settings(data_dir, name="place", prefix="cvpspl", number=2)


@pytest.fixture(scope="module")
def lxd(settings: Settings) -> Iterator[Lxd]:
    with running_cluster(settings, image="busybox") as client:  # the catalogue row
        yield client


def _plan(settings: Settings, *, memory_mib: int) -> str:
    return small_plan(settings, f"pl-{memory_mib}-{secrets.token_hex(2)}", memory_mib=memory_mib)


def _create(settings: Settings, lxd: Lxd, *, tenant_id: int, name: str, plan: str) -> Server:
    accepted = create_server(
        settings, lxd, tenant_id=tenant_id, name=name, plan=plan, image="busybox"
    )
    assert accepted.action.id is not None
    done = run_action(settings, accepted.action.id, lxd=lxd)
    assert done.status == "success", done.error_message
    with session_scope(settings) as session:
        server = session.get(Server, accepted.server.id)
        assert server is not None
        return server


def test_creates_spread_by_score_and_skip_draining_and_full_members(
    settings: Settings, lxd: Lxd
) -> None:
    hosts = {h.name: h for h in members.list_hosts(settings)}
    assert sorted(hosts) == list(MEMBERS)
    # A big plan: only one fits in a member's memory after overcommit.
    sellable = min(placement.member_capacity(settings, h).memory_mib for h in hosts.values())
    small, big = _plan(settings, memory_mib=64), _plan(settings, memory_mib=sellable // 2 + 1)
    quota = QuotaUpdate(
        max_servers=SMALL_SERVERS + 3,
        max_vcpus=SMALL_SERVERS + 3,
        max_memory_mib=SMALL_SERVERS * 64 + 3 * sellable,
        max_disk_gib=SMALL_SERVERS + 3,
        max_processes=100 * (SMALL_SERVERS + 3),
        max_snapshots=1,
    )
    tenant = tenants.create_tenant(settings, lxd, name=f"pl-{secrets.token_hex(3)}", quota=quota)
    tid = tenant.tenant.id
    assert tid is not None

    # 9 small creates: each goes where most memory is free, ties by disk, count, then name.
    started = time.monotonic()
    placed = [
        _create(settings, lxd, tenant_id=tid, name=f"s{n}", plan=small)
        for n in range(SMALL_SERVERS)
    ]
    seconds = time.monotonic() - started
    assert [s.member for s in placed] == [MEMBERS[n % 3] for n in range(SMALL_SERVERS)]
    assert Counter(s.member for s in placed) == {m: 3 for m in MEMBERS}
    print(f"{SMALL_SERVERS} creates placed 3/3/3 in {seconds:.1f}s")
    for server in placed:
        # LXD put each where the platform said, in the tenant's restricted project.
        inst = lxd.instances.get(name=server.lxd_name, project=server.lxd_project)
        assert inst.location == server.member and inst.status == "Running"
        assert server.status == "running" and server.ssh_port is not None
        assert server_json(server)["ssh"]["port"] == server.ssh_port  # test_cluster_ssh.py
        egress = server.limits["net_egress"]
        assert egress["enforced"] is False and server.member in egress["reason"]
    # Usage samples of a member's servers come from LXD's state (test_cluster_member_ops.py).
    assert sample_server(settings, lxd, placed[0]) is True
    project = lxd.host.get_project(placed[0].lxd_project)
    assert project is not None and project["restricted.cluster.target"] == "block"
    answer = lxd.instances.exec(
        name=placed[4].lxd_name, project=placed[4].lxd_project, command=["hostname"]
    )
    assert answer.ok and answer.stdout.strip() == placed[4].lxd_name

    # member1 draining: the big plan goes to member2 (member1 would win the tie by name).
    members.set_state(settings, name="member1", state=MemberState.DRAINING)
    first_big = _create(settings, lxd, tenant_id=tid, name="big1", plan=big)
    assert first_big.member == "member2"
    # member2 is full for the big plan now: the next one goes to member3.
    second_big = _create(settings, lxd, tenant_id=tid, name="big2", plan=big)
    assert second_big.member == "member3"
    # Nothing left: refused, every member named with why it was skipped; nothing written.
    with pytest.raises(ResourceUnavailable) as refused:
        create_server(settings, lxd, tenant_id=tid, name="big3", plan=big, image="busybox")
    skipped = refused.value.details["members"]
    print(f"refused: {refused.value.one_line()}")
    assert skipped["member1"] == {"reason": "draining"}
    for name in ("member2", "member3"):
        assert skipped[name]["reason"] == "memory_mib"
        assert skipped[name]["free"] < skipped[name]["requested"]
    with session_scope(settings) as session:
        assert session.get(Server, second_big.id) is not None
    assert not any(s.name == "big3" for s in _live(settings))

    # Back online, member1 takes the big plan again.
    members.set_state(settings, name="member1", state=MemberState.ONLINE)
    third_big = _create(settings, lxd, tenant_id=tid, name="big3", plan=big)
    assert third_big.member == "member1"
    counts = members.server_counts(settings)  # what `host show` prints
    assert counts == Counter(s.member for s in _live(settings)) == {m: 4 for m in MEMBERS}
    print(f"servers per member: {counts}")

    # Power, resize and delete run on the member too (LXD routes by the instance's location);
    # the resize is admitted against its member's room.
    assert placed[1].id is not None and placed[2].id is not None and third_big.id is not None
    grown = _plan(settings, memory_mib=128)
    for action in (
        request_power(settings, tenant_id=tid, server_id=placed[1].id, command="reboot"),
        request_resize(settings, lxd, tenant_id=tid, server_id=placed[2].id, plan=grown),
        request_delete(settings, tenant_id=tid, server_id=third_big.id),
    ):
        assert action.action.id is not None
        done = run_action(settings, action.action.id, lxd=lxd)
        assert done.status == "success", done.error_message
    inst = lxd.instances.get(name=placed[1].lxd_name, project=placed[1].lxd_project)
    assert inst.status == "Running" and inst.location == "member2"
    resized = lxd.instances.get(name=placed[2].lxd_name, project=placed[2].lxd_project)
    assert resized.location == "member3" and resized.config["limits.memory"] == "128MiB"
    assert not lxd.instances.exists(name=third_big.lxd_name, project=third_big.lxd_project)
    assert members.server_counts(settings)["member1"] == 3


def _live(settings: Settings) -> list[Server]:
    with session_scope(settings) as session:
        return list(session.exec(select(Server).where(col(Server.deleted_at).is_(None))).all())
