"""The kernel watch on the real LXD: an OOM kill inside a server, a power-off from inside and an
OOM kill of its init each become what the tenant reads at GET /v1/servers/{id}/events."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from containervps.config import Settings
from containervps.lxd import Lxd
from containervps.services.metering import usage
from tests.integration.api_support import make_tenant, server_project, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")

# 400 MiB through one buffering process: past nano's memory (no swap is allowed to absorb it).
FILL_MEMORY = "head -c 419430400 /dev/zero | tail; echo rc=$?"
# A tmpfs filled past the limit: killing processes frees none of it, so the OOM killer goes
# on until it kills init (what took Debian's systemd down in issue 14). In the background, so
# the exec itself is not what dies.
FILL_TMPFS = (
    "(mkdir -p /mnt/fill && mount -t tmpfs -o size=400m none /mnt/fill"
    " && head -c 419430400 /dev/zero > /mnt/fill/x) >/dev/null 2>&1 </dev/null & echo started"
)
POWEROFF = "poweroff -d 1 >/dev/null 2>&1 </dev/null & echo asked"


def _exec(client: TestClient, h: dict[str, str], sid: int, command: str) -> str:
    r = client.post(f"/v1/servers/{sid}/exec", json={"command": command}, headers=h)
    assert r.status_code == 200, r.text
    return str(r.json()["exec"]["stdout"])


def _events(client: TestClient, h: dict[str, str], sid: int) -> list[dict[str, Any]]:
    r = client.get(f"/v1/servers/{sid}/events", headers=h)
    assert r.status_code == 200, r.text
    return list(r.json()["events"])


def _wait_stopped(lxd: Lxd, *, name: str, project: str, timeout: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if lxd.instances.get(name=name, project=project).status == "Stopped":
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{name} still running after {timeout}s")


def _server(client: TestClient, h: dict[str, str], sid: int) -> dict[str, Any]:
    r = client.get(f"/v1/servers/{sid}", headers=h)
    assert r.status_code == 200, r.text
    return dict(r.json()["server"])


def _power_on(client: TestClient, h: dict[str, str], sid: int) -> float:
    started = time.monotonic()
    r = client.post(f"/v1/servers/{sid}/actions/poweron", headers=h)
    assert r.status_code == 202, r.text
    action = wait_action(client, r.json()["action"]["id"], h)
    assert action["status"] == "success", action["error"]
    return time.monotonic() - started


def test_oom_kills_and_stops_inside_a_server_become_events(
    client: TestClient, cp_settings: Settings, ready_host: Lxd
) -> None:
    tenant = make_tenant(cp_settings, ready_host, "oom")
    h = tenant.headers
    name = f"oom-{secrets.token_hex(3)}"
    r = client.post(
        "/v1/servers", json={"name": name, "plan": "nano", "image": "busybox"}, headers=h
    )
    assert r.status_code == 202, r.text
    assert wait_action(client, r.json()["action"]["id"], h)["status"] == "success"
    sid = r.json()["server"]["id"]
    memory = r.json()["server"]["limits"]["memory"]["value"]
    project = server_project(cp_settings, tenant, name)
    usage.sample_all(cp_settings, ready_host)  # the watch's first look
    assert _events(client, h, sid) == []

    # 1. A process killed at the plan's memory limit.
    assert "rc=137" in _exec(client, h, sid, FILL_MEMORY)  # SIGKILL
    usage.sample_all(cp_settings, ready_host)
    (oom,) = _events(client, h, sid)
    print(f"event after an OOM kill: {oom['type']}: {oom['message']} {oom['details']}")
    assert oom["type"] == "server.oom_kill" and oom["severity"] == "warning"
    assert oom["details"]["count"] == 1 and oom["details"]["memory_mib"] == memory
    assert oom["details"]["killed"] == ["tail"]
    assert _server(client, h, sid)["status"] == "running"
    usage.sample_all(cp_settings, ready_host)
    assert len(_events(client, h, sid)) == 1  # counted once

    # 2. Powered off from inside: the platform did not ask for it, and says so.
    assert "asked" in _exec(client, h, sid, POWEROFF)
    took = _wait_stopped(ready_host, name=name, project=project)
    usage.sample_all(cp_settings, ready_host)
    server = _server(client, h, sid)
    stop = _events(client, h, sid)[0]
    print(f"after poweroff inside ({took:.1f}s): {server['status']} / {server['status_detail']}")
    print(f"event: {stop['type']}: {stop['message']} {stop['details']}")
    assert (server["status"], server["status_detail"]) == ("off", "stopped inside the server")
    assert stop["type"] == "server.stopped_unexpectedly"
    assert stop["details"] == {"cause": "inside", "oom_kills": 0}

    # 3. Its init killed by the OOM killer: off, and why.
    # Right away: LXD still runs its own stop for a few seconds; the action waits it out.
    print(f"powered on again in {_power_on(client, h, sid):.1f}s")
    assert _server(client, h, sid)["status_detail"] is None
    usage.sample_all(cp_settings, ready_host)
    assert "started" in _exec(client, h, sid, FILL_TMPFS)
    took = _wait_stopped(ready_host, name=name, project=project)
    usage.sample_all(cp_settings, ready_host)
    server = _server(client, h, sid)
    stop, kills = _events(client, h, sid)[:2]
    print(f"after a tmpfs fill ({took:.1f}s): {server['status']} / {server['status_detail']}")
    print(f"events: {stop['message']} {stop['details']} | {kills['message']} {kills['details']}")
    assert server["status"] == "off"
    assert server["status_detail"] == "stopped after an OOM kill of its init (init)"
    assert stop["type"] == "server.stopped_unexpectedly"
    assert stop["details"]["cause"] == "oom_kill_of_init"
    assert kills["type"] == "server.oom_kill" and "init" in kills["details"]["killed"]
    assert stop["details"]["oom_kills"] == kills["details"]["count"] >= 1
    # Another tenant reads none of it.
    other = make_tenant(cp_settings, ready_host, "oom-other")
    assert client.get(f"/v1/servers/{sid}/events", headers=other.headers).status_code == 404
