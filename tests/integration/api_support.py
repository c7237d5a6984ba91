"""Helpers of the API integration tests: tenants with tokens, waiting on actions, a real
`serve` child process (fixtures are in conftest.py)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx
from sqlmodel import col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server
from containervps.lxd import InstanceInfo, Lxd, is_tenant_project
from containervps.schemas.quota import QuotaUpdate
from containervps.services.tenancy import tenants, tokens
from containervps.services.tenancy.tenants import default_quota

TEST_ENV = {
    "CONTAINERVPS_SHUTDOWN_TIMEOUT": "5",
    "CONTAINERVPS_RECONCILE_INTERVAL": "0",
    "CONTAINERVPS_ACTION_WORKERS": "8",
    # Servers of earlier test modules stay until the session ends: do not let the 2-CPU host's
    # default capacity refuse later tests (35 live servers held 79 of the pool's 80 sellable
    # GiB at the end of one run; the capacity test sets its own ratio).
    "CONTAINERVPS_CPU_OVERCOMMIT": "32",
    "CONTAINERVPS_DISK_OVERCOMMIT": "16",
    "CONTAINERVPS_MEMORY_OVERCOMMIT": "4",
}


@dataclass(frozen=True)
class ApiTenant:
    id: int
    name: str
    project: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_tenant(
    settings: Settings, lxd: Lxd, label: str, *, quota: QuotaUpdate | None = None
) -> ApiTenant:
    """A tenant with its LXD project and a token."""
    name = f"{label}-{secrets.token_hex(3)}"
    view = tenants.create_tenant(settings, lxd, name=name, quota=quota or default_quota(settings))
    assert view.tenant.id is not None
    _, token = tokens.create_token(settings, name="test", tenant_id=view.tenant.id)
    return ApiTenant(view.tenant.id, name, view.tenant.lxd_project, token)


def small_plan(name: str) -> dict[str, Any]:
    """An admin API body for a small plan named ``name``."""
    return {
        "name": name,
        "vcpus": 1,
        "memory_mib": 128,
        "disk_gib": 1,
        "disk_read_iops": 100,
        "disk_write_iops": 50,
        "disk_read_mb_s": 20,
        "disk_write_mb_s": 10,
        "net_ingress_mbit": 10,
        "net_egress_mbit": 10,
        "max_processes": 100,
        "transfer_gib": 10,
    }


def admin_headers(settings: Settings) -> dict[str, str]:
    """Authorization headers of a new admin token."""
    _, secret = tokens.create_token(settings, name="test-admin", is_admin=True)
    return {"Authorization": f"Bearer {secret}"}


def wait_action(
    client: Any, action_id: int, headers: dict[str, str], timeout: float = 90
) -> dict[str, Any]:
    """Long-poll an action until it is no longer running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"/v1/actions/{action_id}", params={"wait": 30}, headers=headers)
        assert r.status_code == 200, r.text
        action: dict[str, Any] = r.json()["action"]
        if action["status"] != "running":
            return action
    raise AssertionError(f"action {action_id} still running after {timeout}s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ApiProcess:
    """`containervps serve` in a child process (so it can be SIGKILLed)."""

    def __init__(self, settings: Settings, *, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            **TEST_ENV,
            "CONTAINERVPS_DATA_DIR": str(settings.data_dir),
            "CONTAINERVPS_TENANT_PROJECT_PREFIX": settings.tenant_project_prefix,
            **(env or {}),
        }
        self.log = settings.data_dir / f"api-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                # the real `containervps serve`, skipping addresses LXD holds (as tests do)
                [
                    sys.executable,
                    "-m",
                    "tests.integration.serve_for_tests",
                    "serve",
                    "--port",
                    str(self.port),
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"API did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no clean-up code runs."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def server_project(settings: Settings, tenant: ApiTenant, name: str) -> str:
    """The LXD project of the tenant's live server ``name`` (its own or a group project)."""
    with session_scope(settings) as session:
        row = session.exec(
            select(Server).where(
                Server.tenant_id == tenant.id, Server.name == name, col(Server.deleted_at).is_(None)
            )
        ).one()
    return row.lxd_project


def tenant_instances(lxd: Lxd, tenant: ApiTenant) -> list[InstanceInfo]:
    """Every instance in the tenant's project and its group projects."""
    return [i for i in lxd.instances.everywhere() if is_tenant_project(tenant.project, i.project)]
