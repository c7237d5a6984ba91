"""A `containervps serve` child process on a free loopback port, and a client for one token:
the path tenants use, for benchmarks that measure the platform through its API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from containervps.config import Settings
from containervps.errors import HostSetupError
from containervps.shell import spawn

__all__ = ["ApiProcess", "free_port"]

START_SECONDS = 30


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ApiProcess:
    """The API server as a child process with the given settings, and an HTTP client."""

    def __init__(
        self, settings: Settings, token: str, *, env: dict[str, str], log_file: Path | None = None
    ) -> None:
        port = free_port()
        child_env = {
            **os.environ,
            # The bench tenant long-polls every create it has in flight and checks its servers
            # with execs as many at once: measure the platform, not the per-tenant fairness caps
            # (with the exec cap, 619 of 999 checks at the top of a ramp got 429).
            "CONTAINERVPS_API_MAX_CONCURRENT_LONG_POLLS": "0",
            "CONTAINERVPS_API_MAX_CONCURRENT_EXECS": "0",
            **env,
            "CONTAINERVPS_DATA_DIR": str(settings.data_dir),
            "CONTAINERVPS_TENANT_PROJECT_PREFIX": settings.tenant_project_prefix,
        }
        if settings.database_url:
            child_env["CONTAINERVPS_DATABASE_URL"] = settings.database_url
        self.proc = spawn(
            [sys.executable, "-m", "containervps", "serve", "--port", str(port)],
            env=child_env,
            log_file=log_file,
        )
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=180,
        )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            try:
                if self.http.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.close()
        raise HostSetupError(f"the API server did not come up within {START_SECONDS} s")

    def create_and_wait(self, name: str, *, plan: str, image: str) -> int:
        """POST /v1/servers, then long-poll its action; return the server id."""
        r = self.http.post("/v1/servers", json={"name": name, "plan": plan, "image": image})
        if r.status_code != 202:
            raise HostSetupError(f"API create of {name} answered {r.status_code}: {r.text}")
        self.wait(r.json()["action"]["id"])
        return int(r.json()["server"]["id"])

    def delete_and_wait(self, server_id: int) -> None:
        r = self.http.delete(f"/v1/servers/{server_id}")
        if r.status_code == 202:
            self.wait(r.json()["action"]["id"])

    def wait(self, action_id: int) -> None:
        """Long-poll an action until it ends; HostSetupError when it failed."""
        while True:
            action = self.http.get(f"/v1/actions/{action_id}", params={"wait": 60}).json()["action"]
            if action["status"] == "success":
                return
            if action["status"] == "error":
                raise HostSetupError(f"action {action_id} failed: {action['error']}")

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
