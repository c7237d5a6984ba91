"""Real answers across resources, success and error, checked against the OpenAPI document on
the real LXD: every answer of this module goes through Conformance.check (a response hook)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from containervps.config import Settings
from containervps.lxd import Lxd
from containervps.schemas.quota import QuotaUpdate
from containervps.services.tenancy import tokens
from tests.integration.api_support import make_tenant, wait_action
from tests.openapi_support import Conformance, assert_nothing_dropped, raw_answers

pytestmark = pytest.mark.usefixtures("cp_settings")

QUOTA = QuotaUpdate(
    max_servers=1, max_vcpus=4, max_memory_mib=2048, max_disk_gib=20, max_processes=5000
)


@pytest.fixture(scope="module")
def conformance(client: TestClient) -> Iterator[Conformance]:
    """Every answer the module's client gets is checked against the app's own document."""
    check = Conformance(client.get("/openapi.json").json())

    def hook(response: httpx.Response) -> None:
        response.read()
        check.check(response)

    client.event_hooks = {"request": [], "response": [hook]}
    yield check
    client.event_hooks = {"request": [], "response": []}


def _done(client: TestClient, r: httpx.Response, h: dict[str, str]) -> dict[str, Any]:
    assert r.status_code == 202, r.text
    action = wait_action(client, r.json()["action"]["id"], h)
    assert action["status"] == "success", action
    return dict(r.json())


def test_answers_across_resources_match_the_document(
    client: TestClient,
    conformance: Conformance,
    cp_settings: Settings,
    ready_host: Lxd,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, admin_secret = tokens.create_token(cp_settings, name="ops", is_admin=True)
    a = {"Authorization": f"Bearer {admin_secret}"}
    tenant = make_tenant(cp_settings, ready_host, "oas", quota=QUOTA)
    other = make_tenant(cp_settings, ready_host, "oas-other")
    h = tenant.headers
    with raw_answers(monkeypatch) as pairs:
        assert client.get("/readyz").status_code == 200
        assert "busybox" in {
            i["name"] for i in client.get("/v1/images", headers=h).json()["images"]
        }
        body = {"name": f"oas-{secrets.token_hex(3)}", "plan": "nano", "image": "busybox"}
        created = _done(client, client.post("/v1/servers", json=body, headers=h), h)
        assert created["root_password"]  # no SSH keys: a password, shown once
        sid = created["server"]["id"]
        # Errors: quota (403), bad input (422), another tenant's id (404), wrong token kind (403).
        more = client.post("/v1/servers", json={**body, "name": "two"}, headers=h)
        assert more.status_code == 403 and more.json()["error"]["code"] == "resource_limit_exceeded"
        assert client.post("/v1/servers", json={**body, "plan": "x"}, headers=h).status_code == 422
        assert client.get(f"/v1/servers/{sid}", headers=other.headers).status_code == 404
        assert client.get(f"/v1/servers/{sid}", headers=a).status_code == 403
        assert client.get(f"/v1/servers/{sid}/console", headers=h).status_code == 426

        r = client.post(f"/v1/servers/{sid}/exec", json={"command": "echo hi"}, headers=h)
        assert r.json()["exec"]["stdout"] == "hi\n"
        snap = client.post(f"/v1/servers/{sid}/snapshots", json={"name": "s1"}, headers=h)
        assert snap.status_code == 201, snap.text
        snap_id = snap.json()["snapshot"]["id"]
        dup = client.post(f"/v1/servers/{sid}/snapshots", json={"name": "s1"}, headers=h)
        assert dup.status_code == 409
        assert client.get(f"/v1/servers/{sid}/snapshots", headers=h).status_code == 200
        restore = f"/v1/servers/{sid}/snapshots/{snap_id}/actions/restore"
        _done(client, client.post(restore, headers=h), h)
        assert client.delete(f"/v1/servers/{sid}/snapshots/{snap_id}", headers=h).status_code == 204

        _done(client, client.post(f"/v1/servers/{sid}/actions/poweroff", headers=h), h)
        stopped = client.post(f"/v1/servers/{sid}/exec", json={"command": "true"}, headers=h)
        assert stopped.status_code == 409, stopped.text
        _done(client, client.post(f"/v1/servers/{sid}/actions/poweron", headers=h), h)
        _done(
            client,
            client.post(f"/v1/servers/{sid}/actions/resize", json={"plan": "micro"}, headers=h),
            h,
        )
        rebuilt = _done(
            client,
            client.post(f"/v1/servers/{sid}/actions/rebuild", json={"image": "busybox"}, headers=h),
            h,
        )
        assert rebuilt["root_password"]
        protect = f"/v1/servers/{sid}/actions/change_protection"
        assert client.post(protect, json={"delete": True}, headers=h).status_code == 200
        assert client.delete(f"/v1/servers/{sid}", headers=h).status_code == 403
        client.post(protect, json={"delete": False}, headers=h)
        for path in (
            f"/v1/servers/{sid}",
            f"/v1/servers/{sid}/actions",
            f"/v1/servers/{sid}/metrics",
        ):
            assert client.get(path, headers=h).status_code == 200
        for path in ("/v1/servers", "/v1/actions", "/v1/usage", "/v1/limits", "/v1/plans"):
            assert client.get(path, headers=h).status_code == 200

        # Admin: tenants, quotas, tokens, plans, every server.
        assert client.get("/v1/admin/servers", headers=a).json()["meta"]["pagination"]
        assert client.get(f"/v1/admin/tenants/{tenant.id}", headers=a).status_code == 200
        low = client.put(
            f"/v1/admin/tenants/{tenant.id}/quota",
            json={**QUOTA.model_dump(), "max_memory_mib": 1},
            headers=a,
        )
        assert low.status_code == 409
        assert client.delete(f"/v1/admin/tenants/{tenant.id}", headers=a).status_code == 409
        made = client.post(
            "/v1/admin/tenants", json={"name": f"oas-{secrets.token_hex(3)}"}, headers=a
        )
        assert made.status_code == 201
        assert (
            client.delete(f"/v1/admin/tenants/{made.json()['tenant']['id']}", headers=a).status_code
            == 204
        )
        assert client.get("/v1/admin/tenants", headers=a).status_code == 200

        _done(client, client.delete(f"/v1/servers/{sid}", headers=h), h)
        assert client.get(f"/v1/servers/{sid}", headers=h).status_code == 404
    assert_nothing_dropped(pairs)
    statuses = {status for _, _, status in conformance.seen}
    assert statuses >= {200, 201, 202, 204, 403, 404, 409, 422, 426}
    assert len({template for _, template, _ in conformance.seen}) >= 20
