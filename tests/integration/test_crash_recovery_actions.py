"""The API process SIGKILLed in the middle of a restore, a resize and a rebuild: the next
process's start-up reconcile finishes each, the server runs, exec works, data is intact
(restore, resize), and the tenant reads what the platform did in the server's events.

Each kill lands at a known step: the first process runs with a fault checkpoint set to
"pause" (faults.py), the test waits until its log says it paused there, then kills it.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, Server
from containervps.lxd import Lxd
from containervps.services.servers.restore import safety_name
from tests.integration.api_support import ApiProcess, ApiTenant, make_tenant, wait_action
from tests.integration.restore_support import create, sh

pytestmark = pytest.mark.usefixtures("cp_settings")


def _paused(api: ApiProcess, checkpoint: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = api.log.read_text(errors="replace")
        if "paused at fault checkpoint" in log and checkpoint in log:
            return
        time.sleep(0.2)
    raise AssertionError(f"the API never reached {checkpoint}: {api.log.read_text()[-2000:]}")


def _server(settings: Settings, sid: int) -> Server:
    with session_scope(settings) as session:
        row = session.get(Server, sid)
        assert row is not None
        return row


def _killed_during(
    settings: Settings,
    tenant: ApiTenant,
    *,
    checkpoint: str,
    prepare: Callable[[httpx.Client], int],
    start: Callable[[httpx.Client, int], httpx.Response],
) -> tuple[int, int]:
    """Make a server, start an action, kill the API where the action paused; (server, action)."""
    api = ApiProcess(settings, env={"CONTAINERVPS_FAULTS": json.dumps({checkpoint: "pause"})})
    api.start()
    try:
        with httpx.Client(base_url=api.url, headers=tenant.headers, timeout=60) as http:
            sid = prepare(http)
            r = start(http, sid)
            assert r.status_code == 202, r.text
            action_id = int(r.json()["action"]["id"])
            _paused(api, checkpoint)
        api.kill()
    finally:
        api.stop()
    with session_scope(settings) as session:
        action = session.get(Action, action_id)
        assert action is not None and action.status == "running"  # the kill interrupted it
    return sid, action_id


def _after_restart(
    settings: Settings, tenant: ApiTenant, sid: int, action_id: int
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]], str]:
    """Start a new API (its start-up reconcile resumes the action); the action, the server,
    its events, and the output of a command run in it."""
    api = ApiProcess(settings).start()
    try:
        with httpx.Client(base_url=api.url, headers=tenant.headers, timeout=60) as http:
            action = wait_action(http, action_id, {}, timeout=180)
            server = http.get(f"/v1/servers/{sid}").json()["server"]
            events = http.get(f"/v1/servers/{sid}/events").json()["events"]
            out = sh(http, sid, "cat /root/mark 2>/dev/null; echo alive")
    finally:
        api.stop()
    return action, server, events, out


def _finished_event(events: list[dict[str, Any]], action_id: int) -> None:
    finished = [e for e in events if e["type"] == "server.action_finished"]
    assert len(finished) == 1, events
    assert finished[0]["details"]["action_id"] == action_id
    assert "interrupted" in finished[0]["message"] and "finished" in finished[0]["message"]


def test_api_killed_mid_restore_is_finished(cp_settings: Settings, ready_host: Lxd) -> None:
    tenant = make_tenant(cp_settings, ready_host, "kr")
    snap: dict[str, int] = {}

    def prepare(http: httpx.Client) -> int:
        sid = int(create(http, f"kr-{secrets.token_hex(2)}", image="busybox", plan="nano")["id"])
        sh(http, sid, "echo snap > /root/mark; sync")
        snap["id"] = http.post(f"/v1/servers/{sid}/snapshots", json={"name": "s1"}).json()[
            "snapshot"
        ]["id"]
        sh(http, sid, "echo later > /root/mark")
        return sid

    sid, action_id = _killed_during(
        cp_settings,
        tenant,
        checkpoint="restore.after_restore",  # disk restored, server stopped, way back kept
        prepare=prepare,
        start=lambda http, sid: http.post(
            f"/v1/servers/{sid}/snapshots/{snap['id']}/actions/restore"
        ),
    )
    row = _server(cp_settings, sid)
    name, project = row.lxd_name, row.lxd_project
    assert ready_host.instances.get(name=name, project=project).status == "Stopped"
    assert safety_name(action_id) in ready_host.snapshots.names(name=name, project=project)

    action, server, events, out = _after_restart(cp_settings, tenant, sid, action_id)
    assert action["status"] == "success", action
    assert server["status"] == "running"
    assert out == "snap\nalive\n"  # the snapshot's data, and exec works
    assert ready_host.snapshots.names(name=name, project=project) == ["s1"]  # way back dropped
    _finished_event(events, action_id)


def test_api_killed_mid_resize_is_finished(cp_settings: Settings, ready_host: Lxd) -> None:
    tenant = make_tenant(cp_settings, ready_host, "kz")

    def prepare(http: httpx.Client) -> int:
        sid = int(create(http, f"kz-{secrets.token_hex(2)}", image="busybox", plan="nano")["id"])
        sh(http, sid, "echo kept > /root/mark; sync")
        return sid

    sid, action_id = _killed_during(
        cp_settings,
        tenant,
        checkpoint="resize.apply",  # memory changed, disk and CPU not yet
        prepare=prepare,
        start=lambda http, sid: http.post(
            f"/v1/servers/{sid}/actions/resize", json={"plan": "micro"}
        ),
    )
    action, server, events, out = _after_restart(cp_settings, tenant, sid, action_id)
    assert action["status"] == "success", action
    assert server["status"] == "running" and server["plan"] == "micro"
    assert out == "kept\nalive\n"
    row = _server(cp_settings, sid)
    inst = ready_host.instances.get(name=row.lxd_name, project=row.lxd_project)
    assert inst.config["limits.memory"] == f"{row.memory_mib}MiB" == "512MiB"
    assert inst.devices["root"]["size"] == f"{row.disk_gib}GiB"
    _finished_event(events, action_id)


def test_api_killed_mid_rebuild_is_finished(cp_settings: Settings, ready_host: Lxd) -> None:
    tenant = make_tenant(cp_settings, ready_host, "kb")

    def prepare(http: httpx.Client) -> int:
        return int(create(http, f"kb-{secrets.token_hex(2)}", image="busybox", plan="nano")["id"])

    sid, action_id = _killed_during(
        cp_settings,
        tenant,
        checkpoint="rebuild.after_delete",  # the old container is gone, the new one not made
        prepare=prepare,
        start=lambda http, sid: http.post(
            f"/v1/servers/{sid}/actions/rebuild", json={"image": "busybox"}
        ),
    )
    row = _server(cp_settings, sid)
    assert not ready_host.instances.exists(name=row.lxd_name, project=row.lxd_project)
    action, server, events, out = _after_restart(cp_settings, tenant, sid, action_id)
    assert action["status"] == "success", action
    assert server["status"] == "running"
    assert out == "alive\n"  # a fresh disk, and exec works
    inst = ready_host.instances.get(name=row.lxd_name, project=row.lxd_project)
    assert inst.status == "Running" and inst.tag("server_id") == str(sid)
    _finished_event(events, action_id)
