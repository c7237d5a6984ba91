"""Inside a server made through the API, its own tools show its plan: free, nproc,
/proc/cpuinfo, uptime, load average, df / and /dev/shm; after a resize either way, a rebuild
and a reboot, the plan it then has."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from containervps.config import Settings
from containervps.lxd import Lxd
from containervps.schemas.plan import PlanCreate
from containervps.schemas.quota import QuotaUpdate
from containervps.services.host import daemons
from containervps.services.host.inside_view import INSIDE_VIEW_COMMAND, InsideView, judge, parse
from containervps.services.tenancy.plans import create_plan
from tests.integration.api_support import make_tenant, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")


def _plan(settings: Settings, *, vcpus: int, memory_mib: int, disk_gib: int) -> PlanCreate:
    plan = PlanCreate(
        name=f"iv{vcpus}-{secrets.token_hex(2)}",
        vcpus=vcpus,
        memory_mib=memory_mib,
        disk_gib=disk_gib,
        disk_read_iops=500,
        disk_write_iops=250,
        net_ingress_mbit=10,
        net_egress_mbit=10,
        max_processes=200,
        transfer_gib=1,
    )
    create_plan(settings, plan)
    return plan


def _act(client: TestClient, h: dict, path: str, body: dict[str, Any] | None = None) -> float:
    """Run an action to success; return the monotonic time it was asked at."""
    asked = time.monotonic()
    r = client.post(path, json=body or {}, headers=h)
    assert r.status_code == 202, r.text
    action = wait_action(client, r.json()["action"]["id"], h)
    assert action["status"] == "success", action
    return asked


def _view(client: TestClient, h: dict, sid: int) -> InsideView:
    r = client.post(f"/v1/servers/{sid}/exec", json={"command": INSIDE_VIEW_COMMAND}, headers=h)
    assert r.status_code == 200, r.text
    return parse(r.json()["exec"]["stdout"])


def _assert_shows(
    client: TestClient, h: dict, sid: int, plan: PlanCreate, *, since: float, when: str
) -> InsideView:
    """Poll briefly (LXD moves CPU sets in the background after limits.cpu changes)."""
    running = daemons.lxcfs_running_options()
    assert running is not None, "no lxcfs process serves /var/lib/lxcfs"
    loadavg = "--enable-loadavg" in daemons.normalise_lxcfs_options(running)
    for _ in range(40):
        view = _view(client, h, sid)
        problems = judge(
            view,
            memory_mib=plan.memory_mib,
            vcpus=plan.vcpus,
            max_uptime=time.monotonic() - since + 2,
            loadavg=loadavg,
            disk_mib=plan.disk_gib * 1024,
        )
        if not problems:
            break
        time.sleep(0.25)
    print(f"{when}: {view.summary()}")
    assert problems == [], f"{when}: {problems}"
    return view


@pytest.fixture
def per_server_disks(cp_settings: Settings) -> Iterator[None]:
    """Disks of their own, so that `df /` has the plan's size to show (README, Disk layouts)."""
    before = cp_settings.disk_layout
    cp_settings.disk_layout = "per_server"
    yield
    cp_settings.disk_layout = before


@pytest.mark.usefixtures("per_server_disks")
def test_inside_view_follows_the_plan_through_resize_rebuild_and_reboot(
    client: TestClient, cp_settings: Settings, ready_host: Lxd
) -> None:
    small = _plan(cp_settings, vcpus=1, memory_mib=256, disk_gib=1)
    large = _plan(cp_settings, vcpus=2, memory_mib=512, disk_gib=2)
    quota = QuotaUpdate(
        max_servers=1, max_vcpus=2, max_memory_mib=1024, max_disk_gib=4, max_processes=1000
    )
    tenant = make_tenant(cp_settings, ready_host, "inside", quota=quota)
    h = tenant.headers
    body = {"name": f"iv-{secrets.token_hex(3)}", "plan": small.name, "image": "busybox"}
    since = time.monotonic()
    r = client.post("/v1/servers", json=body, headers=h)
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    created = wait_action(client, r.json()["action"]["id"], h)
    assert created["status"] == "success", created
    try:
        _assert_shows(client, h, sid, small, since=since, when="busybox, created small")

        _act(client, h, f"/v1/servers/{sid}/actions/resize", {"plan": large.name})
        _assert_shows(client, h, sid, large, since=since, when="busybox, resized up live")

        since = _act(client, h, f"/v1/servers/{sid}/actions/rebuild", {"image": "debian-12"})
        _assert_shows(client, h, sid, large, since=since, when="debian-12, rebuilt")

        _act(client, h, f"/v1/servers/{sid}/actions/resize", {"plan": small.name})
        _assert_shows(client, h, sid, small, since=since, when="debian-12, resized down live")

        since = _act(client, h, f"/v1/servers/{sid}/actions/reboot")
        _assert_shows(client, h, sid, small, since=since, when="debian-12, rebooted")
    finally:
        r = client.delete(f"/v1/servers/{sid}", headers=h)
        if r.status_code == 202:
            wait_action(client, r.json()["action"]["id"], h)
