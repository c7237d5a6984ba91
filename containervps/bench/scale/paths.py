"""The two ways a ramp creates servers: through the tenant API (a `containervps serve` child)
and through plain pylxd on the same LXD (the baseline), each with its checks at the top."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

from containervps.bench.api_baseline import DirectBaseline
from containervps.bench.api_process import ApiProcess
from containervps.bench.stats import percentile
from containervps.config import Settings
from containervps.errors import ContainerVpsError
from containervps.lxd import Lxd, is_tenant_project, pool_owner
from containervps.services.metering.sampling import sample_all
from containervps.services.reconcile.reconciler import Reconciler
from containervps.services.servers import ssh_forwards

__all__ = ["ApiPath", "RawPath", "leftovers"]

T = TypeVar("T")


def _in_parallel(work: Callable[[T], bool], items: Iterable[T], workers: int) -> int:
    """How many of ``items`` ``work`` succeeded on."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(work, items))


def _all_done(work: Callable[[T], object], items: Iterable[T], workers: int) -> int:
    """How many of ``items`` ``work`` went through without a domain error."""

    def attempt(item: T) -> bool:
        try:
            work(item)
        except ContainerVpsError:
            return False
        return True

    return _in_parallel(attempt, items, workers)


def _ms(call: Callable[[], Any], samples: int) -> list[float]:
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return times


class ApiPath:
    """Servers made, checked and deleted through the API, as tenants do."""

    def __init__(self, settings: Settings, lxd: Lxd, api: ApiProcess, *, plan: str, image: str):
        self.settings, self.lxd, self.api, self.plan, self.image = settings, lxd, api, plan, image

    def create(self, name: str) -> int:
        return self.api.create_and_wait(name, plan=self.plan, image=self.image)

    def control_plane(self, made: list[int], *, samples: int) -> dict[str, Any]:
        """List and show latency, one usage-sampling pass and one reconcile dry run, now."""
        http = self.api.http
        listing = _ms(lambda: http.get("/v1/servers").raise_for_status(), samples)
        show: list[float] = []
        if made:
            show = _ms(
                lambda: http.get(f"/v1/servers/{random.choice(made)}").raise_for_status(), samples
            )
        t0 = time.perf_counter()
        sample_all(self.settings, self.lxd)
        t1 = time.perf_counter()
        Reconciler(self.settings, self.lxd).run(dry_run=True)
        t2 = time.perf_counter()
        return {
            "list_p50_ms": percentile(listing, 50),
            "list_p99_ms": percentile(listing, 99),
            "show_p50_ms": percentile(show, 50),
            "show_p99_ms": percentile(show, 99),
            "sample_pass_s": t1 - t0,
            "reconcile_pass_s": t2 - t1,
        }

    def reachable(self, made: list[int], *, check_ssh: bool, workers: int) -> dict[str, Any]:
        """How many servers the API shows running, answer an exec, and (optionally) whose
        sshd answers on the forwarded port."""
        servers: dict[int, dict[str, Any]] = {}
        page = 1
        while True:
            body = self.api.http.get("/v1/servers", params={"page": page, "per_page": 100}).json()
            servers |= {s["id"]: s for s in body["servers"]}
            if page >= body["meta"]["pagination"]["last_page"]:
                break
            page += 1

        failures: list[str] = []

        def execs(sid: int) -> bool:
            try:
                r = self.api.http.post(f"/v1/servers/{sid}/exec", json={"command": "true"})
            except httpx.HTTPError as exc:  # counted, like any other exec that did not answer
                failures.append(f"server {sid}: {type(exc).__name__}: {exc}")
                return False
            if r.status_code == 200 and r.json()["exec"]["exit_code"] == 0:
                return True
            failures.append(f"server {sid}: {r.status_code} {r.text[:200]}")
            return False

        def sshd(sid: int) -> bool:
            ssh = servers.get(sid, {}).get("ssh") or {}
            return _ssh_banner(ssh.get("host"), ssh.get("port"))

        t0 = time.perf_counter()
        result: dict[str, Any] = {
            "servers": len(made),
            "running": sum(servers.get(s, {}).get("status") == "running" for s in made),
            "exec_ok": _in_parallel(execs, made, workers),
            "exec_s": time.perf_counter() - t0,
        }
        if check_ssh:
            result["ssh_ok"] = _in_parallel(sshd, made, workers)
        result["exec_failures"] = failures[:5]
        return result

    def delete_all(self, made: list[int], *, workers: int) -> int:
        return _all_done(self.api.delete_and_wait, made, workers)


def _ssh_banner(host: str | None, port: int | None, timeout: float = 30.0) -> bool:
    """sshd answers: its version banner arrives within ``timeout`` (retried while it boots)."""
    if not host or not port:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=5) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return True
        except OSError:
            pass
        time.sleep(1)
    return False


class RawPath:
    """The same containers with plain pylxd: no admission, no database, no forwards."""

    def __init__(self, baseline: DirectBaseline, lxd: Lxd, project: str) -> None:
        self.baseline, self.lxd, self.project = baseline, lxd, project

    def create(self, name: str) -> str:
        return self.baseline.create(name)

    def reachable(self, made: list[str], *, workers: int) -> dict[str, Any]:
        states = {i.name: i.status for i in self.lxd.instances.all(project=self.project)}

        def execs(name: str) -> bool:
            try:
                return self.lxd.instances.exec(
                    name=name, project=self.project, command=["true"], timeout=30
                ).ok
            except ContainerVpsError:
                return False

        t0 = time.perf_counter()
        return {
            "servers": len(made),
            "running": sum(states.get(n) == "Running" for n in made),
            "exec_ok": _in_parallel(execs, made, workers),
            "exec_s": time.perf_counter() - t0,
        }

    def delete_all(self, made: list[str], *, workers: int) -> int:
        return _all_done(self.baseline.delete, made, workers)


def leftovers(
    settings: Settings, lxd: Lxd, project: str, *, loop_devices: int, now_loops: int
) -> list[str]:
    """What is left of a ramp once it is cleaned up: its projects (the tenant's and its group
    projects), their instances, disk pools and LXD log directories, SSH forwards no live server
    holds, loop devices beyond those before the ramp."""

    def ours(name: str) -> bool:
        return is_tenant_project(project, name)

    left = [f"project {p}" for p in lxd.host.list_projects() if ours(p)]
    instances = lxd.instances.everywhere()
    left += [f"instance {i.project}/{i.name}" for i in instances if ours(i.project)]
    left += [
        f"LXD log dir of {p}/{n}"
        for p, n in lxd.instances.logs.stale(
            owned=ours, instances={(i.project, i.name) for i in instances}, min_age=0
        )
    ]
    left += [
        f"pool {p.name}"
        for p in lxd.host.list_pools()
        if (owner := pool_owner(p.name)) is not None and ours(owner[0])
    ]
    wanted = ssh_forwards.wanted(settings)
    held = ssh_forwards.forwards(settings) or {}
    left += [f"SSH forward {port} -> {ipv4}" for port, ipv4 in held.items() if port not in wanted]
    if now_loops > loop_devices:
        left.append(f"{now_loops - loop_devices} loop devices more than before")
    return left
