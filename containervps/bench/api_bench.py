"""`containervps bench api`: what the control plane costs over plain pylxd, and list latency.

Starts `containervps serve` on a free loopback port, creates a throw-away tenant, and measures:
create-to-running through the API (POST + long poll) vs a direct pylxd create+start with the same
image, limits and project; N concurrent creates both ways; GET /v1/servers with many rows in the
database (rows inserted directly, no containers). Everything it made is deleted at the end.
"""

from __future__ import annotations

import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from sqlmodel import col, delete, select

from containervps.config import Settings
from containervps.db import migrate
from containervps.db.engine import session_scope
from containervps.db.models import Plan, Server, utcnow
from containervps.errors import ContainerVpsError, HostSetupError
from containervps.lxd import Lxd
from containervps.lxd.direct import DirectPylxd
from containervps.lxd.locks import instance_create_lock
from containervps.services import access, tenants, tokens
from containervps.services.capabilities import egress_support
from containervps.services.plans import instance_limits, plan_limits

__all__ = ["ApiBenchResult", "run_api_bench"]

Say = Callable[[str], None]


@dataclass(frozen=True)
class ApiBenchResult:
    image: str
    plan: str
    creates: int
    api_p50_s: float
    api_p95_s: float
    direct_p50_s: float
    direct_p95_s: float
    concurrent: int
    api_concurrent_total_s: float
    direct_concurrent_total_s: float
    list_rows: int
    list_samples: int
    list_p50_ms: float
    list_p95_ms: float
    list_p99_ms: float

    @property
    def p50_ratio(self) -> float:
        return self.api_p50_s / self.direct_p50_s

    @property
    def p95_ratio(self) -> float:
        return self.api_p95_s / self.direct_p95_s

    @property
    def concurrent_ratio(self) -> float:
        return self.api_concurrent_total_s / self.direct_concurrent_total_s


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Api:
    """A `containervps serve` child process and an HTTP client for one tenant token."""

    def __init__(self, settings: Settings, token: str) -> None:
        port = _free_port()
        # Latency, not capacity, is measured: direct pylxd has no admission, so lift the vCPU
        # overcommit that would otherwise refuse the 9th nano server on a 2-CPU host.
        env = {
            **os.environ,
            "CONTAINERVPS_RECONCILE_INTERVAL": "0",
            "CONTAINERVPS_CPU_OVERCOMMIT": "64",
        }
        env["CONTAINERVPS_DATA_DIR"] = str(settings.data_dir)
        env["CONTAINERVPS_TENANT_PROJECT_PREFIX"] = settings.tenant_project_prefix
        if settings.database_url:
            env["CONTAINERVPS_DATABASE_URL"] = settings.database_url
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "containervps", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=180,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.http.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.close()
        raise HostSetupError("the API server did not come up within 30 s")

    def create_and_wait(self, name: str, *, plan: str, image: str) -> int:
        """POST /v1/servers, then long-poll its action; return the server id."""
        r = self.http.post("/v1/servers", json={"name": name, "plan": plan, "image": image})
        if r.status_code != 202:
            raise HostSetupError(f"API create of {name} answered {r.status_code}: {r.text}")
        self._wait(r.json()["action"]["id"])
        return int(r.json()["server"]["id"])

    def delete_and_wait(self, server_id: int) -> None:
        r = self.http.delete(f"/v1/servers/{server_id}")
        if r.status_code == 202:
            self._wait(r.json()["action"]["id"])

    def _wait(self, action_id: int) -> None:
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


