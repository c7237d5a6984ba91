"""A development cluster of a test's own, for tests that run servers on its members: settings
whose every host-global name is the test's (namespaces, bridges, subnets, nftables tables,
route protocol, locks), the cluster up with its members recorded as hosts, and all of it gone
afterwards, checked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from containervps.config import Settings
from containervps.db import migrate
from containervps.lxd import Lxd, connect_socket
from containervps.schemas.plan import PlanCreate
from containervps.services.cluster import members, routes
from containervps.services.cluster.dev import DevCluster
from containervps.services.firewalls import enforce
from containervps.services.images.service import ImageService
from containervps.services.servers import ssh_forwards
from containervps.services.tenancy import plans
from containervps.shell import probe

MEMBERS = ("member1", "member2", "member3")


def cluster_settings(data_dir: Path, *, name: str, prefix: str, number: int) -> Settings:
    """Settings for cluster ``number`` (its subnets 10.214.N.0/24 and 10.215.N.0/24) named
    ``prefix`` (``cvpsXX``), its directory ``/var/lib/containervps-cluster-<name>``."""
    cluster_dir = Path(f"/var/lib/containervps-cluster-{name}")
    s = Settings(
        data_dir=data_dir,
        cluster_dir=cluster_dir,
        cluster_prefix=prefix,
        cluster_bridge=f"{prefix}br0",
        cluster_subnet=f"10.214.{number}.1/24",
        cluster_network=f"{prefix}net0",
        cluster_network_subnet=f"10.215.{number}.1/24",
        # The platform's servers live on the cluster's managed network, numbered in its subnet.
        # That network's gateway is on the members, not here: forwarded SSH ports listen on an
        # address of this host (the operator sets it; here the cluster bridge's).
        bridge=f"{prefix}net0",
        bridge_subnet=f"10.215.{number}.1/24",
        ssh_listen_address=f"10.214.{number}.1",
        lxd_socket=cluster_dir / "member1" / "unix.socket",
        lxd_create_lock=data_dir / "create.lock",
        # Never the platform's own table, filter, routes or locks.
        ssh_forward_table=f"{prefix}test",
        net_filter_table=f"{prefix}filter",
        net_filter_lock=data_dir / "net-filter.lock",
        cluster_route_protocol=220 + number,
        cluster_route_lock=data_dir / "routes.lock",
    )
    migrate.upgrade(s)
    return s


def leftovers(settings: Settings) -> list[str]:
    """The test's routes, nftables tables and cluster bridge the kernel still holds."""
    left = [f"route {ip} via {gw}" for ip, gw in routes.held(settings).items()]
    for family, table in (("ip", settings.ssh_forward_table), ("inet", settings.net_filter_table)):
        if probe(["nft", "list", "table", family, table]).ok:
            left.append(f"nft table {family} {table}")
    if Path(f"/sys/class/net/{settings.cluster_bridge}").exists():
        left.append(f"bridge {settings.cluster_bridge}")
    return left


@contextmanager
def running_cluster(settings: Settings, *, image: str) -> Iterator[Lxd]:
    """The cluster up with ``image`` in the catalogue and every member recorded; afterwards
    the cluster, the test's nftables tables and routes are removed and checked gone."""
    cluster = DevCluster(settings, members=len(MEMBERS))
    cluster.down()  # what a killed run of this test left (only this test's names)
    routes.drop_all(settings)
    try:
        started = time.monotonic()
        cluster.up()
        print(f"\ndev-up: {time.monotonic() - started:.1f}s")
        assert settings.lxd_socket is not None
        client = connect_socket(settings, settings.lxd_socket)
        started = time.monotonic()
        ImageService(settings, client).build(image)  # cached build, imported into the cluster
        print(f"{image} into the cluster: {time.monotonic() - started:.1f}s")
        for name in MEMBERS:
            members.join_host(settings, client, name=name)
        yield client
    finally:
        started = time.monotonic()
        cluster.down()  # every instance and project goes with the cluster
        print(f"dev-down: {time.monotonic() - started:.1f}s")
        ssh_forwards.drop_table(settings)
        enforce.drop_table(settings)
        routes.drop_all(settings)  # gone with the bridge already, unless a test added some
        assert leftovers(settings) == []


def small_plan(settings: Settings, name: str, *, memory_mib: int = 64, disk_gib: int = 1) -> str:
    """A busybox-sized plan named ``name`` (1 vCPU, small IOPS and bandwidth); its name."""
    plans.create_plan(
        settings,
        PlanCreate(
            name=name,
            vcpus=1,
            memory_mib=memory_mib,
            disk_gib=disk_gib,
            disk_read_iops=100,
            disk_write_iops=50,
            net_ingress_mbit=10,
            net_egress_mbit=10,
            max_processes=100,
            transfer_gib=10,
        ),
    )
    return name
