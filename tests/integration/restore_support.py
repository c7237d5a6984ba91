"""Helpers of the restore tests: a load of creates in the background, shell through the API,
and what LXD says about a server's idmap."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from containervps.lxd import Lxd
from containervps.lxd.idmaps import MAP_SIZE, base_of, in_subuid_range
from tests.integration.api_support import ApiTenant, wait_action


def sh(http: httpx.Client, sid: int, command: str) -> str:
    """Run a shell command in the server through the API; its stdout."""
    r = http.post(f"/v1/servers/{sid}/exec", json={"command": command})
    assert r.status_code == 200, r.text
    assert r.json()["exec"]["exit_code"] == 0, r.text
    return str(r.json()["exec"]["stdout"])


def create(http: httpx.Client, name: str, *, image: str, plan: str) -> dict[str, Any]:
    """Create a server and wait until it runs; its object."""
    r = http.post("/v1/servers", json={"name": name, "plan": plan, "image": image})
    assert r.status_code == 202, r.text
    action = wait_action(http, r.json()["action"]["id"], {}, timeout=180)
    assert action["status"] == "success", action
    server: dict[str, Any] = r.json()["server"]
    return server


@dataclass
class CreateLoad:
    """Threads creating and deleting servers of one tenant until stopped (bounded)."""

    url: str
    tenant: ApiTenant
    threads: int = 2
    max_rounds: int = 200
    created: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> CreateLoad:
        for i in range(self.threads):
            worker = threading.Thread(target=self._loop, args=(i,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=300)

    def _loop(self, index: int) -> None:
        with httpx.Client(base_url=self.url, headers=self.tenant.headers, timeout=60) as http:
            for n in range(self.max_rounds):
                if self._stop.is_set():
                    return
                r = http.post(
                    "/v1/servers",
                    json={"name": f"load-{index}-{n}", "plan": "nano", "image": "busybox"},
                )
                if r.status_code != 202:
                    self.errors.append(r.text)
                    time.sleep(0.5)
                    continue
                action = wait_action(http, r.json()["action"]["id"], {}, timeout=180)
                if action["status"] != "success":
                    self.errors.append(str(action["error"]))
                self.created += 1
                sid = r.json()["server"]["id"]
                d = http.delete(f"/v1/servers/{sid}")
                if d.status_code == 202:
                    wait_action(http, d.json()["action"]["id"], {}, timeout=180)


def idmap_problems(lxd: Lxd, *, project: str, name: str, own: int | None) -> list[str]:
    """What is wrong with the instance's idmap (empty: its own, in range, shared with nobody)."""
    config = lxd.instances.get(name=name, project=project).config
    base = base_of(config) or 0
    problems = []
    if not base or not in_subuid_range({**config, "security.idmap.isolated": "true"}):
        problems.append(f"base {base} outside root's subuid range")
    for inst in lxd.instances.everywhere():
        other = base_of(inst.config)
        if (inst.project, inst.name) != (project, name) and other and abs(other - base) < MAP_SIZE:
            problems.append(f"map at {base} shared with {inst.project}/{inst.name} ({other})")
    if base != own:
        problems.append(f"base changed from {own} to {base}")
    return problems
