"""The development cluster on the real kernel and LXD 5.0: three daemons as one cluster, a
busybox container placed on member 2 by the platform's own client, members recorded as hosts
with their capacity, and a teardown that leaves nothing behind.

The cluster has names of its own (prefix ``cvpsct``, bridge ``cvpsctbr0``, 10.214.1.0/24) so
that a development cluster brought up by hand (``cvpscl``, 10.214.0.0/24) is left alone.
Timings and the daemons' memory are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from containervps.config import Settings
from containervps.db import migrate
from containervps.errors import NotFound
from containervps.lxd import Lxd, connect_socket
from containervps.services.cluster import member_daemon, members, netns
from containervps.services.cluster.dev import DevCluster, DevUp
from containervps.services.host.daemons import process_running
from containervps.shell import run

MEMBERS = ("member1", "member2", "member3")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp("cluster-data")
    cluster_dir = Path("/var/lib/containervps-cluster-itest")
    s = Settings(
        data_dir=data_dir,
        cluster_dir=cluster_dir,
        cluster_prefix="cvpsct",
        cluster_bridge="cvpsctbr0",
        cluster_subnet="10.214.1.1/24",
        cluster_network="cvpsctnet0",
        cluster_network_subnet="10.215.1.1/24",
        lxd_socket=cluster_dir / "member1" / "unix.socket",  # the platform talks to member 1
        lxd_create_lock=data_dir / "create.lock",
    )
    migrate.upgrade(s)
    return s


@pytest.fixture(scope="module")
def dev(settings: Settings) -> Iterator[DevCluster]:
    cluster = DevCluster(settings, members=len(MEMBERS))
    cluster.down()  # what a killed run of this test left (only this test's names)
    yield cluster
    cluster.down()  # also when a test failed half-way; nothing to do after the last test


@pytest.fixture(scope="module")
def up(dev: DevCluster) -> DevUp:
    result = dev.up()
    rss = ", ".join(f"{m.name} {m.rss_mib:.0f} MiB" for m in result.status.members)
    print(f"\ndev-up: {result.seconds:.1f}s; daemon RSS: {rss}")
    return result


@pytest.fixture(scope="module")
def lxd(settings: Settings, up: DevUp) -> Lxd:
    assert settings.lxd_socket is not None
    return connect_socket(settings, settings.lxd_socket)


def test_all_members_are_online_through_member1s_socket(
    dev: DevCluster, up: DevUp, lxd: Lxd
) -> None:
    assert up.created and up.status.running
    listed = {m.name: m for m in lxd.cluster.members()}  # pylxd over member 1's unix socket
    assert sorted(listed) == list(MEMBERS)
    assert {m.status for m in listed.values()} == {"Online"}
    assert [m.url for m in listed.values()] == [
        f"https://10.214.1.{10 + n}:8443" for n in range(1, 4)
    ]
    assert all(m.config.get("scheduler.instance") == "manual" for m in listed.values())
    again = dev.up()  # idempotent: reports, creates nothing
    assert not again.created and [m.pid for m in again.status.members] == [
        m.pid for m in up.status.members
    ]


def test_a_busybox_container_runs_on_the_member_it_targets(lxd: Lxd, dev: DevCluster) -> None:
    name = f"cvpsct-{secrets.token_hex(3)}"
    try:
        info = lxd.instances.create(
            name=name,
            project="default",
            image="busybox",
            profiles=["default"],
            target="member2",
            start=True,
        )
        assert info.location == "member2" and info.status == "Running"
        result = lxd.instances.exec(name=name, project="default", command=["true"])
        assert result.exit_code == 0
        rss = ", ".join(f"{m.name} {m.rss_mib:.0f} MiB" for m in dev.status().members)
        print(f"daemon RSS with one container on member2: {rss}")
    finally:
        lxd.instances.delete(name=name, project="default")


def test_members_are_recorded_as_hosts_with_capacity(settings: Settings, lxd: Lxd) -> None:
    for name in MEMBERS:
        members.join_host(settings, lxd, name=name, labels={"rack": "dev"})
    hosts = members.list_hosts(settings)
    assert [h.name for h in hosts] == list(MEMBERS)
    for host in hosts:
        assert host.state == "online" and host.url.startswith("https://10.214.1.")
        assert host.cpu > 0 and host.memory_mib > 0
        # the member's share of the pool: its own loop file of cluster_pool_size_gib
        assert 0 < host.disk_gib <= settings.cluster_pool_size_gib
    print(
        "hosts: "
        + "; ".join(f"{h.name} {h.cpu} CPUs {h.memory_mib} MiB {h.disk_gib} GiB" for h in hosts)
    )
    with pytest.raises(NotFound, match="no member 'member4'"):
        members.join_host(settings, lxd, name="member4")


def test_dev_down_leaves_nothing_behind(settings: Settings, dev: DevCluster) -> None:
    pids = [member_daemon.alive_pid(m) for m in dev.layout.members]
    assert all(pids)
    pool_files = [m.lxd_dir / "disks" / f"{settings.storage_pool}.img" for m in dev.layout.members]
    assert all(f.exists() for f in pool_files)
    result = dev.down()
    print(f"dev-down: {result.seconds:.1f}s: {'; '.join(result.removed)}")
    assert not any(process_running(pid) for pid in pids if pid)
    assert not [m for m in dev.layout.members if netns.netns_exists(m.netns)]
    assert not [m for m in dev.layout.members if netns.link_exists(m.veth)]
    assert not netns.link_exists(settings.cluster_bridge)
    loops = run(["losetup", "-a"], what="list loop devices")
    assert str(settings.cluster_dir) not in loops
    mounts = run(["findmnt", "-rn", "-o", "TARGET"], what="list mounts")
    assert str(settings.cluster_dir) not in mounts
    assert not settings.cluster_dir.exists()
    assert not dev.status().traces
    assert dev.down().removed == []  # a second dev-down finds nothing
