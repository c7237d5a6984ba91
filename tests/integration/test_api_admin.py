"""The admin API (admin token): tenants, quotas, tokens, plans, all servers; docs and probes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from containervps.config import Settings
from containervps.lxd import Lxd
from containervps.services.tenancy import tokens
from tests.integration.api_support import small_plan, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")


def test_admin_manages_tenants_quotas_tokens_and_plans(
    client: TestClient, cp_settings: Settings, ready_host: Lxd, run_id: str
) -> None:
    _, secret = tokens.create_token(cp_settings, name="ops", is_admin=True)
    a = {"Authorization": f"Bearer {secret}"}
    quota = {
        "max_servers": 2,
        "max_vcpus": 2,
        "max_memory_mib": 1024,
        "max_disk_gib": 10,
        "max_processes": 1000,
    }
    r = client.post("/v1/admin/tenants", json={"name": f"adm-{run_id}", "quota": quota}, headers=a)
    assert r.status_code == 201, r.text
    tenant = r.json()["tenant"]
    project = ready_host.host.get_project(tenant["lxd_project"])
    assert (
        project is not None and project["limits.cpu"] == "2" and project["limits.disk"] == "10GiB"
    )
    dup = client.post("/v1/admin/tenants", json={"name": f"adm-{run_id}"}, headers=a)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "conflict"

    r = client.post(f"/v1/admin/tenants/{tenant['id']}/tokens", json={"name": "ci"}, headers=a)
    assert r.status_code == 201
    token = r.json()["token"]
    t = {"Authorization": f"Bearer {token['secret']}"}
    assert client.get("/v1/limits", headers=t).json()["limits"]["servers"] == {"max": 2, "used": 0}

    plan = small_plan(f"adm{run_id}")
    assert client.post("/v1/admin/plans", json=plan, headers=a).status_code == 201
    assert plan["name"] in {p["name"] for p in client.get("/v1/plans", headers=t).json()["plans"]}
    assert "busybox" in {i["name"] for i in client.get("/v1/images", headers=t).json()["images"]}

    r = client.post(
        "/v1/servers", json={"name": "a1", "plan": plan["name"], "image": "busybox"}, headers=t
    )
    wait_action(client, r.json()["action"]["id"], t)
    listed = client.get("/v1/admin/servers", params={"tenant_id": tenant["id"]}, headers=a).json()
    assert [s["name"] for s in listed["servers"]] == ["a1"]
    # A quota below what the tenant holds is refused; a raise is mirrored into LXD.
    low = client.put(
        f"/v1/admin/tenants/{tenant['id']}/quota", json={**quota, "max_memory_mib": 64}, headers=a
    )
    assert low.status_code == 409 and low.json()["error"]["details"]["in_use"] == {
        "max_memory_mib": 128
    }
    up = client.put(
        f"/v1/admin/tenants/{tenant['id']}/quota", json={**quota, "max_servers": 4}, headers=a
    )
    assert up.status_code == 200, up.text
    assert ready_host.host.get_project(tenant["lxd_project"])["limits.instances"] == "4"  # type: ignore[index]
    busy = client.delete(f"/v1/admin/tenants/{tenant['id']}", headers=a)
    assert busy.status_code == 409
    r = client.delete(f"/v1/servers/{r.json()['server']['id']}", headers=t)
    wait_action(client, r.json()["action"]["id"], t)

    assert client.delete(f"/v1/admin/tokens/{token['id']}", headers=a).json()["token"]["revoked"]
    assert client.get("/v1/limits", headers=t).status_code == 401
    assert client.delete(f"/v1/admin/tenants/{tenant['id']}", headers=a).status_code == 204
    assert ready_host.host.get_project(tenant["lxd_project"]) is None
    assert client.get(f"/v1/admin/tenants/{tenant['id']}", headers=a).status_code == 404


def test_probes_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/v1/servers",
        "/v1/servers/{server_id}/actions/{command}",
        "/v1/actions/{action_id}",
    } <= set(paths)
