"""The API process SIGKILLed in the middle of creates, then restarted: SQLite and LXD agree."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from sqlmodel import col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, Server
from containervps.lxd import Lxd
from containervps.services.actions.commands import PASSWORD_HASH
from containervps.services.reconcile import Reconciler
from tests.integration.api_support import ApiProcess, make_tenant, tenant_instances, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")


def _live(settings: Settings, tenant_id: int) -> list[Server]:
    with session_scope(settings) as session:
        return list(
            session.exec(
                select(Server).where(
                    Server.tenant_id == tenant_id, col(Server.deleted_at).is_(None)
                )
            ).all()
        )


def _root_hash_matches(lxd: Lxd, server: Server, password: str) -> bool:
    shadow = lxd.instances.exec(
        name=server.lxd_name, project=server.lxd_project, command=["grep", "^root:", "/etc/shadow"]
    )
    stored = shadow.stdout.split(":")[1]
    salt = stored.split("$")[2]
    again = subprocess.run(
        ["openssl", "passwd", "-6", "-salt", salt, "-stdin"],
        input=password,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return again == stored


def test_sigkill_mid_create_then_restart_reconciles(cp_settings: Settings, ready_host: Lxd) -> None:
    tenant = make_tenant(cp_settings, ready_host, "kill")
    api = ApiProcess(cp_settings).start()
    actions, passwords = [], {}
    try:
        with httpx.Client(base_url=api.url, headers=tenant.headers, timeout=30) as http:
            for i in range(3):
                r = http.post(
                    "/v1/servers", json={"name": f"k-{i}", "plan": "nano", "image": "debian-12"}
                )
                assert r.status_code == 202, r.text
                actions.append(r.json()["action"]["id"])
                passwords[f"k-{i}"] = r.json()["root_password"]
        api.kill()  # the worker threads die with their LXD calls in flight
    finally:
        api.stop()
    with session_scope(cp_settings) as session:
        interrupted = session.exec(
            select(Action).where(col(Action.id).in_(actions), Action.status == "running")
        ).all()
    assert interrupted, "the kill came too late to interrupt any create"

    # Nothing else may resume them while their dead runner holds them; a dry run only reports.
    findings = Reconciler(cp_settings, ready_host).run(dry_run=True)
    assert {f"action:{a.id}" for a in interrupted} <= {
        f.target for f in findings if f.kind == "interrupted_action"
    }

    restarted = ApiProcess(cp_settings).start()  # its start-up reconcile resumes them
    try:
        with httpx.Client(base_url=restarted.url, headers=tenant.headers, timeout=60) as http:
            outcomes = [wait_action(http, a, {})["status"] for a in actions]
            limits = http.get("/v1/limits").json()["limits"]
    finally:
        restarted.stop()
    succeeded = {a for a, o in zip(actions, outcomes, strict=True) if o == "success"}
    resumed = {a.id for a in interrupted} & succeeded
    assert resumed, "no interrupted create was resumed to the end"
    live = _live(cp_settings, tenant.id)
    instances = {i.name: i for i in tenant_instances(ready_host, tenant)}
    # Every create either finished (row running, container running) or was rolled back (neither).
    assert outcomes.count("success") == len(live)
    assert sorted(instances) == sorted(s.name for s in live)
    for server in live:
        assert server.status == "running"
        assert instances[server.name].status == "Running"
        assert instances[server.name].tag("server_id") == str(server.id)
        # A resumed create still sets the root password its 202 response showed.
        assert _root_hash_matches(ready_host, server, passwords[server.name])
    with session_scope(cp_settings) as session:
        finished = session.exec(select(Action).where(col(Action.id).in_(actions))).all()
    assert all(PASSWORD_HASH not in a.params for a in finished)  # the hash went with the action
    assert limits["servers"]["used"] == len(live)
    assert limits["memory_mib"]["used"] == 256 * len(live)
    # A second pass finds nothing left to do.
    assert [f for f in Reconciler(cp_settings, ready_host).run() if f.kind != "orphan"] == []
