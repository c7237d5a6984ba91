"""Rebuild, resize and protection through the API on the real LXD."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from containervps.config import Settings
from containervps.lxd import Lxd
from containervps.schemas.plan import PlanCreate
from containervps.schemas.quota import QuotaUpdate
from containervps.services.servers import ssh_forwards
from containervps.services.tenancy.plans import create_plan
from tests.integration.api_support import make_tenant, server_project, wait_action
from tests.integration.ssh_support import make_key, ssh, wait_for_ssh

pytestmark = pytest.mark.usefixtures("cp_settings")


def _ok(client: TestClient, r: Any, h: dict[str, str]) -> dict[str, Any]:
    assert r.status_code == 202, r.text
    action = wait_action(client, r.json()["action"]["id"], h)
    assert action["status"] == "success", action
    return dict(r.json())


def _sh(client: TestClient, h: dict, sid: int, command: str) -> str:
    r = client.post(f"/v1/servers/{sid}/exec", json={"command": command}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["exec"]["exit_code"] == 0, r.json()
    return str(r.json()["exec"]["stdout"])


def test_rebuild_busybox_to_debian_keeps_id_port_and_keys(
    client: TestClient, cp_settings: Settings, ready_host: Lxd, tmp_path: Path
) -> None:
    tenant = make_tenant(cp_settings, ready_host, "rebuild")
    h = tenant.headers
    key = make_key(tmp_path, "key")
    r = client.post(
        "/v1/ssh_keys",
        json={"name": "key", "public_key": key.with_suffix(".pub").read_text()},
        headers=h,
    )
    assert r.status_code == 201
    name = f"rb-{secrets.token_hex(3)}"
    body = {"name": name, "plan": "micro", "image": "busybox", "ssh_keys": ["key"]}
    server = _ok(client, client.post("/v1/servers", json=body, headers=h), h)["server"]
    sid, port = server["id"], server["ssh"]["port"]
    _sh(client, h, sid, "echo old > /root/marker")

    # Protected: refused, nothing changes.
    r = client.post(
        f"/v1/servers/{sid}/actions/change_protection", json={"rebuild": True}, headers=h
    )
    assert r.status_code == 200 and r.json()["server"]["protection"]["rebuild"] is True
    r = client.post(f"/v1/servers/{sid}/actions/rebuild", json={"image": "debian-12"}, headers=h)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    assert r.json()["error"]["details"]["protection"] == "rebuild"
    assert _sh(client, h, sid, "cat /root/marker") == "old\n"
    client.post(f"/v1/servers/{sid}/actions/change_protection", json={"rebuild": False}, headers=h)
    r = client.post(f"/v1/servers/{sid}/actions/rebuild", json={"image": "nope"}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "image"

    done = _ok(
        client,
        client.post(f"/v1/servers/{sid}/actions/rebuild", json={"image": "debian-12"}, headers=h),
        h,
    )
    assert done["root_password"] is None  # the server has keys
    shown = client.get(f"/v1/servers/{sid}", headers=h).json()["server"]
    assert (shown["id"], shown["name"], shown["ssh"]["port"], shown["plan"]) == (
        sid,
        name,
        port,
        "micro",
    )
    assert shown["image"] == "debian-12" and shown["status"] == "running"
    wait_for_ssh(port, key=key)
    out = ssh(port, "grep ^ID= /etc/os-release; ls /root/marker", key=key)
    assert out.stdout.decode().startswith("ID=debian")
    assert out.returncode != 0 and b"No such file" in out.stderr  # a fresh disk


def test_delete_protection(client: TestClient, cp_settings: Settings, ready_host: Lxd) -> None:
    tenant = make_tenant(cp_settings, ready_host, "protect")
    h = tenant.headers
    body = {"name": f"pr-{secrets.token_hex(3)}", "plan": "nano", "image": "busybox"}
    sid = _ok(client, client.post("/v1/servers", json=body, headers=h), h)["server"]["id"]
    client.post(f"/v1/servers/{sid}/actions/change_protection", json={"delete": True}, headers=h)
    r = client.delete(f"/v1/servers/{sid}", headers=h)
    assert r.status_code == 403 and r.json()["error"]["details"]["protection"] == "delete"
    assert client.get(f"/v1/servers/{sid}", headers=h).json()["server"]["status"] == "running"
    other = make_tenant(cp_settings, ready_host, "protect-other")
    r = client.post(
        f"/v1/servers/{sid}/actions/change_protection",
        json={"delete": False},
        headers=other.headers,
    )
    assert r.status_code == 404
    client.post(f"/v1/servers/{sid}/actions/change_protection", json={"delete": False}, headers=h)
    _ok(client, client.delete(f"/v1/servers/{sid}", headers=h), h)


RootGib = Callable[[int], int]


def _sizes(client: TestClient, h: dict, sid: int, root_gib: RootGib) -> tuple[int, int, int, str]:
    """nproc, MemTotal in MiB as `free -m` shows it, the size the root disk is held to in GiB
    (``root_gib`` of what `df /` shows), and PID 1's start time (reboot marker).

    /usr/bin/free by path: BusyBox's sh runs its own `free` applet first, and that one asks
    sysinfo(2), which LXD 5.0 does not virtualise (the image's /usr/bin/free reads lxcfs).
    """
    out = _sh(
        client,
        h,
        sid,
        "nproc; /usr/bin/free -m | awk '/^Mem:/{print $2}'; df -k / | awk 'NR==2{print $2}'; "
        "cut -d' ' -f22 /proc/1/stat",
    )
    nproc, mem, disk_kib, started = out.split()
    return int(nproc), int(mem), root_gib(round(int(disk_kib) / 2**20)), started


def _wait_sizes(
    client: TestClient, h: dict, sid: int, root_gib: RootGib, want: tuple[int, int, int, str]
) -> tuple[int, int, int, str]:
    """LXD rebalances CPU sets in the background: give a new limits.cpu a few seconds."""
    seen = _sizes(client, h, sid, root_gib)
    for _ in range(40):
        if seen == want:
            break
        time.sleep(0.25)
        seen = _sizes(client, h, sid, root_gib)
    return seen


def _quota_group_gib(volume: Path) -> int:
    """The kernel's limit on a btrfs subvolume: its quota group's maximum referenced bytes."""
    out = subprocess.run(
        ["btrfs", "qgroup", "show", "-rf", "--raw", str(volume)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return round(int(out.splitlines()[-1].split()[3]) / 2**30)


@pytest.fixture(params=["shared", "per_server"])
def disk_layout(request: pytest.FixtureRequest, cp_settings: Settings) -> Iterator[str]:
    """Each disk layout in turn (the in-process API shares this settings object)."""
    before = cp_settings.disk_layout
    cp_settings.disk_layout = request.param
    yield str(request.param)
    cp_settings.disk_layout = before


def test_resize_changes_cpu_and_memory_live_and_checks_first(
    client: TestClient, cp_settings: Settings, ready_host: Lxd, disk_layout: str
) -> None:
    quota = QuotaUpdate(
        max_servers=2, max_vcpus=2, max_memory_mib=2048, max_disk_gib=30, max_processes=5000
    )
    tenant = make_tenant(cp_settings, ready_host, "resize", quota=quota)
    h = tenant.headers
    big = f"big-{secrets.token_hex(2)}"
    create_plan(
        cp_settings,
        PlanCreate(
            name=big,
            vcpus=3,
            memory_mib=512,
            disk_gib=5,
            disk_read_iops=100,
            disk_write_iops=100,
            disk_read_mb_s=20,
            disk_write_mb_s=20,
            net_ingress_mbit=10,
            net_egress_mbit=10,
            max_processes=100,
            transfer_gib=1,
        ),
    )
    tiny = f"tiny-{secrets.token_hex(2)}"
    create_plan(
        cp_settings,
        PlanCreate(
            name=tiny,
            vcpus=1,
            memory_mib=256,
            disk_gib=1,
            disk_read_iops=500,
            disk_write_iops=250,
            disk_read_mb_s=50,
            disk_write_mb_s=25,
            net_ingress_mbit=10,
            net_egress_mbit=10,
            max_processes=256,
            transfer_gib=1,
        ),
    )
    name = f"rs-{secrets.token_hex(3)}"
    body = {"name": name, "plan": "nano", "image": "busybox"}
    sid = _ok(client, client.post("/v1/servers", json=body, headers=h), h)["server"]["id"]
    project = server_project(cp_settings, tenant, name)
    own_pool = f"{project}_{name}"
    if disk_layout == "per_server":  # a filesystem of the plan's size: `df /` shows it
        root_gib: RootGib = lambda df_gib: df_gib  # noqa: E731
    else:  # the shared pool's btrfs quota group holds the volume (df shows the pool)
        volume = ready_host.host.pool_dir(cp_settings.storage_pool) / "containers" / own_pool
        root_gib = lambda _: _quota_group_gib(volume)  # noqa: E731
    nproc, mem, disk, booted = _sizes(client, h, sid, root_gib)
    assert (nproc, mem, disk) == (1, 256, 2)  # the nano plan, not the host

    _ok(
        client,
        client.post(f"/v1/servers/{sid}/actions/resize", json={"plan": "small"}, headers=h),
        h,
    )
    # Live (PID 1 is the same process), and the disk grew online.
    assert _wait_sizes(client, h, sid, root_gib, (2, 1024, 10, booted)) == (2, 1024, 10, booted)
    inst = ready_host.instances.get(name=name, project=project)
    assert (
        inst.devices["root"]["size"] == "10GiB"
        and inst.devices["root"]["limits.read"] == "2000iops"
    )
    assert inst.devices["eth0"]["limits.ingress"] == "200Mbit"
    server = client.get(f"/v1/servers/{sid}", headers=h).json()["server"]
    forwards = ssh_forwards.forwards(cp_settings) or {}
    assert forwards[server["ssh"]["port"]] == server["public_net"]["ipv4"]  # kept across resize
    assert client.get("/v1/limits", headers=h).json()["limits"]["vcpus"]["used"] == 2

    _ok(
        client,
        client.post(f"/v1/servers/{sid}/actions/resize", json={"plan": "nano"}, headers=h),
        h,
    )
    assert _wait_sizes(client, h, sid, root_gib, (1, 256, 2, booted)) == (1, 256, 2, booted)

    # Bad input leaves the server as it was.
    r = client.post(f"/v1/servers/{sid}/actions/resize", json={"plan": big}, headers=h)
    assert r.status_code == 403 and r.json()["error"]["code"] == "resource_limit_exceeded"
    assert r.json()["error"]["details"]["limit"] == "vcpus"
    r = client.post(f"/v1/servers/{sid}/actions/resize", json={"plan": "nope"}, headers=h)
    assert r.status_code == 422
    # The disk shrinks only when the used space fits.
    fill = ready_host.instances.exec(
        name=name,
        project=project,
        command=["dd", "if=/dev/urandom", "of=/root/fill", "bs=1M", "count=1200"],
        timeout=120,
    )
    assert fill.ok, fill.stderr
    r = client.post(f"/v1/servers/{sid}/actions/resize", json={"plan": tiny}, headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict", r.text
    assert r.json()["error"]["details"]["used_bytes"] > 2**30
    shown = client.get(f"/v1/servers/{sid}", headers=h).json()["server"]
    assert shown["plan"] == "nano" and shown["limits"]["disk"]["value"] == 2
    assert ready_host.instances.get(name=name, project=project).devices["root"]["size"] == "2GiB"
    _sh(client, h, sid, "rm /root/fill; sync")
    # Once it fits, the filesystem shrinks online too; deleting the server frees its disk.
    _ok(
        client,
        client.post(f"/v1/servers/{sid}/actions/resize", json={"plan": tiny}, headers=h),
        h,
    )
    assert _wait_sizes(client, h, sid, root_gib, (1, 256, 1, booted)) == (1, 256, 1, booted)
    assert (ready_host.host.get_pool(own_pool) is not None) == (disk_layout == "per_server")
    _ok(client, client.delete(f"/v1/servers/{sid}", headers=h), h)
    assert ready_host.host.get_pool(own_pool) is None
