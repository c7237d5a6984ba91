"""Snapshots through the API on the real LXD: restore puts the files back; a quota holds."""

from __future__ import annotations

import secrets

import pytest
from fastapi.testclient import TestClient

from containervps.config import Settings
from containervps.lxd import Lxd
from containervps.services.tenancy.tenants import default_quota
from tests.integration.api_support import make_tenant, server_project, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")


def _sh(client: TestClient, h: dict, sid: int, command: str) -> str:
    r = client.post(f"/v1/servers/{sid}/exec", json={"command": command}, headers=h)
    assert r.status_code == 200, r.text
    return str(r.json()["exec"]["stdout"])


def test_snapshot_restore_puts_files_back_within_a_quota(
    client: TestClient, cp_settings: Settings, ready_host: Lxd
) -> None:
    quota = default_quota(cp_settings)
    tenant = make_tenant(
        cp_settings, ready_host, "snap", quota=quota.model_copy(update={"max_snapshots": 2})
    )
    h = tenant.headers
    body = {"name": f"sn-{secrets.token_hex(3)}", "plan": "nano", "image": "busybox"}
    r = client.post("/v1/servers", json=body, headers=h)
    assert wait_action(client, r.json()["action"]["id"], h)["status"] == "success"
    sid = r.json()["server"]["id"]
    base = f"/v1/servers/{sid}/snapshots"

    _sh(client, h, sid, "echo before > /root/file; sync")
    r = client.post(base, json={"name": "s1"}, headers=h)
    assert r.status_code == 201, r.text
    snap = r.json()["snapshot"]
    assert snap["name"] == "s1" and snap["status"] == "available"
    _sh(client, h, sid, "echo after > /root/file; echo new > /root/other")

    # A restore is an action: refused while another action runs, and holding the server.
    reboot = client.post(f"/v1/servers/{sid}/actions/reboot", headers=h)
    assert reboot.status_code == 202, reboot.text
    r = client.post(f"{base}/{snap['id']}/actions/restore", headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "locked", r.text
    assert wait_action(client, reboot.json()["action"]["id"], h)["status"] == "success"
    r = client.post(f"{base}/{snap['id']}/actions/restore", headers=h)
    assert r.status_code == 202, r.text
    assert r.json()["action"]["command"] == "restore_snapshot"
    assert wait_action(client, r.json()["action"]["id"], h)["status"] == "success"
    assert _sh(client, h, sid, "cat /root/file; ls /root") == "before\nfile\n"
    assert client.get(f"/v1/servers/{sid}", headers=h).json()["server"]["status"] == "running"

    # Another tenant can neither see nor restore it.
    other = make_tenant(cp_settings, ready_host, "snap-other")
    r = client.post(f"{base}/{snap['id']}/actions/restore", headers=other.headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert client.get(base, headers=other.headers).status_code == 404
    assert client.post(f"{base}/999999/actions/restore", headers=h).status_code == 404

    # Quota of 2: a third is refused, deleting one frees it.
    assert client.post(base, json={"name": "bad name"}, headers=h).status_code == 422
    assert client.post(base, json={"name": "s1"}, headers=h).status_code == 409
    assert client.post(base, json={}, headers=h).status_code == 201
    r = client.post(base, json={"name": "s3"}, headers=h)
    assert r.status_code == 403 and r.json()["error"]["details"]["limit"] == "snapshots"
    assert len(client.get(base, headers=h).json()["snapshots"]) == 2
    # The quota the API enforces is the one /v1/limits shows.
    assert client.get("/v1/limits", headers=h).json()["limits"]["snapshots"] == {
        "max": 2,
        "used": 2,
    }
    assert client.delete(f"{base}/{snap['id']}", headers=h).status_code == 204
    assert client.post(base, json={"name": "s3"}, headers=h).status_code == 201
    names = [s["name"] for s in client.get(base, headers=h).json()["snapshots"]]
    assert "s1" not in names and "s3" in names and len(names) == 2
    lxd_names = ready_host.snapshots.names(
        name=body["name"], project=server_project(cp_settings, tenant, body["name"])
    )
    assert sorted(lxd_names) == sorted(names)
