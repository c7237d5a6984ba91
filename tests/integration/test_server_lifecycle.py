"""The full VPS lifecycle through HTTP on the real LXD, proving limits and restrictions in LXD."""

from __future__ import annotations

import ipaddress

import pytest
from fastapi.testclient import TestClient

from containervps.config import Settings
from containervps.errors import LxdError
from containervps.lxd import Lxd
from containervps.services.tenancy import audit, tenants
from containervps.services.tenancy.tenants import default_quota
from tests.integration.api_support import make_tenant, tenant_instances, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")


def test_lifecycle_applies_plan_limits_in_a_restricted_project(
    client: TestClient, cp_settings: Settings, ready_host: Lxd
) -> None:
    lxd = ready_host
    tenant = make_tenant(cp_settings, lxd, "life")
    h = tenant.headers

    r = client.post(
        "/v1/servers",
        json={"name": "web-1", "plan": "nano", "image": "busybox", "labels": {"env": "test"}},
        headers=h,
    )
    assert r.status_code == 202, r.text
    assert r.headers["X-Request-Id"]
    server, action = r.json()["server"], r.json()["action"]
    assert action["command"] == "create_server" and action["status"] == "running"
    assert action["resources"] == [{"id": server["id"], "type": "server"}]
    assert wait_action(client, action["id"], h)["status"] == "success"
    sid = server["id"]
    shown = client.get(f"/v1/servers/{sid}", headers=h).json()["server"]
    assert shown["status"] == "running"
    # Its address on the platform's bridge is known when the create ends.
    bridge = ipaddress.IPv4Interface(cp_settings.bridge_subnet).network
    assert ipaddress.IPv4Address(shown["public_net"]["ipv4"]) in bridge
    # Egress is limited by LXD where the kernel allows, else by the platform's own shaping
    # (this host: no tc police action); the server says which.
    assert shown["limits"]["net_egress"]["enforced"] is True
    assert shown["limits"]["net_egress"]["mechanism"] in ("lxd", "platform")
    assert shown["limits"]["net_ingress"]["enforced"] is True

    # The project: restricted, isolated idmaps only, nesting and low-level blocked, quota mirrored.
    project = lxd.host.get_project(tenant.project)
    assert project is not None
    assert project["restricted"] == "true"
    assert project["restricted.containers.privilege"] == "isolated"
    assert project["restricted.containers.nesting"] == "block"
    assert project["restricted.containers.lowlevel"] == "block"
    assert project["limits.instances"] == "5"
    assert project["limits.memory"] == "8192MiB"
    assert project["user.containervps.tenant_id"] == str(tenant.id)

    # The instance: the plan's limits, our tags, unprivileged with an isolated idmap.
    inst = lxd.instances.get(name="web-1", project=tenant.project)
    assert inst.status == "Running"
    assert inst.config["limits.cpu"] == "1"
    assert inst.config["limits.memory"] == "256MiB"
    assert inst.config["limits.memory.enforce"] == "hard"
    assert inst.config["limits.processes"] == "256"
    assert inst.tag("server_id") == str(sid)
    assert inst.tag("tenant_id") == str(tenant.id)
    assert inst.tag("action_id") == str(action["id"])
    assert inst.config.get("security.privileged", "false") == "false"
    assert "volatile.idmap.base" in inst.config and inst.config["volatile.idmap.base"] != "0"
    root, nic = inst.devices["root"], inst.devices["eth0"]
    assert root["size"] == "2GiB"
    assert root["limits.read"] == "500iops" and root["limits.write"] == "250iops"
    assert nic["limits.ingress"] == "50Mbit"
    assert "limits.egress" not in nic
    # Inside: root, but not privileged on the host (uid 0 maps to a high host uid).
    uid_map = lxd.instances.exec(
        name="web-1", project=tenant.project, command=["cat", "/proc/self/uid_map"]
    )
    assert uid_map.ok and uid_map.stdout.split()[:2] == ["0", inst.config["volatile.idmap.base"]]
    # The project refuses privileged and nesting even to a direct LXD call.
    for key in ("security.privileged", "security.nesting"):
        with pytest.raises(LxdError, match="forbidden"):
            lxd.instances.update(name="web-1", project=tenant.project, config={key: "true"})

    for command, lxd_status, status in (
        ("shutdown", "Stopped", "off"),
        ("poweron", "Running", "running"),
        ("reboot", "Running", "running"),
        ("poweroff", "Stopped", "off"),
        ("poweron", "Running", "running"),
    ):
        r = client.post(f"/v1/servers/{sid}/actions/{command}", headers=h)
        assert r.status_code == 202, r.text
        done = wait_action(client, r.json()["action"]["id"], h)
        assert done["status"] == "success", done
        assert client.get(f"/v1/servers/{sid}", headers=h).json()["server"]["status"] == status
        assert lxd.instances.get(name="web-1", project=tenant.project).status == lxd_status

    # A guest whose shutdown hangs past the timeout (5 s here) is stopped hard and started.
    hang = "echo '::shutdown:/bin/sleep 300' >> /etc/inittab && kill -HUP 1"
    assert lxd.instances.exec(name="web-1", project=tenant.project, command=["sh", "-c", hang]).ok
    pid = lxd.instances.state(name="web-1", project=tenant.project).pid
    r = client.post(f"/v1/servers/{sid}/actions/reboot", headers=h)
    done = wait_action(client, r.json()["action"]["id"], h)
    assert done["status"] == "success", done
    after = lxd.instances.state(name="web-1", project=tenant.project)
    assert after.status == "Running" and after.pid not in (0, pid)

    limits = client.get("/v1/limits", headers=h).json()["limits"]
    assert limits["servers"] == {"max": 5, "used": 1}
    assert limits["memory_mib"]["used"] == 256

    log_dir = lxd.instances.logs.path(project=tenant.project, name="web-1")
    assert (log_dir / "lxc.log").is_file()
    r = client.delete(f"/v1/servers/{sid}", headers=h)
    assert r.status_code == 202
    assert wait_action(client, r.json()["action"]["id"], h)["status"] == "success"
    assert not lxd.instances.exists(name="web-1", project=tenant.project)
    assert not log_dir.exists()  # LXD 5.0.2 leaves it; the platform removes it
    assert client.get(f"/v1/servers/{sid}", headers=h).status_code == 404
    assert client.get("/v1/limits", headers=h).json()["limits"]["servers"]["used"] == 0
    # Every mutating call is in the audit log with the caller and the request id.
    rows = [a for a in audit.recent(cp_settings, limit=50) if a.tenant_id == tenant.id]
    assert {"POST /v1/servers", "DELETE /v1/servers/{server_id}"} <= {a.action for a in rows}
    assert all(a.request_id and a.actor.startswith("token:") for a in rows)


