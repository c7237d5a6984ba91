"""The reconciler on the real LXD: vanished containers, power drift, tagged and untagged orphans."""

from __future__ import annotations

import logging
import os
import time

import pytest
from fastapi.testclient import TestClient

from containervps.api.app import create_app
from containervps.config import Settings
from containervps.lxd import TAG_PREFIX, Lxd
from containervps.services import events
from containervps.services.reconcile import Reconciler
from containervps.services.servers import queries as servers
from tests.integration.api_support import make_tenant, server_project, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_reconciler_fixes_drift_and_reaps_only_tagged_orphans(
    cp_settings: Settings, ready_host: Lxd
) -> None:
    lxd = ready_host
    t = make_tenant(cp_settings, lxd, "recon")
    with TestClient(create_app()) as client:
        ids = []
        for name in ("drift", "vanish"):
            r = client.post(
                "/v1/servers",
                json={"name": name, "plan": "nano", "image": "busybox"},
                headers=t.headers,
            )
            assert wait_action(client, r.json()["action"]["id"], t.headers)["status"] == "success"
            ids.append(r.json()["server"]["id"])
    drift_id, vanish_id = ids
    # Behind our back: one container stopped, one deleted, one tagged orphan, one untagged.
    drift, vanish = (server_project(cp_settings, t, n) for n in ("drift", "vanish"))
    lxd.instances.set_state(name="drift", project=drift, action="stop", force=True)
    lxd.instances.delete(name="vanish", project=vanish)
    config = {"limits.cpu": "1", "limits.memory": "64MiB", "limits.processes": "100"}
    root = {"root": {"type": "disk", "path": "/", "pool": cp_settings.storage_pool, "size": "1GiB"}}
    lxd.instances.create(
        name="orphan",
        project=t.project,
        image="busybox",
        profiles=["default"],
        config=config,
        devices=root,
        tags={"server_id": "999999"},
    )
    lxd.instances.create(
        name="handmade",
        project=t.project,
        image="busybox",
        profiles=["default"],
        config=config,
        devices=root,
    )
    # A disk pool left by a gone server (tagged) and one made by hand (untagged).
    ghost, handpool = f"{t.project}_ghost", f"{t.project}_handpool"
    lxd.host.create_pool(name=ghost, driver="dir", config={TAG_PREFIX + "server_id": "999999"})
    lxd.host.create_pool(name=handpool, driver="dir", config={})
    # The vanished server's own disk (per_server layout; made here under the shared one).
    kept = f"{vanish}_vanish"
    if lxd.host.get_pool(kept) is None:
        lxd.host.create_pool(
            name=kept, driver="dir", config={TAG_PREFIX + "server_id": str(vanish_id)}
        )

    # Log directories LXD left behind: a tenant's, old and new; another project's, old.
    logs = lxd.instances.logs
    gone, fresh = (logs.path(project=t.project, name=n) for n in ("gone", "fresh"))
    other = logs.path(project="cvpsother", name="gone")
    for path in (gone, fresh, other):
        path.mkdir(parents=True, exist_ok=True)
    two_hours_ago = time.time() - 7200
    for path in (gone, other):
        os.utime(path, (two_hours_ago, two_hours_ago))

    dry = Reconciler(cp_settings, lxd).run(dry_run=True)
    kinds = {(f.kind, f.target) for f in dry}
    assert ("drift", f"server:{drift_id}") in kinds
    assert ("vanished", f"server:{vanish_id}") in kinds
    assert ("orphan", f"instance:{t.project}/orphan") in kinds
    assert not any("handmade" in f.target or "handpool" in f.target for f in dry)
    assert ("orphan_disk", f"pool:{ghost}") in kinds
    assert ("orphan_log", f"log:{t.project}/gone") in kinds
    assert not any("fresh" in f.target or "cvpsother" in f.target for f in dry)
    assert not any(f.applied for f in dry)
    assert servers.get_server(cp_settings, server_id=drift_id, tenant_id=t.id).status == "running"

    watch_log, records = logging.getLogger("containervps.services.metering.watch"), _Records()
    watch_log.addHandler(records)
    try:
        Reconciler(cp_settings, lxd).run()
    finally:
        watch_log.removeHandler(records)
    stopped = servers.get_server(cp_settings, server_id=drift_id, tenant_id=t.id)
    # The operator's log keeps the tail of the container's own logs (LXC's, here its stop).
    [said_log] = [r for r in records.records if r.getMessage() == "server stopped unexpectedly"]
    said_about = vars(said_log)
    assert said_about["server"] == drift_id and any("lxc" in line for line in said_about["lxc_log"])
    assert stopped.status == "off" and stopped.status_detail == "stopped inside the server"
    said, _ = events.list_events(cp_settings, tenant_id=t.id, server_id=drift_id)
    assert [(e.type, e.details["cause"]) for e in said] == [
        ("server.stopped_unexpectedly", "inside")
    ]
    vanished = servers.get_server(cp_settings, server_id=vanish_id, tenant_id=t.id)
    assert vanished.status == "missing" and vanished.status_detail == "container vanished"
    assert lxd.instances.exists(name="orphan", project=t.project)  # still inside the grace period
    assert lxd.host.get_pool(ghost) is None  # a pool without its container holds no data
    assert lxd.host.get_pool(handpool) is not None
    assert lxd.host.get_pool(kept) is not None  # its server row is still live
    assert not gone.exists() and fresh.is_dir() and other.is_dir()

    expired = cp_settings.model_copy(update={"orphan_grace_seconds": 0.0})
    os.utime(fresh, (two_hours_ago, two_hours_ago))  # now as old as the one swept before
    findings = Reconciler(expired, lxd).run()
    assert ("orphan_deleted", f"instance:{t.project}/orphan") in {
        (f.kind, f.target) for f in findings
    }
    assert not lxd.instances.exists(name="orphan", project=t.project)
    assert ("orphan_log", f"log:{t.project}/fresh") in {(f.kind, f.target) for f in findings}
    assert not fresh.exists() and other.is_dir()  # another project's: never touched
    other.rmdir()
    assert lxd.instances.exists(name="handmade", project=t.project)  # untagged: never touched
    lxd.instances.delete(name="handmade", project=t.project)
    lxd.host.delete_pool(handpool)
    assert Reconciler(expired, lxd).run(dry_run=True) == []
