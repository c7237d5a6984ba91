"""Snapshot restores while other servers are being created (issue 14's forkstart failure), and
a restore that fails half-way: it is rolled back, says why, and leaves an event."""

from __future__ import annotations

import os
import secrets
import time

import httpx
import pytest

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server
from containervps.lxd import Lxd
from containervps.lxd.idmaps import base_of
from containervps.services.servers.restore import SAFETY_PREFIX
from tests.integration.api_support import ApiProcess, make_tenant, wait_action
from tests.integration.restore_support import CreateLoad, create, idmap_problems, sh

pytestmark = pytest.mark.usefixtures("cp_settings")

ROUNDS = int(os.environ.get("CVPS_RESTORE_ROUNDS", "5"))
DEBIAN_ROUNDS = int(os.environ.get("CVPS_RESTORE_DEBIAN_ROUNDS", "2"))


def _lxd_name(settings: Settings, sid: int) -> tuple[str, str]:
    with session_scope(settings) as session:
        row = session.get(Server, sid)
        assert row is not None
        return row.lxd_project, row.lxd_name


def _restore_rounds(
    settings: Settings, lxd: Lxd, *, image: str, plan: str, rounds: int
) -> tuple[int, list[str]]:
    """Restore a server ``rounds`` times while another tenant creates servers; the failures."""
    victim_tenant = make_tenant(settings, lxd, "rv")
    load_tenant = make_tenant(settings, lxd, "rl")
    api = ApiProcess(settings).start()
    failures: list[str] = []
    seconds: list[float] = []
    try:
        with httpx.Client(base_url=api.url, headers=victim_tenant.headers, timeout=60) as http:
            victim = create(http, f"victim-{secrets.token_hex(2)}", image=image, plan=plan)
            sid = victim["id"]
            project, name = _lxd_name(settings, sid)
            own = base_of(lxd.instances.get(name=name, project=project).config)
            assert own, "the victim has no isolated idmap"
            with CreateLoad(api.url, load_tenant) as load:
                for i in range(rounds):
                    sh(http, sid, f"echo round-{i} > /root/mark; sync")
                    r = http.post(f"/v1/servers/{sid}/snapshots", json={"name": f"s{i}"})
                    assert r.status_code == 201, r.text
                    snap = r.json()["snapshot"]["id"]
                    sh(http, sid, "echo changed > /root/mark; echo new > /root/other")
                    started = time.monotonic()
                    r = http.post(f"/v1/servers/{sid}/snapshots/{snap}/actions/restore")
                    assert r.status_code == 202, r.text
                    action = wait_action(http, r.json()["action"]["id"], {}, timeout=180)
                    seconds.append(time.monotonic() - started)
                    problems = []
                    if action["status"] != "success":
                        problems.append(f"action {action['status']}: {action['error']}")
                    status = http.get(f"/v1/servers/{sid}").json()["server"]["status"]
                    if status != "running":
                        problems.append(f"server {status}")
                    else:
                        mark = sh(http, sid, "cat /root/mark; ls /root")
                        if mark != f"round-{i}\nmark\n":
                            problems.append(f"data after restore: {mark!r}")
                    problems += idmap_problems(lxd, project=project, name=name, own=own)
                    if problems:
                        failures.append(f"round {i}: {'; '.join(problems)}")
                        print(f"\n{failures[-1]}", flush=True)
                        if status != "running":  # later rounds need it up
                            http.post(f"/v1/servers/{sid}/actions/poweron")
                            time.sleep(3)
                    assert http.delete(f"/v1/servers/{sid}/snapshots/{snap}").status_code == 204
            creates = load.created
            # Neither the tenant's list nor LXD keeps a safety snapshot after success.
            assert http.get(f"/v1/servers/{sid}/snapshots").json()["snapshots"] == []
            left = lxd.snapshots.names(name=name, project=project)
            assert not [s for s in left if s.startswith(SAFETY_PREFIX)] or failures
    finally:
        api.stop()
    print(
        f"\n{image}/{plan}: {rounds} restores during {creates} creates, {len(failures)} failed; "
        f"restore took {min(seconds):.1f}-{max(seconds):.1f} s"
        + "".join(f"\n  {f}" for f in failures)
    )
    assert creates >= 1, "no create ran during the restores"
    assert load.errors == [], load.errors
    return rounds, failures


def test_restores_under_concurrent_creates(cp_settings: Settings, ready_host: Lxd) -> None:
    _, failures = _restore_rounds(
        cp_settings, ready_host, image="busybox", plan="nano", rounds=ROUNDS
    )
    assert failures == []


