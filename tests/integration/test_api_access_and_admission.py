"""Cross-tenant isolation and bad input through HTTP: documented errors, nothing half-made."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from containervps.api.app import create_app
from containervps.config import Settings, get_settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, Server
from containervps.lxd import Lxd
from containervps.schemas.quota import QuotaUpdate
from containervps.services.tenancy import tokens
from tests.integration.api_support import (
    make_tenant,
    server_project,
    tenant_instances,
    wait_action,
)

pytestmark = pytest.mark.usefixtures("cp_settings")


def _rows(settings: Settings, tenant_id: int) -> tuple[int, int]:
    with session_scope(settings) as session:
        servers = session.exec(select(Server).where(Server.tenant_id == tenant_id)).all()
        actions = session.exec(select(Action).where(Action.tenant_id == tenant_id)).all()
        return len(servers), len(actions)


def _assert_error(r: object, status: int, code: str) -> dict:
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    body = r.json()["error"]  # type: ignore[attr-defined]
    assert body["code"] == code and body["message"] and isinstance(body["details"], dict)
    assert r.headers["X-Request-Id"]  # type: ignore[attr-defined]
    return body


def test_another_tenants_ids_answer_404_and_change_nothing(
    client: TestClient, cp_settings: Settings, ready_host: Lxd
) -> None:
    alice = make_tenant(cp_settings, ready_host, "alice")
    mallory = make_tenant(cp_settings, ready_host, "mallory")
    r = client.post(
        "/v1/servers",
        json={"name": "secret", "plan": "nano", "image": "busybox"},
        headers=alice.headers,
    )
    sid, aid = r.json()["server"]["id"], r.json()["action"]["id"]
    wait_action(client, aid, alice.headers)
    before = _rows(cp_settings, alice.id)
    m = mallory.headers
    probes = [
        client.get(f"/v1/servers/{sid}", headers=m),
        client.delete(f"/v1/servers/{sid}", headers=m),
        client.get(f"/v1/servers/{sid}/actions", headers=m),
        client.get(f"/v1/actions/{aid}", headers=m),
        client.get(f"/v1/actions/{aid}", params={"wait": 1}, headers=m),
        *[
            client.post(f"/v1/servers/{sid}/actions/{c}", headers=m)
            for c in ("poweron", "shutdown", "poweroff", "reboot")
        ],
    ]
    for probe in probes:
        _assert_error(probe, 404, "not_found")
    assert client.get("/v1/servers", headers=m).json()["servers"] == []
    assert _rows(cp_settings, alice.id) == before
    assert (
        client.get(f"/v1/servers/{sid}", headers=alice.headers).json()["server"]["status"]
        == "running"
    )
    assert (
        ready_host.instances.get(
            name="secret", project=server_project(cp_settings, alice, "secret")
        ).status
        == "Running"
    )
    assert tenant_instances(ready_host, mallory) == []


def test_bad_input_gets_documented_errors_and_leaves_nothing(
    client: TestClient, cp_settings: Settings, ready_host: Lxd
) -> None:
    quota = QuotaUpdate(
        max_servers=1, max_vcpus=1, max_memory_mib=512, max_disk_gib=10, max_processes=1000
    )
    t = make_tenant(cp_settings, ready_host, "bad", quota=quota)
    h = t.headers
    ok = {"name": "fine", "plan": "nano", "image": "busybox"}
    for name in (
        "",
        "-lead",
        "trail-",
        "UPPER",
        "under_score",
        "dot.name",
        "a" * 64,
        "sp ace",
        "ünï",
    ):
        body = _assert_error(
            client.post("/v1/servers", json={**ok, "name": name}, headers=h), 422, "invalid_input"
        )
        assert body["details"].get("field") == "name" or "fields" in body["details"]
    _assert_error(
        client.post("/v1/servers", json={**ok, "plan": "huge"}, headers=h), 422, "invalid_input"
    )
    _assert_error(
        client.post("/v1/servers", json={**ok, "image": "windows"}, headers=h), 422, "invalid_input"
    )
    _assert_error(
        client.post("/v1/servers", json={**ok, "labels": {"BAD KEY": "x"}}, headers=h),
        422,
        "invalid_input",
    )
    _assert_error(
        client.post("/v1/servers", json={**ok, "extra": 1}, headers=h), 422, "invalid_input"
    )
    _assert_error(
        client.post(
            "/v1/servers",
            content=b'{"name": "x",',
            headers={**h, "Content-Type": "application/json"},
        ),
        400,
        "invalid_input",
    )
    big = b'{"name": "' + b"a" * 100_000 + b'"}'
    _assert_error(
        client.post("/v1/servers", content=big, headers={**h, "Content-Type": "application/json"}),
        413,
        "invalid_input",
    )

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(20):
            yield b"a" * 10_000
        yield b'"}'

    _assert_error(
        client.post(
            "/v1/servers", content=chunks(), headers={**h, "Content-Type": "application/json"}
        ),
        413,
        "invalid_input",
    )
    _assert_error(
        client.get("/v1/servers", params={"per_page": 1000}, headers=h), 422, "invalid_input"
    )
    _assert_error(
        client.get("/v1/servers", params={"label_selector": "bad key"}, headers=h),
        422,
        "invalid_input",
    )
    _assert_error(client.post("/v1/servers/1/actions/explode", headers=h), 422, "invalid_input")
    # Tokens: missing, wrong, revoked, admin on tenant routes, tenant on admin routes.
    _assert_error(client.get("/v1/servers"), 401, "unauthorized")
    _assert_error(
        client.get("/v1/servers", headers={"Authorization": "Bearer nope"}), 401, "unauthorized"
    )
    row, secret = tokens.create_token(cp_settings, name="soon revoked", tenant_id=t.id)
    tokens.revoke_token(cp_settings, row.id or 0)
    _assert_error(
        client.get("/v1/servers", headers={"Authorization": f"Bearer {secret}"}),
        401,
        "unauthorized",
    )
    _, admin = tokens.create_token(cp_settings, name="admin", is_admin=True)
    _assert_error(
        client.get("/v1/servers", headers={"Authorization": f"Bearer {admin}"}), 403, "forbidden"
    )
    _assert_error(client.get("/v1/admin/tenants", headers=h), 403, "forbidden")
    # Over quota: the second server, and a plan bigger than the quota.
    _assert_error(
        client.post("/v1/servers", json={**ok, "plan": "small"}, headers=h),
        403,
        "resource_limit_exceeded",
    )
    assert _rows(cp_settings, t.id) == (0, 0)
    r = client.post("/v1/servers", json=ok, headers=h)
    assert r.status_code == 202
    wait_action(client, r.json()["action"]["id"], h)
    body = _assert_error(
        client.post("/v1/servers", json={**ok, "name": "two"}, headers=h),
        403,
        "resource_limit_exceeded",
    )
    assert body["details"]["limit"] == "servers" and body["details"]["max"] == 1
    _assert_error(client.post("/v1/servers", json=ok, headers=h), 409, "conflict")  # name taken
    assert _rows(cp_settings, t.id) == (1, 1)
    assert [i.name for i in tenant_instances(ready_host, t)] == ["fine"]


def test_over_host_capacity_names_the_resource(
    cp_settings: Settings, ready_host: Lxd, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sell only a quarter vCPU per host CPU: 2 CPUs -> 0 vCPUs free for a 2-vCPU plan... 1 vCPU.
    monkeypatch.setenv("CONTAINERVPS_CPU_OVERCOMMIT", "0.5")
    get_settings.cache_clear()
    try:
        tight = get_settings()
        t = make_tenant(tight, ready_host, "cap")
        with TestClient(create_app()) as c:
            r = c.post(
                "/v1/servers",
                json={"name": "big", "plan": "small", "image": "busybox"},
                headers=t.headers,
            )
            body = _assert_error(r, 409, "resource_unavailable")
        assert body["details"]["resource"] == "vcpus" and "free" in body["details"]
        assert _rows(tight, t.id) == (0, 0)
        assert tenant_instances(ready_host, t) == []
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_two_tenants_can_use_the_same_server_name(
    client: TestClient, cp_settings: Settings, ready_host: Lxd
) -> None:
    first = make_tenant(cp_settings, ready_host, "first")
    second = make_tenant(cp_settings, ready_host, "second")
    name = f"web-{first.id}"
    for tenant in (first, second):
        r = client.post(
            "/v1/servers",
            json={"name": name, "plan": "nano", "image": "busybox"},
            headers=tenant.headers,
        )
        assert r.status_code == 202, r.text
        action = wait_action(client, r.json()["action"]["id"], tenant.headers)
        assert action["status"] == "success", action
        assert (
            ready_host.instances.get(
                name=name, project=server_project(cp_settings, tenant, name)
            ).status
            == "Running"
        )
