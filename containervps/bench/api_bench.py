"""`containervps bench api`: what the control plane costs over plain pylxd, and list latency.

Starts `containervps serve` on a free loopback port, creates a throw-away tenant, and measures:
create-to-running through the API (POST + long poll) vs a direct pylxd create+start with the same
image, limits and project; N concurrent creates both ways; GET /v1/servers with many rows in the
database (rows inserted directly, no containers). Everything it made is deleted at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from sqlmodel import col, delete

from containervps.bench.api_baseline import DirectBaseline
from containervps.bench.api_process import ApiProcess
from containervps.bench.bench_tenant import make_bench_tenant, ready_plan, remove_bench_tenant
from containervps.bench.stats import percentile
from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Plan, Server
from containervps.errors import HostSetupError
from containervps.lxd import Lxd
from containervps.services.servers.limits import plan_limits
from containervps.services.servers.states import ServerState

__all__ = ["ApiBenchResult", "run_api_bench"]

Say = Callable[[str], None]
T = TypeVar("T")


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
    the_plan = ready_plan(settings, lxd, image=image, plan=plan)
    tenant = make_bench_tenant(
        settings, lxd, plan=the_plan, servers=max(creates, concurrent) + 1 + list_rows
    )
    tenant_id, project = tenant.id, tenant.project
    direct = DirectBaseline(settings, lxd, project=project, plan=the_plan, image=image)
    # Latency, not capacity, is measured: direct pylxd has no admission, so lift the vCPU
    # overcommit that would otherwise refuse the 9th nano server on a 2-CPU host.
    api = ApiProcess(
        settings,
        tenant.token,
        env={"CONTAINERVPS_RECONCILE_INTERVAL": "0", "CONTAINERVPS_CPU_OVERCOMMIT": "64"},
    )
    try:
        times = _measure(
            api, direct, plan=plan, image=image, creates=creates, concurrent=concurrent, say=say
        )
        say(f"GET /v1/servers with {list_rows} servers in the database")
        list_ms = _list_latency(
            settings, api, the_plan, tenant_id, project, rows=list_rows, samples=list_samples
        )
    finally:
        api.close()
        _cleanup(settings, lxd, tenant_id)
    api_times, direct_times, api_concurrent, direct_concurrent = times
    return ApiBenchResult(
        image=image,
        plan=plan,
        creates=creates,
        api_p50_s=_pct(api_times, 50),
        api_p95_s=_pct(api_times, 95),
        direct_p50_s=_pct(direct_times, 50),
        direct_p95_s=_pct(direct_times, 95),
        concurrent=concurrent,
        api_concurrent_total_s=api_concurrent,
        direct_concurrent_total_s=direct_concurrent,
        list_rows=list_rows,
        list_samples=list_samples,
        list_p50_ms=_pct(list_ms, 50),
        list_p95_ms=_pct(list_ms, 95),
        list_p99_ms=_pct(list_ms, 99),
    )


Timings = tuple[list[float], list[float], float, float]


def _measure(
    api: ApiProcess,
    direct: DirectBaseline,
    *,
    plan: str,
    image: str,
    creates: int,
    concurrent: int,
    say: Say,
) -> Timings:
    """Sequential create times both ways, then the totals of concurrent creates both ways."""
    say("warm-up: one create each way (first use of the image in this project)")
    api.delete_and_wait(api.create_and_wait("warm-api", plan=plan, image=image))
    direct.delete(direct.create("warm-direct"))

    def api_create(name: str) -> int:
        return api.create_and_wait(name, plan=plan, image=image)

    say(f"{creates} sequential creates through the API")
    api_times = _sequential(api_create, api.delete_and_wait, prefix="api-", count=creates)
    say(f"{creates} sequential direct pylxd creates")
    direct_times = _sequential(direct.create, direct.delete, prefix="direct-", count=creates)
    say(f"{concurrent} concurrent creates through the API")
    api_concurrent = _concurrent(api_create, api.delete_and_wait, "capi-", concurrent)
    say(f"{concurrent} concurrent direct pylxd creates")
    direct_concurrent = _concurrent(direct.create, direct.delete, "cdirect-", concurrent)
    return api_times, direct_times, api_concurrent, direct_concurrent


def _pct(values: list[float], q: float) -> float:
    value = percentile(values, q)
    return 0.0 if value is None else value


def _sequential(
    create: Callable[[str], T], delete: Callable[[T], None], *, prefix: str, count: int
) -> list[float]:
    """Seconds of each of ``count`` creates one after another; then deletes them all."""
    times, made = [], []
    for i in range(count):
        started = time.perf_counter()
        made.append(create(f"{prefix}{i}"))
        times.append(time.perf_counter() - started)
    for handle in made:
        delete(handle)
    return times


def _concurrent(
    create: Callable[[str], T], delete: Callable[[T], None], prefix: str, count: int
) -> float:
    """Seconds until ``count`` creates started together have all finished; then deletes."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        started = time.perf_counter()
        made = list(pool.map(lambda i: create(f"{prefix}{i}"), range(count)))
        total = time.perf_counter() - started
        list(pool.map(delete, made))
    return total


FAKE_PREFIX = "bench-fake-"


def _list_latency(
    settings: Settings,
    api: ApiProcess,
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
                    status=ServerState.OFF,
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


def _cleanup(settings: Settings, lxd: Lxd, tenant_id: int) -> None:
    """Delete the rows inserted without containers, then everything else the tenant has."""
    with session_scope(settings, immediate=True) as session:
        session.exec(
            delete(Server).where(
                col(Server.tenant_id) == tenant_id, col(Server.name).startswith(FAKE_PREFIX)
            )
        )
    left = remove_bench_tenant(settings, lxd, tenant_id)
    if left:
        raise HostSetupError(f"bench api left {len(left)} things behind: {left[0]}")
