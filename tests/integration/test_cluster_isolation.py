"""Tenant isolation and firewalls between servers on the same cluster member (a real 3-member
dev cluster): traffic between two servers on one member's bridge never passes this host, so
the platform loads the filter table into that member's network namespace too
(services/firewalls/enforce.py ``scripts``), with the member's own servers.

The cluster has names of its own (cluster_support.py: prefix ``cvpsis``, 10.214.6.0/24, member
network 10.215.6.0/24, its own nftables tables and route protocol).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server
from containervps.lxd import Lxd
from containervps.schemas.firewall import FirewallCreate
from containervps.schemas.quota import QuotaUpdate
from containervps.services.actions.runner import run_action
from containervps.services.cluster import members, netns
from containervps.services.cluster.states import MemberState
from containervps.services.firewalls import crud
from containervps.services.servers.create import create_server
from containervps.services.tenancy import tenants
from containervps.shell import probe
from tests.integration.cluster_support import cluster_settings, running_cluster, small_plan

PORT = 8080
CONNECT_SECONDS = 3


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp("cluster-isolation-data")
    return cluster_settings(data_dir, name="iso", prefix="cvpsis", number=6)


@pytest.fixture(scope="module")
def lxd(settings: Settings) -> Iterator[Lxd]:
    with running_cluster(settings, image="busybox") as client:
        yield client


def _tenant(settings: Settings, lxd: Lxd) -> int:
    quota = QuotaUpdate(
        max_servers=3, max_vcpus=3, max_memory_mib=512, max_disk_gib=6, max_processes=600
    )
    made = tenants.create_tenant(settings, lxd, name=f"is-{secrets.token_hex(3)}", quota=quota)
    assert made.tenant.id is not None
    return made.tenant.id


def _create(settings: Settings, lxd: Lxd, tenant_id: int, name: str) -> Server:
    accepted = create_server(
        settings, lxd, tenant_id=tenant_id, name=name, plan="is-small", image="busybox"
    )
    assert accepted.action.id is not None
    done = run_action(settings, accepted.action.id, lxd=lxd)
    assert done.status == "success", done.error_message
    with session_scope(settings) as session:
        server = session.get(Server, accepted.server.id)
        assert server is not None
        return server


def _sh(lxd: Lxd, server: Server, command: str) -> str:
    done = lxd.instances.exec(
        name=server.lxd_name, project=server.lxd_project, command=["sh", "-c", command]
    )
    return done.stdout + done.stderr


def _reaches(lxd: Lxd, source: Server, target: Server) -> bool:
    """Whether a new TCP connection from ``source`` gets ``target``'s listener's answer."""
    out = _sh(lxd, source, f"sleep 1 | nc -w {CONNECT_SECONDS} {target.ipv4} {PORT}")
    return f"hi-{target.name}" in out


def test_servers_on_one_member_are_isolated_by_tenant_and_firewalled(
    settings: Settings, lxd: Lxd
) -> None:
    small_plan(settings, "is-small")
    # Every server on member1: the others admit nothing while draining.
    for name in ("member2", "member3"):
        members.set_state(settings, name=name, state=MemberState.DRAINING)
    alice, bob = _tenant(settings, lxd), _tenant(settings, lxd)
    a1, a2 = (_create(settings, lxd, alice, n) for n in ("a1", "a2"))
    b1 = _create(settings, lxd, bob, "b1")
    assert {s.member for s in (a1, a2, b1)} == {"member1"}
    namespace = netns.local_namespace(settings, "member1")
    assert namespace is not None
    listed = probe(
        ["nsenter", f"--net={namespace}", "nft", "list", "table", "inet", settings.net_filter_table]
    )
    assert listed.ok and all(f"{s.ipv4}" in listed.stdout for s in (a1, a2, b1))
    for server in (a1, b1):
        _sh(lxd, server, f"nc -ll -p {PORT} -e echo hi-{server.name} >/dev/null 2>&1 &")

    # No firewall: a tenant's own servers reach each other, another tenant's do not.
    assert _reaches(lxd, a2, a1)
    assert not _reaches(lxd, b1, a1)
    assert not _reaches(lxd, a1, b1)

    # A firewall on a1 allowing the port from b1 only: b1 now reaches it, a2 does not.
    crud.create_firewall(
        settings,
        tenant_id=alice,
        body=FirewallCreate.model_validate(
            {
                "name": "from-b1",
                "rules": [
                    {
                        "direction": "in",
                        "protocol": "tcp",
                        "port": str(PORT),
                        "source_ips": [f"{b1.ipv4}/32"],
                    }
                ],
                "apply_to": [{"type": "server", "server": {"id": a1.id}}],
            }
        ),
    )
    assert _reaches(lxd, b1, a1)
    assert not _reaches(lxd, a2, a1)
