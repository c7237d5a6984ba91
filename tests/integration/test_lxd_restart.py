"""LXD restarted while servers run and actions are in flight.

Servers keep running (same init), the API answers 503 while LXD is away and recovers, and each
in-flight action ends as success or as an error with nothing half-made. Restarts the shared LXD
(hold /tmp/cvps-itest.lock); LXD is always started again.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from containervps.api.app import create_app
from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server
from containervps.lxd import Lxd, connect
from containervps.services.host import daemons
from containervps.services.reconcile import Reconciler
from tests.integration.api_support import make_tenant, tenant_instances, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")

RESTARTS = int(os.environ.get("CVPS_TEST_LXD_RESTARTS", "2"))
BYSTANDERS = 3  # servers that only run through the restarts
GRACE = 15.0  # seconds LXD may wait for open operations before it is killed
NANO = {"plan": "nano", "image": "busybox"}


def _post(client: TestClient, path: str, headers: dict[str, str], **body: Any) -> Any:
    return client.post(path, json=body or None, headers=headers)


def _inits(lxd: Lxd, servers: list[Server]) -> dict[str, tuple[str, int]]:
    states = {s.name: lxd.instances.state(name=s.lxd_name, project=s.lxd_project) for s in servers}
    return {name: (st.status, st.pid) for name, st in states.items()}


def _live(settings: Settings, tenant_id: int) -> list[Server]:
    with session_scope(settings) as session:
        return list(
            session.exec(
                select(Server).where(
                    Server.tenant_id == tenant_id, col(Server.deleted_at).is_(None)
                )
            ).all()
        )


def test_lxd_restart_keeps_servers_running_and_ends_actions_cleanly(
    cp_settings: Settings, ready_host: Lxd
) -> None:
    t = make_tenant(cp_settings, ready_host, "lxdrs")
    with TestClient(create_app()) as client:
        for i in range(BYSTANDERS):
            r = _post(
                client, "/v1/servers", t.headers, name=f"run{i}", plan="nano", image="busybox"
            )
            assert wait_action(client, r.json()["action"]["id"], t.headers)["status"] == "success"
        bystanders = _live(cp_settings, t.id)
        before = _inits(ready_host, bystanders)
        assert all(status == "Running" for status, _ in before.values())
        target = bystanders[0]  # rebooted while LXD goes away
        outcomes: list[str] = []
        for n in range(RESTARTS):
            inflight = [
                _post(
                    client, "/v1/servers", t.headers, name=f"new{n}", plan="nano", image="busybox"
                ),
                _post(client, f"/v1/servers/{target.id}/actions/reboot", t.headers),
            ]
            assert [r.status_code for r in inflight] == [202, 202], [r.text for r in inflight]
            time.sleep(0.3)  # the worker is inside LXD calls now
            stopped = time.monotonic()
            try:
                how = daemons.stop_lxd_keeping_instances(cp_settings, grace=GRACE)
                down = time.monotonic()
                for what, answer in {
                    "readyz": client.get("/readyz"),
                    "create": _post(
                        client, "/v1/servers", t.headers, name=f"x{n}", plan="nano", image="busybox"
                    ),
                    "poweroff": _post(
                        client, f"/v1/servers/{bystanders[1].id}/actions/poweroff", t.headers
                    ),
                }.items():
                    assert answer.status_code == 503, (what, answer.text)
                    assert answer.json()["error"]["code"] == "service_unavailable"
            finally:
                daemons.ensure_lxd(cp_settings)
            up = time.monotonic()
            assert client.get("/readyz").status_code == 200
            actions = [
                wait_action(client, r.json()["action"]["id"], t.headers, timeout=180)
                for r in inflight
            ]
            # What the periodic reconciler does (off in tests): pending rollbacks, drift.
            worker = client.app.state.worker  # type: ignore[attr-defined]
            Reconciler(
                cp_settings, connect(cp_settings), busy=worker.in_flight, submit=worker.submit
            ).run()
            outcomes += [f"{a['command']}:{a['status']}" for a in actions]
            print(
                f"\nrestart {n + 1}/{RESTARTS}: LXD stopped ({how}) in {down - stopped:.1f}s, back "
                f"in {up - down:.1f}s; in flight: {[o for o in outcomes[-2:]]}; errors: "
                f"{[a['error'] for a in actions if a['status'] == 'error']}"
            )
            # The bystanders never stopped: same init, still running (the reboot target aside).
            after = _inits(ready_host, bystanders)
            for s in bystanders[1:]:
                assert after[s.name] == before[s.name], (s.name, before, after)
            _assert_nothing_half_made(cp_settings, ready_host, t)
            # The rebooted server is usable: running, or powered on again after a failed reboot.
            if after[target.name][0] != "Running":
                r = _post(client, f"/v1/servers/{target.id}/actions/poweron", t.headers)
                assert wait_action(client, r.json()["action"]["id"], t.headers)["status"] == (
                    "success"
                )
            before[target.name] = _inits(ready_host, [target])[target.name]
        print(f"\nin-flight actions over {RESTARTS} LXD restarts: {outcomes}")
        listed = client.get("/v1/servers", headers=t.headers).json()["servers"]
        assert all(s["status"] == "running" for s in listed), listed


def _assert_nothing_half_made(settings: Settings, lxd: Lxd, tenant: Any) -> None:
    """Every live server has its instance in the state the API shows, and no instance of the
    tenant lacks a live server."""
    rows = {(s.lxd_project, s.lxd_name): s for s in _live(settings, tenant.id)}
    instances = {(i.project, i.name): i for i in tenant_instances(lxd, tenant)}
    assert set(rows) == set(instances), (set(rows), set(instances))
    for key, row in rows.items():
        status = instances[key].status
        assert (row.status, status) in {("running", "Running"), ("off", "Stopped")}, (
            row.name,
            row.status,
            row.status_detail,
            status,
        )
