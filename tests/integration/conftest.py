"""Integration fixtures: the real LXD on this host, set up once per run, cleaned up after.

There is no skip here on purpose: if LXD is missing the tests fail (deploy/test starts it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from containervps.api.app import create_app
from containervps.config import Settings, get_settings
from containervps.db import migrate
from containervps.lxd import Lxd, connect
from containervps.services.firewalls import enforce
from containervps.services.host.setup import HostSetup
from containervps.services.images.service import ImageService
from containervps.services.servers import addresses, egress_shaping, ssh_forwards
from containervps.shell import probe, run
from tests.integration.api_support import TEST_ENV
from tests.integration.held_addresses import skipping_held

TEST_PROJECT_PREFIX = "cvpstest-"
STALE_AFTER = timedelta(hours=1)


def delete_project(lxd: Lxd, name: str) -> None:
    """Delete a project with every instance and profile in it, and its servers' disk pools."""
    if lxd.host.get_project(name) is not None:
        for inst in lxd.instances.all(project=name):
            lxd.instances.delete(name=inst.name, project=name)
        lxd.host.delete_project(name)
    for pool in lxd.host.list_pools():
        if pool.name.startswith(f"{name}_"):
            lxd.host.delete_pool(pool.name)
    # The egress shaping devices of its servers (kernel objects LXD does not know).
    for device, owner in egress_shaping.ifbs().items():
        if owner.partition("/")[0] == name:
            egress_shaping.remove(ifb=device)


def _is_stale(lxd: Lxd, project: str) -> bool:
    """Left by a crashed run: no instance in it is younger than STALE_AFTER."""
    cutoff = datetime.now(UTC) - STALE_AFTER
    return all(
        datetime.fromisoformat(i.created_at.replace("Z", "+00:00")) < cutoff
        for i in lxd.instances.all(project=project)
    )


@pytest.fixture(autouse=True)
def _skip_addresses_other_databases_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other platform databases (the operator's, other test runs) share this host's bridge and
    number their servers' addresses on their own, and a test that failed may leave a server
    behind: servers made here skip every address LXD holds (held_addresses.py; API children
    started by ApiProcess do the same)."""
    monkeypatch.setattr(addresses, "held_by_live", skipping_held(addresses.held_by_live))


@pytest.fixture(scope="session")
def lxd(settings: Settings, run_id: str) -> Iterator[Lxd]:
    """The real LXD. Test projects of crashed runs are removed first, this run's at the end
    (a test run on the same host at the same time keeps its fresh projects)."""
    client = connect(settings)
    projects = client.host.list_projects()
    for project in projects:
        if project.startswith(TEST_PROJECT_PREFIX) and _is_stale(client, project):
            delete_project(client, project)
    for pool in client.host.list_pools():
        if pool.name.startswith(TEST_PROJECT_PREFIX) and pool.name.split("_")[0] not in projects:
            client.host.delete_pool(pool.name)
    _drop_stale_forward_tables(client)
    yield client
    try:
        for project in client.host.list_projects():
            if project.startswith(f"{TEST_PROJECT_PREFIX}{run_id}"):
                delete_project(client, project)
    finally:  # a stale filter table would drop another run's traffic to reused addresses
        ssh_forwards.drop_table(settings)
        enforce.drop_table(settings)


def _drop_stale_forward_tables(lxd: Lxd) -> None:
    """SSH forward and filter tables of test runs that left no project behind (a stale table
    could send a port another run reuses to an address of its own, or drop its traffic)."""
    runs = {p.removeprefix(TEST_PROJECT_PREFIX)[:6] for p in lxd.host.list_projects()}
    for line in run(["nft", "list", "tables"], what="list nftables tables").splitlines():
        _, family, table = line.split()
        if (
            table.startswith(TEST_PROJECT_PREFIX)
            and table.removeprefix(TEST_PROJECT_PREFIX)[:6] not in runs
        ):
            probe(["nft", "delete", "table", family, table])


@pytest.fixture(scope="session")
def ready_host(settings: Settings, lxd: Lxd) -> Lxd:
    """Host initialised, database migrated, busybox and debian-12 images imported."""
    HostSetup(settings, lxd).init()
    migrate.upgrade(settings)
    images = ImageService(settings, lxd)
    for name in ("busybox", "debian-12"):
        images.build(name)
    return lxd


@pytest.fixture
def project_factory(ready_host: Lxd, run_id: str) -> Iterator[Callable[[str], str]]:
    """Make throw-away LXD projects (sharing the default images and profiles)."""
    made: list[str] = []

    def make(label: str) -> str:
        name = f"{TEST_PROJECT_PREFIX}{run_id}-{label}"[:63]
        ready_host.host.put_project(
            name=name,
            config={"features.images": "false", "features.profiles": "false"},
            description="containervps test project",
        )
        made.append(name)
        return name

    yield make
    for name in made:
        delete_project(ready_host, name)


@pytest.fixture(scope="module")
def cp_settings(settings: Settings, ready_host: Lxd) -> Iterator[Settings]:
    """The session settings plus short shutdown timeouts and no periodic reconciler."""
    mp = pytest.MonkeyPatch()
    for key, value in TEST_ENV.items():
        mp.setenv(key, value)
    get_settings.cache_clear()
    yield get_settings()
    mp.undo()
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def client(cp_settings: Settings) -> Iterator[TestClient]:
    """The API app in-process, with its worker running, for one test module."""
    with TestClient(create_app()) as c:
        yield c