def test_overlapping_actions_are_locked_and_idempotency_keys_replay(
    client: TestClient, cp_settings: Settings, ready_host: Lxd
) -> None:
    tenant = make_tenant(cp_settings, ready_host, "lock")
    h = {**tenant.headers, "Idempotency-Key": "create-once"}
    body = {"name": "db-1", "plan": "nano", "image": "busybox"}
    first = client.post("/v1/servers", json=body, headers=h)
    again = client.post("/v1/servers", json=body, headers=h)
    assert first.status_code == again.status_code == 202
    assert again.json()["server"]["id"] == first.json()["server"]["id"]
    assert again.json()["action"]["id"] == first.json()["action"]["id"]
    other = client.post("/v1/servers", json={**body, "name": "db-2"}, headers=h)
    assert other.status_code == 409 and other.json()["error"]["code"] == "conflict"
    sid, create_action = first.json()["server"]["id"], first.json()["action"]["id"]
    # While the create runs, any other action on the server is refused with its id.
    locked = client.post(f"/v1/servers/{sid}/actions/reboot", headers=tenant.headers)
    if locked.status_code == 409:
        err = locked.json()["error"]
        assert err["code"] == "locked" and err["details"]["action_id"] == create_action
    wait_action(client, create_action, tenant.headers)
    if locked.status_code == 202:
        wait_action(client, locked.json()["action"]["id"], tenant.headers)
    shut = client.post(f"/v1/servers/{sid}/actions/shutdown", headers=tenant.headers)
    blocked = client.delete(f"/v1/servers/{sid}", headers=tenant.headers)
    assert blocked.status_code == 409
    assert blocked.json()["error"]["details"]["action_id"] == shut.json()["action"]["id"]
    wait_action(client, shut.json()["action"]["id"], tenant.headers)
    gone = client.delete(f"/v1/servers/{sid}", headers=tenant.headers)
    assert wait_action(client, gone.json()["action"]["id"], tenant.headers)["status"] == "success"
    assert ready_host.instances.all(project=tenant.project) == []


def test_a_tenants_servers_fill_project_groups_and_leave_with_the_tenant(
    client: TestClient, cp_settings: Settings, ready_host: Lxd
) -> None:
    before = cp_settings.servers_per_project
    cp_settings.servers_per_project = 2  # the in-process API shares this settings object
    try:
        tenant = make_tenant(cp_settings, ready_host, "groups")
        ids = []
        for name in ("g-a", "g-b", "g-c"):
            r = client.post(
                "/v1/servers",
                json={"name": name, "plan": "nano", "image": "busybox"},
                headers=tenant.headers,
            )
            assert r.status_code == 202, r.text
            assert (
                wait_action(client, r.json()["action"]["id"], tenant.headers)["status"] == "success"
            )
            ids.append(r.json()["server"]["id"])
    finally:
        cp_settings.servers_per_project = before
    group = f"{tenant.project}-g1"
    where = {i.name: i.project for i in tenant_instances(ready_host, tenant)}
    assert where == {"g-a": tenant.project, "g-b": tenant.project, "g-c": group}
    # The group project is restricted like the tenant's, with the same quota as limits.
    config = ready_host.host.get_project(group) or {}
    tenant_config = ready_host.host.get_project(tenant.project) or {}
    assert config["restricted"] == "true" and config["limits.instances"] == "5"
    assert {k: v for k, v in config.items() if k.startswith(("limits.", "restricted"))} == {
        k: v for k, v in tenant_config.items() if k.startswith(("limits.", "restricted"))
    }
    r = client.post(f"/v1/servers/{ids[2]}/exec", json={"command": "true"}, headers=tenant.headers)
    assert r.status_code == 200 and r.json()["exec"]["exit_code"] == 0
    # A quota change reaches every project; deleting the tenant removes them all.
    tenants.set_quota(
        cp_settings,
        ready_host,
        tenant_id=tenant.id,
        quota=default_quota(cp_settings).model_copy(update={"max_servers": 4}),
    )
    assert (ready_host.host.get_project(group) or {})["limits.instances"] == "4"
    for sid in ids:
        r = client.delete(f"/v1/servers/{sid}", headers=tenant.headers)
        assert wait_action(client, r.json()["action"]["id"], tenant.headers)["status"] == "success"
    tenants.delete_tenant(cp_settings, ready_host, tenant_id=tenant.id)
    left = set(ready_host.host.list_projects())
    assert tenant.project not in left and group not in left
