"""A retired plan on the real LXD: servers on it keep it and keep working; new servers and
resizes to it are refused naming the plan; a resize away from it works."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from containervps.config import Settings
from containervps.lxd import Lxd
from tests.integration.api_support import admin_headers, make_tenant, small_plan, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")


def _done(client: TestClient, r: httpx.Response, h: dict[str, str]) -> dict[str, Any]:
    assert r.status_code == 202, r.text
    action = wait_action(client, r.json()["action"]["id"], h)
    assert action["status"] == "success", action
    return dict(r.json())


def test_servers_keep_a_retired_plan_and_no_one_gets_it_anew(
    client: TestClient, cp_settings: Settings, ready_host: Lxd
) -> None:
    a = admin_headers(cp_settings)
    plan = f"old-{secrets.token_hex(3)}"
    spec = small_plan(plan)
    assert client.post("/v1/admin/plans", json=spec, headers=a).status_code == 201
    tenant = make_tenant(cp_settings, ready_host, "retire")
    h = tenant.headers
    body = {"name": "keeps", "plan": plan, "image": "busybox"}
    sid = _done(client, client.post("/v1/servers", json=body, headers=h), h)["server"]["id"]

    r = client.post(f"/v1/admin/plans/{plan}/actions/retire", headers=a)
    assert r.status_code == 200 and r.json()["plan"]["retired"]
    assert plan not in {p["name"] for p in client.get("/v1/plans", headers=h).json()["plans"]}

    # The server keeps its plan, its limits and its life cycle.
    server = client.get(f"/v1/servers/{sid}", headers=h).json()["server"]
    assert server["plan"] == plan and server["limits"]["memory"]["value"] == 128
    _done(client, client.post(f"/v1/servers/{sid}/actions/reboot", headers=h), h)
    r = client.post(f"/v1/servers/{sid}/exec", json={"command": "echo up"}, headers=h)
    assert r.status_code == 200 and r.json()["exec"]["stdout"] == "up\n"

    # Nothing new on it: neither a create nor a resize to it.
    refused = client.post("/v1/servers", json={**body, "name": "new"}, headers=h)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_input" and f"plan '{plan}' is retired" in error["message"]
    assert error["details"]["field"] == "plan" and error["details"]["value"] == plan
    _done(
        client,
        client.post(f"/v1/servers/{sid}/actions/resize", json={"plan": "nano"}, headers=h),
        h,
    )
    back = client.post(f"/v1/servers/{sid}/actions/resize", json={"plan": plan}, headers=h)
    assert back.status_code == 422 and back.json()["error"]["details"]["value"] == plan
    assert client.get(f"/v1/servers/{sid}", headers=h).json()["server"]["plan"] == "nano"

    # Back in the catalogue: usable again.
    assert client.post(f"/v1/admin/plans/{plan}/actions/unretire", headers=a).status_code == 200
    _done(
        client, client.post(f"/v1/servers/{sid}/actions/resize", json={"plan": plan}, headers=h), h
    )
    _done(client, client.delete(f"/v1/servers/{sid}", headers=h), h)