def test_debian_micro_restores_under_concurrent_creates(
    cp_settings: Settings, ready_host: Lxd
) -> None:
    _, failures = _restore_rounds(
        cp_settings, ready_host, image="debian-12", plan="micro", rounds=DEBIAN_ROUNDS
    )
    assert failures == []


def test_failed_restore_is_rolled_back_with_reason_and_event(
    cp_settings: Settings, ready_host: Lxd
) -> None:
    tenant = make_tenant(cp_settings, ready_host, "rf")
    # An LXD error injected right after LXD restored the disk: the worst moment to fail.
    api = ApiProcess(
        cp_settings, env={"CONTAINERVPS_FAULTS": '{"restore.after_restore": "fail"}'}
    ).start()
    try:
        with httpx.Client(base_url=api.url, headers=tenant.headers, timeout=60) as http:
            sid = create(http, f"rf-{secrets.token_hex(2)}", image="busybox", plan="nano")["id"]
            project, name = _lxd_name(cp_settings, sid)
            own = base_of(ready_host.instances.get(name=name, project=project).config)
            sh(http, sid, "echo old > /root/mark")
            snap = http.post(f"/v1/servers/{sid}/snapshots", json={"name": "s1"}).json()
            sh(http, sid, "echo new > /root/mark")
            r = http.post(f"/v1/servers/{sid}/snapshots/{snap['snapshot']['id']}/actions/restore")
            assert r.status_code == 202, r.text
            action = wait_action(http, r.json()["action"]["id"], {})
            assert action["status"] == "error", action
            message = action["error"]["message"]
            assert "injected fault at restore.after_restore" in message, message
            assert "rolled back" in message and "server running" in message, message
            # The server is as it was before: running, the newer data, its own idmap.
            assert http.get(f"/v1/servers/{sid}").json()["server"]["status"] == "running"
            assert sh(http, sid, "cat /root/mark") == "new\n"
            assert idmap_problems(ready_host, project=project, name=name, own=own) == []
            events = http.get(f"/v1/servers/{sid}/events").json()["events"]
            rolled = [e for e in events if e["type"] == "server.restore_rolled_back"]
            assert len(rolled) == 1 and rolled[0]["message"] == message, events
            # The way back is gone once used; the tenant's own snapshot stays.
            assert ready_host.snapshots.names(name=name, project=project) == ["s1"]
            assert [
                s["name"] for s in http.get(f"/v1/servers/{sid}/snapshots").json()["snapshots"]
            ] == ["s1"]
            # A stopped server is rolled back to stopped.
            off = http.post(f"/v1/servers/{sid}/actions/poweroff")
            assert wait_action(http, off.json()["action"]["id"], {})["status"] == "success"
            r = http.post(f"/v1/servers/{sid}/snapshots/{snap['snapshot']['id']}/actions/restore")
            action = wait_action(http, r.json()["action"]["id"], {})
            assert action["status"] == "error" and "server off" in action["error"]["message"]
            assert http.get(f"/v1/servers/{sid}").json()["server"]["status"] == "off"
            assert ready_host.instances.get(name=name, project=project).status == "Stopped"
    finally:
        api.stop()


def test_poweron_repairs_a_server_an_old_restore_broke(
    cp_settings: Settings, ready_host: Lxd
) -> None:
    """Restores before the fix left servers with base 65536 that never started again."""
    tenant = make_tenant(cp_settings, ready_host, "rp")
    api = ApiProcess(cp_settings).start()
    try:
        with httpx.Client(base_url=api.url, headers=tenant.headers, timeout=60) as http:
            sid = create(http, f"rp-{secrets.token_hex(2)}", image="busybox", plan="nano")["id"]
            sh(http, sid, "echo kept > /root/mark; sync")
            project, name = _lxd_name(cp_settings, sid)
            off = http.post(f"/v1/servers/{sid}/actions/poweroff")
            assert wait_action(http, off.json()["action"]["id"], {})["status"] == "success"
            # What an old restore left: the map LXD 5.0.2 hands out beside a half-done create.
            ready_host.snapshots._set_idmap(name, project, 65536)
            assert base_of(ready_host.instances.get(name=name, project=project).config) == 65536
            on = http.post(f"/v1/servers/{sid}/actions/poweron")
            action = wait_action(http, on.json()["action"]["id"], {})
            assert action["status"] == "success", action
            assert sh(http, sid, "cat /root/mark") == "kept\n"
            problems = idmap_problems(ready_host, project=project, name=name, own=None)
            assert [p for p in problems if not p.startswith("base changed")] == [], problems
    finally:
        api.stop()
