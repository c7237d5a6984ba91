"""LXD stopped during a run -> 503 within seconds, nothing half-made; then recovery.

The only test that stops the shared LXD daemon: kept short, and LXD is always restarted.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from containervps.api.app import create_app
from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server
from containervps.lxd import Lxd, connect
from containervps.services.host import daemons
from tests.integration.api_support import make_tenant, tenant_instances, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")


def test_lxd_down_answers_503_then_recovers(cp_settings: Settings, ready_host: Lxd) -> None:
    t = make_tenant(cp_settings, ready_host, "outage")
    with TestClient(create_app()) as client:
        r = client.post(
            "/v1/servers",
            json={"name": "before", "plan": "nano", "image": "busybox"},
            headers=t.headers,
        )
        sid = r.json()["server"]["id"]
        wait_action(client, r.json()["action"]["id"], t.headers)
        subprocess.run(["lxd", "shutdown", "--timeout", "60"], check=True, timeout=90)
        try:
            assert not daemons.lxd_answers(cp_settings)
            calls = {
                "create": lambda: client.post(
                    "/v1/servers",
                    json={"name": "during", "plan": "nano", "image": "busybox"},
                    headers=t.headers,
                ),
                "poweroff": lambda: client.post(
                    f"/v1/servers/{sid}/actions/poweroff", headers=t.headers
                ),
                "delete": lambda: client.delete(f"/v1/servers/{sid}", headers=t.headers),
                "readyz": lambda: client.get("/readyz"),
            }
            for what, call in calls.items():
                started = time.monotonic()
                answer = call()
                assert time.monotonic() - started < 5, what
                assert answer.status_code == 503, (what, answer.text)
                assert answer.json()["error"]["code"] == "service_unavailable"
            # Reads from SQLite keep working, and nothing was written for the refused calls.
            # LXD's shutdown stops the container: the kernel watch may have seen it go off.
            listed = client.get("/v1/servers", headers=t.headers).json()["servers"]
            assert [s["name"] for s in listed] == ["before"]
            assert listed[0]["status"] in {"running", "off"}, listed
        finally:
            daemons.ensure_lxd(cp_settings)
        assert client.get("/readyz").status_code == 200
        # LXD stopped the container on shutdown; its restart may bring it back (last state).
        r = client.post(
            "/v1/servers",
            json={"name": "after", "plan": "nano", "image": "busybox"},
            headers=t.headers,
        )
        assert r.status_code == 202, r.text
        assert wait_action(client, r.json()["action"]["id"], t.headers)["status"] == "success"
    lxd = connect(cp_settings)
    with session_scope(cp_settings) as session:
        names = {s.name for s in session.exec(select(Server).where(Server.tenant_id == t.id)).all()}
    assert names == {"before", "after"}
    assert {i.name for i in tenant_instances(lxd, t)} == {"before", "after"}