def run_api_bench(
    settings: Settings,
    lxd: Lxd,
    *,
    creates: int = 10,
    concurrent: int = 10,
    list_rows: int = 1000,
    list_samples: int = 300,
    image: str = "busybox",
    plan: str = "nano",
    say: Say = lambda _: None,
) -> ApiBenchResult:
    """Run every measurement and clean up; raises HostSetupError when the host is not ready."""
    if migrate.current_revision(settings) is None:
        raise HostSetupError(
            "the database is not set up", resolution="run `containervps db upgrade`"
        )
    if lxd.images.by_alias(image) is None:
        raise HostSetupError(
            f"image {image} is not in LXD", resolution=f"run `containervps image build {image}`"
        )
    with session_scope(settings) as session:
        the_plan = session.get(Plan, plan)
    if the_plan is None:
        raise HostSetupError(f"plan {plan} does not exist")
    most = max(creates, concurrent) + 1
    quota = tenants.QuotaSpec(
        max_servers=most + list_rows,
        max_vcpus=most * the_plan.vcpus + list_rows,
        max_memory_mib=most * the_plan.memory_mib + list_rows,
        max_disk_gib=most * the_plan.disk_gib + list_rows,
        max_processes=most * the_plan.max_processes + list_rows,
    )
    view = tenants.create_tenant(settings, lxd, name=f"bench-{secrets.token_hex(3)}", quota=quota)
    tenant_id, project = view.tenant.id or 0, view.tenant.lxd_project
    _, token = tokens.create_token(settings, name="bench api", tenant_id=tenant_id)
    egress = egress_support(settings, lxd)
    config, devices = instance_limits(
        plan_limits(the_plan, egress_enforced=egress.enforced),
        pool=settings.storage_pool,
        network=settings.bridge,
    )
    direct = DirectPylxd(project=project, socket=settings.lxd_socket)
    shared = lxd.host.get_pool(settings.storage_pool)
    driver = shared.driver if shared else settings.storage_driver
    disk = {"size": f"{the_plan.disk_gib}GiB"} if driver == "btrfs" else {}

    def direct_create(name: str) -> None:
        # The same host-wide create lock as the control plane (LXD's idmap race), no more, and
        # the same storage and devices: a server's own disk pool, and its SSH port forward (an
        # LXD proxy device, ~1 s of start).
        pool = f"{project}_{name}"
        lxd.host.create_pool(name=pool, driver=driver, config=disk)
        direct.create_and_start(
            name=name,
            image=image,
            config=config,
            devices={
                **devices,
                "root": {**devices["root"], "pool": pool},
                "ssh": access.ssh_proxy_device(settings, _free_port()),
            },
            profiles=["default"],
            create_lock=instance_create_lock(settings.lxd_create_lock),
        )
        lxd.host.delete_image_volumes(pool)

    def direct_delete(name: str) -> None:
        direct.delete(name)
        lxd.host.delete_pool(f"{project}_{name}")

    api = _Api(settings, token)
    try:
        say("warm-up: one create each way (first use of the image in this project)")
        api.delete_and_wait(api.create_and_wait("warm-api", plan=plan, image=image))
        direct_create("warm-direct")
        direct_delete("warm-direct")
        say(f"{creates} sequential creates through the API")
        api_times, ids = [], []
        for i in range(creates):
            started = time.perf_counter()
            ids.append(api.create_and_wait(f"api-{i}", plan=plan, image=image))
            api_times.append(time.perf_counter() - started)
        for sid in ids:
            api.delete_and_wait(sid)
        say(f"{creates} sequential direct pylxd creates")
        direct_times = []
        for i in range(creates):
            started = time.perf_counter()
            direct_create(f"direct-{i}")
            direct_times.append(time.perf_counter() - started)
        for i in range(creates):
            direct_delete(f"direct-{i}")
        say(f"{concurrent} concurrent creates through the API")
        with ThreadPoolExecutor(max_workers=concurrent) as pool:
            started = time.perf_counter()
            ids = list(
                pool.map(
                    lambda i: api.create_and_wait(f"capi-{i}", plan=plan, image=image),
                    range(concurrent),
                )
            )
            api_concurrent = time.perf_counter() - started
            list(pool.map(api.delete_and_wait, ids))
        say(f"{concurrent} concurrent direct pylxd creates")
        with ThreadPoolExecutor(max_workers=concurrent) as pool:
            started = time.perf_counter()
            list(pool.map(lambda i: direct_create(f"cdirect-{i}"), range(concurrent)))
            direct_concurrent = time.perf_counter() - started
            list(pool.map(lambda i: direct_delete(f"cdirect-{i}"), range(concurrent)))
        say(f"GET /v1/servers with {list_rows} servers in the database")
        list_ms = _list_latency(
            settings, api, the_plan, tenant_id, project, rows=list_rows, samples=list_samples
        )
    finally:
        api.close()
        _cleanup(settings, lxd, direct, tenant_id)
    return ApiBenchResult(
        image=image,
        plan=plan,
        creates=creates,
        api_p50_s=percentile(api_times, 50),
        api_p95_s=percentile(api_times, 95),
        direct_p50_s=percentile(direct_times, 50),
        direct_p95_s=percentile(direct_times, 95),
        concurrent=concurrent,
        api_concurrent_total_s=api_concurrent,
        direct_concurrent_total_s=direct_concurrent,
        list_rows=list_rows,
        list_samples=list_samples,
        list_p50_ms=statistics.median(list_ms),
        list_p95_ms=percentile(list_ms, 95),
        list_p99_ms=percentile(list_ms, 99),
    )


FAKE_PREFIX = "bench-fake-"


def _list_latency(
    settings: Settings,
    api: _Api,
    plan: Plan,
    tenant_id: int,
    project: str,
    *,
    rows: int,
    samples: int,
) -> list[float]:
    with session_scope(settings, immediate=True) as session:
        for i in range(rows):
            session.add(
                Server(
                    tenant_id=tenant_id,
                    name=f"{FAKE_PREFIX}{i}",
                    plan=plan.name,
                    image="busybox",
                    status="off",
                    labels={"bench": "yes", "n": str(i)},
                    lxd_project=project,
                    lxd_name=f"{FAKE_PREFIX}{i}",
                    vcpus=0,
                    memory_mib=0,
                    disk_gib=0,
                    processes=0,
                    limits=plan_limits(plan, egress_enforced=False),
                )
            )
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        r = api.http.get("/v1/servers")
        times.append((time.perf_counter() - started) * 1000)
        if r.status_code != 200 or r.json()["meta"]["pagination"]["total_entries"] != rows:
            raise HostSetupError(f"GET /v1/servers answered {r.status_code}: {r.text[:200]}")
    return times


def _cleanup(settings: Settings, lxd: Lxd, direct: DirectPylxd, tenant_id: int) -> None:
    """Delete every container and row the benchmark made, then its tenant."""
    with session_scope(settings, immediate=True) as session:
        session.exec(
            delete(Server).where(
                col(Server.tenant_id) == tenant_id, col(Server.name).startswith(FAKE_PREFIX)
            )
        )
        live = session.exec(
            select(Server).where(Server.tenant_id == tenant_id, col(Server.deleted_at).is_(None))
        ).all()
    project = tenants.get_tenant(settings, tenant_id).tenant.lxd_project
    for inst in lxd.instances.all(project=project):
        try:
            lxd.instances.delete(name=inst.name, project=project)
        except ContainerVpsError:
            continue
    for pool in lxd.host.list_pools():
        if pool.name.startswith(f"{project}_"):
            try:
                lxd.host.delete_pool(pool.name)
            except ContainerVpsError:
                continue
    with session_scope(settings, immediate=True) as session:
        for row in live:
            fresh = session.get(Server, row.id)
            if fresh is not None:
                fresh.status, fresh.deleted_at = "deleted", utcnow()
                session.add(fresh)
    tenants.delete_tenant(settings, lxd, tenant_id=tenant_id)
