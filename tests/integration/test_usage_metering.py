"""Usage sampling on the real LXD: metrics grow after CPU and network work; totals add up."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from containervps.config import Settings
from containervps.lxd import Lxd
from containervps.services.metering import usage
from tests.integration.api_support import make_tenant, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")


def _exec(client: TestClient, h: dict, sid: int, command: str) -> str:
    r = client.post(f"/v1/servers/{sid}/exec", json={"command": command}, headers=h)
    assert r.status_code == 200, r.text
    return str(r.json()["exec"]["stdout"])


def test_metrics_grow_after_work_and_usage_adds_up(
    client: TestClient, cp_settings: Settings, ready_host: Lxd
) -> None:
    tenant = make_tenant(cp_settings, ready_host, "usage")
    h = tenant.headers
    sids = []
    for _ in range(2):
        body = {"name": f"us-{secrets.token_hex(3)}", "plan": "nano", "image": "busybox"}
        r = client.post("/v1/servers", json=body, headers=h)
        assert r.status_code == 202, r.text
        assert wait_action(client, r.json()["action"]["id"], h)["status"] == "success"
        sids.append(r.json()["server"]["id"])
    sid = sids[0]
    # The window opens after the samples each create took right after its start (boundary
    # samples): it holds exactly the two passes below.
    time.sleep(0.01)
    started = datetime.now(UTC)
    assert usage.sample_all(cp_settings, ready_host) >= 2

    # About 2 s of CPU, and some packets to the bridge's gateway (on this project's bridge).
    _exec(client, h, sid, "timeout 2 sh -c 'while :; do :; done'; true")
    gateway = cp_settings.bridge_subnet.split("/")[0]
    _exec(client, h, sid, f"ping -c 5 -s 1200 -W 1 {gateway}; true")
    assert usage.sample_all(cp_settings, ready_host) >= 2

    r = client.get(
        f"/v1/servers/{sid}/metrics",
        params={"start": started.isoformat(), "end": datetime.now(UTC).isoformat()},
        headers=h,
    )
    assert r.status_code == 200, r.text
    m = r.json()["metrics"]
    assert len(m["samples"]) == 2
    first, last = m["samples"]
    assert last["cpu_seconds"] - first["cpu_seconds"] >= 1.5
    assert m["totals"]["cpu_seconds"] >= 1.5
    assert m["totals"]["net_tx_bytes"] >= 5 * 1200
    assert last["memory_bytes"] > 0 and last["disk_bytes"] > 0

    month = datetime.now(UTC).strftime("%Y-%m")
    r = client.get("/v1/usage", params={"month": month}, headers=h)
    assert r.status_code == 200, r.text
    report = r.json()["usage"]
    rows = {row["server"]["id"]: row for row in report["servers"]}
    assert set(rows) == set(sids)
    for key in ("cpu_seconds", "net_rx_bytes", "net_tx_bytes"):
        assert report["totals"][key] == pytest.approx(sum(row[key] for row in rows.values()))
    mine = rows[sid]
    assert mine["cpu_seconds"] >= 1.5
    assert mine["transfer"]["used_bytes"] == mine["net_tx_bytes"] >= 6000
    assert mine["transfer"]["allowance_bytes"] == 500 * 2**30  # nano's monthly allowance
    assert mine["transfer"]["exceeded"] is False

    # Bad input and another tenant's server.
    assert client.get("/v1/usage", params={"month": "2026-13"}, headers=h).status_code == 422
    bad = {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}
    assert client.get(f"/v1/servers/{sid}/metrics", params=bad, headers=h).status_code == 422
    other = make_tenant(cp_settings, ready_host, "usage-other")
    assert client.get(f"/v1/servers/{sid}/metrics", headers=other.headers).status_code == 404
    empty = client.get("/v1/usage", headers=other.headers).json()["usage"]
    assert empty["servers"] == [] and empty["totals"]["cpu_seconds"] == 0
